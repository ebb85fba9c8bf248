"""Neural-predictivity benchmarks: a named, versioned recipe turning an assembly and a
model's activations into Brain-Score-style scores (docs/design.md §4).

A benchmark fixes the region, time window, stratification coordinate, mapping, splits,
ceiling and ceiled-score convention; :func:`score_layers_on` applies it to any number of
layers of activations given with their stimulus ids.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from jaxbrain.benchmarks.layers import flatten_checked
from jaxbrain.data import assemblies
from jaxbrain.kernels import (
    cka,
    neural_predictivity,
    rsa,
    split_half_consistency_trials,
    split_half_splits,
    stratified_shuffle_splits,
)
from jaxbrain.kernels.pls import WEIGHT_SOLVERS

MAPPINGS = ("pls", "ridge", "cka", "rdm")
SIMILARITIES = {"cka": cka, "rdm": rsa}  # debiased linear CKA; RDM Spearman (Brain-Score's)

# Ceiled-score conventions, by name (docs/design.md §4).  Every output states which one it used.
CONVENTIONS = {
    "v4": lambda raw, ceiling: raw**2 / ceiling,
    "v3": lambda raw, ceiling: (raw / ceiling) ** 2,
    "v1": lambda raw, ceiling: raw / ceiling,
}


@dataclasses.dataclass(frozen=True)
class NeuralBenchmark:
    """A neural-predictivity benchmark definition (all Brain-Score defaults unless noted)."""

    identifier: str
    region: str
    time_window_ms: tuple[float, float]
    stratification_coord: str | None = "object_name"
    mapping: str = "pls"  # "pls" / "ridge" (predictivity) or "cka" / "rdm" (similarity)
    n_components: int = 25
    # "sklearn" replays scikit-learn's PLS power iteration, so scores equal Brain-Score's even
    # where that iteration stops short of convergence; "exact" uses exact singular vectors.
    pls_weights: str = "sklearn"
    alphas: tuple[float, ...] | None = None  # ridge grid; None = DEFAULT_ALPHAS
    n_splits: int = 10
    train_size: float = 0.9
    test_size: float | None = None  # similarity benchmarks score the test side (0.9)
    seed: int = 1
    ceiling: str | None = "split_half"  # None: report raw scores only
    convention: str = "v4"
    visual_degrees: float = 8.0
    number_of_trials: int = 50
    version: str = "1"
    # The data the benchmark is defined on: catalog names (jaxbrain.data.catalog) or paths.
    # None: the caller supplies the recordings / stimuli (the synthetic suite, your own files).
    assembly: str | None = None
    stimulus_set: str | None = None

    def with_overrides(self, **changes) -> NeuralBenchmark:
        """A copy with some fields replaced; unknown names and values are errors."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - fields
        if unknown:
            raise ValueError(f"unknown benchmark options {sorted(unknown)}")
        if changes.get("mapping", "pls") not in MAPPINGS:
            raise ValueError(f"unknown mapping {changes['mapping']!r}; expected one of {MAPPINGS}")
        if changes.get("pls_weights", "exact") not in WEIGHT_SOLVERS:
            raise ValueError(
                f"unknown pls_weights {changes['pls_weights']!r}; expected {WEIGHT_SOLVERS}"
            )
        if "mapping" in changes and (changes["mapping"] in SIMILARITIES) != (
            self.mapping in SIMILARITIES
        ):
            # Switching between predictivity and similarity switches the cross-validation
            # scheme with it (scored test side 0.9 and no ceiling, or back), unless given.
            similarity = changes["mapping"] in SIMILARITIES
            changes.setdefault("test_size", 0.9 if similarity else None)
            changes.setdefault("ceiling", None if similarity else "split_half")
        if "convention" in changes and changes["convention"] not in CONVENTIONS:
            raise ValueError(
                f"unknown ceiling convention {changes['convention']!r}; "
                f"expected one of {sorted(CONVENTIONS)}"
            )
        return dataclasses.replace(self, **changes)


def prepare_targets(benchmark: NeuralBenchmark, assembly: xr.DataArray):
    """Region and time window selected; returns (trial-averaged targets, the windowed
    trials for the ceiling)."""
    trials = assemblies.time_window(
        assemblies.select_region(assembly, benchmark.region), *benchmark.time_window_ms
    )
    return assemblies.average_repetitions(trials), trials


def ceiling_of(benchmark: NeuralBenchmark, trials: xr.DataArray) -> dict | None:
    """Split-half internal consistency of the windowed trials (docs/design.md §4)."""
    if benchmark.ceiling is None:
        return None
    reps = assemblies.repetitions(trials)
    halves = split_half_splits(reps.n_repetitions, benchmark.n_splits, benchmark.seed)
    result = split_half_consistency_trials(
        reps.data, reps.stimulus_index, reps.repetition_index, halves.train, halves.test,
        n_stimuli=reps.stimulus_id.size,
    )
    return {
        "ceiling": float(result.ceiling),
        "ceiling_error": float(result.error),
        "ceiling_per_split": np.asarray(result.per_split).tolist(),
        "ceiling_per_neuroid": np.asarray(result.per_neuroid).mean(axis=0).tolist(),
        "ceiling_nan_neuroids": int(np.asarray(result.n_nan).max()),
        "repetitions": int(reps.n_repetitions),
    }


@dataclasses.dataclass(frozen=True)
class PreparedNeural:
    """Everything a neural benchmark needs from its recordings, computed once per sweep."""

    benchmark: NeuralBenchmark
    target_ids: np.ndarray  # (n,) stimulus ids in target (sorted) order
    y: np.ndarray  # (n, m) trial-averaged targets
    neuroid_ids: np.ndarray  # (m,)
    splits: object  # stacked Splits
    ceiling: dict | None


def prepare_neural(benchmark: NeuralBenchmark, assembly: xr.DataArray) -> PreparedNeural:
    targets, trials = prepare_targets(benchmark, assembly)
    target_ids = np.asarray(targets["stimulus_id"].values).astype(str)
    coord = benchmark.stratification_coord
    if coord is None:
        labels = np.zeros(target_ids.size)
    elif coord not in targets.coords:
        raise ValueError(f"assembly has no presentation coordinate {coord!r} to stratify the "
                         f"splits by (coordinates: {sorted(targets.coords)})")
    else:
        labels = np.asarray(targets[coord].values).astype(str)
    splits = stratified_shuffle_splits(labels, benchmark.n_splits, benchmark.train_size,
                                       benchmark.seed, benchmark.test_size)
    neuroid_ids = np.asarray(targets["neuroid_id"].values).astype(str)
    return PreparedNeural(benchmark, target_ids, np.asarray(targets.values, np.float32),
                          neuroid_ids, splits, ceiling_of(benchmark, trials))


def score_layers_on(
    benchmark: NeuralBenchmark,
    layers: Mapping[str, np.ndarray],
    stimulus_ids: Iterable,
    assembly: xr.DataArray,
    progress=None,
) -> dict:
    """Score every layer (rows in the order of ``stimulus_ids``) on the benchmark.

    Returns ``{"benchmark": ..., "ceiling": ..., "layers": {name: scores}}``; ``progress`` is
    an optional callable wrapping the layer iterator (e.g. tqdm).
    """
    # Splits are drawn on the targets in stimulus_id order (docs/design.md §4), so activations are
    # reordered to the targets, never the reverse: the caller's row order cannot change scores.
    prepared = prepare_neural(benchmark, assembly)
    rows = assemblies.match_rows(np.asarray(stimulus_ids).astype(str), prepared.target_ids)
    splits, ceiling, y = prepared.splits, prepared.ceiling, prepared.y
    names = list(layers)
    scored = {}
    for name in progress(names) if progress else names:
        x = flatten_checked(name, layers[name], rows.size)[rows]
        if benchmark.mapping in SIMILARITIES:
            scored[name] = _similarity_scores(x, y, splits, benchmark.mapping)
            continue
        result = neural_predictivity(
            x, y, splits, benchmark.mapping,
            n_components=benchmark.n_components, alphas=benchmark.alphas,
            pls_weights=benchmark.pls_weights,
        )
        scored[name] = _layer_scores(result, ceiling, benchmark.convention)
    return {"benchmark": dataclasses.asdict(benchmark), "ceiling": ceiling, "layers": scored}


def _similarity_scores(x, y, splits, mapping) -> dict:
    """CKA or RDM similarity on each split's test stimuli (Brain-Score's test-only
    cross-validation), mean and SEM over splits."""
    similarity = SIMILARITIES[mapping]
    x, y = jnp.asarray(x), jnp.asarray(y)
    per_split = np.asarray(
        jax.vmap(lambda test: similarity(x[test], y[test]))(jnp.asarray(splits.test))
    )
    return {
        "raw": float(per_split.mean()),
        "error": float(per_split.std() / np.sqrt(per_split.size)),
        "per_split": per_split.tolist(),
    }


def _layer_scores(result, ceiling, convention) -> dict:
    raw = float(result.score)
    scores = {
        "raw": raw,
        "error": float(result.error),
        "per_split": np.asarray(result.per_split).tolist(),
        "n_neuroids": int(np.asarray(result.per_neuroid).shape[-1]),
        "nan_neuroids": int(np.asarray(result.n_nan).max()),
        "per_neuroid": np.nanmean(np.asarray(result.per_neuroid), axis=0).tolist(),
    }
    if ceiling is not None:
        scores["ceiled"] = CONVENTIONS[convention](raw, ceiling["ceiling"])
        scores["convention"] = convention
        scores["ceiled_by_convention"] = {
            name: fn(raw, ceiling["ceiling"]) for name, fn in CONVENTIONS.items()
        }
    return scores
