"""Harada & Sakai's experiment: are the networks whose penultimate layer is most IT-like the
ones that predict image memorability best once fine-tuned on it?

    python -m experiments.harada_sakai --workdir=runs/harada_sakai \
        --models=alexnet=IMAGENET1K_V1,resnet18=IMAGENET1K_V1,resnet50=IMAGENET1K_V1 \
        --lamem_dir=/data/lamem --lamem_split=1 --benchmarks=MajajHong2015public.IT-pls

For each imported model: fine-tune it on the LaMem split (the ``--preset``, MemNet-style by
default: every layer, new memorability head; ``workdir/runs/<model>``, resumable), keep its
test Spearman rho; score the penultimate layer (the features its heads read) on the IT
benchmarks with the sweep (``workdir/sweeps/<model>``; ``--score=pretrained``, the default,
scores the imported network, ``finetuned`` the fine-tuned one).  Writes ``table.csv`` (model,
rho, IT score per benchmark, the score's status: a layer the benchmark could not score has
no score and says why), ``correlation.csv`` (Spearman across the scored models with
confidence intervals, per benchmark) and ``memorability_vs_it.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from absl import app, flags
from matplotlib.figure import Figure

from jaxbrain.analysis.statistics import correlation_ci
from jaxbrain.engine.report import safe_name
from jaxbrain.engine.sweep import SweepSpec, load_results, run_sweep
from jaxbrain.files import atomic_write, json_bytes
from jaxbrain.models.registry import ARCHITECTURES
from jaxbrain.train.configs import preset_config
from jaxbrain.train.loop import train

SCORED = ("pretrained", "finetuned")


def run(models, *, workdir, lamem_dir, benchmarks, lamem_split: int = 1, preset: str = "memnet",
        score: str = "pretrained", config_overrides: dict | None = None,
        sweep_options: dict | None = None) -> pd.DataFrame:
    """Fine-tune, score and relate (see the module docstring); returns the table."""
    if score not in SCORED:
        raise ValueError(f"score must be one of {SCORED}; got {score!r}")
    if len(models) < 3:
        raise ValueError(f"a correlation across models needs at least 3 models; got {models}")
    bad = [m for m in models if "=" not in m]
    if bad:
        raise ValueError(f"models must be imported networks, '<arch>=<weights>'; got {bad}")
    workdir = Path(workdir)
    rows = []
    for reference in models:
        arch = reference.split("=", 1)[0]
        config = preset_config(preset)
        config.arch, config.init = arch, reference
        config.data.lamem_dir, config.data.lamem_split = str(lamem_dir), int(lamem_split)
        for key, value in (config_overrides or {}).items():
            _override(config, key, value)
        run_dir = workdir / "runs" / safe_name(reference)
        metrics = train(config, run_dir)
        scored = reference if score == "pretrained" else str(run_dir)
        tap = ARCHITECTURES[arch][0].penultimate_tap  # the class knows it: no model built
        spec = SweepSpec(models=(scored,), benchmarks=tuple(benchmarks),
                         output_dir=str(workdir / "sweeps" / safe_name(reference)), taps=(tap,),
                         cka=False, title=f"{short_name(reference)}: penultimate layer",
                         **(sweep_options or {}))
        run_sweep(spec)
        _, results, _ = load_results(spec)
        for row in results.itertuples():
            rows.append({"model": reference, "arch": arch, "layer": row.layer,
                         "benchmark": row.benchmark, "it_score": row.ceiled,
                         "status": row.status, "memorability_rho": metrics["memorability_rho"]})
    table = pd.DataFrame(rows)
    correlations = pd.DataFrame([
        {"benchmark": bench, "n_models": len(group),
         **correlation_ci(group["it_score"], group["memorability_rho"], "spearman")}
        for bench, group in table.groupby("benchmark", sort=False)])
    atomic_write(workdir / "table.csv", table.to_csv(index=False).encode())
    atomic_write(workdir / "correlation.csv", correlations.to_csv(index=False).encode())
    _figure(table, correlations, workdir / "memorability_vs_it.png")
    atomic_write(workdir / "summary.json", json_bytes(
        {"models": list(models), "preset": preset, "score": score, "lamem_split": lamem_split,
         "correlation": correlations.to_dict(orient="records")}, indent=2))
    return table


def short_name(reference: str) -> str:
    """``arch=weights`` with a weight file shown by its name, for figure labels."""
    arch, _, weights = reference.partition("=")
    return f"{arch}={Path(weights).stem}" if "/" in weights else reference


def _override(config, key: str, value) -> None:
    """``config[key] = value`` for a dotted key (``data.workers``)."""
    *parents, leaf = key.split(".")
    for parent in parents:
        config = config[parent]
    config[leaf] = value


def _figure(table: pd.DataFrame, correlations: pd.DataFrame, path: Path) -> None:
    benches = list(correlations["benchmark"])
    fig = Figure(figsize=(4.5 * len(benches), 4))  # Agg, no pyplot state
    axes = fig.subplots(1, len(benches), squeeze=False)
    for ax, bench in zip(axes[0], benches, strict=True):
        group = table[table["benchmark"] == bench]
        ax.scatter(group["it_score"], group["memorability_rho"])
        for row in group.itertuples():
            ax.annotate(short_name(row.model), (row.it_score, row.memorability_rho),
                        fontsize=7)
        r = correlations.set_index("benchmark").loc[bench, "r"]
        ax.set_title(f"{bench}\nSpearman r = {r:.2f} (n = {len(group)})", fontsize=9)
        ax.set_xlabel("IT score of the penultimate layer (ceiled)")
        ax.set_ylabel("LaMem test rho after fine-tuning")
    fig.set_layout_engine("constrained")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)


FLAGS = flags.FLAGS
flags.DEFINE_list("models", [], "Imported networks, '<arch>=<weights name or file>'.")
flags.DEFINE_string("workdir", None, "Output folder (runs, sweeps, table, figure).")
flags.DEFINE_string("lamem_dir", None, "LaMem-layout folder (images/, splits/).")
flags.DEFINE_integer("lamem_split", 1, "The LaMem split fine-tuned on and tested.")
flags.DEFINE_list("benchmarks", ["MajajHong2015public.IT-pls"], "IT benchmarks by name.")
flags.DEFINE_string("preset", "memnet", "Fine-tuning preset (jaxbrain.train.configs.PRESETS).")
flags.DEFINE_enum("score", "pretrained", SCORED, "Whose penultimate layer is scored.")
flags.DEFINE_string("config_overrides", "{}", "JSON object of config fields to override.")
flags.DEFINE_string("sweep_options", "{}", "JSON object of SweepSpec fields (assembly, ...).")
flags.mark_flags_as_required(["workdir", "lamem_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    table = run(FLAGS.models, workdir=FLAGS.workdir, lamem_dir=FLAGS.lamem_dir,
                benchmarks=FLAGS.benchmarks, lamem_split=FLAGS.lamem_split, preset=FLAGS.preset,
                score=FLAGS.score, config_overrides=json.loads(FLAGS.config_overrides),
                sweep_options=json.loads(FLAGS.sweep_options))
    print(table.to_string(index=False))


if __name__ == "__main__":
    app.run(main)
