"""Split-half internal-consistency ceiling (DESIGN §4).

For each split of the repetition indices into two halves: average each half over its
repetitions, Pearson r per neuroid across stimuli, Spearman–Brown 2r/(1+r); the ceiling is
the median over neuroids (NaN neuroids ignored and counted), averaged over splits.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxbrain.kernels.stats import nanmedian_and_count, pearson, spearman_brown


class CeilingResult(NamedTuple):
    ceiling: jax.Array  # mean over splits of the per-split median
    error: jax.Array  # std over splits (ddof 0) / sqrt(n_splits)
    per_split: jax.Array  # (S,) median over neuroids
    per_neuroid: jax.Array  # (S, m) Spearman–Brown corrected split-half r
    n_nan: jax.Array  # (S,) neuroids with undefined r per split


@jax.jit
def split_half_consistency(
    repetitions: jax.Array, half_a: jax.Array, half_b: jax.Array
) -> CeilingResult:
    """Ceiling from ``repetitions`` (n_repetitions, n_stimuli, n_neuroids).

    ``half_a`` / ``half_b`` are (S, k) repetition indices per split, e.g. the ``train`` /
    ``test`` arrays of :func:`jaxbrain.kernels.split_half_splits`.
    """

    def one_split(a, b):
        r = pearson(jnp.mean(repetitions[a], axis=0), jnp.mean(repetitions[b], axis=0))
        return spearman_brown(r)

    per_neuroid = jax.vmap(one_split)(half_a, half_b)
    per_split, n_nan = nanmedian_and_count(per_neuroid)
    n_splits = per_split.shape[0]
    return CeilingResult(
        jnp.mean(per_split),
        jnp.std(per_split) / jnp.sqrt(n_splits),
        per_split,
        per_neuroid,
        n_nan,
    )
