"""What a claim experiment's runs say about each claim it decides: its runs tabulated (arm x length, at
each arm's chosen learning rate) and one judge per kind of claim, all by the rules of bench.claim_rules.
Pure functions of run records (no MLflow, no torch)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from bench.claim_rules import (
    BUDGET_LIMITED,
    FAIL,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTED,
    PASS,
    SUPPORTED,
    ArmRuns,
    Comparison,
    PassTest,
    compare,
    comparisons_verdict,
    pass_test,
    plateau_note,
    settle_comparisons,
    settle_passes,
)
from bench.horizon_rule import run_outcome
from bench.run_keys import Metric, Tag


@dataclass
class Delta:
    """The smallest effect a claim's "no effect" verdict rules out, fixed before its experiment ran."""

    points: float  # accuracy points (0.02 = 2 points)
    ratio: float  # a factor on a loss ratio (1.25)
    reason: str

    def bound(self, higher_is_better: bool) -> float:
        return self.points if higher_is_better else self.ratio

    def text(self, higher_is_better: bool) -> str:
        return f"±{self.points * 100:g} accuracy points" if higher_is_better else f"a factor {self.ratio:g}"


@dataclass
class Decision:
    claim: str
    verdict: str
    key: str  # the one line the claims page shows: the effect and its interval, or the pass/fail pair
    evidence: list[str] = field(default_factory=list)


@dataclass
class ExperimentData:
    """One claim experiment's finished runs: name -> length -> ArmRuns at the chosen learning rate,
    and every learning rate's mean validation (how it was chosen)."""

    spec: object  # ClaimSpec
    task: object  # TaskSpec
    table: dict[str, dict[int, ArmRuns]]
    lr_choice: dict[tuple[str, int], dict[float, float]]  # (name, length) -> lr -> mean best validation loss
    chosen: dict[tuple[str, int], list] = field(default_factory=dict)  # (name, length) -> its runs at the chosen lr
    gaps: dict[tuple[str, int], list[float]] = field(default_factory=dict)  # train - validation metric (claim 5)

    @property
    def metric(self) -> str:
        return self.spec.metric or self.task.report_metric

    @property
    def higher(self) -> bool:
        return higher_is_better(self.task, self.metric)

    @property
    def values(self) -> list[int]:
        return sorted({v for cells in self.table.values() for v in cells})


def tabulate(spec, task, runs: list) -> ExperimentData:
    """Group finished runs by (arm name, length, learning rate); a run retried after a failure counts
    once, by its result; each arm's learning rate per length is the one with the lowest mean best
    validation loss over its finished seeds."""
    groups: dict[tuple[str, int, float], list] = {}
    for run in ended_runs(runs):
        name, value = run.tags.get(Tag.ABLATION, ""), int(run.tags[Tag.HORIZON_VALUE])
        groups.setdefault((name, value, float(run.params.get("lr", "nan"))), []).append(run)
    best_key = f"{task.monitor}_best"
    table: dict[str, dict[int, ArmRuns]] = {}
    choice: dict[tuple[str, int], dict[float, float]] = {}
    chosen: dict[tuple[str, int], list] = {}
    for name, value in sorted({(n, v) for n, v, _ in groups}):
        by_lr = {lr: rs for (n, v, lr), rs in groups.items() if (n, v) == (name, value)}
        sign = 1 if task.monitor_mode == "min" else -1  # lower is better after the sign
        means = {}
        for lr, rs in by_lr.items():
            vals = [r.metrics[best_key] for r in rs if run_outcome(r) == "complete" and best_key in r.metrics]
            means[lr] = statistics.fmean(vals) if vals else sign * math.inf  # no finished seed: chosen last
        choice[(name, value)] = means
        lr = min(means, key=lambda k: (sign * means[k], k))
        table.setdefault(name, {})[value] = arm_runs(name, spec.metric or task.report_metric, by_lr[lr], lr)
        chosen[(name, value)] = by_lr[lr]
    order = list(spec.lineup)
    table = dict(sorted(table.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99))
    return ExperimentData(spec, task, table, choice, chosen=chosen)


def ended_runs(runs: list) -> list:
    """The runs that ended with a result or a miss (complete, diverged, failed), a failed one only if its
    (arm, length, seed) was not trained again to an end: a retried failure counts once, by its result;
    interrupted and running runs are no result at all."""
    ended = {key(r) for r in runs if run_outcome(r) in ("complete", "diverged")}
    return [
        r
        for r in runs
        if run_outcome(r) in ("complete", "diverged") or (run_outcome(r) == "failed" and key(r) not in ended)
    ]


def higher_is_better(task, metric: str) -> bool:
    return any(m.higher_is_better for m in task.metrics if m.name == metric)


def key(run) -> tuple:
    return run.tags.get(Tag.ARM), run.tags.get(Tag.HORIZON_VALUE), run.tags.get(Tag.SEED)


def arm_runs(name: str, judged: str, runs: list, lr: float) -> ArmRuns:
    metric, baseline = Metric.test(judged), Metric.baseline(judged)
    arm = ArmRuns(name, lr=None if math.isnan(lr) else lr)
    for run in runs:
        metrics = run.metrics
        arm.baseline = metrics.get(baseline, arm.baseline)
        if run.tags.get(Tag.PARAM_COUNT):
            arm.params = int(run.tags[Tag.PARAM_COUNT])
        value = metrics.get(metric)
        if run_outcome(run) != "complete" or value is None or not math.isfinite(value):
            arm.misses += 1
            continue
        arm.values.append(value)
        arm.still.append(bool(run.still_improving))
        arm.solved += bool(metrics.get(Metric.SOLVED))
        steps = metrics.get(Metric.STEPS_TRAINED, metrics.get(Metric.CONVERGENCE_STEPS, 0.0))
        arm.flat.append(steps if run.flat else None)
        if not run.flat and Metric.LEFT_BASELINE in metrics:
            arm.escapes.append(metrics[Metric.LEFT_BASELINE])
    return arm


# -- the judges ------------------------------------------------------------------------------------------
def describe_test(test: PassTest, higher: bool, axis: str) -> str:
    unit = "accuracy" if higher else "test loss / baseline"
    score = test.score.text() if test.score else "no runs"
    text = f"{test.arm.label} at {axis}={test.value}: {unit} {score} (n={test.arm.n}), limit {test.limit:.3g}: "
    text += {PASS: "passes", FAIL: "fails"}.get(test.outcome, "undecided")
    return text + (f" ({test.reason})" if test.reason and test.outcome != PASS else "")


def others_at(data: ExperimentData, name: str, value: int) -> list[ArmRuns]:
    return [cells[value] for other, cells in data.table.items() if other != name and value in cells]


def short_and_long(data: ExperimentData, claim: str) -> Decision:
    """Claim 1: the reference arm passes at the shortest length (a short lag of the task) and fails,
    from converged runs, at the longest."""
    spec, task, axis = data.spec, data.task, data.spec.axis
    cells = data.table.get(spec.reference, {})
    if len(cells) < 2:
        return Decision(claim, NOT_TESTED, "the simple RNN at fewer than two lengths")
    short, long = min(cells), max(cells)
    if task.short_lag and short > task.short_lag:
        return Decision(claim, NOT_TESTED, f"no short lag: the shortest {axis}={short} > {task.short_lag}")
    tests = [
        pass_test(cells[v], v, spec.margin, data.higher, others_at(data, spec.reference, v)) for v in (short, long)
    ]
    settle_passes(tests)
    first, last = tests
    lines = [describe_test(t, data.higher, axis) for t in tests]
    lines += [note for v in (short, long) if (note := plateau_note(cells[v], others_at(data, spec.reference, v)))]
    key = f"simple RNN: {lines[0]}; {lines[1]}"
    if first.outcome == PASS and last.outcome == FAIL:
        return Decision(claim, SUPPORTED, key, lines)
    if last.outcome == PASS:
        return Decision(claim, NOT_SUPPORTED, key, lines + [f"it passes at the longest {axis}={long}."])
    if first.outcome == FAIL:
        return Decision(claim, NOT_SUPPORTED, key, lines + [f"it fails at the short {axis}={short}."])
    limited = any(t.reason for t in tests)
    return Decision(claim, BUDGET_LIMITED if limited else INCONCLUSIVE, key, lines)


def gated_fix(data: ExperimentData, claim: str) -> Decision:
    """Claim 7: at the lengths where the reference arm fails (converged), a gated arm passes."""
    spec, axis = data.spec, data.spec.axis
    gated = [better for better, than in spec.contrasts if than == spec.reference]
    tests = []
    for value in data.values:
        for name in [spec.reference, *gated]:
            if value in data.table.get(name, {}):
                others = others_at(data, name, value)
                tests.append(pass_test(data.table[name][value], value, spec.margin, data.higher, others))
    settle_passes(tests)
    lines = [describe_test(t, data.higher, axis) for t in tests]
    failing = [t.value for t in tests if t.arm.label == spec.reference and t.outcome == FAIL]
    fixed = [t for t in tests if t.value in failing and t.arm.label in gated and t.outcome == PASS]
    if fixed:
        key = f"where the simple RNN fails ({axis}={', '.join(map(str, failing))}): " + "; ".join(
            describe_test(t, data.higher, axis) for t in fixed
        )
        return Decision(claim, SUPPORTED, key, lines)
    if failing and all(t.outcome == FAIL for t in tests if t.value in failing and t.arm.label in gated):
        return Decision(
            claim, NOT_SUPPORTED, f"the gated cells fail too where the simple RNN fails ({axis}={failing})", lines
        )
    if not any(t.arm.label == spec.reference and t.outcome != PASS for t in tests):
        return Decision(claim, NOT_TESTED, f"the simple RNN passes at every {axis} of this experiment", lines)
    limited = any(t.reason for t in tests)
    longest = [describe_test(t, data.higher, axis) for t in tests if t.value == max(data.values)]
    return Decision(claim, BUDGET_LIMITED if limited else INCONCLUSIVE, "; ".join(longest), lines)


def describe_comparison(c: Comparison, higher: bool, axis: str) -> str:
    if c.effect is None:
        return f"{c.better.label} vs {c.than.label}{f' at {axis}={c.value}' if axis else ''}: too few runs"
    effect = (
        f"accuracy difference {c.effect.centre * 100:+.2f} points [{c.effect.low * 100:+.2f}, {c.effect.high * 100:+.2f}]"
        if higher
        else f"test-loss ratio {c.effect.text()}"
    )
    proof = " (budget-proof: the unconverged runs at the best score)" if c.reason else ""
    tested = (
        f"Holm p = {c.q_two:.2g}{proof}, equivalence (TOST) Holm p = {c.q_equivalent:.2g}"
        if c.q_two is not None
        else ""
    )
    where = f" at {axis}={c.value}" if axis else ""
    text = f"{c.better.label} vs {c.than.label}{where}: {effect}; {tested}: {c.outcome}"
    return text + (f" ({c.reason})" if c.reason else "")


def gap_lines(data: ExperimentData) -> list[str]:
    """The overfitting each arm showed: train (eval mode, a fixed train sample) minus validation, at the
    validation its checkpoint was taken from; mean over seeds (what claim 5 says pretraining curbs)."""
    axis, lines = data.spec.axis, []
    for value in data.values:
        found = [(name, data.gaps[(name, value)]) for name in data.table if data.gaps.get((name, value))]
        if found:
            shown = ", ".join(f"{name} {statistics.fmean(gaps):+.3f}" for name, gaps in found)
            lines.append(f"train − validation {data.metric} gap at {axis}={value} (mean over seeds): {shown}")
    return lines


def contrasts(data: ExperimentData, claim: str, delta: Delta) -> Decision:
    """Claims 3, 4, 5: each contrast [better, than] at each length, one Holm family."""
    spec, axis = data.spec, data.spec.axis
    found = []
    for better, than in spec.contrasts:
        for value in data.values:
            if value in data.table.get(better, {}) and value in data.table.get(than, {}):
                a, b = data.table[better][value], data.table[than][value]
                found.append(compare(a, b, value, data.higher, delta.bound(data.higher)))
    settle_comparisons(found)
    lines = [describe_comparison(c, data.higher, axis) for c in found]
    lines += gap_lines(data)
    verdict = comparisons_verdict(found)
    lines.append(f"δ = {delta.text(data.higher)}: {delta.reason}")
    decisive = [c for c in found if c.outcome in ("win", "loss")] or found
    key = describe_comparison(max(decisive, key=lambda c: c.value), data.higher, axis) if found else "no comparison"
    return Decision(claim, verdict, key, lines)


# -- 2a, 2b: the zero-input computation, and the trained tanh / linear pair ----------------------------------
def zero_input_lines(claim: str) -> tuple[bool, list[str]]:
    """(what the computation shows for the claim, its evidence): ||h_t|| of h_t = act(r Q h_{t-1}) over 100
    steps, Q orthogonal 64 x 64 (bench.report_diagnostics), at r = 1.1 (2a) or 0.9 (2b)."""
    from bench.report_diagnostics import zero_input_table  # (lazy: matplotlib)

    table = zero_input_table()
    hidden = table.hidden
    if claim == "2a":
        linear, tanh = table[("linear", 1.1)][-1], max(table[("tanh", 1.1)])
        shown = tanh <= hidden**0.5 + 1e-9 and linear > 1e3
        return shown, [
            f"zero input, r = 1.1, 100 steps: ‖h‖ linear {linear:.3g}, tanh at most {tanh:.3g} "
            f"(|h_i| ≤ 1 ⇒ ‖h‖ ≤ √{hidden} = {hidden**0.5:.3g})"
        ]
    linear, tanh = table[("linear", 0.9)][-1], table[("tanh", 0.9)][-1]
    return tanh > 10 * linear, [
        f"zero input, r = 0.9, 100 steps: ‖h‖ linear {linear:.3g}, tanh {tanh:.3g}",
        "|tanh(x)| ≤ |x|, so tanh can only shrink the state faster: it bounds explosion but cannot prevent "
        "vanishing (what the gated cells and IRNN address).",
    ]


def bounded_state(data: ExperimentData, claim: str) -> Decision:
    """2a: tanh bounds the state where a linear recurrence explodes: the zero-input computation decides
    the mechanism; the trained pair (`contrasts`: [tanh, linear], both unclipped) shows whether it
    matters in training: diverged runs and the loss ratio. 2b: the computation alone."""
    shown, lines = zero_input_lines(claim)
    if claim != "2a":
        return Decision(claim, SUPPORTED if shown else NOT_SUPPORTED, lines[0], lines)
    axis, trained = data.spec.axis, []
    for bounded, linear in data.spec.contrasts:
        for value in data.values:
            a, b = data.table.get(bounded, {}).get(value), data.table.get(linear, {}).get(value)
            if a is not None and b is not None:
                trained.append((value, a, b))
    for value, a, b in trained:
        lines.append(
            f"trained without clipping at {axis}={value}: {a.label} {a.misses} of {a.n} runs diverged, "
            f"{b.label} {b.misses} of {b.n}"
        )
    exploded = [value for value, a, b in trained if b.misses > a.misses]
    if not shown:
        return Decision(claim, NOT_SUPPORTED, lines[0], lines)
    if exploded:
        key = f"{lines[0]}; trained unclipped, the linear recurrence diverged where tanh did not at {axis}={exploded}"
        return Decision(claim, SUPPORTED, key, lines)
    lines.append(
        "the trained linear recurrence diverged no more often than tanh: the explosion the computation shows "
        "did not reach training at these lengths and this learning rate"
    )
    return Decision(claim, SUPPORTED, f"{lines[0]} (trained runs: no more divergence for linear)", lines)
