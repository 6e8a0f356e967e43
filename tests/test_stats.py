"""The report's statistics against scipy.stats (the reference implementation)."""
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
