"""How reports write numbers and tables: the shared markdown helpers of every report section."""

from __future__ import annotations

import math

from bench.console import duration

MISSING = "–"  # a value that does not exist (no runs, no seeds, not defined)


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A GitHub markdown table, one line per row."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def fmt(value, digits: int = 4) -> str:
    """Fixed decimals in the usual range, significant digits for very small or large values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.{digits}f}"
    return str(value)


def significant(value, digits: int = 3) -> str:
    """`digits` significant digits (verdict evidence); non-finite values are missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return f"{value:.{digits}g}"


def ratio_text(value: float) -> str:
    """Two decimals, or two significant digits below 0.1 (a GRU at 0.003x the baseline is not 0.00)."""
    return f"{value:.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.2g}"


def scientific(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1e}"


def fmt_param(value: str | None) -> str:
    """A hyperparameter as logged: integers as they are, floats with 3 significant digits."""
    if value is None:
        return MISSING
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() and "." not in value else f"{number:.3g}"


def compute_text(busy: float, summed: float, count: int) -> str:
    """The wall time a set of runs took (see results.compute_time), as a report states it."""

    if not count:
        return MISSING
    return (
        f"{duration(busy)} of wall time while a run trained (pauses between sittings not counted); "
        f"{duration(summed)} of run time summed over {count} runs"
    )
