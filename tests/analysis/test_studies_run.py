"""End to end: ``python -m experiments.studies`` on the planted suite recovers every planted
effect, writes one folder per analysis and the report page, and re-runs reproducibly.

The run is the shipped ``studies.flags`` with fewer training steps and narrower banks (the
planted effects are large; the full settings' figures are in BUILD_NOTES.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from jaxbrain.analysis.pipeline import ANALYSES

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = "resnet18_tiny"
pytestmark = pytest.mark.slow


def _studies(tmp: Path, flagfile: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "experiments.studies", f"--flagfile={flagfile}",
               f"--data_dir={tmp / 'synthetic'}", f"--zoo_dir={tmp / 'zoo'}",
               f"--output_dir={tmp / 'out'}", "--num_steps=80", "--projection_dims=128"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("studies")
    _studies(tmp, "experiments/configs/studies.flags")
    return tmp, tmp / "out"


def _table(out: Path, analysis: str, name: str) -> pd.DataFrame:
    return pd.read_csv(out / analysis / f"{name}.csv")


def test_every_analysis_writes_its_folder_and_the_report_gathers_them(run):
    _, out = run
    report = (out / "report.md").read_text()
    for name in ANALYSES:
        summary = json.loads((out / name / "summary.json").read_text())
        assert (out / name / "figure.png").stat().st_size > 10_000
        assert summary["findings"] and summary["seconds"] > 0
        for table in summary["tables"]:
            assert len(pd.read_csv(out / name / table)) > 0, (name, table)
        assert f"({name}/figure.png)" in report
    assert "The planted ground truth" in report and (out / "index.html").exists()
    assert (out / "sweep" / "report.md").exists()


def test_objectives_diverge_with_depth(run):
    _, out = run
    trend = _table(out, "objective_cka", "cka_trend")
    pair = trend[trend["pair"] == "categorization vs memorability"]
    assert set(pair["architecture"]) == {"resnet18_tiny", "alexnet_tiny"}
    assert (pair["rho_depth_cka"] < -0.5).all(), pair
    by_depth = _table(out, "objective_cka", "cka_by_depth")
    curve = by_depth[by_depth["pair"] == "categorization vs memorability"]
    assert curve["mean"].iloc[0] > curve["mean"].iloc[-1] + 0.2
    assert (curve["n_groups"] == 2).all() and curve["sem"].notna().all()
    stats = json.loads((out / "objective_cka" / "summary.json").read_text())["stats"]
    assert stats["within_vs_across"]["n"] == 120  # 60 sites x 2 windows, paired


def test_early_window_favours_the_memorability_model_late_the_categorisation_one(run):
    _, out = run
    tests = _table(out, "ev_windows", "tests").set_index(["architecture", "window"])
    early, late = tests.loc[(GENERATOR, "early")], tests.loc[(GENERATOR, "late")]
    assert early["mean_a"] > early["mean_b"] + 0.2 and early["p"] < 1e-6
    assert late["mean_b"] > late["mean_a"] + 0.2 and late["p"] < 1e-6
    change = _table(out, "ev_windows", "window_change").set_index("architecture")
    assert change.loc[GENERATOR, "mean_diff"] > 0.4 and change.loc[GENERATOR, "p"] < 1e-6
    sites = _table(out, "ev_windows", "sites")
    assert len(sites) == 2 * 2 * 60 and sites["ev_a"].between(-0.1, 1.3).all()


def test_memorability_model_carries_unique_variance_the_control_does_not(run):
    _, out = run
    control = _table(out, "unique_variance", "vs_control").set_index(["architecture", "window"])
    early, late = control.loc[(GENERATOR, "early")], control.loc[(GENERATOR, "late")]
    assert early["mean_a"] > early["mean_b"] + 0.2 and early["p"] < 1e-6
    assert early["mean_a"] > late["mean_a"] + 0.3  # unique to the window it generated
    sites = _table(out, "unique_variance", "sites")
    assert (sites["r_a_given_b"] <= sites["r_a"] + 0.05).mean() > 0.95


def test_each_window_is_fitted_best_by_its_generator_not_the_joint_model(run):
    _, out = run
    tests = _table(out, "joint_objective", "tests")
    tests = tests[tests["architecture"] == GENERATOR].set_index(["single", "window"])
    early = tests.loc[("memorability", "early")]
    late = tests.loc[("categorization", "late")]
    for row in (early, late):
        assert row["mean_b"] > row["mean_a"] + 0.1 and row["p"] < 1e-6
    means = _table(out, "joint_objective", "means")
    assert set(means["objective"]) == {"joint", "memorability", "categorization"}


def test_layers_predicting_memorability_predict_v4_their_shared_generator(run):
    _, out = run
    correlation = _table(out, "memorability_brain", "correlation").set_index("region")
    v4 = correlation.loc["Synthetic.V4-pls"]
    assert v4["r"] > 0.4 and v4["fisher_low"] > 0.2 and v4["boot_low"] > 0.2
    assert v4["n"] > 300  # every scored layer of every model
    penultimate = _table(out, "memorability_brain", "penultimate")
    layers = dict(zip(penultimate["model"], penultimate["layer"], strict=False))
    assert layers["resnet18_tiny-categorization"] == "flatten"
    assert set(layers.values()) <= {"flatten", "classifier.5"}


def test_units_decode_consistently_across_the_two_subjects(run):
    _, out = run
    consistency = _table(out, "decodability", "consistency")
    assert set(consistency["model"]) == {"synthetic_hidden", "resnet18_tiny-categorization"}
    assert (consistency["r"] > 0.3).all(), consistency
    assert consistency["top_k_overlap"].mean() > 0.2  # chance: 10 of up to 1000 units
    per_subject = _table(out, "decodability", "per_subject")
    assert set(per_subject["subject"]) == {"subject1", "subject2"}
    assert (per_subject["mean_accuracy"] > 0.1).all()


def test_one_analysis_config_reruns_reproducibly_without_recomputing(run):
    tmp, out = run
    before = {name: (out / name / "tests.csv").read_bytes()
              for name in ("ev_windows", "joint_objective")}
    marker = out / "sweep" / "models" / "resnet18_tiny-categorization.json"
    written = marker.read_bytes(), marker.stat().st_mtime_ns
    _studies(tmp, "experiments/configs/studies/ev_windows.flags")
    assert (out / "ev_windows" / "tests.csv").read_bytes() == before["ev_windows"]
    assert (out / "joint_objective" / "tests.csv").read_bytes() == before["joint_objective"]
    # the finished sweep is not redone: its done-marker is not even rewritten
    assert (marker.read_bytes(), marker.stat().st_mtime_ns) == written
    assert "## 6. Feature decodability" in (out / "report.md").read_text()
