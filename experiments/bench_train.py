"""Training throughput of jaxbrain's real train step on this machine, and what fraction of its
matmul peak that is.

    python -m experiments.bench_train                 # ResNet-18 and AlexNet, 224 px, batch 32
    python -m experiments.bench_train --quick         # tiny variants, 64 px, batch 8 (seconds)
    python -m experiments.bench_train --models=resnet18 --steps=5 --json_out=/tmp/t.json
    python -m experiments.bench_train --pipeline_images=512 --pipeline_workers=0,2

Each model is built with both heads (1000 classes + memorability) and trained with the joint
objective and AdamW (``make_optimizer``) on one fixed batch of random images, labels and
scores, through ``compile_train_step``. Reported per model: compile time, median step time
over ``--steps`` steps after one warm-up step, images/s, the FLOPs of one step as XLA counts
them (``cost_analysis``), the achieved GFLOP/s, and that as a fraction of a float32 matmul
measured in the same run with jax and with numpy (before and after the models; the higher
counts, as the CPU may be shared). As a sanity check of XLA's count, the eval forward pass
is counted twice: by XLA, and analytically as 2 × the multiply-accumulates of
every convolution and dense layer in its jaxpr (torchvision's convention, which also counts
taps on zero padding, so it is slightly above XLA's). A train step should cost about
3 forwards (forward, gradient w.r.t. activations, gradient w.r.t. weights).

Then the host input pipeline on its own (``--pipeline_images``): ImageNet-sized JPEGs read,
decoded and augmented (torchvision's recipe) into batches, with 0 and 2 grain worker
processes, beside the train step's consumption measured above (the ratio: > 1 means the host
keeps up with the step).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags
from flax import nnx
from PIL import Image

from jaxbrain.data.tfds_builders import FileSource
from jaxbrain.models import create
from jaxbrain.train import checkpoints
from jaxbrain.train.loop import compile_train_step, make_optimizer
from jaxbrain.train.objectives import objective
from jaxbrain.train.pipeline import iterate, train_dataset

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Tiny model variants at 64 px, batch 8, 2 steps (smoke test); "
                  "explicitly given --batch_size/--image_size/--steps still apply.")
flags.DEFINE_list("models", ["resnet18", "alexnet"], "Architectures (``_tiny`` added in --quick).")
flags.DEFINE_integer("batch_size", 32, "Images per train step.")
flags.DEFINE_integer("image_size", 224, "Square input side in pixels.")
flags.DEFINE_integer("steps", 3, "Timed train steps per model (after one warm-up step).")
flags.DEFINE_integer("matmul_n", 2048, "Side of the square float32 matmul that measures peak.")
flags.DEFINE_string("json_out", None, "Also write the figures to this JSON file.")
flags.DEFINE_integer("pipeline_images", 256, "JPEGs (ImageNet-sized, 500x375) the host input "
                     "pipeline decodes and augments on its own; 0: skip that part.")
flags.DEFINE_list("pipeline_workers", ["0", "2"], "grain worker processes to time it with.")

NUM_CLASSES = 1000
QUICK = {"batch_size": 8, "image_size": 64, "steps": 2, "matmul_n": 1024, "pipeline_images": 32}


def setting(name):
    """A flag's value, or its --quick value when --quick is on and the flag was not given."""
    if FLAGS.quick and not FLAGS[name].present:
        return QUICK[name]
    return FLAGS[name].value


def xla_flops(compiled) -> float:
    """FLOPs XLA counts for a compiled program (``cost_analysis`` is a dict, or a list of
    dicts, one per HLO module, depending on the jax version)."""
    cost = compiled.cost_analysis()
    entries = cost if isinstance(cost, list | tuple) else [cost]
    return float(sum(entry.get("flops", 0.0) for entry in entries))


def _sub_jaxprs(eqn):
    for value in eqn.params.values():
        for item in value if isinstance(value, list | tuple) else (value,):
            if hasattr(item, "eqns"):
                yield item
            elif hasattr(item, "jaxpr") and hasattr(item.jaxpr, "eqns"):
                yield item.jaxpr


def matmul_flops(jaxpr) -> int:
    """2 × multiply-accumulates of every dot_general and convolution in a jaxpr (recursively;
    the models have no loops, so a sub-jaxpr runs once)."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (lhs_contract, _), _ = eqn.params["dimension_numbers"]
            depth = math.prod(eqn.invars[0].aval.shape[d] for d in lhs_contract)
            total += 2 * math.prod(eqn.outvars[0].aval.shape) * depth
        elif eqn.primitive.name == "conv_general_dilated":
            rhs_spec = eqn.params["dimension_numbers"].rhs_spec  # (out, in, *spatial)
            kernel = eqn.invars[1].aval.shape
            depth = math.prod(kernel[d] for d in rhs_spec[1:])  # in/groups × window
            total += 2 * math.prod(eqn.outvars[0].aval.shape) * depth
        for sub in _sub_jaxprs(eqn):
            total += matmul_flops(sub)
    return total


class OtherLoad:
    """Share of the machine's CPU time taken by others since construction: other processes
    and hypervisor steal (/proc/stat's busy time minus this process's own CPU time; None where
    /proc/stat is absent). A shared CPU slows every timing here, and the load average cannot
    tell our threads from others'. Contention from outside this VM (e.g. on sibling
    hyperthreads) stays invisible: compare the matmul peaks before and after the models."""

    def __init__(self):
        self.start = self._snapshot()

    @staticmethod
    def _snapshot():
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except OSError:
            return None
        busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system, irq softirq steal
        own = os.times()
        return (busy / os.sysconf("SC_CLK_TCK"), own.user + own.system, time.perf_counter())

    def share(self) -> float | None:
        end = self._snapshot()
        if end is None or self.start is None:
            return None
        busy, own, wall = (b - a for a, b in zip(self.start, end, strict=True))
        return min(max(busy - own, 0.0) / (wall * os.cpu_count()), 1.0)  # 10 ms ticks: coarse


def median_seconds(fn, repeats):
    """Median wall time of ``fn()`` (run to completion) over ``repeats`` runs after a warm-up:
    the median resists other processes briefly loading the CPU."""
    jax.block_until_ready(fn())
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def matmul_peak(n, repeats=5) -> dict:
    """GFLOP/s (2n³/t) of an n×n float32 matmul, under jax.jit and in numpy (same inputs)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    dot = jax.jit(jnp.dot)
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    flops = 2 * n**3
    return {"n": n,
            "jax_gflops": flops / median_seconds(lambda: dot(ja, jb), repeats) / 1e9,
            "numpy_gflops": flops / median_seconds(lambda: a @ b, repeats) / 1e9}


def random_batch(batch_size, image_size, seed=0) -> dict:
    """A batch of pipeline records where every image has a class label and a score."""
    rng = np.random.default_rng(seed)
    ones = np.ones(batch_size, np.float32)
    return {"image": rng.standard_normal((batch_size, image_size, image_size, 3), np.float32),
            "label": rng.integers(0, NUM_CLASSES, batch_size, dtype=np.int32),
            "has_label": ones,
            "memorability": rng.uniform(0.4, 1.0, batch_size).astype(np.float32),
            "has_memorability": ones}


def optimizer_config(steps) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"optimizer": "adamw", "learning_rate": 1e-3,
                                      "momentum": 0.9, "weight_decay": 5e-4,
                                      "warmup_steps": 1, "num_steps": steps + 1})


def bench_model(name, batch_size, image_size, steps) -> dict:
    """Compile, warm up and time the joint-objective train step of one architecture."""
    model = create(name, num_classes=NUM_CLASSES, heads=("classification", "memorability"),
                   seed=0)
    graphdef, params, batch_stats, rest = checkpoints.split_model(model)
    tx = make_optimizer(optimizer_config(steps))
    state = checkpoints.initial_state(params, batch_stats, tx)
    batch = jax.device_put(random_batch(batch_size, image_size))

    def forward(params, batch_stats, images):
        model = nnx.merge(graphdef, params, batch_stats, rest)
        model.eval()
        return model(images)[0]

    images = batch["image"]
    forward_xla = xla_flops(jax.jit(forward).lower(params, batch_stats, images).compile())
    forward_analytic = matmul_flops(jax.make_jaxpr(forward)(params, batch_stats, images).jaxpr)

    step = compile_train_step(graphdef, rest, tx, objective("joint"), 0, batch_size)
    start = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    train_xla = xla_flops(compiled)

    state, metrics = jax.block_until_ready(compiled(state, batch))  # warm-up; state is donated
    seconds, load = [], OtherLoad()
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = jax.block_until_ready(compiled(state, batch))
        seconds.append(time.perf_counter() - start)
    other_load = load.share()
    step_s = float(np.median(seconds))
    return {"model": name, "batch_size": batch_size, "image_size": image_size,
            "parameters": int(sum(p.size for p in jax.tree.leaves(params))),
            "compile_s": compile_s, "step_seconds": seconds, "step_s": step_s,
            "images_per_s": batch_size / step_s,
            "xla_train_gflop_per_step": train_xla / 1e9,
            "xla_forward_gflop_per_batch": forward_xla / 1e9,
            "analytic_forward_gflop_per_batch": forward_analytic / 1e9,
            "analytic_forward_gflop_per_image": forward_analytic / batch_size / 1e9,
            "train_over_forward": train_xla / forward_xla,
            "achieved_gflops": train_xla / step_s / 1e9,
            "others_cpu_share": other_load, "final_loss": float(metrics["loss"])}


def write_jpegs(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` ImageNet-sized JPEGs (500 x 375, quality 90): smooth colour fields with texture,
    whose decoding costs what a photograph's does (pure noise would cost more)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:375, 0:500].astype(np.float32)
    paths = []
    for i in range(n):
        f = rng.uniform(5, 60, 3)
        pixels = np.stack([127 + 90 * np.sin(x / f[c] + c + i) * np.cos(y / f[(c + 1) % 3])
                           for c in range(3)], -1) + rng.normal(0, 12, (375, 500, 3))
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def bench_pipeline(n_images: int, batch_size: int, image_size: int, workers: int) -> dict:
    """Images/s of the training input pipeline on its own: JPEG files read, decoded,
    random-resized-cropped, flipped, normalised and batched (torchvision's recipe)."""
    with tempfile.TemporaryDirectory() as folder:
        paths = write_jpegs(Path(folder), n_images)
        source = FileSource(tuple(paths), labels=tuple(i % 10 for i in range(len(paths))))
        steps = len(paths) // batch_size
        dataset = train_dataset([source], batch_size=batch_size, image_size=image_size,
                                seed=0, num_steps=steps, recipe="torchvision")
        start = time.perf_counter()
        batches = iterate(dataset, 0, workers)
        next(batches)
        first_s = time.perf_counter() - start  # start-up: worker processes, read-ahead
        for _ in batches:
            pass
        total_s = time.perf_counter() - start
    # grain reads ahead on threads while the first batch is awaited, so the rate after the
    # first batch overstates; the whole run's rate is the figure (start-up included)
    return {"workers": workers, "images": steps * batch_size, "batch_size": batch_size,
            "image_size": image_size, "first_batch_s": first_s, "total_s": total_s,
            "images_per_s": steps * batch_size / total_s}


def print_table(results, peak) -> None:
    header = (f"{'model':<14} {'batch':>5} {'px':>4} {'compile s':>9} {'step s':>7} "
              f"{'img/s':>7} {'GFLOP/step':>10} {'fwd XLA':>8} {'fwd 2MAC':>8} {'trn/fwd':>7} "
              f"{'GFLOP/s':>8} {'%jax pk':>7} {'%np pk':>7} {'other%':>6}")
    print(f"\n== train step throughput (joint objective, AdamW, fp32; "
          f"{jax.device_count()} {jax.devices()[0].platform} device(s), {os.cpu_count()} cores)")
    before, after = peak["before"], peak["after"]
    print(f"matmul peak ({peak['n']}x{peak['n']} float32, best of before/after the models): "
          f"jax {peak['jax_gflops']:.1f} GFLOP/s (before {before['jax_gflops']:.1f}, "
          f"after {after['jax_gflops']:.1f}), numpy {peak['numpy_gflops']:.1f} GFLOP/s "
          f"(before {before['numpy_gflops']:.1f}, after {after['numpy_gflops']:.1f})")
    print(header)
    print("-" * len(header))
    for r in results:
        share = r["others_cpu_share"]
        other = "n/a" if share is None else f"{100 * share:.0f}%"
        print(f"{r['model']:<14} {r['batch_size']:>5} {r['image_size']:>4} "
              f"{r['compile_s']:>9.1f} {r['step_s']:>7.3f} {r['images_per_s']:>7.2f} "
              f"{r['xla_train_gflop_per_step']:>10.4g} {r['xla_forward_gflop_per_batch']:>8.4g} "
              f"{r['analytic_forward_gflop_per_batch']:>8.4g} {r['train_over_forward']:>7.2f} "
              f"{r['achieved_gflops']:>8.1f} {100 * r['fraction_of_jax_peak']:>6.1f}% "
              f"{100 * r['fraction_of_numpy_peak']:>6.1f}% {other:>6}")
    print("GFLOP/step and fwd XLA: XLA's cost_analysis; fwd 2MAC: 2 x conv/dense MACs of the "
          "eval forward; GFLOP/s = XLA train FLOPs / median step time")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    batch_size, image_size, steps = (setting(k) for k in ("batch_size", "image_size", "steps"))
    names = [m if not FLAGS.quick or m.endswith("_tiny") else f"{m}_tiny" for m in FLAGS.models]
    figures = {"device": str(jax.devices()[0]), "n_devices": jax.device_count(),
               "cpu_count": os.cpu_count()}
    load = OtherLoad()
    before = matmul_peak(setting("matmul_n"))
    print(f"matmul before: jax {before['jax_gflops']:.1f} GFLOP/s, numpy "
          f"{before['numpy_gflops']:.1f} GFLOP/s", flush=True)
    results = []
    for name in names:
        r = bench_model(name, batch_size, image_size, steps)
        results.append(r)
        print(f"{name}: compile {r['compile_s']:.1f} s, step {r['step_s']:.3f} s "
              f"({r['images_per_s']:.2f} img/s), {r['achieved_gflops']:.1f} GFLOP/s", flush=True)
    after = matmul_peak(setting("matmul_n"))
    # Measured on both sides of the models; the higher is nearer the uncontended peak when
    # another process loads the CPU for part of the run.
    peak = {"n": before["n"], "before": before, "after": after,
            **{k: max(before[k], after[k]) for k in ("jax_gflops", "numpy_gflops")}}
    for r in results:
        r["fraction_of_jax_peak"] = r["achieved_gflops"] / peak["jax_gflops"]
        r["fraction_of_numpy_peak"] = r["achieved_gflops"] / peak["numpy_gflops"]
    figures.update(matmul_peak=peak, models=results, others_cpu_share=load.share())
    print_table(results, peak)
    share = figures["others_cpu_share"]
    if share is not None:
        print(f"other processes and steal took {100 * share:.0f}% of the CPU during the whole "
              "run (other%: during each model's timed steps)")
    n_images = setting("pipeline_images")
    if n_images:
        figures["pipeline"] = []
        print(f"\n== host input pipeline on its own ({n_images} JPEGs 500x375 -> "
              f"{image_size} px, torchvision recipe, batch {batch_size}, {os.cpu_count()} cores)")
        for workers in map(int, FLAGS.pipeline_workers):
            p = bench_pipeline(n_images, batch_size, image_size, workers)
            figures["pipeline"].append(p)
            beside = ", ".join(f"{r['model']} train step {r['images_per_s']:.1f} img/s "
                               f"(pipeline {p['images_per_s'] / r['images_per_s']:.0f}x)"
                               for r in results)
            print(f"workers {workers}: {p['images_per_s']:.1f} img/s ({p['images']} images in "
                  f"{p['total_s']:.1f} s, first batch after {p['first_batch_s']:.1f} s); "
                  f"{beside}", flush=True)
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    app.run(main)
