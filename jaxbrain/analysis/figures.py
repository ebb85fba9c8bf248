"""One figure per study, drawn on :class:`matplotlib.figure.Figure` objects (Agg, no pyplot
state, fixed sizes) from the analyses' tables, so the same tables give the same files."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

_COLOURS = colormaps["tab10"].colors
_OBJECTIVE_COLOURS = {"categorization": _COLOURS[0], "memorability": _COLOURS[1],
                      "joint": _COLOURS[2]}


def _short(model: str) -> str:
    return model.split("-", 1)[-1] if "-" in model else model


def _diagonal(ax, values) -> None:
    finite = np.asarray(values, float)
    finite = finite[np.isfinite(finite)]
    low, high = (min(0.0, finite.min()), max(1.0, finite.max())) if finite.size else (0.0, 1.0)
    ax.plot([low, high], [low, high], color="0.6", lw=1, ls="--", zorder=0)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")


def objective_cka(by_depth: dict[str, pd.DataFrame], pairs: pd.DataFrame) -> Figure:
    """Left: CKA between corresponding layers vs relative depth, mean ± s.e.m. across
    architectures, one line per objective pair.  Right: mean |Δ%EV| at IT sites between model
    pairs that share an objective vs pairs that do not."""
    fig = Figure(figsize=(10, 4))
    ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    for k, (pair, table) in enumerate(by_depth.items()):
        x, mean, sem = table["bin_center"], table["mean"], table["sem"].fillna(0)
        ax.plot(x, mean, marker="o", color=_COLOURS[k], label=pair)
        ax.fill_between(x, mean - sem, mean + sem, color=_COLOURS[k], alpha=0.2)
    ax.set(xlabel="relative depth", ylabel="CKA, corresponding layers", ylim=(0, 1.02),
           title="Objectives diverge with depth (mean ± s.e.m. over architectures)")
    ax.legend(fontsize=8)
    groups = [pairs.loc[pairs["relation"] == r, "mean_abs_diff"] for r in ("within", "across")]
    bx.bar([0, 1], [g.mean() for g in groups],
           yerr=[g.std(ddof=1) / np.sqrt(len(g)) if len(g) > 1 else 0 for g in groups],
           color=[_COLOURS[4], _COLOURS[5]], capsize=4)
    for i, g in enumerate(groups):
        bx.scatter(np.full(len(g), i) + np.linspace(-0.15, 0.15, len(g)), g, s=10, color="k")
    bx.set_xticks([0, 1], ["same objective", "different objectives"])
    bx.set(ylabel="mean |Δ %EV| at IT sites", title="Model-to-IT fits, model pairs")
    fig.tight_layout()
    return fig


def ev_scatter(sites: pd.DataFrame, windows: list[str]) -> Figure:
    """%EV of model A (x) vs model B (y) per IT site, one panel per architecture and window."""
    archs = list(dict.fromkeys(sites["architecture"]))
    fig = Figure(figsize=(3.6 * len(windows), 3.6 * len(archs)))
    axes = np.atleast_2d(fig.subplots(len(archs), len(windows), squeeze=False))
    for i, arch in enumerate(archs):
        for j, window in enumerate(windows):
            ax = axes[i, j]
            part = sites[(sites["architecture"] == arch) & (sites["window"] == window)]
            ax.scatter(part["ev_a"], part["ev_b"], s=12, color=_COLOURS[j])
            _diagonal(ax, np.r_[part["ev_a"], part["ev_b"]])
            ax.set(title=f"{arch}: {window} window", xlabel="%EV, memorability-trained",
                   ylabel="%EV, categorisation-trained")
    fig.tight_layout()
    return fig


def unique_variance(sites: pd.DataFrame, arch: str) -> Figure:
    """r(IT, A | B) against r(IT, A) per site for ``arch``: A memorability-trained or the
    categorisation control, B the categorisation-trained model; one panel per window."""
    part = sites[sites["architecture"] == arch]
    windows = list(dict.fromkeys(part["window"]))
    fig = Figure(figsize=(4 * len(windows), 4))
    axes = np.atleast_1d(fig.subplots(1, len(windows), squeeze=False)[0])
    for ax, window in zip(axes, windows, strict=True):
        rows = part[part["window"] == window]
        for k, (model, group) in enumerate(rows.groupby("model_a", sort=False)):
            ax.scatter(group["r_a"], group["r_a_given_b"], s=12, color=_COLOURS[k + 1],
                       label=f"A = {_short(model)}")
        _diagonal(ax, np.r_[rows["r_a"], rows["r_a_given_b"]])
        ax.set(title=f"{arch}: {window} window", xlabel="r(IT, A)",
               ylabel="r(IT, A | categorisation-trained)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def joint_bars(means: pd.DataFrame, windows: list[str]) -> Figure:
    """Mean %EV ± s.e.m. over IT sites per objective, window and architecture."""
    archs = list(dict.fromkeys(means["architecture"]))
    fig = Figure(figsize=(4.5 * len(archs), 3.8))
    axes = np.atleast_1d(fig.subplots(1, len(archs), squeeze=False)[0])
    objectives = list(_OBJECTIVE_COLOURS)
    for ax, arch in zip(axes, archs, strict=True):
        part = means[means["architecture"] == arch].set_index(["objective", "window"])
        for k, objective in enumerate(objectives):
            x = np.arange(len(windows)) + (k - 1) * 0.27
            values = [part.loc[(objective, w), "mean_ev"] for w in windows]
            errors = [part.loc[(objective, w), "sem_ev"] for w in windows]
            ax.bar(x, values, 0.27, yerr=errors, capsize=3, label=objective,
                   color=_OBJECTIVE_COLOURS[objective])
        ax.set_xticks(np.arange(len(windows)), [f"{w} window" for w in windows])
        ax.set(title=arch, ylabel="mean %EV over IT sites")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def memorability_scatter(layers: pd.DataFrame, penultimate: pd.DataFrame) -> Figure:
    """Per region: every layer's memorability rho (x) against its brain score (y), coloured
    by model; penultimate layers ringed."""
    regions = list(dict.fromkeys(layers["region"]))
    models = list(dict.fromkeys(layers["model"]))
    cols = min(3, len(regions))
    rows = int(np.ceil(len(regions) / cols))
    fig = Figure(figsize=(4.2 * cols, 3.8 * rows))
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, region in zip(axes, regions, strict=False):
        part = layers[layers["region"] == region]
        for k, model in enumerate(models):
            group = part[part["model"] == model]
            ax.scatter(group["memorability_rho"], group["brain_score"], s=8,
                       color=_COLOURS[k % len(_COLOURS)], label=model, alpha=0.7)
        chosen = penultimate[penultimate["region"] == region]
        ax.scatter(chosen["memorability_rho"], chosen["brain_score"], s=70,
                   facecolors="none", edgecolors="k", label="penultimate layers")
        ax.set(title=region, xlabel="memorability rho", ylabel="brain score (ceiled)")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[len(regions):]:
        ax.axis("off")
    spare = axes[len(regions)] if len(axes) > len(regions) else axes[0]
    spare.legend(handles, labels, fontsize=7, loc="center")
    fig.tight_layout()
    return fig


def decodability(by_depth: pd.DataFrame, consistency: pd.DataFrame) -> Figure:
    """Left: mean decoding accuracy ± s.e.m. over subjects by relative depth, per model.
    Right: cross-subject consistency of per-unit accuracy by depth."""
    fig = Figure(figsize=(10, 3.8))
    ax, bx = fig.subplots(1, 2)
    for k, (model, part) in enumerate(by_depth.groupby("model", sort=False)):
        ax.errorbar(part["depth"], part["mean"], yerr=part["sem"].fillna(0), marker="o",
                    ms=3, color=_COLOURS[k], label=model)
        cons = consistency[consistency["model"] == model]
        bx.plot(cons["depth"], cons["r"], marker="o", ms=3, color=_COLOURS[k], label=model)
    ax.set(xlabel="relative depth", ylabel="mean unit decoding accuracy (r)",
           title="Decodability by depth")
    bx.set(xlabel="relative depth", ylabel="r(per-unit accuracy, subject pair)",
           title="Cross-subject consistency", ylim=(-0.05, 1.0))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
