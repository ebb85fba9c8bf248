"""The sweep: every layer of every model on every benchmark, resumably, then the report.

Benchmarks are grouped by the images they are defined on (their stimulus set at their visual
degrees, or the sweep's ``stimuli_csv`` for all when given). Per model (of this shard) and
group: key every (layer, benchmark) unit by everything its score depends on (weights,
stimuli, preprocessing, reduction, benchmark definition, data); if any unit is missing from
the store, extract the group's layer bank once (through the bank cache, per stimulus set) and
score the missing units, one atomic store part per (model, benchmark); then write the model's
done-marker.  Whichever shard finds every model done writes the report: tables, layer
commitment, model cards, CKA maps between models, figures and ``report.md``/``index.html``.
A killed sweep re-run with the same settings recomputes nothing finished and duplicates
nothing; changed settings produce new keys, so stale rows are never reused.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
import pandas as pd
from jax.sharding import Mesh

from jaxbrain.engine import commitment, report
from jaxbrain.engine.inputs import (
    BenchmarkData,
    InputError,
    Stimuli,
    check_model_reference,
    load_benchmarks,
    load_stimuli,
    resolve_model,
)
from jaxbrain.engine.similarity import cka_map, layer_grams
from jaxbrain.engine.store import ResultsStore, canonical_json, unit_key
from jaxbrain.features import (
    PCA,
    NoReduction,
    PlacedStimuli,
    RandomProjection,
    extract_cached,
    model_preprocessing,
    prepare_images,
    preprocessing_key,
    weights_hash,
)
from jaxbrain.features import load as load_bank
from jaxbrain.files import atomic_write


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    models: tuple[str, ...]
    benchmarks: tuple[str, ...]
    output_dir: str
    # Stimuli for every benchmark (an override; empty: each benchmark's own stimulus set).
    stimuli_csv: str = ""
    stimuli_dir: str = ""
    stimulus_degrees: float = 8.0
    assembly: str = ""
    lamem: str = ""
    fmri: str = ""  # folder of fmri_<subject>.nc (decoding benchmarks)
    zoo_dir: str = ""
    taps: tuple[str, ...] = ()  # empty: every tap of every model
    reduction: str = "random_projection"  # none | random_projection | pca
    projection_dims: int = 1000
    pca_components: int = 1000
    reference_csv: str = ""  # PCA reference images (stimulus-set CSV); default: the stimuli
    reference_dir: str = ""
    batch_size: int = 0  # 0: the largest batch whose activations fit activation_memory_gb
    activation_memory_gb: float = 0.0  # 0: a quarter of the device's memory, or 2 GiB on CPU
    extraction_dtype: str = "float32"  # or "bfloat16": the model run in bfloat16
    # host memory for PCA fitting (reference activations + components per group of layers)
    extraction_memory_gb: float = 4.0
    mesh_devices: int = 0  # layers sharded over this many local devices (0: all)
    cka: bool = True
    # "all_layers": every layer on every benchmark, through ``reduction`` (the studies' mode);
    # "brainscore": Brain-Score's commitment protocol (docs/design.md §4.14).
    protocol: str = "all_layers"
    # per model reference, the candidate layers of the brainscore protocol (default: the
    # model's own, ``commitment_layers()``)
    candidates: tuple[tuple[str, tuple[str, ...]], ...] = ()
    shard_index: int = 0
    num_shards: int = 1
    resume: bool = True
    title: str = "jaxbrain sweep"

    def selection_reduction(self):
        """The reduction layers are scored through: the sweep's, or Brain-Score's LayerPCA
        for the commitment protocol's selection."""
        if self.protocol == "brainscore":
            return PCA(n_components=self.pca_components)
        if self.protocol != "all_layers":
            raise ValueError(f"protocol must be all_layers or brainscore; got {self.protocol!r}")
        return self.reduction_spec()

    def reduction_spec(self):
        if self.reduction == "none":
            return NoReduction()
        if self.reduction == "random_projection":
            return RandomProjection(d=self.projection_dims)
        if self.reduction == "pca":
            return PCA(n_components=self.pca_components)
        raise ValueError(f"reduction must be none, random_projection or pca; "
                         f"got {self.reduction!r}")


# Where a model's time goes, per stage (its done-marker's "seconds"): building or loading the
# model and hashing its weights, placing the stimuli at the model's visual field (what the
# model waited for; the rest overlaps extraction), extracting the layer bank (model,
# reduction, bank cache), scoring the benchmarks, writing the store.
STAGES = ("model", "placement", "extraction", "scoring", "store")


def _quiet(iterable, **_):
    """No progress display (``progress(None, total=...)`` returns None: nothing to update)."""
    return iterable


def _marker_dir(spec: SweepSpec) -> Path:
    return Path(spec.output_dir) / "models"


def _marker_path(spec: SweepSpec, model: str) -> Path:
    return _marker_dir(spec) / f"{report.safe_name(model)}.json"


class StimulusGroup(NamedTuple):
    """Benchmarks scored on one set of images (and so on one layer bank per model)."""

    source: str  # the stimulus set's catalog name or CSV
    stimuli: Stimuli
    benches: list[BenchmarkData]


def settings_key(spec: SweepSpec, groups: list[StimulusGroup]) -> str:
    """What makes two runs the same sweep: models, benchmarks and their data, stimuli and
    reduction (not how the work is split or shown).  Done-markers carry it, so a marker
    left by a sweep with other settings never counts as done for this one."""
    fields = dataclasses.asdict(spec)
    for name in ("shard_index", "num_shards", "resume", "title", "mesh_devices", "output_dir",
                 "extraction_memory_gb", "batch_size", "activation_memory_gb"):
        fields.pop(name)
    if fields["extraction_dtype"] == "float32":  # the keys sweeps had before it was an option
        fields.pop("extraction_dtype")
    return unit_key(**fields, stimuli=[g.stimuli.digest for g in groups],
                    data={b.name: b.digest for g in groups for b in g.benches})


def _done(spec: SweepSpec, model: str, settings: str) -> bool:
    path = _marker_path(spec, model)
    return path.exists() and json.loads(path.read_text()).get("settings") == settings


def _mesh(devices: int) -> Mesh | None:
    local = jax.local_devices()
    count = len(local) if devices <= 0 else min(devices, len(local))
    return Mesh(np.array(local[:count]), ("layers",)) if count > 1 else None


def _units(model_ref: str, model_key: str, prep: dict, plan: dict[str, list[str]],
           stimuli: Stimuli, benches: list[BenchmarkData], reduction: dict
           ) -> dict[tuple[str, str], str]:
    """Unit keys of the (layer, benchmark) pairs ``plan`` (benchmark → layers) asks for."""
    return {(layer, bench.name): unit_key(
        model=model_ref, model_key=model_key, stimuli=stimuli.digest, preprocessing=prep,
        reduction=reduction, layer=layer, benchmark=bench.name,
        definition=bench.benchmark.definition(), data=bench.digest)
        for bench in benches for layer in plan[bench.name]}


def relative_depths(layers: list[str]) -> dict[str, float]:
    """Each layer's position in forward order, 0 (first) to 1 (last): the depth axis of the
    store's rows and of every layer-wise plot."""
    return {layer: i / max(len(layers) - 1, 1) for i, layer in enumerate(layers)}


def _rows(scored, bench: BenchmarkData, *, model_ref, model_key, layers, units, reduction: str):
    rows, neuroids = [], []
    index, depth = {name: i for i, name in enumerate(layers)}, relative_depths(layers)
    for item in scored:
        key = units[(item.layer, bench.name)]
        rows.append({"unit_key": key, "model": model_ref, "model_key": model_key,
                     "layer": item.layer, "layer_index": index[item.layer],
                     "layer_depth": depth[item.layer],
                     "benchmark": bench.name, "kind": bench.benchmark.kind,
                     "region": bench.benchmark.region, "metric": bench.benchmark.metric,
                     "reduction": reduction,
                     "options": canonical_json(bench.benchmark.definition()), **item.fields})
        if item.neuroid_values is not None:
            neuroids.append(pd.DataFrame({"unit_key": key, "neuroid_id": item.neuroid_ids,
                                          "value": item.neuroid_values,
                                          "ceiling": item.neuroid_ceiling}))
    return rows, (pd.concat(neuroids, ignore_index=True) if neuroids else None)


def _reference_images(spec: SweepSpec, model, stimuli: Stimuli, reduction) -> np.ndarray | None:
    """PCA's reference images as model input: the stimuli themselves (placed as they are), or
    the set the sweep names, which is an image source rather than stimuli shown at some
    visual angle, so it is resized to the model's input without placement (as Brain-Score's
    LayerPCA does); the brainscore protocol takes as many images as components."""
    if not isinstance(reduction, PCA):
        return None
    images, degrees = stimuli.images, stimuli.degrees
    if spec.reference_csv or spec.reference_dir:
        images = load_stimuli(spec.reference_csv or None, spec.reference_dir or None).images
        degrees = model.visual_degrees
    if spec.protocol == "brainscore":
        images = images[:reduction.n_components]
    return prepare_images(images, **model_preprocessing(model, degrees))


def _bank(spec: SweepSpec, model, model_ref: str, stimuli: Stimuli, layers: list[str],
          reduction, prep: dict, progress: Callable, seconds: dict):
    """The layer bank of ``layers`` on ``stimuli`` (from the cache when present).  The stimuli
    are placed batch by batch on host threads while the model runs; ``seconds`` gains the
    extraction's wall time and, as "placement", the part of it the model waited for placed
    images (zero when placement keeps ahead of the device)."""
    start = time.perf_counter()
    images = PlacedStimuli(stimuli.images, model_preprocessing(model, stimuli.degrees),
                           stimuli.digest)
    reference = _reference_images(spec, model, stimuli, reduction)
    seconds["placement"] += time.perf_counter() - start
    start, timings = time.perf_counter(), {}
    bank = extract_cached(
        model, images, stimuli.ids, cache_dir=Path(spec.output_dir) / "cache",
        taps=layers, reduction=reduction, batch_size=spec.batch_size or None,
        reference_images=reference,
        memory_budget_bytes=int(spec.extraction_memory_gb * 2**30),
        progress=lambda it: progress(it, desc=f"extract {model_ref} {stimuli.source}",
                                     leave=False),
        model_name=model_ref, preprocessing=prep, compute_dtype=spec.extraction_dtype,
        activation_memory_bytes=int(spec.activation_memory_gb * 2**30) or None,
        timings=timings)
    waited = timings.get("input_wait_seconds", 0.0)
    seconds["extraction"] += time.perf_counter() - start - waited
    seconds["placement"] += waited
    return bank


class _Phase(NamedTuple):
    """Benchmarks of one stimulus group scored on some layers through one reduction."""

    group: StimulusGroup
    benches: list[BenchmarkData]
    plan: dict[str, list[str]]  # benchmark → the layers to score on it
    reduction: object


def _run_phase(spec: SweepSpec, phase: _Phase, model, model_ref: str, model_key: str,
               candidates: list[str], store: ResultsStore, done: set, progress: Callable,
               record: dict) -> None:
    """Score the phase's missing units (one layer bank, cached) into the store."""
    stimuli = phase.group.stimuli
    prep = preprocessing_key(**model_preprocessing(model, stimuli.degrees))
    units = _units(model_ref, model_key, prep, phase.plan, stimuli, phase.benches,
                   phase.reduction.key())
    record["units"] += units.values()
    taps = [layer for layer in candidates if any(layer in v for v in phase.plan.values())]
    if not taps:
        return
    bank = _bank(spec, model, model_ref, stimuli, taps, phase.reduction, prep, progress,
                 record["seconds"])
    record["banks"].append({"stimuli": phase.group.source, "degrees": stimuli.degrees,
                            "reduction": phase.reduction.key(),
                            "bank": bank.meta.get("cache_key", ""),
                            "bank_dir": bank.meta.get("cache_dir", "")})
    mesh, described = _mesh(spec.mesh_devices), phase.reduction.describe()
    units_bar = progress(None, desc=f"layers x benchmarks {model_ref}", leave=False,
                         total=len(units))
    for bench in progress(phase.benches, desc=f"benchmarks {model_ref}", leave=False):
        todo = [layer for layer in phase.plan[bench.name] if units[(layer, bench.name)] not in done]
        if todo:
            start = time.perf_counter()
            scored = bench.benchmark.score(
                bench.prepared, {name: bank.layers[name] for name in todo}, stimuli.ids,
                filenames=stimuli.filenames, mesh=mesh)
            record["seconds"]["scoring"] += time.perf_counter() - start
            start = time.perf_counter()
            rows, neuroids = _rows(scored, bench, model_ref=model_ref, model_key=model_key,
                                   layers=candidates, units=units, reduction=described)
            store.write(rows, neuroids)
            record["seconds"]["store"] += time.perf_counter() - start
            record["computed"] += len(rows)
        if units_bar is not None:
            units_bar.update(len(phase.plan[bench.name]))
    if units_bar is not None:
        units_bar.close()


def _candidates(spec: SweepSpec, model_ref: str, model) -> list[str]:
    if spec.taps:
        return list(spec.taps)
    chosen = dict(spec.candidates).get(model_ref)
    if chosen:
        return list(chosen)
    return model.commitment_layers() if spec.protocol == "brainscore" else model.tap_names()


def sweep_model(spec: SweepSpec, model_ref: str, groups: list[StimulusGroup],
                store: ResultsStore, progress: Callable = _quiet, settings: str = "") -> dict:
    """Score one model's missing units; returns its done-marker.

    ``all_layers``: every candidate layer on every benchmark, one layer bank per stimulus
    group. ``brainscore``: the candidates on the selection (and report-only) benchmarks
    through LayerPCA, a layer committed per region, then each final benchmark on its region's
    committed layer, unreduced."""
    start = time.perf_counter()
    model = resolve_model(model_ref, spec.zoo_dir or None)
    candidates = _candidates(spec, model_ref, model)
    model_key = weights_hash(model)
    record = {"units": [], "banks": [], "computed": 0,
              "seconds": dict.fromkeys(STAGES, 0.0)}
    record["seconds"]["model"] = time.perf_counter() - start
    done = store.done_keys() if spec.resume else set()

    def run(phases: list[_Phase]) -> None:
        for phase in phases:
            _run_phase(spec, phase, model, model_ref, model_key, candidates, store, done,
                       progress, record)

    if spec.protocol == "all_layers":
        run([_Phase(g, g.benches, {b.name: candidates for b in g.benches},
                    spec.selection_reduction()) for g in groups])
    else:
        selecting = [_Phase(g, members, {b.name: candidates for b in members},
                            spec.selection_reduction())
                     for g in groups
                     if (members := [b for b in g.benches if b.benchmark.role != "final"])]
        run(selecting)
        regions = region_specs([b for g in groups for b in g.benches])
        commitments = commitment.commit_layers(store.rows(sorted(record["units"])), regions)
        committed = dict(zip(commitments["region"], commitments["committed_layer"],
                             strict=True))
        reported = {name for region in regions if region.region in committed
                    for name in region.reported}
        run([_Phase(g, members, {b.name: [committed[b.benchmark.region]] for b in members},
                    NoReduction())
             for g in groups
             if (members := [b for b in g.benches if b.name in reported])])
    # "bank": the first bank's, which model-to-model CKA maps and analyses read.
    first = record["banks"][0] if record["banks"] else {"bank": "", "bank_dir": ""}
    marker = {"model": model_ref, "settings": settings, "model_key": model_key,
              "layers": candidates, "bank": first["bank"], "bank_dir": first["bank_dir"],
              **record, "units": sorted(record["units"])}
    _marker_dir(spec).mkdir(parents=True, exist_ok=True)
    atomic_write(_marker_path(spec, model_ref), json.dumps(marker, indent=1).encode())
    return marker


def prepare_inputs(spec: SweepSpec) -> list[StimulusGroup]:
    """The sweep's benchmarks with their prepared targets (splits, ceilings), grouped by the
    stimuli they are scored on, each stimulus set read once."""
    benches = load_benchmarks(spec.benchmarks, assembly_path=spec.assembly, lamem_dir=spec.lamem,
                              fmri_dir=spec.fmri)
    keys: dict[tuple, list[BenchmarkData]] = {}
    for bench in benches:
        if spec.stimuli_csv:
            key = (spec.stimuli_csv, spec.stimuli_dir, spec.stimulus_degrees)
        elif (own := bench.benchmark.stimulus_source(bench.prepared)) is not None:
            key = own
        else:
            raise ValueError(f"benchmark {bench.name} names no stimuli: give the sweep's "
                             "stimuli (--stimuli_csv/--stimuli_dir or --data_dir)")
        keys.setdefault(key, []).append(bench)
    return [StimulusGroup(csv or folder, load_stimuli(csv or None, folder or None, degrees),
                          members)
            for (csv, folder, degrees), members in keys.items()]


def check_inputs(spec: SweepSpec) -> list[StimulusGroup]:
    """Everything a sweep reads, checked before its first model runs: the settings, every
    model reference, every benchmark with its data, every stimulus file, and that each
    benchmark's data cover its stimuli. Returns the prepared stimulus groups; any problem is
    one :class:`InputError` naming the file, field or model."""
    try:
        if not 0 <= spec.shard_index < spec.num_shards:
            raise ValueError(f"shard_index must be in [0, {spec.num_shards}); got "
                             f"{spec.shard_index}")
        if len(set(spec.models)) != len(spec.models):
            raise ValueError(f"a model is listed twice: {list(spec.models)}")
        spec.reduction_spec()
        spec.selection_reduction()
        for reference in spec.models:
            check_model_reference(reference, spec.zoo_dir or None)
        groups = prepare_inputs(spec)
        for group in groups:
            for bench in group.benches:
                bench.benchmark.check_stimuli(bench.prepared, group.stimuli.ids,
                                              group.stimuli.filenames)
    except InputError:
        raise
    except (ValueError, KeyError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise InputError(message) from err
    if spec.protocol == "brainscore":
        benches = [b for g in groups for b in g.benches]
        selected = {b.benchmark.region for b in benches if b.benchmark.role == "selection"}
        orphans = [b.name for b in benches if b.benchmark.role == "final"
                   and b.benchmark.region not in selected]
        if orphans:
            raise InputError(f"the brainscore protocol commits a region's layer on its "
                             f"selection benchmark; add one for {', '.join(orphans)} (e.g. "
                             "the public benchmark of the region)")
    return groups


def run_sweep(spec: SweepSpec, progress: Callable = _quiet) -> dict:
    """Run this shard's models, then the report if every model of the sweep is done."""
    start = time.perf_counter()
    groups = check_inputs(spec)
    inputs_seconds = time.perf_counter() - start
    store = ResultsStore(Path(spec.output_dir) / "results")
    mine = [m for i, m in enumerate(spec.models) if i % spec.num_shards == spec.shard_index]
    settings = settings_key(spec, groups)
    markers = []
    for ref in progress(mine, desc="models"):
        if spec.resume and _done(spec, ref, settings):  # finished: nothing to redo or rewrite
            markers.append({**json.loads(_marker_path(spec, ref).read_text()), "computed": 0})
        else:
            markers.append(sweep_model(spec, ref, groups, store, progress, settings))
    summary = {"models": mine, "computed": sum(m["computed"] for m in markers),
               "seconds": {m["model"]: m["seconds"] for m in markers}, "report": None,
               "inputs_seconds": inputs_seconds, "report_seconds": 0.0}
    if all(_done(spec, m, settings) for m in spec.models):
        existing = Path(spec.output_dir) / "report.md"
        # A re-run that computed nothing leaves a finished sweep's report as it is (so it
        # also works in a folder that has since become read-only).
        rewrite = summary["computed"] or len(mine) < len(spec.models) or not existing.exists()
        start = time.perf_counter()
        summary["report"] = str(write_sweep_report(spec, groups) if rewrite else existing)
        summary["report_seconds"] = time.perf_counter() - start
    return summary


def region_specs(benches: list[BenchmarkData]) -> list[commitment.RegionSpec]:
    """Per region (benchmarks with a ceiling and a region): layers are committed on its
    selection benchmark when the sweep has one (else on its first benchmark), and its final
    benchmarks of the same metric are reported."""
    regions: dict[str, list[BenchmarkData]] = {}
    for bench in benches:
        if bench.benchmark.region and bench.prepared.ceiling is not None:
            regions.setdefault(bench.benchmark.region, []).append(bench)
    specs = []
    for region, members in regions.items():
        selections = [b for b in members if b.benchmark.role == "selection"]
        selection = (selections or members)[0]
        reported = [b.name for b in members if b.benchmark.metric == selection.benchmark.metric
                    and b is not selection and b not in selections]
        specs.append(commitment.RegionSpec(region, selection.name,
                                           tuple(reported) or (selection.name,)))
    return specs


def _cka_maps(spec: SweepSpec, markers: list[dict]) -> dict:
    grams = {}
    for marker in markers:
        bank = load_bank(Path(spec.output_dir) / "cache", marker["bank"]) if marker["bank"] \
            else None
        if bank is not None:
            grams[marker["model"]] = (marker["layers"],
                                      layer_grams({n: bank.layers[n] for n in marker["layers"]}))
    maps = {}
    for a, b in itertools.combinations(list(grams), 2):
        maps[(a, b)] = (grams[a][0], grams[b][0], cka_map(grams[a][1], grams[b][1]))
        path = Path(spec.output_dir) / "cka" / f"{report.safe_name(a)}__{report.safe_name(b)}.npz"
        buffer = io.BytesIO()
        np.savez(buffer, layers_a=np.array(grams[a][0]), layers_b=np.array(grams[b][0]),
                 cka=maps[(a, b)][2])
        atomic_write(path, buffer.getvalue())
    return maps


def load_results(spec: SweepSpec) -> tuple[list[dict], pd.DataFrame, set[str]]:
    """A finished sweep's done-markers, its rows (exactly the markers' units) and the keys of
    stored rows from other settings; an error names any model not finished."""
    unfinished = [m for m in spec.models if not _marker_path(spec, m).exists()]
    if unfinished:
        raise RuntimeError(f"the sweep in {spec.output_dir} has not finished models {unfinished}")
    markers = [json.loads(_marker_path(spec, m).read_text()) for m in spec.models]
    keys = sorted({key for marker in markers for key in marker["units"]})
    store = ResultsStore(Path(spec.output_dir) / "results")
    rows = store.rows(keys)
    missing = set(keys) - set(rows["unit_key"])
    if missing:
        raise RuntimeError(f"{len(missing)} units of finished models are not in the store")
    return markers, rows, store.stale_keys(keys)


def _protocol(spec: SweepSpec) -> dict:
    """How the sweep commits layers, for the cards and the report."""
    if spec.protocol == "all_layers":
        return {"name": "all_layers", "reduction": spec.reduction_spec().key(),
                "description": "every layer scored on every benchmark through "
                               f"{spec.reduction_spec().describe()}; per region the best "
                               "layer on its selection benchmark"}
    reference = spec.reference_csv or spec.reference_dir or "each stimulus set itself"
    return {"name": "brainscore", "pca_components": spec.pca_components,
            "reference_images": reference,
            "description": "Brain-Score's protocol: the model's candidate layers scored on "
                           f"each region's selection benchmark after LayerPCA("
                           f"{spec.pca_components}) fitted on {reference}, the best committed, "
                           "final benchmarks scored on its unreduced activations"}


def _phase_rows(spec: SweepSpec, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows layers are committed on and plotted from, rows the cards report). In the
    brainscore protocol the regions' final scores are the unreduced rows of the committed
    layers; everything else (the selection curves, targets outside the regions) is scored
    through LayerPCA."""
    if spec.protocol == "all_layers":
        return rows, rows
    unreduced = rows["reduction"] == NoReduction().describe()
    return rows[~unreduced], rows[unreduced | commitment.is_target(rows)]


def write_sweep_report(spec: SweepSpec, groups: list[StimulusGroup]) -> Path:
    out = Path(spec.output_dir)
    markers, rows, stale = load_results(spec)
    regions = region_specs([b for g in groups for b in g.benches])
    selection_rows, final_rows = _phase_rows(spec, rows)
    commitments = commitment.commit_layers(selection_rows, regions)
    cards = commitment.model_cards(final_rows, commitments, regions, protocol=_protocol(spec))
    commitment.write_model_cards(cards, out / "cards")
    board = commitment.leaderboard(cards)
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    for name, frame in (("scores", rows), ("commitments", commitments), ("leaderboard", board)):
        atomic_write(tables / f"{name}.csv", frame.to_csv(index=False).encode())
    shown = "; ".join(f"{g.source} at {g.stimuli.degrees:g}° "
                      f"({', '.join(b.name for b in g.benches)})" for g in groups)
    protocol = _protocol(spec)
    notes = [f"Layer commitment: {protocol['description']}; stimuli: {shown}."]
    if stale:
        notes.append(f"{len(stale)} stored rows from other settings were ignored (not reused).")
    return report.write_report(
        out, rows=selection_rows, commitments=commitments, leaderboard=board,
        cka_maps=_cka_maps(spec, markers) if spec.cka else {}, title=spec.title,
        model_cards_md={m: commitment.card_markdown(c) for m, c in cards.items()}, notes=notes)
