"""Task definitions: layout, targets, ranges, determinism, disjoint splits, baselines."""

import math

import numpy as np
import pytest

from bench.registry import all_tasks, get_task
from bench.synthetic import dataset_arrays, split_rng
from tasks import adding, copy_memory

SMALL = {"n_train": 300, "n_val": 100, "n_test": 100}


def splits(task_name, data_seed=0, **settings):
    task = get_task(task_name)
    data = task.load_data({**task.settings, **SMALL, **settings}, data_seed)
    return {k: dataset_arrays(v) for k, v in data.splits.items()}


@pytest.mark.parametrize("T", [1, 5, 37])
def test_copy_memory_layout_and_target_alignment(T):
    data = copy_memory.generate(T, 200, np.random.default_rng(0))
    inputs, targets = data["inputs"], data["targets"]
    assert inputs.shape == targets.shape == (200, T + 20)
    symbols = inputs[:, :10]
    assert symbols.min() >= 1 and symbols.max() <= 8
    assert (inputs[:, 10 : T + 9] == 0).all()  # T-1 blanks
    assert (inputs[:, T + 9] == 9).all()  # the delimiter
    assert (inputs[:, T + 10 :] == 0).all()  # 10 blanks while recalling
    assert (targets[:, : T + 10] == 0).all()
    np.testing.assert_array_equal(targets[:, T + 10 :], symbols)


def test_copy_memory_symbols_are_uniform_over_1_to_8():
    symbols = copy_memory.generate(3, 20000, np.random.default_rng(1))["inputs"][:, :10]
    counts = np.bincount(symbols.ravel(), minlength=9)[1:]
    assert counts.min() / counts.max() > 0.95


@pytest.mark.parametrize("T", [2, 3, 50, 51])
def test_adding_markers_values_and_target(T):
    data = adding.generate(T, 500, np.random.default_rng(0))
    values, markers = data["inputs"][..., 0], data["inputs"][..., 1]
    assert data["inputs"].shape == (500, T, 2)
    assert values.min() >= 0 and values.max() <= 1
    assert set(np.unique(markers)) <= {0.0, 1.0}
    assert (markers.sum(axis=1) == 2).all()
    half = T // 2
    assert (markers[:, :half].sum(axis=1) == 1).all() and (markers[:, half:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(data["targets"], (values * markers).sum(axis=1), rtol=1e-6)


@pytest.mark.parametrize("task_name", ["copy-memory", "adding"])
def test_generation_is_deterministic_per_seed(task_name):
    first, again, other = splits(task_name, 0), splits(task_name, 0), splits(task_name, 1)
    np.testing.assert_array_equal(first["train"]["inputs"], again["train"]["inputs"])
    assert not np.array_equal(first["train"]["inputs"], other["train"]["inputs"])


@pytest.mark.parametrize("task_name", ["copy-memory", "adding"])
def test_splits_are_disjoint(task_name):
    data = splits(task_name)
    rows = {split: {row.tobytes() for row in arrays["inputs"]} for split, arrays in data.items()}
    assert not rows["train"] & rows["test"]
    assert not rows["train"] & rows["validation"]
    assert not rows["validation"] & rows["test"]


def test_split_streams_never_share_a_seed():
    draws = {split: split_rng(0, split, 10).integers(0, 2**31, 4).tolist() for split in ("train", "validation", "test")}
    assert len({tuple(v) for v in draws.values()}) == 3


def test_baselines_equal_the_formulas():
    for T in (1, 10, 100, 1000):
        assert copy_memory.memoryless_baseline({"T": T}) == pytest.approx(10 * math.log(8) / (T + 20))
    assert adding.memoryless_baseline({"T": 50}) == pytest.approx(1 / 6)
    small = {**get_task("copy-memory").settings, **SMALL, "T": 7}
    assert get_task("copy-memory").load_data(small, 0).baseline == copy_memory.memoryless_baseline(small)


def test_memoryless_predictor_scores_the_copy_memory_baseline():
    """Knowing only the position: blank for certain before the recall, uniform over 1..8 during it."""
    T = 20
    targets = splits("copy-memory", T=T)["test"]["targets"]
    probabilities = np.zeros((T + 20, 10))
    probabilities[: T + 10, 0] = 1.0
    probabilities[T + 10 :, 1:9] = 1 / 8
    steps = np.arange(T + 20)
    cross_entropy = -np.log(probabilities[steps[None, :], targets]).mean()
    assert cross_entropy == pytest.approx(copy_memory.memoryless_baseline({"T": T}), rel=1e-9)


def test_memoryless_predictor_scores_the_adding_baseline():
    targets = adding.generate(50, 200000, np.random.default_rng(3))["targets"]
    assert ((targets - 1.0) ** 2).mean() == pytest.approx(1 / 6, rel=0.01)


@pytest.mark.parametrize("task_name", sorted(all_tasks()))
def test_every_task_declares_what_training_needs(task_name, tmp_path):
    from bench.config import resolve_config
    from tests.task_fixtures import tiny_overrides

    task = get_task(task_name)
    assert task.input_kind in ("tokens", "floats") and task.output_kind in ("per-step", "per-sequence")
    assert task.monitor.startswith("val/") and task.monitor_mode in ("min", "max")
    config = resolve_config(task_name, "simple", "lstm", tiny_overrides(task, tmp_path))
    data = task.load_data(config.task_settings, 0)
    assert data.baseline > 0 and data.input_size >= 1 and data.output_size >= 1
    assert set(data.splits) == {"train", "validation", "test"}


@pytest.mark.parametrize("task_name", sorted(all_tasks()))
def test_every_task_declares_its_family_batching_and_metric_direction(task_name):
    task = get_task(task_name)
    assert task.family in ("generated", "text", "image", "language-model")
    assert task.batching == ("by-length" if task.family == "text" else "fixed")
    # The report metric and the monitored validation value point the same way.
    if task.monitor == f"val/{task.report_metric}":
        assert task.higher_is_better == (task.monitor_mode == "max")
    if task.long_range:  # horizons vary the gap length T
        assert "T" in task.settings


def test_metric_direction_is_declared_by_its_kind_not_guessed_from_its_name():
    from bench.registry import MetricSpec, TaskSpec

    def spec(metrics, report_metric):
        return TaskSpec(
            name="x",
            description="",
            input_kind="floats",
            output_kind="per-sequence",
            loss="mse",
            settings={},
            minimums={},
            load_data=None,
            family="generated",
            test_preset={},
            metrics=metrics,
            report_metric=report_metric,
        )

    assert spec((MetricSpec("score", "accuracy"),), "score").higher_is_better  # no "acc" in the name
    assert not spec((MetricSpec("acc", "perplexity"),), "acc").higher_is_better
    assert not spec((), "loss").higher_is_better
    with pytest.raises(ValueError, match="report_metric"):
        spec((), "acc")


def test_finding_a_task_loads_no_tracking_results_or_interrupt_machinery():
    """Tasks and data sit below training and results: they name their tags through bench.run_keys."""
    import subprocess
    import sys

    code = (
        "import sys; from bench.registry import get_task; get_task('adding'); "
        "print(sorted(m for m in ('bench.results', 'bench.stats', 'bench.tracking', 'bench.interrupts', "
        "'bench.config', 'torch', 'mlflow') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
