"""Score every layer of many models on many benchmarks, resumably, and write the report.

    python -m experiments.sweep --flagfile=experiments/configs/quickstart.flags

Writes under ``--output_dir``: ``results/`` (parquet store, one row per model × layer ×
benchmark, plus per-neuroid values), ``cache/`` (layer banks), ``tables/*.csv``, ``cards/``
(model cards, markdown + JSON), ``cka/`` (model-to-model maps), ``figures/`` and
``report.md`` / ``index.html``.  Re-running the same command after an interruption (even
kill -9) finishes without recomputing or duplicating anything.  Scale-out: run N copies with
``--shard_index=i --num_shards=N`` (e.g. a job array) on one output directory, or
``--distributed`` under ``jax.distributed`` (one shard per process).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jax
from absl import app, flags, logging
from tqdm import tqdm

from jaxbrain.data import synthetic
from jaxbrain.engine.inputs import InputError
from jaxbrain.engine.sweep import SweepSpec, run_sweep
from jaxbrain.files import WriteError
from jaxbrain.models import ARCHITECTURES, zoo
from jaxbrain.train.synthetic_zoo import build

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "Model references: zoo names, training-run directories, "
                  "architectures (random init), arch=weights (a .pth/.safetensors file or a "
                  "catalog name, e.g. resnet50=IMAGENET1K_V1), or synthetic_hidden.")
flags.DEFINE_list("benchmarks", None, "Benchmark names (jaxbrain.benchmarks.names()): neural "
                  "ones and the memorability read-outs (Synthetic.memorability, "
                  "LaMem.memorability).")
flags.DEFINE_string("output_dir", None, "Where results, caches and the report go.")
flags.DEFINE_string("data_dir", "", "A synthetic suite (written on first use); sets the stimuli, "
                    "assembly and LaMem defaults.")
flags.DEFINE_string("stimuli_csv", "", "Stimuli for every benchmark: a stimulus-set CSV "
                    "(stimulus_id, filename, ...), or a catalog stimulus set (e.g. hvm-public) "
                    "with no --stimuli_dir. Default: each benchmark's own stimulus set, at its "
                    "visual degrees (one layer bank per stimulus set).")
flags.DEFINE_string("stimuli_dir", "", "Folder or .zip with the stimulus images.")
flags.DEFINE_float("stimulus_degrees", 8.0, "Visual degrees --stimuli_csv spans (a "
                  "benchmark's own stimulus set is shown at its own degrees).")
flags.DEFINE_string("assembly", "", "Brain-Score NetCDF assembly for all neural benchmarks: a "
                    "path or a catalog name (default: each benchmark's own recordings).")
flags.DEFINE_string("lamem", "", "LaMem-layout folder (or catalog archive) for the "
                    "memorability benchmarks.")
flags.DEFINE_string("fmri", "", "Folder of fmri_<subject>.nc recordings (Brain-Score NetCDF) for "
                    "the decoding benchmarks (default with --data_dir: the suite's folder).")
flags.DEFINE_string("zoo_dir", "", "Model zoo (zoo.json) for zoo model names.")
flags.DEFINE_bool("build_zoo", False, "Train missing <arch>-{random,categorization,memorability,"
                  "joint} zoo models on the synthetic suite first.")
flags.DEFINE_list("taps", [], "Layer taps to score (default: every tap of every model).")
flags.DEFINE_enum("reduction", "random_projection", ["none", "random_projection", "pca"],
                  "Per-layer reduction of the activations.")
flags.DEFINE_integer("projection_dims", 1000, "Random projection width.")
flags.DEFINE_integer("pca_components", 1000, "PCA components (Brain-Score: 1000).")
flags.DEFINE_string("reference_csv", "", "PCA reference images: a stimulus-set CSV or catalog "
                    "name (default: each stimulus set itself).")
flags.DEFINE_string("reference_dir", "", "PCA reference images: the CSV's image folder, or a "
                    "folder of images on its own.")
flags.DEFINE_enum("protocol", "all_layers", ["all_layers", "brainscore"],
                  "all_layers: every layer on every benchmark through --reduction (studies); "
                  "brainscore: Brain-Score's commitment protocol (candidate layers through "
                  "LayerPCA(--pca_components) on the selection benchmarks, the best layer "
                  "per region committed, final benchmarks on its unreduced activations).")
flags.DEFINE_string("candidates_json", "", "JSON file: model reference -> candidate layers "
                    "for the brainscore protocol (default: each model's own).")
flags.DEFINE_integer("batch_size", 0, "Extraction batch size (0: the largest batch whose "
                     "activations fit --activation_memory_gb).")
flags.DEFINE_float("activation_memory_gb", 0.0, "Memory one batch's activations may take "
                   "(0: a quarter of the accelerator's memory, or 2 GiB on a CPU).")
flags.DEFINE_enum("extraction_dtype", "float32", ["float32", "bfloat16"], "The dtype models "
                  "run in during extraction (bfloat16: faster on accelerators; scores differ, "
                  "see BUILD_NOTES.md).")
flags.DEFINE_float("extraction_memory_gb", 4.0,
                   "Host memory for fitting PCAs: layers are fitted in groups whose reference "
                   "activations and components fit it (one pass over the reference images "
                   "per group).")
flags.DEFINE_integer("mesh_devices", 0, "Local devices the layers are sharded over (0: all).")
flags.DEFINE_bool("cka", True, "Compute model-to-model layer x layer CKA maps.")
flags.DEFINE_integer("shard_index", 0, "This shard (0-based).")
flags.DEFINE_integer("num_shards", 1, "Independent shards of the sweep.")
flags.DEFINE_bool("resume", True, "Reuse stored results of identical units.")
flags.DEFINE_bool("distributed", False, "Initialise jax.distributed; one shard per process.")
flags.DEFINE_string("coordinator_address", "", "jax.distributed coordinator host:port.")
flags.DEFINE_integer("num_processes", 0, "jax.distributed process count.")
flags.DEFINE_integer("process_id", -1, "jax.distributed process id.")
flags.DEFINE_string("title", "jaxbrain sweep", "Report title.")
flags.mark_flags_as_required(["models", "benchmarks", "output_dir"])

_VARIANT = re.compile(r"^(?P<arch>.+)-(?P<objective>random|categorization|memorability|joint)$")


def _progress(iterable, desc="", leave=True, total=None):
    """Bars for models, extraction batches, benchmarks and layer units, with time left."""
    return tqdm(iterable, desc=desc, leave=leave, total=total, mininterval=1.0,
                dynamic_ncols=True)


def _build_zoo(models, zoo_dir: str, data_dir: str) -> None:
    """Train the zoo variants the sweep names but the zoo lacks (the quickstart's models)."""
    present = set(zoo.entries(zoo_dir))
    wanted: dict[str, set[str]] = {}
    for name in models:
        match = _VARIANT.match(name)
        if name not in present and match and match["arch"] in ARCHITECTURES:
            objective = match["objective"]
            wanted.setdefault(match["arch"], set()).update(
                {"categorization"} if objective == "random" else {objective})
    for arch, objectives in wanted.items():
        print(f"training {arch} variants {sorted(objectives)} into {zoo_dir}", flush=True)
        build(zoo_dir, arch, data_dir, sorted(objectives), num_steps=400, image_size=32, seed=0)


def _candidates(path: str) -> tuple:
    if not path:
        return ()
    try:
        chosen = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise app.UsageError(f"{path}: cannot read the candidates JSON: {err}") from None
    if not isinstance(chosen, dict) or not all(
            isinstance(v, list) and v and all(isinstance(t, str) for t in v)
            for v in chosen.values()):
        raise app.UsageError(f"{path}: expected {{\"model reference\": [\"layer\", ...]}}")
    return tuple((model, tuple(layers)) for model, layers in chosen.items())


def spec_from_flags() -> SweepSpec:
    data = Path(FLAGS.data_dir) if FLAGS.data_dir else None
    if data is not None and not (data / "truth.json").exists():
        print(f"writing the synthetic suite to {data}", flush=True)
        synthetic.write_suite(data)
    stimuli_csv = FLAGS.stimuli_csv or (str(data / "stimuli" / "stimuli.csv") if data else "")
    stimuli_dir = FLAGS.stimuli_dir or (str(data / "stimuli" / "images") if data else "")
    shard_index, num_shards = FLAGS.shard_index, FLAGS.num_shards
    if FLAGS.distributed:
        shard_index, num_shards = jax.process_index(), jax.process_count()
    if FLAGS.build_zoo:
        if not (FLAGS.zoo_dir and data):
            raise app.UsageError("--build_zoo needs --zoo_dir and --data_dir")
        _build_zoo(FLAGS.models, FLAGS.zoo_dir, str(data))
    return SweepSpec(
        models=tuple(FLAGS.models), benchmarks=tuple(FLAGS.benchmarks),
        output_dir=FLAGS.output_dir, stimuli_csv=stimuli_csv, stimuli_dir=stimuli_dir,
        stimulus_degrees=FLAGS.stimulus_degrees,
        assembly=FLAGS.assembly or (str(data / "neural.nc") if data else ""),
        lamem=FLAGS.lamem or (str(data / "lamem") if data else ""),
        fmri=FLAGS.fmri or (str(data) if data else ""), zoo_dir=FLAGS.zoo_dir,
        taps=tuple(FLAGS.taps), reduction=FLAGS.reduction, projection_dims=FLAGS.projection_dims,
        pca_components=FLAGS.pca_components, reference_csv=FLAGS.reference_csv,
        reference_dir=FLAGS.reference_dir, batch_size=FLAGS.batch_size,
        activation_memory_gb=FLAGS.activation_memory_gb, extraction_dtype=FLAGS.extraction_dtype,
        extraction_memory_gb=FLAGS.extraction_memory_gb,
        mesh_devices=FLAGS.mesh_devices, cka=FLAGS.cka, protocol=FLAGS.protocol,
        candidates=_candidates(FLAGS.candidates_json), shard_index=shard_index,
        num_shards=num_shards, resume=FLAGS.resume, title=FLAGS.title)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    if FLAGS.distributed:  # before any computation; each process then runs one shard
        jax.distributed.initialize(FLAGS.coordinator_address or None,
                                   FLAGS.num_processes or None,
                                   None if FLAGS.process_id < 0 else FLAGS.process_id)
    try:
        summary = run_sweep(spec_from_flags(), progress=_progress)
    except (InputError, WriteError) as err:  # found before any work, or a failed write
        print(f"sweep: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    app.run(main)
