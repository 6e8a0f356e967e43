"""SIGINT / SIGTERM end a command cleanly: our own handlers raise `Interrupted`, every open MLflow run is
closed as KILLED, the running Optuna trial is failed, and the process exits 130 / 143.

Why our own handlers: Lightning catches KeyboardInterrupt inside `trainer.fit` and turns it into
`sys.exit(1)`, and turns SIGTERM into a `SIGTERMException` (measured: `make train` then exited 0).
`Interrupted` is a BaseException that is not a KeyboardInterrupt, so Lightning re-raises it unchanged
and `except Exception` blocks (Optuna's `catch=`, our failure handling) let it through.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
import time
import traceback
from typing import Iterator, NoReturn

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_state = {
    "installed": False,
    "critical": 0,  # our own critical sections (`deferred`)
    "database": 0,  # database connections the main thread holds (SQLAlchemy pool checkouts)
    "pending": None,  # a signal held back, raised as soon as it is safe
    "pending_since": None,
    "received": None,
    "cleaning": False,
    "between_jobs": False,  # a worker pool's process waiting for its next job (`install_in_pool_worker`)
}
POLL_SECONDS = 0.05  # how often a held-back interrupt looks for a safe moment (SIGALRM)
MAX_DATABASE_WAIT = 30.0  # longer than SQLite's 20 s busy wait: then raise even inside a database call


class Interrupted(BaseException):
    """The user (SIGINT) or the system (SIGTERM) asked this process to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return f"interrupted by {self.name}"


def _handler(signum: int, frame) -> None:
    if _state["cleaning"]:
        return  # already stopping: a second Ctrl-C must not cut the clean-up short
    if _state["between_jobs"]:  # a pool process between jobs: remember it, refuse the next job (`job`)
        _state["received"] = _state["received"] or signum
        return
    if _state["received"] is None:
        _state["received"] = signum
    elif _state["pending"] is not None and not _state["critical"]:
        deliver(_state["received"])  # a second signal while the first waits: the user insists
    # (A second signal before any clean-up began means the first was swallowed: raise it again.)
    if unsafe(frame):
        hold_back()
        return
    deliver(_state["received"])


def deliver(signum: int) -> NoReturn:
    """Raise the interrupt now: nothing stays held back, no alarm stays armed (at exit Python's default
    SIGALRM action would kill the process)."""
    _state["pending"], _state["pending_since"] = None, None
    if _state["installed"]:
        signal.setitimer(signal.ITIMER_REAL, 0)
    raise Interrupted(signum)


def unsafe(frame) -> bool:
    """Raising here would break what is running: our critical section, a finalizer, an import, or a
    database call (a query interrupted between its execution and its rows kept SQLite locked, and libraries
    that catch BaseException then committed a half-done session)."""
    return bool(_state["critical"] or _state["database"] or inside_finalizer_or_import(frame))


def hold_back() -> None:
    """Keep the interrupt pending and look again every POLL_SECONDS (SIGALRM) for a safe moment."""
    _state["pending"] = _state["received"]
    if _state["pending_since"] is None:
        _state["pending_since"] = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, POLL_SECONDS)


def _alarm(signum: int, frame) -> None:
    if _state["pending"] is None or _state["cleaning"]:
        return
    waited = time.monotonic() - _state["pending_since"]
    if _state["critical"] or inside_finalizer_or_import(frame) or (_state["database"] and waited < MAX_DATABASE_WAIT):
        signal.setitimer(signal.ITIMER_REAL, POLL_SECONDS)
        return
    deliver(_state["pending"])


def watch_database_connections() -> None:
    """Count the database connections the main thread holds (MLflow's and Optuna's SQLAlchemy pools),
    so that a signal never lands inside a database call: it waits until the connection is returned."""
    if _state.get("watching"):
        return
    from sqlalchemy import event, pool

    held: set[int] = set()  # the connection records checked out by the main thread

    def checkout(connection, record, proxy) -> None:
        if threading.current_thread() is threading.main_thread():
            held.add(id(record))
            _state["database"] = len(held)

    def checkin(connection, record) -> None:  # (in whatever thread returns it, e.g. the garbage collector's)
        held.discard(id(record))
        _state["database"] = len(held)

    event.listen(pool.Pool, "checkout", checkout)
    event.listen(pool.Pool, "checkin", checkin)
    _state["watching"] = True


def _unraisable(hook):
    """An interrupt raised inside a finalizer or a weakref callback (SQLAlchemy's class registry) is
    dropped by Python with an "Exception ignored" traceback: keep it pending instead, silently."""

    def handle(unraisable) -> None:
        if isinstance(unraisable.exc_value, Interrupted) and not _state["cleaning"]:
            hold_back()
            return
        hook(unraisable)

    return handle


def inside_finalizer_or_import(frame) -> bool:
    """True while Python runs a `__del__` or imports a module.

    A finalizer (e.g. a database cursor or connection collected by the garbage collector): an exception
    raised there is printed as "Exception ignored" and dropped, so the interrupt would be lost and the
    half-finished clean-up could leave the store locked.
    An import: torch runs module code from C++ while it loads (`torch/autograd/__init__.py` under
    pybind11), and a Python exception raised there cannot cross C++: the process aborted (exit -6,
    "terminate called after throwing an instance of 'pybind11::error_already_set'"; seen once in the
    SIGINT fault injection, the signal landing while the first trial imported Lightning). An import
    takes seconds at most; the interrupt is raised when it is done."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def checkpoint() -> None:
    """Raise the interrupt here if one arrived and has not yet been raised (it was deferred, or a library
    swallowed it): called where stopping is safe (between trials, after each training batch)."""
    if _state["received"] is not None and not _state["cleaning"] and not _state["critical"]:
        deliver(_state["received"])


def interruption(error: BaseException) -> BaseException | None:
    """The interrupt behind `error`, if any: the error itself, one found in its context chain, or, in a
    process that has received a signal, that signal (as `Interrupted`).

    Why the chain: a signal that lands inside Optuna's `_tell_with_warning` (a trial being recorded)
    escapes its `except Exception`, and its `finally` then raises `UnboundLocalError` with our
    interrupt only as the context (seen at 1 of 10 SIGINT moments in the fault-injection test).
    Why the received signal: a library can turn our signal into its own exception while our handler
    holds it back (a database call): Lightning raises `SIGTERMException`, a SystemExit, at its next
    batch, and our interrupt is then in no chain (seen once in a CI run: the run closed as FAILED)."""
    chain, seen = error, set()
    while chain is not None and id(chain) not in seen:
        if isinstance(chain, (KeyboardInterrupt, Interrupted)):
            return chain
        seen.add(id(chain))
        chain = chain.__cause__ or chain.__context__
    if _state["received"] is not None:
        return Interrupted(_state["received"])
    return None


def release(error: BaseException | None) -> None:
    """Free what the interrupted code still holds, before the clean-up writes to a store.

    Why: a signal that lands while a query's rows are being read leaves its SQLite cursor open, and the
    frames in the interrupt's traceback keep it alive; that cursor holds the database's read lock, so
    the clean-up's own write (closing the runs as KILLED) waited 20 s and failed with "database is
    locked" (seen at 1 of 10 SIGINT moments in the fault-injection test). Clearing the finished frames
    of the traceback (and of its context chain) closes the cursor; frames still running are skipped."""
    _state["cleaning"] = True  # from here on the process is stopping: further signals wait for it
    if _state["installed"]:
        signal.setitimer(signal.ITIMER_REAL, 0)  # no held-back interrupt is raised into the clean-up
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__
    gc.collect()


def exit_process(code: int) -> NoReturn:
    """Leave with `code`. After an interrupt (runs closed by then), a library thread whose stop the
    signal cut off would keep the interpreter waiting for it forever: Optuna's trial heartbeat thread,
    when SIGINT lands inside its start or stop (seen: a sweep hung in threading._shutdown after SIGINT
    in the fault-injection test). Then leave at once, without waiting for such threads."""
    if received() is not None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        stragglers = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
        if any(t.is_alive() for t in stragglers):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    sys.exit(code)


def install() -> None:
    """Route SIGINT and SIGTERM to `Interrupted` in this process (main thread only)."""
    for signum in SIGNALS:
        signal.signal(signum, _handler)
    signal.signal(signal.SIGALRM, _alarm)
    if not _state["installed"]:
        sys.unraisablehook = _unraisable(sys.unraisablehook)
    _state.update(installed=True, received=None, pending=None, pending_since=None, critical=0, cleaning=False)


def install_in_pool_worker() -> None:
    """A worker pool's process (the pool's `initializer`): like `install`, but between jobs a signal is
    only remembered. Raised in the pool's own loop, it printed a traceback and broke the pool (which
    then terminates the other processes, one perhaps still closing its run); remembered, it makes the
    process refuse its next job (`job`), and the pool's shutdown ends the process."""
    install()
    _state["between_jobs"] = True


@contextlib.contextmanager
def job() -> Iterator[None]:
    """One job of a pool process: a signal received before it refuses it (the pool sends the interrupt
    back as the job's result), one received during it is raised in it."""
    if _state["received"] is not None:
        raise Interrupted(_state["received"])
    previous, _state["between_jobs"] = _state["between_jobs"], False
    try:
        yield
    finally:
        _state["between_jobs"] = previous


def received() -> int | None:
    """The signal that started the shutdown, if any."""
    return _state["received"]


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold a signal back while a few store writes must happen together (create a run and remember it,
    close a run): the interrupt is raised right after, never half-way through."""
    _state["critical"] += 1
    try:
        yield
    finally:
        _state["critical"] -= 1
        if not _state["critical"] and _state["pending"] is not None and not _state["cleaning"]:
            deliver(_state["pending"])
