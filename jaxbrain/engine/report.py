"""The sweep report: layer curves, CKA heatmaps, a leaderboard and report.md / index.html.

A sweep yields thousands of (model, layer, benchmark) scores; nobody reads those tables.  The
figures show where along its depth each model best matches each region, which layer was
committed, how models compare and how their layers relate, under a summary generated from the
data.  Figures are drawn on :class:`matplotlib.figure.Figure` objects (Agg, no pyplot state) at
fixed sizes and dpi so that the same data give the same files; every file is written atomically.
"""

from __future__ import annotations

import hashlib
import html
import io
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from markdown_it import MarkdownIt
from matplotlib import colormaps
from matplotlib.figure import Figure

from jaxbrain.engine.commitment import is_target
from jaxbrain.files import atomic_write

REGIONS = ("V1", "V2", "V4", "IT")
DPI = 110
MAX_TICKS = 30  # per heatmap axis: 100+ layer names stay legible
FIGURES = "figures"

_PALETTE = colormaps["tab10"].colors  # colour-blind-friendly, and lines also differ by marker
_LINE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
_DENSE_LAYERS = 40  # beyond this many layers, thinner lines and small markers keep curves legible
_REGION_MARKERS = {"V1": "o", "V2": "s", "V4": "^", "IT": "D"}
# d(ceiled)/d(raw) for each ceiled-score convention of jaxbrain.benchmarks.neural.CONVENTIONS:
# the band around a ceiled score is the raw standard error carried through it (delta method).
_CEILED_SLOPE = {
    "v4": lambda raw, ceiling: 2 * raw / ceiling,
    "v3": lambda raw, ceiling: 2 * raw / ceiling**2,
    "v1": lambda raw, ceiling: 1 / ceiling,
}
_DEFAULT_CONVENTION = "v4"
BAND_CAPTION = (
    "Shaded band: ±1 s.e. over splits; for ceiled scores the raw s.e. times d(ceiled)/d(raw) "
    "(delta method; v4: 2·raw/ceiling).  ★ committed layer (memorability: best layer)."
)


def plot_layer_curves(
    rows: pd.DataFrame, commitments: pd.DataFrame, out_dir: str | os.PathLike
) -> list[Path]:
    """One PNG per model (in order of first appearance): score against relative depth per panel."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for model in _models(rows):
        path = out_dir / f"layers_{safe_name(model)}.png"
        fig = _layer_curves_figure(
            model, rows[rows["model"] == model], commitments[commitments["model"] == model]
        )
        save_figure(fig, path)
        paths.append(path)
    return paths


def plot_cka_heatmaps(
    cka_maps: Mapping[tuple[str, str], tuple[Sequence[str], Sequence[str], np.ndarray]],
    out_dir: str | os.PathLike,
) -> list[Path]:
    """One heatmap per model pair, in the mapping's order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for (model_a, model_b), (layers_a, layers_b, matrix) in cka_maps.items():
        path = out_dir / f"cka_{safe_name(model_a)}__{safe_name(model_b)}.png"
        save_figure(_cka_figure(model_a, model_b, layers_a, layers_b, matrix), path)
        paths.append(path)
    return paths


def display_name(model: str, width: int = 48) -> str:
    """A model reference short enough for a figure: a reference naming a file by its path
    (``arch=/long/path/weights.pt``) keeps its end, which tells models apart."""
    return model if len(model) <= width else "…" + model[-(width - 1):]


def plot_leaderboard(leaderboard: pd.DataFrame, out_dir: str | os.PathLike) -> Path:
    """Bars of neural_vision, best rank on top, with each region's score as a marker."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    board = leaderboard.sort_values("rank", kind="stable")
    regions = [r for r in REGIONS if r in board.columns]
    n = len(board)
    fig = Figure(figsize=(8.0, 1.6 + 0.42 * max(n, 1)), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(n)
    overall = board["neural_vision"].to_numpy(float)
    ax.barh(y, np.nan_to_num(overall), height=0.65, color=_PALETTE[0], alpha=0.35,
            edgecolor=_PALETTE[0], label="neural_vision")
    for i, region in enumerate(regions):
        ax.scatter(board[region].to_numpy(float), y, marker=_REGION_MARKERS[region], s=42,
                   color=_PALETTE[i + 1], edgecolors="black", linewidths=0.5, zorder=3,
                   label=region)
    labels = [
        f"{int(rank)}. {display_name(model)}  ({_fmt(score)})"
        for rank, model, score in zip(board["rank"], board["model"], overall, strict=True)
    ]
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_ylim(n - 0.5, -0.5)  # rank 1 on top
    values = board[["neural_vision", *regions]].to_numpy(float)
    finite = values[np.isfinite(values)]
    low = min(0.0, finite.min()) if finite.size else 0.0
    high = max(finite.max(), 0.0) if finite.size else 1.0
    ax.set_xlim(low, high * 1.08 if high > 0 else 1.0)
    ax.set_xlabel("score (ceiled)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title("Leaderboard: neural_vision (bars) and per-region scores (markers)", fontsize=10)
    if n:
        fig.legend(loc="outside lower center", ncols=len(regions) + 1, fontsize=8, frameon=False)
    else:
        ax.text(0.5, 0.5, "no models", transform=ax.transAxes, ha="center", va="center")
    path = out_dir / "leaderboard.png"
    save_figure(fig, path)
    return path


def write_report(
    out_dir: str | os.PathLike,
    *,
    rows: pd.DataFrame,
    commitments: pd.DataFrame,
    leaderboard: pd.DataFrame,
    cka_maps: Mapping[tuple[str, str], tuple[Sequence[str], Sequence[str], np.ndarray]],
    title: str,
    model_cards_md: Mapping[str, str] | None = None,
    notes: Sequence[str] | None = None,
) -> Path:
    """Write report.md and the same content as index.html, with figures under figures/."""
    out_dir = Path(out_dir)
    fig_dir = out_dir / FIGURES
    curves = dict(zip(_models(rows), plot_layer_curves(rows, commitments, fig_dir), strict=True))
    board_png = plot_leaderboard(leaderboard, fig_dir)
    cka_pngs = plot_cka_heatmaps(cka_maps, fig_dir)

    def rel(path: Path) -> str:
        return path.relative_to(out_dir).as_posix()

    board = leaderboard.sort_values("rank", kind="stable")
    models = list(dict.fromkeys([*board["model"], *curves]))
    cards = model_cards_md or {}
    parts = [f"# {title}", summary(rows, commitments, leaderboard)]

    parts += ["## Leaderboard", f"![Leaderboard: neural_vision by rank]({rel(board_png)})"]
    parts.append(_leaderboard_table(board))

    parts += ["## Models", "Layer curves: x is relative layer depth (0 = input side, 1 = output "
              "side), y the ceiled score (raw where a benchmark has no ceiling; the axis says "
              f"which). {BAND_CAPTION} Skipped or unscored layers are left out."]
    for model in models:
        parts.append(f"### {_code(model)}")
        if model in curves:
            parts.append(f"![Layer curves of {_alt(model)}]({rel(curves[model])})")
        else:
            parts.append("No layer scores.")
        parts.append(_commitment_table(commitments[commitments["model"] == model]))
        if cards.get(model):
            parts.append(_demote_headings(cards[model].strip()))

    if cka_pngs:
        parts += ["## Layer-to-layer CKA", "CKA between every layer of one model (rows) and every "
                  "layer of another (columns), on the same images; 1 = the same representation up "
                  "to rotation and scale.  Layers run from input (bottom/left) to output."]
        for (model_a, model_b), png in zip(cka_maps, cka_pngs, strict=True):
            parts.append(f"![CKA {_alt(model_a)} vs {_alt(model_b)}]({rel(png)})")

    all_notes = [*_auto_notes(rows), *(notes or [])]
    if all_notes:
        parts += ["## Notes", "\n".join(f"- {note}" for note in all_notes)]

    markdown = "\n\n".join(p for p in parts if p) + "\n"
    report = out_dir / "report.md"
    write_text(report, markdown)
    write_text(out_dir / "index.html", html_page(title, markdown))
    return report


def summary(rows: pd.DataFrame, commitments: pd.DataFrame, leaderboard: pd.DataFrame) -> str:
    """Two or three sentences from the data: best model, best per region, memorability."""
    sentences = []
    board = leaderboard.dropna(subset=["neural_vision"]).sort_values("rank", kind="stable")
    if len(board):
        best = board.iloc[0]
        sentences.append(
            f"{_code(best['model'])} ranks first of {len(leaderboard)} models with neural_vision "
            f"{_fmt(best['neural_vision'])}."
        )
    per_region = []
    for region in _regions(leaderboard, commitments):
        best = _best_for_region(region, leaderboard, commitments)
        if best is not None:
            model, score, layer = best
            where = f"at {_code(layer)}" if layer else "(no committed layer)"
            per_region.append(f"{region} {_code(model)} {where} ({_fmt(score)})")
    if per_region:
        sentences.append(f"Best per region, with its committed layer: {'; '.join(per_region)}.")
    memorability = []
    mem = _scored(rows[is_target(rows)])
    for bench, brows in mem.groupby("benchmark", sort=True):
        top = brows.loc[brows["score"].idxmax()]
        memorability.append(
            f"on {bench} the best layer is {_code(top['layer'])} of {_code(top['model'])} "
            f"({top['metric']} {_fmt(top['score'])})"
        )
    if memorability:
        text = "; ".join(memorability)
        sentences.append(text[0].upper() + text[1:] + ".")
    return " ".join(sentences) or "No scores."


def safe_name(name: str) -> str:
    """File-name stem for a model name; a hash suffix keeps distinct names distinct."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
    if safe != name:
        safe += "-" + hashlib.sha1(name.encode()).hexdigest()[:6]
    return safe


# --- layer curves -------------------------------------------------------------------------------


def _layer_curves_figure(model: str, mrows: pd.DataFrame, mcommit: pd.DataFrame) -> Figure:
    panels = _panels(mrows)
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.4 * ncols, 3.5 * nrows + 0.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, prows, committed) in zip(axes, panels, strict=False):
        _panel(ax, name, prows, mcommit[mcommit["region"] == name] if committed else None)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"{display_name(model)}: score by layer depth", fontsize=12)
    fig.supxlabel(BAND_CAPTION, fontsize=8, color="0.3")
    return fig


def _panels(mrows: pd.DataFrame) -> list[tuple[str, pd.DataFrame, bool]]:
    """(title, rows, whether layers are committed on it): regions in V1, V2, V4, IT order
    (others after, sorted), then each target outside the regions, titled by its kind."""
    targets = is_target(mrows)
    neural = mrows[~targets]
    present = set(neural["region"])
    order = [r for r in REGIONS if r in present] + sorted(present - set(REGIONS))
    panels = [(r, neural[neural["region"] == r], True) for r in order]
    for kind, krows in mrows[targets].groupby("kind", sort=True):
        panels.append((kind, krows, False))
    return panels


def _panel(ax, name: str, prows: pd.DataFrame, pcommit: pd.DataFrame | None) -> None:
    """One panel; ``pcommit`` None: a target outside the regions, its best layer marked."""
    series = {bench: _series(brows) for bench, brows in prows.groupby("benchmark", sort=True)}
    any_ceiled = any(s[3] for s in series.values())
    plotted = {}
    for i, (bench, (layers, x, y, ceiled, band)) in enumerate(series.items()):
        color = _PALETTE[i % len(_PALETTE)]
        label = bench if ceiled or not any_ceiled else f"{bench} (raw)"
        dense = len(x) > _DENSE_LAYERS
        ax.plot(x, y, marker=_LINE_MARKERS[i % len(_LINE_MARKERS)], ms=1.5 if dense else 3.5,
                lw=1.0 if dense else 1.4, color=color, label=label)
        ax.fill_between(x, y - band, y + band, color=color, alpha=0.18, lw=0)
        plotted[bench] = pd.Series(y, index=layers)
    if pcommit is None:
        _mark_best(ax, series)
    else:
        for _, c in pcommit.iterrows():
            _mark(ax, c["layer_depth"], _value_at(plotted, c["selection_benchmark"],
                                                  c["committed_layer"]),
                  f"committed: {c['committed_layer']}")
    metrics = prows["metric"].dropna().unique()
    raw_label = f"raw score ({metrics[0]})" if len(metrics) == 1 else "raw score"
    all_ceiled = all(s[3] for s in series.values())
    ylabel = "ceiled score" if all_ceiled else "score (ceiled; raw where marked)"
    ax.set_ylabel(ylabel if any_ceiled else raw_label, fontsize=9)
    ax.set_xlabel("relative layer depth", fontsize=9)
    ax.set_title(name, fontsize=11, fontweight="bold")
    ax.set_xlim(-0.04, 1.04)
    ax.margins(y=0.2)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=8)
    if not any(np.isfinite(s[2]).any() for s in series.values()):
        ax.text(0.5, 0.5, "no scores", transform=ax.transAxes, ha="center", va="center")
    ax.legend(fontsize=7, loc="lower right" if pcommit is None else "best", framealpha=0.85)


def _series(brows: pd.DataFrame):
    """Layers, depth, score, whether ceiled, band half-width; NaN score where skipped/unscored."""
    brows = brows.sort_values("layer_index", kind="stable")
    ok = brows["status"].eq("ok").to_numpy()
    raw = brows["raw"].to_numpy(float)
    error = brows["error"].to_numpy(float)
    ceiled = brows["ceiled"].to_numpy(float)
    ceiling = brows["ceiling"].to_numpy(float)
    use_ceiled = bool(np.isfinite(ceiled[ok]).any())
    if use_ceiled:
        convention = (brows["convention"].fillna(_DEFAULT_CONVENTION)
                      if "convention" in brows else pd.Series(_DEFAULT_CONVENTION, brows.index))
        slope = np.full(len(brows), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            for name, fn in _CEILED_SLOPE.items():
                pick = (convention == name).to_numpy()
                slope[pick] = fn(raw[pick], ceiling[pick])
        y, band = ceiled, np.abs(error * slope)
    else:
        y, band = raw, error
    y = np.where(ok, y, np.nan)
    band = np.where(np.isfinite(band), band, 0.0)
    return brows["layer"].to_numpy(), brows["layer_depth"].to_numpy(float), y, use_ceiled, band


def _value_at(plotted: dict[str, pd.Series], bench: str, layer: str) -> float:
    """The selection benchmark's plotted score at the layer, else any panel line's, else NaN."""
    for line in [plotted[bench]] if bench in plotted else list(plotted.values()):
        if layer in line.index and np.isfinite(line[layer]):
            return float(line[layer])
    return math.nan


def _mark_best(ax, series) -> None:
    best = None
    for layers, x, y, _, _ in series.values():
        if np.isfinite(y).any():
            i = int(np.nanargmax(y))
            if best is None or y[i] > best[1]:
                best = (x[i], y[i], layers[i])
    if best is not None:
        _mark(ax, best[0], best[1], f"best: {best[2]}")


def _mark(ax, x: float, y: float, text: str) -> None:
    """Star at the layer (a dotted line alone when it has no plotted score) and its name."""
    ax.axvline(x, color="0.4", ls=":", lw=1)
    ha = "left" if x < 0.3 else "right" if x > 0.7 else "center"
    box = {"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "alpha": 0.9}
    if np.isfinite(y):
        ax.plot([x], [y], marker="*", ms=15, mfc="gold", mec="black", mew=0.8, ls="none",
                zorder=5)
        ax.annotate(text, (x, y), xytext=(0, 10), textcoords="offset points", ha=ha,
                    fontsize=7.5, bbox=box, zorder=6)
    else:
        ax.text(x, 0.97, text, transform=ax.get_xaxis_transform(), ha=ha, va="top",
                fontsize=7.5, bbox=box)


# --- CKA ----------------------------------------------------------------------------------------


def _cka_figure(model_a: str, model_b: str, layers_a, layers_b, matrix) -> Figure:
    matrix = np.asarray(matrix, float)
    if matrix.shape != (len(layers_a), len(layers_b)):
        raise ValueError(
            f"CKA map {model_a} vs {model_b}: matrix {matrix.shape} does not match "
            f"{len(layers_a)} x {len(layers_b)} layers"
        )
    fig = Figure(figsize=(8.0, 7.0), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="0.85")
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=0.0, vmax=1.0, origin="lower",
                      aspect="auto", interpolation="nearest")
    rows, cols = _tick_indices(len(layers_a)), _tick_indices(len(layers_b))
    ax.set_yticks(rows, [layers_a[i] for i in rows], fontsize=7)
    ax.set_xticks(cols, [layers_b[i] for i in cols], fontsize=7, rotation=90)
    ax.set_ylabel(f"{model_a} layer ({len(layers_a)})", fontsize=9)
    ax.set_xlabel(f"{model_b} layer ({len(layers_b)})", fontsize=9)
    ax.set_title(f"CKA: {model_a} vs {model_b}", fontsize=11)
    fig.colorbar(image, ax=ax, label="CKA", shrink=0.85)
    return fig


def _tick_indices(n: int) -> np.ndarray:
    """At most MAX_TICKS evenly spaced indices, always the first and the last layer."""
    return np.unique(np.round(np.linspace(0, n - 1, min(n, MAX_TICKS))).astype(int))


# --- markdown -----------------------------------------------------------------------------------


def _leaderboard_table(board: pd.DataFrame) -> str:
    regions = [r for r in REGIONS if r in board.columns]
    lines = ["| rank | model | neural_vision | " + " | ".join(regions) + " |",
             "|---:|---|---:|" + "---:|" * len(regions)]
    for _, r in board.iterrows():
        cells = [str(int(r["rank"])), _cell(_code(r["model"])), _fmt(r["neural_vision"]),
                 *(_fmt(r[region]) for region in regions)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _commitment_table(mcommit: pd.DataFrame) -> str:
    if not len(mcommit):
        return "No committed layers."
    order = {r: i for i, r in enumerate(REGIONS)}
    mcommit = mcommit.sort_values("region", key=lambda s: s.map(order).fillna(len(REGIONS)),
                                  kind="stable")
    lines = ["| region | committed layer | depth | selected on | score |",
             "|---|---|---:|---|---:|"]
    for _, c in mcommit.iterrows():
        cells = [c["region"], _cell(_code(c["committed_layer"])), _fmt(c["layer_depth"], 2),
                 _cell(str(c["selection_benchmark"])), _fmt(c["selection_score"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _auto_notes(rows: pd.DataFrame) -> list[str]:
    missing = len(rows) - len(_scored(rows))
    if not missing:
        return []
    return [f"{missing} (model, layer, benchmark) rows were skipped or have no score; "
            "they are left out of the curves and the summary."]


def _demote_headings(markdown: str, levels: int = 3) -> str:
    """Model-card headings nest under the model's own heading (fenced code left alone)."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and (m := re.match(r"(#{1,6})(?=\s|$)", line)):
            line = "#" * min(6, len(m[1]) + levels) + line[len(m[1]):]
        out.append(line)
    return "\n".join(out)


def html_page(title: str, markdown: str) -> str:
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
        "line-height:1.5;color:#222}img{max-width:100%;height:auto}"
        "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;"
        "padding:.25em .6em}th{background:#f3f3f3}code{background:#f3f3f3;padding:0 .2em}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    )


# --- data helpers -------------------------------------------------------------------------------


def _models(rows: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(rows["model"]))


def _scored(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a usable score (ceiled where there is one, raw otherwise) in column 'score'."""
    score = rows["ceiled"].where(rows["ceiled"].notna(), rows["raw"]).astype(float)
    keep = rows["status"].eq("ok") & np.isfinite(score)
    return rows.assign(score=score)[keep]


def _regions(leaderboard: pd.DataFrame, commitments: pd.DataFrame) -> list[str]:
    present = set(commitments["region"]) | {r for r in REGIONS if r in leaderboard.columns}
    return [r for r in REGIONS if r in present] + sorted(present - set(REGIONS))


def _best_for_region(region, leaderboard, commitments) -> tuple[str, float, str] | None:
    """Best model on a region (leaderboard column, else selection score) and its committed layer."""
    commit = commitments[commitments["region"] == region]
    if region in leaderboard.columns and leaderboard[region].notna().any():
        top = leaderboard.loc[leaderboard[region].astype(float).idxmax()]
        model, score = top["model"], float(top[region])
    elif commit["selection_score"].notna().any():
        top = commit.loc[commit["selection_score"].astype(float).idxmax()]
        model, score = top["model"], float(top["selection_score"])
    else:
        return None
    layer = commit.loc[commit["model"] == model, "committed_layer"]
    return model, score, layer.iloc[0] if len(layer) else ""


def _fmt(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if value is not None and np.isfinite(value) else "n/a"


def _code(text) -> str:
    return "`" + str(text).replace("`", "'") + "`"


def _alt(text) -> str:
    return re.sub(r"([\\\[\]])", r"\\\1", str(text))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# --- atomic files -------------------------------------------------------------------------------


def save_figure(fig: Figure, path: Path) -> None:
    """Readers (a browser, a resumed sweep) never see a half-written file."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    atomic_write(path, buffer.getvalue())


def write_text(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))
