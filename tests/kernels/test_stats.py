"""Statistics kernels against SciPy and closed forms (float64, tolerance 1e-10 unless stated)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from jaxbrain.kernels import (
    explained_variance,
    partial_correlation,
    pearson,
    spearman,
    spearman_brown,
)


def test_pearson_matches_scipy_per_column(rng):
    a = rng.standard_normal((50, 7))
    b = a * rng.standard_normal(7) + rng.standard_normal((50, 7))
    expected = [sps.pearsonr(a[:, j], b[:, j]).statistic for j in range(7)]
    np.testing.assert_allclose(pearson(a, b), expected, rtol=0, atol=1e-12)


def test_pearson_1d():
    a = np.arange(10.0)
    np.testing.assert_allclose(pearson(a, a**2), sps.pearsonr(a, a**2).statistic, atol=1e-12)


def test_pearson_constant_column_is_nan_not_zero(rng):
    a = rng.standard_normal((20, 3))
    b = rng.standard_normal((20, 3))
    a[:, 1] = 0.1  # the mean of a constant 0.1 column is not exactly 0.1 in floating point
    b[:, 2] = -3.0
    r = np.asarray(pearson(a, b))
    assert np.isnan(r[1]) and np.isnan(r[2])
    assert np.isfinite(r[0])


def test_pearson_vmaps_over_layers(rng):
    a = rng.standard_normal((4, 30, 5))
    b = rng.standard_normal((30, 5))
    batched = jax.vmap(pearson, in_axes=(0, None))(a, b)
    for k in range(4):
        np.testing.assert_allclose(batched[k], pearson(a[k], b), atol=1e-14)


def test_spearman_matches_scipy_with_ties(rng):
    a = rng.integers(0, 5, size=(40, 3)).astype(float)  # many ties
    b = a + rng.integers(0, 3, size=(40, 3))
    expected = [sps.spearmanr(a[:, j], b[:, j]).statistic for j in range(3)]
    np.testing.assert_allclose(spearman(a, b), expected, atol=1e-12)


def test_spearman_brown_closed_form():
    np.testing.assert_allclose(spearman_brown(0.5), 2 / 3)
    np.testing.assert_allclose(spearman_brown(jnp.array([0.0, 1.0])), [0.0, 1.0])
    np.testing.assert_allclose(spearman_brown(0.5, factor=3), 0.75)  # 3r / (1 + 2r)


def test_partial_correlation_equals_residual_correlation(rng):
    n, m = 80, 6
    b = rng.standard_normal((n, m))
    a = 0.7 * b + rng.standard_normal((n, m))
    y = 0.5 * a + 0.5 * b + rng.standard_normal((n, m))
    expected = []
    for j in range(m):
        design = np.column_stack([np.ones(n), b[:, j]])
        res_y = y[:, j] - design @ np.linalg.lstsq(design, y[:, j], rcond=None)[0]
        res_a = a[:, j] - design @ np.linalg.lstsq(design, a[:, j], rcond=None)[0]
        expected.append(sps.pearsonr(res_y, res_a).statistic)
    np.testing.assert_allclose(partial_correlation(y, a, b), expected, atol=1e-10)


def test_partial_correlation_nan_when_b_determines_y(rng):
    b = rng.standard_normal((30, 2))
    a = rng.standard_normal((30, 2))
    assert np.all(np.isnan(np.asarray(partial_correlation(2 * b + 1, a, b))))


def test_explained_variance_is_r_squared_over_ceiling(rng):
    t = rng.standard_normal((60, 4))
    p = t + rng.standard_normal((60, 4))
    ceiling = np.array([0.5, 0.8, 1.0, 0.9])
    r = np.array([sps.pearsonr(p[:, j], t[:, j]).statistic for j in range(4)])
    np.testing.assert_allclose(explained_variance(p, t, ceiling), r**2 / ceiling, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=3, max_value=30),
    st.floats(min_value=0.1, max_value=100),
    st.floats(min_value=-100, max_value=100),
    st.integers(min_value=0, max_value=2**31 - 1),
)
def test_pearson_properties(n, scale, shift, seed):
    data = np.random.default_rng(seed).standard_normal((n, 2))
    a, b = data[:, :1], data[:, 1:]
    r = float(pearson(a, b)[0])
    assert -1.0 <= r <= 1.0
    assert r == pytest.approx(float(pearson(b, a)[0]), abs=1e-12)
    assert r == pytest.approx(float(pearson(scale * a + shift, b)[0]), abs=1e-9)
