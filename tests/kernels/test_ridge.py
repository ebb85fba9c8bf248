"""Ridge against scikit-learn's RidgeCV(alphas, alpha_per_target=True).

float64: predictions <= 1e-8 relative and identical alpha choices, primal (d < n) and dual
(d >= n) forms.  float32 with features >= stimuli (where a textbook LOO silently picks the
smallest alpha): predictions <= 1e-4 relative to scikit-learn's float64 fit.
"""

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV

from jaxbrain.kernels import (
    DEFAULT_ALPHAS,
    ridge_cv_predict,
    ridge_fit,
    ridge_predict,
    stratified_shuffle_splits,
)


def regression_data(rng, n, d, m):
    """Targets with a range of noise levels, so the best alpha differs across targets."""
    x = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d) + 1.0
    w = rng.standard_normal((d, m)) / np.sqrt(d)
    noise = np.geomspace(0.05, 20.0, m)
    return x, x @ w + noise * rng.standard_normal((n, m)) + 2.0


def rel_err(a, b):
    return np.abs(np.asarray(a) - b).max() / np.abs(b).max()


@pytest.mark.parametrize("n,d,m", [(200, 40, 12), (100, 300, 12), (90, 90, 8), (60, 59, 5)])
def test_matches_ridgecv_float64(rng, n, d, m):
    x, y = regression_data(rng, n, d, m)
    reference = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True).fit(x, y)
    fit = ridge_fit(x, y, DEFAULT_ALPHAS)
    np.testing.assert_array_equal(np.asarray(fit.alpha), reference.alpha_)
    assert len(np.unique(reference.alpha_)) > 2, "test data should need several alphas"
    x_new = rng.standard_normal((15, d))
    assert rel_err(ridge_predict(fit, x_new), reference.predict(x_new)) <= 1e-8


@pytest.mark.parametrize("n,d", [(120, 400), (120, 119)])
def test_float32_with_many_features_matches_sklearn(rng, n, d):
    x, y = regression_data(rng, n, d, 16)
    reference = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True).fit(x, y)
    fit = ridge_fit(x.astype(np.float32), y.astype(np.float32), DEFAULT_ALPHAS)
    chosen = np.asarray(fit.alpha, dtype=np.float64)
    assert np.mean(np.isclose(chosen, reference.alpha_, rtol=1e-6)) >= 0.9
    assert not np.allclose(chosen, DEFAULT_ALPHAS[0])
    assert rel_err(ridge_predict(fit, x.astype(np.float32)), reference.predict(x)) <= 1e-4


def test_cross_validated_fits_equal_independent_fits(rng):
    x, y = regression_data(rng, 100, 30, 5)
    splits = stratified_shuffle_splits(np.repeat(np.arange(10), 10), n_splits=3)
    pred, alphas = ridge_cv_predict(x, y, splits.train, splits.test, DEFAULT_ALPHAS)
    assert pred.shape == (3, 10, 5) and alphas.shape == (3, 5)
    for k in range(3):
        train, test = splits.train[k], splits.test[k]
        alone = ridge_fit(x[train], y[train], DEFAULT_ALPHAS)
        np.testing.assert_allclose(pred[k], ridge_predict(alone, x[test]), rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(alphas[k], alone.alpha)


def test_single_alpha_is_plain_ridge(rng):
    x, y = regression_data(rng, 50, 10, 3)
    fit = ridge_fit(x, y, np.array([1.0]))
    xc, yc = x - x.mean(0), y - y.mean(0)
    coef = np.linalg.solve(xc.T @ xc + np.eye(10), xc.T @ yc)
    np.testing.assert_allclose(fit.coef, coef, rtol=1e-9)
