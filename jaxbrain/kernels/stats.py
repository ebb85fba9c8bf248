"""Column-wise correlation statistics shared by every benchmark.

All functions take arrays with stimuli on axis 0 (``(n,)`` or ``(n, m)``) and reduce over that
axis, so they vmap over any leading layer/split axes.  A column that is exactly constant has no
defined correlation: it yields NaN (never 0 and never an exception), so a dead neuroid or a
constant prediction is visible in the results instead of silently biasing a median.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.stats import rankdata


def _is_constant(a: jax.Array) -> jax.Array:
    # Exact test (max == min) rather than std == 0: the mean of a constant column is not
    # always that constant in floating point, so centred values need not be exactly zero.
    return jnp.max(a, axis=0) == jnp.min(a, axis=0)


@jax.jit
def pearson(a: jax.Array, b: jax.Array) -> jax.Array:
    """Pearson r between matching columns of ``a`` and ``b`` (axis 0 = samples).

    Returns shape ``a.shape[1:]``; NaN where either column is constant.
    """
    a = jnp.asarray(a)
    b = jnp.asarray(b)
    ac = a - jnp.mean(a, axis=0)
    bc = b - jnp.mean(b, axis=0)
    num = jnp.sum(ac * bc, axis=0)
    den = jnp.sqrt(jnp.sum(ac * ac, axis=0) * jnp.sum(bc * bc, axis=0))
    bad = _is_constant(a) | _is_constant(b)
    r = num / jnp.where(bad, 1.0, den)
    return jnp.where(bad, jnp.nan, jnp.clip(r, -1.0, 1.0))


@jax.jit
def spearman(a: jax.Array, b: jax.Array) -> jax.Array:
    """Spearman rho between matching columns (average ranks for ties, as scipy)."""
    return pearson(rankdata(a, axis=0), rankdata(b, axis=0))


def spearman_brown(r: jax.Array, factor: float = 2.0) -> jax.Array:
    """Spearman–Brown prophecy: reliability of a ``factor``-times longer test, k r / (1 + (k-1) r).

    ``factor=2`` turns a split-half correlation into a full-data reliability.
    """
    r = jnp.asarray(r)
    return factor * r / (1.0 + (factor - 1.0) * r)


@jax.jit
def partial_correlation(y: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """r(y, a | b) per column: what ``a`` shares with ``y`` beyond what ``b`` explains.

    First-order partial correlation from the three pairwise Pearson r's; NaN where any column is
    constant or where ``b`` fully determines ``y`` or ``a``.
    """
    r_ya = pearson(y, a)
    r_yb = pearson(y, b)
    r_ab = pearson(a, b)
    den = jnp.sqrt((1.0 - r_yb**2) * (1.0 - r_ab**2))
    return jnp.where(den > 0, (r_ya - r_yb * r_ab) / jnp.where(den > 0, den, 1.0), jnp.nan)


@jax.jit
def explained_variance(prediction: jax.Array, target: jax.Array, ceiling: jax.Array) -> jax.Array:
    """Noise-corrected explained variance per column: r(prediction, target)^2 / ceiling."""
    return pearson(prediction, target) ** 2 / ceiling


def nanmedian_and_count(r: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Median over the last axis ignoring NaN (as xarray's median does), and the NaN count."""
    return jnp.nanmedian(r, axis=-1), jnp.sum(jnp.isnan(r), axis=-1)
