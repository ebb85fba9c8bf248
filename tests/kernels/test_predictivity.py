"""neural_predictivity against the Brain-Score protocol run with scikit-learn (float64).

PLS per-split scores agree to <= 1e-6 with scikit-learn run to convergence; ridge per-split
scores to <= 1e-9 with RidgeCV.  Bad inputs raise ValueError naming the problem.
"""

import jax
import numpy as np
import pytest
from scipy import stats as sps
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import RidgeCV

from jaxbrain.kernels import (
    DEFAULT_ALPHAS,
    neural_predictivity,
    score_layers,
    stratified_shuffle_splits,
)


def layer_and_targets(rng, n=200, d=40, m=9, n_objects=10):
    labels = np.repeat(np.arange(n_objects), n // n_objects)
    latent = rng.standard_normal((n_objects, 6))[labels] + rng.standard_normal((n, 6))
    x = latent @ rng.standard_normal((6, d)) + rng.standard_normal((n, d))
    y = latent @ rng.standard_normal((6, m)) + 2.0 * rng.standard_normal((n, m))
    return x, y, labels


def protocol(x, y, splits, make_model):
    """Brain-Score's cross-regressed correlation, written out with scikit-learn and SciPy."""
    per_split = []
    for train, test in zip(splits.train, splits.test, strict=True):
        pred = make_model().fit(x[train], y[train]).predict(x[test])
        r = [sps.pearsonr(pred[:, j], y[test][:, j]).statistic for j in range(y.shape[1])]
        per_split.append(np.median(r))
    return np.array(per_split)


@pytest.fixture
def data(rng):
    x, y, labels = layer_and_targets(rng)
    return x, y, stratified_shuffle_splits(labels, n_splits=5)


def test_pls_matches_brainscore_protocol(data):
    x, y, splits = data
    expected = protocol(
        x, y, splits, lambda: PLSRegression(10, scale=False, tol=1e-15, max_iter=100_000)
    )
    result = neural_predictivity(x, y, splits, "pls", n_components=10)
    np.testing.assert_allclose(result.per_split, expected, atol=1e-6)
    assert float(result.score) == pytest.approx(expected.mean(), abs=1e-6)
    assert float(result.error) == pytest.approx(expected.std(ddof=0) / np.sqrt(5), abs=1e-6)
    assert result.per_neuroid.shape == (5, 9)
    assert np.all(np.asarray(result.n_nan) == 0)


def test_ridge_matches_brainscore_protocol(data):
    x, y, splits = data
    expected = protocol(x, y, splits, lambda: RidgeCV(DEFAULT_ALPHAS, alpha_per_target=True))
    result = neural_predictivity(x, y, splits, "ridge")
    np.testing.assert_allclose(result.per_split, expected, atol=1e-9)
    assert result.fit_info.shape == (5, 9)  # chosen alpha per split and neuroid


def test_layer_stack_equals_single_layers(rng, data):
    x, y, splits = data
    stack = np.stack([x, x[:, ::-1] * 2.0 + 1.0, rng.standard_normal(x.shape)])
    batched = neural_predictivity(stack, y, splits, n_components=5)
    assert batched.score.shape == (3,) and batched.per_neuroid.shape == (3, 5, 9)
    for k in range(3):
        single = neural_predictivity(stack[k], y, splits, n_components=5)
        np.testing.assert_allclose(batched.per_neuroid[k], single.per_neuroid, atol=1e-10)
    grouped = neural_predictivity(stack, y, splits, n_components=5, layer_batch=3)
    np.testing.assert_allclose(grouped.per_neuroid, batched.per_neuroid, atol=1e-10)


def test_score_layers_is_a_pure_jittable_kernel(data):
    x, y, splits = data
    result = jax.jit(score_layers, static_argnames=("mapping", "n_components"))(
        x[None], y, splits.train, splits.test, mapping="pls", n_components=4
    )
    expected = neural_predictivity(x, y, splits, n_components=4)
    np.testing.assert_allclose(result.score[0], expected.score, atol=1e-12)


def test_constant_neuroid_is_nan_and_counted(data):
    x, y, splits = data
    y = y.copy()
    y[:, 2] = 3.0
    result = neural_predictivity(x, y, splits, n_components=5)
    assert np.all(np.isnan(np.asarray(result.per_neuroid)[:, 2]))
    assert np.all(np.asarray(result.n_nan) == 1)
    others = np.delete(np.asarray(result.per_neuroid), 2, axis=1)
    np.testing.assert_allclose(result.per_split, np.median(others, axis=1), atol=1e-12)


def test_float32_scores_close_to_float64(data):
    x, y, splits = data
    exact = neural_predictivity(x, y, splits, n_components=10)
    approx = neural_predictivity(x.astype(np.float32), y.astype(np.float32), splits,
                                 n_components=10)
    assert approx.score.dtype == np.float32
    np.testing.assert_allclose(approx.per_split, exact.per_split, atol=1e-4)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x), y), "NaN"),
        (lambda x, y: (x, np.where(np.arange(y.size).reshape(y.shape) == 3, np.inf, y)),
         "targets contain NaN or infinite"),
        (lambda x, y: (x[:-1], y), "row count mismatch"),
        (lambda x, y: (x[None, None], y), "activations must be"),
    ],
)
def test_bad_inputs_are_clear_errors(data, mutate, message):
    x, y, splits = data
    bad_x, bad_y = mutate(x, y)
    with pytest.raises(ValueError, match=message):
        neural_predictivity(bad_x, bad_y, splits)


def test_too_many_components_is_a_clear_error(rng, data):
    x, y, splits = data
    with pytest.raises(ValueError, match="larger than the rank"):
        neural_predictivity(x, y, splits, n_components=41)  # only 40 features
    low_rank = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 40))
    with pytest.raises(ValueError, match="larger than the rank.*at most 3"):
        neural_predictivity(low_rank, y, splits, n_components=8)


def test_other_bad_arguments(data):
    x, y, splits = data
    with pytest.raises(ValueError, match="unknown mapping"):
        neural_predictivity(x, y, splits, "lasso")
    with pytest.raises(ValueError, match="alphas"):
        neural_predictivity(x, y, splits, "ridge", alphas=[1.0, -2.0])
    tiny = stratified_shuffle_splits(np.repeat(np.arange(2), 5), n_splits=2, train_size=0.8)
    with pytest.raises(ValueError, match="too few stimuli per split"):
        neural_predictivity(x[:10], y[:10], tiny)


@pytest.mark.parametrize("mapping", ["pls", "ridge"])
def test_single_neuroid_as_1d_target(data, mapping):
    x, y, splits = data
    one = neural_predictivity(x, y[:, 4], splits, mapping, n_components=5)
    assert one.per_neuroid.shape == (5, 1)
    np.testing.assert_allclose(one.per_split, one.per_neuroid[:, 0])
    if mapping == "pls":  # a one-column PLS is PLS1; compare with scikit-learn converged
        expected = protocol(
            x, y[:, 4:5], splits,
            lambda: PLSRegression(5, scale=False, tol=1e-15, max_iter=100_000),
        )
        np.testing.assert_allclose(one.per_split, expected, atol=1e-6)
