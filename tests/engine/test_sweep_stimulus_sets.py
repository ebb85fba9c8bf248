"""One sweep over benchmarks on different stimulus sets: Brain-Score's V1/V2 (texture stimuli
at 4°) and V4/IT (HvM images at 8°) benchmarks, public and private, each on its own data.

The data are stand-ins written from the synthetic suite in Brain-Score's layout and
registered in a user catalog that replaces the built-in entries by local copies (as a lab
holding Brain-Score's files would); the benchmarks then fetch them by name.
"""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    """Brain-Score-layout stand-ins: the suite's first 20 images of each object are the public
    sets, the last 20 the private ones; HvM-like sets carry V4/IT, texture-like ones V1/V2
    (stratified by ``texture_type``)."""
    root = tmp_path_factory.mktemp("brainscore_like")
    suite = root / "suite"
    write_suite(suite)
    table = pd.read_csv(suite / "stimuli" / "stimuli.csv")
    position = table.groupby("object_name").cumcount()
    recordings = read_assembly(suite / "neural.nc")
    entries = []
    for access, rows in (("public", position < 20), ("private", position >= 20)):
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
            entries += [
                {"identifier": stimulus_set, "kind": "stimulus_set", "replaces": True,
                 "files": {"csv": _file(folder / "stimuli.csv"),
                           "images": {**_file(folder / "images.zip"), "members": len(subset)}}},
                {"identifier": assembly, "kind": "assembly", "replaces": True,
                 "stimulus_set": stimulus_set,
                 "files": {"assembly": _file(folder / "assembly.nc")}},
            ]
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
    # V4 and IT are scored at the degrees their recordings were generated at: the generating
    # blocks are committed
    assert (regions["V4"]["committed_layer"], regions["IT"]["committed_layer"]) == (
        "block3", "block4")
    report = (out / "report.md").read_text()
    assert "hvm-public at 8°" in report and "FreemanZiemba2013.aperture-private at 4°" in report

    again = run_sweep(spec)
    assert again["computed"] == 0
    pd.testing.assert_frame_equal(_scores(out), rows)


def test_benchmark_without_stimuli_needs_the_sweeps(catalog, tmp_path, monkeypatch):
    from tests.data.test_lamem import write_lamem

    monkeypatch.setenv("JAXBRAIN_CATALOG", str(catalog))
    lamem = write_lamem(tmp_path / "lamem", [f"{i}.jpg" for i in range(10)], np.linspace(0, 1, 10))
    spec = SweepSpec(models=MODELS, benchmarks=("MajajHong2015public.IT-pls",
                                                "Synthetic.memorability"),
                     output_dir=str(tmp_path / "out"), lamem=str(lamem))
    with pytest.raises(ValueError, match="Synthetic.memorability"):
        run_sweep(spec)


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
