"""Scoring a layer bank on benchmarks, layers batched (docs/design.md §5).

Layers are grouped by width into power-of-two buckets and zero-padded to the bucket, so one
compiled kernel scores a whole group (sharded over a mesh when given) instead of one layer at
a time from Python.  Zero feature columns change nothing for PLS, ridge or linear CKA (they
add nothing to XᵀY, the Grams or the predictions); RDMs correlate stimulus vectors across
features, which padding would change, so RDM groups hold one exact width.

Each function returns one ``ScoredLayer`` per layer: the store row's score fields, and the
per-neuroid values where the metric has them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbrain.benchmarks.layers import flatten_checked
from jaxbrain.benchmarks.memorability import _split_groups
from jaxbrain.benchmarks.neural import CONVENTIONS, SIMILARITIES, PreparedNeural
from jaxbrain.data.assemblies import match_rows
from jaxbrain.data.lamem import MemorabilityData
from jaxbrain.kernels import (
    DEFAULT_ALPHAS,
    neural_predictivity,
    ridge_cv_predict,
    spearman,
)
from jaxbrain.kernels.predictivity import pls_usable_components

_MIN_BUCKET = 32


class ScoredLayer(NamedTuple):
    layer: str
    fields: dict  # raw, error, ceiling, ceiled, convention, per_split, n_neuroids, ...
    neuroid_values: np.ndarray | None = None  # (m,) r averaged over splits
    neuroid_ids: np.ndarray | None = None  # (m,)
    neuroid_ceiling: np.ndarray | None = None  # (m,) split-half ceiling per neuroid


def width_groups(widths: Mapping[str, int], exact: bool = False) -> list[tuple[int, list[str]]]:
    """Layer names grouped by padded width (power-of-two buckets, or exact widths)."""
    groups: dict[int, list[str]] = {}
    for name, width in widths.items():
        bucket = width if exact else max(_MIN_BUCKET, 1 << (int(width) - 1).bit_length())
        groups.setdefault(bucket, []).append(name)
    return sorted(groups.items())


def _stack(layers: Mapping[str, np.ndarray], names: Sequence[str], rows: np.ndarray,
           width: int) -> np.ndarray:
    stack = np.zeros((len(names), rows.size, width), np.float32)
    for i, name in enumerate(names):
        x = flatten_checked(name, layers[name], len(layers[name]))[rows]
        stack[i, :, :x.shape[1]] = x
    return stack


def _skipped(name: str, reason: str) -> ScoredLayer:
    return ScoredLayer(name, {"status": f"skipped: {reason}"})


def score_neural(prepared: PreparedNeural, layers: Mapping[str, np.ndarray], stimulus_ids,
                 *, mesh=None) -> list[ScoredLayer]:
    """Every layer on one neural benchmark (predictivity or similarity), batched by width."""
    bench = prepared.benchmark
    rows = match_rows(np.asarray(stimulus_ids).astype(str), prepared.target_ids)
    widths = {name: int(np.prod(np.shape(layers[name])[1:])) for name in layers}
    scored: dict[str, ScoredLayer] = {}
    if bench.mapping == "pls":
        for name in [n for n, w in widths.items() if w < bench.n_components]:
            scored[name] = _skipped(name, f"{widths[name]} features, fewer than the "
                                          f"{bench.n_components} PLS components")
            del widths[name]
    for width, names in width_groups(widths, exact=bench.mapping == "rdm"):
        stack = _stack(layers, names, rows, width)
        if bench.mapping in SIMILARITIES:
            scored.update(_similarity(names, stack, prepared))
            continue
        result = neural_predictivity(stack, prepared.y, prepared.splits, bench.mapping,
                                     n_components=bench.n_components, alphas=bench.alphas,
                                     pls_weights=bench.pls_weights, mesh=mesh,
                                     check_rank=False)
        scored.update(_predictivity(names, result, prepared))
        if bench.mapping == "pls":  # a layer of too low rank is skipped, not a failed sweep
            usable = pls_usable_components(result.fit_info)
            for name, rank in zip(names, usable, strict=True):
                if rank < bench.n_components:
                    scored[name] = _skipped(name, f"rank {rank} on some split, below the "
                                                  f"{bench.n_components} PLS components")
    return [scored[name] for name in layers]


def _predictivity(names, result, prepared: PreparedNeural) -> dict[str, ScoredLayer]:
    per_split = np.asarray(result.per_split)
    per_neuroid = np.asarray(result.per_neuroid)
    ceiling = prepared.ceiling
    per_neuroid_ceiling = (np.asarray(ceiling["ceiling_per_neuroid"]) if ceiling is not None
                           else np.full(per_neuroid.shape[-1], np.nan))
    out = {}
    for i, name in enumerate(names):
        raw = float(result.score[i])
        fields = {"raw": raw, "error": float(result.error[i]),
                  "per_split": per_split[i].tolist(), "n_neuroids": per_neuroid.shape[-1],
                  "nan_neuroids": int(np.asarray(result.n_nan)[i].max()), "status": "ok"}
        if ceiling is not None:
            convention = prepared.benchmark.convention
            fields |= {"ceiling": ceiling["ceiling"], "convention": convention,
                       "ceiled": float(CONVENTIONS[convention](raw, ceiling["ceiling"]))}
        with warnings.catch_warnings():  # all-NaN neuroids are counted in nan_neuroids
            warnings.simplefilter("ignore", RuntimeWarning)
            values = np.nanmean(per_neuroid[i], axis=0)
        out[name] = ScoredLayer(name, fields, values, prepared.neuroid_ids, per_neuroid_ceiling)
    return out


@partial(jax.jit, static_argnums=0)
def _similarity_per_split(mapping, xs, y, tests):
    """(layers, splits) similarities; data are arguments, not constants XLA would fold."""
    similarity = SIMILARITIES[mapping]
    return jax.lax.map(lambda x: jax.vmap(lambda t: similarity(x[t], y[t]))(tests), xs)


@jax.jit
def _memorability_rho(xs, y, train, test, alphas):
    """(layers, splits) Spearman rho of the ridge read-out on each split's test images."""
    def rho(x):
        prediction, _ = ridge_cv_predict(x, y, train, test, alphas)
        return jax.vmap(spearman)(prediction[..., 0], y[test][..., 0])

    return jax.lax.map(rho, xs)


def _similarity(names, stack, prepared: PreparedNeural) -> dict[str, ScoredLayer]:
    """CKA / RDM on each split's test stimuli (Brain-Score's test-only cross-validation)."""
    per_split = np.asarray(_similarity_per_split(
        prepared.benchmark.mapping, jnp.asarray(stack), jnp.asarray(prepared.y),
        jnp.asarray(prepared.splits.test)))
    return {name: ScoredLayer(name, {"raw": float(s.mean()),
                                     "error": float(s.std() / np.sqrt(s.size)),
                                     "per_split": s.tolist(), "status": "ok"})
            for name, s in zip(names, per_split, strict=True)}


def score_memorability_bank(data: MemorabilityData, layers: Mapping[str, np.ndarray],
                            image_names, alphas=None) -> list[ScoredLayer]:
    """Spearman rho of each layer's ridge read-out of memorability (``benchmarks.memorability``'s
    definition), layers batched by width."""
    rows = match_rows(np.asarray(image_names).astype(str), data.image_names.astype(str),
                      source="activations", target="memorability splits")
    alphas = jnp.asarray(np.asarray(DEFAULT_ALPHAS if alphas is None else alphas, np.float32))
    y = jnp.asarray(data.scores[:, None], jnp.float32)
    groups = [(ks, jnp.asarray(train), jnp.asarray(test))
              for ks, train, test in _split_groups(data)]
    widths = {name: int(np.prod(np.shape(layers[name])[1:])) for name in layers}
    scored = {}
    for width, names in width_groups(widths):
        stack = jnp.asarray(_stack(layers, names, rows, width))
        per_split: dict = {}
        for ks, train, test in groups:
            values = np.asarray(_memorability_rho(stack, y, train, test, alphas))
            for k, column in zip(ks, values.T, strict=True):
                per_split[k] = column
        ordered = np.stack([per_split[k] for k in sorted(per_split)], axis=1)
        for name, values in zip(names, ordered, strict=True):
            scored[name] = ScoredLayer(name, {"raw": float(values.mean()),
                                              "error": float(values.std() / np.sqrt(values.size)),
                                              "per_split": values.tolist(), "status": "ok"})
    return [scored[name] for name in layers]

