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
from dataclasses import dataclass, field

from bench.stats import below_p, holm, summarize, t_cdf, t_quantile, two_sided, welch

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
    still: list[bool] = field(default_factory=list)  # per value: still improving when the budget ran out
    flat: list[float | None] = field(default_factory=list)  # per value: steps trained if it never left the baseline
    escapes: list[float] = field(default_factory=list)  # step at which each run that left the baseline left it
    solved: int = 0
    lr: float | None = None
    params: int | None = None  # trainable parameters

    @property
    def n(self) -> int:
        return len(self.values) + self.misses

    @property
    def still_improving(self) -> int:
        return sum(self.still)

    @property
    def flat_steps(self) -> list[float]:
        return [steps for steps in self.flat if steps is not None]


# -- intervals that respect the metric -----------------------------------------------------------------
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
        found = summarize([math.log(max(v, 1e-300)) for v in values])
        if found.n < 2:
            return Estimate(math.exp(found.mean), math.exp(found.mean), math.exp(found.mean), 1)
        return Estimate(math.exp(found.mean), math.exp(found.ci_low), math.exp(found.ci_high), found.n)
    found = summarize(values)
    if found.n < 2:
        return Estimate(found.mean, found.mean, found.mean, 1)
    return Estimate(found.mean, max(0.0, found.ci_low), min(1.0, found.ci_high), found.n)


# -- convergence ---------------------------------------------------------------------------------------
def plateau_needed(others: list[ArmRuns]) -> float | None:
    """The plateau a flat run must outlast: PLATEAU_FACTOR x the slowest escape of the compared arms whose
    every run left the baseline; None when none did (then no plateau counts)."""
    learned = [max(o.escapes) for o in others if o.escapes and not o.flat_steps and len(o.escapes) == len(o.values)]
    return PLATEAU_FACTOR * max(learned) if learned else None


def unsettled_runs(arm: ArmRuns, others: list[ArmRuns]) -> tuple[list[int], list[int]]:
    """Indices of the arm's values from runs that had not converged: (still improving, flat with a
    plateau shorter than the rule's)."""
    needed = plateau_needed(others)
    still = [i for i, s in enumerate(arm.still) if s]
    flat = [i for i, f in enumerate(arm.flat) if f is not None and (needed is None or f < needed) and i not in still]
    return still, flat


def unsettled(arm: ArmRuns, others: list[ArmRuns]) -> list[int]:
    still, flat = unsettled_runs(arm, others)
    return still + flat


def convergence(arm: ArmRuns, others: list[ArmRuns]) -> str:
    """ "" when every run of the arm converged; else which had not (and why)."""
    still, flat = unsettled_runs(arm, others)
    if not still and not flat:
        return ""
    parts = [f"{len(still)} still improving when the budget ran out"] * bool(still)
    if flat:
        needed = plateau_needed(others)
        shortest = min(arm.flat[i] for i in flat)
        parts.append(
            f"{len(flat)} flat for {shortest:,.0f} steps, "
            + (
                f"under the {needed:,.0f} the plateau rule asks"
                if needed
                else "and no compared arm learned this length"
            )
        )
    return f"{arm.label}: {len(still) + len(flat)} of {arm.n} runs not converged ({'; '.join(parts)})"


def plateau_note(arm: ArmRuns, others: list[ArmRuns]) -> str:
    """How a flat arm's plateau compares with the compared arms' escapes (for the evidence)."""
    needed = plateau_needed(others)
    if not arm.flat_steps or needed is None:
        return ""
    return (
        f"{arm.label}: {len(arm.flat_steps)} of {arm.n} runs flat for ≥ {min(arm.flat_steps):,.0f} steps; the "
        f"plateau rule asks {needed:,.0f} ({PLATEAU_FACTOR}x the slowest compared arm's escape)"
    )


def worst_case(arm: ArmRuns, others: list[ArmRuns], values: list[float], best: float) -> list[float]:
    """The arm's scores with every run that had not converged replaced by `best`: how it would stand if a
    longer budget let each of them reach the best score (accuracy 1; a loss: the best any compared run
    reached). A decision that survives this cannot be changed by more steps."""
    replaced = list(values)  # the arm's finished values come first (scores: values, then misses)
    for i in unsettled(arm, others):
        replaced[i] = best
    return replaced


# -- pass / fail at a length -------------------------------------------------------------------------
@dataclass
class PassTest:
    arm: ArmRuns
    value: int
    score: Estimate | None  # loss / baseline (geometric) or accuracy
    limit: float
    p_pass: float | None  # one-sided: the arm beats the limit
    p_fail: float | None  # one-sided: it does not reach it, even if its unconverged runs reached the best score
    outcome: str = UNDECIDED  # after Holm within the family
    reason: str = ""  # runs that had not converged, and whether the fail survives them


def scores(arm: ArmRuns, higher_is_better: bool) -> list[float]:
    """Per run: test loss / baseline, or the accuracy; misses at the baseline."""
    if not arm.baseline:
        return []
    if higher_is_better:
        return arm.values + [arm.baseline] * arm.misses
    return [v / arm.baseline for v in arm.values] + [1.0] * arm.misses


def best_score(arms: list[ArmRuns], higher_is_better: bool) -> float:
    """The best score a run could reach: accuracy 1; for a loss ratio, the best any of `arms` reached."""
    if higher_is_better:
        return 1.0
    return min((v for a in arms for v in scores(a, False)), default=1.0)


def one_sample(values: list[float], limit: float) -> tuple[float | None, float | None]:
    """One-sided t p-values that the mean is below / above `limit`."""
    return below_p(values, limit), below_p([-v for v in values], -limit)


def pass_p(values: list[float], limit: float, higher_is_better: bool) -> tuple[float | None, float | None]:
    """(p that the mean beats the limit, p that it does not): accuracy on its scale, loss ratios on logs."""
    if higher_is_better:
        below, above = one_sample(values, limit)
        return above, below
    return one_sample([math.log(max(v, 1e-300)) for v in values], math.log(limit))


def pass_test(arm: ArmRuns, value: int, margin: float, higher_is_better: bool, others: list[ArmRuns]) -> PassTest:
    values = scores(arm, higher_is_better)
    if higher_is_better:
        limit = arm.baseline + margin * (1 - arm.baseline) if arm.baseline is not None else math.nan
    else:
        limit = 1 - margin
    p_pass, _ = pass_p(values, limit, higher_is_better)
    reason = convergence(arm, others)
    best = best_score([arm, *others], higher_is_better) if others else (1.0 if higher_is_better else 1e-300)
    _, p_fail = pass_p(worst_case(arm, others, values, best), limit, higher_is_better)
    if reason:
        reason += f"; a fail must hold with them at the best score reached ({best:.3g})"
    return PassTest(arm, value, estimate(values, higher_is_better), limit, p_pass, p_fail, reason=reason)


def settle_passes(tests: list[PassTest]) -> None:
    """Holm over the family: each test's p is the smaller of passing and (budget-proof) failing, doubled
    (one two-sided question per test); a pass needs no convergence (more steps only help), a fail holds
    only if it survives the runs that had not converged reaching the best score."""
    ps = [None if t.p_pass is None or t.p_fail is None else min(1.0, 2 * min(t.p_pass, t.p_fail)) for t in tests]
    for test, q in zip(tests, holm(ps)):
        if q is None or q >= ALPHA:
            test.outcome = UNDECIDED
        else:
            test.outcome = PASS if test.p_pass < test.p_fail else FAIL


# -- comparisons ----------------------------------------------------------------------------------------
@dataclass
class Comparison:
    better: ArmRuns  # the arm the claim says is better
    than: ArmRuns
    value: int
    effect: Estimate | None  # ratio (losses: better / than, < 1 favours `better`) or difference (accuracy)
    p_two: float | None  # Welch, two-sided; with unconverged runs, budget-proof (see compare)
    p_equivalent: float | None  # TOST against delta
    favours_better: bool | None
    delta: float  # log-ratio bound (losses) or points (accuracy)
    reason: str = ""  # runs that had not converged
    q_two: float | None = None  # Holm-adjusted within the claim
    q_equivalent: float | None = None
    outcome: str = UNDECIDED  # win | loss | equivalent | undecided | budget-limited


def compare(better: ArmRuns, than: ArmRuns, value: int, higher_is_better: bool, delta: float) -> Comparison:
    """The claimed-better arm against the other, from their runs' scores (misses at the baseline). With
    runs that had not converged, the p-value is the budget-proof one: the arm the data disfavours gets
    each of its unconverged runs at the best score reached, and the difference must survive that."""

    def scale(values: list[float]) -> list[float]:
        return values if higher_is_better else [math.log(max(v, 1e-300)) for v in values]

    a_scores, b_scores = scores(better, higher_is_better), scores(than, higher_is_better)
    a, b = scale(a_scores), scale(b_scores)
    bound = delta if higher_is_better else math.log(delta)
    reason = "; ".join(filter(None, [convergence(better, [than]), convergence(than, [better])]))
    found = welch(a, b)
    if found is None:
        return Comparison(better, than, value, None, None, None, None, delta, reason or "fewer than 2 runs an arm")
    diff, se, dof = found
    favours = (diff > 0) == higher_is_better if diff else None
    p_two = two_sided(found)
    if reason and favours is not None:
        best = best_score([better, than], higher_is_better)
        if favours:  # `than` would have to catch up
            proof = welch(a, scale(worst_case(than, [better], b_scores, best)))
        else:
            proof = welch(scale(worst_case(better, [than], a_scores, best)), b)
        same_side = proof is not None and proof[0] and (proof[0] > 0) == (diff > 0)
        p_two = two_sided(proof) if same_side else 1.0
    if se == 0:
        p_eq = 0.0 if abs(diff) < bound else 1.0
        low = high = diff
    else:
        p_eq = max(1 - t_cdf(dof, (diff + bound) / se), t_cdf(dof, (diff - bound) / se))  # TOST
        half = t_quantile(dof, 0.975) * se
        low, high = diff - half, diff + half
    if higher_is_better:
        effect = Estimate(diff, max(-1.0, low), min(1.0, high), len(a) + len(b))
    else:
        effect = Estimate(math.exp(diff), math.exp(low), math.exp(high), len(a) + len(b))
    return Comparison(better, than, value, effect, p_two, p_eq, favours, delta, reason)


def settle_comparisons(comparisons: list[Comparison]) -> None:
    """Holm within the claim's family for the (budget-proof) differences and, separately, for the
    equivalences. A difference with unconverged runs stands only if it survives them at the best score;
    an equivalence needs every run converged."""
    for c, q in zip(comparisons, holm([c.p_two for c in comparisons])):
        c.q_two = q
    for c, q in zip(comparisons, holm([c.p_equivalent for c in comparisons])):
        c.q_equivalent = q
    for c in comparisons:
        if c.effect is None:
            c.outcome = UNDECIDED
        elif c.q_two is not None and c.q_two < ALPHA:
            c.outcome = "win" if c.favours_better else "loss"
        elif c.reason:
            c.outcome = BUDGET_LIMITED
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
    "A run has converged when it was solved (validation below the experiment's `solved` share of the "
    "baseline), early-stopped, or no longer improving (best validation gained under 1% of the baseline over "
    "the last fifth of its steps), and is not flat. A flat run (validation never left the baseline) counts as "
    f"converged only when it trained at least {PLATEAU_FACTOR}x the steps the slowest compared arm (every run "
    "of which left the baseline) needed to leave it at the same length. There is no other exception.",
    "A verdict in either direction must survive the runs that had not converged: each is replaced by the "
    "best score a run could reach (accuracy 1; a loss ratio: the best any compared run reached) on the side "
    "the verdict goes against, and the test is made again. If the verdict does not survive, a longer budget "
    "could change it: **budget-limited**, for wins and losses alike. An equivalence needs every run converged.",
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
    "The learning rate of each arm is chosen per length by the best mean validation value of the task's "
    "monitor over its seeds (loss, or accuracy for text); test is read once, from each run's best-validation "
    "checkpoint.",
    "Where a cpu profile's longest lag cannot decide claim 1 or 7, the page says so (not decided at CPU "
    "scale), with the lag reached, what it shows and the gpu profile's estimated time; no other claim has "
    "that way out.",
    "Smoke and test profiles are looks at the machinery: they never give a verdict.",
]
