"""The studies' analyses, one function each, from already-computed scores to tables.

Inputs are plain arrays, dicts and DataFrames (whatever the sweep, the scorer or a benchmark
produced); outputs are dicts of DataFrames (one row per plotted point or table line) and of
:func:`~jaxbrain.analysis.statistics.paired_test` /
:func:`~jaxbrain.analysis.statistics.correlation_ci` results.  Nothing here fits a mapping or
reads a file, so each analysis can be checked on planted toy data.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from jaxbrain.analysis.predictions import site_scores, unique_r
from jaxbrain.analysis.statistics import correlation_ci, mean_sem_by_bin, paired_test
from jaxbrain.engine.similarity import cka_map, layer_grams
from jaxbrain.kernels.splits import Splits


def _require_columns(frame: pd.DataFrame, needed: Iterable[str], what: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {list(frame.columns)}")


def corresponding_layer_cka(
    layers_a: Mapping[str, np.ndarray], layers_b: Mapping[str, np.ndarray]
) -> tuple[list[str], np.ndarray]:
    """Debiased linear CKA between same-named layers of two models (e.g. one architecture
    trained on two objectives), in ``layers_a``'s order: the diagonal of their CKA map.

    Both banks must hold the same stimuli in the same row order."""
    names = [name for name in layers_a if name in layers_b]
    if not names:
        raise ValueError("the two layer banks share no layer names")
    rows = {len(layers_a[n]) for n in names} | {len(layers_b[n]) for n in names}
    if len(rows) != 1:
        raise ValueError(f"layers must all hold the same stimuli, got row counts {sorted(rows)}")
    grams_a = layer_grams({n: layers_a[n] for n in names})
    grams_b = layer_grams({n: layers_b[n] for n in names})
    return names, np.diag(cka_map(grams_a, grams_b)).astype(np.float64)


def progressive_difference(
    maps: Mapping[str, tuple[Sequence[str], Sequence[float], Sequence[float]]], bins=10
) -> dict:
    """How far two objectives' representations diverge along depth, across architectures.

    ``maps``: architecture -> (layer names, relative depths in [0, 1], corresponding-layer
    CKA).  Returns ``per_layer`` (one row per layer), ``by_depth`` (mean ± s.e.m. across
    architectures per depth bin, see :func:`mean_sem_by_bin`: every architecture weighs the
    same) and ``per_architecture`` (Spearman rho of CKA against depth; negative = the
    difference grows with depth).
    """
    frames, trend = [], []
    for arch, (layers, depths, values) in maps.items():
        depths = np.asarray(depths, np.float64)
        values = np.asarray(values, np.float64)
        if not len(layers) == depths.size == values.size:
            raise ValueError(
                f"architecture {arch!r}: {len(layers)} layers, {depths.size} depths and "
                f"{values.size} CKA values"
            )
        frames.append(pd.DataFrame({"architecture": arch, "layer": list(layers),
                                    "depth": depths, "cka": values}))
        rho = correlation_ci(depths, values, "spearman", n_boot=0)
        trend.append({"architecture": arch, "n_layers": len(layers),
                      "rho_depth_cka": rho["r"], "p": rho["p"]})
    per_layer = pd.concat(frames, ignore_index=True)
    by_depth = mean_sem_by_bin(per_layer["depth"], per_layer["cka"], per_layer["architecture"],
                               bins)
    return {"per_layer": per_layer, "by_depth": by_depth,
            "per_architecture": pd.DataFrame(trend)}


def objective_similarity(similarity: pd.DataFrame, unit: str = "site") -> dict:
    """Model-to-IT similarity grouped by training objective, paired over ``unit``.

    ``similarity``: one row per (model, ``unit``) with columns model, objective, ``unit``
    (an IT site or a CV split) and value (that model's similarity to IT there).  Returns
    ``per_objective`` (mean ± s.e.m. across models of each model's mean value),
    ``objective_tests`` (each pair of objectives: per-unit objective means, paired test),
    ``pairs`` (every model pair: mean |value difference|, within or across objectives) and
    ``within_vs_across``: per unit, the mean |difference| between models sharing an objective
    vs between models of different objectives, paired test (a < b: models that share an
    objective fit IT alike); None without both kinds of pair.
    """
    _require_columns(similarity, ("model", "objective", unit, "value"), "similarity table")
    duplicated = similarity.duplicated(["model", unit])
    if duplicated.any():
        first = similarity.loc[duplicated, ["model", unit]].iloc[0].tolist()
        raise ValueError(f"several values for (model, {unit}) = {first}")
    objectives = similarity.groupby("model", sort=False)["objective"].unique()
    mixed = [model for model, objs in objectives.items() if len(objs) > 1]
    if mixed:
        raise ValueError(f"models with more than one objective: {mixed}")
    objective_of = objectives.map(lambda objs: objs[0])
    table = similarity.pivot(index=unit, columns="model", values="value").astype(np.float64)
    table = table[list(objective_of.index)]  # models in order of first appearance

    model_means = table.mean(axis=0)
    per_objective = (
        model_means.groupby(objective_of, sort=False).agg(["count", "mean", "sem"])
        .rename(columns={"count": "n_models"}).rename_axis("objective").reset_index()
    )
    by_objective = table.T.groupby(objective_of, sort=False).mean().T  # unit x objective
    objective_tests = pd.DataFrame([
        {"objective_a": a, "objective_b": b, **paired_test(by_objective[a], by_objective[b])}
        for a, b in itertools.combinations(by_objective.columns, 2)
    ])

    pairs, gaps = [], {"within": [], "across": []}
    for a, b in itertools.combinations(table.columns, 2):
        relation = "within" if objective_of[a] == objective_of[b] else "across"
        gap = (table[a] - table[b]).abs().to_numpy()
        gaps[relation].append(gap)
        pairs.append({"model_a": a, "model_b": b, "objective_a": objective_of[a],
                      "objective_b": objective_of[b], "relation": relation,
                      "mean_abs_diff": float(np.nanmean(gap))})
    within_vs_across = None
    if gaps["within"] and gaps["across"]:
        with warnings.catch_warnings():  # a unit with no finite pair is NaN, then dropped
            warnings.simplefilter("ignore", RuntimeWarning)
            within = np.nanmean(np.stack(gaps["within"]), axis=0)
            across = np.nanmean(np.stack(gaps["across"]), axis=0)
        within_vs_across = paired_test(within, across)
    return {"per_objective": per_objective, "objective_tests": objective_tests,
            "pairs": pd.DataFrame(pairs), "within_vs_across": within_vs_across}


def ev_comparison(
    ev_a: Mapping[str, np.ndarray],
    ev_b: Mapping[str, np.ndarray],
    model_a: str = "A",
    model_b: str = "B",
    sites: Sequence | None = None,
) -> dict:
    """Two models' noise-corrected explained variance of the same sites, per time window.

    ``ev_a`` / ``ev_b``: window label (e.g. "early", "late") -> per-site %EV (see
    :func:`~jaxbrain.analysis.predictions.percent_ev`), the same sites in every window.
    Returns ``sites`` (window, site, ev_a, ev_b: the scatter), ``tests`` (per window, paired
    test of A vs B across sites) and ``window_change`` (per pair of windows, paired test of
    A − B in the first vs the second: does one model's advantage depend on the window?).
    """
    windows = list(ev_a)
    if set(windows) != set(ev_b):
        raise ValueError(f"windows differ: {sorted(ev_a)} vs {sorted(ev_b)}")
    frames, tests, advantage = [], [], {}
    for window in windows:
        a = np.asarray(ev_a[window], np.float64).ravel()
        b = np.asarray(ev_b[window], np.float64).ravel()
        site_ids = np.arange(a.size) if sites is None else np.asarray(sites)
        if not a.size == b.size == site_ids.size:
            raise ValueError(
                f"window {window!r}: {a.size} sites for {model_a}, {b.size} for {model_b}, "
                f"{site_ids.size} site labels"
            )
        frames.append(pd.DataFrame({"window": window, "site": site_ids, "ev_a": a, "ev_b": b}))
        tests.append({"window": window, "model_a": model_a, "model_b": model_b,
                      **paired_test(a, b)})
        advantage[window] = a - b
    sizes = {v.size for v in advantage.values()}
    if len(sizes) > 1:
        raise ValueError(f"every window must hold the same sites, got site counts {sorted(sizes)}")
    change = [
        {"window_a": w1, "window_b": w2, **paired_test(advantage[w1], advantage[w2])}
        for w1, w2 in itertools.combinations(windows, 2)
    ]
    return {"models": (model_a, model_b), "sites": pd.concat(frames, ignore_index=True),
            "tests": pd.DataFrame(tests), "window_change": pd.DataFrame(change)}


def unique_variance_table(
    y,
    predictions: Mapping[str, np.ndarray],
    splits: Splits,
    pairs: Iterable[tuple[str, str]],
    sites: Sequence | None = None,
) -> dict:
    """Per site, what each model of a pair predicts of ``y`` that the other does not.

    ``predictions``: model -> held-out predictions (n_splits, n_test, m) on ``splits`` (see
    :func:`~jaxbrain.analysis.predictions.cv_predictions`); every r is averaged over splits.
    Returns ``sites`` (model_a, model_b, site, r_a = r(y, A), r_b, r_a_given_b = r(y, A | B),
    r_b_given_a) and ``tests`` per pair: "unique_a_vs_r_a" (how much of A's fit B already
    explains) and "unique_a_vs_unique_b" (which model carries more unique variance).
    """
    pairs = list(pairs)
    names = list(dict.fromkeys(name for pair in pairs for name in pair))
    unknown = [name for name in names if name not in predictions]
    if unknown:
        raise ValueError(f"no predictions for models {unknown}")

    def split_mean(r):
        return np.asarray(r, np.float64).mean(axis=0)

    r = {name: split_mean(site_scores(predictions[name], y, splits)) for name in names}
    frames, tests = [], []
    for a, b in pairs:
        a_given_b = split_mean(unique_r(predictions[a], predictions[b], y, splits))
        b_given_a = split_mean(unique_r(predictions[b], predictions[a], y, splits))
        site_ids = np.arange(a_given_b.size) if sites is None else np.asarray(sites)
        frames.append(pd.DataFrame({
            "model_a": a, "model_b": b, "site": site_ids, "r_a": r[a], "r_b": r[b],
            "r_a_given_b": a_given_b, "r_b_given_a": b_given_a,
        }))
        tests.append({"model_a": a, "model_b": b, "comparison": "unique_a_vs_r_a",
                      **paired_test(a_given_b, r[a])})
        tests.append({"model_a": a, "model_b": b, "comparison": "unique_a_vs_unique_b",
                      **paired_test(a_given_b, b_given_a)})
    return {"sites": pd.concat(frames, ignore_index=True), "tests": pd.DataFrame(tests)}


def _penultimate_layers(rows: pd.DataFrame) -> dict:
    """Each model's second-deepest layer (its last layer before the output)."""
    chosen = {}
    for model, layers in rows.drop_duplicates(["model", "layer"]).groupby("model", sort=False):
        ordered = layers.sort_values("layer_depth", kind="stable")["layer"]
        if len(ordered) < 2:
            raise ValueError(f"model {model!r} has a single layer, so no penultimate layer")
        chosen[model] = ordered.iloc[-2]
    return chosen


def memorability_vs_brain(
    rows: pd.DataFrame,
    method: str = "pearson",
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    penultimate: Mapping[str, str] | None = None,
) -> dict:
    """Do layers that predict memorability also predict the brain?

    ``rows``: one row per (model, layer[, region]) with columns model, layer, layer_depth,
    memorability_rho and brain_score (region optional; without it all rows form one group,
    "all").  Returns ``correlation`` (per region, :func:`correlation_ci` across every layer of
    every model), ``penultimate`` (per model and region, the penultimate layer's two scores;
    by default each model's second-deepest layer, or ``penultimate``: model -> layer) and
    ``penultimate_correlation`` (the same correlation across models' penultimate layers).
    """
    _require_columns(
        rows, ("model", "layer", "layer_depth", "memorability_rho", "brain_score"),
        "memorability-vs-brain table",
    )
    rows = rows if "region" in rows.columns else rows.assign(region="all")
    duplicated = rows.duplicated(["model", "layer", "region"])
    if duplicated.any():
        first = rows.loc[duplicated, ["model", "layer", "region"]].iloc[0].tolist()
        raise ValueError(f"several rows for (model, layer, region) = {first}")
    penultimate = dict(_penultimate_layers(rows) if penultimate is None else penultimate)
    missing = sorted(set(rows["model"]) - set(penultimate))
    if missing:
        raise ValueError(f"no penultimate layer given for models {missing}")
    chosen = rows[rows["layer"].to_numpy() == rows["model"].map(penultimate).to_numpy()]
    absent = sorted(set(rows["model"]) - set(chosen["model"]))
    if absent:
        raise ValueError(f"penultimate layers not among the rows of models {absent}")
    chosen = chosen[["model", "region", "layer", "layer_depth", "memorability_rho",
                     "brain_score"]].reset_index(drop=True)

    def by_region(frame):
        return pd.DataFrame([
            {"region": region, "n_models": group["model"].nunique(),
             **correlation_ci(group["memorability_rho"], group["brain_score"], method, level,
                              n_boot, seed)}
            for region, group in frame.groupby("region", sort=False)
        ])

    return {"correlation": by_region(rows), "penultimate": chosen,
            "penultimate_correlation": by_region(chosen)}


def decodability_summary(
    decode_result: dict, depths: Mapping[str, float], top_k: int = 10, seed: int = 0
) -> dict:
    """Tables of a :func:`~jaxbrain.benchmarks.decode_features` result.

    ``depths``: layer -> relative depth.  Returns ``per_subject`` (layer, depth, subject,
    mean accuracy, units, NaN units), ``by_depth`` (per layer in depth order: mean ± s.e.m.
    across subjects), ``depth_trend`` (Spearman rho of mean accuracy against depth, with
    CIs), ``top_units`` (each layer and subject's ``top_k`` best-decoded units) and
    ``consistency`` (every subject pair per layer: the correlation of per-unit accuracies and
    the fraction of shared top-k units).
    """
    layers = decode_result["layers"]
    missing = [layer for layer in layers if layer not in depths]
    if missing:
        raise ValueError(f"no depth given for layers {missing}")
    per_subject, top_units, consistency = [], [], []
    for layer, result in layers.items():
        depth = float(depths[layer])
        subjects = result["subjects"]
        for subject, scores in subjects.items():
            accuracy = np.asarray(scores["accuracy"], np.float64)
            per_subject.append({"layer": layer, "depth": depth, "subject": subject,
                                "mean_accuracy": scores["mean_accuracy"],
                                "n_units": accuracy.size, "nan_units": scores["nan_units"]})
            top_units += [
                {"layer": layer, "subject": subject, "rank": rank + 1, "unit": unit,
                 "accuracy": accuracy[unit]}
                for rank, unit in enumerate(scores["ranking"][:top_k])
            ]
        for a, b in itertools.combinations(subjects, 2):
            top_a, top_b = subjects[a]["ranking"][:top_k], subjects[b]["ranking"][:top_k]
            consistency.append({
                "layer": layer, "depth": depth, "subject_a": a, "subject_b": b,
                "r": result["consistency"][f"{a}~{b}"],
                "top_k_overlap": len(set(top_a) & set(top_b)) / max(len(top_a), 1),
            })
    per_subject = pd.DataFrame(per_subject)
    by_depth = (
        per_subject.groupby(["layer", "depth"], sort=False)["mean_accuracy"]
        .agg(["mean", "sem", "count"]).rename(columns={"count": "n_subjects"})
        .reset_index().sort_values("depth", kind="stable", ignore_index=True)
    )
    columns = ["layer", "depth", "subject_a", "subject_b", "r", "top_k_overlap"]
    return {
        "per_subject": per_subject,
        "by_depth": by_depth,
        "depth_trend": correlation_ci(by_depth["depth"], by_depth["mean"], "spearman", seed=seed),
        "top_units": pd.DataFrame(top_units,
                                  columns=["layer", "subject", "rank", "unit", "accuracy"]),
        "consistency": pd.DataFrame(consistency, columns=columns),
    }
