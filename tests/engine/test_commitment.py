"""Layer commitment and model cards on hand-made rows whose answers are known: ties to the
shallower layer, NaN and skipped rows ignored, selection ≠ reported benchmark, missing
regions, shared ranks, aggregates by hand, and card files."""

import json
import math

import pandas as pd
import pytest

from jaxbrain.engine.commitment import (
    RegionSpec,
    commit_layers,
    leaderboard,
    model_cards,
    safe_file_name,
    write_model_cards,
)
from jaxbrain.engine.store import ResultsStore, unit_key

V1_PUBLIC, V1 = "FreemanZiemba2013public.V1-pls", "FreemanZiemba2013.V1-pls"
IT_PUBLIC, IT = "MajajHong2015public.IT-pls", "MajajHong2015.IT-pls"
V4 = "Synthetic.V4-pls"
LAMEM = "LaMem-ridge"
REGIONS = (
    RegionSpec("V1", V1_PUBLIC, (V1,)),
    RegionSpec("IT", IT_PUBLIC, (IT,)),
    RegionSpec("V4", V4, (V4,)),  # synthetic: selected and reported on the same benchmark
)
NAN = math.nan


def row(model, index, benchmark, raw, ceiling=NAN, status="ok", kind="neural", n_layers=4):
    region = "" if kind != "neural" else benchmark.split(".")[1].split("-")[0]
    return {
        "model": model, "model_key": f"weights-of-{model}", "layer": f"{model[:2]}{index}",
        "layer_index": index, "layer_depth": index / (n_layers - 1), "benchmark": benchmark,
        "kind": kind, "region": region, "metric": "pls" if kind == "neural" else "spearman",
        "raw": raw, "error": 0.01, "ceiling": ceiling, "ceiled": raw**2 / ceiling,
        "convention": "" if math.isnan(ceiling) else "v4", "status": status,
    }


def scan(model, benchmark, raws, ceiling=NAN, **kw):
    return [row(model, i, benchmark, r, ceiling, **kw) for i, r in enumerate(raws)]


def example_rows() -> pd.DataFrame:
    """alexnet and resnet/18:imagenet tie exactly; cornet:z is third; tiny:random has no IT."""
    records = [
        # alexnet: V1 tie between layers 1 and 2 (listed deeper first) -> 1; IT: the NaN row
        # and the better but skipped row are ignored -> 3; V4 -> 1.
        row("alexnet", 2, V1_PUBLIC, 0.6, 0.9), row("alexnet", 0, V1_PUBLIC, 0.5, 0.9),
        row("alexnet", 1, V1_PUBLIC, 0.6, 0.9), row("alexnet", 3, V1_PUBLIC, 0.3, 0.9),
        *scan("alexnet", V1, [0.1, 0.55, 0.9, 0.9], 0.8),
        row("alexnet", 0, IT_PUBLIC, 0.2, 0.81), row("alexnet", 1, IT_PUBLIC, NAN, 0.81),
        row("alexnet", 2, IT_PUBLIC, 0.7, 0.81, status="skipped: too wide"),
        row("alexnet", 3, IT_PUBLIC, 0.5, 0.81),
        *scan("alexnet", IT, [0.9, 0.9, 0.9, 0.45], 0.81),
        *scan("alexnet", V4, [0.1, 0.4, 0.3, 0.2], 0.5),
        *scan("alexnet", LAMEM, [0.3, 0.5, 0.5, 0.4], kind="memorability"),
        # resnet: the same reported numbers at other layers; IT is a four-way tie -> 0.
        *scan("resnet/18:imagenet", V1_PUBLIC, [0.3, 0.4, 0.5, 0.7], 0.9),
        *scan("resnet/18:imagenet", V1, [0.9, 0.9, 0.9, 0.55], 0.8),
        *scan("resnet/18:imagenet", IT_PUBLIC, [0.6, 0.6, 0.6, 0.6], 0.81),
        *scan("resnet/18:imagenet", IT, [0.45, 0.9, 0.9, 0.9], 0.81),
        *scan("resnet/18:imagenet", V4, [0.4, 0.1, 0.1, 0.1], 0.5),
        # cornet: two layers, lower scores.
        *scan("cornet:z", V1_PUBLIC, [0.2, 0.3], 0.9, n_layers=2),
        *scan("cornet:z", V1, [0.2, 0.4], 0.8, n_layers=2),
        *scan("cornet:z", IT_PUBLIC, [0.4, 0.3], 0.81, n_layers=2),
        *scan("cornet:z", IT, [0.36, 0.1], 0.81, n_layers=2),
        *scan("cornet:z", V4, [0.2, 0.3], 0.5, n_layers=2),
        # tiny: no IT rows at all.
        *scan("tiny:random", V1_PUBLIC, [0.1, 0.2], 0.9, n_layers=2),
        *scan("tiny:random", V1, [0.1, 0.2], 0.8, n_layers=2),
        *scan("tiny:random", V4, [0.1, 0.2], 0.5, n_layers=2),
    ]
    return pd.DataFrame(records)


def committed(commitments) -> dict:
    return {(c.model, c.region): (c.committed_layer, c.selection_score)
            for c in commitments.itertuples()}


def test_commit_layers_picks_known_layers():
    got = commit_layers(example_rows(), REGIONS)
    assert list(got.columns) == ["model", "region", "committed_layer", "layer_index",
                                 "layer_depth", "selection_benchmark", "selection_score",
                                 "selected_by"]
    expected = {
        ("alexnet", "V1"): ("al1", 0.6**2 / 0.9),
        ("alexnet", "IT"): ("al3", 0.5**2 / 0.81),
        ("alexnet", "V4"): ("al1", 0.4**2 / 0.5),
        ("resnet/18:imagenet", "V1"): ("re3", 0.7**2 / 0.9),
        ("resnet/18:imagenet", "IT"): ("re0", 0.6**2 / 0.81),
        ("resnet/18:imagenet", "V4"): ("re0", 0.4**2 / 0.5),
        ("cornet:z", "V1"): ("co1", 0.3**2 / 0.9),
        ("cornet:z", "IT"): ("co0", 0.4**2 / 0.81),
        ("cornet:z", "V4"): ("co1", 0.3**2 / 0.5),
        ("tiny:random", "V1"): ("ti1", 0.2**2 / 0.9),
        ("tiny:random", "V4"): ("ti1", 0.2**2 / 0.5),
    }
    assert committed(got) == expected  # scores exactly: the stored ceiled values themselves
    assert set(got["selected_by"]) == {"ceiled"}
    alex_v1 = got[(got.model == "alexnet") & (got.region == "V1")].iloc[0]
    assert alex_v1.layer_index == 1 and alex_v1.layer_depth == pytest.approx(1 / 3)
    assert alex_v1.selection_benchmark == V1_PUBLIC


def test_raw_selects_without_ceiling_and_unscorable_regions_are_explained():
    rows = pd.DataFrame([
        *scan("m", "Synthetic.IT-cka", [0.2, 0.7, 0.7]),
        *scan("m", V1_PUBLIC, [NAN, NAN, 0.5], 0.9, status="skipped: constant features"),
        *scan("m", V1, [0.3, 0.3, 0.3], 0.8),
    ])
    regions = [RegionSpec("IT", "Synthetic.IT-cka", "Synthetic.IT-cka"),
               RegionSpec("V1", V1_PUBLIC, [V1])]
    got = commit_layers(rows, regions)
    assert committed(got) == {("m", "IT"): ("m1", 0.7)}
    assert got["selected_by"].tolist() == ["raw"]
    card = model_cards(rows, got, regions)["m"]
    assert card["aggregates"] == {"neural_vision": None, "per_region": {"IT": None, "V1": None}}
    assert card["warnings"] == [
        "IT: Synthetic.IT-cka at committed layer m1 has no ceiled score",
        "V1: no layer committed, none of its 3 FreemanZiemba2013public.V1-pls rows is ok "
        "with a finite score",
    ]


def test_model_cards_aggregates_ranks_and_other_kinds():
    rows = example_rows()
    cards = model_cards(rows, commit_layers(rows, REGIONS), REGIONS)
    assert sorted(cards) == ["alexnet", "cornet:z", "resnet/18:imagenet", "tiny:random"]
    alex = cards["alexnet"]
    per_region = {"V1": 0.55**2 / 0.8, "IT": 0.45**2 / 0.81, "V4": 0.4**2 / 0.5}
    assert alex["aggregates"]["per_region"] == pytest.approx(per_region)
    assert alex["aggregates"]["neural_vision"] == pytest.approx(sum(per_region.values()) / 3)
    cornet = {"V1": 0.4**2 / 0.8, "IT": 0.36**2 / 0.81, "V4": 0.3**2 / 0.5}
    assert cards["cornet:z"]["aggregates"]["neural_vision"] == pytest.approx(
        sum(cornet.values()) / 3)
    assert {m: (c["rank"], c["n_models"]) for m, c in cards.items()} == {
        "alexnet": (1, 4), "resnet/18:imagenet": (1, 4), "cornet:z": (3, 4),
        "tiny:random": (4, 4),
    }
    it = alex["regions"][1]
    assert it["region"] == "IT" and it["committed_layer"] == "al3"
    assert it["selection_benchmark"] == IT_PUBLIC and it["layer_depth"] == 1.0
    assert it["benchmarks"] == [{
        "benchmark": IT, "version": None, "visual_degrees": None, "n_sites": None,
        "raw": 0.45, "error": 0.01, "ceiling": 0.81, "ceiled": pytest.approx(0.25),
        "convention": "v4", "status": "ok", "rank": 1,  # best of the models on this benchmark
    }]
    assert alex["other"] == [{
        "benchmark": LAMEM, "kind": "memorability", "metric": "spearman", "layer": "al1",
        "layer_depth": pytest.approx(1 / 3), "raw": 0.5, "error": 0.01,
    }]
    assert alex["warnings"] == [] and cards["resnet/18:imagenet"]["other"] == []
    tiny = cards["tiny:random"]
    assert tiny["aggregates"]["neural_vision"] is None
    assert [r["region"] for r in tiny["regions"]] == ["V1", "V4"]
    assert tiny["warnings"] == [
        "IT: no layer committed, the model has no MajajHong2015public.IT-pls rows"]
    board = leaderboard(cards)
    assert list(board.columns) == ["model", "rank", "neural_vision", "V1", "IT", "V4"]
    assert board["model"].tolist() == ["alexnet", "resnet/18:imagenet", "cornet:z",
                                       "tiny:random"]
    assert board["rank"].tolist() == [1, 1, 3, 4]
    assert math.isnan(board.loc[3, "neural_vision"]) and math.isnan(board.loc[3, "IT"])
    assert board.loc[2, "IT"] == pytest.approx(cornet["IT"])


def test_missing_reported_row_is_a_warning_not_a_score():
    rows = example_rows()
    rows = rows[~((rows.model == "cornet:z") & (rows.benchmark == IT) & (rows.layer == "co0"))]
    cards = model_cards(rows, commit_layers(rows, REGIONS), REGIONS)
    cornet = cards["cornet:z"]
    assert cornet["aggregates"]["per_region"]["IT"] is None
    assert cornet["regions"][1]["benchmarks"][0]["status"] == "missing"
    assert cornet["warnings"] == ["IT: no MajajHong2015.IT-pls row for committed layer co0"]
    assert cornet["rank"] == 3 and cards["tiny:random"]["rank"] == 3  # both unranked


def test_duplicate_units_are_refused():
    rows = example_rows()
    with pytest.raises(ValueError, match=r"share \(model, layer, benchmark\).*stale"):
        commit_layers(pd.concat([rows, rows.iloc[:1]]), REGIONS)


def test_rows_from_the_store_commit_the_same(tmp_path):
    rows = example_rows()
    store = ResultsStore(tmp_path)
    store.write([
        r | {"unit_key": unit_key(model=r["model"], layer=r["layer"], benchmark=r["benchmark"]),
             "reduction": "none", "options": "{}"}
        for r in rows.to_dict("records")
    ])
    stored = store.rows()
    pd.testing.assert_frame_equal(commit_layers(stored, REGIONS), commit_layers(rows, REGIONS))
    assert model_cards(stored, commit_layers(stored, REGIONS), REGIONS) == model_cards(
        rows, commit_layers(rows, REGIONS), REGIONS)


def test_card_files(tmp_path):
    rows = example_rows()
    cards = model_cards(rows, commit_layers(rows, REGIONS), REGIONS)
    paths = write_model_cards(cards, tmp_path / "cards")
    assert sorted(p.name for p in paths) == sorted(
        f"{stem}.{ext}" for stem in ("alexnet", "cornet_z", "resnet_18_imagenet", "tiny_random")
        for ext in ("json", "md"))
    assert sorted(p.name for p in (tmp_path / "cards").iterdir()) == sorted(p.name for p in paths)
    for model, card in cards.items():
        path = tmp_path / "cards" / f"{safe_file_name(model)}.json"
        assert json.loads(path.read_text()) == card
    md = (tmp_path / "cards" / "alexnet.md").read_text()
    assert md.startswith("# alexnet\n") and "**Rank 1 of 4**" in md
    assert md.count("ceiled = raw²/ceiling (Brain-Score v4)") == 1
    assert f"| {IT} | — | — | — | 0.450 ± 0.010 | 0.810 | 0.250 | 1 of 4 |" in md
    assert f"| {V1} | — | — | — | 0.550 ± 0.010 | 0.800 | 0.378 | 1 of 4 |" in md
    assert f"| {V4} | — | — | — | 0.400 ± 0.010 | 0.500 | 0.320 |" in md
    assert "| **IT** |  |  |  |  |  | **0.250** |  |" in md
    assert f"| IT | al3 (1.000) | {IT_PUBLIC} | ceiled " in md
    assert f"| memorability | {LAMEM} | al1 (0.333) | rho 0.500 ± 0.010 |" in md
    assert "| **neural vision** | **0.316** |" in md
    tiny = (tmp_path / "cards" / "tiny_random.md").read_text()
    assert "**Rank 4 of 4** · neural vision score **—**" in tiny
    assert "no MajajHong2015public.IT-pls rows" in tiny
    with pytest.raises(ValueError, match="share a card file name"):
        write_model_cards({"a/b": cards["alexnet"], "a:b": cards["alexnet"]}, tmp_path / "x")
