"""The sweep report: every figure is a readable PNG and report.md / index.html tell the story."""

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg

from jaxbrain.engine import report
from jaxbrain.engine.report import (
    MAX_TICKS,
    plot_cka_heatmaps,
    plot_layer_curves,
    plot_leaderboard,
    safe_name,
    write_report,
)

CEILING = 0.8
# model -> (number of layers, regions it was scored on); resnet lacks V2, the last one is deep.
MODELS = {
    "alexnet": (12, ("V1", "V2", "V4", "IT")),
    "resnet18/imagenet:v1": (12, ("V1", "V4", "IT")),
    "deepnet-120": (120, ("V1", "V2", "V4", "IT")),
}
PEAK = {"V1": 0.2, "V2": 0.35, "V4": 0.55, "IT": 0.85, "memorability": 0.9}


def _layer_names(model, n):
    return [f"{model.split('/')[0]}.block{i}.conv" for i in range(n)]


def _row(model, layer, index, n, bench, kind, region, metric, raw, ceiling):
    return {
        "model": model, "layer": layer, "layer_index": index, "layer_depth": index / (n - 1),
        "benchmark": bench, "kind": kind, "region": region, "metric": metric, "raw": raw,
        "error": 0.02, "ceiling": ceiling,
        "ceiled": raw**2 / ceiling if np.isfinite(ceiling) else np.nan, "status": "ok",
    }


def _fake():
    """Bell-shaped layer curves peaking at each region's depth, one NaN and one skipped row."""
    rng = np.random.default_rng(0)
    rows = []
    for m, (model, (n, regions)) in enumerate(MODELS.items()):
        for i, layer in enumerate(_layer_names(model, n)):
            depth = i / (n - 1)
            for r, region in enumerate(regions):
                base = 0.7 - 0.1 * ((m + r) % 3) - 0.6 * (depth - PEAK[region]) ** 2
                rows.append(_row(model, layer, i, n, f"Synthetic.{region}-pls", "neural", region,
                                 "pls", base + 0.02 * rng.standard_normal(), CEILING))
                if region == "IT":
                    rows.append(_row(model, layer, i, n, "Synthetic.IT-cka", "neural", region,
                                     "cka", base - 0.1, np.nan))
            mem = 0.5 - (depth - PEAK["memorability"]) ** 2 - 0.05 * m
            rows.append(_row(model, layer, i, n, "Synthetic.memorability", "memorability", "",
                             "spearman", mem, np.nan))
    rows = pd.DataFrame(rows)
    v1 = (rows["model"] == "alexnet") & (rows["benchmark"] == "Synthetic.V1-pls")
    rows.loc[v1 & (rows["layer_index"] == 3), ["raw", "ceiled"]] = np.nan
    rows.loc[v1 & (rows["layer_index"] == 7), ["raw", "ceiled", "status"]] = [
        np.nan, np.nan, "skipped: too few neuroids"]
    return rows


def _commit(rows):
    """Per (model, region) the layer with the best ceiled -pls score."""
    pls = rows[rows["benchmark"].str.endswith("-pls") & rows["ceiled"].notna()]
    best = pls.loc[pls.groupby(["model", "region"], sort=False)["ceiled"].idxmax()]
    return pd.DataFrame({
        "model": best["model"], "region": best["region"], "committed_layer": best["layer"],
        "layer_index": best["layer_index"], "layer_depth": best["layer_depth"],
        "selection_benchmark": best["benchmark"], "selection_score": best["ceiled"],
    }).reset_index(drop=True)


def _board(commitments):
    wide = commitments.pivot(index="model", columns="region", values="selection_score")
    wide = wide.reindex(columns=["V1", "V2", "V4", "IT"]).reset_index()
    wide["neural_vision"] = wide[["V1", "V2", "V4", "IT"]].mean(axis=1)
    wide["rank"] = wide["neural_vision"].rank(ascending=False, method="first").astype(int)
    return wide.sort_values("rank").reset_index(drop=True)


def _cka():
    a = _layer_names("alexnet", 12)
    r = _layer_names("resnet18/imagenet:v1", 12)
    d = _layer_names("deepnet-120", 120)
    ia, idd = np.linspace(0, 1, 12), np.linspace(0, 1, 120)
    return {
        ("alexnet", "resnet18/imagenet:v1"): (a, r, np.exp(-4 * np.subtract.outer(ia, ia) ** 2)),
        ("deepnet-120", "alexnet"): (d, a, np.exp(-4 * np.subtract.outer(idd, ia) ** 2)),
    }


@pytest.fixture(scope="module")
def data():
    rows = _fake()
    commitments = _commit(rows)
    return rows, commitments, _board(commitments)


def _assert_png(path, min_size=200):
    assert path.is_file()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    assert min(pixels.shape[:2]) >= min_size
    assert pixels[..., :3].std() > 0.05  # something was drawn


def test_layer_curves_one_readable_png_per_model(data, tmp_path):
    rows, commitments, _ = data
    paths = plot_layer_curves(rows, commitments, tmp_path / "figs")
    assert len(paths) == len(MODELS)
    for path, model in zip(paths, MODELS, strict=True):
        assert path.parent == tmp_path / "figs"
        assert not re.search(r"[/:\s]", path.name)
        assert path.name.startswith(f"layers_{safe_name(model)}")
        _assert_png(path)


def test_layer_curves_model_with_one_region_and_no_commitments(data, tmp_path):
    rows, commitments, _ = data
    only_it = rows[(rows["model"] == "alexnet") & (rows["region"] == "IT")]
    (path,) = plot_layer_curves(only_it, commitments.iloc[:0], tmp_path)
    _assert_png(path)


def test_panels_follow_region_order_then_memorability(data):
    rows, _, _ = data
    panels = report._panels(rows[rows["model"] == "resnet18/imagenet:v1"].iloc[::-1])
    assert [(name, committed) for name, _, committed in panels] == [
        ("V1", True), ("V4", True), ("IT", True), ("memorability", False)]


def test_series_bands_carry_the_error_through_the_ceiling(data):
    rows, _, _ = data
    pls = rows[(rows["model"] == "alexnet") & (rows["benchmark"] == "Synthetic.V1-pls")]
    layers, x, y, ceiled, band = report._series(pls.iloc[::-1])
    assert ceiled and list(layers) == list(pls["layer"])
    assert np.all(np.diff(x) > 0)
    ok = np.isfinite(y)
    raw = pls["raw"].to_numpy()
    np.testing.assert_allclose(y[ok], raw[ok] ** 2 / CEILING)
    np.testing.assert_allclose(band[ok], 0.02 * 2 * np.abs(raw[ok]) / CEILING)
    assert not ok[3] and not ok[7] and ok.sum() == 10  # the NaN and the skipped row are left out

    cka = rows[(rows["model"] == "alexnet") & (rows["benchmark"] == "Synthetic.IT-cka")]
    _, _, y, ceiled, band = report._series(cka)
    assert not ceiled
    np.testing.assert_allclose(y, cka["raw"])
    np.testing.assert_allclose(band, 0.02)


def test_cka_heatmaps_thin_ticks_for_deep_models(tmp_path):
    maps = _cka()
    paths = plot_cka_heatmaps(maps, tmp_path)
    assert len(paths) == len(maps)
    for path in paths:
        _assert_png(path, min_size=500)
    layers = _layer_names("deepnet-120", 120)
    m = np.random.default_rng(0).uniform(size=(120, 120))
    ax = report._cka_figure("deepnet-120", "deepnet-120", layers, layers, m).axes[0]
    for ticks in (ax.get_yticklabels(), ax.get_xticklabels()):
        names = [t.get_text() for t in ticks]
        assert 2 <= len(names) <= MAX_TICKS
        assert names[0] == layers[0] and names[-1] == layers[-1]
    small = report._cka_figure("a", "b", ["x", "y"], ["z"], np.ones((2, 1))).axes[0]
    assert [t.get_text() for t in small.get_yticklabels()] == ["x", "y"]


def test_cka_matrix_must_match_the_layers(tmp_path):
    with pytest.raises(ValueError, match="does not match"):
        plot_cka_heatmaps({("a", "b"): (["x"], ["y", "z"], np.ones((2, 2)))}, tmp_path)


def test_leaderboard_png_is_deterministic(data, tmp_path):
    _, _, board = data
    first = plot_leaderboard(board, tmp_path / "one")
    second = plot_leaderboard(board.iloc[::-1], tmp_path / "two")
    _assert_png(first)
    assert first.read_bytes() == second.read_bytes()


def test_write_report_tells_the_story(data, tmp_path):
    rows, commitments, board = data
    cards = {"alexnet": "# Model card: alexnet\n\n## Training\n\nImageNet, 90 epochs."}
    notes = ["4 stale rows from an older benchmark version were ignored."]
    path = write_report(tmp_path, rows=rows, commitments=commitments, leaderboard=board,
                        cka_maps=_cka(), title="Synthetic sweep", model_cards_md=cards,
                        notes=notes)
    assert path == tmp_path / "report.md"
    md = path.read_text()
    page = (tmp_path / "index.html").read_text()
    for text in (md, page):
        for model in MODELS:
            assert model in text
        for region in ("V1", "V2", "V4", "IT", "memorability"):
            assert region in text
        for layer in commitments["committed_layer"]:
            assert layer in text
        assert notes[0] in text
        assert "Model card: alexnet" in text
        assert str(tmp_path) not in text

    best = board.iloc[0]
    summary = md.split("## Leaderboard")[0]
    assert f"`{best['model']}` ranks first of 3 models" in summary
    assert f"{best['neural_vision']:.3f}" in summary
    it = commitments[commitments["region"] == "IT"].sort_values("selection_score").iloc[-1]
    assert f"IT `{it['model']}` at `{it['committed_layer']}`" in summary
    mem = rows[rows["kind"] == "memorability"].sort_values("raw").iloc[-1]
    assert f"`{mem['layer']}` of `{mem['model']}`" in summary
    assert "#### Model card: alexnet" in md  # card headings nest under the model's heading
    assert "2 (model, layer, benchmark) rows were skipped" in md

    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert images == re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == 1 + len(MODELS) + 2
    for image in images:
        assert image.startswith("figures/") and image.endswith(".png")
        _assert_png(tmp_path / image)
    assert "## Layer-to-layer CKA" in md
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    assert not [p for p in tmp_path.rglob(".*")]  # no temp files left behind


def test_write_report_without_cka_or_cards(data, tmp_path):
    rows, commitments, board = data
    path = write_report(tmp_path, rows=rows, commitments=commitments, leaderboard=board,
                        cka_maps={}, title="Sweep")
    md = path.read_text()
    assert "CKA" not in md.replace("-cka", "")
    assert not list((tmp_path / "figures").glob("cka_*"))
    assert "Model card" not in md


def test_safe_names_are_distinct_and_plain():
    names = ["resnet18/imagenet:v1", "resnet18:imagenet/v1", "alexnet", "../x"]
    safe = [safe_name(n) for n in names]
    assert len(set(safe)) == len(names)
    assert safe[2] == "alexnet"
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", s) for s in safe)
