"""The one place that knows where results go: tracking URI, experiments, run lifecycle.

Imports mlflow lazily; nothing here imports torch or Lightning.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import time
import traceback
from typing import Iterator

from bench.errors import UserError
from bench.paths import ROOT, artifact_root


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else `sqlite:///mlflow.db` at the repo root (MLflow 3's default
    file name, made absolute so every command and worker finds the same store)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ROOT / 'mlflow.db'}"


def client():
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri())


def ensure_experiment(name: str) -> str:
    """The experiment's id, creating it (with an absolute artifact location) if needed.
    Safe when several workers race to create it."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        # Creating a SQLite store (and its tables) from several processes at once can fail.
        from filelock import FileLock

        with FileLock(uri.removeprefix("sqlite:///") + ".lock", timeout=120):
            return _ensure_experiment(name)
    return _ensure_experiment(name)


def _ensure_experiment(name: str) -> str:
    mlflow_client = client()
    try:
        experiment = mlflow_client.get_experiment_by_name(name)
    except Exception as error:  # unreachable server, unreadable database, ...
        raise UserError(f"cannot reach the MLflow store {tracking_uri()}: {str(error).splitlines()[0]}") from None
    if experiment is not None:
        if "mlflow.experimentKind" not in experiment.tags:
            mlflow_client.set_experiment_tag(experiment.experiment_id, "mlflow.experimentKind", "custom_model_development")
        return experiment.experiment_id
    artifact_location = None
    if not tracking_uri().startswith(("http://", "https://", "databricks")):
        artifact_location = (artifact_root() / name).as_uri()
    try:
        # "custom_model_development" makes MLflow 3's UI open the model-training (runs) view,
        # not the GenAI view where runs are hidden behind a toggle.
        return mlflow_client.create_experiment(name, artifact_location=artifact_location,
                                               tags={"mlflow.experimentKind": "custom_model_development"})
    except Exception:
        experiment = mlflow_client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def hardware() -> str:
    """What the run ran on: the GPU's name, or the CPU model and core count."""
    import torch

    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name()}"
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {model}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def git_commit() -> str:
    """The code version of a run: commit hash, with `-dirty` if the tree has local changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@contextlib.contextmanager
def tracked_run(experiment: str, run_name: str, tags: dict, parent_run_id: str | None = None,
                finished_on: tuple[type[BaseException], ...] = ()) -> Iterator[str]:
    """Create an MLflow run and always close it, so the store never keeps a run stuck in RUNNING.

    Tag `state`: complete (FINISHED), failed (FAILED, reason in tag `failure_reason`), interrupted
    (KILLED), or pruned for the exceptions in `finished_on` (FINISHED, stopped early on purpose).
    """
    mlflow_client = client()
    experiment_id = ensure_experiment(experiment)
    all_tags = {k: str(v) for k, v in tags.items()}
    all_tags["mlflow.runName"] = run_name
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = mlflow_client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    run_id = run.info.run_id
    try:
        yield run_id
    except finished_on as error:
        close_run(run_id, "FINISHED", "pruned", str(error))
        raise
    except KeyboardInterrupt:
        close_run(run_id, "KILLED", "interrupted", "interrupted by the user")
        raise
    except BaseException as error:
        mlflow_client.log_text(run_id, traceback.format_exc(), "traceback.txt")
        close_run(run_id, "FAILED", "failed", f"{type(error).__name__}: {error}")
        raise
    else:
        close_run(run_id, "FINISHED", "complete")


def close_run(run_id: str, status: str, state: str, reason: str = "") -> None:
    mlflow_client = client()
    mlflow_client.set_tag(run_id, "state", state)
    if reason:
        mlflow_client.set_tag(run_id, "failure_reason", reason.splitlines()[0][:500])
    mlflow_client.set_terminated(run_id, status)


def log_params(run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    client().log_batch(run_id, params=[Param(key, str(value)) for key, value in params.items()])


def log_metrics(run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client().log_batch(run_id, metrics=[Metric(key, float(value), now, step) for key, value in metrics.items()])
