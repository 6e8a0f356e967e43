"""The MLflow run records: experiments, the run lifecycle (every run closed), who owns a run, a study's
parent run, params, metrics and system metrics. Where the store is, and whether it can
work, is bench/stores.py's.

Imports mlflow lazily; nothing here imports torch or Lightning.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import traceback
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from bench import interrupts, stores
from bench.errors import RunFailed, failure_reason
from bench.paths import artifact_root

# The MLflow schema (every tag, tag value and metric name) is named in bench/run_keys.py, which data
# preparation imports without this module's store machinery; re-exported here for the writers and readers.
from bench.run_keys import Metric, Stage, State, Tag  # noqa: F401

# Lazy imports: heavy libraries (torch, Lightning, MLflow, Optuna, datasets, numpy, scipy) are
# imported inside the functions that use them, so `python -m bench --help` and `list` stay fast
# (tests/test_cli.py checks that they import no torch or Lightning).


def client():
    from mlflow.tracking import MlflowClient  # (lazy: mlflow)

    return MlflowClient(tracking_uri=stores.tracking_uri())


def ensure_experiment(name: str) -> str:
    """The experiment's id, creating it (with an absolute artifact location) if needed.
    Safe when several workers race to create it. Runs left RUNNING by a dead process are closed here,
    so the next command that touches an experiment finds them."""
    uri = stores.tracking_uri()
    stores.check_store(uri)
    with sqlite_creation_lock(uri):
        experiment_id = _ensure_experiment(name)
    close_orphan_runs(experiment_id)
    return experiment_id


@contextlib.contextmanager
def sqlite_creation_lock(url: str) -> Iterator[None]:
    """One process at a time per SQLite file while a store's tables may be created (MLflow's or
    Optuna's): creating them from several processes at once fails. Servers need no lock."""
    if not url.startswith("sqlite:///"):
        yield
        return
    with FileLock(url.removeprefix("sqlite:///") + ".lock", timeout=120):
        yield


def _ensure_experiment(name: str) -> str:
    mlflow_client = client()
    try:
        experiment = mlflow_client.get_experiment_by_name(name)
    except Exception as error:  # unreachable server, unreadable database, ...
        raise stores.unreachable(error) from None
    if experiment is not None:
        if "mlflow.experimentKind" not in experiment.tags:
            mlflow_client.set_experiment_tag(
                experiment.experiment_id, "mlflow.experimentKind", "custom_model_development"
            )
        return experiment.experiment_id
    artifact_location = None
    if not stores.tracking_uri().startswith(("http://", "https://", "databricks")):
        artifact_location = (artifact_root() / name).as_uri()
    try:
        # "custom_model_development" makes MLflow 3's UI open the model-training (runs) view,
        # not the GenAI view where runs are hidden behind a toggle.
        return mlflow_client.create_experiment(
            name, artifact_location=artifact_location, tags={"mlflow.experimentKind": "custom_model_development"}
        )
    except Exception:
        experiment = mlflow_client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


@contextlib.contextmanager
def tracked_run(
    experiment: str,
    run_name: str,
    tags: dict,
    parent_run_id: str | None = None,
    finished_on: tuple[type[BaseException], ...] = (),
) -> Iterator[str]:
    """Create an MLflow run and always close it, so the store never keeps a run stuck in RUNNING.

    Tag `state` (Tag.STATE): complete (FINISHED), failed (FAILED, reason in tag `failure_reason`), interrupted
    (KILLED), or pruned for the exceptions in `finished_on` (FINISHED, stopped early on purpose).
    """
    experiment_id = ensure_experiment(experiment)
    all_tags = dict(tags)
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run_id = open_run(experiment_id, run_name, all_tags)
    try:
        yield run_id
    except finished_on as error:
        close_run(run_id, "FINISHED", State.PRUNED, str(error))
        raise
    except (interrupts.Interrupted, KeyboardInterrupt) as error:
        close_run(run_id, "KILLED", State.INTERRUPTED, interrupted_reason(error))
        raise
    except BaseException as error:
        with contextlib.suppress(Exception):
            client().log_text(run_id, traceback.format_exc(), "traceback.txt")
        close_run(run_id, "FAILED", State.FAILED, failure_reason(error))
        if isinstance(error, RunFailed) and error.run_id is None:
            error.run_id = run_id  # the innermost run: the one that diverged
        raise
    else:
        close_run(run_id, "FINISHED", State.COMPLETE)


def interrupted_reason(error: BaseException) -> str:
    if isinstance(error, interrupts.Interrupted):
        return f"{error}; run the same command to resume"
    return "interrupted by SIGINT; run the same command to resume"  # a KeyboardInterrupt


# -- who owns a run: open runs of this process, and runs whose process is gone ------------------------
_open_runs: set[str] = set()
_interrupted_here: set[str] = set()  # this process's own runs closed as interrupted (where they were open)
HOST = socket.gethostname()


def process_start(pid: int) -> str:
    """When process `pid` started (clock ticks since boot, from /proc): with the pid, it names one
    process exactly, even after the pid is reused. Empty where /proc is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def owner_tags() -> dict[str, str]:
    return {Tag.HOST: HOST, Tag.PID: str(os.getpid()), Tag.PID_STARTED: process_start(os.getpid())}


def process_gone(tags: dict) -> bool:
    """True when the process that owns a run is known to be dead: same host and its pid is gone (or
    now names another process), or, on another host, its heartbeat tag is older than 5 intervals."""
    host, pid = tags.get(Tag.HOST), tags.get(Tag.PID)
    if not host or not pid:
        return False  # a run from before owners were recorded: nobody can tell
    if host == HOST:
        if not Path("/proc").is_dir():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return True
            except OSError:
                return False
            return False
        started = process_start(int(pid))
        return not started or started != tags.get(Tag.PID_STARTED, started)
    beat = tags.get(Tag.HEARTBEAT)
    return bool(beat) and time.time() - float(beat) > 5 * heartbeat_interval()


def heartbeat_interval() -> float:
    return float(os.environ.get("RNNBENCH_RUN_HEARTBEAT", "30"))


def open_run(experiment_id: str, run_name: str, tags: dict) -> str:
    """Create a RUNNING run owned by this process (host, pid), remembered so that an interrupt closes it."""
    all_tags = {
        **{k: str(v) for k, v in tags.items()},
        "mlflow.runName": run_name,
        **owner_tags(),
        Tag.HEARTBEAT: f"{time.time():.0f}",
    }
    interrupts.checkpoint()  # no run begins after a signal (a pool process between two jobs)
    run_id = client().create_run(experiment_id, run_name=run_name, tags=all_tags).info.run_id
    _open_runs.add(run_id)
    _start_heartbeat()
    return run_id


def adopt_run(run_id: str, tags: dict | None = None) -> None:
    """Take over a run another process opened (a study's parent run, shared by workers): reopen it if
    an interrupt or a dead owner closed it, and record this process as its owner (and `tags`)."""
    mlflow_client = client()
    run = mlflow_client.get_run(run_id)
    if run.info.status == "FINISHED":
        return  # its sweep is complete: nothing left to own
    if run.info.status != "RUNNING":
        mlflow_client.update_run(run_id, status="RUNNING")
    if Tag.FAILURE_REASON in run.data.tags:  # why it stopped last time: not true of a run going on
        mlflow_client.delete_tag(run_id, Tag.FAILURE_REASON)
    own = {**owner_tags(), Tag.STATE: State.RUNNING, Tag.HEARTBEAT: f"{time.time():.0f}", **(tags or {})}
    for key, value in own.items():
        mlflow_client.set_tag(run_id, key, value)
    _open_runs.add(run_id)
    _start_heartbeat()


def discard_run(run_id: str) -> None:
    """Delete a run this process created in vain (another worker's run won a race)."""
    client().delete_run(run_id)
    _open_runs.discard(run_id)


def close_run(run_id: str, status: str, state: str, reason: str = "") -> None:
    mlflow_client = client()
    mlflow_client.set_tag(run_id, Tag.STATE, state)
    if reason:
        mlflow_client.set_tag(run_id, Tag.FAILURE_REASON, reason.splitlines()[0][:500])
    mlflow_client.set_terminated(run_id, status)
    if state == State.INTERRUPTED and run_id in _open_runs:
        _interrupted_here.add(run_id)
    _open_runs.discard(run_id)


def close_interrupted(error: BaseException) -> int:
    """On SIGINT/SIGTERM: close every run this process still has open as KILLED, state=interrupted.
    Returns how many of its runs the interrupt closed (here, or already where they were open)."""
    for run_id in list(_open_runs):
        try:
            close_run(run_id, "KILLED", State.INTERRUPTED, interrupted_reason(error))
        except Exception:  # noqa: BLE001 - the next command closes it as "process gone"
            _open_runs.discard(run_id)
    return len(_interrupted_here)


def close_orphan_runs(experiment_id: str) -> int:
    """Close runs left RUNNING by a process that is gone (SIGKILL, power cut): KILLED, state=interrupted."""
    mlflow_client = client()
    closed = 0
    for run in mlflow_client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=5000):
        if run.info.run_id in _open_runs or not process_gone(run.data.tags):
            continue
        tags = run.data.tags
        try:
            close_run(
                run.info.run_id,
                "KILLED",
                State.INTERRUPTED,
                f"process gone (host {tags.get(Tag.HOST)} pid {tags.get(Tag.PID)}); run the same command to resume",
            )
            closed += 1
        except Exception:  # noqa: BLE001 - another command closed it first
            pass
    return closed


_heartbeat = {"thread": None}


def _start_heartbeat() -> None:
    """Runs on a shared server (other machines cannot check our pid) carry a heartbeat tag."""
    if stores.tracking_uri().startswith("sqlite:") or _heartbeat["thread"] is not None:
        return

    def beat() -> None:
        while True:
            time.sleep(heartbeat_interval())
            for run_id in list(_open_runs):
                with contextlib.suppress(Exception):
                    client().set_tag(run_id, Tag.HEARTBEAT, f"{time.time():.0f}")

    _heartbeat["thread"] = threading.Thread(target=beat, name="run-heartbeat", daemon=True)
    _heartbeat["thread"].start()


# -- a sweep study's parent run: opened once by whichever worker gets there first, closed by the one
# that sees every final seed finished ---------------------------------------------------------------
def open_parent_run(experiment: str, run_name: str, tags: dict, params: dict) -> str:
    """Create the parent run of a group of runs (left RUNNING: its children are still to come)."""
    run_id = open_run(ensure_experiment(experiment), run_name, {**tags, Tag.STATE: State.RUNNING})
    log_params(run_id, params)
    return run_id


def discard_parent_run(run_id: str) -> None:
    """A parent run that lost the race to another worker's: deleted, so the study has one."""
    client().delete_run(run_id)
    _open_runs.discard(run_id)


def finish_parent_run(run_id: str) -> None:
    close_run(run_id, "FINISHED", State.COMPLETE)


def log_params(run_id: str, params: dict) -> None:
    from mlflow import entities  # (lazy: mlflow)

    client().log_batch(run_id, params=[entities.Param(key, str(value)) for key, value in params.items()])


def log_metrics(run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    from mlflow import entities  # (lazy: mlflow)

    now = int(time.time() * 1000)
    values = [entities.Metric(key, float(value), now, step) for key, value in metrics.items()]
    client().log_batch(run_id, metrics=values)


# -- what a training run records besides its metrics: system metrics (its data: bench/dataset_record.py) --
@contextlib.contextmanager
def system_metrics(run_id: str) -> Iterator[None]:
    """CPU, memory, disk, network and (where nvidia-ml-py finds one) GPU use, sampled by MLflow's own
    monitor into the run's `system/...` metrics (its System metrics tab) every 10 s, in a daemon thread
    that never holds the process at exit. The monitor stops when the block ends, however it ends (a
    finished, failed or interrupted run), and writes what it sampled since its last write plus one
    sample of the time since. Off with SYSTEM_METRICS=0."""
    if not stores.system_metrics_enabled():
        yield
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor  # (lazy: mlflow)

    monitor = SystemMetricsMonitor(
        run_id, sampling_interval=stores.SYSTEM_METRICS_INTERVAL, tracking_uri=stores.tracking_uri()
    )
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()  # wakes the thread at once (an event, not a sleep) and waits for it
        with contextlib.suppress(Exception):  # a store that went away: the run's own close reports it
            if pending := monitor.aggregate_metrics():  # sampled, not yet written when the block ended
                monitor.publish_metrics(pending)
            monitor.collect_metrics()  # and the stretch since: a run shorter than the interval has a sample
            monitor.publish_metrics(monitor.aggregate_metrics())
            monitor.mlflow_logger.flush()
