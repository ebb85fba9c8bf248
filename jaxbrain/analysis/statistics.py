"""Host-side statistics for the studies' tables: paired tests across sites, correlations with
confidence intervals, and means ± s.e.m. across groups by depth bin.

Inputs are small (one value per site, layer or model), so this is NumPy/SciPy; every
function drops non-finite entries and says how many it dropped instead of failing or
letting one NaN silently blank a table row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

CORRELATIONS = ("pearson", "spearman")


def _finite_pairs(a, b):
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same length, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep], int(keep.size - keep.sum())


def paired_test(a, b) -> dict:
    """Paired comparison of ``a`` and ``b`` (e.g. two models' values at the same sites).

    Returns n, n_dropped (pairs with a non-finite member), the means, the mean difference
    a − b and its s.e.m., Student's paired t and two-sided p (``scipy.stats.ttest_rel``),
    the Wilcoxon signed-rank p (no normality assumption) and the fraction of pairs with
    a > b.  NaN where undefined: t and p need ≥ 2 pairs whose differences vary, the Wilcoxon
    p a non-zero difference.
    """
    a, b, dropped = _finite_pairs(a, b)
    n = a.size
    diff = a - b
    nan = float("nan")
    t = p = p_wilcoxon = sem = nan
    if n >= 2:
        sem = float(np.std(diff, ddof=1) / np.sqrt(n))
        if np.any(diff != diff[0]):  # t is undefined for a constant difference
            t, p = (float(v) for v in stats.ttest_rel(a, b))
    if np.any(diff != 0):
        p_wilcoxon = float(stats.wilcoxon(a, b).pvalue)
    mean = (lambda v: float(np.mean(v))) if n else (lambda v: nan)
    return {
        "n": n, "n_dropped": dropped, "mean_a": mean(a), "mean_b": mean(b),
        "mean_diff": mean(diff), "sem_diff": sem, "t": t, "p": p, "p_wilcoxon": p_wilcoxon,
        "frac_a_gt_b": mean(a > b),
    }


def _rowwise_pearson(a, b):
    ac = a - a.mean(axis=1, keepdims=True)
    bc = b - b.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # constant resample -> NaN
        return np.sum(ac * bc, axis=1) / np.sqrt(np.sum(ac * ac, axis=1) * np.sum(bc * bc, axis=1))


def correlation_ci(
    x, y, method: str = "pearson", level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> dict:
    """Correlation of ``x`` and ``y`` with two confidence intervals at ``level``.

    ``fisher_low/high``: tanh(atanh r ± z/√(n−3)), exact-ish for Pearson on bivariate-normal
    data and the usual approximation for Spearman; ``boot_low/high``: percentiles of r over
    ``n_boot`` resamples of the pairs (``seed`` makes them reproducible), which needs no
    distributional assumption.  ``p`` is SciPy's two-sided p.  Non-finite pairs are dropped
    and counted; r needs n ≥ 3 and the Fisher interval n ≥ 4 (NaN otherwise).
    """
    if method not in CORRELATIONS:
        raise ValueError(f"unknown correlation {method!r}; expected one of {CORRELATIONS}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    x, y, dropped = _finite_pairs(x, y)
    n = x.size
    nan = float("nan")
    out = {"method": method, "n": n, "n_dropped": dropped, "r": nan, "p": nan, "level": level,
           "fisher_low": nan, "fisher_high": nan, "boot_low": nan, "boot_high": nan,
           "n_boot_valid": 0}
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    result = stats.pearsonr(x, y) if method == "pearson" else stats.spearmanr(x, y)
    r = float(result.statistic)
    out.update(r=r, p=float(result.pvalue))
    z_crit = stats.norm.ppf(0.5 + level / 2)
    if n > 3:
        with np.errstate(divide="ignore"):  # |r| = 1: z = ±inf, the interval collapses to r
            z = np.arctanh(r)
        half = z_crit / np.sqrt(n - 3)
        out.update(fisher_low=float(np.tanh(z - half)), fisher_high=float(np.tanh(z + half)))
    rows = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    xb, yb = x[rows], y[rows]
    if method == "spearman":
        xb, yb = stats.rankdata(xb, axis=1), stats.rankdata(yb, axis=1)
    boot = _rowwise_pearson(xb, yb)
    boot = boot[np.isfinite(boot)]
    if boot.size:
        low, high = np.quantile(boot, [0.5 - level / 2, 0.5 + level / 2])
        out.update(boot_low=float(low), boot_high=float(high), n_boot_valid=int(boot.size))
    return out


def mean_sem_by_bin(depths, values, groups, bins=10) -> pd.DataFrame:
    """Per depth bin: the mean over groups of each group's mean value in that bin, the s.e.m.
    across groups (ddof 1) and the number of groups with a value there.

    Averaging within a group first weights every group (e.g. architecture) equally however
    many layers it has in a bin.  ``bins``: a count of equal bins on [0, 1] (relative depth)
    or explicit edges; bins are half-open [low, high) except the last, which includes its
    upper edge.  Values outside the edges or non-finite are ignored; empty bins give NaN.
    """
    depths = np.asarray(depths, np.float64).ravel()
    values = np.asarray(values, np.float64).ravel()
    groups = np.asarray(groups).ravel()
    if not depths.size == values.size == groups.size:
        raise ValueError(
            f"depths, values and groups must have one entry each per point, got "
            f"{depths.size}, {values.size}, {groups.size}"
        )
    edges = np.linspace(0.0, 1.0, int(bins) + 1) if np.ndim(bins) == 0 else np.asarray(bins, float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bins must be a positive count or increasing edges, got {bins!r}")
    n_bins = edges.size - 1
    which = np.searchsorted(edges, depths, side="right") - 1
    which[depths == edges[-1]] = n_bins - 1
    inside = (which >= 0) & (which < n_bins) & np.isfinite(values)
    points = pd.DataFrame({"bin": which[inside], "group": groups[inside],
                           "value": values[inside]})
    per_group = points.groupby(["bin", "group"])["value"].mean()
    summary = per_group.groupby(level="bin").agg(["mean", "sem", "count"]).reindex(range(n_bins))
    return pd.DataFrame({
        "bin": np.arange(n_bins),
        "bin_low": edges[:-1],
        "bin_high": edges[1:],
        "bin_center": (edges[:-1] + edges[1:]) / 2,
        "mean": summary["mean"].to_numpy(float),
        "sem": summary["sem"].to_numpy(float),
        "n_groups": summary["count"].fillna(0).to_numpy(int),
    })
