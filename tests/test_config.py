"""Resolving a run's configuration: precedence, types, and one-line errors for bad values."""

import pytest

from bench.config import parse_overrides, resolve_config
from bench.errors import UserError


def test_precedence_suite_then_task_then_variant_then_overrides():
    config = resolve_config("copy-memory", "stacked", "gru", {"hidden": "32", "T": "50"})
    assert config.lr == 1e-2  # the task's training default
    assert config.layers == 2  # the variant preset
    assert (config.hidden, config.task_settings["T"], config.cell) == (32, 50, "gru")


def test_options_compose_into_a_stacked_bidirectional_gru():
    config = resolve_config("adding", "stacked", "gru", {"bidirectional": "true", "layers": "3", "dropout": "0.2"})
    assert (config.layers, config.bidirectional, config.dropout) == (3, True, 0.2)


def test_overrides_are_key_value_pairs():
    assert parse_overrides(["T=50", "lr=3e-3"]) == {"T": "50", "lr": "3e-3"}
    with pytest.raises(UserError, match="key=value"):
        parse_overrides(["hidden"])


@pytest.mark.parametrize(
    "task,variant,cell,overrides,message",
    [
        ("nope", "simple", "lstm", {}, "unknown task 'nope'; choose one of: adding, copy-memory"),
        ("copy-memory", "wide", "lstm", {}, "unknown variant 'wide'"),
        ("copy-memory", "simple", "transformer", {}, "unknown cell 'transformer'; choose one of: rnn, lstm, gru"),
        ("copy-memory", "simple", "lstm", {"hiden": "3"}, "unknown key 'hiden'"),
        ("copy-memory", "simple", "lstm", {"T": "0"}, "T=0 is out of range"),
        ("copy-memory", "simple", "lstm", {"hidden": "big"}, "hidden='big' is not valid: expected an integer"),
        ("copy-memory", "simple", "lstm", {"lr": "nan"}, "expected a finite number"),
        ("copy-memory", "simple", "lstm", {"lr": "0"}, "lr=0.0 is out of range: must be > 0"),
        ("copy-memory", "stacked", "lstm", {"layers": "1"}, "stacked needs layers >= 2"),
        ("copy-memory", "simple", "lstm", {"activation": "relu"}, "applies to cell rnn only"),
        ("copy-memory", "embedding-pretrained", "lstm", {}, "needs embedding_vectors="),
    ],
)
def test_bad_input_names_the_value_and_the_choices(task, variant, cell, overrides, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("?", r"\?")):
        resolve_config(task, variant, cell, overrides)
