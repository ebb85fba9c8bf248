"""The training-throughput bench runs end to end on tiny models; only sanity of its figures is
asserted, not speed (the CPU may be shared)."""

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_quick_bench_train_reports_throughput_and_peak_fraction(tmp_path):
    out = tmp_path / "bench_train.json"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one device, as a user runs
    subprocess.run([sys.executable, "-m", "experiments.bench_train", "--quick",
                    f"--json_out={out}"], check=True, capture_output=True, text=True, env=env,
                   timeout=240)
    figures = json.loads(out.read_text())
    assert figures["matmul_peak"]["jax_gflops"] > 0 and figures["matmul_peak"]["numpy_gflops"] > 0
    results = {r["model"]: r for r in figures["models"]}
    assert set(results) == {"resnet18_tiny", "alexnet_tiny"}
    for r in results.values():
        assert (r["batch_size"], r["image_size"], len(r["step_seconds"])) == (8, 64, 2)
        assert r["images_per_s"] > 0 and r["xla_train_gflop_per_step"] > 0
        assert 0 < r["fraction_of_jax_peak"] < 1.5 and 0 < r["fraction_of_numpy_peak"] < 1.5
        # A train step is a forward plus two backward passes of about a forward each.
        assert 1.5 < r["train_over_forward"] < 4.5
        assert r["analytic_forward_gflop_per_batch"] > 0
    pipeline = {p["workers"]: p for p in figures["pipeline"]}
    assert set(pipeline) == {0, 2}
    for p in pipeline.values():
        assert (p["images"], p["image_size"]) == (32, 64)
        assert p["images_per_s"] > 0 and 0 < p["first_batch_s"] <= p["total_s"]
