"""The study benchmark: N models x every layer x the four regions' benchmarks + memorability,
end to end, on stand-ins of the real benchmarks' shapes, in one command.

    python -m experiments.bench_study            # alexnet + resnet18 at the real sizes
    python -m experiments.bench_study --quick    # tiny sizes and models, ~1 minute (the tests)
    make bench-study                             # the first line

Stand-in data (written once under ``--data_dir`` and reused): the files of Brain-Score's public
and private MajajHong2015 and FreemanZiemba2013 benchmarks in Brain-Score's layout under their
real identifiers (a user catalog puts them in place of the real entries, so the real benchmark
names, visual angles and loaders run): hvm-public 3200 and hvm-private 2560 object images
(64 objects, 256 px, 8 deg) with 88 V4 and 168 IT sites; FreemanZiemba aperture-public 135 and
-private 315 texture images (320 px, 4 deg) with 102 V1 and 103 V2 sites; and a LaMem-layout
sample (``--lamem_images``, 5 splits) for LaMem.memorability.  The recordings are a random
read-out of the images' coarse pixels plus trial noise: the bench measures time and memory,
not scores.

The study is one sweep (``jaxbrain.engine.sweep``: every tap of every model, random
projection to 1000 features, all nine benchmarks, a fresh output folder under
``--output_dir``), run in a child process so that its peak memory is its own.  Printed (and
written to ``bench_study.json`` in the run's folder): seconds per stage (benchmark inputs:
recordings, splits, ceilings; the model: building or loading it, hashing its weights; placement
of the stimuli; extraction with reduction and the bank
cache; scoring; the store; the report), layers/s, peak host memory (``ru_maxrss``) and device
memory (where the device reports it), the scoring's GFLOP/s (PLS units, dominant terms) against
the matmul rates of jax and numpy measured in the same run, and the projection of the measured
per-layer cost to a study of ``--project_layers`` layers (Harada & Sakai: 16,860).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Tiny sizes and models (about a minute; the tests run it).")
flags.DEFINE_list("models", None, "Model references (default: alexnet,resnet18; --quick: "
                  "alexnet_tiny,resnet18_tiny). Random initialisation is as fast as trained "
                  "weights.")
flags.DEFINE_list("benchmarks", None, "Benchmarks (default: the public and private V1, V2, V4, "
                  "IT PLS benchmarks and LaMem.memorability).")
flags.DEFINE_string("data_dir", None, "Stand-in data, written on first use (default: "
                    "runs/bench_study/data, or runs/bench_study/data-quick).")
flags.DEFINE_string("output_dir", "runs/bench_study", "Each run writes a fresh run-<time> "
                    "folder here (results, bank cache, report, bench_study.json).")
flags.DEFINE_integer("lamem_images", 2000, "Images in the LaMem-layout sample.")
flags.DEFINE_integer("batch_size", 0, "Extraction batch size (0: from the activation memory "
                     "budget, as the sweep's default).")
flags.DEFINE_list("taps", [], "Layer taps (default: every tap of every model).")
flags.DEFINE_enum("extraction_dtype", "float32", ["float32", "bfloat16"], "The dtype the "
                  "models run in.")
flags.DEFINE_bool("compare_dtypes", False, "Run the study twice, the models in float32 and in "
                  "bfloat16, and print how far apart the scores are.")
flags.DEFINE_integer("project_layers", 16860, "Layers of the study the figures are projected "
                     "to (Harada & Sakai 2023: 16,860 layers of 64 CNNs).")
flags.DEFINE_string("json_out", None, "Also write the figures to this file.")

ALL_BENCHMARKS = ("FreemanZiemba2013public.V1-pls", "FreemanZiemba2013.V1-pls",
                  "FreemanZiemba2013public.V2-pls", "FreemanZiemba2013.V2-pls",
                  "MajajHong2015public.V4-pls", "MajajHong2015.V4-pls",
                  "MajajHong2015public.IT-pls", "MajajHong2015.IT-pls", "LaMem.memorability")
# Real: the real sets' images and sites (see the module docstring).  Quick: the same files,
# small enough for the tests (10 images per object: MajajHong's 10 % test split needs one).
SIZES = {
    "real": {"hvm_objects": 64, "hvm_per_object": (50, 40), "fz_families": 15,
             "fz_samples": 15, "sites": {"V1": 102, "V2": 103, "V4": 88, "IT": 168},
             "repetitions": 6},
    "quick": {"hvm_objects": 8, "hvm_per_object": (10, 10), "fz_families": 3,
              "fz_samples": 10, "sites": {"V1": 12, "V2": 12, "V4": 12, "IT": 16},
              "repetitions": 4},
}
HVM_CATEGORIES = ("animals", "boats", "cars", "chairs", "faces", "fruits", "planes", "tables")
LAMEM_SPLITS = 5
MANIFEST = "standins.json"


# ------------------------------------------------------------------------------ stand-in data
def _fz_is_public(texture_type: str, sample: int, n_samples: int) -> bool:
    """135 of 450 real FreemanZiemba images are public: samples 1-4 and, of the textures, 5."""
    if n_samples < 15:
        return sample <= n_samples // 2
    return sample <= 4 or (sample == 5 and texture_type == "texture")


def _coarse(image, size: int = 8):
    """Grey-level block means of an image: the features the stand-in sites read out."""
    import numpy as np

    grey = image.mean(-1) if image.ndim == 3 else image.astype(float)
    h, w = (np.array(grey.shape) // size) * size
    return grey[:h, :w].reshape(size, h // size, size, w // size).mean((1, 3)).ravel() / 255


def write_data(folder: Path, size: str, lamem_images: int) -> dict:
    """Write (or reuse) the stand-in files; returns the manifest."""
    import numpy as np
    from PIL import Image

    from experiments import standins

    config = json.loads(json.dumps({**SIZES[size], "lamem_images": lamem_images,
                                    "version": 1}))  # as the manifest holds it
    manifest_path = folder / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest["config"] != config:
            raise SystemExit(f"{folder} holds stand-ins of another size ({manifest['config']}); "
                             "give another --data_dir")
        standins.local_catalog(folder)  # absolute paths: the folder may have moved
        return manifest
    if folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"{folder} is not empty and has no {MANIFEST}: give another --data_dir")
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    stimuli = {}  # (kind, access) -> rows, coarse pixels
    objects = standins.hvm_objects(rng, config["hvm_objects"])
    n_public, n_private = config["hvm_per_object"]
    per_category = max(1, config["hvm_objects"] // len(HVM_CATEGORIES))
    families = standins.fz_families(rng, config["fz_families"])
    for access, identifier in zip(("public", "private"), standins.DATASETS["hvm"]["stimuli"],
                                  strict=True):
        rows, images = [], []
        for o, obj in enumerate(objects):
            for k in range(n_public if access == "public" else n_private):
                index = o * (n_public + n_private) + k + (n_public if access == "private" else 0)
                sid = standins.stimulus_id("hvm", index)
                rows.append({"stimulus_id": sid, "filename": f"{sid}.png",
                             "object_name": f"obj{o:02d}",
                             "category_name": HVM_CATEGORIES[(o // per_category)
                                                             % len(HVM_CATEGORIES)],
                             "image_index": index})
                images.append(standins.hvm_image(rng, obj))
        standins.write_stimulus_set(data, identifier, rows, images)
        stimuli["hvm", access] = rows, np.stack([_coarse(image) for image in images])
    for access, identifier in zip(("public", "private"), standins.DATASETS["fz"]["stimuli"],
                                  strict=True):
        rows, images = [], []
        for f, family in enumerate(families):
            for texture_type in ("noise", "texture"):
                for sample in range(1, config["fz_samples"] + 1):
                    if _fz_is_public(texture_type, sample, config["fz_samples"]) != (
                            access == "public"):
                        continue
                    sid = standins.stimulus_id("fz", f * 100 + (texture_type == "texture") * 50
                                               + sample)
                    rows.append({"stimulus_id": sid, "filename": f"{sid}.png",
                                 "texture_family": f, "texture_type": texture_type,
                                 "sample": sample, "resolution": "320x320"})
                    images.append(standins.fz_image(rng, family, texture_type))
        standins.write_stimulus_set(data, identifier, rows, images)
        stimuli["fz", access] = rows, np.stack([_coarse(image) for image in images])
    regions = {"fz": ("V1", "V2"), "hvm": ("V4", "IT")}
    for kind, names in regions.items():
        sites = [region for region in names for _ in range(config["sites"][region])]
        pixels = np.concatenate([stimuli[kind, a][1] for a in ("public", "private")])
        signal = (pixels - pixels.mean(0)) @ rng.standard_normal((pixels.shape[1], len(sites)))
        signal = signal / signal.std(0)
        gain, baseline = rng.uniform(3, 8, len(sites)), rng.uniform(5, 20, len(sites))
        noise_sd = rng.uniform(0.8, 2.0, len(sites))
        n_first = len(stimuli[kind, "public"][0])
        for access, identifier in zip(("public", "private"), standins.DATASETS[kind]["assembly"],
                                      strict=True):
            part = signal[:n_first] if access == "public" else signal[n_first:]
            standins.write_recordings(data, kind, identifier, stimuli[kind, access][0], part,
                                      np.array(sites), gain, baseline, noise_sd, rng,
                                      config["repetitions"])
    lamem = folder / "lamem"
    (lamem / "images").mkdir(parents=True, exist_ok=True)
    (lamem / "splits").mkdir(parents=True, exist_ok=True)
    names = [f"lamem{i:06d}.jpg" for i in range(lamem_images)]
    for name in names:
        Image.fromarray(standins.reference_image(rng)).save(lamem / "images" / name, quality=90)
    scores = rng.uniform(0.4, 1.0, lamem_images)
    n_test = max(3, round(0.2 * lamem_images))
    for k in range(1, LAMEM_SPLITS + 1):
        order = rng.permutation(lamem_images)
        for part, rows in (("test", order[:n_test]), ("train", order[n_test:])):
            lines = [f"{names[i]} {scores[i]:.6f}" for i in np.sort(rows)]
            (lamem / "splits" / f"{part}_{k}.txt").write_text("\n".join(lines) + "\n")
    standins.local_catalog(folder)
    manifest = {"config": config, "seconds": time.perf_counter() - start,
                "images": {f"{kind}-{access}": len(rows)
                           for (kind, access), (rows, _) in stimuli.items()},
                "lamem_images": lamem_images}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


# ---------------------------------------------------------------------------------- the study
def matmul_rates(n: int = 2048) -> dict:
    """GFLOP/s of a float32 n x n matmul on the default device (jax) and on the host (numpy),
    best of 5 after a warm-up."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    device_a = jnp.asarray(a)
    product = jax.jit(lambda x: x @ x)

    def best(run):
        run()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return 2 * n**3 / min(times) / 1e9

    return {"jax": best(lambda: product(device_a).block_until_ready()),
            "numpy": best(lambda: a @ a)}


def _scoring_flops(bank_shapes: dict, units: list[tuple[str, int, int]]) -> float:
    """Dominant flops of the PLS units: per (layer of d features, benchmark of n stimuli and m
    sites), :func:`jaxbrain.kernels.pls.pls_cv_flops` with 10 splits of 90 %."""
    from jaxbrain.kernels.pls import pls_cv_flops

    total = 0.0
    for source, n, m in units:
        for d in bank_shapes[source]:
            total += pls_cv_flops(n, min(d, n), m, 10, round(0.9 * n), 25)
    return total


def _study(spec_fields: dict, result_path: str) -> None:
    """The child process: the sweep, then its figures as JSON at ``result_path``."""
    import jax

    from jaxbrain.engine.inputs import load_benchmarks
    from jaxbrain.engine.sweep import SweepSpec, run_sweep
    from jaxbrain.features import load as load_bank

    spec = SweepSpec(**spec_fields)
    start = time.perf_counter()
    summary = run_sweep(spec)
    wall = time.perf_counter() - start
    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    markers = [json.loads(p.read_text()) for p in sorted((Path(spec.output_dir) /
                                                          "models").glob("*.json"))]
    shapes, stimuli = {}, {}
    for marker in markers:
        for bank in marker["banks"]:
            loaded = load_bank(bank["bank_dir"], bank["bank"])
            stimuli[bank["stimuli"]] = len(loaded.stimulus_ids)
            shapes.setdefault(bank["stimuli"], []).extend(
                int(layer.shape[1]) for layer in loaded.layers.values())
    # (stimulus source, stimuli, sites) of each neural benchmark: its recordings only, the
    # images are not read again
    neural = []
    for bench in load_benchmarks(spec.benchmarks, lamem_dir=spec.lamem):
        if bench.benchmark.kind == "neural":
            csv, folder, _ = bench.benchmark.stimulus_source(bench.prepared)
            neural.append((csv or folder, stimuli[csv or folder],
                           int(bench.prepared.y.shape[1])))
    figures = {
        "wall_seconds": wall, "summary": summary,
        "models": {m["model"]: {"layers": len(m["layers"]), "units": len(m["units"]),
                                "seconds": m["seconds"]} for m in markers},
        "peak_host_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "peak_device_gib": (stats["peak_bytes_in_use"] / 2**30
                            if "peak_bytes_in_use" in stats else None),
        "device": str(device), "device_count": jax.device_count(),
        "pls_flops": _scoring_flops(shapes, neural),
        "matmul_gflops": matmul_rates(),
        "stimuli": stimuli,
    }
    Path(result_path).write_text(json.dumps(figures, indent=1, default=str))


def report(figures: dict, project_layers: int) -> dict:
    """Totals, rates and the projection from a run's figures; printed."""
    from jaxbrain.engine.sweep import STAGES as stages
    per_stage = {stage: sum(m["seconds"][stage] for m in figures["models"].values())
                 for stage in stages}
    per_stage["inputs"] = figures["summary"]["inputs_seconds"]
    per_stage["report"] = figures["summary"]["report_seconds"]
    layers = sum(m["layers"] for m in figures["models"].values())
    units = sum(m["units"] for m in figures["models"].values())
    model_seconds = sum(per_stage[stage] for stage in stages)
    per_layer = model_seconds / layers
    scoring_gflops = figures["pls_flops"] / max(per_stage["scoring"], 1e-9) / 1e9
    rates = figures["matmul_gflops"]
    out = {
        "stage_seconds": per_stage, "wall_seconds": figures["wall_seconds"],
        "layers": layers, "units": units,
        "layers_per_second": layers / model_seconds, "units_per_second": units / model_seconds,
        "seconds_per_layer": per_layer,
        "scoring_gflops": scoring_gflops,
        "scoring_fraction_of_jax_matmul": scoring_gflops / rates["jax"],
        "scoring_fraction_of_numpy_matmul": scoring_gflops / rates["numpy"],
        "projected_layers": project_layers,
        "projected_hours": project_layers * per_layer / 3600,
        "projected_hours_scoring_only": project_layers * per_stage["scoring"] / layers / 3600,
    }
    print(f"== study: {len(figures['models'])} models, {layers} layers x "
          f"{units // max(layers, 1)} benchmarks = {units} units; stimuli "
          + ", ".join(f"{Path(k).name} {v}" for k, v in figures["stimuli"].items()))
    print("seconds  " + "   ".join(f"{k} {v:.1f}" for k, v in per_stage.items())
          + f"   (wall {figures['wall_seconds']:.1f})")
    for name, m in figures["models"].items():
        print(f"  {name}: {m['layers']} layers, "
              + ", ".join(f"{k} {v:.1f} s" for k, v in m["seconds"].items()))
    print(f"rate     {out['layers_per_second']:.3f} layers/s   {out['units_per_second']:.2f} "
          f"layer-benchmark units/s   {per_layer:.2f} s/layer (all stages)")
    device_memory = ("not reported by this device" if figures["peak_device_gib"] is None
                     else f"{figures['peak_device_gib']:.2f} GiB")
    print(f"memory   peak host {figures['peak_host_gib']:.2f} GiB   peak device {device_memory}"
          f"   ({figures['device']}, {figures['device_count']} device(s))")
    print(f"scoring  {scoring_gflops:.1f} GFLOP/s (PLS units) = "
          f"{100 * out['scoring_fraction_of_jax_matmul']:.0f}% of jax's matmul "
          f"({rates['jax']:.0f} GFLOP/s), {100 * out['scoring_fraction_of_numpy_matmul']:.0f}% "
          f"of numpy's ({rates['numpy']:.0f})")
    print(f"project  {project_layers} layers: {out['projected_hours']:.1f} h at this rate "
          f"(scoring alone {out['projected_hours_scoring_only']:.1f} h)")
    return out


def main(argv):
    del argv
    size = "quick" if FLAGS.quick else "real"
    root = Path(FLAGS.output_dir)
    data_dir = Path(FLAGS.data_dir or root / ("data-quick" if FLAGS.quick else "data"))
    lamem_images = min(FLAGS.lamem_images, 40) if FLAGS.quick else FLAGS.lamem_images
    manifest = write_data(data_dir, size, lamem_images)
    print(f"stand-in data: {data_dir} ({manifest['images']}, LaMem sample "
          f"{manifest['lamem_images']}; written in {manifest['seconds']:.0f} s, once)")
    models = FLAGS.models or (["alexnet_tiny", "resnet18_tiny"] if FLAGS.quick
                              else ["alexnet", "resnet18"])
    os.environ["JAXBRAIN_CATALOG"] = str(data_dir / "jaxbrain_catalog.json")
    spec_fields = {"models": tuple(models), "benchmarks": tuple(FLAGS.benchmarks or
                                                                ALL_BENCHMARKS),
                   "lamem": str(data_dir / "lamem"), "batch_size": FLAGS.batch_size,
                   "taps": tuple(FLAGS.taps), "cka": False, "title": "jaxbrain study benchmark"}
    if FLAGS.compare_dtypes:
        compare_dtypes(root, spec_fields)
        return
    spec_fields["extraction_dtype"] = FLAGS.extraction_dtype
    run_dir, figures = run_study(root, spec_fields)
    out = {"size": size, "models": models, "data_dir": str(data_dir),
           "run_dir": str(run_dir), **report(figures, FLAGS.project_layers), "raw": figures}
    for path in filter(None, (run_dir / "bench_study.json", FLAGS.json_out)):
        Path(path).write_text(json.dumps(out, indent=1, default=str))


def run_study(root: Path, spec_fields: dict) -> tuple[Path, dict]:
    """One sweep in a fresh ``root/run-<time>`` folder, in a child process; its figures."""
    run_dir = root / time.strftime("run-%Y%m%d-%H%M%S")
    suffix = 0
    while run_dir.exists():  # never reuse a run's folder: its timings would be a resume's
        suffix += 1
        run_dir = root / f"{time.strftime('run-%Y%m%d-%H%M%S')}-{suffix}"
    run_dir.mkdir(parents=True)
    result_path = run_dir / "figures.json"
    child = multiprocessing.get_context("spawn").Process(
        target=_study, args=({**spec_fields, "output_dir": str(run_dir)}, str(result_path)),
        daemon=True)
    child.start()
    child.join()
    if child.exitcode != 0:
        sys.exit(f"the study failed (exit code {child.exitcode}); see above")
    figures = json.loads(result_path.read_text())
    figures["peak_host_gib"] = max(figures["peak_host_gib"], resource.getrusage(
        resource.RUSAGE_CHILDREN).ru_maxrss / 2**20)
    return run_dir, figures


def compare_dtypes(root: Path, spec_fields: dict) -> dict:
    """The same study with the models run in float32 and in bfloat16: how far apart the
    scores are, and whether each benchmark's best layer changes."""
    import numpy as np

    from jaxbrain.engine.store import ResultsStore

    rows = {}
    for dtype in ("float32", "bfloat16"):
        run_dir, figures = run_study(root, {**spec_fields, "extraction_dtype": dtype})
        rows[dtype] = ResultsStore(run_dir / "results").rows().set_index(
            ["model", "benchmark", "layer"])["raw"].astype(float)
        extraction = sum(m["seconds"]["extraction"] for m in figures["models"].values())
        print(f"{dtype}: extraction {extraction:.1f} s ({run_dir})")
    both = rows["float32"].to_frame("float32").join(rows["bfloat16"].rename("bfloat16"))
    difference = (both["bfloat16"] - both["float32"]).abs().dropna()
    best = both.dropna().groupby(level=["model", "benchmark"]).agg(
        lambda column: column.idxmax()[-1])
    same_best = int((best["float32"] == best["bfloat16"]).sum())
    out = {"units": len(difference), "max_abs_difference": float(difference.max()),
           "median_abs_difference": float(np.median(difference)),
           "best_layer_same": same_best, "benchmarks": len(best)}
    print(f"bfloat16 vs float32 extraction, {out['units']} (layer, benchmark) scores: |diff| "
          f"max {out['max_abs_difference']:.2e}, median {out['median_abs_difference']:.2e}; "
          f"best layer the same on {same_best} of {len(best)} (model, benchmark) pairs")
    (root / "dtype_comparison.json").write_text(json.dumps(out, indent=1))
    return out

if __name__ == "__main__":
    app.run(main)
