"""What every benchmark is: an immutable definition that names its data, prepares its targets
once, and scores a layer bank through its own batched scorer (docs/design.md §3).

The engine, the CLI and the analyses talk to benchmarks only through this interface: they
never branch on a benchmark's kind or parse its name. One scorer per kind means the CLI,
:func:`layer_results` and the sweep produce the same numbers in one schema.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping
from typing import ClassVar, NamedTuple

import numpy as np

# Ceiled-score conventions, by name (docs/design.md §4.7). Every output states which it used.
CONVENTIONS = {
    "v4": lambda raw, ceiling: raw**2 / ceiling,
    "v3": lambda raw, ceiling: (raw / ceiling) ** 2,
    "v1": lambda raw, ceiling: raw / ceiling,
}


def ceiled(raw: float, ceiling: float, convention: str) -> float:
    """The ceiled score of ``raw`` under ``convention`` (an unknown name is an error)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown ceiling convention {convention!r}; "
                         f"expected one of {sorted(CONVENTIONS)}")
    return float(CONVENTIONS[convention](raw, ceiling))


class ScoredLayer(NamedTuple):
    """One layer's score on one benchmark: the store row's fields and, where the metric has
    them, per-neuroid values labelled by ``neuroid_ids``."""

    layer: str
    fields: dict  # status, raw, error, per_split, ceiling, ceiled, convention, n_neuroids, ...
    neuroid_values: np.ndarray | None = None  # (m,) r averaged over splits
    neuroid_ids: np.ndarray | None = None  # (m,)
    neuroid_ceiling: np.ndarray | None = None  # (m,) split-half ceiling per neuroid


def skipped(name: str, reason: str) -> ScoredLayer:
    """A layer that cannot be scored on a benchmark (reported with the reason, never fatal)."""
    return ScoredLayer(name, {"status": f"skipped: {reason}"})


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A benchmark's targets, computed once from its data (each kind adds its own fields):
    ``source`` names the data (catalog name or path), ``digest`` identifies its content and
    is part of every stored score's key."""

    benchmark: Benchmark
    source: str
    digest: str
    ceiling: dict | None


class Benchmark(abc.ABC):
    """Subclasses are frozen dataclasses. Besides the methods below, each has (as fields or
    class variables):

    - ``identifier``, ``version``;
    - ``region``: the brain region scored, "" for a behavioural target;
    - ``stimulus_set``, ``visual_degrees``: the images the benchmark is defined on (catalog
      name or CSV) and their visual extent; ``stimulus_set`` None: the images come with its
      data (see ``stimulus_source``) or the caller supplies them;
    - ``role`` in layer commitment: ``selection`` (a region's layers are committed on it),
      ``final`` (it reports the committed layer) or ``report`` (a target outside commitment,
      whose best layer is shown).
    """

    kind: ClassVar[str]  # a label for rows and reports ("neural", "memorability", "decoding")

    @property
    @abc.abstractmethod
    def metric(self) -> str:
        """What a raw score is (e.g. "pls", "spearman")."""

    def definition(self) -> dict:
        """Every option its scores depend on (keys of stored scores, the rows' options)."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def with_overrides(self, **changes) -> Benchmark:
        """A copy with some fields replaced; unknown names are errors."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - fields
        if unknown:
            raise ValueError(f"{self.identifier}: unknown benchmark options {sorted(unknown)} "
                             f"(options: {', '.join(sorted(fields))})")
        return dataclasses.replace(self, **changes)

    @abc.abstractmethod
    def with_data(self, *, assembly=None, lamem=None, fmri=None) -> Benchmark:
        """This benchmark on other data for one run (the data it takes; others ignored)."""

    @abc.abstractmethod
    def prepare(self, cache: dict | None = None, catalog=None) -> Prepared:
        """Load the benchmark's data (``cache``: data already loaded, by source) and prepare
        its targets, splits and ceiling."""

    def stimulus_source(self, prepared: Prepared) -> tuple[str, str, float] | None:
        """(stimulus-set CSV or catalog name, image folder, visual degrees) of the images the
        benchmark is scored on, as ``engine.inputs.load_stimuli`` takes them; None: the caller
        supplies them."""
        del prepared
        if self.stimulus_set is None:
            return None
        return (self.stimulus_set, "", self.visual_degrees)

    @abc.abstractmethod
    def check_stimuli(self, prepared: Prepared, stimulus_ids, filenames=None) -> None:
        """Raise a ValueError naming the data if these stimuli cannot be scored on it (the
        sweep checks this before any model runs)."""

    @abc.abstractmethod
    def score(self, prepared: Prepared, layers: Mapping[str, np.ndarray], stimulus_ids, *,
              filenames=None, mesh=None) -> list[ScoredLayer]:
        """Every layer of ``layers`` (rows in the order of ``stimulus_ids``; ``filenames``:
        the stimuli's file names, for targets listed by file) batched, in ``layers``' order."""


def load_once(cache: dict | None, key, load: Callable[[], tuple]) -> tuple:
    """``load()``'s (data, digest), read once per ``cache``: the data several benchmarks of
    one run share (an assembly holds V4 and IT)."""
    if cache is None:
        return load()
    if key not in cache:
        cache[key] = load()
    return cache[key]


def layer_results(prepared: Prepared, scored: list[ScoredLayer]) -> dict:
    """The one output schema of scoring layers outside a sweep (CLI JSON, Python API):
    the definition, the data, the ceiling, and per layer the store row's fields plus the
    ceiled score under every convention and per-neuroid values by ``neuroid_id``."""
    layers = {}
    for item in scored:
        entry = dict(item.fields)
        if "ceiling" in entry and "raw" in entry:
            entry["ceiled_by_convention"] = {name: ceiled(entry["raw"], entry["ceiling"], name)
                                             for name in CONVENTIONS}
        if item.neuroid_values is not None:
            entry["per_neuroid"] = dict(zip(np.asarray(item.neuroid_ids).tolist(),
                                            np.asarray(item.neuroid_values).tolist(),
                                            strict=True))
        layers[item.layer] = entry
    return {"benchmark": prepared.benchmark.definition(), "data": prepared.source,
            "ceiling": prepared.ceiling, "layers": layers}
