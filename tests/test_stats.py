"""The report's statistics against scipy.stats (the reference implementation)."""

import statistics

import pytest
from scipy import stats as scipy_stats

from bench.stats import below_p, holm, summarize, welch_p

A, B = [0.12, 0.15, 0.11, 0.14], [0.30, 0.22, 0.27]


def test_confidence_interval_matches_scipy():
    summary = summarize(A)
    low, high = scipy_stats.t.interval(0.95, len(A) - 1, loc=summary.mean, scale=scipy_stats.sem(A))
    assert (summary.ci_low, summary.ci_high) == pytest.approx((low, high))


def test_welch_matches_scipy():
    assert welch_p(A, B) == pytest.approx(scipy_stats.ttest_ind(A, B, equal_var=False).pvalue)
    assert welch_p(A, [0.2]) is None


def test_one_sided_test_against_a_baseline_matches_scipy():
    assert below_p(A, 0.2) == pytest.approx(scipy_stats.ttest_1samp(A, 0.2, alternative="less").pvalue)


def test_holm_adjustment():
    adjusted = holm([0.01, 0.04, None, 0.03])
    assert adjusted[2] is None
    assert [adjusted[0], adjusted[1], adjusted[3]] == pytest.approx([0.03, 0.06, 0.06])


def test_one_sided_upper_bound_matches_scipy():
    from scipy import stats as scipy_stats

    from bench.stats import one_sided_bound

    values = [0.85, 0.93, 0.80, 0.88]
    expected = scipy_stats.t.interval(
        0.90, len(values) - 1, loc=statistics.fmean(values), scale=scipy_stats.sem(values)
    )[1]  # two-sided 90% = one-sided 95%
    assert one_sided_bound(values) == pytest.approx(expected, rel=1e-12)
    assert one_sided_bound([0.5]) is None


def test_log_scale_welch_separates_losses_that_differ_by_ratios():
    from bench.stats import welch_p, welch_p_log

    small, large = [0.00022, 0.00018, 0.00030], [0.0278, 0.0052, 0.0510]  # ~120x apart on average
    assert welch_p(small, large) > 0.05
    assert welch_p_log(small, large) < 0.05
