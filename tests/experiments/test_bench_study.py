"""The study benchmark runs end to end on its quick stand-ins; figures add up (no timing is
asserted: machines differ)."""

import json
import subprocess
import sys

import pytest

from jaxbrain.engine.store import ResultsStore
from jaxbrain.engine.sweep import STAGES


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The quick stand-ins, written by the first bench run and reused by the others."""
    return tmp_path_factory.mktemp("standins") / "data"


@pytest.mark.slow
def test_quick_study_bench_scores_every_layer_on_every_benchmark(tmp_path, data_dir):
    out, figures_path = tmp_path / "study", tmp_path / "figures.json"
    command = [sys.executable, "-m", "experiments.bench_study", "--quick",
               "--models=alexnet_tiny", f"--output_dir={out}", f"--data_dir={data_dir}",
               f"--json_out={figures_path}"]
    printed = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    figures = json.loads(figures_path.read_text())
    layers = figures["layers"]
    assert layers > 10 and figures["units"] == 9 * layers
    stages = figures["stage_seconds"]
    assert set(stages) == {*STAGES, "inputs", "report"}
    assert all(seconds >= 0 for seconds in stages.values()) and stages["scoring"] > 0
    assert figures["wall_seconds"] >= sum(stages[s] for s in STAGES)
    assert figures["projected_hours"] == pytest.approx(
        16860 * figures["seconds_per_layer"] / 3600)
    assert figures["raw"]["peak_host_gib"] > 0 and figures["scoring_gflops"] > 0
    assert "project  16860 layers" in printed
    # the real benchmark names ran on the stand-ins: every unit is in the store
    run_dir = figures["run_dir"]
    rows = ResultsStore(f"{run_dir}/results").rows()
    assert set(rows["benchmark"]) == {
        "FreemanZiemba2013public.V1-pls", "FreemanZiemba2013.V1-pls",
        "FreemanZiemba2013public.V2-pls", "FreemanZiemba2013.V2-pls",
        "MajajHong2015public.V4-pls", "MajajHong2015.V4-pls", "MajajHong2015public.IT-pls",
        "MajajHong2015.IT-pls", "LaMem.memorability"}
    assert rows.groupby("benchmark")["layer"].nunique().eq(layers).all()
    # a second run reuses the stand-in data and writes a new run folder beside the first
    second = tmp_path / "second.json"
    subprocess.run([*command[:-1], "--benchmarks=LaMem.memorability", f"--json_out={second}"],
                   check=True, capture_output=True)
    assert json.loads(second.read_text())["run_dir"] != run_dir
    assert len([p for p in out.iterdir() if p.name.startswith("run-")]) == 2


@pytest.mark.slow
def test_dtype_comparison_runs_both_and_reports_the_differences(tmp_path, data_dir):
    out = tmp_path / "study"
    subprocess.run([sys.executable, "-m", "experiments.bench_study", "--quick",
                    "--models=alexnet_tiny", "--taps=features.0,features.3,features.6",
                    "--benchmarks=MajajHong2015public.IT-pls", f"--output_dir={out}",
                    f"--data_dir={data_dir}", "--compare_dtypes"], check=True,
                   capture_output=True)
    comparison = json.loads((out / "dtype_comparison.json").read_text())
    assert comparison["units"] == 3 and comparison["benchmarks"] == 1
    assert 0 < comparison["max_abs_difference"] < 0.1  # bfloat16 ran, and stayed close
    assert len([p for p in out.iterdir() if p.name.startswith("run-")]) == 2
