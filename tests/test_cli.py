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


# --- hostile inputs (issue 13) -------------------------------------------------------------


@pytest.mark.parametrize("mapping", ["pls", "ridge"])
def test_float16_activations_score_as_float32_in_strict_json(files, mapping):
    """Half-precision activations are scored in float32 (and the output says so): the same
    numbers as the same values given as float32; narrow layers are skipped, not fatal; NaN
    (a constant neuroid) is written as null, which strict JSON parsers accept."""
    tmp_path, nc, _, ids, good, order = files
    half = good[order].astype(np.float16)
    np.savez(tmp_path / "half.npz", stimulus_id=ids[order], good=half,
             logits=half[:, :3], vector=half[:, 0])
    np.savez(tmp_path / "single.npz", stimulus_id=ids[order], good=half.astype(np.float32))
    assert run(tmp_path, nc, tmp_path / "half.npz", "--mapping", mapping, out="h.json") == 0
    assert run(tmp_path, nc, tmp_path / "single.npz", "--mapping", mapping, out="s.json") == 0
    text = (tmp_path / "h.json").read_text()
    half_result = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    single = json.loads((tmp_path / "s.json").read_text())
    assert "float32" in half_result["computed_in"]
    np.testing.assert_allclose(half_result["layers"]["good"]["per_split"],
                               single["layers"]["good"]["per_split"], atol=1e-6)
    if mapping == "pls":
        assert half_result["layers"]["logits"]["status"].startswith("skipped: 3 features")
        assert half_result["layers"]["vector"]["status"].startswith("skipped: 1 features")


def test_undefined_values_are_null(files, rng):
    """A neuroid with constant responses has an undefined r: null in the JSON, counted."""
    import xarray as xr

    from jaxbrain.data import read_assembly

    tmp_path, nc, acts, *_ = files
    assembly = read_assembly(nc)
    values = assembly.values.copy()
    values[:, 0] = 5.0  # neuroid n0 (IT) constant
    flat = tmp_path / "flat.nc"
    write_like_brainio(xr.DataArray(values, dims=assembly.dims, coords=assembly.coords), flat)
    assert run(tmp_path, flat, acts, "--no-ceiling") == 0
    result = json.loads((tmp_path / "scores.json").read_text(),
                        parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    good = result["layers"]["good"]
    assert good["per_neuroid"]["n0"] is None and good["nan_neuroids"] == 1
    assert "null" in result["null_values"]


@pytest.mark.parametrize("where, message", [
    ("folder", "is a folder"), ("parent_file", "is a file, not a folder"),
    ("read_only", "is not writable")])
def test_output_location_is_checked_before_scoring(files, capsys, monkeypatch, where, message):
    tmp_path, nc, acts, *_ = files
    if where == "folder":
        out = tmp_path / "a_folder"
        out.mkdir()
    elif where == "parent_file":
        (tmp_path / "plain").write_text("x")
        out = tmp_path / "plain" / "scores.json"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        out = locked / "scores.json"
        monkeypatch.setattr("os.access", lambda *_: False)  # root ignores modes
    scored = []
    monkeypatch.setattr("jaxbrain.cli._score", lambda args: scored.append(1))
    assert main(["score", "--activations", str(acts), "--assembly", str(nc), "--benchmark",
                 "MajajHong2015.IT-pls", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not scored


def test_full_disk_on_output_is_one_message(files, capsys, monkeypatch):
    import errno

    tmp_path, nc, acts, *_ = files
    real_open = open

    def full(path, mode="r", *args, **kwargs):
        if "w" in mode and ".scores.json" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full)
    assert run(tmp_path, nc, acts) == 2
    err = capsys.readouterr().err
    assert "scores.json" in err and "no space left" in err.lower()
    assert not (tmp_path / "scores.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".scores.json")]


def test_two_dimensional_stimulus_ids_are_refused(files, capsys):
    tmp_path, nc, _, ids, good, order = files
    np.savez(tmp_path / "bad.npz", stimulus_id=ids[order][:, None], good=good[order])
    assert run(tmp_path, nc, tmp_path / "bad.npz") == 2
    assert "'stimulus_id' must be 1-D" in capsys.readouterr().err


def test_output_files_follow_the_umask(files):
    import os
    import stat

    tmp_path, nc, acts, *_ = files
    old = os.umask(0o022)
    try:
        assert run(tmp_path, nc, acts) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "scores.json").stat().st_mode) == 0o644


def test_duplicate_ids_and_nan_targets_are_named(files, capsys):
    import xarray as xr

    from jaxbrain.data import read_assembly

    tmp_path, nc, _, ids, good, order = files
    twice = ids[order].copy()
    twice[1] = twice[0]
    np.savez(tmp_path / "dup.npz", stimulus_id=twice, good=good[order])
    assert run(tmp_path, nc, tmp_path / "dup.npz") == 2
    assert f"more than once (e.g. ['{twice[0]}'])" in capsys.readouterr().err
    assembly = read_assembly(nc)
    values = assembly.values.copy()
    values[:, 2] = np.nan  # neuroid n2 (IT)
    holes = tmp_path / "holes.nc"
    write_like_brainio(xr.DataArray(values, dims=assembly.dims, coords=assembly.coords), holes)
    assert run(tmp_path, holes, tmp_path / "acts.npz") == 2
    err = capsys.readouterr().err
    assert "holes.nc" in err and "neuroid_id e.g. ['n2']" in err
