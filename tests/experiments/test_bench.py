"""The bench runs end to end (small sizes) and its two scores agree; no timing asserted."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_quick_bench_runs_and_agrees_with_sklearn(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, "-m", "experiments.bench", "--quick",
         "--wide_features=900", f"--json_out={out}"],
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(out.read_text())
    single = figures["single_layer"]
    assert single["abs_difference"] <= 1e-3
    assert single["sklearn_weights_abs_difference"] <= 1e-5
    for key in ("jaxbrain_s_per_layer", "sklearn_s_per_layer", "speedup"):
        assert single[key] > 0
    floor = figures["floor"]
    assert set(floor) == {"256", "64"}
    for width in floor.values():
        for key in ("floor_s", "kernel_best_s", "ratio_to_floor", "kernel_gflops", "read_gb_s",
                    "matmul_gflops_numpy", "matmul_gflops_jax"):
            assert width[key] > 0
        assert width["ratio_to_floor"] == width["kernel_best_s"] / width["floor_s"]
    assert figures["layer_stack"]["layers_per_second"] > 0
    ridge = figures["ridge_single_layer"]
    assert ridge["abs_difference"] <= 1e-3
    assert ridge["max_relative_prediction_difference"] <= 1e-4
    wide = figures["wide_layer"]
    assert wide["shape"] == [640, 900, 24] and wide["sklearn_splits_run"] == 1
    assert wide["abs_difference"] <= 1e-3
