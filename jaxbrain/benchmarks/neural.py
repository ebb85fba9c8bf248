"""Neural benchmarks: a named, versioned recipe turning recordings (an assembly) and a model's
activations into Brain-Score-style scores (docs/design.md §4).

A benchmark names its data (assembly and stimulus set) and fixes the region, time window,
stratification coordinate, mapping (PLS / ridge predictivity, CKA / RDM similarity), splits,
ceiling, ceiled-score convention and its role in layer commitment. It prepares its targets
once and scores any number of layers batched by width (one compiled kernel per group,
sharded over a mesh when given); :func:`score_layers_on` is the same scorer for arrays in
memory.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Mapping
from functools import partial
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from jaxbrain.benchmarks.base import (
    CONVENTIONS,
    Benchmark,
    Prepared,
    ScoredLayer,
    ceiled,
    layer_results,
    load_once,
    skipped,
)
from jaxbrain.benchmarks.layers import (
    gram_form,
    layer_gram,
    layer_widths,
    stack_chunks,
    stack_layers,
    width_groups,
)
from jaxbrain.data import assemblies
from jaxbrain.data.brainscore_io import assembly_file, read_assembly
from jaxbrain.files import file_digest
from jaxbrain.kernels import (
    cka,
    cka_gram,
    neural_predictivity,
    rsa,
    split_half_consistency_trials,
    split_half_splits,
    stratified_shuffle_splits,
)
from jaxbrain.kernels.pls import WEIGHT_SOLVERS
from jaxbrain.kernels.predictivity import pls_usable_components

MAPPINGS = ("pls", "ridge", "cka", "rdm")
SIMILARITIES = {"cka": cka, "rdm": rsa}  # debiased linear CKA; RDM Spearman (Brain-Score's)
ROLES = ("selection", "final", "report")


@dataclasses.dataclass(frozen=True)
class NeuralBenchmark(Benchmark):
    """A neural benchmark definition (all Brain-Score defaults unless noted)."""

    kind: ClassVar[str] = "neural"
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
    assembly_group: str | None = None  # the NetCDF group holding it (None: the root)
    stimulus_set: str | None = None
    # Layer commitment: "selection" benchmarks choose a region's layer (Brain-Score's public
    # ones), "final" ones report the committed layer.
    role: str = "final"

    @property
    def metric(self) -> str:
        return self.mapping

    def with_data(self, *, assembly=None, lamem=None, fmri=None) -> NeuralBenchmark:
        return self if assembly is None else dataclasses.replace(self, assembly=str(assembly))

    def prepare(self, cache: dict | None = None, catalog=None) -> PreparedNeural:
        """The benchmark's targets from its assembly (catalog name or path)."""
        if self.assembly is None:
            raise ValueError(f"benchmark {self.identifier} names no recordings: give an "
                             "assembly")
        def load():
            path = assembly_file(self.assembly, catalog)
            return read_assembly(path, group=self.assembly_group), file_digest(path)

        assembly, digest = load_once(cache, (self.assembly, self.assembly_group), load)
        return prepare_neural(self, assembly, source=self.assembly, digest=digest)

    def _rows(self, prepared: PreparedNeural, stimulus_ids) -> np.ndarray:
        return assemblies.match_rows(np.asarray(stimulus_ids).astype(str), prepared.target_ids,
                                     source="the stimuli",
                                     target=f"{prepared.source} ({self.region} recordings)")

    def check_stimuli(self, prepared: PreparedNeural, stimulus_ids, filenames=None) -> None:
        self._rows(prepared, stimulus_ids)

    def score(self, prepared: PreparedNeural, layers: Mapping[str, np.ndarray], stimulus_ids,
              *, filenames=None, mesh=None) -> list[ScoredLayer]:
        """Every layer, batched by width; layers narrower than the PLS components or of lower
        rank on some split are reported as skipped, with the reason."""
        rows = self._rows(prepared, stimulus_ids)
        widths = layer_widths(layers)
        scored: dict[str, ScoredLayer] = {}
        if self.mapping == "pls":
            for name in [n for n, w in widths.items() if w < self.n_components]:
                scored[name] = skipped(name, f"{widths[name]} features, fewer than the "
                                             f"{self.n_components} PLS components")
                del widths[name]
        # Layers wider than the stimuli are scored through their Grams (exact, O(n²) memory:
        # ~800k-feature layers never become a stacked copy); RDMs need the features.
        wide = [n for n, w in widths.items() if gram_form(w, rows.size) and self.mapping != "rdm"]
        batches = [(0, chunk) for chunk in stack_chunks(wide, 4 * rows.size**2)]  # 0: Grams
        batches += [(width, chunk) for width, names in width_groups(
                        {n: w for n, w in widths.items() if n not in wide},
                        exact=self.mapping == "rdm")
                    for chunk in stack_chunks(names, 4 * rows.size * width)]
        for width, names in batches:
            grams = width == 0
            if grams:
                stack = np.stack([layer_gram(name, layers[name], rows) for name in names])
            else:
                stack = stack_layers(layers, names, rows, width)
            if self.mapping in SIMILARITIES:
                scored.update(_similarity(names, stack, prepared, grams))
                continue
            result = neural_predictivity(stack, prepared.y, prepared.splits, self.mapping,
                                         n_components=self.n_components, alphas=self.alphas,
                                         pls_weights=self.pls_weights, mesh=mesh,
                                         check_rank=False, gram=grams)
            scored.update(_predictivity(names, result, prepared))
            if self.mapping == "pls":  # a layer of too low rank is skipped, not fatal
                usable = pls_usable_components(result.fit_info)
                for name, rank in zip(names, usable, strict=True):
                    if rank < self.n_components:
                        scored[name] = skipped(name, f"rank {rank} on some split, below the "
                                                     f"{self.n_components} PLS components")
        return [scored[name] for name in layers]

    def with_overrides(self, **changes) -> NeuralBenchmark:
        """A copy with some fields replaced; unknown names and values are errors."""
        if changes.get("mapping", "pls") not in MAPPINGS:
            raise ValueError(f"unknown mapping {changes['mapping']!r}; expected one of {MAPPINGS}")
        if changes.get("pls_weights", "exact") not in WEIGHT_SOLVERS:
            raise ValueError(
                f"unknown pls_weights {changes['pls_weights']!r}; expected {WEIGHT_SOLVERS}"
            )
        if changes.get("role", "final") not in ROLES:
            raise ValueError(f"unknown role {changes['role']!r}; expected one of {ROLES}")
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
        return super().with_overrides(**changes)


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
class PreparedNeural(Prepared):
    """Everything a neural benchmark needs from its recordings, computed once."""

    target_ids: np.ndarray  # (n,) stimulus ids in target (sorted) order
    y: np.ndarray  # (n, m) trial-averaged targets
    neuroid_ids: np.ndarray  # (m,)
    splits: object  # stacked Splits


def prepare_neural(benchmark: NeuralBenchmark, assembly: xr.DataArray, *,
                   source: str = "in memory", digest: str = "") -> PreparedNeural:
    targets, trials = prepare_targets(benchmark, assembly)
    target_ids = np.asarray(targets["stimulus_id"].values).astype(str)
    bad = ~np.all(np.isfinite(np.asarray(targets.values)), axis=0)
    if bad.any():
        names = np.asarray(targets["neuroid_id"].values)[bad]
        raise ValueError(f"{source}: {benchmark.region} responses in {benchmark.time_window_ms} "
                         f"ms contain NaN or infinite values for {bad.sum()} neuroid(s) after "
                         f"averaging trials (neuroid_id e.g. {names[:5].tolist()})")
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
    return PreparedNeural(benchmark=benchmark, source=source, digest=digest,
                          ceiling=ceiling_of(benchmark, trials), target_ids=target_ids,
                          y=np.asarray(targets.values, np.float32), neuroid_ids=neuroid_ids,
                          splits=splits)


def score_layers_on(benchmark: NeuralBenchmark, layers: Mapping[str, np.ndarray],
                    stimulus_ids: Iterable, assembly: xr.DataArray, *, mesh=None) -> dict:
    """Score every layer (rows in the order of ``stimulus_ids``) on the benchmark with
    ``assembly`` as its recordings: the sweep's scorer, in the schema of
    :func:`jaxbrain.benchmarks.base.layer_results`."""
    # Splits are drawn on the targets in stimulus_id order (docs/design.md §4), so
    # activations are reordered to the targets, never the reverse: the caller's row order
    # cannot change scores.
    prepared = prepare_neural(benchmark, assembly)
    return layer_results(prepared, benchmark.score(prepared, layers, stimulus_ids, mesh=mesh))


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
                       "ceiled": ceiled(raw, ceiling["ceiling"], convention)}
        with warnings.catch_warnings():  # all-NaN neuroids are counted in nan_neuroids
            warnings.simplefilter("ignore", RuntimeWarning)
            values = np.nanmean(per_neuroid[i], axis=0)
        out[name] = ScoredLayer(name, fields, values, prepared.neuroid_ids, per_neuroid_ceiling)
    return out


@partial(jax.jit, static_argnums=(0, 4))
def _similarity_per_split(mapping, xs, y, tests, grams):
    """(layers, splits) similarities; data are arguments, not constants XLA would fold.
    ``grams``: ``xs`` are the layers' Grams (CKA only)."""
    if grams:
        def one(g, t):
            return cka_gram(g[t][:, t], y[t])
    else:
        def one(x, t):
            return SIMILARITIES[mapping](x[t], y[t])
    return jax.lax.map(lambda x: jax.vmap(lambda t: one(x, t))(tests), xs)


def _similarity(names, stack, prepared: PreparedNeural, grams: bool) -> dict[str, ScoredLayer]:
    """CKA / RDM on each split's test stimuli (Brain-Score's test-only cross-validation)."""
    per_split = np.asarray(_similarity_per_split(
        prepared.benchmark.mapping, jnp.asarray(stack), jnp.asarray(prepared.y),
        jnp.asarray(prepared.splits.test), grams))
    return {name: ScoredLayer(name, {"raw": float(s.mean()),
                                     "error": float(s.std() / np.sqrt(s.size)),
                                     "per_split": s.tolist(), "status": "ok"})
            for name, s in zip(names, per_split, strict=True)}
