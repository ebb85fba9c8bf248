"""Feature-decoding results as tables and figures, and their comparison with Horikawa &
Kamitani's published accuracies.

The published decoded-feature dataset holds one MATLAB file per network, layer and subject,
``accuracy-<net>-<layer>-<subject>.mat`` with a variable ``accuracy`` (one Pearson r per
decoded unit).  A layer compares unit by unit (correlation of per-unit accuracies) only when
both sides decoded the same units in the same order (as many); the means always compare.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

_PUBLISHED = re.compile(r"^accuracy-(?P<net>[^-]+)-(?P<layer>[^-]+)-(?P<subject>.+)\.mat$")


def _subject_key(name: str) -> str:
    """``Subject1``, ``subject1``, ``S1``, ``sub-01`` → ``1`` (how files name subjects varies);
    a name without digits is kept as it is, lower-cased."""
    digits = re.findall(r"\d+", name)
    return str(int(digits[-1])) if digits else name.lower()


def read_accuracy_mat(path) -> np.ndarray:
    """The ``accuracy`` variable of one published file, flattened (MATLAB v5 through SciPy,
    v7.3 through h5py)."""
    from scipy.io import loadmat

    path = Path(path)
    try:
        values = loadmat(str(path))["accuracy"]
    except NotImplementedError:  # MATLAB v7.3 is HDF5
        import h5py

        with h5py.File(path, "r") as f:
            if "accuracy" not in f:
                raise ValueError(f"{path}: no variable 'accuracy' (has {sorted(f)})") from None
            values = np.asarray(f["accuracy"])
    except KeyError:
        raise ValueError(f"{path}: no variable 'accuracy'") from None
    return np.asarray(values, np.float64).ravel()


def read_published(folder, net: str) -> pd.DataFrame:
    """Every ``accuracy-<net>-<layer>-<subject>.mat`` of ``folder``: rows (layer, subject,
    accuracy array)."""
    rows = []
    for path in sorted(Path(folder).glob(f"accuracy-{net}-*.mat")):
        match = _PUBLISHED.match(path.name)
        if match and match["net"] == net:
            rows.append({"layer": match["layer"], "subject": match["subject"],
                         "accuracy": read_accuracy_mat(path)})
    if not rows:
        raise ValueError(f"{folder}: no published accuracies accuracy-{net}-<layer>-<subject>.mat")
    return pd.DataFrame(rows)


def compare_with_published(result: dict, published: pd.DataFrame,
                           layer_names: dict | None = None) -> pd.DataFrame:
    """Per (layer, subject) present on both sides: units decoded on each side, the correlation
    of per-unit accuracies (same units only; NaN and a note otherwise), each side's mean
    accuracy and their difference (ours − published).  ``layer_names`` maps our tap names to
    the published ones (default: the same)."""
    layer_names = layer_names or {}
    published = published.assign(key=published["subject"].map(_subject_key))
    rows = []
    for layer, entry in result["layers"].items():
        theirs_layer = layer_names.get(layer, layer)
        for subject, ours in entry["subjects"].items():
            match = published[(published["layer"] == theirs_layer)
                              & (published["key"] == _subject_key(subject))]
            if match.empty:
                continue
            mine = np.asarray(ours["accuracy"], np.float64)
            theirs = match.iloc[0]["accuracy"]
            row = {"layer": layer, "published_layer": theirs_layer, "subject": subject,
                   "units": mine.size, "published_units": theirs.size,
                   "mean": float(np.nanmean(mine)), "published_mean": float(np.nanmean(theirs)),
                   "r": np.nan, "note": ""}
            row["mean_difference"] = row["mean"] - row["published_mean"]
            if mine.size == theirs.size:
                both = np.isfinite(mine) & np.isfinite(theirs)
                row["r"] = float(np.corrcoef(mine[both], theirs[both])[0, 1])
            else:
                row["note"] = "different units: means only"
            rows.append(row)
    if not rows:
        raise ValueError("no (layer, subject) of the decoding result has a published "
                         "accuracy; check the layer names (layer_names) and subjects")
    return pd.DataFrame(rows)


def accuracy_table(result: dict) -> pd.DataFrame:
    """One row per (layer, subject): mean accuracy, identification, alpha, units; layers in
    the result's (depth) order."""
    rows = []
    for depth, (layer, entry) in enumerate(result["layers"].items()):
        for subject, res in entry["subjects"].items():
            rows.append({"layer": layer, "depth": depth, "subject": subject,
                         "mean_accuracy": res["mean_accuracy"],
                         "identification": res["identification"],
                         "alpha": res.get("alpha", res.get("alpha_median")),
                         "units": len(res["accuracy"]), "nan_units": res["nan_units"]})
    return pd.DataFrame(rows)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)
    return path


def decoding_figures(result: dict, out_dir, comparison: pd.DataFrame | None = None
                     ) -> list[Path]:
    """The study's figures: accuracy by layer depth per subject, rank-ordered unit
    accuracies per layer, the cross-subject consistency matrix of each layer, and (given a
    comparison) jaxbrain's mean accuracies beside the published ones."""
    out_dir = Path(out_dir)
    table = accuracy_table(result)
    layers = list(result["layers"])
    written = []

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for subject, rows in table.groupby("subject", sort=False):
        ax.plot(rows["depth"], rows["mean_accuracy"], marker="o", label=subject)
    ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right")
    ax.set_ylabel("mean decoding accuracy (r)")
    ax.legend(fontsize=7)
    written.append(_save(fig, out_dir / "accuracy_by_layer.png"))

    fig = Figure(figsize=(3.2 * len(layers), 3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(layers)))
    for ax, layer in zip(axes, layers, strict=True):
        for subject, res in result["layers"][layer]["subjects"].items():
            acc = np.asarray(res["accuracy"], np.float64)
            ax.plot(np.sort(acc[np.isfinite(acc)])[::-1], label=subject, lw=1)
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("unit rank")
    axes[0].set_ylabel("accuracy (r)")
    axes[-1].legend(fontsize=6)
    written.append(_save(fig, out_dir / "unit_ranks.png"))

    fig = Figure(figsize=(3 * len(layers), 3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(layers)))
    for ax, layer in zip(axes, layers, strict=True):
        matrix = result["layers"][layer]["consistency_matrix"]
        image = ax.imshow(np.asarray(matrix["r"]), vmin=-1, vmax=1, cmap="RdBu_r")
        ticks = range(len(matrix["subjects"]))
        ax.set_xticks(ticks, matrix["subjects"], rotation=90, fontsize=7)
        ax.set_yticks(ticks, matrix["subjects"], fontsize=7)
        ax.set_title(layer, fontsize=9)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="r of per-unit accuracies")
    written.append(_save(fig, out_dir / "consistency.png"))

    if comparison is not None and not comparison.empty:
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.subplots()
        means = comparison.groupby("layer", sort=False)[["mean", "published_mean"]].mean()
        ax.plot(range(len(means)), means["mean"], marker="o", label="jaxbrain")
        ax.plot(range(len(means)), means["published_mean"], marker="s", label="published")
        ax.set_xticks(range(len(means)), means.index, rotation=45, ha="right")
        ax.set_ylabel("mean decoding accuracy (r), mean over subjects")
        ax.legend()
        written.append(_save(fig, out_dir / "published_comparison.png"))
    return written
