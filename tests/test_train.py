"""End to end: training reaches below the baseline and every run is readable back from MLflow."""

import pytest

from bench import stores, tracking
from bench.config import resolve_config
from bench.train import DivergedError, train

TINY_COPY = {"T": 5, "n_train": 20000, "n_val": 500, "n_test": 500, "batch_size": 32, "max_epochs": 5, "lr": 5e-3}


def run_of(run_id):
    return tracking.client().get_run(run_id)


@pytest.mark.slow
def test_lstm_learns_copy_memory_far_below_the_memoryless_baseline():
    config = resolve_config("copy-memory", "simple", "lstm", TINY_COPY)
    result = train(config, progress=False)
    assert result.test_metrics["test/loss"] < 0.6 * result.baseline
    assert result.test_metrics["test/recall_acc"] > 0.4  # chance is 1/8

    run = run_of(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["state"] == "complete"
    assert run.info.run_name == "copy-memory/simple/lstm/seed0"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["cell"] == "lstm" and params["T"] == "5" and params["lr"] == "0.005"
    for key in (
        "train/loss",
        "val/loss",
        "val/recall_acc",
        "test/loss",
        "test/recall_acc",
        "baseline/loss",
        "val/loss_best",
        "params/count",
        "time/seconds_per_epoch",
    ):
        assert key in metrics, key
    assert metrics["test/loss"] == pytest.approx(result.test_metrics["test/loss"])
    history = tracking.client().get_metric_history(result.run_id, "val/loss")
    assert len(history) == result.epochs  # one value per epoch
    assert metrics["val/loss_best"] == pytest.approx(min(m.value for m in history))
    for key in ("task", "variant", "cell", "seed", "git_commit", "dataset_fingerprint", "param_count"):
        assert tags[key], key
    assert tags["param_count"] == str(result.param_count)
    artifacts = {a.path for a in tracking.client().list_artifacts(result.run_id)}
    assert {"config.yaml", "checkpoints"} <= artifacts


@pytest.mark.slow
def test_test_metrics_come_from_the_best_validation_checkpoint():
    """Validation loss re-measured on the restored best checkpoint equals the best epoch's value."""
    config = resolve_config(
        "adding",
        "simple",
        "gru",
        {"T": 10, "n_train": 2000, "n_val": 300, "n_test": 300, "max_epochs": 4, "lr": 0.05, "hidden": 16},
    )
    result = train(config, progress=False)
    history = [m.value for m in tracking.client().get_metric_history(result.run_id, "val/loss")]
    assert result.best_val == pytest.approx(min(history))


@pytest.mark.slow
def test_same_seed_gives_the_same_run():
    overrides = {"T": 6, "n_train": 500, "n_val": 100, "n_test": 100, "max_epochs": 2, "hidden": 8}
    first = train(resolve_config("adding", "stacked", "lstm", overrides), progress=False)
    again = train(resolve_config("adding", "stacked", "lstm", overrides), progress=False)
    assert first.test_metrics == again.test_metrics


def test_a_failing_training_leaves_a_failed_run_with_its_reason():
    import lightning.pytorch as pl

    class Explode(pl.Callback):
        def on_train_batch_start(self, *args):
            raise RuntimeError("boom")

    config = resolve_config("adding", "simple", "rnn", {"T": 4, "n_train": 64, "n_val": 32, "n_test": 32})
    created = []
    with pytest.raises(RuntimeError, match="boom"):
        train(config, callbacks=[Explode()], progress=False, on_run_created=created.append)
    run = run_of(created[0])
    assert run.info.status == "FAILED" and run.data.tags["state"] == "failed"
    assert "boom" in run.data.tags["failure_reason"]
    # The system-metrics monitor stopped with the run, and wrote what it sampled.
    assert not monitor_threads()
    assert "system/cpu_utilization_percentage" in run.data.metrics


def monitor_threads() -> list:
    import threading

    return [thread for thread in threading.enumerate() if thread.name == "SystemMetricsMonitor" and thread.is_alive()]


TINY_ADDING = {"T": 4, "n_train": 64, "n_val": 32, "n_test": 32, "max_epochs": 1, "hidden": 8}


def test_a_run_logs_its_data_as_an_mlflow_dataset_and_system_metrics():
    """The runs table's Dataset column and filter, and the run's System metrics tab, have something to show."""
    import json

    result = train(resolve_config("adding", "simple", "gru", TINY_ADDING), progress=False)
    run = run_of(result.run_id)
    (entry,) = run.inputs.dataset_inputs
    dataset = entry.dataset
    assert dataset.name == "adding" and dataset.digest == run.data.tags["dataset_fingerprint"]
    assert {tag.key: tag.value for tag in entry.tags} == {"mlflow.data.context": "training"}
    # Generated data: its source is the task's generator with the settings and seed that make it.
    assert dataset.source_type == "code"
    generator = json.loads(dataset.source)["tags"]
    assert generator["task"] == "adding" and generator["T"] == "4" and generator["data_seed"] == "0"
    assert json.loads(dataset.profile) == {"num_rows": 128, "train_rows": 64, "validation_rows": 32, "test_rows": 32}
    columns = {column["name"]: column for column in json.loads(dataset.schema)["mlflow_colspec"]}
    assert columns["inputs"]["type"] == "array" and columns["inputs"]["items"]["items"] == {"type": "float"}
    assert columns["targets"]["type"] == "float"
    # System metrics through MLflow's monitor, stopped with the run.
    for key in ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"):
        assert key in run.data.metrics, sorted(run.data.metrics)
    assert not monitor_threads()


def test_local_files_are_the_dataset_source_of_a_run(tmp_path):
    import json

    from tests.text_helpers import LOCAL, make_dataset

    folder = make_dataset(tmp_path / "reviews", sizes=(60, 20, 20))
    knobs = {"data_dir": str(folder), **LOCAL, "max_epochs": 1, "hidden": 8, "embedding_size": 8}
    result = train(resolve_config("text-classification", "simple", "gru", knobs), progress=False)
    dataset = run_of(result.run_id).inputs.dataset_inputs[0].dataset
    assert dataset.name == "reviews" and dataset.source_type == "hugging_face"
    source = json.loads(dataset.source)
    assert source["path"] == "parquet"
    assert source["data_files"] == {
        split: str(folder / f"{split}.parquet") for split in ("train", "validation", "test")
    }
    assert json.loads(dataset.profile)["test_rows"] == 20
    assert {"input_ids", "label"} <= {column["name"] for column in json.loads(dataset.schema)["mlflow_colspec"]}


def test_system_metrics_are_off_with_system_metrics_0(monkeypatch):
    from bench.errors import UserError

    monkeypatch.setenv("SYSTEM_METRICS", "0")
    result = train(resolve_config("adding", "simple", "gru", TINY_ADDING), progress=False)
    assert not [key for key in run_of(result.run_id).data.metrics if key.startswith("system/")]
    monkeypatch.setenv("SYSTEM_METRICS", "off")
    created = []
    with pytest.raises(UserError, match="SYSTEM_METRICS='off' is not valid"):
        train(resolve_config("adding", "simple", "gru", TINY_ADDING), progress=False, on_run_created=created.append)
    assert not created  # before any run exists


def test_a_diverging_linear_rnn_stops_at_once():
    config = resolve_config(
        "adding",
        "simple",
        "rnn",
        {
            "activation": "linear",
            "lr": 1e3,
            "gradient_clip": 0,
            "T": 30,
            "n_train": 2000,
            "n_val": 64,
            "n_test": 64,
            "max_epochs": 50,
            "batch_size": 16,
        },
    )
    created = []
    with pytest.raises(DivergedError, match="diverged"):
        train(config, progress=False, on_run_created=created.append)
    run = run_of(created[0])
    assert run.info.status == "FAILED" and "diverged" in run.data.tags["failure_reason"]
    assert int(run.data.metrics.get("epoch", 0)) < 50


@pytest.mark.slow
def test_a_step_budget_shows_progress_in_steps_not_against_the_epoch_cap(capsys):
    from bench.cli import main

    knobs = ["max_steps=12", "eval_every_steps=4", "max_epochs=1000", "n_train=64", "n_val=32", "n_test=32", "T=4"]
    assert main(["train", "--task", "adding", "--cell", "gru", *knobs]) == 0
    captured = capsys.readouterr()
    out = (captured.out + captured.err).replace("\r", "\n")
    assert "epoch 1 (step 1/12)" in out and "12/12 steps" in out, out
    assert "/1000" not in out, out


def test_the_code_version_is_read_once_per_process_so_a_moving_worktree_does_not_relabel_runs(tmp_path, monkeypatch):
    """A reference sweep runs from a worktree that may be checked out forward while it trains: its runs
    keep the commit whose code the process loaded."""
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True, capture_output=True
        )

    git("init", "-q")
    (tmp_path / "a.txt").write_text("a")
    git("add", "a.txt")
    git("commit", "-q", "-m", "first")
    monkeypatch.setattr(stores, "ROOT", tmp_path)
    stores.git_commit.cache_clear()
    try:
        loaded = stores.git_commit()
        (tmp_path / "a.txt").write_text("b")
        git("commit", "-q", "-am", "second")
        assert stores.git_commit() == loaded and not loaded.endswith("-dirty")
    finally:
        stores.git_commit.cache_clear()  # the other tests read this repository's version again
