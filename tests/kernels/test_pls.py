"""PLS against scikit-learn's PLSRegression(scale=False) (float64).

Tolerances: <= 1e-4 relative to scikit-learn's defaults on well-conditioned data (distinct
singular values of XᵀY); <= 1e-6 relative to scikit-learn run to convergence (tol=1e-15) on
generic data, where scikit-learn's default tol=1e-6 itself is up to ~2e-3 off.
"""

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression

from jaxbrain.kernels import pls_cv_predict, pls_fit, pls_predict, stratified_shuffle_splits


def well_conditioned(rng, n, d, m, n_latent=8):
    latent = rng.standard_normal((n, n_latent)) * 2.0 ** -np.arange(n_latent)  # clear gaps
    x = latent @ rng.standard_normal((n_latent, d)) + 0.05 * rng.standard_normal((n, d)) + 2.0
    y = latent @ rng.standard_normal((n_latent, m)) + 0.05 * rng.standard_normal((n, m)) - 1.0
    return x, y


def generic(rng, n, d, m):
    latent = rng.standard_normal((n, 8))
    x = latent @ rng.standard_normal((8, d)) + 0.5 * rng.standard_normal((n, d)) + 3.0
    y = latent @ rng.standard_normal((8, m)) + rng.standard_normal((n, m)) + 1.0
    return x, y


def rel_err(a, b):
    return np.abs(np.asarray(a) - b).max() / np.abs(b).max()


@pytest.mark.parametrize("n,d,m", [(200, 30, 6), (120, 300, 10), (150, 12, 40)])
def test_matches_sklearn_defaults_on_well_conditioned_data(rng, n, d, m):
    x, y = well_conditioned(rng, n, d, m)
    n_components = 6
    expected = PLSRegression(n_components, scale=False).fit(x, y).predict(x)
    got = pls_predict(pls_fit(x, y, n_components), x)
    assert rel_err(got, expected) <= 1e-4


@pytest.mark.parametrize("n,d,m,a", [(300, 40, 10, 10), (200, 30, 50, 10), (150, 400, 20, 25)])
def test_matches_converged_sklearn_on_generic_data(rng, n, d, m, a):
    x, y = generic(rng, n, d, m)
    reference = PLSRegression(a, scale=False, tol=1e-15, max_iter=100_000).fit(x, y)
    x_new = x[:20] + rng.standard_normal((20, d))
    assert rel_err(pls_predict(pls_fit(x, y, a), x_new), reference.predict(x_new)) <= 1e-6


def test_cross_validated_fits_equal_independent_fits(rng):
    """Down-dated per-split statistics give the same model as fitting each split alone."""
    x, y = generic(rng, 120, 50, 7)
    labels = np.repeat(np.arange(12), 10)
    splits = stratified_shuffle_splits(labels, n_splits=4)
    pred, score_sqnorms = pls_cv_predict(x, y, splits.train, splits.test, n_components=10)
    assert pred.shape == (4, 12, 7) and score_sqnorms.shape == (4, 10)
    for k in range(4):
        train, test = splits.train[k], splits.test[k]
        alone = pls_predict(pls_fit(x[train], y[train], 10), x[test])
        np.testing.assert_allclose(pred[k], alone, rtol=0, atol=1e-9 * np.abs(alone).max())


@pytest.mark.parametrize("n,d", [(300, 64), (200, 1500)])  # narrow and wide (d > n) layers
def test_float32_close_to_float64(rng, n, d):
    x, y = generic(rng, n, d, 12)
    p64 = np.asarray(pls_predict(pls_fit(x, y, 10), x))
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    p32 = np.asarray(pls_predict(pls_fit(x32, y32, 10), x32))
    assert p32.dtype == np.float32
    assert rel_err(p32, p64) <= 1e-4


@pytest.mark.parametrize("n,d,m", [(300, 40, 10), (150, 400, 20), (120, 12, 40), (100, 20, 1)])
def test_sklearn_weights_reproduce_unconverged_sklearn(rng, n, d, m):
    """weights="sklearn" replays scikit-learn's power iteration (tol 1e-6, 500 iterations):
    its default results, not converged on generic data, are matched to 1e-10 (float64)."""
    x, y = generic(rng, n, d, m)
    a = min(10, d)
    expected = PLSRegression(a, scale=False).fit(x, y).predict(x)
    got = pls_predict(pls_fit(x, y, a, weights="sklearn"), x)
    assert rel_err(got, expected) <= 1e-10
    exact = pls_predict(pls_fit(x, y, a), x)
    if m > 1:  # the two solvers differ exactly where scikit-learn stops early
        assert rel_err(exact, expected) > 1e-6
