"""Decoding kernels against scikit-learn / NumPy in float64: voxel selection, the per-unit
ridge on selected voxels, fold cross-validation of alpha, pairwise identification."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from jaxbrain.kernels.decoding import (
    cv_alpha_errors,
    pairwise_identification,
    selected_ridge_predict,
    standardise,
    top_voxels,
    voxel_unit_correlation,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n, n_test, v, u = 60, 12, 40, 9
    x = rng.standard_normal((n + n_test, v)) @ rng.standard_normal((v, v)) * 0.3
    y = x[:, :5] @ rng.standard_normal((5, u)) + rng.standard_normal((n + n_test, u))
    return x[:n], x[n:], y[:n], y[n:]


def test_selection_and_per_unit_ridge_equal_sklearn(data):
    x_tr, x_te, y_tr, _ = data
    xz, xz_te, _, _ = standardise(x_tr, x_te)
    yz, _, _, _ = standardise(y_tr, y_tr)
    np.testing.assert_allclose(np.asarray(xz).std(0, ddof=1), 1, atol=1e-12)
    corr = np.asarray(voxel_unit_correlation(xz, yz))
    expected_corr = np.corrcoef(x_tr.T, y_tr.T)[: x_tr.shape[1], x_tr.shape[1]:]
    np.testing.assert_allclose(corr, expected_corr, atol=1e-12)
    voxels = np.asarray(top_voxels(corr, 7))
    for unit in range(y_tr.shape[1]):
        assert set(voxels[unit]) == set(np.argsort(-np.abs(corr[:, unit]))[:7])
    decoded = np.asarray(selected_ridge_predict(xz, yz, xz_te, voxels, 3.5, chunk=4))
    for unit in range(y_tr.shape[1]):
        model = Ridge(alpha=3.5, fit_intercept=False).fit(np.asarray(xz)[:, voxels[unit]],
                                                          np.asarray(yz)[:, unit])
        np.testing.assert_allclose(decoded[:, unit],
                                   model.predict(np.asarray(xz_te)[:, voxels[unit]]),
                                   rtol=1e-9, atol=1e-10)


def test_fold_cross_validation_of_alpha_equals_a_loop(data):
    x_tr, _, y_tr, _ = data
    rng = np.random.default_rng(1)
    order = rng.permutation(len(x_tr))
    val = np.stack([order[:20], order[20:40], order[40:]])
    fit = np.stack([np.setdiff1d(order, v) for v in val])
    alphas = np.array([0.1, 10.0, 1000.0])
    errors = np.asarray(cv_alpha_errors(x_tr, y_tr, fit, val, alphas, 6, chunk=4))
    expected = np.zeros(3)
    for f, v in zip(fit, val, strict=True):
        xf, xv = x_tr[f], x_tr[v]
        mx, sx = xf.mean(0), xf.std(0, ddof=1)
        my, sy = y_tr[f].mean(0), y_tr[f].std(0, ddof=1)
        xf, xv, yf, yv = (xf - mx) / sx, (xv - mx) / sx, (y_tr[f] - my) / sy, (y_tr[v] - my) / sy
        corr = xf.T @ yf / (len(f) - 1)
        for k, alpha in enumerate(alphas):
            pred = np.column_stack([
                Ridge(alpha=alpha, fit_intercept=False)
                .fit(xf[:, np.argsort(-np.abs(corr[:, u]))[:6]], yf[:, u])
                .predict(xv[:, np.argsort(-np.abs(corr[:, u]))[:6]])
                for u in range(yf.shape[1])])
            expected[k] += np.mean((pred - yv) ** 2) / len(fit)
    np.testing.assert_allclose(errors, expected, rtol=1e-9)


def test_pairwise_identification_equals_brute_force():
    rng = np.random.default_rng(2)
    true = rng.standard_normal((8, 30))
    decoded = true + rng.standard_normal((8, 30)) * 1.5
    got = np.asarray(pairwise_identification(decoded, true))
    for i in range(8):
        own = np.corrcoef(decoded[i], true[i])[0, 1]
        others = [np.corrcoef(decoded[i], true[j])[0, 1] for j in range(8) if j != i]
        assert got[i] == pytest.approx(np.mean(np.array(others) < own))
    assert np.asarray(pairwise_identification(true, true)).tolist() == [1.0] * 8
