"""The convergence signal: was a run's validation value still improving when its budget ran out?

A run whose best validation value moved by more than STILL_IMPROVING (a share of the memoryless
baseline loss, or accuracy points) over the last fifth of the optimizer steps it trained, and that
early stopping did not end, is "still improving": its
result is a property of the budget, not of the cell. Reports show the signal per cell and verdicts
resting on such runs say "budget-limited". Pure Python (no torch), so reports can use it."""

from __future__ import annotations

import math

from bench.run_keys import Metric, State, Tag

STILL_IMPROVING = 0.01  # a best-so-far gain above 1% in the last fifth of the budget
LAST_PART = 0.2  # "the last fifth"
AT_BASELINE = 0.01  # within 1% of the baseline loss (or 1 accuracy point): not (yet) left the baseline
NEVER = Metric.NEVER_LEFT  # LEFT_BASELINE of a run whose validation never left the baseline

# Metric names written by every trained run (bench.train) and read back by reports (named in run_keys).
BEST_STEP, LAST_FIFTH_GAIN, STEPS, STILL, LEFT_BASELINE = (
    Metric.BEST_STEP,
    Metric.LAST_FIFTH_GAIN,
    Metric.CONVERGENCE_STEPS,
    Metric.STILL_IMPROVING,
    Metric.LEFT_BASELINE,
)


def beats_baseline(value: float, baseline: float, higher_is_better: bool) -> bool:
    """Beyond AT_BASELINE of the memoryless baseline: the network predicts more than the marginals."""
    return value > baseline + AT_BASELINE if higher_is_better else value < (1 - AT_BASELINE) * baseline


def left_baseline_step(history: list[tuple[int, float]], baseline: float | None, higher_is_better: bool) -> float:
    """The first optimizer step at which validation beat the baseline; NEVER if it did not. A run that
    never did sat on a plateau for its whole budget: flat is not converged (the tanh RNN's plateau can
    last thousands of steps), so verdicts compare the plateau with the steps it took at a short lag."""
    if not baseline:
        return NEVER
    ordered = sorted((step, value) for step, value in history if value is not None and math.isfinite(value))
    return next((float(step) for step, value in ordered if beats_baseline(value, baseline, higher_is_better)), NEVER)


def convergence(
    history: list[tuple[int, float]],
    higher_is_better: bool,
    early_stopped: bool,
    scale: float | None = None,
    baseline: float | None = None,
) -> dict[str, float]:
    """From (optimizer step, monitored validation value) pairs in training order: the step of the best
    value, the gain of the best-so-far value over the last fifth of the steps trained (relative to
    `scale`: the memoryless baseline loss, or 1 for accuracy, so a loss creeping from 3e-5 to 2.5e-5
    is not "still improving"; without a scale, relative to the value itself), the steps trained, and
    1.0 if still improving (else 0.0), and with the monitored metric's `baseline` the step at which
    validation first beat it (left_baseline_step). Empty history -> {}."""
    points = [(step, value) for step, value in history if value is not None and math.isfinite(value)]
    if not points:
        return {}
    last = max(step for step, _ in points)
    pick = max if higher_is_better else min
    best = pick(value for _, value in points)
    best_step = next(step for step, value in points if value == best)  # first reached
    earlier = [value for step, value in points if step <= (1 - LAST_PART) * last] or [points[0][1]]
    before = pick(earlier)
    change = (best - before) if higher_is_better else (before - best)
    denominator = scale if scale else abs(before)
    gain = change / denominator if denominator else (math.inf if change > 0 else 0.0)
    still = not early_stopped and gain > STILL_IMPROVING
    signal = {BEST_STEP: float(best_step), LAST_FIFTH_GAIN: float(gain), STEPS: float(last), STILL: float(still)}
    if baseline:
        signal[LEFT_BASELINE] = left_baseline_step(points, baseline, higher_is_better)
    return signal


def still_improving(metrics: dict) -> bool | None:
    """A finished run's signal from its MLflow metrics; None for runs logged without one."""
    return None if STILL not in metrics else bool(metrics[STILL])


def backfill_left_baseline(task, runs: list) -> None:
    """Finished runs (records) trained before `left_baseline_step` was logged get it from their validation
    history (one read per run), so every run in a report has it."""
    name = Metric.name_of(task.monitor)
    for run in runs:
        metrics = run.metrics
        baseline = Metric.baseline_for_validation(metrics, name)
        if LEFT_BASELINE in metrics or baseline is None or run.tags.get(Tag.STATE) != State.COMPLETE:
            continue
        history = run.history(task.monitor)
        metrics[LEFT_BASELINE] = left_baseline_step(history, baseline, task.monitor_mode == "max")
