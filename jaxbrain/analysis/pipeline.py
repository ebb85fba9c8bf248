"""The six studies run on a finished sweep of the planted suite: each turns the sweep's rows,
banks and targets into tables, headline statistics and one figure, through the one
:mod:`jaxbrain.analysis.studies` function that defines it.

Every analysis is ``(context) -> Outcome``; :func:`run_analysis` times it and writes
``<out>/<name>/`` (CSV tables, ``stats.json``, ``figure.png``) so the report page can gather
whatever has been run.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from jaxbrain import benchmarks as benchmark_registry
from jaxbrain.analysis import figures, studies
from jaxbrain.analysis.planted import PlantedSpec
from jaxbrain.analysis.statistics import paired_test
from jaxbrain.analysis.sweep_data import SweepData
from jaxbrain.engine.commitment import is_target
from jaxbrain.engine.inputs import resolve_model
from jaxbrain.engine.report import save_figure
from jaxbrain.engine.sweep import relative_depths
from jaxbrain.features import NoReduction, extract_cached, model_preprocessing, prepare_images
from jaxbrain.features import preprocessing_key as make_preprocessing_key
from jaxbrain.files import atomic_write
from jaxbrain.models import ARCHITECTURES

OBJECTIVE_PAIRS = (("categorization", "memorability"), ("categorization", "joint"),
                   ("memorability", "joint"))


@dataclasses.dataclass
class StudyContext:
    """What the analyses share: the finished sweep, the study's roles and options."""

    data: SweepData
    planted: PlantedSpec
    windows: dict[str, str]  # window label -> neural benchmark (e.g. "early" -> IT.early)
    memorability: str  # the memorability benchmark's name
    decoding_models: tuple[str, ...] = ()
    fmri: dict[str, str] = dataclasses.field(default_factory=dict)  # subject -> assembly path
    decoding_units: int = 1000
    seed: int = 0

    def archs(self) -> list[str]:
        return [arch for arch, _ in self.planted.archs]

    def model(self, arch: str, objective: str) -> str:
        return self.planted.model(arch, objective)

    def window_ev(self, model: str) -> dict[str, pd.DataFrame]:
        return {label: self.data.site_ev(model, bench) for label, bench in self.windows.items()}


class Outcome(NamedTuple):
    tables: dict[str, pd.DataFrame]
    stats: dict
    figure: Figure
    findings: list[str]  # one markdown line per headline result


def _ev_arrays(frames: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    return {label: frame["ev"].to_numpy() for label, frame in frames.items()}


def _test_line(what: str, test: dict) -> str:
    return (f"{what}: {test['mean_a']:.3f} vs {test['mean_b']:.3f} "
            f"(paired t = {test['t']:.2f}, p = {test['p']:.2g}, n = {test['n']})")


def objective_cka(ctx: StudyContext) -> Outcome:
    """CKA between corresponding layers of one architecture trained on two objectives, by
    relative depth (mean ± s.e.m. across architectures), and within- vs across-objective
    similarity of the models' fits to IT (per-site %EV, both windows)."""
    per_layer, by_depth, trend, maps = [], [], [], {}
    for a, b in OBJECTIVE_PAIRS:
        pair = f"{a} vs {b}"
        arch_maps = {}
        for arch in ctx.archs():
            model_a, model_b = ctx.model(arch, a), ctx.model(arch, b)
            names, values = studies.corresponding_layer_cka(ctx.data.bank(model_a).layers,
                                                    ctx.data.bank(model_b).layers)
            depth = ctx.data.depths(model_a)
            arch_maps[arch] = (names, [depth[n] for n in names], values)
        result = studies.progressive_difference(arch_maps, bins=5)
        maps[pair] = result["by_depth"]
        per_layer.append(result["per_layer"].assign(pair=pair))
        by_depth.append(result["by_depth"].assign(pair=pair))
        trend.append(result["per_architecture"].assign(pair=pair))
    similarity = []
    for model in ctx.planted.models():
        for label, frame in ctx.window_ev(model).items():
            similarity += [{"model": model, "objective": ctx.planted.objective_of(model),
                            "site": f"{label}:{site}", "value": value}
                           for site, value in zip(frame["site"], frame["ev"], strict=True)]
    fits = studies.objective_similarity(pd.DataFrame(similarity))
    trend = pd.concat(trend, ignore_index=True)
    within = fits["within_vs_across"]
    findings = [
        f"CKA({pair}) vs depth, Spearman rho: "
        + ", ".join(f"{row.architecture} {row.rho_depth_cka:.2f}"
                    for row in trend[trend["pair"] == pair].itertuples())
        for pair in maps
    ]
    findings.append(_test_line("IT fits |Δ%EV| within vs across objectives", within))
    return Outcome(
        tables={"cka_per_layer": pd.concat(per_layer, ignore_index=True),
                "cka_by_depth": pd.concat(by_depth, ignore_index=True), "cka_trend": trend,
                "it_fit_per_objective": fits["per_objective"],
                "it_fit_objective_tests": fits["objective_tests"], "it_fit_pairs": fits["pairs"]},
        stats={"within_vs_across": within},
        figure=figures.objective_cka(maps, fits["pairs"]), findings=findings)


def ev_windows(ctx: StudyContext) -> Outcome:
    """Noise-corrected %EV of IT sites in the early and late windows, memorability-trained
    (A) vs categorisation-trained (B) model of each architecture, site by site."""
    sites, tests, change = [], [], []
    for arch in ctx.archs():
        a, b = ctx.model(arch, "memorability"), ctx.model(arch, "categorization")
        ev_a, ev_b = ctx.window_ev(a), ctx.window_ev(b)
        result = studies.ev_comparison(_ev_arrays(ev_a), _ev_arrays(ev_b), a, b,
                                       sites=ev_a[next(iter(ctx.windows))]["site"])
        sites.append(result["sites"].assign(architecture=arch))
        tests.append(result["tests"].assign(architecture=arch))
        change.append(result["window_change"].assign(architecture=arch))
    tests = pd.concat(tests, ignore_index=True)
    findings = [_test_line(f"{row.architecture} {row.window}: %EV memorability- vs "
                           "categorisation-trained", row._asdict())
                for row in tests.itertuples()]
    sites = pd.concat(sites, ignore_index=True)
    return Outcome(tables={"sites": sites, "tests": tests,
                           "window_change": pd.concat(change, ignore_index=True)},
                   stats={}, figure=figures.ev_scatter(sites, list(ctx.windows)),
                   findings=findings)


def unique_variance(ctx: StudyContext) -> Outcome:
    """Per IT site and window, r(IT, A | B) vs r(IT, A): memorability-trained (A) against the
    categorisation-trained model (B), and the held-out categorisation control in A's place."""
    sites, tests, control = [], [], []
    for arch in ctx.archs():
        mem, cat, ctl = (ctx.model(arch, o) for o in ("memorability", "categorization",
                                                      "control"))
        for label, bench in ctx.windows.items():
            prepared = ctx.data.prepared(bench)
            predictions = {m: ctx.data.predictions(m, bench, ctx.data.best_layer(m, bench))
                           for m in (mem, cat, ctl)}
            result = studies.unique_variance_table(prepared.y, predictions, prepared.splits,
                                           [(mem, cat), (ctl, cat)], sites=prepared.neuroid_ids)
            table = result["sites"].assign(architecture=arch, window=label)
            sites.append(table)
            tests.append(result["tests"].assign(architecture=arch, window=label))
            unique = {m: table.loc[table["model_a"] == m, "r_a_given_b"].to_numpy()
                      for m in (mem, ctl)}
            control.append({"architecture": arch, "window": label, "model_a": mem,
                            "control": ctl, "given": cat,
                            **paired_test(unique[mem], unique[ctl])})
    control = pd.DataFrame(control)
    findings = [_test_line(f"{row.architecture} {row.window}: r(IT, memorability | "
                           "categorisation) vs r(IT, control | categorisation)", row._asdict())
                for row in control.itertuples()]
    sites = pd.concat(sites, ignore_index=True)
    return Outcome(tables={"sites": sites, "tests": pd.concat(tests, ignore_index=True),
                           "vs_control": control},
                   stats={}, figure=figures.unique_variance(sites, ctx.planted.generator_arch),
                   findings=findings)


def joint_objective(ctx: StudyContext) -> Outcome:
    """%EV of the jointly trained model vs each single-objective model, early and late
    windows, paired across sites."""
    tests, means = [], []
    for arch in ctx.archs():
        evs = {o: _ev_arrays(ctx.window_ev(ctx.model(arch, o)))
               for o in ("joint", "memorability", "categorization")}
        for objective, per_window in evs.items():
            means += [{"architecture": arch, "objective": objective, "window": label,
                       "mean_ev": float(np.nanmean(ev)),
                       "sem_ev": float(np.nanstd(ev, ddof=1) / np.sqrt(np.isfinite(ev).sum()))}
                      for label, ev in per_window.items()]
        for single in ("memorability", "categorization"):
            result = studies.ev_comparison(evs["joint"], evs[single], ctx.model(arch, "joint"),
                                   ctx.model(arch, single))
            tests.append(result["tests"].assign(architecture=arch, single=single))
    tests = pd.concat(tests, ignore_index=True)
    means = pd.DataFrame(means)
    findings = [_test_line(f"{row.architecture} {row.window}: %EV joint vs {row.single}",
                           row._asdict()) for row in tests.itertuples()]
    return Outcome(tables={"tests": tests, "means": means}, stats={},
                   figure=figures.joint_bars(means, list(ctx.windows)), findings=findings)


def _penultimate(ctx: StudyContext) -> dict[str, str]:
    return {model: ARCHITECTURES[ctx.planted.role(model)[0]][0].penultimate_tap
            for model in ctx.planted.models()}


def memorability_brain(ctx: StudyContext) -> Outcome:
    """Every layer of every model: memorability prediction (Spearman rho) against its brain
    score in each region, correlated across layers with confidence intervals, and the
    penultimate layers compared across the trained models."""
    rows = ctx.data.rows[ctx.data.rows["status"] == "ok"]
    memorability = rows[rows["benchmark"] == ctx.memorability][
        ["model", "layer", "layer_depth", "raw"]].rename(columns={"raw": "memorability_rho"})
    brain = rows[~is_target(rows)].assign(
        region=lambda f: f["benchmark"], brain_score=lambda f: f["ceiled"].fillna(f["raw"]))
    table = memorability.merge(brain[["model", "layer", "region", "brain_score"]],
                               on=["model", "layer"])
    table = table[np.isfinite(table["memorability_rho"]) & np.isfinite(table["brain_score"])]
    penultimate = _penultimate(ctx)
    unscored = sorted(m for m, layer in penultimate.items()
                      if not ((table["model"] == m) & (table["layer"] == layer)).any())
    table = table[~table["model"].isin(unscored)]  # a model is compared at its penultimate layer
    result = studies.memorability_vs_brain(table, seed=ctx.seed,
                                   penultimate={m: penultimate[m] for m in set(table["model"])})
    correlation = result["correlation"]
    findings = [f"{row.region}: r = {row.r:.2f} [{row.fisher_low:.2f}, {row.fisher_high:.2f}] "
                f"across {row.n} layers" for row in correlation.itertuples()]
    if unscored:
        findings.append(f"left out (penultimate layer not scored, see the sweep's statuses): "
                        f"{', '.join(unscored)}")
    return Outcome(tables={"layers": table, "correlation": correlation,
                           "penultimate": result["penultimate"],
                           "penultimate_correlation": result["penultimate_correlation"]},
                   stats={}, figure=figures.memorability_scatter(table, result["penultimate"]),
                   findings=findings)


def _decoding_layers(ctx: StudyContext, model_ref: str) -> tuple[np.ndarray, dict, dict]:
    """Raw (unreduced) activations of every layer (the benchmark samples their units)."""
    stimuli = ctx.data.stimuli
    model = resolve_model(model_ref, ctx.data.spec.zoo_dir or None)
    options = model_preprocessing(model, stimuli.degrees)
    bank = extract_cached(model, prepare_images(stimuli.images, **options), stimuli.ids,
                          cache_dir=Path(ctx.data.spec.output_dir) / "cache",
                          reduction=NoReduction(), model_name=model_ref,
                          preprocessing=make_preprocessing_key(**options))
    layers = dict(bank.layers)
    return np.asarray(bank.stimulus_ids).astype(str), layers, relative_depths(list(layers))


def decodability(ctx: StudyContext) -> Outcome:
    """Per-unit decoding accuracy of every layer from each fMRI subject's voxels, unit
    rankings, accuracy by depth and cross-subject consistency, for each decoding model
    (the ``Synthetic.decoding`` benchmark's read-out on the study's subjects)."""
    if not ctx.fmri:
        raise ValueError("the decodability study needs fMRI subjects (--fmri)")
    folders = {str(Path(path).parent) for path in ctx.fmri.values()}
    if len(folders) != 1 or any(Path(p).name != f"fmri_{s}.nc" for s, p in ctx.fmri.items()):
        raise ValueError(f"the decodability study reads fMRI subjects as one folder of "
                         f"fmri_<subject>.nc files; got {ctx.fmri}")
    benchmark = benchmark_registry.load("Synthetic.decoding").with_overrides(
        fmri=folders.pop(), units=ctx.decoding_units, seed=ctx.seed)
    prepared = benchmark.prepare()
    tables: dict[str, list[pd.DataFrame]] = {}
    findings = []
    for model in ctx.decoding_models:
        ids, layers, depths = _decoding_layers(ctx, model)
        decoded = benchmark.decode(prepared, layers, ids)
        summary = studies.decodability_summary(decoded, depths, seed=ctx.seed)
        for name in ("per_subject", "by_depth", "top_units", "consistency"):
            tables.setdefault(name, []).append(summary[name].assign(model=model))
        consistency = summary["consistency"]["r"]
        findings.append(f"{model}: cross-subject consistency of per-unit accuracy "
                        f"{consistency.min():.2f} to {consistency.max():.2f} over "
                        f"{len(layers)} layers; accuracy vs depth rho "
                        f"{summary['depth_trend']['r']:.2f}")
    frames = {name: pd.concat(parts, ignore_index=True) for name, parts in tables.items()}
    return Outcome(tables=frames, stats={},
                   figure=figures.decodability(frames["by_depth"], frames["consistency"]),
                   findings=findings)


ANALYSES: dict[str, Callable[[StudyContext], Outcome]] = {
    "objective_cka": objective_cka,
    "ev_windows": ev_windows,
    "unique_variance": unique_variance,
    "joint_objective": joint_objective,
    "memorability_brain": memorability_brain,
    "decodability": decodability,
}


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def run_analysis(name: str, ctx: StudyContext, out_dir) -> dict:
    """Run one analysis, write its folder atomically file by file; returns its summary
    (seconds, findings, files), also written as ``<name>/summary.json``."""
    if name not in ANALYSES:
        raise ValueError(f"unknown analysis {name!r}; expected some of {list(ANALYSES)}")
    start = time.perf_counter()
    outcome = ANALYSES[name](ctx)
    seconds = time.perf_counter() - start
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    for table, frame in outcome.tables.items():
        atomic_write(folder / f"{table}.csv", frame.to_csv(index=False).encode())
    save_figure(outcome.figure, folder / "figure.png")
    summary = {"analysis": name, "doc": inspect.cleandoc(ANALYSES[name].__doc__ or ""),
               "seconds": seconds, "findings": outcome.findings,
               "tables": sorted(f"{t}.csv" for t in outcome.tables), "figure": "figure.png",
               "stats": _json_ready(outcome.stats)}
    atomic_write(folder / "summary.json", json.dumps(summary, indent=1).encode())
    return summary
