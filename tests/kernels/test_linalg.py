"""Leading eigenvector (restarted Lanczos) against numpy's eigh, including hard cases."""

import numpy as np
import pytest

from jaxbrain.kernels.linalg import leading_eigenvector


def top_eigenvector(g):
    return np.linalg.eigh(g)[1][:, -1]


@pytest.mark.parametrize("m", [1, 5, 40, 168])
def test_random_psd(rng, m):
    a = rng.standard_normal((m, m + 3))
    g = a @ a.T
    v = np.asarray(leading_eigenvector(g))
    assert abs(v @ top_eigenvector(g)) == pytest.approx(1.0, abs=1e-10)


def test_block_diagonal_with_largest_diagonal_outside_the_top_block(rng):
    """The top eigenvalue lives in block A, the largest diagonal entry in block B: a start
    vector inside block B spans an invariant subspace that never reaches the answer."""
    a = rng.standard_normal((6, 6))
    block_a = a @ a.T + 20 * np.ones((6, 6))  # top eigenvalue ~ 120 + ..., diagonal ~ 26
    block_b = np.diag([60.0, 1.0, 2.0])  # largest single diagonal entry, eigenvalue 60
    g = np.zeros((9, 9))
    g[:6, :6], g[6:, 6:] = block_a, block_b
    assert np.argmax(np.diag(g)) >= 6 and np.linalg.eigvalsh(g)[-1] > 100
    v = np.asarray(leading_eigenvector(g))
    assert abs(v @ top_eigenvector(g)) == pytest.approx(1.0, abs=1e-10)


def test_near_degenerate_and_zero(rng):
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    lam = np.linspace(1, 2, 30)
    lam[-1] = lam[-2] * (1 + 1e-9)  # a gap the eigenvector cannot be resolved across
    g = (q * lam) @ q.T
    v = np.asarray(leading_eigenvector(g))
    assert np.linalg.norm(g @ v - (v @ g @ v) * v) <= 1e-12 * lam[-1]  # backward stable
    zero = np.asarray(leading_eigenvector(np.zeros((4, 4))))
    assert np.all(np.isfinite(zero)) and np.linalg.norm(zero) == pytest.approx(1.0)
