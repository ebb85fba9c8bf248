"""Feature decoding kernels in Horikawa & Kamitani's protocol (docs/design.md §4): voxels and
units z-scored on the training images, voxels preselected per unit by their correlation with
it, a ridge decoder per unit on its own voxels, accuracies and pairwise identification.

Batched over units: one voxel × unit correlation matrix selects every unit's voxels
(``lax.top_k``), and the per-unit systems (G_S + αI) w = b_S are principal submatrices of
one voxel covariance G = XᵀX, gathered and Cholesky-solved a chunk of units at a time
(``lax.map`` over chunks, ``vmap`` within one), so memory stays chunk × N² whatever the
layer's width.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from jaxbrain.kernels.stats import pearson


def standardise(train: jax.Array, test: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array,
                                                              jax.Array]:
    """Columns z-scored with the training rows' mean and SD (ddof 1, as the papers); a
    constant column becomes 0.  Returns (train_z, test_z, mean, sd)."""
    mean = jnp.mean(train, axis=0)
    sd = jnp.std(train, axis=0, ddof=1)
    sd = jnp.where(sd > 0, sd, 1.0)
    return (train - mean) / sd, (test - mean) / sd, mean, sd


def voxel_unit_correlation(x_z: jax.Array, y_z: jax.Array) -> jax.Array:
    """Pearson r (voxels, units) of z-scored columns over the same rows."""
    return x_z.T @ y_z / (x_z.shape[0] - 1)


@partial(jax.jit, static_argnames=("n_voxels",))
def top_voxels(correlation: jax.Array, n_voxels: int) -> jax.Array:
    """(units, n_voxels): each unit's voxels of largest |r|, in decreasing order."""
    return jax.lax.top_k(jnp.abs(correlation).T, n_voxels)[1]


@partial(jax.jit, static_argnames=("chunk",))
def selected_ridge_predict(x_train: jax.Array, y_train: jax.Array, x_test: jax.Array,
                           voxels: jax.Array, alpha, chunk: int = 32) -> jax.Array:
    """Each unit's ridge decoder on its own voxels, applied to the test rows.

    ``x_*`` z-scored voxels (rows, voxels), ``y_train`` z-scored units (rows, units),
    ``voxels`` (units, N) indices (:func:`top_voxels`), ``alpha`` the penalty.  Centred data
    need no intercept.  Returns the decoded z-scored units (test rows, units)."""
    n_units = voxels.shape[0]
    cov = x_train.T @ x_train  # (v, v): every unit's Gram is a principal submatrix
    cross = x_train.T @ y_train  # (v, u)
    pad = (-n_units) % chunk
    units = jnp.arange(n_units + pad) % n_units
    sel = voxels[units].reshape(-1, chunk, voxels.shape[1])
    cols = units.reshape(-1, chunk)
    eye = jnp.eye(voxels.shape[1], dtype=x_train.dtype)

    def one(idx, unit):
        gram = cov[idx[:, None], idx[None, :]] + alpha * eye
        factor = jax.scipy.linalg.cho_factor(gram, lower=True)
        weights = jax.scipy.linalg.cho_solve(factor, cross[idx, unit])
        return x_test[:, idx] @ weights

    decoded = jax.lax.map(lambda a: jax.vmap(one)(*a), (sel, cols))  # (chunks, chunk, test)
    return decoded.reshape(-1, x_test.shape[0])[:n_units].T


def unit_accuracy(decoded: jax.Array, true: jax.Array) -> jax.Array:
    """Per unit (column) Pearson r across the test images; NaN for a constant unit."""
    return pearson(decoded, true)


def pairwise_identification(decoded: jax.Array, true: jax.Array) -> jax.Array:
    """Per test image (row): the fraction of the other images whose true feature vector the
    decoded vector correlates with less than with its own (Kamitani's pairwise
    identification; chance 0.5)."""
    def z(a):
        a = a - jnp.mean(a, axis=1, keepdims=True)
        return a / jnp.maximum(jnp.linalg.norm(a, axis=1, keepdims=True), 1e-30)

    r = z(decoded) @ z(true).T  # (images, images): decoded i vs true j
    own = jnp.diagonal(r)
    n = r.shape[0]
    wins = jnp.sum(own[:, None] > r, axis=1)  # the diagonal never counts (not >)
    return wins / (n - 1)


@partial(jax.jit, static_argnames=("n_voxels", "chunk"))
def cv_alpha_errors(x: jax.Array, y: jax.Array, train_idx: jax.Array, val_idx: jax.Array,
                    alphas: jax.Array, n_voxels: int, chunk: int = 32) -> jax.Array:
    """Mean squared error (alphas,) of the selected-voxel ridge over K folds of the training
    rows (``train_idx`` (K, n_fit), ``val_idx`` (K, n_val)): each fold standardises, selects
    voxels and fits on its own rows only, and is scored on the z-scored held-out units."""
    def fold(idx):
        fit, val = idx
        x_fit, x_val, _, _ = standardise(x[fit], x[val])
        y_fit, y_val, _, _ = standardise(y[fit], y[val])
        voxels = top_voxels(voxel_unit_correlation(x_fit, y_fit), n_voxels)
        return jax.lax.map(
            lambda a: jnp.mean((selected_ridge_predict(x_fit, y_fit, x_val, voxels, a, chunk)
                                - y_val) ** 2), alphas)

    return jnp.mean(jax.lax.map(fold, (train_idx, val_idx)), axis=0)
