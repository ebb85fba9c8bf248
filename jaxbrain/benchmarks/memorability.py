"""Memorability benchmarks (docs/design.md §4.12): a layer's linear read-out of per-image
memorability.

Per official split: ridge (alpha per target by leave-one-out over the alpha grid) fitted on
the training images, Spearman rho between predicted and true scores on the test images; the
layer's score is the mean over splits. Images are matched to the memorability lists by file
name. The selection rule is part of the definition and is named in the output. Layers are
batched by width, like every benchmark's.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxbrain.benchmarks.base import (
    Benchmark,
    Prepared,
    ScoredLayer,
    layer_results,
    load_once,
)
from jaxbrain.benchmarks.layers import layer_widths, stack_chunks, stack_layers, width_groups
from jaxbrain.data.assemblies import match_rows
from jaxbrain.data.fetch import fetch, names_entry
from jaxbrain.data.lamem import MemorabilityData, read_lamem
from jaxbrain.files import file_digest
from jaxbrain.kernels import DEFAULT_ALPHAS, ridge_cv_predict, spearman
from jaxbrain.kernels.sharding import over_layers, put_layers, take_layers

READOUT = "ridge, alpha per target by efficient leave-one-out over logspace(-3, 7, 21)"


@dataclasses.dataclass(frozen=True)
class MemorabilityBenchmark(Benchmark):
    """Spearman rho of a layer's ridge read-out of memorability on the official splits."""

    kind: ClassVar[str] = "memorability"
    region: ClassVar[str] = ""
    stimulus_set: ClassVar[str | None] = None  # the images are the memorability lists' files
    # (``stimulus_source``)
    visual_degrees: ClassVar[float] = 8.0
    role: ClassVar[str] = "report"
    identifier: str
    version: str = "jaxbrain-1"
    # A LaMem-layout folder (images/ + splits/), or a catalog archive holding one; None: the
    # caller supplies it.
    lamem: str | None = None
    alphas: tuple[float, ...] | None = None  # None: DEFAULT_ALPHAS
    readout: str = READOUT

    @property
    def metric(self) -> str:
        return "spearman"

    def with_data(self, *, assembly=None, lamem=None, fmri=None) -> MemorabilityBenchmark:
        return self if lamem is None else dataclasses.replace(self, lamem=str(lamem))

    def prepare(self, cache: dict | None = None, catalog=None) -> PreparedMemorability:
        if self.lamem is None:
            raise ValueError(f"benchmark {self.identifier} names no memorability data: give a "
                             "LaMem-layout folder")

        def load():
            folder = _lamem_folder(self.lamem, catalog)
            return read_lamem(folder), file_digest(folder / "splits")

        data, digest = load_once(cache, self.lamem, load)
        return prepare_memorability(self, data, source=self.lamem, digest=digest)

    def stimulus_source(self, prepared: PreparedMemorability) -> tuple[str, str, float]:
        """The memorability lists' own images: every image of the folder's ``images/``."""
        return ("", str(prepared.data.image_dir), self.visual_degrees)

    def _rows(self, prepared: PreparedMemorability, stimulus_ids, filenames) -> np.ndarray:
        names = stimulus_ids if filenames is None else filenames
        return match_rows(np.asarray(names).astype(str),
                          prepared.data.image_names.astype(str), source="the stimuli' files",
                          target=f"the memorability splits of {prepared.source}")

    def check_stimuli(self, prepared: PreparedMemorability, stimulus_ids,
                      filenames=None) -> None:
        self._rows(prepared, stimulus_ids, filenames)

    def score(self, prepared: PreparedMemorability, layers: Mapping[str, np.ndarray],
              stimulus_ids, *, filenames=None, mesh=None) -> list[ScoredLayer]:
        data = prepared.data
        rows = self._rows(prepared, stimulus_ids, filenames)
        alphas = np.asarray(DEFAULT_ALPHAS if self.alphas is None else self.alphas)
        groups = [(ks, jnp.asarray(train), jnp.asarray(test))
                  for ks, train, test in _split_groups(data)]
        scored = {}
        batches = [(width, chunk) for width, names in width_groups(layer_widths(layers))
                   for chunk in stack_chunks(names, 4 * rows.size * width)]
        for width, group in batches:
            stack = jnp.asarray(stack_layers(layers, group, rows, width))
            y = jnp.asarray(data.scores[:, None], stack.dtype)
            per_split: dict = {}
            for ks, train, test in groups:
                values = np.asarray(layer_rhos(stack, y, train, test,
                                               jnp.asarray(alphas, stack.dtype), mesh))
                per_split.update(zip(ks, values.T, strict=True))
            ordered = np.stack([per_split[k] for k in sorted(per_split)], axis=1)
            for name, values in zip(group, ordered, strict=True):
                error = float(values.std() / np.sqrt(values.size))
                scored[name] = ScoredLayer(name, {"raw": float(values.mean()), "error": error,
                                                  "per_split": values.tolist(), "status": "ok"})
        return [scored[name] for name in layers]


@dataclasses.dataclass(frozen=True)
class PreparedMemorability(Prepared):
    data: MemorabilityData


def _lamem_folder(source: str, catalog=None) -> Path:
    """A LaMem folder given as a path, or a catalog archive fetched and unpacked."""
    entry = names_entry(source, "archive", catalog)
    if entry is None:
        return Path(source)
    folder = fetch(entry.identifier, catalog, kind="archive")["archive"]
    inner = [p.parent for p in folder.rglob("splits") if p.is_dir()]
    return inner[0] if len(inner) == 1 else folder


def prepare_memorability(benchmark: MemorabilityBenchmark, data: MemorabilityData, *,
                         source: str = "in memory", digest: str = "") -> PreparedMemorability:
    return PreparedMemorability(benchmark=benchmark, source=source, digest=digest, ceiling=None,
                                data=data)


def _split_groups(data: MemorabilityData):
    """Official splits as stacked index arrays, grouped by shape (usually one group)."""
    position = {name: i for i, name in enumerate(data.image_names.tolist())}
    groups: dict[tuple[int, int], list] = {}
    for k in sorted(data.splits):
        train = np.array([position[n] for n in data.splits[k]["train"].tolist()])
        test = np.array([position[n] for n in data.splits[k]["test"].tolist()])
        groups.setdefault((train.size, test.size), []).append((k, train, test))
    return [
        ([k for k, _, _ in members], np.stack([t for _, t, _ in members]),
         np.stack([e for _, _, e in members]))
        for members in groups.values()
    ]


def _layer_rhos(xs, y, train, test, alphas):
    """(layers, splits) Spearman rho of the ridge read-out on each split's test images."""
    def rho(x):
        prediction, _ = ridge_cv_predict(x, y, train, test, alphas)
        return jax.vmap(spearman)(prediction[..., 0], y[test][..., 0])

    return jax.lax.map(rho, xs)


_memorability_rho = jax.jit(_layer_rhos)


@functools.lru_cache(maxsize=8)
def _sharded_rho(mesh):
    return over_layers(_layer_rhos, mesh, n_replicated=4)


def layer_rhos(xs, y, train, test, alphas, mesh=None):
    """:func:`_layer_rhos`, with the layers split over ``mesh``'s devices when given."""
    if mesh is None:
        return _memorability_rho(xs, y, train, test, alphas)
    return take_layers(_sharded_rho(mesh)(put_layers(xs, mesh), y, train, test, alphas),
                       xs.shape[0])


def score_memorability(layers: Mapping[str, np.ndarray], image_names: Iterable,
                       data: MemorabilityData,
                       benchmark: MemorabilityBenchmark | None = None) -> dict:
    """Every layer (rows named by ``image_names``, the files of the memorability lists) on
    ``data``: the sweep's scorer, in the schema of
    :func:`jaxbrain.benchmarks.base.layer_results`."""
    benchmark = benchmark or MemorabilityBenchmark("memorability")
    prepared = prepare_memorability(benchmark, data)
    names = np.asarray(list(image_names)).astype(str)
    return layer_results(prepared, benchmark.score(prepared, layers, names, filenames=names))
