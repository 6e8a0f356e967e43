"""The extra long-range tasks: positions, labels, determinism; MQAR's queries, ignored steps and baseline."""

import math
import re

import numpy as np
import pytest

from bench.registry import IGNORE_INDEX
from bench.synthetic import dataset_arrays
from tasks import mqar, selective_copy, temporal_order


@pytest.mark.parametrize("T", [1, 7, 40])
def test_selective_copy_scatters_ten_symbols_and_recalls_them_in_order(T):
    data = selective_copy.generate(T, 300, np.random.default_rng(0))
    inputs, targets = data["inputs"], data["targets"]
    assert inputs.shape == targets.shape == (300, T + 21)
    head = inputs[:, : T + 10]
    assert ((head > 0).sum(axis=1) == 10).all() and head.max() <= 8
    assert (inputs[:, T + 10] == 9).all() and (inputs[:, T + 11 :] == 0).all()
    assert (targets[:, : T + 11] == 0).all()
    for row in range(300):
        np.testing.assert_array_equal(targets[row, -10:], head[row][head[row] > 0])
    assert selective_copy.memoryless_baseline({"T": T}) == pytest.approx(10 * math.log(8) / (T + 21))
    if T >= 7:  # positions really vary (not the first 10 steps every time)
        assert len({tuple(np.flatnonzero(r)) for r in head}) > 100


@pytest.mark.parametrize("T", [10, 50, 101])
def test_temporal_order_places_two_relevant_symbols_in_their_windows(T):
    data = temporal_order.generate(T, 500, np.random.default_rng(1))
    inputs, targets = data["inputs"], data["targets"]
    (f0, f1), (s0, s1) = temporal_order.windows(T)
    relevant = inputs < 2
    assert (relevant.sum(axis=1) == 2).all()
    assert relevant[:, f0:f1].sum(axis=1).min() == 1 and relevant[:, s0:s1].sum(axis=1).min() == 1
    first = inputs[np.arange(500), relevant[:, :f1].argmax(axis=1)]
    second = inputs[np.arange(500), s0 + relevant[:, s0:s1].argmax(axis=1)]
    np.testing.assert_array_equal(targets, 2 * first + second)
    assert set(np.unique(targets)) == {0, 1, 2, 3}


@pytest.mark.parametrize("module", [selective_copy, temporal_order])
def test_generation_is_deterministic_per_seed(module):
    a = module.generate(20, 50, np.random.default_rng(3))
    b = module.generate(20, 50, np.random.default_rng(3))
    c = module.generate(20, 50, np.random.default_rng(4))
    np.testing.assert_array_equal(a["inputs"], b["inputs"])
    assert not np.array_equal(a["inputs"], c["inputs"])


@pytest.mark.parametrize("T,pairs,vocab,queries", [(6, 2, 5, 0), (16, 2, 16, 0), (40, 8, 64, 3), (300, 20, 601, 0)])
def test_mqar_asks_keys_of_the_context_and_targets_their_values(T, pairs, vocab, queries):
    data = mqar.generate(T, 200, np.random.default_rng(0), pairs=pairs, vocab=vocab, queries=queries)
    inputs, targets = data["inputs"].astype(np.int64), data["targets"].astype(np.int64)
    asked, keys_total = queries or pairs, mqar.key_count(vocab)
    assert inputs.shape == targets.shape == (200, T)
    keys, values = inputs[:, 0 : 2 * pairs : 2], inputs[:, 1 : 2 * pairs : 2]
    assert keys.min() >= 1 and keys.max() <= keys_total
    assert values.min() > keys_total and values.max() <= 2 * keys_total
    assert (inputs[:, 2 * pairs : T - asked] == mqar.BLANK).all()
    assert (targets[:, : T - asked] == IGNORE_INDEX).all()
    for row in range(200):
        assert len(set(keys[row])) == pairs and len(set(values[row])) == pairs
        value_of = dict(zip(keys[row], values[row]))
        queried = inputs[row, T - asked :]
        assert len(set(queried)) == asked
        np.testing.assert_array_equal(targets[row, T - asked :], [value_of[k] for k in queried])


def test_mqar_queries_come_in_random_order_and_keys_are_uniform():
    data = mqar.generate(16, 4000, np.random.default_rng(1), pairs=2, vocab=16, queries=0)
    first_query_is_first_key = data["inputs"][:, -2] == data["inputs"][:, 0]
    assert 0.45 < first_query_is_first_key.mean() < 0.55
    counts = np.bincount(data["inputs"][:, 0], minlength=8)[1:]
    assert counts.min() / counts.max() > 0.85


def test_mqar_baseline_is_uniform_over_the_values_on_query_steps_only():
    """The loss and the accuracy skip every step but the queries, so a predictor that knows only that a
    step is a query (uniform over the 7 values) scores log 7 however long the gap before them."""
    import torch

    from bench.models import NetConfig, RecurrentNet
    from bench.module import RecurrentTaskModule, make_metric

    settings = {**mqar.TASK.settings, "T": 30}
    targets = torch.from_numpy(mqar.generate(30, 50, np.random.default_rng(2), 2, 16, 0)["targets"]).long()
    logits = torch.full((50, 30, 16), -1e9)
    logits[..., 8:15] = 0.0  # values are 8..14; elsewhere the blank, confidently (and wrongly at queries)
    logits[:, :-2, 0] = 1e9
    net = RecurrentNet(NetConfig(input_kind="tokens", input_size=16, output_size=16, output_kind="per-step", hidden=4))
    module = RecurrentTaskModule(mqar.TASK, net, lr=1e-3, weight_decay=0.0, num_classes=16)
    assert module.loss(logits, targets).item() == pytest.approx(mqar.memoryless_baseline(settings)) == math.log(7)
    accuracy = make_metric(mqar.TASK.metrics[0], 16)
    right = torch.where(targets == IGNORE_INDEX, 0, targets)  # right at queries, blank elsewhere
    accuracy.update(right.reshape(-1), targets.reshape(-1))
    assert accuracy.compute().item() == 1.0
    assert mqar.load_data({**settings, "n_train": 4, "n_val": 4, "n_test": 4}, 0).extra == {
        "baseline/recall_acc": pytest.approx(1 / 7)
    }


def test_mqar_generation_is_deterministic_per_seed():
    a, b, c = (mqar.generate(16, 50, np.random.default_rng(seed), 2, 16, 0) for seed in (3, 3, 4))
    np.testing.assert_array_equal(a["inputs"], b["inputs"])
    np.testing.assert_array_equal(a["targets"], b["targets"])
    assert not np.array_equal(a["inputs"], c["inputs"])


def test_mqar_data_depends_on_every_knob_through_the_cache():
    base = {**mqar.TASK.settings, "n_train": 16, "n_val": 4, "n_test": 4}
    seen = set()
    for change in ({}, {"pairs": 3}, {"vocab": 17}, {"queries": 1}):
        train = dataset_arrays(mqar.load_data({**base, **change}, 0).splits["train"])
        seen.add((train["inputs"].tobytes(), train["targets"].tobytes()))
    assert len(seen) == 4


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"T": 5}, "T=5 is too short for 2 pairs and 2 queries: set T>=6"),
        ({"pairs": 8, "T": 24}, "pairs=8 needs 8 distinct keys, but vocab=16 holds 7"),
        ({"queries": 3}, "queries=3 asks more keys than pairs=2"),
    ],
)
def test_mqar_settings_that_cannot_fit_fail_in_one_line(overrides, message):
    from bench.config import resolve_config
    from bench.errors import UserError

    with pytest.raises(UserError, match=re.escape(message)):
        resolve_config("mqar", "simple", "lstm", overrides)
