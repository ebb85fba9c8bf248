"""Ridge regression with an alpha grid, alpha chosen per target by efficient leave-one-out —
the model of ``sklearn.linear_model.RidgeCV(alphas, alpha_per_target=True)`` (intercept fitted,
not penalised).

One eigendecomposition per training set serves every alpha.  The form follows the shape:

* primal (d < n): eigh of the d×d covariance XcᵀXc = V Λ Vᵀ; with Z = Xc V the hat matrix is
  1/n + Z diag(1/(λ+α)) Zᵀ, and LOO residuals are eᵢ / (1 − hᵢᵢ);
* dual (d ≥ n): a Householder reflection maps the intercept direction 1/√n onto the first
  axis, so the remaining n−1 rows of H·X span exactly the centred space.  eigh of that
  (n−1)×(n−1) Gram gives Q (n × n−1, orthogonal to 1 by construction) and LOO residuals
  c / diag(G⁻¹) with G⁻¹ = Q diag(1/(λ+α)) Qᵀ.  Removing the intercept direction exactly is
  what keeps float32 correct when features ≥ stimuli: the textbook form 1 − hᵢᵢ cancels
  catastrophically there and silently selects the smallest alpha for every target.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class RidgeFit(NamedTuple):
    """A fitted ridge mapping: prediction = (x - x_mean) @ coef + y_mean."""

    x_mean: jax.Array  # (d,)
    y_mean: jax.Array  # (m,)
    coef: jax.Array  # (d, m)
    alpha: jax.Array  # (m,) selected alpha per target
    loo_mse: jax.Array  # (n_alphas, m) leave-one-out mean squared error


def _primal(xc, yc, alphas):
    lam, v = jnp.linalg.eigh(xc.T @ xc)
    lam = jnp.maximum(lam, 0.0)
    z = xc @ v  # (n, d)
    zty = z.T @ yc  # (d, m)
    gains = 1.0 / (lam[None, :] + alphas[:, None])  # (A, d)
    resid = yc[None] - jnp.einsum("nd,adm->anm", z, gains[:, :, None] * zty[None])
    one_minus_h = (1.0 - 1.0 / xc.shape[0]) - (z * z) @ gains.T  # (n, A)
    loo_mse = jnp.mean((resid / one_minus_h.T[:, :, None]) ** 2, axis=1)  # (A, m)
    best = jnp.argmin(loo_mse, axis=0)  # first minimum on ties, as scikit-learn
    coef = v @ (1.0 / (lam[:, None] + alphas[best][None, :]) * zty)
    return coef, best, loo_mse


def _householder(n, dtype):
    """Unit vector u of the reflection H = I − 2uuᵀ that maps 1/√n to e₁ (H = Hᵀ = H⁻¹)."""
    u = jnp.full((n,), 1.0 / jnp.sqrt(n), dtype).at[0].add(-1.0)
    return u / jnp.linalg.norm(u)


def _dual_coefficients(reflected_gram, u, yc, alphas):
    """Dual coefficients (n, m) at each target's LOO-best alpha, from the (n−1)×(n−1) Gram of
    the reflected, exactly centred coordinates; the coefficients sum to zero."""
    n = u.shape[0]
    lam, qp = jnp.linalg.eigh(reflected_gram)
    lam = jnp.maximum(lam, 0.0)
    q = jnp.concatenate([jnp.zeros((1, n - 1), u.dtype), qp])
    q = q - 2.0 * jnp.outer(u, u @ q)  # (n, n-1), ⟂ 1
    qty = q.T @ yc  # (n-1, m)
    gains = 1.0 / (lam[None, :] + alphas[:, None])  # (A, n-1)
    dual = jnp.einsum("nk,akm->anm", q, gains[:, :, None] * qty[None])  # (A, n, m)
    ginv_diag = (q * q) @ gains.T  # (n, A)
    loo_mse = jnp.mean((dual / ginv_diag.T[:, :, None]) ** 2, axis=1)
    best = jnp.argmin(loo_mse, axis=0)
    dual_best = q @ (1.0 / (lam[:, None] + alphas[best][None, :]) * qty)
    return dual_best, best, loo_mse


def _dual(x, yc, alphas):
    u = _householder(x.shape[0], x.dtype)
    xp = (x - 2.0 * jnp.outer(u, u @ x))[1:]  # (n-1, d): exactly centred coordinates
    dual_best, best, loo_mse = _dual_coefficients(xp @ xp.T, u, yc, alphas)
    return x.T @ dual_best, best, loo_mse  # dual coefficients sum to 0: x̄ drops out


def _fit(x, y, alphas) -> RidgeFit:
    n, d = x.shape
    x_mean = jnp.mean(x, axis=0)
    y_mean = jnp.mean(y, axis=0)
    yc = y - y_mean
    if d < n:
        coef, best, loo_mse = _primal(x - x_mean, yc, alphas)
    else:
        coef, best, loo_mse = _dual(x, yc, alphas)
    return RidgeFit(x_mean, y_mean, coef, alphas[best], loo_mse)


@jax.jit
def ridge_fit(x: jax.Array, y: jax.Array, alphas: jax.Array) -> RidgeFit:
    """Fit ridge on all rows of ``x`` (n, d) → ``y`` (n, m) with per-target LOO alpha."""
    return _fit(x, y, jnp.asarray(alphas, x.dtype))


@jax.jit
def ridge_predict(fit: RidgeFit, x: jax.Array) -> jax.Array:
    return (x - fit.x_mean) @ fit.coef + fit.y_mean


@jax.jit
def ridge_cv_predict(
    x: jax.Array, y: jax.Array, train_idx: jax.Array, test_idx: jax.Array, alphas: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Held-out predictions of one ridge fit per split (splits run sequentially: each needs
    its own eigendecomposition, and this bounds memory to one training set at a time).

    Returns ``(predictions (S, n_test, m), selected alphas (S, m))``.
    """
    alphas = jnp.asarray(alphas, x.dtype)
    # Centre globally first so per-split means are small corrections (float32 accuracy).
    x_full_mean = jnp.mean(x, axis=0)
    y_full_mean = jnp.mean(y, axis=0)
    x0 = x - x_full_mean
    y0 = y - y_full_mean

    def one_split(idx):
        train, test = idx
        fit = _fit(x0[train], y0[train], alphas)
        return ridge_predict(fit, x0[test]) + y_full_mean, fit.alpha

    return jax.lax.map(one_split, (train_idx, test_idx))


@jax.jit
def ridge_cv_predict_gram(
    gram: jax.Array, y: jax.Array, train_idx: jax.Array, test_idx: jax.Array,
    alphas: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """:func:`ridge_cv_predict` from the Gram ``gram`` (n, n) = X₀X₀ᵀ of the column-centred
    features: the dual form on every split, O(n²) memory whatever the width.

    The training Gram is reflected on both sides (HKH, whose first row and column hold the
    intercept direction and are dropped); a test row's prediction is
    (x − x̄)X_trainᵀc = (K_test − 1ᵀK/n) c, the training mean entering through K's column
    means."""
    alphas = jnp.asarray(alphas, gram.dtype)
    y_full_mean = jnp.mean(y, axis=0)
    y0 = y - y_full_mean

    def one_split(idx):
        train, test = idx
        k = gram[train][:, train]
        u = _householder(k.shape[0], k.dtype)
        ku = k @ u
        reflected = (k - 2.0 * jnp.outer(u, ku) - 2.0 * jnp.outer(ku, u)
                     + 4.0 * (u @ ku) * jnp.outer(u, u))[1:, 1:]
        y_mean = jnp.mean(y0[train], axis=0)
        dual, best, _ = _dual_coefficients(reflected, u, y0[train] - y_mean, alphas)
        k_test = gram[test][:, train] - jnp.mean(k, axis=0)[None, :]
        return k_test @ dual + y_mean + y_full_mean, alphas[best]

    return jax.lax.map(one_split, (train_idx, test_idx))
