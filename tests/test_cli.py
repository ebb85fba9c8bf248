"""``python -m jaxbrain score``: outputs, overrides, and one clear error per bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxbrain.cli import main
from tests.benchmarks.test_neural import N_STIM, recordings, write_recordings
from tests.data.test_brainscore_io import write_like_brainio


@pytest.fixture
def files(tmp_path, rng):
    nc, ids, good = write_recordings(tmp_path, rng, 10)
    acts = tmp_path / "acts.npz"
    order = rng.permutation(N_STIM)
    layers = {f"layer{k}": rng.standard_normal((N_STIM, 2, 3)) for k in range(3)}
    np.savez(acts, stimulus_id=ids[order], good=good[order], **layers)
    return tmp_path, nc, acts, ids, good, order


def run(tmp_path, nc, acts, *extra, out="scores.json"):
    argv = ["score", "--activations", str(acts), "--assembly", str(nc),
            "--benchmark", "MajajHong2015.IT-pls", "--out", str(tmp_path / out),
            "--components", "4", *extra]
    return main(argv)


def test_scores_every_layer_with_options_and_version(files, capsys):
    tmp_path, nc, acts, *_ = files
    assert run(tmp_path, nc, acts) == 0
    result = json.loads((tmp_path / "scores.json").read_text())
    assert set(result["layers"]) == {"good", "layer0", "layer1", "layer2"}
    good = result["layers"]["good"]
    assert good["raw"] > 0.5 and len(good["per_split"]) == 10
    assert set(good["ceiled_by_convention"]) == {"v1", "v3", "v4"}
    assert good["convention"] == "v4"
    assert {"ceiling", "ceiling_error"} <= set(result["ceiling"])
    assert result["benchmark"]["n_components"] == 4 and result["jaxbrain_version"]
    # per-neuroid values by neuroid_id: the 6 IT sites of the recordings
    assert list(good["per_neuroid"]) == [f"n{i}" for i in range(6)]
    assert np.median(list(good["per_neuroid"].values())) > 0.5


def test_overrides(files):
    tmp_path, nc, acts, *_ = files
    assert run(tmp_path, nc, acts, "--mapping", "ridge", "--splits", "3", "--convention", "v3",
               "--stratification", "none", "--seed", "2") == 0
    result = json.loads((tmp_path / "scores.json").read_text())
    options = result["benchmark"]
    assert (options["mapping"], options["n_splits"], options["convention"],
            options["stratification_coord"], options["seed"]) == ("ridge", 3, "v3", None, 2)
    assert len(result["layers"]["good"]["per_split"]) == 3


def _rewrite(acts, **changes):
    with np.load(acts) as archive:
        arrays = dict(archive)
    arrays.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del arrays[key]
    np.savez(acts, **arrays)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda a, ids, good, order: _rewrite(a, stimulus_id=np.array(
            [*ids[order][:-1], "ghost"])), "stimulus_id mismatch"),
        (lambda a, ids, good, order: _rewrite(a, good=np.where(good[order] > 2, np.nan,
                                                               good[order])), "NaN"),
        (lambda a, ids, good, order: _rewrite(a, good=np.ones((N_STIM, 4))),
         "every feature is constant"),
        (lambda a, ids, good, order: _rewrite(a, stimulus_id=None), "no 'stimulus_id' array"),
    ],
)
def test_bad_activations_exit_2_and_write_nothing(files, capsys, mutate, message):
    tmp_path, nc, acts, ids, good, order = files
    mutate(acts, ids, good, order)
    (tmp_path / "old.json").write_text("previous results")
    assert run(tmp_path, nc, acts, out="old.json") == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "old.json").read_text() == "previous results"
    assert not list(tmp_path.glob(".old.json.*"))


def test_bad_assembly_and_benchmark(files, capsys, rng):
    tmp_path, nc, acts, *_ = files
    truncated = tmp_path / "cut.nc"
    truncated.write_bytes(nc.read_bytes()[:100])
    assert run(tmp_path, truncated, acts) == 2
    assert "cannot read as NetCDF" in capsys.readouterr().err
    argv = ["score", "--activations", str(acts), "--assembly", str(nc), "--benchmark",
            "MajajHong2015.IT-plz", "--out", str(tmp_path / "x.json")]
    assert main(argv) == 2
    assert "did you mean" in capsys.readouterr().err
    # one presentation per stimulus: a ceiling is impossible, raw scores are not
    single = tmp_path / "single.nc"
    assembly, _ = recordings(rng, rng.standard_normal((N_STIM, 3)))
    write_like_brainio(assembly.isel(presentation=slice(0, N_STIM)), single)
    assert run(tmp_path, single, acts) == 2
    assert "ceiling needs repetitions" in capsys.readouterr().err
    assert run(tmp_path, single, acts, "--no-ceiling") == 0
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_module_entry_point(files):
    tmp_path, nc, acts, *_ = files
    proc = subprocess.run(
        [sys.executable, "-m", "jaxbrain", "score", "--activations", str(acts), "--assembly",
         str(nc), "--benchmark", "MajajHong2015.IT-ridg", "--out", str(tmp_path / "o.json")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "MajajHong2015.IT-ridge" in proc.stderr


@pytest.mark.slow
def test_console_script_is_installed():
    script = Path(sys.executable).parent / "jaxbrain"
    proc = subprocess.run([str(script), "score", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--activations" in proc.stdout
