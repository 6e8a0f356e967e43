"""The horizon rule and table, pure functions of finished runs (no MLflow, no torch): an arm's horizon
is the largest length of the grid at which its mean test metric still beats the memoryless baseline
by the margin: metric <= (1 - margin) x baseline (lower is better), or
metric >= baseline + margin x (1 - baseline) (accuracy)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.markdown import MISSING, markdown_table, ratio_text
from bench.stats import summarize
from bench.tracking import Metric, State, Tag
from bench.variants import CELL_ORDER, VARIANT_ORDER


@dataclass
class Cell:
    """One (arm, value) of the horizon table: the seeds' test metric and outcomes."""

    values: list[float] = field(default_factory=list)  # test metric of finished runs
    baseline: float | None = None
    diverged: int = 0
    failed: int = 0

    @property
    def runs(self) -> int:
        return len(self.values) + self.diverged + self.failed


def metric_key(task) -> tuple[str, str]:
    return Metric.test(task.report_metric), Metric.baseline(task.report_metric)


def run_outcome(run) -> str:
    """complete | diverged (stopped on a non-finite loss) | pruned | failed | interrupted | running."""
    state = run.data.tags.get(Tag.STATE, "")
    if state == State.PRUNED and run.data.tags.get(Tag.FAILURE_REASON, "").startswith("diverged"):
        return "diverged"
    return state or "running"


def collect(task, runs: list) -> dict[str, dict[int, Cell]]:
    """arm label -> value -> Cell, from horizon runs."""
    metric, baseline = metric_key(task)
    table: dict[str, dict[int, Cell]] = {}
    for run in runs:
        tags = run.data.tags
        cell = table.setdefault(tags[Tag.ARM], {}).setdefault(int(tags[Tag.HORIZON_VALUE]), Cell())
        outcome = run_outcome(run)
        if baseline in run.data.metrics:
            cell.baseline = run.data.metrics[baseline]
        if outcome == "complete" and metric in run.data.metrics and math.isfinite(run.data.metrics[metric]):
            cell.values.append(run.data.metrics[metric])
        elif outcome == "diverged":
            cell.diverged += 1
        elif outcome == "failed":
            cell.failed += 1
    return table


def beats(mean: float, baseline: float, margin: float, higher_is_better: bool) -> bool:
    if higher_is_better:
        return mean >= baseline + margin * (1 - baseline)
    return mean <= (1 - margin) * baseline


def arm_horizon(cells: dict[int, Cell], margin: float, higher_is_better: bool) -> tuple[int | None, bool]:
    """(largest value at which the mean beats the baseline by the margin, whether every shorter value
    did too). A diverged seed counts as not beating the baseline."""
    horizon, monotone, broken = None, True, False
    for value in sorted(cells):
        cell = cells[value]
        summary = summarize(cell.values) if not cell.diverged else None
        ok = (
            summary is not None
            and cell.baseline is not None
            and beats(summary.mean, cell.baseline, margin, higher_is_better)
        )
        if ok:
            horizon = value
            monotone = monotone and not broken
        else:
            broken = True
    return horizon, monotone


def describe_horizon(cells: dict[int, Cell], margin: float, higher_is_better: bool) -> str:
    """ "none", "20", "≥ 100 (longest tested)" or "50 (not monotone)"."""
    horizon, monotone = arm_horizon(cells, margin, higher_is_better)
    if horizon is None:
        return "none"
    if horizon == max(cells):
        return f"≥ {horizon} (longest tested)"
    return f"{horizon}" + ("" if monotone else " (not monotone)")


def score(cell: Cell, higher_is_better: bool) -> float | None:
    """What the horizon plot shows: metric / baseline (losses), or the metric itself (accuracy)."""
    summary = summarize(cell.values)
    if summary is None or cell.baseline is None:
        return None
    return summary.mean if higher_is_better else summary.mean / cell.baseline


def format_table(task, table: dict[str, dict[int, Cell]], margin: float) -> list[str]:
    """Markdown: one row per arm, mean ± sd of the metric (/ baseline for losses) at each value, and
    the arm's horizon."""
    values = sorted({v for cells in table.values() for v in cells})
    higher = task.higher_is_better
    rows = []
    for arm in ordered_arms(table):
        cells, row = table[arm], [arm]
        for value in values:
            cell = cells.get(value)
            summary = summarize(cell.values) if cell else None
            if cell is None:
                row.append(MISSING)
                continue
            text = MISSING
            if summary and cell.baseline:
                scale = 1 if higher else cell.baseline
                text = ratio_text(summary.mean / scale) + (
                    f" ± {ratio_text(summary.sd / scale)}" if summary.n > 1 else ""
                )
            notes = [f"{cell.diverged} diverged"] * bool(cell.diverged) + [f"{cell.failed} failed"] * bool(cell.failed)
            row.append(text + (f" ({', '.join(notes)})" if notes else ""))
        rows.append(row + [describe_horizon(cells, margin, higher)])
    return markdown_table(["arm", *(f"{v}" for v in values), "horizon"], rows)


def ordered_arms(table: dict) -> list[str]:
    def key(label: str):
        variant, cell, *ablation = label.split("/")
        return (bool(ablation), VARIANT_ORDER.get(variant, 9), CELL_ORDER.get(cell, 9), ablation)

    return sorted(table, key=key)
