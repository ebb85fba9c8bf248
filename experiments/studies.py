"""The studies' analyses on the planted synthetic suite, with one report page.

    python -m experiments.studies --flagfile=experiments/configs/studies.flags

Builds what is missing (the suite, a zoo of categorisation / memorability / joint models of
each architecture plus a categorisation replicate from another seed, IT recordings whose
early window is generated from a memorability-trained layer and late window from a
categorisation-trained one), sweeps every layer of every model through the sweep engine
(cached banks and results, resumable), then runs the chosen ``--analyses`` and writes
``<output_dir>/<analysis>/`` (tables, figure, summary) and ``report.md`` / ``index.html``.
Everything follows from ``--seed``.
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import app, flags, logging
from tqdm import tqdm

from jaxbrain.analysis.pipeline import ANALYSES, StudyContext, run_analysis
from jaxbrain.analysis.planted import PlantedSpec, build_planted
from jaxbrain.analysis.report import write_studies_report
from jaxbrain.analysis.sweep_data import SweepData
from jaxbrain.data.synthetic import StudiesConfig
from jaxbrain.engine.sweep import SweepSpec, run_sweep

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", "synthetic", "Synthetic suite (written if missing).")
flags.DEFINE_string("zoo_dir", "runs/zoo", "Model zoo (trained if missing).")
flags.DEFINE_string("output_dir", "runs/studies", "Sweep, analyses and report.")
flags.DEFINE_list("analyses", list(ANALYSES), f"Analyses to run: {', '.join(ANALYSES)}.")
flags.DEFINE_list("archs", ["resnet18_tiny:32", "alexnet_tiny:64"],
                  "Architectures with their training image size (arch:pixels).")
flags.DEFINE_integer("num_steps", 400, "Training steps per model.")
flags.DEFINE_integer("seed", 0, "Seed of training, recordings, splits and unit sampling.")
flags.DEFINE_integer("control_seed", 1, "Seed of the held-out categorisation replicate.")
flags.DEFINE_string("generator_arch", "resnet18_tiny", "Architecture generating IT.")
flags.DEFINE_string("generator_layer", "layer4", "Layer generating IT.")
flags.DEFINE_float("mix", 0.2, "Share of the other window's generator in each IT window.")
flags.DEFINE_integer("n_sites", 60, "IT sites.")
flags.DEFINE_float("trial_noise", 1.0, "Trial noise sd (signal sd = 1).")
flags.DEFINE_list("decoding_models", ["synthetic_hidden", "resnet18_tiny-categorization"],
                  "Models whose units are decoded from the fMRI subjects.")
flags.DEFINE_integer("decoding_units", 1000, "Units sampled per layer for decoding.")
flags.DEFINE_list("taps", [], "Layers to sweep (default: every tap).")
flags.DEFINE_integer("projection_dims", 1000, "Random projection width of the layer banks.")
flags.DEFINE_integer("batch_size", 32, "Extraction batch size.")
flags.DEFINE_string("title", "jaxbrain studies: the planted synthetic suite", "Report title.")

WINDOWS = {"early": "Synthetic.IT.early-pls", "late": "Synthetic.IT.late-pls"}
MEMORABILITY = "Synthetic.memorability"
REGIONS = ("Synthetic.V1-pls", "Synthetic.V2-pls", "Synthetic.V4-pls")


def _archs(values) -> tuple[tuple[str, int], ...]:
    archs = []
    for value in values:
        arch, _, size = value.partition(":")
        if not size.isdigit():
            raise app.UsageError(f"--archs entries are arch:pixels, got {value!r}")
        archs.append((arch, int(size)))
    return tuple(archs)


def _progress(iterable, desc="", leave=True, total=None):
    return tqdm(iterable, desc=desc, leave=leave, total=total, mininterval=1.0)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    unknown = [name for name in FLAGS.analyses if name not in ANALYSES]
    if unknown:
        raise app.UsageError(f"unknown analyses {unknown}; expected some of {list(ANALYSES)}")
    logging.set_verbosity(logging.WARNING)
    planted = PlantedSpec(
        data_dir=FLAGS.data_dir, zoo_dir=FLAGS.zoo_dir, archs=_archs(FLAGS.archs),
        num_steps=FLAGS.num_steps, seed=FLAGS.seed, control_seed=FLAGS.control_seed,
        generator_arch=FLAGS.generator_arch, generator_layer=FLAGS.generator_layer,
        studies=StudiesConfig(seed=FLAGS.seed, n_sites=FLAGS.n_sites, mix=FLAGS.mix,
                              trial_noise=FLAGS.trial_noise))
    truth = build_planted(planted, log=lambda text: print(text, flush=True))
    data = Path(FLAGS.data_dir)
    out = Path(FLAGS.output_dir)
    spec = SweepSpec(
        models=tuple(planted.models()),
        benchmarks=(*REGIONS, *WINDOWS.values(), MEMORABILITY),
        output_dir=str(out / "sweep"), stimuli_csv=str(data / "stimuli" / "stimuli.csv"),
        stimuli_dir=str(data / "stimuli" / "images"), assembly=str(data / "studies" /
                                                                   "neural.nc"),
        lamem=str(data / "lamem"), zoo_dir=FLAGS.zoo_dir, taps=tuple(FLAGS.taps),
        projection_dims=FLAGS.projection_dims, batch_size=FLAGS.batch_size, cka=False,
        title=f"{FLAGS.title}: every layer")
    run_sweep(spec, progress=_progress)
    base = json.loads((data / "truth.json").read_text())
    context = StudyContext(
        data=SweepData(spec), planted=planted, windows=WINDOWS, memorability=MEMORABILITY,
        decoding_models=tuple(FLAGS.decoding_models), decoding_units=FLAGS.decoding_units,
        fmri={subject: str(data / path) for subject, path in base["files"]["fmri"].items()},
        seed=FLAGS.seed)
    for name in FLAGS.analyses:
        summary = run_analysis(name, context, out)
        print(f"{name} ({summary['seconds']:.1f} s)", *summary["findings"], sep="\n  ",
              flush=True)
    report = write_studies_report(out, FLAGS.title, truth,
                                  notes=["Every layer's scores: [sweep report](sweep/report.md)."])
    print(f"report: {report}")


if __name__ == "__main__":
    app.run(main)
