"""One sweep over benchmarks on different stimulus sets: Brain-Score's V1/V2 (texture stimuli
at 4°) and V4/IT (HvM images at 8°) benchmarks, public and private, each on its own data.

The data are stand-ins written from the synthetic suite in Brain-Score's layout and
registered in a user catalog that replaces the built-in entries by local copies (as a lab
holding Brain-Score's files would); the benchmarks then fetch them by name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jaxbrain.data import read_assembly, write_assembly
from jaxbrain.data.synthetic import write_suite
from jaxbrain.engine.store import ResultsStore
from jaxbrain.engine.sweep import SweepSpec, run_sweep

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ("FreemanZiemba2013public.V1-pls", "FreemanZiemba2013public.V2-pls",
              "MajajHong2015public.V4-pls", "MajajHong2015public.IT-pls",
              "FreemanZiemba2013.V1-pls", "FreemanZiemba2013.V2-pls",
              "MajajHong2015.V4-pls", "MajajHong2015.IT-pls")
MODELS = ("synthetic_hidden", "alexnet_tiny")


def _sha1(path: Path) -> str:
    return "sha1:" + hashlib.sha1(path.read_bytes()).hexdigest()


def _file(path: Path) -> dict:
    return {"path": str(path), "checksum": _sha1(path)}


def write_standins(root: Path, per_object: int = 20, private: bool = True,
                   n_classes: int | None = None) -> dict[str, tuple[str, dict[str, Path]]]:
    """Brain-Score-layout stand-ins written from the synthetic suite: per catalog identifier,
    its kind and files by role. The first ``per_object`` images of each object are the public
    sets, the next ``per_object`` the private ones; HvM-like sets carry V4/IT, texture-like
    ones V1/V2 (stratified by ``texture_type``). ``n_classes``: objects merged into that many
    stratification classes (small sets still split)."""
    suite = root / "suite"
    write_suite(suite)
    table = pd.read_csv(suite / "stimuli" / "stimuli.csv")
    position = table.groupby("object_name").cumcount()
    recordings = read_assembly(suite / "neural.nc")
    if n_classes is not None:
        def merged(names):
            return np.array([f"class{int(n.removeprefix('object')) % n_classes}" for n in names])

        table["object_name"] = merged(table["object_name"])
        recordings = recordings.assign_coords(
            object_name=("presentation", merged(recordings["object_name"].values)))
    parts = [("public", position < per_object)]
    if private:
        parts.append(("private", (position >= per_object) & (position < 2 * per_object)))
    written = {}
    for access, rows in parts:
        subset = table[rows]
        for kind, regions, stimulus_set, assembly in (
                ("hvm", ("V4", "IT"), f"hvm-{access}", f"MajajHong2015.{access}"),
                ("fz", ("V1", "V2"), f"FreemanZiemba2013.aperture-{access}",
                 f"FreemanZiemba2013.{access}")):
            folder = root / f"{kind}-{access}"
            folder.mkdir()
            csv = subset.assign(texture_type=subset["object_name"])
            csv.to_csv(folder / "stimuli.csv", index=False)
            with zipfile.ZipFile(folder / "images.zip", "w") as archive:
                for name in subset["filename"]:
                    archive.write(suite / "stimuli" / "images" / name, name)
            keep = np.isin(recordings["stimulus_id"].values, subset["stimulus_id"])
            region = np.isin(recordings["region"].values, regions)
            part = recordings.isel(presentation=keep, neuroid=region)
            part = part.assign_coords(texture_type=("presentation", part["object_name"].values))
            write_assembly(part, folder / "assembly.nc")
            written[stimulus_set] = ("stimulus_set", {"csv": folder / "stimuli.csv",
                                                      "images": folder / "images.zip"})
            written[assembly] = ("assembly", {"assembly": folder / "assembly.nc"})
    return written


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    """The stand-ins as local copies replacing the built-in entries."""
    root = tmp_path_factory.mktemp("brainscore_like")
    entries = [{"identifier": name, "kind": kind, "replaces": True,
                "files": {role: _file(path) for role, path in files.items()}}
               for name, (kind, files) in write_standins(root).items()]
    path = root / "catalog.json"
    path.write_text(json.dumps({"format": "jaxbrain-catalog/1", "entries": entries}))
    return path


def _scores(out) -> pd.DataFrame:
    rows = ResultsStore(Path(out) / "results").rows()
    return rows.drop(columns=["created"]).sort_values("unit_key").reset_index(drop=True)


def test_one_sweep_scores_each_benchmark_on_its_own_stimuli_and_commits(catalog, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("JAXBRAIN_CATALOG", str(catalog))
    out = tmp_path / "sweep"
    spec = SweepSpec(models=MODELS, benchmarks=BENCHMARKS, output_dir=str(out),
                     projection_dims=256, batch_size=64, cka=False)
    summary = run_sweep(spec)
    rows = _scores(out)
    assert len(rows) == (4 + 23) * len(BENCHMARKS) == summary["computed"]
    assert (rows.loc[rows["model"] == "synthetic_hidden", "status"] == "ok").all()
    assert rows["status"].str.match("ok$|skipped: ").all()  # tiny AlexNet's dead-unit layers
    marker = json.loads((out / "models" / "synthetic_hidden.json").read_text())
    assert {(b["stimuli"], b["degrees"]) for b in marker["banks"]} == {
        ("hvm-public", 8.0), ("hvm-private", 8.0), ("FreemanZiemba2013.aperture-public", 4.0),
        ("FreemanZiemba2013.aperture-private", 4.0)}
    assert len({b["bank"] for b in marker["banks"]}) == 4  # one bank per stimulus set

    card = json.loads((out / "cards" / "synthetic_hidden.json").read_text())
    regions = {r["region"]: r for r in card["regions"]}
    assert set(regions) == {"V1", "V2", "V4", "IT"}
    assert regions["IT"]["selection_benchmark"] == "MajajHong2015public.IT-pls"
    assert [b["benchmark"] for b in regions["IT"]["benchmarks"]] == ["MajajHong2015.IT-pls"]
    assert [b["benchmark"] for b in regions["V1"]["benchmarks"]] == ["FreemanZiemba2013.V1-pls"]
    (v1,) = regions["V1"]["benchmarks"]
    (it,) = regions["IT"]["benchmarks"]
    assert (v1["version"], v1["visual_degrees"], v1["n_sites"]) == ("2", 4.0, 40)
    assert v1["rank"] in (1, 2)  # among the two models
    assert (it["version"], it["visual_degrees"], it["n_sites"]) == ("3", 8.0, 40)
    markdown = (out / "cards" / "synthetic_hidden.md").read_text()
    assert "| FreemanZiemba2013.V1-pls | 2 | 4° | 40 |" in markdown
    assert "| IT | block4 (1.000) | MajajHong2015public.IT-pls | ceiled " in markdown
    # V4 and IT are scored at the degrees their recordings were generated at: the generating
    # blocks are committed
    assert (regions["V4"]["committed_layer"], regions["IT"]["committed_layer"]) == (
        "block3", "block4")
    report = (out / "report.md").read_text()
    assert "hvm-public at 8°" in report and "FreemanZiemba2013.aperture-private at 4°" in report

    again = run_sweep(spec)
    assert again["computed"] == 0
    pd.testing.assert_frame_equal(_scores(out), rows)


def test_brainscore_protocol_commits_on_pca_selection_and_scores_finals_unreduced(
        catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXBRAIN_CATALOG", str(catalog))
    out = tmp_path / "protocol"
    spec = SweepSpec(models=MODELS, benchmarks=BENCHMARKS, output_dir=str(out),
                     protocol="brainscore", pca_components=50, batch_size=64, cka=False)
    run_sweep(spec)
    rows = _scores(out)
    alexnet = ["features.2", "features.5", "features.7", "features.9", "features.12",
               "classifier.2", "classifier.5"]
    for model, candidates in (("synthetic_hidden", ["block1", "block2", "block3", "block4"]),
                              ("alexnet_tiny", alexnet)):
        ours = rows[rows["model"] == model]
        card = json.loads((out / "cards" / f"{model}.json").read_text())
        assert card["protocol"]["name"] == "brainscore"
        committed = {r["region"]: r["committed_layer"] for r in card["regions"]}
        assert set(committed) == {"V1", "V2", "V4", "IT"}
        for region, layer in committed.items():
            selection = ours[ours["benchmark"].str.contains(f"public.{region}-")]
            assert sorted(selection["layer"]) == sorted(candidates)  # every candidate
            assert selection["reduction"].str.contains('"method":"pca"', regex=False).all()
            final = ours[ours["benchmark"].str.fullmatch(f"[A-Za-z0-9]+2013.{region}-pls|"
                                                         f"MajajHong2015.{region}-pls")]
            assert list(final["layer"]) == [layer]  # only the committed layer, unreduced
            assert final["reduction"].str.contains('"method":"none"', regex=False).all()
            region_card = next(r for r in card["regions"] if r["region"] == region)
            assert region_card["benchmarks"][0]["ceiled"] == pytest.approx(
                float(final["ceiled"].iloc[0]))
        if model == "synthetic_hidden":
            assert (committed["V4"], committed["IT"]) == ("block3", "block4")
    assert "LayerPCA(50) fitted on each stimulus set itself" in (out / "report.md").read_text()
    assert run_sweep(spec)["computed"] == 0  # resumes: the same commitments, nothing redone

    with pytest.raises(ValueError, match="add one for MajajHong2015.IT-pls"):
        run_sweep(SweepSpec(models=MODELS, benchmarks=("MajajHong2015.IT-pls",),
                            output_dir=str(tmp_path / "orphan"), protocol="brainscore"))


def test_brainscore_protocol_on_public_data_alone_reports_the_selection_unreduced(
        catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXBRAIN_CATALOG", str(catalog))
    out = tmp_path / "public"
    run_sweep(SweepSpec(models=("synthetic_hidden",), benchmarks=BENCHMARKS[:4],
                        output_dir=str(out), protocol="brainscore", pca_components=50,
                        cka=False))
    rows = _scores(out)
    card = json.loads((out / "cards" / "synthetic_hidden.json").read_text())
    for region in card["regions"]:
        (score,) = region["benchmarks"]
        assert score["benchmark"] == region["selection_benchmark"]
        unreduced = rows[(rows["benchmark"] == score["benchmark"])
                         & rows["reduction"].str.contains('"method":"none"', regex=False)]
        assert list(unreduced["layer"]) == [region["committed_layer"]]
        assert score["ceiled"] == pytest.approx(float(unreduced["ceiled"].iloc[0]))
    commitments = pd.read_csv(out / "tables" / "commitments.csv")
    assert len(commitments) == 4  # one per region, chosen on the PCA rows


def test_memorability_is_scored_on_its_own_images_and_a_benchmark_without_any_is_refused(
        catalog, tmp_path, monkeypatch):
    from PIL import Image

    from tests.data.test_lamem import write_lamem

    monkeypatch.setenv("JAXBRAIN_CATALOG", str(catalog))
    names = [f"{i:02d}.png" for i in range(12)]
    lamem = write_lamem(tmp_path / "lamem", names, np.linspace(0.2, 0.9, 12))
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(
            lamem / "images" / name)
    spec = SweepSpec(models=("alexnet_tiny",), benchmarks=("MajajHong2015public.IT-pls",
                                                           "Synthetic.memorability"),
                     output_dir=str(tmp_path / "out"), lamem=str(lamem), projection_dims=64,
                     cka=False)
    summary = run_sweep(spec)
    marker = json.loads((tmp_path / "out" / "models" / "alexnet_tiny.json").read_text())
    assert sorted(Path(b["stimuli"]).name for b in marker["banks"]) == ["hvm-public", "images"]
    rows = ResultsStore(tmp_path / "out" / "results").rows()
    memorability = rows[rows["benchmark"] == "Synthetic.memorability"]
    assert sorted(memorability["layer"]) == sorted(marker["layers"])
    early = memorability.sort_values("layer_index")["raw"].to_numpy(float)[:10]
    assert np.isfinite(early).all()  # (a random tiny network's last layers may be constant)
    assert summary["seconds"]["alexnet_tiny"]["scoring"] > 0
    # a benchmark whose data bring no images, with no stimuli given for the sweep: one error
    # naming it, before any model runs
    refused = dataclasses.replace(spec, benchmarks=("Synthetic.IT-pls",),
                                  assembly="MajajHong2015.public",
                                  output_dir=str(tmp_path / "refused"))
    with pytest.raises(ValueError, match="Synthetic.IT-pls names no stimuli"):
        run_sweep(refused)
    assert not (tmp_path / "refused" / "models").exists()


def _command(out):
    return [sys.executable, "-m", "experiments.sweep", f"--output_dir={out}",
            f"--models={','.join(MODELS)}", f"--benchmarks={','.join(BENCHMARKS)}",
            "--projection_dims=256", "--batch_size=64", "--nocka"]


@pytest.mark.slow
def test_kill_9_across_stimulus_sets_then_same_command_gives_the_uninterrupted_rows(
        catalog, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAXBRAIN_CATALOG": str(catalog)}
    env.pop("XLA_FLAGS", None)
    whole = tmp_path / "whole"
    subprocess.run(_command(whole), cwd=ROOT, env=env, check=True, capture_output=True)
    killed = tmp_path / "killed"
    process = subprocess.Popen(_command(killed), cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = killed / "results" / "rows"
    deadline = time.time() + 300
    while process.poll() is None and time.time() < deadline and \
            len(list(parts.glob("part-*.parquet")) if parts.exists() else []) < 10:
        time.sleep(0.02)  # killed in the middle of the second model's stimulus sets
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the sweep finished before it could be killed"
    assert not (killed / "report.md").exists()
    subprocess.run(_command(killed), cwd=ROOT, env=env, check=True, capture_output=True)
    pd.testing.assert_frame_equal(_scores(killed).drop(columns="model_key"),
                                  _scores(whole).drop(columns="model_key"))
    assert (killed / "cards" / "alexnet_tiny.md").exists()
