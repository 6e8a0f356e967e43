"""Runs made in a test, as bench.results hands them to every reader."""

from bench.results import RunRecord


def record(
    tags=None, metrics=None, params=None, status="FINISHED", start_time=0, end_time=None, run_id="run", **extra
) -> RunRecord:
    run = RunRecord(
        run_id, run_id, status, start_time, end_time, dict(tags or {}), dict(params or {}), dict(metrics or {})
    )
    for name, value in extra.items():  # e.g. a precomputed gap the test stubs a reader with
        setattr(run, name, value)
    return run
