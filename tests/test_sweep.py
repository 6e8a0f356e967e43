"""Sweeps end to end: studies and MLflow runs, kill-and-resume, concurrent workers, diverging trials."""

import collections
import os
import signal
import socket
import subprocess
import time

import optuna
import pytest
from optuna.trial import TrialState

from bench import tracking
from bench.sweep import format_summary, make_storage, run_sweep, study_name
from bench.sweep_config import StudyKey, load_sweep
from tests.sweep_helpers import start_worker, sweep_command, worker_env, write_sweep

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def runs_of(task: str, store_uri: str | None = None):
    client = tracking.client()
    experiment = client.get_experiment_by_name(task)
    return client.search_runs([experiment.experiment_id], max_results=5000) if experiment else []


@pytest.mark.slow
def test_smoke_sweep_creates_studies_and_linked_mlflow_runs(tmp_path):
    path = write_sweep(
        tmp_path / "s.yaml",
        task="copy-memory",
        cells=["rnn", "lstm"],
        trials=3,
        final_seeds=2,
        fixed={"T": 2, "n_train": 128, "n_val": 32, "n_test": 32},
    )
    spec = load_sweep("copy-memory", "test", path)
    storage_url = f"sqlite:///{tmp_path / 'optuna.db'}"
    rows = run_sweep(spec, storage_url, show_progress=False)
    assert [(r["variant"], r["cell"], r["seeds"]) for r in rows] == [("simple", "rnn", 2), ("simple", "lstm", 2)]
    assert all(r["baseline"] is not None for r in rows)

    storage = make_storage(storage_url)
    runs = {r.info.run_id: r for r in runs_of("copy-memory")}
    for key in spec.studies:
        study = optuna.load_study(study_name=study_name(spec, key), storage=storage)
        trials = study.get_trials(states=FINISHED)
        assert len(trials) == 3
        parent_id = study.user_attrs["mlflow_parent_run_id"]
        assert runs[parent_id].data.tags["stage"] == "study" and runs[parent_id].info.status == "FINISHED"
        for trial in trials:  # trial -> run and run -> trial
            run = runs[trial.user_attrs["mlflow_run_id"]]
            assert run.data.tags["optuna_trial"] == str(trial.number)
            assert run.data.tags["mlflow.parentRunId"] == parent_id and run.data.tags["stage"] == "trial"
            assert run.data.tags["state"] in ("complete", "pruned")
            assert "val/loss" in run.data.metrics
        finals = optuna.load_study(study_name=study_name(spec, key, "final"), storage=storage)
        final_runs = [runs[t.user_attrs["mlflow_run_id"]] for t in finals.get_trials(states=(TrialState.COMPLETE,))]
        assert sorted(r.data.tags["seed"] for r in final_runs) == ["1", "2"]  # never the search seed 0
        assert all(r.data.tags["stage"] == "final" and "test/loss" in r.data.metrics for r in final_runs)
        best = study.best_trial
        assert all(float(r.data.params["lr"]) == pytest.approx(best.params["lr"]) for r in final_runs)


@pytest.mark.slow
def test_rerunning_a_finished_sweep_redoes_nothing(tmp_path):
    path = write_sweep(tmp_path / "s.yaml", trials=2, final_seeds=1)
    spec = load_sweep("adding", "test", path)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    run_sweep(spec, url, show_progress=False)
    before = len(runs_of("adding"))
    run_sweep(spec, url, show_progress=False)
    assert len(runs_of("adding")) == before


@pytest.mark.slow
def test_a_diverging_trial_is_pruned_with_its_reason_and_the_sweep_goes_on(tmp_path):
    path = write_sweep(
        tmp_path / "s.yaml",
        cells=["rnn"],
        trials=4,
        final_seeds=1,
        fixed={"T": 30, "n_train": 512, "n_val": 64, "n_test": 64, "activation": "linear", "gradient_clip": 0.0},
        search_space={"lr": {"type": "categorical", "choices": [1e-3, 1e4]}},
        pruner={"type": "none"},
        max_epochs=3,
    )
    spec = load_sweep("adding", "test", path)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    run_sweep(spec, url, show_progress=False)
    study = optuna.load_study(study_name=study_name(spec, StudyKey("simple", "rnn")), storage=make_storage(url))
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned and all("diverged" in t.user_attrs["pruned_reason"] for t in pruned)
    assert study.get_trials(states=(TrialState.COMPLETE,))  # the others ran on
    run = tracking.client().get_run(pruned[0].user_attrs["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["state"] == "pruned"
    assert "diverged" in run.data.tags["failure_reason"]


@pytest.mark.slow
def test_a_diverging_final_seed_is_done_counted_as_diverged_and_the_sweep_finishes(tmp_path, monkeypatch):
    """Retrying a seed that diverged would diverge again: the seed is done, its run is kept with the
    reason, and the summary and the report count it beside the seeds that finished."""
    from bench import sweep as sweep_module
    from bench.report import write_report

    real = sweep_module.resolve_config

    def seed_2_diverges(task, variant, cell, knobs):  # a real divergence, caused by seed 2's configuration
        if knobs.get("seed") == 2:
            knobs = {**knobs, "lr": 1e4, "activation": "linear", "gradient_clip": 0.0}
        return real(task, variant, cell, knobs)

    monkeypatch.setattr(sweep_module, "resolve_config", seed_2_diverges)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # the report reads it whole
    path = write_sweep(
        tmp_path / "s.yaml",
        cells=["rnn"],
        trials=2,
        final_seeds=2,
        fixed={"T": 30, "n_train": 512, "n_val": 64, "n_test": 64},
        pruner={"type": "none"},
        max_epochs=3,
    )
    spec = load_sweep("adding", "test", path)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    rows = run_sweep(spec, url, show_progress=False)
    assert (rows[0]["seeds"], rows[0]["diverged"]) == (1, 1)
    header, line = format_summary(rows).splitlines()
    assert line.endswith("  +1 diverged final(s)")  # after the last column, which stays under its header
    assert len(line.removesuffix("  +1 diverged final(s)")) == len(header)
    final = optuna.load_study(
        study_name=study_name(spec, StudyKey("simple", "rnn"), "final"), storage=make_storage(url)
    )
    assert [t.state for t in final.trials] == [TrialState.COMPLETE] * 2  # no retries
    diverged = next(t for t in final.trials if "diverged" in t.user_attrs)
    assert diverged.params["seed"] == 2
    run = tracking.client().get_run(diverged.user_attrs["mlflow_run_id"])
    assert run.data.tags["state"] == "pruned" and "diverged" in run.data.tags["failure_reason"]
    assert "test/loss" not in run.data.metrics

    report = write_report("adding", profile="test", out_dir=tmp_path / "reports", storage_url=url).read_text()
    row = next(line for line in report.split("## Results", 1)[1].splitlines() if line.startswith("| simple | rnn"))
    assert "| 1 (+1 diverged) |" in row
    assert "Complete: the 1 planned study finished its 2 trials and 2 final seeds" in report


def wait_for(predicate, timeout=120, interval=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out")


@pytest.fixture
def shared_store(tmp_path, monkeypatch):
    """This test process reads the same MLflow store as the worker subprocesses it starts."""
    for key, value in worker_env(tmp_path).items():
        if key.startswith(("MLFLOW_", "RNNBENCH_")):
            monkeypatch.setenv(key, value)
    return tmp_path


@pytest.mark.slow
def test_killed_worker_is_resumed_without_losing_or_redoing_trials(tmp_path, shared_store):
    # Trials of a few seconds: long enough to be caught mid-training, short enough for a loaded machine.
    path = write_sweep(
        tmp_path / "s.yaml",
        trials=3,
        final_seeds=1,
        max_epochs=20,
        fixed={"T": 20, "n_train": 2048, "n_val": 64, "n_test": 64},
        pruner={"type": "none"},
    )
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    beats = {"RNNBENCH_HEARTBEAT_INTERVAL": "1", "RNNBENCH_HEARTBEAT_GRACE": "3"}
    spec = load_sweep("adding", "test", path)
    name = study_name(spec, StudyKey("simple", "gru"))
    worker = start_worker(path, url, tmp_path, env_extra=beats)

    def study():
        try:
            return optuna.load_study(study_name=name, storage=make_storage(url))
        except KeyError:
            return None

    # Kill it mid-trial: after one trial finished and the next has an MLflow run (i.e. is training).
    try:
        wait_for(
            lambda: (
                study()
                and study().get_trials(states=FINISHED)
                and any("mlflow_run_id" in t.user_attrs for t in study().get_trials(states=(TrialState.RUNNING,)))
            ),
            timeout=600,
        )
        time.sleep(1.0)
    finally:
        worker.send_signal(signal.SIGKILL)  # also when waiting failed: never leave a worker behind
        worker.wait()
    before = {t.number: t.value for t in study().get_trials(states=FINISHED)}
    killed = study().get_trials(states=(TrialState.RUNNING,))
    assert len(killed) == 1

    time.sleep(4)  # past the heartbeat grace period
    result = subprocess.run(
        sweep_command(path, url), env=worker_env(tmp_path, beats), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    after = study().get_trials()
    assert {t.number: t.value for t in after if t.number in before} == before  # kept, not redone
    assert after[killed[0].number].state == TrialState.FAIL
    assert len([t for t in after if t.state in FINISHED]) == 3
    dead_run = tracking.client().get_run(killed[0].user_attrs["mlflow_run_id"])
    assert dead_run.info.status == "KILLED" and dead_run.data.tags["failure_reason"].startswith("process gone")


def assert_concurrent_workers_split_the_work(tmp_path, storage_url):
    path = write_sweep(
        tmp_path / "s.yaml",
        trials=6,
        final_seeds=2,
        max_epochs=3,
        pruner={"type": "none"},
        fixed={"T": 8, "n_train": 1024, "n_val": 64, "n_test": 64},
    )
    spec = load_sweep("adding", "test", path)
    # As for several workers (docs/sweeps.md): create the MLflow store and experiment once, then start the workers.
    tracking.ensure_experiment("adding")
    workers = [start_worker(path, storage_url, tmp_path) for _ in range(3)]
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    storage = make_storage(storage_url)
    study = optuna.load_study(study_name=study_name(spec, StudyKey("simple", "gru")), storage=storage)
    finished = study.get_trials(states=FINISHED)
    assert len(finished) == 6
    run_ids = [t.user_attrs["mlflow_run_id"] for t in finished]
    trial_runs = [
        r
        for r in runs_of("adding")
        if r.data.tags.get("stage") == "trial" and r.data.tags.get("optuna_study") == study.study_name
    ]
    per_trial = collections.Counter(r.data.tags["optuna_trial"] for r in trial_runs)
    assert sorted(run_ids) == sorted(r.info.run_id for r in trial_runs)  # exactly one run per trial
    assert all(count == 1 for count in per_trial.values())
    finals = optuna.load_study(study_name=study_name(spec, StudyKey("simple", "gru"), "final"), storage=storage)
    seeds = [t.params["seed"] for t in finals.get_trials(states=(TrialState.COMPLETE,))]
    assert sorted(seeds) == [1, 2]  # final_seeds: 2 -> the two seeds after the search seed 0


@pytest.mark.slow
def test_three_concurrent_workers_on_the_embedded_storage(tmp_path, shared_store):
    assert_concurrent_workers_split_the_work(tmp_path, f"sqlite:///{tmp_path / 'optuna.db'}")


def postgres_url() -> str | None:
    url = os.environ.get("RNNBENCH_TEST_POSTGRES")
    if not url:
        return None
    host_port = url.split("@")[-1].split("/")[0]
    host, _, port = host_port.partition(":")
    try:
        socket.create_connection((host, int(port or 5432)), timeout=2).close()
    except OSError:
        return None
    return url


@pytest.mark.slow
@pytest.mark.postgres
def test_three_concurrent_workers_on_postgresql(tmp_path, shared_store):
    url = postgres_url()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL: set RNNBENCH_TEST_POSTGRES (see .ci/run)")
        pytest.skip("no PostgreSQL server reachable: set RNNBENCH_TEST_POSTGRES=postgresql://user@host:port/db")
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)  # a fresh database schema state for this test
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"))
    assert_concurrent_workers_split_the_work(tmp_path, url)


def test_an_interrupted_and_resumed_sweep_ends_with_the_trial_points_of_an_uninterrupted_one(tmp_path, monkeypatch):
    """Issue 25: a trial stopped by Ctrl-C was retried at a new point (lr 0.00969 -> 0.00461), so the
    resumed sweep's results differed. Its retry is queued at its own parameters, and the trials after it
    draw what they would have drawn: the same points, TPE's model-based ones included. The finished
    study run keeps no stale `failure_reason`, and the terminal's and the report's counts agree."""
    from bench import interrupts
    from bench.cli import main
    from bench.results import read_task_runs
    from bench.sweep import summary_rows

    path = write_sweep(
        tmp_path / "s.yaml",
        trials=4,
        startup_trials=2,
        final_seeds=1,
        max_epochs=1,
        pruner={"type": "none"},
        fixed={"T": 4, "n_train": 128, "n_val": 32, "n_test": 32, "batch_size": 32},
    )
    spec = load_sweep("adding", "test", path)
    open_run = tracking.open_run

    def sweep(name: str, interrupt: str | None = None) -> tuple[list[int], str]:
        store = tmp_path / name
        store.mkdir()
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
        url = f"sqlite:///{store / 'optuna.db'}"

        def open_then_signal(experiment_id, run_name, tags):  # Ctrl-C once this trial's run exists
            run_id = open_run(experiment_id, run_name, tags)
            if interrupt and run_name.endswith(interrupt) and not interrupts.received():
                os.kill(os.getpid(), signal.SIGINT)
                while not interrupts.received():  # recorded by the watcher thread: stops at the next batch
                    time.sleep(0.01)
            return run_id

        monkeypatch.setattr(tracking, "open_run", open_then_signal)
        argv = ["sweep", "--task", "adding", "--profile", "test", "--file", str(path), "--storage", url]
        codes = [main([*argv, "--no-progress"])]
        if interrupt:
            monkeypatch.setattr(tracking, "open_run", open_run)
            codes.append(main([*argv, "--no-progress"]))  # the resume
        return codes, url

    codes, plain = sweep("plain")
    assert codes == [0]
    codes, resumed = sweep("interrupted", interrupt="/trial1")
    assert codes == [130, 0]

    def points(url: str) -> list[dict]:
        study = optuna.load_study(study_name=study_name(spec, spec.studies[0]), storage=make_storage(url))
        return [t.params for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]

    assert len(points(plain)) == spec.trials and points(resumed) == points(plain)
    study = optuna.load_study(study_name=study_name(spec, spec.studies[0]), storage=make_storage(resumed))
    (stopped,) = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL]
    assert stopped.number == 1 and "interrupted" in stopped.user_attrs
    (retry,) = [t for t in study.get_trials(deepcopy=False) if t.system_attrs.get("failed_trial") == 1]
    assert retry.params == stopped.params and retry.state == TrialState.COMPLETE

    runs = tracking.client().search_runs([tracking.client().get_experiment_by_name("adding").experiment_id])
    assert all(
        not r.data.tags.get("failure_reason", "").startswith("interrupted") for r in runs if r.info.status == "FINISHED"
    )
    assert any(r.info.status == "KILLED" for r in runs)  # the interrupted trial's own run says what happened
    (row,) = summary_rows(spec, make_storage(resumed))
    (study_runs,) = read_task_runs("adding", "test")[0]
    counts = study_runs.state_counts()
    assert (row["complete"], row["pruned"], row["failed"]) == (counts["complete"], counts["pruned"], counts["failed"])
    assert (row["complete"], row["failed"], counts["interrupted"]) == (4, 0, 1)
