"""SIGINT / SIGTERM stop a training command the way Lightning stops on SIGTERM: the first signal is only
recorded (and announced in one line); the work stops at its next safe point (`checkpoint`: after each
batch, between trials, jobs and chunks of data preparation), closes its runs as KILLED, fails its Optuna
trial and exits 130 / 143. A second signal ends the process at once; the next command closes what that
leaves open, as after SIGKILL.

Why nothing is raised from a signal handler: the exception lands inside whatever runs (a database call,
an import running torch's C++, a finalizer), and each such place needed its own guard.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import threading

from bench import console
from bench.safepoints import Interrupted, _State, checkpoint, received, sleep  # noqa: F401 (re-exported)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
NOTICE = "stopping after the current step; press Ctrl-C again to stop at once"


def _watch(read_end: int, announce: bool) -> None:
    """Each signal's number arrives here as one byte (`signal.set_wakeup_fd`), also while the main thread
    is blocked in C (SQLite's busy wait, a torch op), where Python runs no signal handler."""
    while byte := os.read(read_end, 1):
        if byte[0] not in SIGNALS:
            continue
        if _State.received is not None:  # the second one: stop at once
            os._exit(128 + byte[0])
        _State.received = byte[0]
        if _State.forward is not None:
            _State.forward.value = byte[0]
        if announce:
            console.say(NOTICE)
    os.close(read_end)


def install(announce: bool = True) -> bool:
    """SIGINT and SIGTERM are recorded from now on, not raised (main thread only). False: already were."""
    if _State.wakeup is not None:
        return False
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    handlers = tuple(signal.signal(signum, lambda *_: None) for signum in SIGNALS)  # the watcher acts
    _State.previous = (handlers, signal.set_wakeup_fd(write_end))
    _State.received, _State.wakeup = None, write_end
    threading.Thread(target=_watch, args=(read_end, announce), name="signal-watcher", daemon=True).start()
    return True


def uninstall() -> None:
    """The handlers from before `install`, and no signal recorded (a test calling a command in-process)."""
    handlers, wakeup = _State.previous
    signal.set_wakeup_fd(wakeup)
    for signum, handler in zip(SIGNALS, handlers):
        signal.signal(signum, handler)
    os.close(_State.wakeup)  # the watcher reads the end of the pipe and ends
    _State.received = _State.wakeup = _State.forward = None


def pool_flag(context):
    """A stop flag for the processes of a pool: this process's signals are written to it, and pool
    processes started with `install_in_pool_worker(flag)` stop at their next checkpoint once it is set."""
    _State.forward = context.RawValue("i", 0)
    return _State.forward


def install_in_pool_worker(flag) -> None:
    """A pool's `initializer`: a pool process stops at its main process's signals too, and a signal of its own
    (Ctrl-C reaches the whole process group) is recorded quietly, between jobs too (its next job stops)."""
    install(announce=False)
    _State.pool_flag = flag
    atexit.register(gc.freeze)  # it leaves as fast as `python -m bench` does (see bench/__main__.py)
