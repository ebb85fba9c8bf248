"""Paired tests and correlations against SciPy; confidence intervals and binned means by hand."""

import numpy as np
import pytest
from scipy import stats

from jaxbrain.analysis import correlation_ci, mean_sem_by_bin, paired_test


def test_paired_test_matches_scipy_and_drops_nan_pairs(rng):
    a = rng.standard_normal(30) + 0.4
    b = rng.standard_normal(30)
    a_nan, b_nan = a.copy(), b.copy()
    a_nan[3], b_nan[7] = np.nan, np.inf
    got = paired_test(a_nan, b_nan)
    keep = np.ones(30, bool)
    keep[[3, 7]] = False
    a, b = a[keep], b[keep]
    t = stats.ttest_rel(a, b)
    assert got["n"] == 28 and got["n_dropped"] == 2
    assert got["t"] == pytest.approx(t.statistic, rel=1e-12)
    assert got["p"] == pytest.approx(t.pvalue, rel=1e-12)
    assert got["p_wilcoxon"] == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-12)
    assert got["mean_diff"] == pytest.approx(np.mean(a - b), rel=1e-12)
    assert got["sem_diff"] == pytest.approx(stats.sem(a - b), rel=1e-12)
    assert got["mean_a"] == pytest.approx(a.mean()) and got["mean_b"] == pytest.approx(b.mean())
    assert got["frac_a_gt_b"] == pytest.approx(np.mean(a > b))


def test_paired_test_undefined_cases_are_nan():
    same = paired_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same["mean_diff"] == 0 and np.isnan(same["t"]) and np.isnan(same["p_wilcoxon"])
    empty = paired_test([np.nan], [1.0])
    assert empty["n"] == 0 and empty["n_dropped"] == 1 and np.isnan(empty["mean_a"])
    with pytest.raises(ValueError, match="same length"):
        paired_test([1.0, 2.0], [1.0])


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_correlation_ci(rng, method):
    x = rng.standard_normal(40)
    y = 0.6 * x + rng.standard_normal(40)
    got = correlation_ci(x, y, method, level=0.9, n_boot=500, seed=3)
    ref = stats.pearsonr(x, y) if method == "pearson" else stats.spearmanr(x, y)
    assert got["r"] == pytest.approx(ref.statistic, rel=1e-12)
    assert got["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    half = 1.6448536269514722 / np.sqrt(37)  # z_0.95 / sqrt(n - 3)
    assert got["fisher_low"] == pytest.approx(np.tanh(np.arctanh(ref.statistic) - half))
    assert got["fisher_high"] == pytest.approx(np.tanh(np.arctanh(ref.statistic) + half))
    assert got["boot_low"] < got["r"] < got["boot_high"]
    assert got["n_boot_valid"] == 500
    assert correlation_ci(x, y, method, level=0.9, n_boot=500, seed=3) == got
    other = correlation_ci(x, y, method, level=0.9, n_boot=500, seed=4)
    assert other["boot_low"] != got["boot_low"] and other["r"] == got["r"]


def test_correlation_ci_bootstrap_is_the_percentile_of_resampled_r(rng):
    x, y = rng.standard_normal(12), rng.standard_normal(12)
    got = correlation_ci(x, y, n_boot=50, seed=0)
    rows = np.random.default_rng(0).integers(0, 12, size=(50, 12))
    boot = [np.corrcoef(x[i], y[i])[0, 1] for i in rows]
    assert got["boot_low"] == pytest.approx(np.quantile(boot, 0.025), rel=1e-12)
    assert got["boot_high"] == pytest.approx(np.quantile(boot, 0.975), rel=1e-12)


def test_correlation_ci_small_or_constant_samples():
    three = correlation_ci([1.0, 2.0, 4.0], [1.0, 3.0, 2.0], n_boot=20)
    assert np.isfinite(three["r"]) and np.isnan(three["fisher_low"])
    assert np.isnan(correlation_ci([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])["r"])
    with pytest.raises(ValueError, match="unknown correlation"):
        correlation_ci([1.0], [1.0], method="kendall")


def test_mean_sem_by_bin_by_hand():
    # two architectures; A has two layers in the first bin (averaged first), B one
    depths = [0.0, 0.2, 0.1, 0.6, 1.0, 1.0, 0.7]
    values = [1.0, 3.0, 4.0, 5.0, 6.0, 10.0, np.nan]
    groups = ["A", "A", "B", "A", "A", "B", "B"]
    got = mean_sem_by_bin(depths, values, groups, bins=[0.0, 0.5, 0.75, 1.0])
    # bin 0: A -> 2, B -> 4; bin 1: A -> 5 (B's 0.7 is NaN); bin 2: A -> 6, B -> 10
    np.testing.assert_allclose(got["mean"], [3.0, 5.0, 8.0])
    np.testing.assert_allclose(got["sem"], [1.0, np.nan, 2.0])
    assert got["n_groups"].tolist() == [2, 1, 2]
    np.testing.assert_allclose(got["bin_center"], [0.25, 0.625, 0.875])
    empty = mean_sem_by_bin(depths, values, groups, bins=4)
    assert empty["n_groups"].tolist() == [2, 0, 1, 2] and np.isnan(empty["mean"][1])
