"""Centred kernel alignment (Kornblith et al. 2019) between representations of the same stimuli.

Every variant is an inner product of centred, normalised Gram matrices, so a whole
layer × layer map between two stacks of layers is one contraction of their stacked Grams —
no double Python loop.  The debiased variant centres with the unbiased HSIC estimator of
Song et al. (2007); it is the default, as in docs/design.md §4 (Brain-Score's ``cka``).

Stacks of layers of different widths can be zero-padded to a common width: zero features
change no Gram matrix, hence no CKA value.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp


def gram_linear(x: jax.Array) -> jax.Array:
    return x @ x.T


def gram_rbf(x: jax.Array, threshold: float = 1.0) -> jax.Array:
    """RBF Gram with bandwidth ``threshold`` × the median pairwise distance (Kornblith)."""
    dot = x @ x.T
    sq_norms = jnp.diagonal(dot)
    sq_dist = jnp.maximum(sq_norms[:, None] + sq_norms[None, :] - 2.0 * dot, 0.0)
    return jnp.exp(-sq_dist / (2.0 * threshold**2 * jnp.median(sq_dist)))


def center_gram(gram: jax.Array, debiased: bool) -> jax.Array:
    """Centre a Gram matrix so that ⟨K̃, L̃⟩_F is (proportional to) HSIC.

    ``debiased=False``: double centring HKH (biased estimator).  ``debiased=True``: zero the
    diagonal and remove row/column means with the U-statistic correction, so that
    ⟨K̃, L̃⟩_F = n(n−3) · HSIC_unbiased(K, L) (Song et al. 2007).
    """
    n = gram.shape[0]
    if not debiased:
        gram = gram - jnp.mean(gram, axis=0, keepdims=True)
        return gram - jnp.mean(gram, axis=1, keepdims=True)
    off = jnp.eye(n, dtype=bool)
    gram = jnp.where(off, 0.0, gram)
    means = jnp.sum(gram, axis=0) / (n - 2)
    means = means - jnp.sum(means) / (2 * (n - 1))
    gram = gram - means[:, None] - means[None, :]
    return jnp.where(off, 0.0, gram)


def _normalised_centred_gram(x, kernel: str, debiased: bool, threshold: float):
    if kernel == "linear":
        gram = gram_linear(x - jnp.mean(x, axis=0))
    elif kernel == "rbf":
        gram = gram_rbf(x, threshold)
    else:
        raise ValueError(f"unknown CKA kernel {kernel!r}; expected 'linear' or 'rbf'")
    centred = center_gram(gram, debiased)
    return centred / _frobenius_sqrt(centred, centred)


def _frobenius_sqrt(a, b):
    # Two-level sum (rows first): keeps float32 error near eps·√n instead of eps·n.
    inner = jnp.sum(jnp.sum(a * b, axis=1))
    return jnp.sqrt(jnp.maximum(inner, jnp.finfo(a.dtype).tiny))


@partial(jax.jit, static_argnames=("kernel", "debiased"))
def cka_matrix(
    xs: jax.Array,
    ys: jax.Array,
    kernel: str = "linear",
    debiased: bool = True,
    threshold: float = 1.0,
) -> jax.Array:
    """CKA between every layer of ``xs`` (L1, n, d1) and every layer of ``ys`` (L2, n, d2).

    Returns an (L1, L2) matrix.  Memory: (L1 + L2) Gram matrices of n × n.
    """
    grams = jax.vmap(_normalised_centred_gram, in_axes=(0, None, None, None))
    gx = grams(xs, kernel, debiased, threshold)
    gy = grams(ys, kernel, debiased, threshold)
    # Row-wise partial sums, then a sum over rows: float32 stays within ~1e-6 of float64.
    return jnp.sum(jnp.einsum("aij,bij->abi", gx, gy), axis=-1)


def cka_gram(gram_x: jax.Array, y: jax.Array, debiased: bool = True) -> jax.Array:
    """Linear CKA between a representation given by its Gram ``gram_x`` (n, n) = XXᵀ (any
    column centring) and ``y`` (n, d2): the value of :func:`cka` for layers too wide to hold."""
    n = gram_x.shape[0]
    centring = jnp.eye(n, dtype=gram_x.dtype) - 1.0 / n
    gx = center_gram(centring @ gram_x @ centring, debiased)
    gx = gx / _frobenius_sqrt(gx, gx)
    gy = _normalised_centred_gram(y, "linear", debiased, 1.0)
    return jnp.sum(jnp.sum(gx * gy, axis=1))


def cka(
    x: jax.Array, y: jax.Array, kernel: str = "linear", debiased: bool = True,
    threshold: float = 1.0,
) -> jax.Array:
    """CKA between two representations ``x`` (n, d1) and ``y`` (n, d2) of the same stimuli."""
    return cka_matrix(x[None], y[None], kernel, debiased, threshold)[0, 0]
