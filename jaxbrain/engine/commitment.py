"""Layer commitment and model cards, as on Brain-Score (docs/design.md §4 "Layer commitment").

Each region commits the layer with the best ceiled score on that region's *selection*
benchmark (the public split where one exists, so the layer is never chosen on the data it is
reported on); the card reports the committed layer's scores on the region's *reported*
benchmarks, their mean per region, the mean over regions (``neural_vision``) and the model's
rank among the models scored.  Targets outside the brain regions (memorability) report their
best layer.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from jaxbrain.files import atomic_write

# How each ceiled-score convention of jaxbrain.benchmarks.neural.CONVENTIONS is stated.
CONVENTION_TEXT = {
    "v4": "ceiled = raw²/ceiling (Brain-Score v4)",
    "v3": "ceiled = (raw/ceiling)² (Brain-Score v3)",
    "v1": "ceiled = raw/ceiling (Brain-Score v1)",
}
COMMITMENT_COLUMNS = {
    "model": "str",
    "region": "str",
    "committed_layer": "str",
    "layer_index": "int64",
    "layer_depth": "float64",
    "selection_benchmark": "str",
    "selection_score": "float64",
    "selected_by": "str",  # "ceiled", or "raw" where the selection benchmark has no ceiling
}
_NEEDED = ("model", "model_key", "layer", "layer_index", "layer_depth", "benchmark", "kind",
           "metric", "raw", "error", "ceiling", "ceiled", "convention", "status")
_METRIC_LABEL = {"spearman": "rho", "pearson": "r"}


@dataclasses.dataclass(frozen=True)
class RegionSpec:
    """A region of the card: which benchmark picks its layer, which ones are reported."""

    region: str
    selection: str
    reported: tuple[str, ...]

    def __post_init__(self):
        reported = (self.reported,) if isinstance(self.reported, str) else tuple(self.reported)
        if not reported:
            raise ValueError(f"region {self.region!r} reports no benchmarks")
        object.__setattr__(self, "reported", reported)


def commit_layers(rows: pd.DataFrame, regions: Sequence[RegionSpec]) -> pd.DataFrame:
    """One row per (model, region): the layer with the highest ceiled score (raw where the
    benchmark has no ceiling) among the ``status == "ok"`` rows of the selection benchmark
    with a finite score; ties go to the shallower layer.  Models without such rows get no
    row for the region (their card says why)."""
    _check_rows(rows)
    ok = rows[rows["status"] == "ok"]
    records = []
    for spec in regions:
        selection = ok[ok["benchmark"] == spec.selection]
        for model, group in selection.groupby("model", sort=True):
            by = "ceiled" if np.isfinite(group["ceiling"].to_numpy(float)).any() else "raw"
            best = _best_layer(group, by)
            if best is not None:
                records.append({
                    "model": model, "region": spec.region, "committed_layer": best["layer"],
                    "layer_index": best["layer_index"], "layer_depth": best["layer_depth"],
                    "selection_benchmark": spec.selection, "selection_score": best[by],
                    "selected_by": by,
                })
    return pd.DataFrame(records, columns=list(COMMITMENT_COLUMNS)).astype(COMMITMENT_COLUMNS)


def model_cards(
    rows: pd.DataFrame,
    commitments: pd.DataFrame,
    regions: Sequence[RegionSpec],
    protocol: Mapping | None = None,
) -> dict[str, dict]:
    """A JSON-ready card per model (missing numbers are None): per region the committed layer
    and its reported scores, the aggregates, the best layer on each benchmark of a target
    outside the brain regions (rows without a region, e.g. memorability), and the rank of
    ``neural_vision`` among the models (1 = best, ties share, missing ranks last).
    ``protocol``: how layers were committed (recorded in every card)."""
    _check_rows(rows)
    by_unit = {
        (r["model"], r["layer"], r["benchmark"]): r for r in rows.to_dict("records")
    }
    committed = {(c["model"], c["region"]): c for c in commitments.to_dict("records")}
    cards = {}
    for model in sorted(rows["model"].unique()):
        ours = rows[rows["model"] == model]
        warnings: list[str] = []
        entries, per_region = [], {}
        for spec in regions:
            commitment = committed.get((model, spec.region))
            if commitment is None:
                warnings.append(_uncommitted_reason(ours, spec))
                per_region[spec.region] = None
                continue
            layer = commitment["committed_layer"]
            scores = [
                _reported(by_unit.get((model, layer, name)), name, spec.region, layer, warnings)
                for name in spec.reported
            ]
            ceiled = [s["ceiled"] for s in scores]
            per_region[spec.region] = None if None in ceiled else float(np.mean(ceiled))
            entries.append({
                "region": spec.region, "committed_layer": layer,
                "layer_depth": _number(commitment["layer_depth"]),
                "selection_benchmark": spec.selection,
                "selection_score": _number(commitment["selection_score"]),
                "selected_by": commitment["selected_by"], "benchmarks": scores,
            })
        values = list(per_region.values())
        neural_vision = float(np.mean(values)) if values and None not in values else None
        cards[model] = {
            "model": model,
            "model_key": str(ours["model_key"].iloc[0]),
            "regions": entries,
            "aggregates": {"neural_vision": neural_vision, "per_region": per_region},
            "other": _best_of_targets(ours, warnings),
            "warnings": warnings,
            "protocol": dict(protocol or {}),
        }
    aggregates = pd.Series({m: c["aggregates"]["neural_vision"] for m, c in cards.items()})
    ranks = aggregates.astype(float).rank(method="min", ascending=False, na_option="bottom")
    for model, card in cards.items():
        card.update(rank=int(ranks[model]), n_models=len(cards))
    _rank_benchmarks(cards)
    return cards


def _rank_benchmarks(cards: Mapping[str, dict]) -> None:
    """Each reported score's rank among the models' scores on that benchmark (1 = best)."""
    scores = [score for card in cards.values() for region in card["regions"]
              for score in region["benchmarks"]]
    for name in {score["benchmark"] for score in scores}:
        mine = [score for score in scores if score["benchmark"] == name]
        values = pd.Series([s["ceiled"] for s in mine], dtype=float)
        ranks = values.rank(method="min", ascending=False, na_option="bottom")
        for score, rank in zip(mine, ranks, strict=True):
            score["rank"] = None if score["ceiled"] is None else int(rank)


def write_model_cards(cards: Mapping[str, dict], out_dir: str | Path) -> list[Path]:
    """``out_dir/<model>.json`` and ``out_dir/<model>.md`` per card, each written atomically;
    model names are made safe as file names (two names made equal are an error)."""
    out_dir = Path(out_dir)
    names = {model: safe_file_name(model) for model in cards}
    clashes = sorted(m for m in names if list(names.values()).count(names[m]) > 1)
    if clashes:
        raise ValueError(f"models {clashes} would share a card file name; rename one of them")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for model in sorted(cards):
        text = json.dumps(cards[model], indent=2, allow_nan=False, ensure_ascii=False) + "\n"
        paths.append(atomic_write(out_dir / f"{names[model]}.json", text.encode()))
        markdown = card_markdown(cards[model])
        paths.append(atomic_write(out_dir / f"{names[model]}.md", markdown.encode()))
    return paths


def safe_file_name(model: str) -> str:
    """``model`` with every run of characters other than letters, digits, ``.``, ``_``, ``-``
    replaced by ``_`` and no leading dot (so no path separators and no hidden files)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).lstrip(".") or "_"


def leaderboard(cards: Mapping[str, dict]) -> pd.DataFrame:
    """One row per model, best first: model, rank, neural_vision, one column per region."""
    regions: list[str] = []
    for card in cards.values():
        regions += [r for r in card["aggregates"]["per_region"] if r not in regions]
    table = pd.DataFrame(
        [
            {"model": card["model"], "rank": card["rank"],
             "neural_vision": card["aggregates"]["neural_vision"],
             **{r: card["aggregates"]["per_region"].get(r) for r in regions}}
            for card in cards.values()
        ],
        columns=["model", "rank", "neural_vision", *regions],
    )
    table = table.astype({"model": "str", "rank": "int64"} | dict.fromkeys(
        ["neural_vision", *regions], "float64"))
    return table.sort_values(["rank", "model"], kind="stable").reset_index(drop=True)


def card_markdown(card: dict) -> str:
    """The card as a Brain-Score-style model page."""
    nv = card["aggregates"]["neural_vision"]
    lines = [
        f"# {card['model']}", "",
        f"**Rank {card['rank']} of {card['n_models']}** · neural vision score **{_fmt(nv)}** "
        "(mean over regions of the mean ceiled score of each region's reported benchmarks, "
        "at the region's committed layer)", "",
        f"Model key: `{card['model_key']}`", "",
        "## Neural benchmarks", "",
    ]
    conventions: dict[str, list[str]] = {}
    for region in card["regions"]:
        for score in region["benchmarks"]:
            if score["convention"]:
                conventions.setdefault(score["convention"], []).append(score["benchmark"])
    stated = [CONVENTION_TEXT.get(c, f"ceiled by convention {c!r}") for c in conventions]
    if len(stated) == 1:
        lines += [f"Ceiled score: {stated[0]}.", ""]
    elif stated:
        lines += ["Ceiled scores: " + "; ".join(
            f"{text} for {', '.join(names)}"
            for text, names in zip(stated, conventions.values(), strict=True)
        ) + ".", ""]
    n_models = card["n_models"]
    lines += ["| region / benchmark | version | visual angle | sites | raw ± error | ceiling "
              "| ceiled | rank |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for region in card["regions"]:
        lines.append(f"| **{region['region']}** |  |  |  |  |  | "
                     f"**{_fmt(card['aggregates']['per_region'].get(region['region']))}** |  |")
        for score in region["benchmarks"]:
            name = _cell(score["benchmark"])
            if score["status"] != "ok":
                name += f" ({_cell(score['status'])})"
            degrees, rank = score.get("visual_degrees"), score.get("rank")
            angle = "—" if degrees is None else f"{degrees:g}°"
            ranked = "—" if rank is None else f"{rank} of {n_models}"
            lines.append(
                f"| {name} | {score.get('version') or '—'} | {angle} | "
                f"{score.get('n_sites') or '—'} | {_pm(score['raw'], score['error'])} | "
                f"{_fmt(score['ceiling'])} | {_fmt(score['ceiled'])} | {ranked} |")
    lines += ["", "## Layer commitment", ""]
    if card.get("protocol", {}).get("description"):
        lines += [f"{card['protocol']['description'][0].upper()}"
                  f"{card['protocol']['description'][1:]}.", ""]
    lines += ["| region | committed layer (depth) | selection benchmark | selection score |",
              "| --- | --- | --- | --- |"]
    lines += [
        f"| {r['region']} | {_cell(r['committed_layer'])} ({_fmt(r['layer_depth'])}) | "
        f"{_cell(r['selection_benchmark'])} | {r['selected_by']} {_fmt(r['selection_score'])} |"
        for r in card["regions"]
    ]
    lines += ["", "| region | score |", "| --- | --- |"]
    lines += [f"| {region} | {_fmt(value)} |"
              for region, value in card["aggregates"]["per_region"].items()]
    lines += [f"| **neural vision** | **{_fmt(nv)}** |", ""]
    if card["other"]:
        lines += ["## Other benchmarks", "",
                  "| kind | benchmark | best layer (depth) | score ± error |",
                  "| --- | --- | --- | --- |"]
        lines += [
            f"| {o['kind']} | {_cell(o['benchmark'])} | {_cell(o['layer'])} "
            f"({_fmt(o['layer_depth'])}) | {_METRIC_LABEL.get(o['metric'], o['metric'])} "
            f"{_pm(o['raw'], o['error'])} |"
            for o in card["other"]
        ]
        lines.append("")
    if card["warnings"]:
        lines += ["## Warnings", ""] + [f"- {w}" for w in card["warnings"]] + [""]
    return "\n".join(lines)


def _check_rows(rows: pd.DataFrame) -> None:
    missing = [c for c in _NEEDED if c not in rows.columns]
    if missing:
        raise ValueError(f"result rows lack columns {missing}")
    repeated = rows[rows.duplicated(["model", "layer", "benchmark"], keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        raise ValueError(
            f"{len(repeated)} rows share (model, layer, benchmark), e.g. ({first['model']!r}, "
            f"{first['layer']!r}, {first['benchmark']!r}): select one configuration (reduction, "
            "options) and drop stale units before committing layers"
        )
    keys = rows.groupby("model")["model_key"].nunique()
    if (keys > 1).any():
        raise ValueError(
            f"models {sorted(keys[keys > 1].index)} have rows of several model_keys (weights); "
            "keep one per model name"
        )


def _best_layer(group: pd.DataFrame, column: str) -> pd.Series | None:
    """The row with the highest finite ``column``; ties to the lowest layer_index."""
    scores = group[column].to_numpy(float)
    finite = np.isfinite(scores)
    if not finite.any():
        return None
    top = group[finite & (scores == scores[finite].max())]
    return top.sort_values(["layer_index", "layer"], kind="stable").iloc[0]


def _reported(row, benchmark: str, region: str, layer: str, warnings: list[str]) -> dict:
    if row is None:
        warnings.append(f"{region}: no {benchmark} row for committed layer {layer}")
        return {"benchmark": benchmark, "version": None, "visual_degrees": None,
                "n_sites": None, "raw": None, "error": None, "ceiling": None,
                "ceiled": None, "convention": "", "status": "missing"}
    options = json.loads(row.get("options") or "{}")
    sites = row.get("n_neuroids")
    score = {
        "benchmark": benchmark, "version": options.get("version"),
        "visual_degrees": options.get("visual_degrees"),
        "n_sites": None if sites is None or pd.isna(sites) else int(sites),
        "raw": _number(row["raw"]), "error": _number(row["error"]),
        "ceiling": _number(row["ceiling"]), "ceiled": _number(row["ceiled"]),
        "convention": row["convention"], "status": row["status"],
    }
    if row["status"] != "ok":
        warnings.append(f"{region}: {benchmark} at committed layer {layer} is {row['status']}")
    elif score["ceiled"] is None:
        warnings.append(f"{region}: {benchmark} at committed layer {layer} has no ceiled score")
    return score


def _uncommitted_reason(rows: pd.DataFrame, spec: RegionSpec) -> str:
    selection = rows[rows["benchmark"] == spec.selection]
    if selection.empty:
        return f"{spec.region}: no layer committed, the model has no {spec.selection} rows"
    return (f"{spec.region}: no layer committed, none of its {len(selection)} "
            f"{spec.selection} rows is ok with a finite score")


def is_target(rows: pd.DataFrame) -> pd.Series:
    """Rows of benchmarks that score a target outside the brain regions (no region): they
    take no part in layer commitment, and their best layer is reported."""
    return rows["region"].fillna("").eq("")


def _best_of_targets(rows: pd.DataFrame, warnings: list[str]) -> list[dict]:
    best = []
    extra = rows[is_target(rows)]
    for benchmark, group in extra.groupby("benchmark", sort=True):
        row = _best_layer(group[group["status"] == "ok"], "raw")
        if row is None:
            warnings.append(f"{benchmark}: no ok layer with a finite score")
            continue
        best.append({
            "benchmark": benchmark, "kind": row["kind"], "metric": row["metric"],
            "layer": row["layer"], "layer_depth": _number(row["layer_depth"]),
            "raw": _number(row["raw"]), "error": _number(row["error"]),
        })
    return best


def _number(value) -> float | None:
    """A JSON-ready float: NaN, NA and None become None."""
    return None if value is None or pd.isna(value) else float(value)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _pm(value: float | None, error: float | None) -> str:
    return _fmt(value) if value is None or error is None else f"{value:.3f} ± {error:.3f}"


def _cell(text: str) -> str:
    return str(text).replace("|", r"\|")
