"""CKA and RSA against closed forms, slow definitions, NumPy and SciPy (float64, 1e-10)."""

import numpy as np
import pytest
from scipy import stats as sps

from jaxbrain.kernels import cka, cka_matrix, compare_rdms, rdm, rsa


def hsic_unbiased_slow(k, l):
    """Song et al. (2007) unbiased HSIC estimator, straight from its definition."""
    n = k.shape[0]
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    one = np.ones(n)
    return (
        np.trace(kt @ lt)
        + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ kt @ lt @ one)
    ) / (n * (n - 3))


def linear_cka_feature_space(x, y):
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(x.T @ y) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


@pytest.fixture
def reps(rng):
    x = rng.standard_normal((40, 12))
    y = x @ rng.standard_normal((12, 7)) + rng.standard_normal((40, 7))
    return x, y


@pytest.mark.parametrize("kernel,debiased", [("linear", False), ("linear", True), ("rbf", False)])
def test_self_similarity_is_one(reps, kernel, debiased):
    assert float(cka(reps[0], reps[0], kernel, debiased)) == pytest.approx(1.0, abs=1e-12)


def test_biased_linear_cka_closed_form(reps):
    x, y = reps
    assert float(cka(x, y, debiased=False)) == pytest.approx(
        linear_cka_feature_space(x, y), abs=1e-12
    )


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_invariances(rng, reps, debiased):
    x, y = reps
    orthogonal, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    base = float(cka(x, y, debiased=debiased))
    assert float(cka(x @ orthogonal, y, debiased=debiased)) == pytest.approx(base, abs=1e-12)
    assert float(cka(7.5 * x, y, debiased=debiased)) == pytest.approx(base, abs=1e-12)
    assert float(cka(x + 3.0, y, debiased=debiased)) == pytest.approx(base, abs=1e-12)


def test_debiased_cka_equals_slow_unbiased_hsic(reps):
    x, y = reps
    k = (x - x.mean(0)) @ (x - x.mean(0)).T
    l = (y - y.mean(0)) @ (y - y.mean(0)).T
    norm = np.sqrt(hsic_unbiased_slow(k, k) * hsic_unbiased_slow(l, l))
    expected = hsic_unbiased_slow(k, l) / norm
    assert float(cka(x, y, debiased=True)) == pytest.approx(expected, abs=1e-12)


def test_rbf_cka_against_numpy(reps):
    x, y = reps
    threshold = 0.5

    def gram(a):
        sq = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
        return np.exp(-sq / (2 * threshold**2 * np.median(sq)))

    h = np.eye(40) - 1 / 40
    kc, lc = h @ gram(x) @ h, h @ gram(y) @ h
    expected = (kc * lc).sum() / np.sqrt((kc * kc).sum() * (lc * lc).sum())
    assert float(cka(x, y, "rbf", False, threshold)) == pytest.approx(expected, abs=1e-10)


def test_cka_matrix_is_all_pairs_and_padding_invariant(rng):
    xs = rng.standard_normal((3, 30, 10))
    ys = rng.standard_normal((2, 30, 6)) + xs[:2, :, :6]
    matrix = np.asarray(cka_matrix(xs, ys))
    assert matrix.shape == (3, 2)
    for a in range(3):
        for b in range(2):
            assert matrix[a, b] == pytest.approx(float(cka(xs[a], ys[b])), abs=1e-12)
    padded = np.concatenate([ys, np.zeros((2, 30, 4))], axis=2)
    np.testing.assert_allclose(cka_matrix(xs, padded), matrix, atol=1e-12)


def test_float32_cka_close_to_float64(rng):
    x = rng.standard_normal((500, 64)) + 5.0
    y = x[:, :32] + rng.standard_normal((500, 32))
    exact = float(cka(x, y, debiased=True))
    approx = float(cka(x.astype(np.float32), y.astype(np.float32), debiased=True))
    assert approx == pytest.approx(exact, abs=1e-5)


def test_unknown_kernel_is_a_clear_error(reps):
    with pytest.raises(ValueError, match="unknown CKA kernel"):
        cka(reps[0], reps[1], kernel="cosine")


def test_rdm_and_rsa_against_numpy_scipy(reps):
    x, y = reps
    np.testing.assert_allclose(rdm(x), 1 - np.corrcoef(x), atol=1e-12)
    iu = np.triu_indices(40, k=1)
    expected = sps.spearmanr((1 - np.corrcoef(x))[iu], (1 - np.corrcoef(y))[iu]).statistic
    assert float(rsa(x, y)) == pytest.approx(expected, abs=1e-12)
    assert float(compare_rdms(rdm(x), rdm(x))) == pytest.approx(1.0)


def test_rdm_constant_stimulus_is_nan(reps):
    x = reps[0].copy()
    x[3] = 2.0
    d = np.asarray(rdm(x))
    assert np.all(np.isnan(d[3])) and np.all(np.isnan(d[:, 3]))
    assert np.isfinite(np.delete(np.delete(d, 3, 0), 3, 1)).all()
