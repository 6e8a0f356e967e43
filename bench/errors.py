"""The one exception type that means "the user asked for something invalid"."""


class UserError(Exception):
    """Bad input from the user: the CLI prints its message as one line and exits 2."""


class RunFailed(Exception):
    """A training that ended without a result (it diverged): an outcome, not a crash. Its MLflow run is
    closed as FAILED with this reason (`run_id`, set where the run was closed); the CLI prints one line
    and exits 1."""

    run_id: str | None = None
    hint: str = ""  # what might give a result next time, said after the reason


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:limit]


def failure_reason(error: BaseException, limit: int = 500) -> str:
    """`Type: first line of the message`: how a failed run or trial records why it failed."""
    return f"{type(error).__name__}: {error}".splitlines()[0][:limit]
