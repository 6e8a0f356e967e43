"""The stop flag and its safe points, apart from the signal handling that sets it (bench/interrupts.py):
data preparation checks it between chunks without importing the command-level machinery, as Lightning's
loops read `received_sigterm`."""

from __future__ import annotations

import signal
import time


class Interrupted(BaseException):
    """Raised at a safe point once SIGINT / SIGTERM arrived. A BaseException, so `except Exception` blocks
    (Optuna's `catch=`, failure handling) let it through; not a KeyboardInterrupt, which Lightning turns
    into sys.exit(1) inside `fit`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return f"interrupted by {signal.Signals(self.signum).name}"


class _State:
    received: int | None = None  # the first signal
    pool_flag = None  # a pool process: its main process's stop flag (`pool_flag`), read at every checkpoint
    forward = None  # the main process of a pool: the flag its signals are written to
    wakeup: int | None = None  # the write end of the pipe the watcher reads (None: not installed)
    previous: tuple = ()


def received() -> int | None:
    """The signal that asked this process (or, in a pool process, its main process) to stop, if any."""
    return _State.received or (_State.pool_flag.value if _State.pool_flag is not None else 0) or None


def checkpoint() -> None:
    """A safe point: stop here (raise `Interrupted`) if a signal arrived."""
    signum = received()
    if signum:
        raise Interrupted(signum)


def sleep(seconds: float) -> None:
    """`time.sleep` that stops at once when a signal arrives (a worker waiting for other workers)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        checkpoint()
        time.sleep(min(left, 0.1))
    checkpoint()
