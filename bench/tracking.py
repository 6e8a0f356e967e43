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

from bench.errors import UserError, first_line
from bench.paths import ROOT, artifact_root


# -- the MLflow schema: every tag, tag value and metric name a writer sets and a reader reads ---------
class Tag:
    STAGE = "stage"  # one of Stage
    STATE = "state"  # one of State, set when the run closes
    FAILURE_REASON = "failure_reason"
    TASK, VARIANT, CELL, SEED = "task", "variant", "cell", "seed"
    PROFILE = "profile"  # the sweep profile (study, trial, final runs)
    GRID = "grid"  # the sweep grid point, "train_subset=500:embedding_vectors=glove-6b-50d"
    OPTUNA_STUDY, OPTUNA_TRIAL, OPTUNA_STORAGE, OPTUNA_VERSION = (
        "optuna_study", "optuna_trial", "optuna_storage", "optuna_version")
    BEST_TRIAL = "best_trial"  # final-seed runs: the search trial whose configuration they retrain
    SWEEP_FILE = "sweep_file"
    GIT_COMMIT, HARDWARE, DEVICE, TORCH_VERSION = "git_commit", "hardware", "device", "torch_version"
    DATASET_FINGERPRINT, PARAM_COUNT = "dataset_fingerprint", "param_count"
    ARM, ABLATION = "arm", "ablation"  # horizon runs: "simple/rnn" or "simple/rnn/irnn"; the ablation name
    HORIZON_PROFILE, HORIZON_SPEC = "horizon_profile", "horizon_spec"  # the spec's fingerprint
    HORIZON_AXIS, HORIZON_VALUE, HORIZON_MARGIN = "horizon_axis", "horizon_value", "horizon_margin"
    CONFIG_SOURCE = "config_source"  # where a horizon arm's configuration came from
    CORPUS, EMBEDDINGS_FILE = "corpus", "embeddings_file"  # pretraining runs


class Stage:
    STUDY, TRIAL, FINAL = "study", "trial", "final"  # a sweep's parent run, search trials, final seeds
    HORIZON, PRETRAIN = "horizon", "pretrain"
    SWEPT = (STUDY, TRIAL, FINAL)


class State:
    COMPLETE, PRUNED, FAILED, INTERRUPTED = "complete", "pruned", "failed", "interrupted"


class Metric:
    PARAM_COUNT = "params/count"
    SECONDS_PER_EPOCH = "time/seconds_per_epoch"
    TRAIN_EXAMPLES = "data/train_examples"
    EPOCHS_TRAINED = "epochs_trained"
    PROBE_PREFIX = "probe/"

    @staticmethod
    def test(name: str) -> str:
        return f"test/{name}"

    @staticmethod
    def baseline(name: str) -> str:
        """The memoryless baseline of a metric, as logged next to it: baseline/loss, baseline/acc."""
        return f"baseline/{name}"


def safe_url(url: str) -> str:
    """Storage URL without a password, for tags and messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


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
        raise UserError(f"cannot reach the MLflow store {tracking_uri()}: {first_line(error)}") from None
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

    Tag `state` (Tag.STATE): complete (FINISHED), failed (FAILED, reason in tag `failure_reason`), interrupted
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
        close_run(run_id, "FINISHED", State.PRUNED, str(error))
        raise
    except KeyboardInterrupt:
        close_run(run_id, "KILLED", State.INTERRUPTED, "interrupted by the user")
        raise
    except BaseException as error:
        mlflow_client.log_text(run_id, traceback.format_exc(), "traceback.txt")
        close_run(run_id, "FAILED", State.FAILED, f"{type(error).__name__}: {error}")
        raise
    else:
        close_run(run_id, "FINISHED", State.COMPLETE)


def close_run(run_id: str, status: str, state: str, reason: str = "") -> None:
    mlflow_client = client()
    mlflow_client.set_tag(run_id, Tag.STATE, state)
    if reason:
        mlflow_client.set_tag(run_id, Tag.FAILURE_REASON, reason.splitlines()[0][:500])
    mlflow_client.set_terminated(run_id, status)


# -- a sweep study's parent run: opened once by whichever worker gets there first, closed by the one
# that sees every final seed finished ---------------------------------------------------------------
def open_parent_run(experiment: str, run_name: str, tags: dict, params: dict) -> str:
    """Create the parent run of a group of runs (left RUNNING: its children are still to come)."""
    experiment_id = ensure_experiment(experiment)
    all_tags = {k: str(v) for k, v in tags.items()}
    all_tags["mlflow.runName"] = run_name
    run = client().create_run(experiment_id, run_name=run_name, tags=all_tags)
    log_params(run.info.run_id, params)
    return run.info.run_id


def discard_parent_run(run_id: str) -> None:
    """A parent run that lost the race to another worker's: deleted, so the study has one."""
    client().delete_run(run_id)


def finish_parent_run(run_id: str) -> None:
    close_run(run_id, "FINISHED", State.COMPLETE)


def log_params(run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    client().log_batch(run_id, params=[Param(key, str(value)) for key, value in params.items()])


def log_metrics(run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client().log_batch(run_id, metrics=[Metric(key, float(value), now, step) for key, value in metrics.items()])
