"""Small statistics for comparing variants over seeds: mean ± sd, t intervals, Welch, Holm.

Built on scipy.special's Student-t functions: importing scipy.stats costs about a second, which a
report (goal: under 10 s for 200 runs) should not pay."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

# Lazy imports: heavy libraries (torch, Lightning, MLflow, Optuna, datasets, numpy, scipy) are
# imported inside the functions that use them, so `python -m bench --help` and `list` stay fast
# (tests/test_cli.py checks that they import no torch or Lightning).


@dataclass
class Summary:
    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float


def t_quantile(dof: float, p: float) -> float:
    """Student's t quantile."""
    from scipy.special import stdtrit  # (lazy: scipy, ~0.3 s, only for reports)

    return float(stdtrit(dof, p))


def t_cdf(dof: float, t: float) -> float:
    """Student's t distribution function."""
    from scipy.special import stdtr  # (lazy: scipy, as t_quantile)

    return float(stdtr(dof, t))


def summarize(values: list[float], confidence: float = 0.95) -> Summary | None:
    """Mean, sample standard deviation and the t-based confidence interval of the mean."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Summary(len(values), mean, float("nan"), float("nan"), float("nan"))
    sd = statistics.stdev(values)
    half = t_quantile(len(values) - 1, 0.5 + confidence / 2) * sd / math.sqrt(len(values))
    return Summary(len(values), mean, sd, mean - half, mean + half)


def one_sided_bound(values: list[float], upper: bool = True, confidence: float = 0.95) -> float | None:
    """The one-sided t bound of the mean: mean + t(confidence, n-1) sd / sqrt(n) (or minus, for a lower
    bound). None with fewer than 2 values: one seed has no interval."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if len(values) < 2:
        return None
    half = t_quantile(len(values) - 1, confidence) * statistics.stdev(values) / math.sqrt(len(values))
    return statistics.fmean(values) + (half if upper else -half)


def welch_p_log(a: list[float], b: list[float]) -> float | None:
    """Welch on log values: for losses (MSE, cross-entropy) whose arms differ by ratios (0.00022 vs
    0.0278 is 126x apart, yet its raw-scale variance can swamp the difference). Non-positive -> None."""
    if any(v <= 0 for v in [*a, *b]):
        return None
    return welch_p([math.log(v) for v in a], [math.log(v) for v in b])


def welch(a: list[float], b: list[float]) -> tuple[float, float, float] | None:
    """(difference of means, its standard error, Welch–Satterthwaite degrees of freedom); None when
    either group has fewer than 2 values."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se else float(len(a) + len(b) - 2)
    return statistics.fmean(a) - statistics.fmean(b), se, dof


def two_sided(found: tuple[float, float, float]) -> float:
    """The two-sided p-value of a `welch` difference (a zero standard error: 0 unless the means agree)."""
    diff, se, dof = found
    if se == 0:
        return 0.0 if diff else 1.0
    return 2 * t_cdf(dof, -abs(diff / se))


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided Welch t-test p-value; None when either group has fewer than 2 values."""
    found = welch(a, b)
    return None if found is None else two_sided(found)


def below_p(values: list[float], reference: float) -> float | None:
    """One-sided one-sample t-test that the mean is below `reference`."""
    if len(values) < 2:
        return None
    if statistics.pstdev(values) == 0:
        return 0.0 if statistics.fmean(values) < reference else 1.0
    t = (statistics.fmean(values) - reference) / (statistics.stdev(values) / math.sqrt(len(values)))
    return t_cdf(len(values) - 1, t)


@dataclass
class Comparison:
    """Two groups of final values (one per seed): their summaries, the two-sided Welch p-value, and
    whether the first group is the better one."""

    a: Summary | None
    b: Summary | None
    p: float | None
    a_better: bool | None


def compare(a: list[float], b: list[float], higher_is_better: bool) -> Comparison:
    """Welch on the values for accuracies, on log values for losses (MSE, cross-entropy, perplexity),
    which differ by ratios: 0.00022 vs 0.0278 is a 126-fold difference, not a small one."""
    sa, sb = summarize(a), summarize(b)
    p = welch_p(a, b) if higher_is_better else welch_p_log(a, b)
    better = None if not (sa and sb) else (sa.mean > sb.mean if higher_is_better else sa.mean < sb.mean)
    return Comparison(sa, sb, p, better)


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (family-wise error control), None passed through."""
    indexed = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (len(indexed) - rank) * p))
        adjusted[i] = running
    return adjusted
