"""The many-machines set-up of docs/sweeps.md, for real: an `mlflow server` process with a PostgreSQL backend
store, PostgreSQL Optuna storage, two workers, one of them killed mid-trial and restarted at once."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from bench.sweep import make_storage, study_name
from bench.sweep_config import load_sweep
from tests.sweep_helpers import ROOT, write_sweep

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def postgres_url() -> str | None:
    url = os.environ.get("RNNBENCH_TEST_POSTGRES")
    if not url:
        return None
    host, _, port = url.split("@")[-1].split("/")[0].partition(":")
    try:
        socket.create_connection((host, int(port or 5432)), timeout=2).close()
    except OSError:
        return None
    return url


@pytest.fixture
def databases():
    """Two fresh databases on the CI server: one for MLflow's backend store, one for Optuna."""
    url = postgres_url()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL: set RNNBENCH_TEST_POSTGRES (see .ci/run)")
        pytest.skip("no PostgreSQL server reachable: set RNNBENCH_TEST_POSTGRES=postgresql://user@host:port/db")
    import sqlalchemy

    names = [f"rnnbench_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("mlflow", "optuna")]
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    base = url.rsplit("/", 1)[0]
    yield [f"{base}/{name}" for name in names]
    with admin.connect() as connection:
        for name in names:
            connection.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(databases, tmp_path):
    backend, _ = databases
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            str(tmp_path / "served-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2).close()
            break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                os.killpg(server.pid, signal.SIGKILL)
                pytest.fail("mlflow server did not start")
            time.sleep(0.5)
    yield uri
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def worker(path, env) -> subprocess.Popen:
    # The storage URL travels in the environment (STORAGE), as `make sweep` passes it: never on argv.
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench",
            "sweep",
            "--task",
            "adding",
            "--profile",
            "test",
            "--file",
            str(path),
            "--no-progress",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_on_an_mlflow_server_and_postgresql_survive_a_kill_and_finish_exactly(
    tmp_path, databases, mlflow_server, monkeypatch
):
    _, optuna_url = databases
    path = write_sweep(
        tmp_path / "s.yaml",
        trials=4,
        final_seeds=2,
        max_epochs=3,
        pruner={"type": "none"},
        fixed={"T": 6, "n_train": 1024, "n_val": 64, "n_test": 64},
    )
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "STORAGE": optuna_url,
        "OMP_NUM_THREADS": "1",
        "RNNBENCH_CACHE": str(tmp_path / "datasets"),
        "RNNBENCH_CHECKPOINTS": str(tmp_path / "checkpoints"),
        "RNNBENCH_HEARTBEAT_INTERVAL": "1",
        "RNNBENCH_HEARTBEAT_GRACE": "3",
        "RNNBENCH_POLL_SECONDS": "0.5",
        "PYTHONUNBUFFERED": "1",
    }
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    spec = load_sweep("adding", "test", path)
    name = study_name(spec, spec.studies[0])
    workers = [worker(path, env), worker(path, env)]

    polled = []  # one storage for the polling: a new one every 0.2 s held a PostgreSQL connection each until
    # garbage-collected, and on a loaded machine (a longer wait) ran the server out of connections

    def running_with_run():
        polled[:] = polled or [make_storage(optuna_url)]
        try:
            study = optuna.load_study(study_name=name, storage=polled[0])
        except KeyError:
            return []
        return [t for t in study.get_trials(states=(TrialState.RUNNING,)) if "mlflow_run_id" in t.user_attrs]

    deadline = time.time() + 600
    while time.time() < deadline and not running_with_run():
        time.sleep(0.2)
    victim = running_with_run()[0].user_attrs["worker"]["pid"]
    killed = next(w for w in workers if str(w.pid) == str(victim))
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    workers = [w for w in workers if w is not killed] + [worker(path, env)]  # resumed at once
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    # A worker that ran out of work waited for the other: both summaries hold all final seeds, no "-".
    assert all("(n=2)" in output for output in outputs), outputs

    storage = make_storage(optuna_url)
    search = optuna.load_study(study_name=name, storage=storage).get_trials()
    assert sum(t.state in FINISHED for t in search) == 4
    assert all(t.state in (*FINISHED, TrialState.FAIL) for t in search)
    final = optuna.load_study(study_name=study_name(spec, spec.studies[0], "final"), storage=storage).get_trials()
    assert sorted(t.params["seed"] for t in final if t.state == TrialState.COMPLETE) == spec.final_seeds

    from bench import tracking

    client = tracking.client()
    experiment = client.get_experiment_by_name("adding")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    trial_runs = [r for r in runs if r.data.tags.get("stage") == "trial"]
    finished_ids = sorted(t.user_attrs["mlflow_run_id"] for t in search if t.state in FINISHED)
    assert sorted(r.info.run_id for r in trial_runs if r.data.tags["state"] in ("complete", "pruned")) == finished_ids
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    dead = [r for r in trial_runs if r.info.status == "KILLED"]
    assert len(dead) == 1 and dead[0].data.tags["failure_reason"].startswith("process gone")

    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "report",
            "--task",
            "adding",
            "--profile",
            "test",
            "--out",
            str(tmp_path / "reports"),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    text = (tmp_path / "reports" / "adding.md").read_text()
    assert "## Status\n\nComplete: the 1 planned study finished" in text
    assert (tmp_path / "reports" / "adding" / "summary.json").exists()
