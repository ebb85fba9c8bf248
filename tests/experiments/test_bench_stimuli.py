"""The stimulus-loading bench runs both ways on a small folder; they must hash the set alike
(the bench refuses otherwise). Memory figures are only sanity-checked: at this size imports
dominate them."""

import json
import subprocess
import sys


def test_bench_stimuli_loads_both_ways_to_one_digest(tmp_path):
    out = tmp_path / "bench_stimuli.json"
    subprocess.run([sys.executable, "-m", "experiments.bench_stimuli", "--images=150",
                    "--runs=1", f"--folder={tmp_path / 'images'}", f"--json_out={out}"],
                   check=True, capture_output=True, text=True, timeout=300)
    figures = json.loads(out.read_text())
    assert len(list((tmp_path / "images").glob("*.jpg"))) == 150
    runs = figures["runs"]
    assert len(runs["held"]) == len(runs["files"]) == 1
    assert runs["held"][0]["digest"] == runs["files"][0]["digest"]
    for way in ("held", "files"):
        assert figures[way]["seconds"][0] > 0 and figures[way]["peak_gib"][0] > 0
