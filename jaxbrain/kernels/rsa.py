"""Representational similarity analysis: correlation-distance RDMs compared by Spearman."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxbrain.kernels.stats import spearman


@jax.jit
def rdm(x: jax.Array) -> jax.Array:
    """Representational dissimilarity matrix 1 − Pearson r between stimulus vectors.

    ``x`` is (n_stimuli, n_features); returns (n, n).  A constant stimulus vector has no
    defined correlation and gives NaN in its row and column.
    """
    xc = x - jnp.mean(x, axis=1, keepdims=True)
    constant = jnp.max(x, axis=1) == jnp.min(x, axis=1)
    norms = jnp.linalg.norm(xc, axis=1)
    z = xc / jnp.where(constant, 1.0, norms)[:, None]
    dissimilarity = 1.0 - jnp.clip(z @ z.T, -1.0, 1.0)
    dissimilarity = jnp.where(jnp.eye(x.shape[0], dtype=bool), 0.0, dissimilarity)
    return jnp.where(constant[:, None] | constant[None, :], jnp.nan, dissimilarity)


def upper_triangle(matrix: jax.Array) -> jax.Array:
    """Entries above the diagonal, row by row (static size n(n−1)/2)."""
    rows, cols = np.triu_indices(matrix.shape[-1], k=1)
    return matrix[..., rows, cols]


@jax.jit
def compare_rdms(rdm_a: jax.Array, rdm_b: jax.Array) -> jax.Array:
    """Spearman rho between the upper triangles of two RDMs."""
    return spearman(upper_triangle(rdm_a), upper_triangle(rdm_b))


@jax.jit
def rsa(x: jax.Array, y: jax.Array) -> jax.Array:
    """RSA score between two representations of the same stimuli (n × d1, n × d2)."""
    return compare_rdms(rdm(x), rdm(y))
