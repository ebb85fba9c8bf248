"""The Gram (dual) forms of PLS, ridge and CKA against scikit-learn and the feature forms.

Wide layers (features > stimuli) are scored from X₀X₀ᵀ alone. References: scikit-learn's
PLSRegression(scale=False) fitted on each split's training rows (float64, 1e-6 relative: at
its default tolerance with ``weights="sklearn"``, run to tol 1e-15 with exact weights, where
its power iteration still limits agreement; the feature form agrees with the Gram form to
1e-9),
RidgeCV(alpha_per_target=True) (float64: 1e-8, identical alphas), and the feature-space CKA
(1e-10). float32 Grams against float64 features: 1e-4.
"""

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import RidgeCV

from jaxbrain.kernels import (
    DEFAULT_ALPHAS,
    cka,
    cka_gram,
    neural_predictivity,
    pls_cv_predict,
    pls_cv_predict_gram,
    ridge_cv_predict_gram,
    stratified_shuffle_splits,
)


def wide_data(rng, n=90, d=400, m=9, gaps=True):
    scale = 2.0 ** -np.arange(8) if gaps else np.ones(8)
    latent = rng.standard_normal((n, 8)) * scale
    x = latent @ rng.standard_normal((8, d)) + 0.3 * rng.standard_normal((n, d)) + 2.0
    y = latent @ rng.standard_normal((8, m)) + np.geomspace(0.05, 5, m) * rng.standard_normal(
        (n, m)) - 1.0
    return x, y


def gram_of(x):
    x0 = x - x.mean(axis=0)
    return x0 @ x0.T


def rel_err(a, b):
    return np.abs(np.asarray(a) - b).max() / np.abs(b).max()


@pytest.fixture
def splits():
    return stratified_shuffle_splits(np.repeat(np.arange(9), 10), n_splits=3)


@pytest.mark.parametrize("weights,sklearn_tol", [("exact", 1e-15), ("sklearn", 1e-6)])
def test_pls_gram_matches_sklearn_per_split(rng, splits, weights, sklearn_tol):
    """Exact weights against scikit-learn run to convergence; replayed weights against its
    defaults (which stop short on these near-degenerate spectra)."""
    x, y = wide_data(rng, gaps=False)
    pred, tts = pls_cv_predict_gram(gram_of(x), y, splits.train, splits.test, 6, weights)
    assert pred.shape == (3, 9, 9) and tts.shape == (3, 6)
    for k in range(3):
        train, test = splits.train[k], splits.test[k]
        reference = PLSRegression(6, scale=False, tol=sklearn_tol, max_iter=100_000)
        expected = reference.fit(x[train], y[train]).predict(x[test])
        assert rel_err(pred[k], expected) <= 1e-6  # scikit-learn's convergence, not ours


def test_pls_gram_float32_equals_feature_form(rng, splits):
    x, y = wide_data(rng, gaps=False)
    expected, _ = pls_cv_predict(x, y, splits.train, splits.test, 10, "sklearn")
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    got, _ = pls_cv_predict_gram(gram_of(x32), y32, splits.train, splits.test, 10, "sklearn")
    assert np.asarray(got).dtype == np.float32
    assert rel_err(got, np.asarray(expected)) <= 1e-4


def test_ridge_gram_matches_ridgecv_per_split(rng, splits):
    x, y = wide_data(rng)
    pred, alphas = ridge_cv_predict_gram(gram_of(x), y, splits.train, splits.test,
                                         DEFAULT_ALPHAS)
    for k in range(3):
        train, test = splits.train[k], splits.test[k]
        reference = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True).fit(x[train], y[train])
        np.testing.assert_array_equal(np.asarray(alphas[k]), reference.alpha_)
        assert rel_err(pred[k], reference.predict(x[test])) <= 1e-8


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_gram_equals_feature_cka(rng, debiased):
    x, y = wide_data(rng)
    raw_gram = x @ x.T  # uncentred: the Gram form centres it
    assert abs(float(cka_gram(raw_gram, y, debiased)) - float(cka(x, y, "linear", debiased))) \
        <= 1e-10


@pytest.mark.parametrize("mapping", ["pls", "ridge"])
def test_neural_predictivity_gram_flag(rng, splits, mapping):
    """The checked entry point scores a stack of Grams exactly as the stack of features."""
    x, y = wide_data(rng)
    xs = np.stack([x, x[:, ::-1] * 0.5 + x[:, :1]])
    by_features = neural_predictivity(xs, y, splits, mapping, n_components=6)
    by_grams = neural_predictivity(np.stack([gram_of(v) for v in xs]), y, splits, mapping,
                                   n_components=6, gram=True)
    np.testing.assert_allclose(by_grams.per_neuroid, by_features.per_neuroid, atol=1e-9)
    with pytest.raises(ValueError, match="square"):
        neural_predictivity(xs, y, splits, mapping, gram=True)
