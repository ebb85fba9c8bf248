"""The sweep end to end: rows, commitment of the synthetic suite's generating layers, resume
without recomputation, stale settings, shards, kill -9 and jax.distributed processes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from jaxbrain.data.synthetic import REGION_LAYERS, write_suite
from jaxbrain.engine.store import ResultsStore
from jaxbrain.engine.sweep import SweepSpec, run_sweep

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = (*[f"Synthetic.{r}-pls" for r in REGION_LAYERS], "Synthetic.memorability")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    write_suite(root)
    return root


def _spec(suite, out, **changes) -> SweepSpec:
    spec = SweepSpec(models=("synthetic_hidden", "alexnet_tiny"), benchmarks=BENCHMARKS,
                     output_dir=str(out), stimuli_csv=str(suite / "stimuli" / "stimuli.csv"),
                     stimuli_dir=str(suite / "stimuli" / "images"),
                     assembly=str(suite / "neural.nc"), lamem=str(suite / "lamem"),
                     projection_dims=256, batch_size=64)
    return dataclasses.replace(spec, **changes)


def _scores(out) -> pd.DataFrame:
    rows = ResultsStore(Path(out) / "results").rows()
    return rows.drop(columns=["created"]).sort_values("unit_key").reset_index(drop=True)


def test_sweep_scores_every_layer_commits_generating_layers_and_resumes(suite, tmp_path):
    out = tmp_path / "sweep"
    summary = run_sweep(_spec(suite, out))
    rows = _scores(out)
    n_layers = 4 + 23  # hidden network blocks + alexnet taps
    assert len(rows) == n_layers * len(BENCHMARKS) == summary["computed"]
    commitments = pd.read_csv(out / "tables" / "commitments.csv")
    hidden = commitments[commitments["model"] == "synthetic_hidden"]
    assert dict(zip(hidden["region"], hidden["committed_layer"], strict=True)) == REGION_LAYERS
    report = (out / "report.md").read_text()
    assert "synthetic_hidden" in report and "alexnet_tiny" in report
    assert (out / "figures" / "leaderboard.png").exists()
    assert len(list((out / "cka").glob("*.npz"))) == 1
    card = json.loads((out / "cards" / "synthetic_hidden.json").read_text())
    assert card["rank"] == 1

    again = run_sweep(_spec(suite, out))  # same settings: nothing recomputed, nothing added
    assert again["computed"] == 0
    pd.testing.assert_frame_equal(_scores(out), rows)

    changed = run_sweep(_spec(suite, out, projection_dims=128, models=("synthetic_hidden",)))
    assert changed["computed"] == 4 * len(BENCHMARKS)  # new keys: stale rows are not reused
    assert "ignored (not reused)" in (out / "report.md").read_text()


def test_shards_write_one_store_with_the_rows_of_a_single_run(suite, tmp_path):
    single = tmp_path / "single"
    run_sweep(_spec(suite, single, models=("synthetic_hidden", "alexnet_tiny"), cka=False))
    sharded = tmp_path / "sharded"
    first = run_sweep(_spec(suite, sharded, shard_index=0, num_shards=2, cka=False))
    assert first["models"] == ["synthetic_hidden"] and first["report"] is None
    # a marker of another sweep (other settings) in the same folder never counts as done
    other = run_sweep(_spec(suite, sharded, shard_index=1, num_shards=2, cka=False,
                            projection_dims=64))
    assert other["report"] is None
    second = run_sweep(_spec(suite, sharded, shard_index=1, num_shards=2, cka=False))
    assert second["models"] == ["alexnet_tiny"] and second["report"] is not None
    current = _scores(sharded)
    current = current[current["reduction"] == _scores(single)["reduction"].iloc[0]]
    pd.testing.assert_frame_equal(current.reset_index(drop=True), _scores(single),
                                  check_exact=False, rtol=1e-6)


def test_bad_settings_name_the_problem(suite, tmp_path):
    with pytest.raises(ValueError, match="shard_index must be in"):
        run_sweep(_spec(suite, tmp_path, shard_index=2, num_shards=2))
    with pytest.raises(ValueError, match="reduction must be"):
        run_sweep(_spec(suite, tmp_path, reduction="svd"))
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        run_sweep(_spec(suite, tmp_path, models=("vgg",)))
    with pytest.raises(ValueError, match="unknown benchmark .Synthetic.V9-pls"):
        run_sweep(_spec(suite, tmp_path, benchmarks=("Synthetic.V9-pls",)))


def _command(suite, out, *extra):
    return [sys.executable, "-m", "experiments.sweep", f"--data_dir={suite}",
            f"--output_dir={out}", "--models=synthetic_hidden,alexnet_tiny",
            f"--benchmarks={','.join(BENCHMARKS)}", "--projection_dims=256", "--batch_size=64",
            "--nocka", *extra]


def _env():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("XLA_FLAGS", None)  # one CPU device per process, as a user would run it
    return env


@pytest.fixture(scope="module")
def uninterrupted(suite, tmp_path_factory) -> pd.DataFrame:
    """The rows of one plain CLI run: what the kill -9 and distributed runs must reproduce."""
    whole = tmp_path_factory.mktemp("whole")
    subprocess.run(_command(suite, whole), cwd=ROOT, env=_env(), check=True,
                   capture_output=True)
    return _scores(whole)


@pytest.mark.slow
def test_kill_9_during_the_sweep_then_same_command_gives_the_uninterrupted_rows(
        suite, tmp_path, uninterrupted):
    killed = tmp_path / "killed"
    process = subprocess.Popen(_command(suite, killed), cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = killed / "results" / "rows"
    deadline = time.time() + 300
    while process.poll() is None and time.time() < deadline and \
            len(list(parts.glob("part-*.parquet")) if parts.exists() else []) < 3:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the sweep finished before it could be killed"
    assert not (killed / "report.md").exists()
    subprocess.run(_command(suite, killed), cwd=ROOT, env=_env(), check=True,
                   capture_output=True)
    pd.testing.assert_frame_equal(_scores(killed).drop(columns="model_key"),
                                  uninterrupted.drop(columns="model_key"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_jax_distributed_processes_give_the_rows_of_one(suite, tmp_path, uninterrupted):
    two = tmp_path / "two"
    address = f"localhost:{_free_port()}"
    processes = [subprocess.Popen(
        _command(suite, two, "--distributed", f"--coordinator_address={address}",
                 "--num_processes=2", f"--process_id={i}"),
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert (two / "report.md").exists()
    pd.testing.assert_frame_equal(_scores(two), uninterrupted, check_exact=False, rtol=1e-6)


def test_pca_and_unreduced_sweeps_record_their_reduction(suite, tmp_path):
    for reduction, expected in (("pca", '"method":"pca"'), ("none", '"method":"none"')):
        out = tmp_path / reduction
        run_sweep(_spec(suite, out, models=("synthetic_hidden",), reduction=reduction,
                        pca_components=50, cka=False))
        rows = _scores(out)
        assert len(rows) == 4 * len(BENCHMARKS) and (rows["status"] == "ok").all()
        assert rows["reduction"].str.contains(expected, regex=False).all()
    unreduced = _scores(tmp_path / "none")
    it = unreduced[unreduced["benchmark"] == "Synthetic.IT-pls"].set_index("layer")["raw"]
    assert it.idxmax() == "block4"


def _copy_stimuli(suite, tmp_path):
    import shutil

    folder = tmp_path / "stimuli"
    shutil.copytree(suite / "stimuli", folder)
    return folder


def test_input_errors_are_found_before_the_first_model_and_name_the_file(suite, tmp_path):
    """A bad model reference at the end of the list, a truncated image, stimuli the
    recordings do not cover: each is one InputError naming the model or file, raised before
    any model runs (nothing is written)."""
    from jaxbrain.engine.inputs import InputError

    out = tmp_path / "out"
    with pytest.raises(InputError, match="unknown model 'alexnet_tinyy'"):
        run_sweep(_spec(suite, out, models=("synthetic_hidden", "alexnet_tinyy")))
    with pytest.raises(InputError, match=r"model 'resnet18=missing\.pth': missing\.pth: no such"):
        run_sweep(_spec(suite, out, models=("synthetic_hidden", "resnet18=missing.pth")))
    folder = _copy_stimuli(suite, tmp_path)
    victim = sorted((folder / "images").iterdir())[3]
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(InputError, match=rf"{victim.name}: cannot read the image"):
        run_sweep(_spec(suite, out, stimuli_csv=str(folder / "stimuli.csv"),
                        stimuli_dir=str(folder / "images")))
    folder = _copy_stimuli(suite, tmp_path / "fewer")
    table = pd.read_csv(folder / "stimuli.csv")
    table.iloc[:-5].to_csv(folder / "stimuli.csv", index=False)
    with pytest.raises(InputError, match=r"neural\.nc \(V1 recordings\)"):
        run_sweep(_spec(suite, out, stimuli_csv=str(folder / "stimuli.csv"),
                        stimuli_dir=str(folder / "images")))
    assert not out.exists() or not any(out.rglob("*.json"))


def test_sweep_command_reports_input_errors_in_one_line_with_exit_2(suite, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.sweep", f"--output_dir={tmp_path / 'o'}",
         "--models=synthetic_hidden,vgg", f"--data_dir={suite}",
         "--benchmarks=Synthetic.IT-pls"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]] and "sweep: error: unknown model 'vgg'" in lines[-1]


def test_finished_sweep_reruns_in_a_read_only_folder(suite, tmp_path):
    """Re-running a finished sweep rewrites nothing (done-markers, report), so it also works
    once the output folder is read-only."""
    out = tmp_path / "done"
    spec = _spec(suite, out, models=("synthetic_hidden",), benchmarks=BENCHMARKS[:1], cka=False)
    run_sweep(spec)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    summary = run_sweep(spec)
    assert summary["computed"] == 0 and summary["report"] == str(out / "report.md")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_overwritten_cached_layer_gives_the_uninterrupted_rows(suite, tmp_path):
    """A cached layer file overwritten with same-size random values (after its bank was
    saved, before its rows were scored) is caught by its checksum and recomputed: the sweep
    ends with the uninterrupted run's rows."""
    import shutil

    import numpy as np

    out = tmp_path / "s"
    spec = _spec(suite, out, models=("synthetic_hidden",), benchmarks=BENCHMARKS[:2], cka=False)
    run_sweep(spec)
    expected = _scores(out)
    shutil.rmtree(out / "results")
    shutil.rmtree(out / "models")
    (layer,) = [p for p in (out / "cache").rglob("layer0001.npy")]
    values = np.load(layer)
    np.save(layer, np.random.default_rng(0).standard_normal(values.shape).astype(np.float32))
    run_sweep(spec)
    pd.testing.assert_frame_equal(_scores(out), expected)
    assert list((out / "cache").glob(".*.damaged-0"))


def test_decoding_benchmark_in_a_sweep(suite, tmp_path):
    """Feature decoding is a benchmark like the others: stored rows, one per layer, on the
    suite's fMRI subjects."""
    import numpy as np

    out = tmp_path / "decoding"
    run_sweep(_spec(suite, out, models=("synthetic_hidden",), benchmarks=("Synthetic.decoding",),
                    fmri=str(suite), reduction="none", cka=False))
    rows = _scores(out)
    assert set(rows["kind"]) == {"decoding"} and (rows["status"] == "ok").all()
    assert len(rows) == 4 and rows["per_split"].map(len).eq(2).all()  # two subjects
    assert np.isfinite(rows["raw"]).all() and (rows["raw"] > 0).any()
