"""Sweep files: profiles merge, and every malformed file fails in one line with exit 2, creating nothing."""

import os
import subprocess
import sys

import pytest
import yaml

from bench.errors import UserError
from bench.registry import all_tasks
from bench.sweep_config import load_sweep, sweep_path
from tests.sweep_helpers import ROOT, worker_env, write_sweep

SHIPPED = sorted(p.stem for p in (ROOT / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("task", SHIPPED)
def test_shipped_sweep_files_are_valid_in_every_profile(task):
    profiles = yaml.safe_load(sweep_path(task).read_text())["profiles"]
    assert {"cpu", "gpu", "smoke"} <= set(profiles)
    for profile in profiles:
        spec = load_sweep(task, profile)
        assert spec.trials >= 1 and spec.final_seeds and spec.studies


def test_sweep_files_exist_for_the_long_range_and_sentiment_tasks():
    assert {"copy-memory", "adding", "sst2", "imdb"} <= set(SHIPPED)


def test_default_comparison_is_every_variant_for_every_cell():
    spec = load_sweep("copy-memory", "gpu")
    assert {(s.variant, s.cell) for s in spec.studies} == {
        (v, c) for v in ("simple", "stacked", "bidirectional") for c in ("rnn", "lstm", "gru")
    }
    assert all(s.grid == () for s in spec.studies)
    assert len(spec.final_seeds) == 3


def test_a_grid_multiplies_the_studies(tmp_path):
    path = write_sweep(tmp_path / "s.yaml", cells=["rnn", "gru"], grid={"T": [4, 8]})
    spec = load_sweep("adding", "test", path)
    assert [s.label for s in spec.studies] == ["simple/rnn/T=4", "simple/gru/T=4", "simple/rnn/T=8", "simple/gru/T=8"]


def test_a_variant_grid_multiplies_that_variants_studies_only(tmp_path):
    from types import SimpleNamespace

    from bench.results import counterpart

    path = write_sweep(
        tmp_path / "s.yaml",
        variants=["simple", "stacked"],
        grid={"T": [4, 8]},
        variant_grid={"stacked": {"layers": [2, 3]}},
    )
    keys = load_sweep("adding", "test", path).studies
    assert [s.label for s in keys] == [
        "simple/gru/T=4",
        "stacked/gru/T=4/layers=2",
        "stacked/gru/T=4/layers=3",
        "simple/gru/T=8",
        "stacked/gru/T=8/layers=2",
        "stacked/gru/T=8/layers=3",
    ]
    # comparisons pair each stacked study with the simple one at the same shared grid point
    studies = [SimpleNamespace(variant=k.variant, cell=k.cell, grid=k.suffix.lstrip(":")) for k in keys]
    for study in studies[1:3] + studies[4:]:
        assert counterpart(study, studies, "simple", "gru").grid == study.grid.split(":")[0]
    from bench.results import grid_parts

    assert grid_parts("train_subset=500:embedding_vectors=lm:imdb-unsupervised") == {
        "train_subset": "500",
        "embedding_vectors": "lm:imdb-unsupervised",
    }  # a ":" inside a value
    bad = write_sweep(tmp_path / "b.yaml", variant_grid={"huge": {"layers": [2]}})
    with pytest.raises(UserError, match="variant_grid.huge"):
        load_sweep("adding", "test", bad)


def test_profile_overrides_merge_into_the_base(tmp_path):
    path = write_sweep(tmp_path / "s.yaml", profiles={"test": {"trials": 7, "fixed": {"T": 9}}})
    spec = load_sweep("adding", "test", path)
    assert spec.trials == 7 and spec.fixed["T"] == 9 and spec.fixed["n_train"] == 256


def test_every_task_with_a_sweep_file_names_itself():
    for task in all_tasks():
        if sweep_path(task).exists():
            assert yaml.safe_load(sweep_path(task).read_text())["task"] == task


BAD_FILES = {
    "malformed yaml": ("task: adding\nsearch_space: {lr: [\n", "malformed YAML"),
    "unknown key": ({"colour": "red"}, "unknown key colour"),
    "unknown profile key": ({"profiles": {"test": {"speed": 1}}}, "unknown key profiles.test.speed"),
    "profiles not a mapping": ({"profiles": [1]}, "profiles: expected a mapping of profile name: keys (got [1])"),
    "low above high": (
        {"search_space": {"lr": {"type": "float", "low": 0.1, "high": 0.01}}},
        "search_space.lr (profile test): low (0.1) > high (0.01)",
    ),
    "non-positive lr": ({"search_space": {"lr": {"type": "float", "low": 0.0, "high": 0.01}}}, "lr must be positive"),
    "unknown variant": (
        {"variants": ["wide"]},
        "variants (profile test): a non-empty list of variants from simple, stacked, bidirectional, "
        "embedding-pretrained (got 'wide')",
    ),
    "unknown cell": ({"cells": ["cnn"]}, "cells (profile test): cell or group names, a non-empty list from rnn, lstm"),
    "unknown knob": ({"search_space": {"colour": {"type": "categorical", "choices": [1]}}}, "unknown key 'colour'"),
    "unknown distribution field": (
        {"search_space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "lg": True}}},
        "unknown field 'lg'",
    ),
    "pruner field of another pruner": (
        {"pruner": {"type": "median", "min_resource": 1}},
        "unknown key pruner.min_resource; allowed: n_startup_trials, n_warmup_steps, type",
    ),
    "final seed equal to the search seed": (
        {"final_seeds": [0, 1]},
        "final_seeds (profile test): must not contain the search seed sampler_seed=0",
    ),
    "a boolean where a count belongs": ({"trials": True}, "trials (profile test): a positive integer (got True)"),
    "a count given as text": (
        {"final_seeds": "3"},
        "final_seeds (profile test): a positive count or a non-empty list of non-negative integer seeds (got '3')",
    ),
    "a required key missing": (
        "task: adding\nmax_epochs: 2\nprofiles: {test: {}}\n",
        "trials (profile test): a positive integer (missing)",
    ),
    "a pruner option of the wrong type": (
        {"pruner": {"type": "median", "n_warmup_steps": "5"}},
        "pruner.n_warmup_steps (profile test): a non-negative integer (got '5')",
    ),
    "a variant's grid that is no list": (
        {"variants": ["simple", "stacked"], "variant_grid": {"stacked": {"layers": 2}}},
        "variant_grid.stacked.layers (profile test): a mapping of variant (simple, stacked, bidirectional, "
        "embedding-pretrained): {knob: [values]} (got 2)",
    ),
    "a distribution without a type": (
        {"search_space": {"lr": {"low": 1e-3, "high": 1e-2}}},
        "search_space.lr (profile test): expected a mapping with type: float | int | categorical",
    ),
    "an int range of floats": (
        {"search_space": {"hidden": {"type": "int", "low": 1.5, "high": 4}}},
        "search_space.hidden (profile test): low and high must be integers for type int",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_sweep_file_is_one_line_naming_file_and_key(tmp_path, case):
    content, message = BAD_FILES[case]
    path = tmp_path / "bad.yaml"
    if isinstance(content, str):
        path.write_text(content)
    else:
        write_sweep(path, **content)
    with pytest.raises(UserError) as error:
        load_sweep("adding", "test", path)
    assert message in str(error.value) and str(path) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--task", "nope"], "unknown task 'nope'"),
        (["--task", "adding", "--profile", "huge"], "unknown profile 'huge'; choose one of: test"),
        (["--task", "adding", "--profile", "test", "--bad-file"], None),
    ],
)
def test_sweep_cli_bad_input_exits_2_and_creates_nothing(tmp_path, args, message):
    sweep_file = write_sweep(tmp_path / "s.yaml")
    storage = tmp_path / "optuna.db"
    if "--bad-file" in args:
        args = [a for a in args if a != "--bad-file"]
        sweep_file.write_text(sweep_file.read_text() + "colour: red\n")
        message = "unknown key colour"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "sweep", *args, "--file", str(sweep_file), "--storage", f"sqlite:///{storage}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=worker_env(tmp_path),
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert not storage.exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("variant,cell", [("simple", "rnn"), ("stacked", "lstm"), ("bidirectional", "gru")])
def test_matching_parameter_counts_picks_the_closest_hidden_size(variant, cell):
    from bench.config import resolve_config
    from bench.models import count_parameters
    from bench.registry import get_task
    from bench.sweep import hidden_for_parameter_count
    from bench.train import build_network

    target = 20000
    hidden = hidden_for_parameter_count("copy-memory", variant, cell, {}, target)

    task = get_task("copy-memory")
    data = task.load_data(task.settings, 0)

    def count(h):
        return count_parameters(build_network(task, resolve_config("copy-memory", variant, cell, {"hidden": h}), data))

    assert abs(count(hidden) - target) <= min(abs(count(hidden - 1) - target), abs(count(hidden + 1) - target))
    assert abs(count(hidden) - target) / target < 0.05


def test_sweep_files_name_cells_or_groups(tmp_path):
    path = write_sweep(tmp_path / "s.yaml", cells=["reference", "gated"])
    assert [s.cell for s in load_sweep("adding", "test", path).studies] == ["rnn", "lstm", "gru"]
    path = write_sweep(tmp_path / "t.yaml", cells="gated")
    assert [s.cell for s in load_sweep("adding", "test", path).studies] == ["lstm", "gru"]


def test_each_variant_may_search_the_same_knob_over_its_own_range(tmp_path):
    """A knob in two variants' variant_space is two studies' ranges, not one knob set twice; within one
    variant, a searched knob also fixed is still refused."""
    dropout = {"type": "float", "low": 0.0, "high": 0.3}
    spec = load_sweep(
        "adding",
        "test",
        write_sweep(
            tmp_path / "a.yaml",
            variants=["stacked", "bidirectional"],
            variant_space={"stacked": {"dropout": dropout}, "bidirectional": {"dropout": {**dropout, "high": 0.5}}},
        ),
    )
    assert spec.space_for("stacked")["dropout"].high == 0.3 and spec.space_for("bidirectional")["dropout"].high == 0.5
    bad = write_sweep(
        tmp_path / "b.yaml",
        variants=["stacked"],
        fixed={"T": 6, "dropout": 0.1},
        variant_space={"stacked": {"dropout": dropout}},
    )
    with pytest.raises(UserError, match="set in two places, fixed.dropout and variant_space.stacked.dropout"):
        load_sweep("adding", "test", bad)


def test_a_knob_in_two_variants_grids_and_the_search_space_names_the_first_variant_of_the_file_whatever_the_hash_seed(
    tmp_path,
):
    """The variants were a set: which one the message named changed with PYTHONHASHSEED (0 and 1 differed)."""
    dropout = {"type": "float", "low": 0.0, "high": 0.3}
    path = write_sweep(
        tmp_path / "a.yaml",
        variants=["simple", "stacked"],
        search_space={"dropout": dropout},
        variant_grid={"simple": {"dropout": [0.1]}, "stacked": {"dropout": [0.2]}},
    )
    code = (
        "from pathlib import Path\nfrom bench.errors import UserError\nfrom bench.sweep_config import load_sweep\n"
        f"try:\n    load_sweep('adding', 'test', Path({str(path)!r}))\nexcept UserError as error:\n    print(error)"
    )
    messages = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
        ).stdout.strip()
        for seed in ("0", "1")
    }
    assert len(messages) == 1
    assert messages.pop().endswith("set in two places, variant_grid.simple.dropout and search_space.dropout; keep one")
