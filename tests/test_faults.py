"""Faults: kill -9 / Ctrl-C / SIGTERM at any moment, then resume at once; runs are closed right and
budgets stay exact."""

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench import stores, tracking
from bench.interrupts import NOTICE
from bench.sweep import make_storage, study_name
from bench.sweep_config import load_sweep
from tests.sweep_helpers import ROOT, sweep_command, worker_env, write_sweep

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
BEATS = {
    "RNNBENCH_HEARTBEAT_INTERVAL": "1",
    "RNNBENCH_HEARTBEAT_GRACE": "3",
    "RNNBENCH_POLL_SECONDS": "0.5",
    "OMP_NUM_THREADS": "1",
}


@pytest.fixture
def shared_store(tmp_path, monkeypatch, empty_mlflow_store):
    """This test process reads the same MLflow store as the worker subprocesses it starts: a copy of an
    empty store whose tables exist (creating them costs seconds per test)."""
    shutil.copy(empty_mlflow_store, tmp_path / "mlflow.db")
    for key, value in worker_env(tmp_path).items():
        if key.startswith(("MLFLOW_", "RNNBENCH_")):
            monkeypatch.setenv(key, value)
    return tmp_path


def all_runs(task: str) -> list:
    client = tracking.client()
    experiment = client.get_experiment_by_name(task)
    return client.search_runs([experiment.experiment_id], max_results=5000) if experiment else []


def tiny_sweep(tmp_path):
    # 2 studies x (6 trials + 4 final seeds), about a second each: enough work left for all ten kills.
    return write_sweep(
        tmp_path / "s.yaml",
        cells=["gru", "rnn"],
        trials=6,
        final_seeds=4,
        max_epochs=3,
        pruner={"type": "none"},
        fixed={"T": 6, "n_train": 512, "n_val": 64, "n_test": 64},
    )


class Store:
    def __init__(self, spec, url):
        self.spec, self.url = spec, url

    def trials(self, stage="search"):
        found = []
        for key in self.spec.studies:
            try:
                study = optuna.load_study(study_name=study_name(self.spec, key, stage), storage=make_storage(self.url))
            except KeyError:
                continue
            found += study.get_trials(deepcopy=False)
        return found

    def finished(self) -> int:
        return sum(t.state in FINISHED for t in self.trials() + self.trials("final"))

    def moment_reached(self, moment: str, finished_before: int) -> bool:
        search, final = self.trials(), self.trials("final")
        if moment == "trial":  # a trial (or, once the search is over, a final seed) is training
            return any(t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs for t in search + final)
        if moment == "between":  # right after a trial or final seed finished
            return self.finished() > finished_before
        if moment == "final":  # a final seed is training
            return any(t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs for t in final)
        return False


def kill_at_moments(tmp_path, signum: int, kills: int, seed: int) -> list[tuple[str, int | None, str]]:
    """Start a worker, send `signum` at a seeded random moment, resume at once; `kills` times. Returns
    (moment, exit code, output) per kill."""
    path = tiny_sweep(tmp_path)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    store = Store(load_sweep("adding", "test", path), url)
    rng = random.Random(seed)
    # Seeded: which moments, in which order, and when within each. The search comes before the final
    # seeds, so "final" moments go last; every kind of moment occurs.
    early = ["trial", "between", "start"] + [rng.choice(["trial", "between", "start"]) for _ in range(kills - 7)]
    late = ["final"] + [rng.choice(["final", "between", "trial"]) for _ in range(3)]
    moments = rng.sample(early, len(early)) + rng.sample(late, len(late))
    history = []
    for moment in moments:
        counts = store.finished()
        worker = subprocess.Popen(
            sweep_command(path, url),
            env=worker_env(tmp_path, BEATS),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.time() + 240
        if moment == "start":  # while it starts: imports, store checks, the parent run's creation
            time.sleep(rng.uniform(0.5, 12.0))
        else:
            while time.time() < deadline and worker.poll() is None and not store.moment_reached(moment, counts):
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.4))
        if worker.poll() is None:
            worker.send_signal(signum)
        output = worker.communicate(timeout=180)[0]
        history.append((moment, worker.returncode, output))
    finish = subprocess.run(
        sweep_command(path, url), env=worker_env(tmp_path, BEATS), cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert finish.returncode == 0, finish.stdout + finish.stderr
    assert_sweep_exact(store)
    return history


def assert_sweep_exact(store: Store) -> None:
    spec = store.spec
    for key in spec.studies:
        storage = make_storage(store.url)
        search = optuna.load_study(study_name=study_name(spec, key), storage=storage).get_trials(deepcopy=False)
        assert sum(t.state in FINISHED for t in search) == spec.trials, [t.state for t in search]
        final = optuna.load_study(study_name=study_name(spec, key, "final"), storage=storage).get_trials(deepcopy=False)
        assert sorted(t.params["seed"] for t in final if t.state == TrialState.COMPLETE) == spec.final_seeds
        for trial in search + final:
            assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL), trial
    tracking.ensure_experiment("adding")  # the next command that touches the experiment
    runs = all_runs("adding")
    assert [r.info.run_id for r in runs if r.info.status == "RUNNING"] == []
    for run in runs:
        if run.info.status == "KILLED":
            assert run.data.tags["state"] == "interrupted"
    finished_trial_runs = [t.user_attrs["mlflow_run_id"] for t in store.trials() if t.state in FINISHED]
    assert len(set(finished_trial_runs)) == len(finished_trial_runs)  # one MLflow run per finished trial


@pytest.mark.slow
def test_sweep_killed_at_ten_random_moments_and_resumed_at_once_finishes_exactly(tmp_path, shared_store):
    history = kill_at_moments(tmp_path, signal.SIGKILL, kills=10, seed=12)
    assert [code for _, code, _ in history] == [-signal.SIGKILL] * 10, history  # every kill landed
    assert {"trial", "between", "final", "start"} <= {moment for moment, _, _ in history}


@pytest.mark.slow
@pytest.mark.parametrize("signum, code, seed", [(signal.SIGINT, 130, 13), (signal.SIGTERM, 143, 14)])
def test_sweep_interrupted_at_ten_random_moments_exits_128_plus_signal_and_resumes_exactly(
    tmp_path, shared_store, signum, code, seed
):
    history = kill_at_moments(tmp_path, signum, kills=10, seed=seed)
    name = signal.Signals(signum).name
    for moment, exit_code, output in history:
        # The signal came after the work ended: 0 (nothing left to stop), or -signum while the interpreter
        # finalizes (Python restores the default handlers then and the process dies of it; a shell reports
        # that as 128+signal too).
        finished = exit_code in (0, -signum) and "look at the runs" in output
        assert exit_code == code or finished, f"signal at moment {moment!r}: exit code {exit_code}\n{output}"
        assert "Traceback" not in output, output
        assert finished or re.fullmatch(
            rf"interrupted by {name}: \d+ open MLflow run\(s\) closed as KILLED; run the same command to resume",
            output.strip().splitlines()[-1],
        ), output


# -- signals during one training ------------------------------------------------------------------------
def train_command(*knobs: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench",
        "train",
        "--task",
        "adding",
        "--no-progress",
        "T=6",
        "n_train=20000",
        "n_val=64",
        "n_test=64",
        "max_epochs=50",
        "batch_size=16",
        *knobs,
    ]


def run_of_experiment(tag: str, value: str):
    runs = [r for r in all_runs("adding") if r.data.tags.get(tag) == value]
    assert len(runs) == 1, runs
    return runs[0]


def interrupt_when(command: list[str], tmp_path, ready, signum: int, cwd=ROOT) -> subprocess.Popen:
    """Start `command` as a worker, send it `signum` once `ready()` holds (or after 240 s), and wait."""
    worker = subprocess.Popen(
        command,
        env=worker_env(tmp_path, {"OMP_NUM_THREADS": "1"}),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not ready():
        time.sleep(0.2)
    worker.children = children(worker.pid)
    worker.signalled_at = time.time()
    worker.send_signal(signum)
    worker.out, worker.err = worker.communicate(timeout=120)
    return worker


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_train_closes_its_run_as_killed_and_exits_128_plus_signal(tmp_path, shared_store, signum, code):
    ready = lambda: [r for r in all_runs("adding") if r.data.metrics.get("val/loss")]  # noqa: E731
    worker = interrupt_when(train_command(), tmp_path, ready, signum)
    out, err = worker.out, worker.err
    assert worker.returncode == code, out + err
    name = signal.Signals(signum).name
    assert err.strip().splitlines() == [  # the first signal is announced; the work stops after its batch
        NOTICE,
        f"interrupted by {name}: 1 open MLflow run(s) closed as KILLED; run the same command to resume",
    ]
    assert time.time() - worker.signalled_at < 30  # one batch and the clean-up, far from a stall
    run = run_of_experiment("pid", str(worker.pid))
    assert run.info.status == "KILLED" and run.data.tags["state"] == "interrupted"
    assert run.data.tags["failure_reason"].startswith(f"interrupted by {name}")


@pytest.mark.slow
def test_a_run_left_running_by_sigkill_is_closed_by_the_next_command(tmp_path, shared_store):
    code = (
        "from bench import tracking; import os, signal; e = tracking.ensure_experiment('adding'); "
        "tracking.open_run(e, 'doomed', {'stage': 'trial'}); os.kill(os.getpid(), signal.SIGKILL)"
    )
    doomed = subprocess.run([sys.executable, "-c", code], env=worker_env(tmp_path), cwd=ROOT)
    assert doomed.returncode == -signal.SIGKILL
    run = run_of_experiment("mlflow.runName", "doomed")
    assert run.info.status == "RUNNING"
    tracking.ensure_experiment("adding")  # what every train / sweep / horizon / report does first
    run = tracking.client().get_run(run.info.run_id)
    assert run.info.status == "KILLED" and run.data.tags["state"] == "interrupted"
    assert run.data.tags["failure_reason"].startswith(f"process gone (host {tracking.HOST} pid ")


def test_a_run_of_a_live_process_is_left_alone(shared_store):
    experiment = tracking.ensure_experiment("adding")
    run_id = tracking.open_run(experiment, "alive", {})
    tracking._open_runs.discard(run_id)  # as if another live process on this host owned it
    tracking.close_orphan_runs(experiment)
    assert tracking.client().get_run(run_id).info.status == "RUNNING"
    tracking.close_run(run_id, "FINISHED", "complete")


def test_an_interrupt_inside_a_tracked_run_closes_it_as_killed(shared_store):
    from bench.interrupts import Interrupted

    with pytest.raises(Interrupted):
        with tracking.tracked_run("adding", "sigterm", {"stage": "test"}) as run_id:
            raise Interrupted(signal.SIGTERM)  # what a safe point raises once SIGTERM arrived
    run = tracking.client().get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["state"] == "interrupted"
    assert run.data.tags["failure_reason"] == "interrupted by SIGTERM; run the same command to resume"


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://bench:p@ss:w@rd@db-host:5432/optuna", "postgresql://bench:***@db-host:5432/optuna"),
        (
            "postgresql://bench:s3cr:et@db-host/optuna?sslmode=require",
            "postgresql://bench:***@db-host/optuna?sslmode=require",
        ),
        ("http://user:a@b@mlflow:5000", "http://user:***@mlflow:5000"),
        ("sqlite:////tmp/optuna.db", "sqlite:////tmp/optuna.db"),
        ("postgresql://bench@db-host/optuna", "postgresql://bench@db-host/optuna"),
    ],
)
def test_store_urls_are_shown_without_their_password(url, shown):
    assert stores.safe_url(url) == shown


def test_the_suite_leaves_sigalrm_to_its_caller(shared_store):
    """An alarm() set by the caller (pytest-timeout, a watchdog) still fires while a command trains, and
    after it: the suite takes neither SIGALRM nor the process timer."""
    from bench.cli import main

    fired = []

    def on_alarm(signum, frame):
        fired.append(signum)
        if len(fired) == 1:  # then Ctrl-C: the command stops after its current batch
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 2.0)
        code = main(train_command("n_train=4000", "max_epochs=20")[3:])
        assert signal.getsignal(signal.SIGALRM) is on_alarm
        signal.setitimer(signal.ITIMER_REAL, 0.1)  # and the caller's timer still works afterwards
        time.sleep(1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert code == 130 and fired == [signal.SIGALRM] * 2


def wait_for(condition, worker: subprocess.Popen, err: Path) -> None:
    deadline = time.time() + 240
    while not condition():
        assert worker.poll() is None and time.time() < deadline, err.read_text()
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["import", "database call", "data preparation"])
def test_a_second_ctrl_c_exits_at_once_and_the_next_command_closes_what_it_left(tmp_path, shared_store, phase):
    """The first Ctrl-C waits for a safe point; a second one ends the process at once, wherever it is:
    inside an import (torch runs C++ while Lightning imports), inside a database call (SQLite's busy
    wait, where Python runs no signal handler), inside data preparation (datasets' map)."""
    import sqlite3

    from tests.text_helpers import make_rows, write_split

    experiment, lock = "adding", None
    command = train_command()
    if phase == "data preparation":  # long reviews: tokenising a batch of 1,000 takes 2-3 s
        folder = tmp_path / "reviews"
        long = [{**row, "review": " ".join([row["review"]] * 100)} for row in make_rows(5000, 1)]
        write_split(folder, "train", long, "parquet")
        write_split(folder, "test", make_rows(200, 2), "parquet")
        experiment = "text-classification/reviews"
        command = [*command[:5], "text-classification", "--no-progress", f"data_dir={folder}"]
        command += ["text_column=review", "label_column=stars", "min_freq=1"]
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"  # read while the command runs
    env = worker_env(tmp_path, {"OMP_NUM_THREADS": "1"})
    with out.open("w") as stdout, err.open("w") as stderr:
        worker = subprocess.Popen(command, env=env, cwd=ROOT, stdout=stdout, stderr=stderr)
    if phase == "import":  # the command's block is printed: it imports Lightning now
        wait_for(lambda: "  store " in out.read_text(), worker, err)
    elif phase == "data preparation":  # tokenising has written its first batch; the next one (2-3 s) is running
        cache = tmp_path / "datasets"
        wait_for(lambda: list(cache.glob("tokenizers/*.json")) and list(cache.rglob("hf/**/tmp*")), worker, err)
        time.sleep(0.5)  # past the check at its start: the next check comes at the end of this batch
    else:  # training, then the store is locked: the next write of its metrics waits in SQLite
        wait_for(lambda: [r for r in all_runs("adding") if r.data.metrics.get("val/loss")], worker, err)
        lock = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        time.sleep(2)
    signalled = time.time()
    worker.send_signal(signal.SIGINT)
    wait_for(lambda: NOTICE in err.read_text(), worker, err)  # received (else the kernel merges the two)
    worker.send_signal(signal.SIGINT)
    try:
        worker.wait(timeout=60)
        took = time.time() - signalled
    finally:
        if lock:
            lock.execute("ROLLBACK")
            lock.close()
    assert worker.returncode == 130, err.read_text()
    assert took < 10, took  # not SQLite's 20 s busy wait later
    assert err.read_text().splitlines() == [NOTICE], err.read_text()  # at once: no clean-up, no traceback
    tracking.ensure_experiment(experiment)  # what the next command does first
    runs = all_runs(experiment)
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    if phase == "database call":
        (run,) = runs
        assert run.info.status == "KILLED" and run.data.tags["failure_reason"].startswith("process gone")


@pytest.mark.slow
def test_a_signal_during_tokenising_stops_within_a_batch_and_leaves_no_half_written_cache(tmp_path, shared_store):
    from tests.text_helpers import make_rows, write_split

    folder = tmp_path / "reviews"
    write_split(folder, "train", make_rows(60000, 1), "parquet")
    write_split(folder, "test", make_rows(2000, 2), "parquet")
    command = [*train_command()[:5], "text-classification", "--no-progress", f"data_dir={folder}"]
    command += ["text_column=review", "label_column=stars", "min_freq=1"]
    vocabulary_saved = lambda: list((tmp_path / "datasets" / "tokenizers").glob("*.json"))  # noqa: E731
    worker = interrupt_when(command, tmp_path, vocabulary_saved, signal.SIGINT)
    assert worker.returncode == 130, worker.err
    assert worker.err.strip().splitlines()[-2:] == [
        NOTICE,
        "interrupted by SIGINT: 0 open MLflow run(s) closed as KILLED; run the same command to resume",
    ], worker.err
    assert time.time() - worker.signalled_at < 20
    assert list((tmp_path / "datasets").rglob("tmp*")) == []  # datasets removed its half-written map


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


def gone(pid: int) -> bool:
    """No such process, or only its exit status left (a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, code, jobs",
    [(signal.SIGINT, 130, 1), (signal.SIGTERM, 143, 1), (signal.SIGINT, 130, 2), (signal.SIGTERM, 143, 2)],
)
def test_a_signal_during_horizon_closes_its_runs_as_killed_and_exits_128_plus_signal(
    tmp_path, shared_store, signum, code, jobs
):
    from tests.test_horizon import write_horizon

    # Runs of a few seconds each, so the signal lands while one of them is training.
    path = write_horizon(tmp_path / "h.yaml", cells=["gru"], ablation={})
    text = path.read_text().replace("n_train: 32", "n_train: 20000").replace("max_epochs: 1", "max_epochs: 3")
    path.write_text(text)
    command = [sys.executable, "-m", "bench", "horizon", "--task", "copy-memory", "--profile", "test"]
    tracking.ensure_experiment("copy-memory")  # the store exists before this test and the worker both read it
    ready = lambda: [r for r in all_runs("copy-memory") if r.data.metrics.get("val/loss")]  # noqa: E731
    # With --jobs 2 the signal goes to the main process only (`kill <pid>`, a scheduler), not to its workers.
    worker = interrupt_when([*command, "--file", str(path), "--jobs", str(jobs)], tmp_path, ready, signum)
    out, err = worker.out, worker.err
    assert worker.returncode == code, out + err
    name = signal.Signals(signum).name
    assert re.fullmatch(
        rf"interrupted by {name}: \d+ open MLflow run\(s\) closed as KILLED; run the same command to resume",
        err.strip().splitlines()[-1],
    ), err
    runs = all_runs("copy-memory")
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert killed and all(r.data.tags["state"] == "interrupted" for r in killed)
    # No pool process takes a queued job after the signal, and none outlives the command.
    late = [r.info.run_name for r in runs if r.info.start_time / 1000 > worker.signalled_at]
    assert late == [], late
    assert all(gone(pid) for pid in worker.children), worker.children


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_pretrain_embeddings_closes_its_run_as_killed_and_exits_128_plus_signal(
    tmp_path, shared_store, signum, code
):
    from tests.text_helpers import make_rows, write_split

    write_split(tmp_path, "corpus", [{"text": r["review"]} for r in make_rows(20000, 7)], "jsonl")
    knobs = ["seq_len=8", "min_freq=1", "max_epochs=3", "hidden=16", "embedding_size=12", "batch_size=16"]
    tracking.ensure_experiment("next-word")  # the store exists before this test and the worker both read it
    command = [sys.executable, "-m", "bench", "pretrain-embeddings", "--corpus", "tiny"]
    command += [f"corpus_file={tmp_path / 'corpus.jsonl'}", *knobs]

    def ready():  # inside training, not only the run's creation
        if not [r for r in all_runs("next-word") if r.info.status == "RUNNING"]:
            return False
        time.sleep(2)
        return True

    worker = interrupt_when(command, tmp_path, ready, signum, cwd=tmp_path)
    out, err = worker.out, worker.err
    assert worker.returncode == code, out + err
    name = signal.Signals(signum).name
    assert (
        err.strip().splitlines()[-1]
        == f"interrupted by {name}: 1 open MLflow run(s) closed as KILLED; run the same command to resume"
    ), err
    (run,) = all_runs("next-word")
    assert run.info.status == "KILLED" and run.data.tags["state"] == "interrupted"


POOL_SCRIPT = """
import multiprocessing, os, signal, time
from concurrent.futures import ProcessPoolExecutor
from bench import interrupts

def job(seconds):
    interrupts.checkpoint()
    time.sleep(seconds)
    return os.getpid()

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(2, mp_context=context, initializer=interrupts.install_in_pool_worker,
                               initargs=(context.RawValue("i", 0),))
    assert pool.submit(job, 0).result()
    processes = list(pool._processes.values())
    for process in processes:  # every pool process is between jobs now (Ctrl-C reaches the whole group)
        os.kill(process.pid, signal.SIGINT)
    time.sleep(1)
    try:
        pool.submit(job, 0).result()
        print("ran")
    except interrupts.Interrupted:
        print("refused")
    pool.shutdown()
    print("alive", sum(process.is_alive() for process in processes))
"""


def test_a_signal_to_a_pool_process_between_jobs_refuses_its_next_job_without_a_traceback(tmp_path):
    # A horizon with --jobs 2: Ctrl-C reaches an idle pool process too; raised in the pool's own loop it
    # printed a traceback and broke the pool (which then terminates the process still closing its run).
    script = tmp_path / "pool.py"
    script.write_text(POOL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["refused", "alive", "0"], done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
