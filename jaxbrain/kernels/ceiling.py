"""Split-half internal-consistency ceiling (docs/design.md §4).

For each split of the repetition values into two halves: average, per stimulus, the trials
whose repetition lies in each half, Pearson r per neuroid across stimuli, Spearman–Brown
2r/(1+r); the ceiling is the median over neuroids (NaN neuroids ignored and counted),
averaged over splits.  Trials are given flat, with their stimulus and repetition indices, so
stimuli may have different numbers of trials (as in real recordings); a stimulus with no
trial in a half has no mean there and makes that split's correlations NaN.
"""

from __future__ import annotations

from functools import partial
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


@partial(jax.jit, static_argnames=("n_stimuli",))
def split_half_consistency_trials(
    trials: jax.Array,
    stimulus_index: jax.Array,
    repetition_index: jax.Array,
    half_a: jax.Array,
    half_b: jax.Array,
    n_stimuli: int,
) -> CeilingResult:
    """Ceiling from flat ``trials`` (n_trials, n_neuroids).

    ``stimulus_index`` (n_trials,) in [0, n_stimuli); ``repetition_index`` (n_trials,) the
    position of each trial's repetition value among the sorted repetition values;
    ``half_a`` / ``half_b`` (S, k) repetition indices per split, e.g. from
    :func:`jaxbrain.kernels.split_half_splits`.
    """

    def half_mean(half):
        inside = jnp.isin(repetition_index, half).astype(trials.dtype)
        sums = jax.ops.segment_sum(trials * inside[:, None], stimulus_index, n_stimuli)
        counts = jax.ops.segment_sum(inside, stimulus_index, n_stimuli)
        return sums / counts[:, None]  # NaN rows for stimuli without trials in this half

    def one_split(a, b):
        return spearman_brown(pearson(half_mean(a), half_mean(b)))

    per_neuroid = jax.vmap(one_split)(half_a, half_b)
    per_split, n_nan = nanmedian_and_count(per_neuroid)
    return CeilingResult(
        jnp.mean(per_split),
        jnp.std(per_split) / jnp.sqrt(per_split.shape[0]),
        per_split,
        per_neuroid,
        n_nan,
    )


def split_half_consistency(
    repetitions: jax.Array, half_a: jax.Array, half_b: jax.Array
) -> CeilingResult:
    """Ceiling from stacked ``repetitions`` (n_repetitions, n_stimuli, n_neuroids): every
    stimulus has every repetition (see :func:`split_half_consistency_trials` otherwise)."""
    repetitions = jnp.asarray(repetitions)
    n_reps, n_stimuli, n_neuroids = repetitions.shape
    return split_half_consistency_trials(
        repetitions.reshape(n_reps * n_stimuli, n_neuroids),
        jnp.tile(jnp.arange(n_stimuli), n_reps),
        jnp.repeat(jnp.arange(n_reps), n_stimuli),
        jnp.asarray(half_a),
        jnp.asarray(half_b),
        n_stimuli,
    )
