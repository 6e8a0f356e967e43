"""The horizon rule and table, pure functions of finished runs (no MLflow, no torch).

An arm passes at a length when the one-sided 95% upper bound of its mean test metric / baseline is
below 1 - margin (losses; for accuracy: the lower bound of the mean above baseline + margin x
(1 - baseline)). Failed and diverged runs are misses, scored at the baseline; fewer than 2 finished
seeds is "unknown". Its horizon is the largest length of the grid it passes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.cells import CELL_ORDER
from bench.convergence import LEFT_BASELINE, NEVER, STEPS, backfill_left_baseline, beats_baseline
from bench.markdown import MISSING, markdown_table, ratio_text
from bench.run_keys import Metric, State, Tag
from bench.stats import one_sided_bound, summarize
from bench.variants import VARIANT_ORDER


@dataclass
class Cell:
    """One (arm, value) of the horizon table: the seeds' test metric and outcomes."""

    values: list[float] = field(default_factory=list)  # test metric of finished runs
    baseline: float | None = None
    diverged: int = 0
    failed: int = 0
    still_improving: int = 0  # finished runs whose validation was still improving when the budget ran out
    at_baseline: int = 0  # finished runs that never left the baseline (flat: see add_run)
    left_steps: list[float] = field(default_factory=list)  # step each finished run's validation left the baseline
    flat_steps: list[float] = field(default_factory=list)  # steps trained by each run that never left it
    budget: str = ""  # the runs' budget, e.g. "4000 steps" (what a budget-limited verdict names)
    budget_steps: int = 0  # the same as a number of optimizer steps (0: an epoch budget)
    clips: set = field(default_factory=set)  # the runs' gradient_clip values (claim 2a needs unclipped runs)

    @property
    def runs(self) -> int:
        return len(self.values) + self.diverged + self.failed

    @property
    def slowest_escape(self) -> float | None:
        """The most steps a finished run took to leave the baseline; None unless every run with a
        known step left it."""
        if not self.left_steps or NEVER in self.left_steps:
            return None
        return max(self.left_steps)


def metric_key(task) -> tuple[str, str]:
    return Metric.test(task.report_metric), Metric.baseline(task.report_metric)


def run_outcome(run) -> str:
    """complete | diverged (stopped on a non-finite loss) | pruned | failed | interrupted | running."""
    state = run.tags.get(Tag.STATE, "")
    if state == State.PRUNED and run.tags.get(Tag.FAILURE_REASON, "").startswith("diverged"):
        return "diverged"
    return state or "running"


def collect(task, runs: list) -> dict[str, dict[int, Cell]]:
    """arm label -> value -> Cell, from horizon runs. A failed run that was retried (the horizon trains a
    failed (arm, value, seed) again) counts once: by its result, not also as a miss."""
    table: dict[str, dict[int, Cell]] = {}
    ended = {seed_key(r) for r in runs if run_outcome(r) in ("complete", "diverged")}
    for run in runs:
        if run_outcome(run) not in ("complete", "diverged") and seed_key(run) in ended:
            continue
        tags = run.tags
        add_run(task, table.setdefault(tags[Tag.ARM], {}).setdefault(int(tags[Tag.HORIZON_VALUE]), Cell()), run)
    return table


def seed_key(run) -> tuple[str, int, int]:
    """(arm, value, seed) of a horizon run: one seed of one cell (a planned job's key)."""
    tags = run.tags
    return tags[Tag.ARM], int(tags[Tag.HORIZON_VALUE]), int(tags[Tag.SEED])


def add_run(task, cell: Cell, run) -> None:
    """Count one run into its cell: a finished value (and its convergence signal), or a miss."""
    metric, baseline = metric_key(task)
    outcome = run_outcome(run)
    if baseline in run.metrics:
        cell.baseline = run.metrics[baseline]
    cell.budget = cell.budget or run_budget(run.params)
    cell.budget_steps = cell.budget_steps or int(run.params.get("max_steps", 0) or 0)
    if "gradient_clip" in run.params:
        cell.clips.add(float(run.params["gradient_clip"]))
    if outcome == "complete" and metric in run.metrics and math.isfinite(run.metrics[metric]):
        cell.values.append(run.metrics[metric])
        cell.still_improving += bool(run.still_improving)
        metrics = run.metrics
        if LEFT_BASELINE in metrics:  # validation's history: the first step it beat the baseline, if any
            cell.left_steps.append(metrics[LEFT_BASELINE])
            flat = metrics[LEFT_BASELINE] == NEVER
        else:  # a run without its history's step: the best-validation model's test value
            flat = never_left_baseline(metrics[metric], cell.baseline, task.higher_is_better)
        if flat:
            cell.at_baseline += 1
            steps = metrics.get(Metric.STEPS_TRAINED, metrics.get(STEPS))
            if steps:
                cell.flat_steps.append(steps)
    elif outcome in ("diverged", "complete"):  # complete without a finite metric: a miss too
        cell.diverged += 1
    elif outcome == "failed":
        cell.failed += 1


def never_left_baseline(value: float, baseline: float | None, higher_is_better: bool) -> bool:
    """A plateau at the memoryless baseline that lasted the whole budget: the best-validation model
    scores within AT_BASELINE of the baseline on test. Such a run is not "still improving", yet a
    plateau longer than the budget cannot be told from a cell that cannot learn."""
    return bool(baseline) and not beats_baseline(value, baseline, higher_is_better)


def run_budget(params: dict) -> str:
    """ "4000 optimizer steps" (a step budget) or "10 epochs", from a run's params."""
    steps = int(params.get("max_steps", 0) or 0)
    return f"{steps:,} optimizer steps" if steps else f"{params['max_epochs']} epochs" if "max_epochs" in params else ""


PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"


def threshold(baseline: float, margin: float, higher_is_better: bool) -> float:
    """What the bound must beat: baseline + margin x (1 - baseline) (accuracy), else (1 - margin) (ratio)."""
    return baseline + margin * (1 - baseline) if higher_is_better else 1 - margin


def seed_scores(cell: Cell, higher_is_better: bool) -> list[float]:
    """One score per run: metric / baseline (losses) or the metric (accuracy); misses at the baseline."""
    if not cell.baseline:
        return []
    miss = cell.baseline if higher_is_better else 1.0
    scores = [v if higher_is_better else v / cell.baseline for v in cell.values]
    return scores + [miss] * (cell.diverged + cell.failed)


def bound(cell: Cell, higher_is_better: bool) -> float | None:
    """The one-sided 95% bound on the mean score that the rule tests (upper for losses, lower for accuracy)."""
    return one_sided_bound(seed_scores(cell, higher_is_better), upper=not higher_is_better)


def judge(cell: Cell | None, margin: float, higher_is_better: bool) -> str:
    """pass | fail | unknown (fewer than 2 finished seeds, or no baseline)."""
    if cell is None or not cell.baseline or len(cell.values) < 2:
        return UNKNOWN
    limit, edge = threshold(cell.baseline, margin, higher_is_better), bound(cell, higher_is_better)
    return PASS if (edge > limit if higher_is_better else edge < limit) else FAIL


def arm_horizon(cells: dict[int, Cell], margin: float, higher_is_better: bool) -> tuple[int | None, bool]:
    """(largest value the arm passes, whether every shorter value passed too). Unknown cells do not pass."""
    horizon, monotone, broken = None, True, False
    for value in sorted(cells):
        if judge(cells[value], margin, higher_is_better) == PASS:
            horizon = value
            monotone = monotone and not broken
        else:
            broken = True
    return horizon, monotone


def describe_horizon(cells: dict[int, Cell], margin: float, higher_is_better: bool) -> str:
    """ "none", "20", "≥ 100 (longest tested)" or "50 (not monotone)", plus the unknown lengths."""
    horizon, monotone = arm_horizon(cells, margin, higher_is_better)
    unknown = [v for v in sorted(cells) if judge(cells[v], margin, higher_is_better) == UNKNOWN]
    note = f" (unknown at {', '.join(map(str, unknown))})" if unknown else ""
    if horizon is None:
        return "none" + note
    if horizon == max(cells):
        return f"≥ {horizon} (longest tested)" + note
    return f"{horizon}" + ("" if monotone else " (not monotone)") + note


def score(cell: Cell, higher_is_better: bool) -> float | None:
    """What the horizon plot shows: metric / baseline (losses), or the metric itself (accuracy)."""
    summary = summarize(cell.values)
    if summary is None or cell.baseline is None or (not higher_is_better and cell.baseline == 0):
        return None
    return summary.mean if higher_is_better else summary.mean / cell.baseline


def format_cell(cell: Cell, margin: float, higher_is_better: bool) -> str:
    """ "0.85 ± 0.03 [≤ 0.88] ✓ ↑2": mean ± sd of finished seeds (/ baseline for losses), the one-sided
    95% bound the rule tests, pass ✓ / fail ✗ / unknown ?, runs still improving ↑, misses."""
    summary = summarize(cell.values)
    text = MISSING
    if summary and cell.baseline:
        scale = 1 if higher_is_better else cell.baseline
        text = ratio_text(summary.mean / scale) + (f" ± {ratio_text(summary.sd / scale)}" if summary.n > 1 else "")
        edge = bound(cell, higher_is_better)
        if edge is not None:
            text += f" [{'≥' if higher_is_better else '≤'} {ratio_text(edge)}]"
    text += " " + {PASS: "✓", FAIL: "✗", UNKNOWN: "?"}[judge(cell, margin, higher_is_better)]
    if cell.still_improving:
        text += f" ↑{cell.still_improving}"
    notes = [f"{cell.diverged} diverged"] * bool(cell.diverged) + [f"{cell.failed} failed"] * bool(cell.failed)
    return text + (f" ({', '.join(notes)})" if notes else "")


def format_table(task, table: dict[str, dict[int, Cell]], margin: float) -> list[str]:
    """Markdown: one row per arm, one cell per length (format_cell), and the arm's horizon."""
    values = sorted({v for cells in table.values() for v in cells})
    higher = task.higher_is_better
    rows = []
    for arm in ordered_arms(table):
        cells = table[arm]
        rows.append(
            [
                arm,
                *(format_cell(cells[v], margin, higher) if v in cells else MISSING for v in values),
                describe_horizon(cells, margin, higher),
            ]
        )
    return markdown_table(["arm", *(f"{v}" for v in values), "horizon"], rows)


LEGEND = (
    "Cells: mean ± sd over finished seeds, [the one-sided 95% bound of the mean, misses included] and the "
    "rule's outcome: ✓ passes, ✗ fails, ? unknown (fewer than 2 finished seeds); ↑k: k runs were still "
    "improving when their budget ran out (budget-limited)."
)


def ordered_arms(table: dict) -> list[str]:
    def key(label: str):
        variant, cell, *ablation = label.split("/")
        return (bool(ablation), VARIANT_ORDER.get(variant, 9), CELL_ORDER.get(cell, 9), ablation)

    return sorted(table, key=key)


@dataclass
class HorizonData:
    """The horizon runs of one profile, tabulated: arm -> length -> Cell."""

    profile: str
    table: dict[str, dict[int, Cell]]
    runs: list
    margin: float
    axis: str
    seeds: int
    sources: dict[str, str] = field(default_factory=dict)  # arm -> where its configuration came from

    def horizon(self, arm: str, higher_is_better: bool) -> tuple[int | None, bool]:
        return arm_horizon(self.table.get(arm, {}), self.margin, higher_is_better)

    def describe(self, arm: str, higher_is_better: bool) -> str:
        return describe_horizon(self.table.get(arm, {}), self.margin, higher_is_better)


def tabulate(task, read) -> HorizonData | None:
    """The rule applied to the horizon runs results read (`results.read_horizon`); runs from before
    left_baseline_step was logged get it from their validation histories first."""
    if read is None:
        return None
    backfill_left_baseline(task, read.runs)
    return HorizonData(
        read.profile, collect(task, read.runs), read.runs, read.margin, read.axis, read.seeds, read.sources
    )
