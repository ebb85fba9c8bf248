"""The decoding bench runs end to end at its quick size; its predictions agree with
scikit-learn's on the sampled units (speed is not asserted: the CPU may be shared)."""

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_quick_bench_decoding_agrees_with_sklearn(tmp_path):
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    subprocess.run([sys.executable, "-m", "experiments.bench_decoding", "--quick",
                    f"--json_out={out}"], check=True, capture_output=True, text=True, env=env,
                   timeout=300)
    figures = json.loads(out.read_text())
    assert (figures["units"], figures["voxels"], figures["n_voxels"]) == (400, 600, 100)
    assert figures["jaxbrain_s"] > 0 and figures["sklearn_projected_s"] > 0
    assert figures["accuracy_max_abs_diff"] < 1e-4  # float32 jaxbrain vs float64 sklearn
    assert figures["mean_accuracy"] > 0.2  # the stand-ins' units are decodable
