"""Held-out predictions against scikit-learn; per-site statistics against NumPy/SciPy (float64).

Tolerances: PLS predictions <= 1e-6 relative to scikit-learn run to convergence (its default
tol=1e-6 is itself up to ~2e-3 off on generic data, see tests/kernels/test_pls.py); ridge
<= 1e-8 relative to RidgeCV with the same alpha per target; correlations to 1e-10.
"""

import numpy as np
import pytest
from scipy import stats
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import RidgeCV

from jaxbrain.analysis import cv_predictions, percent_ev, site_scores, unique_r
from jaxbrain.kernels import DEFAULT_ALPHAS, stratified_shuffle_splits


@pytest.fixture
def data(rng):
    n, d, m = 120, 40, 5
    latent = rng.standard_normal((n, 8))
    x = latent @ rng.standard_normal((8, d)) + 0.5 * rng.standard_normal((n, d)) + 3.0
    y = latent @ rng.standard_normal((8, m)) + np.geomspace(0.3, 5.0, m) * rng.standard_normal(
        (n, m)) + 1.0
    splits = stratified_shuffle_splits(np.repeat(np.arange(12), 10), n_splits=3)
    return x, y, splits


def rel_err(a, b):
    return np.abs(np.asarray(a) - b).max() / np.abs(b).max()


def test_pls_predictions_match_sklearn(data):
    x, y, splits = data
    pred = cv_predictions(x, y, splits, "pls", n_components=25)
    assert pred.shape == (3, 12, 5)
    for k in range(3):
        train, test = splits.train[k], splits.test[k]
        reference = PLSRegression(25, scale=False, tol=1e-15, max_iter=100_000)
        expected = reference.fit(x[train], y[train]).predict(x[test])
        assert rel_err(pred[k], expected) <= 1e-6


def test_ridge_predictions_match_sklearn(data):
    x, y, splits = data
    pred = cv_predictions(x, y, splits, "ridge")
    alphas = set()
    for k in range(3):
        train, test = splits.train[k], splits.test[k]
        reference = RidgeCV(DEFAULT_ALPHAS, alpha_per_target=True).fit(x[train], y[train])
        alphas.update(reference.alpha_.tolist())
        assert rel_err(pred[k], reference.predict(x[test])) <= 1e-8
    assert len(alphas) > 1, "test data should select several alphas"


def test_one_dimensional_target_and_checks(data):
    x, y, splits = data
    assert cv_predictions(x, y[:, 0], splits, "ridge").shape == (3, 12, 1)
    with pytest.raises(ValueError, match="unknown mapping"):
        cv_predictions(x, y, splits, "lasso")
    with pytest.raises(ValueError, match="rank"):
        cv_predictions(x[:, :3], y, splits, "pls", n_components=4)


def test_site_scores_are_pearson_per_split_and_site(rng, data):
    _, y, splits = data
    pred = rng.standard_normal((3, 12, 5)) + y[splits.test]
    pred[1, :, 2] = 7.0  # constant prediction: NaN, not 0
    r = np.asarray(site_scores(pred, y, splits))
    for k in range(3):
        for j in range(5):
            if (k, j) == (1, 2):
                assert np.isnan(r[k, j])
            else:
                expected = stats.pearsonr(pred[k, :, j], y[splits.test[k], j]).statistic
                assert abs(r[k, j] - expected) <= 1e-10


def test_percent_ev_closed_form():
    r = np.array([[0.5, 0.2, 0.9, 0.3], [0.7, np.nan, 0.9, 0.3]])
    ceiling = np.array([0.8, 0.5, 0.0, -0.1])
    ev = np.asarray(percent_ev(r, ceiling))
    assert ev[0] == pytest.approx((0.25 + 0.49) / 2 / 0.8, abs=1e-15)
    assert np.isnan(ev[1:]).all()  # NaN split; zero and negative ceilings


def test_unique_r_equals_correlation_of_residuals(rng, data):
    _, y, splits = data
    pred_a = y[splits.test] + rng.standard_normal((3, 12, 5))
    pred_b = 0.5 * pred_a + rng.standard_normal((3, 12, 5))
    got = np.asarray(unique_r(pred_a, pred_b, y, splits))
    assert got.shape == (3, 5)
    for k in range(3):
        for j in range(5):
            b = np.column_stack([np.ones(12), pred_b[k, :, j]])

            def residual(v, b=b):
                return v - b @ np.linalg.lstsq(b, v, rcond=None)[0]

            expected = np.corrcoef(residual(y[splits.test[k], j]), residual(pred_a[k, :, j]))
            assert abs(got[k, j] - expected[0, 1]) <= 1e-10
