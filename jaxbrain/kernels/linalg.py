"""Small linear-algebra building blocks shared by the mapping kernels."""

from __future__ import annotations

import jax
import jax.numpy as jnp

_KRYLOV_DIM = 24  # Lanczos steps per restart cycle (a buffer size, not an accuracy knob)
_MAX_CYCLES = 200  # safety bound only; convergence is tested on the Ritz residual


def _lanczos_cycle(gram, v0, krylov_dim):
    """One Lanczos run with full reorthogonalisation; returns the top Ritz pair and residual."""
    m = gram.shape[0]
    dtype = gram.dtype

    def step(j, state):
        basis, alpha, beta, v = state
        basis = basis.at[j].set(v)
        w = gram @ v
        a = v @ w
        for _ in range(2):  # classical Gram–Schmidt twice: orthogonal to working precision
            w = w - basis.T @ (basis @ w)
        b = jnp.linalg.norm(w)
        # An invariant subspace was found (b ≈ 0): continue with zeros, which add only
        # decoupled zero Ritz values below the wanted top one.
        alive = b > jnp.finfo(dtype).eps * jnp.abs(a) + jnp.finfo(dtype).tiny
        v = jnp.where(alive, w / jnp.where(alive, b, 1.0), 0.0)
        return basis, alpha.at[j].set(a), beta.at[j].set(jnp.where(alive, b, 0.0)), v

    init = (
        jnp.zeros((krylov_dim, m), dtype),
        jnp.zeros((krylov_dim,), dtype),
        jnp.zeros((krylov_dim,), dtype),
        v0,
    )
    basis, alpha, beta, _ = jax.lax.fori_loop(0, krylov_dim, step, init)
    tri = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    theta, s = jnp.linalg.eigh(tri)
    top = s[:, -1]
    ritz = basis.T @ top
    ritz_norm = jnp.linalg.norm(ritz)
    ritz = jnp.where(ritz_norm > 0, ritz / jnp.where(ritz_norm > 0, ritz_norm, 1.0), v0)
    return ritz, theta[-1], beta[-1] * jnp.abs(top[-1])


def leading_eigenvector(gram: jax.Array) -> jax.Array:
    """Unit eigenvector of the largest eigenvalue of a symmetric PSD matrix.

    Explicitly restarted Lanczos with full reorthogonalisation, run until the Ritz residual
    ‖G v − θ v‖ is at the dtype's rounding level (≤ 16 eps θ): the result is as exact as a
    dense eigensolver's (backward stable), with no iteration count to tune.  Why not ``eigh``:
    a batched ``eigh`` of 168×168 costs ~1.4 ms per matrix on CPU and PLS needs one per
    component per split; Lanczos needs O(m²) work per step and converges with the square root
    of the eigen-gap.  The sign is arbitrary (PLS predictions do not depend on it).
    """
    m = gram.shape[0]
    dtype = gram.dtype
    krylov_dim = min(_KRYLOV_DIM, m)
    tol = 16 * jnp.finfo(dtype).eps
    # Deterministic start with support on every coordinate of non-zero variance: a start
    # inside a block of a block-diagonal Gram (e.g. one column) spans an invariant subspace
    # and can converge, residual and all, to the wrong block's eigenvector.
    v0 = jnp.sqrt(jnp.maximum(jnp.diagonal(gram), 0.0))
    v0_norm = jnp.linalg.norm(v0)
    v0 = jnp.where(v0_norm > 0, v0 / jnp.where(v0_norm > 0, v0_norm, 1.0), 1.0 / jnp.sqrt(m))

    def cond(state):
        _, theta, resid, k = state
        return (k < _MAX_CYCLES) & (resid > tol * jnp.abs(theta))

    def body(state):
        v, _, _, k = state
        v, theta, resid = _lanczos_cycle(gram, v, krylov_dim)
        return v, theta, resid, k + 1

    v, _, _, _ = jax.lax.while_loop(
        cond, body, (v0, jnp.ones((), dtype), jnp.full((), jnp.inf, dtype), 0)
    )
    return v.astype(dtype)


def sklearn_power_iteration(gram, start, metric=None, tol=1e-6, max_iter=500):
    """scikit-learn's PLS weight iteration (``_get_first_singular_vectors_power_method``),
    replayed in a small space so that its *unconverged* result is reproduced.

    scikit-learn iterates x ← normalise(XᵀY Yᵀ X x) from x ∝ XᵀY e_j and stops once
    ‖x − x_old‖² < tol (at least two steps unless Y has one column), or after ``max_iter``.
    Here the iterate is a vector v with x = B v / ‖B v‖ for a fixed B; ``gram`` = BᵀB-side
    operator G (so that x_next ∝ B G v) and ``metric`` = BᵀB (``None``: B orthonormal, the
    identity).  The stopping distance is evaluated as (a − b)ᵀ M (a − b) on the normalised
    iterates, which keeps float32 accurate near the 1e-6 threshold.  Returns v.
    """
    dtype = gram.dtype
    if metric is None:
        metric = jnp.eye(gram.shape[0], dtype=dtype)

    def normalised(v):
        norm = jnp.sqrt(jnp.maximum(v @ metric @ v, jnp.finfo(dtype).tiny))
        return v / norm

    def cond(state):
        _, i, done = state
        return (i < max_iter) & ~done

    def body(state):
        v, i, _ = state
        v_next = normalised(gram @ v)
        diff = v_next - v
        return v_next, i + 1, diff @ metric @ diff < tol

    v0 = normalised(start)
    single_target = gram.shape[0] == 1
    v, _, _ = jax.lax.while_loop(cond, body, (v0, 1, jnp.asarray(single_target)))
    return v


def deflate_gram(gram, a, c, b_sqnorm, scale):
    """Gram of a rank-1-deflated matrix without recomputing it.

    For M' = M - scale * x aᵀ (so M'ᵀM' is the Gram on ``a``'s side) with c = Mᵀx and
    b_sqnorm = xᵀx:  M'ᵀM' = MᵀM - scale (a cᵀ + c aᵀ) + scale² b_sqnorm a aᵀ.
    """
    outer_ac = jnp.outer(a, c)
    return gram - scale * (outer_ac + outer_ac.T) + scale**2 * b_sqnorm * jnp.outer(a, a)
