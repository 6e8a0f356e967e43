"""The verdict rules, written once and applied to every claim experiment (the claims page states them:
`RULES`). Pure statistics over finished runs (no MLflow, no torch).

- A verdict in either direction rests only on converged runs: solved, early-stopped or no longer
  improving, and not flat. Still-improving runs make a comparison budget-limited, for wins and losses
  alike. A flat run (validation never left the baseline) counts as converged only when it trained at
  least PLATEAU_FACTOR times the steps the slowest run of the arms it is compared with needed to
  leave the baseline at the same length (those arms learned it; this one had that budget five
  times over). No other exception.
- Pass / fail at a length (claims 1, 7): the geometric mean of test loss / baseline against
  1 - margin (accuracy: the mean against baseline + margin x (1 - baseline)), one-sided at alpha;
  misses (diverged, failed) score at the baseline.
- A comparison (claims 3, 4, 5): the effect of the claimed-better arm over the other: a ratio of
  geometric mean losses (log scale) or a difference of mean accuracies (points), with its 95% Welch
  interval; significant when its Holm-adjusted two-sided p < alpha; "no effect larger than delta"
  when the Holm-adjusted TOST p < alpha (delta fixed in the claim's registry entry).
- One multiplicity family per claim within an experiment: Holm over its comparisons (every
  contrast x length) or its pass tests.
- Intervals respect their metric: losses and their ratios on the log scale (never below 0),
  accuracies and their differences clipped to [0, 1] and [-1, 1].
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from bench.stats import holm

ALPHA = 0.05
PLATEAU_FACTOR = 5
SUPPORTED, NOT_SUPPORTED, BUDGET_LIMITED = "supported", "not supported", "budget-limited"
INCONCLUSIVE, NOT_TESTED = "inconclusive", "not tested"
PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"


@dataclass
class ArmRuns:
    """One arm of an experiment at one length, at its chosen learning rate: what each finished seed gave."""

    label: str
    values: list[float] = field(default_factory=list)  # the test metric of finished runs
    baseline: float | None = None
    misses: int = 0  # diverged or failed runs (scored at the baseline)
    still_improving: int = 0
    flat_steps: list[float] = field(default_factory=list)  # steps trained by each run that never left the baseline
    escapes: list[float] = field(default_factory=list)  # step at which each run that left the baseline left it
    solved: int = 0
    lr: float | None = None
    params: int | None = None  # trainable parameters

    @property
    def n(self) -> int:
        return len(self.values) + self.misses


# -- intervals that respect the metric -----------------------------------------------------------------
def t_quantile(dof: float, p: float) -> float:
    from scipy.special import stdtrit  # (lazy: scipy only for reports)

    return float(stdtrit(dof, p))


def t_cdf(dof: float, t: float) -> float:
    from scipy.special import stdtr  # (lazy: scipy only for reports)

    return float(stdtr(dof, t))


@dataclass
class Estimate:
    """A centre and its 95% interval, in the metric's own units and range."""

    centre: float
    low: float
    high: float
    n: int

    def text(self, digits: int = 3) -> str:
        return f"{self.centre:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]"


def estimate(values: list[float], higher_is_better: bool) -> Estimate | None:
    """Accuracy: mean, t interval clipped to [0, 1]. Loss: geometric mean, t interval of the logs
    (never below 0). One value: no interval (the centre twice)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    if not higher_is_better:
        logs = [math.log(max(v, 1e-300)) for v in values]
        centre = statistics.fmean(logs)
        if len(logs) < 2:
            return Estimate(math.exp(centre), math.exp(centre), math.exp(centre), 1)
        half = t_quantile(len(logs) - 1, 0.975) * statistics.stdev(logs) / math.sqrt(len(logs))
        return Estimate(math.exp(centre), math.exp(centre - half), math.exp(centre + half), len(logs))
    centre = statistics.fmean(values)
    if len(values) < 2:
        return Estimate(centre, centre, centre, 1)
    half = t_quantile(len(values) - 1, 0.975) * statistics.stdev(values) / math.sqrt(len(values))
    return Estimate(centre, max(0.0, centre - half), min(1.0, centre + half), len(values))


# -- convergence ---------------------------------------------------------------------------------------
def convergence(arm: ArmRuns, others: list[ArmRuns]) -> str:
    """ "" when the arm's runs may carry a verdict; else why not (the budget-limited reason)."""
    if arm.still_improving:
        return f"{arm.label}: {arm.still_improving} of {arm.n} runs still improving when the budget ran out"
    if not arm.flat_steps:
        return ""
    learned = [step for other in others for step in other.escapes]
    flat_everywhere = any(other.flat_steps for other in others) or not learned
    if flat_everywhere:
        return (
            f"{arm.label}: {len(arm.flat_steps)} of {arm.n} runs never left the baseline, and no arm it is "
            "compared with learned this length in every run: a plateau cannot be told from a failure"
        )
    needed = PLATEAU_FACTOR * max(learned)
    if min(arm.flat_steps) < needed:
        return (
            f"{arm.label}: {len(arm.flat_steps)} of {arm.n} runs never left the baseline in "
            f"{min(arm.flat_steps):,.0f} steps, less than {PLATEAU_FACTOR}x the {max(learned):,.0f} the slowest "
            "compared run needed to leave it"
        )
    return ""


def plateau_note(arm: ArmRuns, others: list[ArmRuns]) -> str:
    """How a flat arm's plateau compares with the compared arms' escapes (for the evidence)."""
    learned = [step for other in others for step in other.escapes]
    if not arm.flat_steps or not learned:
        return ""
    return (
        f"{arm.label}: {len(arm.flat_steps)} of {arm.n} runs flat for ≥ {min(arm.flat_steps):,.0f} steps, "
        f"{min(arm.flat_steps) / max(max(learned), 1):.1f}x the {max(learned):,.0f} steps the slowest compared "
        f"run needed to leave the baseline (required: {PLATEAU_FACTOR}x)"
    )


# -- pass / fail at a length -------------------------------------------------------------------------
@dataclass
class PassTest:
    arm: ArmRuns
    value: int
    score: Estimate | None  # loss / baseline (geometric) or accuracy
    limit: float
    p_pass: float | None  # one-sided: the arm beats the limit
    p_fail: float | None  # one-sided: it does not reach it
    outcome: str = UNDECIDED  # after Holm within the family
    reason: str = ""  # not converged: why a fail cannot count


def scores(arm: ArmRuns, higher_is_better: bool) -> list[float]:
    """Per run: test loss / baseline, or the accuracy; misses at the baseline."""
    if not arm.baseline:
        return []
    if higher_is_better:
        return arm.values + [arm.baseline] * arm.misses
    return [v / arm.baseline for v in arm.values] + [1.0] * arm.misses


def one_sample(values: list[float], limit: float) -> tuple[float | None, float | None]:
    """One-sided t p-values that the mean is below / above `limit`."""
    if len(values) < 2:
        return None, None
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    if sd == 0:
        return (0.0, 1.0) if mean < limit else (1.0, 0.0) if mean > limit else (1.0, 1.0)
    t = (mean - limit) / (sd / math.sqrt(len(values)))
    below = t_cdf(len(values) - 1, t)
    return below, 1 - below


def pass_test(arm: ArmRuns, value: int, margin: float, higher_is_better: bool, others: list[ArmRuns]) -> PassTest:
    values = scores(arm, higher_is_better)
    if higher_is_better:
        limit = arm.baseline + margin * (1 - arm.baseline) if arm.baseline is not None else math.nan
        below, above = one_sample(values, limit)
        p_pass, p_fail = above, below
    else:
        limit = 1 - margin
        below, above = one_sample([math.log(max(v, 1e-300)) for v in values], math.log(limit))
        p_pass, p_fail = below, above
    return PassTest(
        arm, value, estimate(values, higher_is_better), limit, p_pass, p_fail, reason=convergence(arm, others)
    )


def settle_passes(tests: list[PassTest]) -> None:
    """Holm over the family's pass and fail p-values (each test is one two-sided question: passes or
    fails); a fail counts only from converged runs (else undecided, with the reason kept)."""
    adjusted = holm([None if t.p_pass is None else min(1.0, 2 * min(t.p_pass, t.p_fail)) for t in tests])
    for test, q in zip(tests, adjusted):
        if q is None or q >= ALPHA:
            test.outcome = UNDECIDED
        elif test.p_pass < test.p_fail:
            test.outcome = PASS
        else:
            test.outcome = FAIL if not test.reason else UNDECIDED


# -- comparisons ----------------------------------------------------------------------------------------
@dataclass
class Comparison:
    better: ArmRuns  # the arm the claim says is better
    than: ArmRuns
    value: int
    effect: Estimate | None  # ratio (losses: better / than, < 1 favours `better`) or difference (accuracy)
    p_two: float | None  # Welch, two-sided
    p_equivalent: float | None  # TOST against delta
    favours_better: bool | None
    delta: float  # log-ratio bound (losses) or points (accuracy)
    reason: str = ""  # not converged: why
    q_two: float | None = None  # Holm-adjusted within the claim
    q_equivalent: float | None = None
    outcome: str = UNDECIDED  # win | loss | equivalent | undecided | budget-limited


def welch(a: list[float], b: list[float]) -> tuple[float, float, float] | None:
    """(difference of means, its standard error, Welch–Satterthwaite degrees of freedom)."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se else float(len(a) + len(b) - 2)
    return statistics.fmean(a) - statistics.fmean(b), se, dof


def compare(better: ArmRuns, than: ArmRuns, value: int, higher_is_better: bool, delta: float) -> Comparison:
    """The claimed-better arm against the other, from their runs' scores (misses at the baseline)."""
    a, b = scores(better, higher_is_better), scores(than, higher_is_better)
    if not higher_is_better:
        a, b = [math.log(max(v, 1e-300)) for v in a], [math.log(max(v, 1e-300)) for v in b]
    bound = delta if higher_is_better else math.log(delta)
    reason = "; ".join(filter(None, [convergence(better, [than]), convergence(than, [better])]))
    found = welch(a, b)
    if found is None:
        return Comparison(better, than, value, None, None, None, None, delta, reason or "fewer than 2 runs an arm")
    diff, se, dof = found
    if se == 0:
        p_two = 0.0 if diff else 1.0
        p_eq = 0.0 if abs(diff) < bound else 1.0
        low = high = diff
    else:
        t = diff / se
        p_two = 2 * t_cdf(dof, -abs(t))
        p_eq = max(1 - t_cdf(dof, (diff + bound) / se), t_cdf(dof, (diff - bound) / se))  # TOST
        half = t_quantile(dof, 0.975) * se
        low, high = diff - half, diff + half
    if higher_is_better:
        effect = Estimate(diff, max(-1.0, low), min(1.0, high), len(a) + len(b))
        favours = diff > 0
    else:
        effect = Estimate(math.exp(diff), math.exp(low), math.exp(high), len(a) + len(b))
        favours = diff < 0
    return Comparison(better, than, value, effect, p_two, p_eq, favours if diff else None, delta, reason)


def settle_comparisons(comparisons: list[Comparison]) -> None:
    """Holm within the claim's family for the differences and, separately, for the equivalences; a
    decision counts only from converged runs (else budget-limited)."""
    for c, q in zip(comparisons, holm([c.p_two for c in comparisons])):
        c.q_two = q
    for c, q in zip(comparisons, holm([c.p_equivalent for c in comparisons])):
        c.q_equivalent = q
    for c in comparisons:
        if c.effect is None:
            c.outcome = UNDECIDED
        elif c.reason:
            c.outcome = BUDGET_LIMITED
        elif c.q_two is not None and c.q_two < ALPHA:
            c.outcome = "win" if c.favours_better else "loss"
        elif c.q_equivalent is not None and c.q_equivalent < ALPHA:
            c.outcome = "equivalent"
        else:
            c.outcome = UNDECIDED


def comparisons_verdict(comparisons: list[Comparison]) -> str:
    """Supported: a significant win and no significant loss. Not supported: losses and no win, or
    every comparison equivalent (no effect larger than delta). Else budget-limited (some comparison
    rests on runs that had not converged) or inconclusive."""
    outcomes = [c.outcome for c in comparisons]
    wins, losses = outcomes.count("win"), outcomes.count("loss")
    if wins and not losses:
        return SUPPORTED
    if losses and not wins:
        return NOT_SUPPORTED
    if outcomes and all(o == "equivalent" for o in outcomes):
        return NOT_SUPPORTED
    if wins and losses:
        return INCONCLUSIVE
    if BUDGET_LIMITED in outcomes:
        return BUDGET_LIMITED
    return INCONCLUSIVE if outcomes else NOT_TESTED


RULES = [
    "A verdict in either direction rests only on converged runs: solved (validation below the "
    "experiment's `solved` share of the baseline), early-stopped, or no longer improving (best validation "
    "gained under 1% of the baseline over the last fifth of the steps), and not flat. Still-improving runs "
    "make a comparison or a fail **budget-limited**, for wins and losses alike.",
    f"A flat run (validation never left the baseline) counts as converged only when it trained at least "
    f"{PLATEAU_FACTOR}x the steps the slowest run of the arms it is compared with (at the same length) "
    "needed to leave the baseline. There is no other exception.",
    f"Pass / fail at a length (claims 1, 7): the geometric mean of test loss / baseline against 1 − margin "
    f"(accuracy: the mean against baseline + margin × (1 − baseline)), one-sided t on the logs; misses "
    f"(diverged, failed) score at the baseline; a pass or fail needs Holm-adjusted p < {ALPHA}.",
    "A comparison (claims 3, 4, 5): the claimed-better arm's effect: a ratio of geometric-mean losses (< 1 "
    "favours it) or a difference of mean accuracies (points), with its 95% Welch interval. **Supported**: a "
    f"significant win (Holm-adjusted two-sided p < {ALPHA}) and no significant loss. **Not supported**: "
    "significant losses and no win, or every comparison within ±δ (TOST, Holm-adjusted p < "
    f"{ALPHA}: no effect larger than δ), δ fixed in the claim's entry before its experiment ran.",
    "One multiplicity family per claim and experiment: Holm over its comparisons (contrasts × lengths) or "
    "its pass/fail tests.",
    "Intervals respect their metric: losses and loss ratios on the log scale (never below 0), accuracies "
    "clipped to [0, 1] and their differences to [−1, 1].",
    "The learning rate of each arm is chosen per length by the best mean validation loss over its seeds; "
    "test is read once, from each run's best-validation checkpoint.",
    "Smoke and test profiles are looks at the machinery: they never give a verdict.",
]
