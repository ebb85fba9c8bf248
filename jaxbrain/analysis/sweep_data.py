"""A finished sweep as the analyses' input: its score rows, its cached layer banks and the
prepared targets of its neural benchmarks (splits, per-site ceilings).

The studies reuse what the sweep computed: scores come from the results store, activations
from the bank cache (nothing is extracted again), and held-out predictions are refitted on the
benchmark's own splits with its own mapping, so a site's r here is the r the sweep's score
took the median of.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from jaxbrain.analysis.predictions import cv_predictions, percent_ev, site_scores
from jaxbrain.benchmarks.neural import PreparedNeural
from jaxbrain.data.assemblies import match_rows
from jaxbrain.engine.sweep import SweepSpec, load_results, prepare_inputs, relative_depths
from jaxbrain.features import LayerBank
from jaxbrain.features import load as load_bank


class SweepData:
    """Rows, banks and targets of the finished sweep ``spec`` (loaded lazily, kept)."""

    def __init__(self, spec: SweepSpec):
        self.spec = spec
        markers, self.rows, _ = load_results(spec)
        self.markers = {marker["model"]: marker for marker in markers}
        self._banks: dict[str, LayerBank] = {}
        self._predictions: dict[tuple[str, str, str], np.ndarray] = {}

    @cached_property
    def _groups(self):
        return prepare_inputs(self.spec)

    @property
    def stimuli(self):
        """The stimuli of the sweep's first stimulus group (ids, images, visual degrees): the
        images of the banks the markers' ``bank`` names."""
        return self._groups[0].stimuli

    def prepared(self, benchmark: str) -> PreparedNeural:
        """The neural benchmark's targets, splits and ceilings, as the sweep scored them."""
        prepared = {b.name: b.prepared for g in self._groups for b in g.benches
                    if isinstance(b.prepared, PreparedNeural)}
        if benchmark not in prepared:
            raise ValueError(f"{benchmark!r} is not a neural benchmark of this sweep; it has "
                             f"{sorted(prepared)}")
        return prepared[benchmark]

    def layers(self, model: str) -> list[str]:
        return list(self._marker(model)["layers"])

    def depths(self, model: str) -> dict[str, float]:
        """Relative depth of each layer, as in the sweep's rows."""
        return relative_depths(self.layers(model))

    def bank(self, model: str) -> LayerBank:
        if model not in self._banks:
            marker = self._marker(model)
            bank = load_bank(Path(self.spec.output_dir) / "cache", marker["bank"])
            if bank is None:
                raise FileNotFoundError(f"the layer bank of {model!r} ({marker['bank']}) is not "
                                        f"in {self.spec.output_dir}/cache; re-run the sweep")
            self._banks[model] = bank
        return self._banks[model]

    def best_layer(self, model: str, benchmark: str) -> str:
        """The model's layer with the highest ceiled (else raw) score on ``benchmark``: its
        commitment for that benchmark."""
        rows = self.rows[(self.rows["model"] == model) & (self.rows["benchmark"] == benchmark)
                         & (self.rows["status"] == "ok")]
        if rows.empty:
            raise ValueError(f"no scored layer of {model!r} on {benchmark!r}")
        column = "ceiled" if rows["ceiled"].notna().any() else "raw"
        return str(rows.loc[rows[column].idxmax(), "layer"])

    def predictions(self, model: str, benchmark: str, layer: str) -> np.ndarray:
        """Held-out predictions (splits, test stimuli, sites) of ``layer`` on the benchmark's
        splits with its mapping (cached per model, benchmark and layer)."""
        key = (model, benchmark, layer)
        if key not in self._predictions:
            prepared = self.prepared(benchmark)
            bench = prepared.benchmark
            if bench.mapping not in ("pls", "ridge"):
                raise ValueError(f"{benchmark!r} maps by {bench.mapping}, not a regression; "
                                 "held-out predictions need a pls or ridge benchmark")
            self._predictions[key] = np.asarray(cv_predictions(
                self.activations(model, layer, prepared.target_ids), prepared.y,
                prepared.splits, bench.mapping, bench.n_components, bench.alphas,
                bench.pls_weights))
        return self._predictions[key]

    def activations(self, model: str, layer: str, stimulus_ids) -> np.ndarray:
        """(stimuli, features) of one bank layer, rows in the order of ``stimulus_ids``."""
        bank = self.bank(model)
        if layer not in bank.layers:
            raise ValueError(f"{model!r} has no layer {layer!r} in its bank")
        rows = match_rows(np.asarray(bank.stimulus_ids).astype(str),
                          np.asarray(stimulus_ids).astype(str), source=f"{model} bank",
                          target="benchmark targets")
        values = np.asarray(bank.layers[layer], np.float32)
        return values.reshape(len(values), -1)[rows]

    def site_ev(self, model: str, benchmark: str, layer: str | None = None) -> pd.DataFrame:
        """Per site: Pearson r (mean over splits), the site's split-half ceiling and its
        noise-corrected explained variance (fraction), for ``layer`` (default: the model's
        best layer on the benchmark)."""
        layer = layer or self.best_layer(model, benchmark)
        prepared = self.prepared(benchmark)
        if prepared.ceiling is None:
            raise ValueError(f"{benchmark!r} has no ceiling, so no noise-corrected %EV")
        r = np.asarray(site_scores(self.predictions(model, benchmark, layer), prepared.y,
                                   prepared.splits))
        ceiling = np.asarray(prepared.ceiling["ceiling_per_neuroid"], np.float64)
        return pd.DataFrame({"site": prepared.neuroid_ids, "layer": layer,
                             "r": r.mean(axis=0), "ceiling": ceiling,
                             "ev": np.asarray(percent_ev(r, ceiling), np.float64)})

    def _marker(self, model: str) -> dict:
        if model not in self.markers:
            raise ValueError(f"{model!r} is not a model of this sweep; it has "
                             f"{sorted(self.markers)}")
        return self.markers[model]
