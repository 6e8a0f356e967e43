"""The one place that knows where results go: tracking URI, experiments, run lifecycle.

Imports mlflow lazily; nothing here imports torch or Lightning.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import subprocess
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from bench import interrupts
from bench.errors import UserError, failure_reason, first_line
from bench.paths import ROOT, artifact_root

# Lazy imports: heavy libraries (torch, Lightning, MLflow, Optuna, datasets, numpy, scipy) are
# imported inside the functions that use them, so `python -m bench --help` and `list` stay fast
# (tests/test_cli.py checks that they import no torch or Lightning).


# -- the MLflow schema: every tag, tag value and metric name a writer sets and a reader reads ---------
class Tag:
    STAGE = "stage"  # one of Stage
    STATE = "state"  # one of State, set when the run closes
    FAILURE_REASON = "failure_reason"
    TASK, VARIANT, CELL, SEED = "task", "variant", "cell", "seed"
    PROFILE = "profile"  # the sweep profile (study, trial, final runs)
    GRID = "grid"  # the sweep grid point, "train_subset=500:embedding_vectors=glove-6b-50d"
    OPTUNA_STUDY, OPTUNA_TRIAL, OPTUNA_STORAGE, OPTUNA_VERSION = (
        "optuna_study",
        "optuna_trial",
        "optuna_storage",
        "optuna_version",
    )
    BEST_TRIAL = "best_trial"  # final-seed runs: the search trial whose configuration they retrain
    SWEEP_FILE = "sweep_file"
    GIT_COMMIT, HARDWARE, DEVICE, TORCH_VERSION = "git_commit", "hardware", "device", "torch_version"
    DATASET_FINGERPRINT, PARAM_COUNT = "dataset_fingerprint", "param_count"
    ARM, ABLATION = "arm", "ablation"  # horizon runs: "simple/rnn" or "simple/rnn/irnn"; the ablation name
    HORIZON_PROFILE, HORIZON_SPEC = "horizon_profile", "horizon_spec"  # the spec's fingerprint
    HORIZON_AXIS, HORIZON_VALUE, HORIZON_MARGIN = "horizon_axis", "horizon_value", "horizon_margin"
    CONFIG_SOURCE = "config_source"  # where a horizon arm's configuration came from
    CORPUS, EMBEDDINGS_FILE = "corpus", "embeddings_file"  # pretraining runs
    # who owns a RUNNING run: its process (host, pid, the pid's start time) and, on a shared server, a heartbeat
    HOST, PID, PID_STARTED, HEARTBEAT = "host", "pid", "pid_started", "heartbeat"
    SWEEP_STUDIES = "sweep_studies"  # a parent run: every study of its sweep (JSON list), started or not
    SWEEP_STUDIES_AT = "sweep_studies_at"  # when that list was recorded (unix seconds): a resume re-records it
    EMBEDDING_SOURCE_RUN = "embedding_source_run"  # runs with embedding_vectors=lm:...: the pretraining run used
    DATASET = "dataset"  # the user's own data: its name (also in the experiment's name)
    FOLD, FOLDS = "fold", "folds"  # cross-validation: this run's fold, of how many
    # how the data was made: split layout (files given, carved, folds), label name:id mapping, tokenizer
    DATA_LAYOUT, LABEL_MAP, TOKENIZER = "data/layout", "data/label_map", "data/tokenizer"


class Stage:
    STUDY, TRIAL, FINAL = "study", "trial", "final"  # a sweep's parent run, search trials, final seeds
    HORIZON, PRETRAIN = "horizon", "pretrain"
    CV, FOLD = "cv", "fold"  # a cross-validation's parent run, and its runs (one per fold)
    SWEPT = (STUDY, TRIAL, FINAL)


class State:
    COMPLETE, PRUNED, FAILED, INTERRUPTED = "complete", "pruned", "failed", "interrupted"
    RUNNING = "running"  # a parent run while its sweep goes on


class Metric:
    PARAM_COUNT = "params/count"
    SECONDS_PER_EPOCH = "time/seconds_per_epoch"
    TRAIN_EXAMPLES = "data/train_examples"
    EPOCHS_TRAINED = "epochs_trained"
    STEPS_TRAINED = "steps_trained"
    PROBE_PREFIX = "probe/"

    @staticmethod
    def test(name: str) -> str:
        return f"test/{name}"

    @staticmethod
    def baseline(name: str) -> str:
        """The memoryless baseline of a metric, as logged next to it: baseline/loss, baseline/acc."""
        return f"baseline/{name}"

    @staticmethod
    def validation_baseline(name: str) -> str:
        """The same baseline scored on the validation split (baseline/val_acc: the train-majority class
        on validation), where it differs from test's."""
        return f"baseline/val_{name}"

    @staticmethod
    def baseline_for_validation(metrics: dict, name: str) -> float | None:
        """The baseline a run's validation history is judged against (has it left the baseline?): the
        validation split's own where logged, else test's (the loss baseline, the train prior's entropy,
        is one number for both; runs from before baseline/val_acc was logged)."""
        return metrics.get(Metric.validation_baseline(name), metrics.get(Metric.baseline(name)))


def safe_url(url: str) -> str:
    """A store URL without its password, for tags and messages. The password ends at the last '@'
    before the host, so '@' and ':' inside it are masked too."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    end = len(rest)
    for stop in ("?", "#"):
        if stop in rest:
            end = min(end, rest.index(stop))
    at = rest.rfind("@", 0, end)
    if at < 0 or ":" not in rest[:at]:
        return url  # no password in it
    user = rest[:at].split(":", 1)[0]
    return f"{scheme}://{user}:***@{rest[at + 1 :]}"


def encoded_url(url: str) -> str:
    """A database URL whose password holds a raw '@' (which SQLAlchemy would read as the host), with that
    '@' percent-encoded: `postgresql://u:p@ss@host/db` works as typed."""
    password = url_password(url)
    if not password or "@" not in password:
        return url
    scheme, rest = url.split("://", 1)
    user = rest.split(":", 1)[0]
    return f"{scheme}://{user}:{password.replace('@', '%40')}{rest[len(user) + 1 + len(password) :]}"


def url_password(url: str) -> str | None:
    if "://" not in url:
        return None
    rest = url.split("://", 1)[1]
    at = rest.rfind("@", 0, len(rest.split("?", 1)[0]))
    userinfo = rest[:at] if at >= 0 else ""
    return userinfo.split(":", 1)[1] if ":" in userinfo else None


def scrub(text: str) -> str:
    """Remove the passwords of the configured stores from a message (drivers may echo the URL)."""
    for url in (os.environ.get("MLFLOW_TRACKING_URI", ""), os.environ.get("STORAGE", "")):
        password = url_password(url)
        if password:
            text = text.replace(password, "***").replace(password.replace("@", "%40"), "***")
    return text


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else `sqlite:///mlflow.db` at the repo root (MLflow 3's default
    file name, made absolute so every command and worker finds the same store)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ROOT / 'mlflow.db'}"


def client():
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri())


def experiment_name(task: str, dataset: str = "") -> str:
    """One experiment per task, and per dataset for tasks on the user's own data: text-classification/<name>."""
    return f"{task}/{dataset}" if dataset else task


def ensure_experiment(name: str) -> str:
    """The experiment's id, creating it (with an absolute artifact location) if needed.
    Safe when several workers race to create it. Runs left RUNNING by a dead process are closed here,
    so the next command that touches an experiment finds them."""
    uri = tracking_uri()
    check_store(uri)
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
        raise UserError(
            f"cannot reach the MLflow store {safe_url(tracking_uri())}: {scrub(first_line(error))}"
        ) from None
    if experiment is not None:
        if "mlflow.experimentKind" not in experiment.tags:
            mlflow_client.set_experiment_tag(
                experiment.experiment_id, "mlflow.experimentKind", "custom_model_development"
            )
        return experiment.experiment_id
    artifact_location = None
    if not tracking_uri().startswith(("http://", "https://", "databricks")):
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


def hardware() -> str:
    """What the run ran on: the GPU's name, or the CPU model and core count."""
    import torch

    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name()}"
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {model}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


@functools.cache
def git_commit() -> str:
    """The code version of a run: commit hash, with `-dirty` if the tree has local changes. Read once per
    process (the training commands read it at start): the code a process runs is the code it loaded,
    even if the worktree moves on while it trains."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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
    status = mlflow_client.get_run(run_id).info.status
    if status == "FINISHED":
        return  # its sweep is complete: nothing left to own
    if status != "RUNNING":
        mlflow_client.update_run(run_id, status="RUNNING")
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
    if tracking_uri().startswith("sqlite:") or _heartbeat["thread"] is not None:
        return

    def beat() -> None:
        while True:
            time.sleep(heartbeat_interval())
            for run_id in list(_open_runs):
                with contextlib.suppress(Exception):
                    client().set_tag(run_id, Tag.HEARTBEAT, f"{time.time():.0f}")

    _heartbeat["thread"] = threading.Thread(target=beat, name="run-heartbeat", daemon=True)
    _heartbeat["thread"].start()


# -- stores: fail fast and clean -------------------------------------------------------------------------
_checked: set[str] = set()


def check_store(uri: str) -> None:
    """One line and exit 2 within seconds for a store that cannot work: an SQLite path that cannot be
    created or written, or a tracking server that does not answer (checked with one short request;
    MLflow's own retries, minutes long, apply afterwards)."""
    if uri in _checked:
        return
    if uri.startswith("sqlite:///"):
        check_sqlite_path(uri.removeprefix("sqlite:///"), "MLflow store")
    elif uri.startswith(("http://", "https://")):
        check_server(uri)
    _checked.add(uri)


def check_server(uri: str) -> None:
    """One short request to the server's /health (no MLflow import, no retries): refused, unknown host
    or silent server fail in seconds."""
    import ssl  # only an http store needs these
    import urllib.error
    import urllib.request

    timeout = float(os.environ.get("RNNBENCH_STORE_TIMEOUT", "5"))
    context = ssl.create_default_context(cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"))
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    scheme, rest = uri.split("://", 1)
    at = rest.rfind("@", 0, len(rest.split("/", 1)[0]) if "@" not in rest else len(rest.split("?", 1)[0]))
    host_part = rest[at + 1 :] if at >= 0 else rest  # credentials go in headers, not in the URL
    try:
        urllib.request.urlopen(
            f"{scheme}://{host_part.rstrip('/')}/health",
            timeout=timeout,
            context=context if scheme == "https" else None,
        ).close()
    except urllib.error.HTTPError as error:
        raise UserError(
            f"{safe_url(uri)} is not an MLflow tracking server that works: GET /health answered HTTP {error.code}"
        ) from None
    except (OSError, ValueError) as error:
        raise UserError(f"cannot reach the MLflow store {safe_url(uri)}: {connection_error(error)}") from None


DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


def check_database(url: str, what: str) -> None:
    """A database URL that cannot work fails in seconds: an SQLite path that cannot be written, or a
    server that refuses or does not answer a TCP connection (no driver import, no password sent)."""
    if not url:
        return
    if url.startswith("sqlite:///"):
        check_sqlite_path(url.removeprefix("sqlite:///"), what)
        return
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    rest = url.split("://", 1)[-1]
    rest = rest[rest.rfind("@", 0, len(rest.split("?", 1)[0])) + 1 :]
    host_port = rest.split("/", 1)[0].split("?", 1)[0]
    if not host_port or host_port.startswith("[") or scheme not in DEFAULT_PORTS:
        return  # a local socket, an IPv6 literal or another database: its driver reports errors
    host, _, port = host_port.partition(":")
    try:
        socket.create_connection(
            (host, int(port or DEFAULT_PORTS[scheme])), timeout=float(os.environ.get("RNNBENCH_STORE_TIMEOUT", "5"))
        ).close()
    except (OSError, ValueError) as error:
        raise UserError(f"cannot open the {what} {safe_url(url)}: {connection_error(error)}") from None


def check_sqlite_path(path_text: str, what: str) -> None:
    """An SQLite file must be creatable (or writable if it exists), and its folder a writable folder."""
    path = Path(path_text).expanduser()
    if path.is_dir():
        raise UserError(f"the {what} {path} is a folder, not an SQLite file")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"cannot create the {what} {path}: {ancestor} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Really write (root passes every access() check, yet /sys or a read-only mount refuse files).
        tempfile.TemporaryFile(dir=path.parent).close()
        if path.exists():
            open(path, "ab").close()
    except OSError as error:
        raise UserError(
            f"cannot {'write' if path.exists() else 'create'} the {what} {path}: {error.strerror or error}"
        ) from None


def connection_error(error: BaseException) -> str:
    """The useful part of a connection error (the innermost reason), without any password."""
    text = str(error)
    for marker in (
        "Connection refused",
        "timed out",
        "Name or service not known",
        "No route to host",
        "Temporary failure in name resolution",
        "certificate verify failed",
    ):
        if marker.lower() in text.lower():
            return marker.lower()
    return scrub(text.splitlines()[0][:200] if text else type(error).__name__)


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
    from mlflow.entities import Param

    client().log_batch(run_id, params=[Param(key, str(value)) for key, value in params.items()])


def log_metrics(run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client().log_batch(run_id, metrics=[Metric(key, float(value), now, step) for key, value in metrics.items()])
