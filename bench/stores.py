"""Where results live and whether that store can work: the tracking URI, store URLs without their
passwords, the experiment of a task, the code version, the system-metrics knobs, and the checks that
make a store that cannot work fail in one line within seconds.

Needs no MLflow, and imports nothing at the top that `--help` and `list` would pay for: the CLI and the
console import it at start-up; the checks import their few stdlib modules where they run.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from bench.errors import UserError, first_line
from bench.paths import ROOT


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


def scrub(text: str, *urls: str) -> str:
    """Remove the passwords of the configured stores (and of `urls`) from a message (drivers may echo
    the URL)."""
    for url in (os.environ.get("MLFLOW_TRACKING_URI", ""), os.environ.get("STORAGE", ""), *urls):
        password = url_password(url)
        if password:
            text = text.replace(password, "***").replace(password.replace("@", "%40"), "***")
    return text


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else `sqlite:///mlflow.db` at the repo root (MLflow 3's default
    file name, made absolute so every command and worker finds the same store). A raw '@' in a
    database password is percent-encoded, as for the Optuna storage (`encoded_url`)."""
    return encoded_url(os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ROOT / 'mlflow.db'}")


def optuna_storage_url(given: str | None = None) -> str:
    """The Optuna storage: `given` (--storage), else STORAGE, else sweeps/optuna.db in the repository."""
    return given or os.environ.get("STORAGE") or f"sqlite:///{ROOT / 'sweeps' / 'optuna.db'}"


def experiment_name(task: str, dataset: str = "") -> str:
    """One experiment per task, and per dataset for tasks on the user's own data: text-classification/<name>."""
    return f"{task}/{dataset}" if dataset else task


@functools.cache
def git_commit() -> str:
    """The code version of a run: commit hash, with `-dirty` if the tree has local changes. Read once per
    process (the training commands read it at start): the code a process runs is the code it loaded,
    even if the worktree moves on while it trains."""
    import subprocess  # (lazy: ~6 ms that --help and list do without; the training commands call this first)

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


SYSTEM_METRICS = "SYSTEM_METRICS"  # the knob: 0 turns system metrics off
SYSTEM_METRICS_INTERVAL = 10.0  # seconds between samples; MLflow's MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL overrides


def system_metrics_enabled() -> bool:
    """SYSTEM_METRICS=0 turns system metrics off (on by default); any value but 0 or 1, or a sampling
    interval that is not a positive number, is a one-line error."""
    raw = os.environ.get(SYSTEM_METRICS, "").strip()
    if raw not in ("", "0", "1"):
        raise UserError(f"{SYSTEM_METRICS}={raw!r} is not valid: 1 (the default) logs system metrics, 0 does not")
    return raw != "0" and system_metrics_interval() > 0


def system_metrics_interval() -> float:
    """Seconds between samples: 10, or MLflow's own MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL, which its
    monitor reads (read here without importing mlflow: the configuration block prints before that import)."""
    name = "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"
    raw = os.environ.get(name, "").strip()
    try:
        interval = float(raw) if raw else SYSTEM_METRICS_INTERVAL
    except ValueError:
        interval = 0.0
    if not interval > 0:
        raise UserError(f"{name}={raw!r} is not valid: seconds between system-metrics samples, e.g. 10")
    return interval


# -- stores: fail fast and clean -------------------------------------------------------------------------
_checked: set[str] = set()


DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")  # what MLflow's SQLAlchemy store takes besides sqlite


def check_store(uri: str) -> None:
    """One line and exit 2 within seconds for a store that cannot work: not a store URL at all, an SQLite
    path that cannot be created or written or a file that is not an SQLite database, a tracking server
    that does not answer (one short request; MLflow's own retries, minutes long, apply afterwards), or a
    database server that refuses or does not answer a connection (MLflow's own took 115 s)."""
    if uri in _checked:
        return
    scheme = uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""
    if uri.startswith("sqlite:///"):
        check_sqlite_path(uri.removeprefix("sqlite:///"), "MLflow store")
    elif uri.startswith(("http://", "https://")):
        check_server(uri)
    elif scheme in DATABASE_SCHEMES:
        check_database(uri, "MLflow store", "reach")
    elif not scheme.startswith(("databricks", "sqlite")) and not allowed_file_store(uri):
        raise UserError(
            f"MLFLOW_TRACKING_URI={safe_url(uri)} is not a store URL: use sqlite:///<path>/mlflow.db, "
            "http(s)://<tracking server> or postgresql://<user>@<host>/<database>, or unset it (mlflow.db "
            "in the repository)"
        )
    _checked.add(uri)


def allowed_file_store(uri: str) -> bool:
    """MLflow's ./mlruns file store (a path or file: URI) only where the user opted in to it: MLflow 3
    refuses it otherwise, with a multi-line exception."""
    is_path = "://" not in uri or uri.startswith("file:")
    return is_path and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("1", "true")


def check_server(uri: str) -> None:
    """One short request to the server's /health (no MLflow import, no retries): refused, unknown host
    or silent server fail in seconds."""
    import ssl  # (lazy: urllib.request imports it)
    import urllib.error  # (lazy: urllib.request imports it)
    import urllib.request  # (lazy: ~50 ms with ssl and http.client, only for a tracking server)

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


def check_database(url: str, what: str, verb: str = "open") -> None:
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
    import socket  # (lazy: ~6 ms that --help and list do without, only for a database server)

    try:
        socket.create_connection(
            (host, int(port or DEFAULT_PORTS[scheme])), timeout=float(os.environ.get("RNNBENCH_STORE_TIMEOUT", "5"))
        ).close()
    except (OSError, ValueError) as error:
        raise UserError(f"cannot {verb} the {what} {safe_url(url)}: {connection_error(error)}") from None


SQLITE_HEADER = b"SQLite format 3\x00"


def check_sqlite_path(path_text: str, what: str) -> None:
    """An SQLite file must be creatable (or writable if it exists), and its folder a writable folder."""
    import tempfile  # (lazy: ~8 ms that --help and list do without)

    path = Path(path_text).expanduser()
    if path.is_dir():
        raise UserError(f"the {what} {path} is a folder, not an SQLite file")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"cannot create the {what} {path}: {ancestor} is a file, not a folder")
    header = b""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Really write (root passes every access() check, yet /sys or a read-only mount refuse files).
        tempfile.TemporaryFile(dir=path.parent).close()
        if path.exists():
            open(path, "ab").close()
            with open(path, "rb") as file:
                header = file.read(len(SQLITE_HEADER))
    except OSError as error:
        raise UserError(
            f"cannot {'write' if path.exists() else 'create'} the {what} {path}: {error.strerror or error}"
        ) from None
    if path.exists() and header and header != SQLITE_HEADER:  # (an empty file is a new database)
        raise UserError(
            f"the {what} {path} is not an SQLite database (its first bytes are not SQLite's header): "
            "move it aside, or use another file"
        )


def unreachable(error: BaseException) -> UserError:
    """The one line for an MLflow store that failed during a call (after its check passed), password masked."""
    return UserError(f"cannot reach the MLflow store {safe_url(tracking_uri())}: {scrub(first_line(error))}")


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
