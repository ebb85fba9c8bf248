"""The studies' report page: every analysis that has been run, in a fixed order, with its
question, headline findings (with their statistics), figure, tables and run time, under the
planted ground truth it should recover."""

from __future__ import annotations

import json
from pathlib import Path

from jaxbrain.analysis.pipeline import ANALYSES
from jaxbrain.engine.report import html_page, write_text

TITLES = {
    "objective_cka": "1. Layer-wise CKA between objectives",
    "ev_windows": "2. %EV early vs late",
    "unique_variance": "3. Unique variance",
    "joint_objective": "4. Joint vs single objective",
    "memorability_brain": "5. Memorability vs brain similarity across all layers",
    "decodability": "6. Feature decodability",
}


def _setup(truth: dict) -> list[str]:
    config = truth["config"]
    lines = ["## The planted ground truth", ""]
    for window, (start, end) in truth["windows"].items():
        generator = truth["generators"][window]
        lines.append(f"- IT {window} window ({start}-{end} ms): {1 - config['mix']:.0%} "
                     f"`{generator['model']}` layer `{generator['layer']}`, "
                     f"{config['mix']:.0%} the other window's generator")
    lines += [f"- {config['n_sites']} IT sites, trial noise sd {config['trial_noise']}, "
              f"{config['n_repetitions']} repetitions: expected split-half ceiling "
              f"{truth['expected_ceiling']:.3f}",
              "- V1, V2, V4, memorability and fMRI: the base suite's hidden network "
              "(V4 and memorability both read out its block3)",
              "- %EV is noise-corrected explained variance as a fraction (1 = the site's "
              "split-half ceiling); each model enters a window at its best layer there", ""]
    return lines


def write_studies_report(out_dir, title: str, truth: dict, notes: list[str] = ()) -> Path:
    """Write ``report.md`` and ``index.html`` in ``out_dir`` from the analyses' folders."""
    out = Path(out_dir)
    lines = [f"# {title}", "", *_setup(truth)]
    ran = 0
    for name in ANALYSES:
        path = out / name / "summary.json"
        if not path.exists():
            continue
        ran += 1
        summary = json.loads(path.read_text())
        lines += [f"## {TITLES[name]}", "", summary["doc"], ""]
        lines += [f"- {finding}" for finding in summary["findings"]]
        tables = ", ".join(f"[{t}]({name}/{t})" for t in summary["tables"])
        lines += ["", f"![{TITLES[name]}]({name}/figure.png)", "",
                  f"Tables: {tables}.  Run time: {summary['seconds']:.1f} s.", ""]
    if not ran:
        lines += ["No analysis has been run yet.", ""]
    lines += [f"- {note}" for note in notes]
    markdown = "\n".join(lines) + "\n"
    write_text(out / "report.md", markdown)
    write_text(out / "index.html", html_page(title, markdown))
    return out / "report.md"
