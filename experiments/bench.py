"""Speed and fidelity of jaxbrain's PLS predictivity against scikit-learn, in one run.

    python -m experiments.bench            # the full bench (several minutes on 2 cores)
    python -m experiments.bench --quick    # small sizes, seconds (used by the tests)
    python -m experiments.bench --noridge  # without ridge vs RidgeCV (scikit-learn's minutes)

Part 1 scores one synthetic layer (3200 stimuli × 2048 features → 168 neuroids, 64 object
labels, 10 stratified splits, PLS-25) with (a) jaxbrain and (b) scikit-learn's PLSRegression
in the Brain-Score protocol (fit per split, Pearson per neuroid, median, mean), and prints both
scores, their difference, seconds per layer, the speed ratio and the achieved GFLOP/s next to
a numpy matmul measured in the same run.  Part 2 scores a stack of 64 layers of 3200 × 1024
in one call and reports layers per second, against scikit-learn on one layer of that width.
The floor (after part 1): what NIPALS cannot avoid on this machine, measured in the same run —
two passes over X per component at the measured read bandwidth (the best of numpy's and
jax's reductions over the layer itself) plus one XᵀY at the measured matmul rate (the best of
numpy's and jax's on a square product) — against the kernel's time, at the part-1 width and at
a quarter of it.  Part 3 (unless ``--noridge``) scores the part-1 layer with ridge (21
alphas, alpha per neuroid by leave-one-out) against ``RidgeCV(alphas, alpha_per_target=True)``
in the same protocol, with the largest relative difference of the held-out predictions.
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import RidgeCV

from jaxbrain.kernels import DEFAULT_ALPHAS, neural_predictivity, stratified_shuffle_splits
from jaxbrain.kernels.pls import pls_cv_flops
from jaxbrain.kernels.ridge import ridge_cv_predict

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Small sizes (seconds), for smoke tests.")
flags.DEFINE_integer("n_components", 25, "PLS components.")
flags.DEFINE_bool("ridge", True, "Compare ridge with scikit-learn's RidgeCV.")
flags.DEFINE_integer(
    "wide_features", 0,
    "Also score one layer this wide (e.g. 25088); scikit-learn runs split 0 only, x n_splits.",
)
flags.DEFINE_integer(
    "bank_layers", 0,
    "Also score a sweep-style bank of this many layers (3200 stimuli, widths up to 1000) on 4 "
    "regions with the engine's batched scorer, against the per-layer loop of Brain-Score's "
    "protocol (jaxbrain's kernel one layer at a time, and scikit-learn on one layer).",
)
flags.DEFINE_string("json_out", None, "Also write the figures to this JSON file.")


def synthetic_layer(rng, n, d, m, n_objects, n_latent=64):
    """Activations and neural targets sharing an object-structured latent space."""
    labels = np.repeat(np.arange(n_objects), n // n_objects)
    latent = rng.standard_normal((n_objects, n_latent))[labels] + rng.standard_normal(
        (n, n_latent)
    )
    spectrum = 1.0 / np.sqrt(1.0 + np.arange(n_latent))
    x = (latent * spectrum) @ rng.standard_normal((n_latent, d))
    x += 0.5 * rng.standard_normal((n, d))
    y = latent @ rng.standard_normal((n_latent, m)) / np.sqrt(n_latent)
    y += rng.uniform(0.5, 2.0, size=m) * rng.standard_normal((n, m))
    return x.astype(np.float32), y.astype(np.float32), labels


def sklearn_protocol(x, y, splits, make_model, n_splits=None, predictions=None):
    """Brain-Score's predictivity with scikit-learn: per split fit, r per neuroid, median;
    mean over the first ``n_splits`` splits (all by default).  ``predictions`` (a list)
    receives each split's held-out predictions."""
    per_split = []
    for train, test in list(zip(splits.train, splits.test, strict=True))[:n_splits]:
        pred = make_model().fit(x[train], y[train]).predict(x[test])
        if predictions is not None:
            predictions.append(pred)
        yt = y[test]
        pc, yc = pred - pred.mean(0), yt - yt.mean(0)
        r = (pc * yc).sum(0) / np.sqrt((pc**2).sum(0) * (yc**2).sum(0))
        per_split.append(np.median(r))
    return float(np.mean(per_split))


def timed(fn, repeats=1):
    """Run once to compile/warm up, then return (result, median seconds over ``repeats``):
    the median resists the run-to-run noise of a shared VM."""
    out = jax.block_until_ready(fn())
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(fn())
        seconds.append(time.perf_counter() - start)
    return out, float(np.median(seconds))


def best_seconds(fn, repeats=7):
    """Fastest of ``repeats`` runs after a warm-up: a machine's rate is its best case."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def machine_rates(x, size=2048) -> dict:
    """Read bandwidth over the layer ``x`` itself (GB/s: numpy's and jax's sum, the best) and
    float32 matmul rates (GFLOP/s, ``size``² square product) of numpy and jax."""
    xj = jnp.asarray(x)
    total = jax.jit(jnp.sum)
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    aj = jnp.asarray(a)
    product = jax.jit(lambda b: b @ b)
    flops = 2 * size**3
    rates = {"read_gb_s_numpy": x.nbytes / best_seconds(lambda: x.sum()) / 1e9,
             "read_gb_s_jax": x.nbytes / best_seconds(lambda: total(xj)) / 1e9,
             "matmul_gflops_numpy": flops / best_seconds(lambda: a @ a) / 1e9,
             "matmul_gflops_jax": flops / best_seconds(lambda: product(aj)) / 1e9}
    rates["read_gb_s"] = max(rates["read_gb_s_numpy"], rates["read_gb_s_jax"])
    rates["matmul_gflops"] = max(rates["matmul_gflops_numpy"], rates["matmul_gflops_jax"])
    return rates


def pls_floor_seconds(rates, n, d, m, n_components) -> float:
    """NIPALS' floor for one layer: 2 passes over X per component (t = Xr, p = Xᵀt) at the
    read bandwidth, plus one XᵀY at the matmul rate."""
    passes = 2 * n_components * 4 * n * d / (rates["read_gb_s"] * 1e9)
    return passes + 2 * n * d * m / (rates["matmul_gflops"] * 1e9)


def compare_floor(rng, n, widths, m, n_objects, n_comp) -> dict:
    """The kernel's time per layer against the floor, at each width (the bars: 2x at 2048
    features, 3x at 512)."""
    out = {}
    for d in widths:
        x, y, labels = synthetic_layer(rng, n, d, m, n_objects)
        splits = stratified_shuffle_splits(labels, n_splits=10, train_size=0.9, seed=1)
        rates = machine_rates(x)
        xj = jnp.asarray(x)
        seconds = best_seconds(lambda xj=xj, y=y, splits=splits: neural_predictivity(
            xj, y, splits, "pls", n_components=n_comp).score)
        median = timed(lambda xj=xj, y=y, splits=splits: neural_predictivity(
            xj, y, splits, "pls", n_components=n_comp).score, repeats=7)[1]
        floor = pls_floor_seconds(rates, n, d, m, n_comp)
        flops = pls_cv_flops(n, d, m, 10, splits.train.shape[1], n_comp)
        out[str(d)] = {"shape": [n, d, m], **rates, "floor_s": floor, "kernel_best_s": seconds,
                       "kernel_median_s": median, "ratio_to_floor": seconds / floor,
                       "ratio_to_floor_median": median / floor,
                       "kernel_gflops": flops / seconds / 1e9}
        f = out[str(d)]
        print(f"== floor, {n} x {d} -> {m}, PLS-{n_comp}: read {f['read_gb_s']:.1f} GB/s, matmul "
              f"numpy {f['matmul_gflops_numpy']:.0f} / jax {f['matmul_gflops_jax']:.0f} GFLOP/s")
        print(f"kernel {1e3 * seconds:.1f} ms (median {1e3 * median:.1f})   floor "
              f"{1e3 * floor:.1f} ms   ratio {f['ratio_to_floor']:.2f}x (median "
              f"{f['ratio_to_floor_median']:.2f}x)   {f['kernel_gflops']:.1f} GFLOP/s = "
              f"{100 * f['kernel_gflops'] / f['matmul_gflops_numpy']:.0f}% of numpy's matmul, "
              f"{100 * f['kernel_gflops'] / f['matmul_gflops_jax']:.0f}% of jax's")
    return out


def compare_one_layer(title, x, y, splits, score_fn, make_sklearn_model, repeats,
                      sklearn_splits=None, predict_fn=None):
    """Score one layer with jaxbrain (compiled once, then timed) and with scikit-learn in the
    Brain-Score protocol, in the same run; print and return the figures.  With
    ``sklearn_splits=k`` scikit-learn runs only the first k splits: its time is scaled to all
    splits (they are the same size) and the scores compared are those of the k splits."""
    start = time.perf_counter()
    jax.block_until_ready(score_fn())
    first_s = time.perf_counter() - start
    result, jax_s = timed(score_fn, repeats=repeats)
    start = time.perf_counter()
    sk_predictions = []
    sk_score = sklearn_protocol(x, y, splits, make_sklearn_model, sklearn_splits, sk_predictions)
    sk_s = (time.perf_counter() - start) * splits.n_splits / (sklearn_splits or splits.n_splits)
    jax_score = float(np.mean(np.asarray(result.per_split)[:sklearn_splits]))
    figures = {
        "shape": [*x.shape, y.shape[1]],
        "sklearn_splits_run": sklearn_splits or splits.n_splits,
        "jaxbrain_score": jax_score,
        "sklearn_score": sk_score,
        "abs_difference": abs(jax_score - sk_score),
        "jaxbrain_s_per_layer": jax_s,
        "jaxbrain_compile_s": first_s - jax_s,
        "sklearn_s_per_layer": sk_s,
        "speedup": sk_s / jax_s,
    }
    if predict_fn is not None:  # held-out predictions, relative to scikit-learn's largest
        ours = np.asarray(predict_fn(), np.float64)
        theirs = np.stack(sk_predictions).astype(np.float64)
        figures["max_relative_prediction_difference"] = float(
            np.abs(ours[:len(theirs)] - theirs).max() / np.abs(theirs).max())
    print(f"== {title}")
    print(f"score    jaxbrain {figures['jaxbrain_score']:.6f}   scikit-learn {sk_score:.6f}   "
          f"|diff| {figures['abs_difference']:.2e}")
    if predict_fn is not None:
        print("predictions: max |jaxbrain - scikit-learn| / max |scikit-learn| "
              f"{figures['max_relative_prediction_difference']:.1e}")
    print(f"s/layer  jaxbrain {jax_s:.4f}   scikit-learn {sk_s:.2f}   "
          f"ratio {figures['speedup']:.0f}x   (jaxbrain compile {figures['jaxbrain_compile_s']:.1f}"
          " s, once)")
    return figures


def compare_bank(rng, n_layers, n, n_objects, n_comp, regions=4, m=100):
    """A sweep's scoring stage: ``n_layers`` layers (3/4 at the projection width 1000, the rest
    narrower, as a random-projected bank is) on ``regions`` regions of ``m`` neuroids, scored
    by the engine (width groups, one compiled kernel per group) vs one layer at a time."""
    from jaxbrain.benchmarks.neural import PreparedNeural

    widths = [1000 if k % 4 else int(rng.choice([64, 128, 256, 512])) for k in range(n_layers)]
    x, y, labels = synthetic_layer(rng, n, 1000, regions * m, n_objects)
    layers = {f"layer{k}": x[:, rng.permutation(1000)[:w]] + 0.1 * rng.standard_normal(
        (n, w)).astype(np.float32) for k, w in enumerate(widths)}
    ids = np.array([f"s{i:05d}" for i in range(n)])
    splits = stratified_shuffle_splits(labels, n_splits=10, train_size=0.9, seed=1)
    benchmark = neural_benchmark("bank", n_comp)
    prepared = [PreparedNeural(benchmark=benchmark, source="bench", digest="", ceiling=None,
                               target_ids=ids, y=y[:, r * m:(r + 1) * m],
                               neuroid_ids=np.arange(m).astype(str), splits=splits)
                for r in range(regions)]

    def batched():
        return [benchmark.score(p, layers, ids) for p in prepared]

    def per_layer():
        return [[neural_predictivity(layers[name], p.y, splits, "pls", n_components=n_comp,
                                     pls_weights="sklearn").score for name in layers]
                for p in prepared]

    start = time.perf_counter()
    scored = batched()
    first = time.perf_counter() - start
    _, batched_s = timed(batched)
    start = time.perf_counter()
    jax.block_until_ready(per_layer())
    loop_first = time.perf_counter() - start
    _, loop_s = timed(per_layer)
    start = time.perf_counter()
    sklearn_protocol(layers["layer1"], prepared[0].y, splits,
                     lambda: PLSRegression(n_components=n_comp, scale=False))
    sk_unit_s = time.perf_counter() - start
    units = n_layers * regions
    loop_diff = max(abs(s.fields["raw"] - float(v)) for p, row in zip(scored, per_layer(),
                    strict=True) for s, v in zip(p, row, strict=True))
    figures = {"layers": n_layers, "regions": regions, "stimuli": n, "neuroids_per_region": m,
               "widths": sorted(set(widths)), "batched_s": batched_s,
               "batched_first_s": first, "per_layer_loop_s": loop_s,
               "per_layer_loop_first_s": loop_first, "sklearn_s_per_unit": sk_unit_s,
               "units_per_s_batched": units / batched_s, "units_per_s_loop": units / loop_s,
               "units_per_s_sklearn": 1 / sk_unit_s, "max_abs_difference": loop_diff}
    print(f"== layer bank: {n_layers} layers x {n} stimuli (widths {figures['widths']}) x "
          f"{regions} regions x {m} neuroids, PLS-{n_comp}")
    print(f"layer-regions/s  batched {figures['units_per_s_batched']:.2f}   per-layer loop "
          f"{figures['units_per_s_loop']:.2f}   scikit-learn {figures['units_per_s_sklearn']:.3f}"
          f"   ratios {loop_s / batched_s:.1f}x / {sk_unit_s * units / batched_s:.0f}x   "
          f"(first call incl. compile: {first:.1f} s vs {loop_first:.1f} s)")
    return figures


def neural_benchmark(name, n_comp):
    from jaxbrain.benchmarks.neural import NeuralBenchmark

    return NeuralBenchmark(identifier=name, region="bank", time_window_ms=(70.0, 170.0),
                           n_components=n_comp, ceiling=None)


def main(argv):
    del argv
    quick = FLAGS.quick
    n, d, m, n_objects = (640, 256, 24, 32) if quick else (3200, 2048, 168, 64)
    stack_layers, stack_d = (4, 128) if quick else (64, 1024)
    n_comp = FLAGS.n_components
    rng = np.random.default_rng(0)
    figures = {"device": str(jax.devices()[0]), "n_devices": jax.device_count()}

    # Part 1: one layer, jaxbrain vs scikit-learn.
    x, y, labels = synthetic_layer(rng, n, d, m, n_objects)
    splits = stratified_shuffle_splits(labels, n_splits=10, train_size=0.9, seed=1)
    sk_pls = lambda: PLSRegression(n_components=n_comp, scale=False)  # noqa: E731
    s = compare_one_layer(
        f"one layer: {n} stimuli x {d} features -> {m} neuroids, 10 splits, PLS-{n_comp}",
        x, y, splits,
        lambda: neural_predictivity(x, y, splits, "pls", n_components=n_comp),
        sk_pls, repeats=5,
    )
    figures["single_layer"] = s
    replay, replay_s = timed(
        lambda: neural_predictivity(x, y, splits, "pls", n_components=n_comp,
                                    pls_weights="sklearn"), repeats=5)
    s.update(sklearn_weights_score=float(replay.score), sklearn_weights_s_per_layer=replay_s,
             sklearn_weights_abs_difference=abs(float(replay.score) - s["sklearn_score"]))
    print(f"with pls_weights='sklearn' (replays scikit-learn's power iteration): score "
          f"{float(replay.score):.6f}   |diff| {s['sklearn_weights_abs_difference']:.2e}   "
          f"{replay_s:.4f} s/layer")

    figures["floor"] = compare_floor(rng, n, (d, d // 4), m, n_objects, n_comp)

    # Part 2: a stack of layers in one call.
    xs = np.stack([synthetic_layer(rng, n, stack_d, m, n_objects)[0] for _ in range(stack_layers)])
    xs = jnp.asarray(xs)
    score_stack = lambda: neural_predictivity(xs, y, splits, "pls", n_components=n_comp)  # noqa: E731
    stack_result, stack_s = timed(score_stack)
    start = time.perf_counter()
    sklearn_protocol(np.asarray(xs[0]), y, splits, sk_pls)
    sk_layer_s = time.perf_counter() - start
    figures["layer_stack"] = {
        "shape": [stack_layers, n, stack_d, m],
        "seconds": stack_s,
        "layers_per_second": stack_layers / stack_s,
        "sklearn_s_per_layer": sk_layer_s,
        "speedup": sk_layer_s * stack_layers / stack_s,
        "mean_score": float(jnp.mean(stack_result.score)),
    }
    s = figures["layer_stack"]
    print(f"== {stack_layers} layers x {n} x {stack_d} -> {m} in one call")
    print(f"layers/s jaxbrain {s['layers_per_second']:.2f}   scikit-learn "
          f"{1 / sk_layer_s:.3f}   ratio {s['speedup']:.0f}x")
    if FLAGS.ridge:  # Part 3
        figures["ridge_single_layer"] = compare_one_layer(
            "ridge, same layer: 21 alphas, alpha per neuroid by leave-one-out",
            x, y, splits,
            lambda: neural_predictivity(x, y, splits, "ridge"),
            lambda: RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True), repeats=3,
            predict_fn=lambda: ridge_cv_predict(jnp.asarray(x), jnp.asarray(y),
                                                jnp.asarray(splits.train),
                                                jnp.asarray(splits.test), DEFAULT_ALPHAS)[0],
        )
    if FLAGS.wide_features:  # Part 4
        xw, yw, _ = synthetic_layer(rng, n, FLAGS.wide_features, m, n_objects)  # same labels
        figures["wide_layer"] = compare_one_layer(
            f"one wide layer: {n} x {FLAGS.wide_features} -> {m}, PLS-{n_comp} "
            "(scikit-learn: split 0, time x10)",
            xw, yw, splits,
            lambda: neural_predictivity(xw, yw, splits, "pls", n_components=n_comp),
            sk_pls, repeats=1, sklearn_splits=1,
        )
    if FLAGS.bank_layers:  # Part 5
        figures["layer_bank"] = compare_bank(rng, FLAGS.bank_layers, 640 if quick else n,
                                             n_objects, n_comp)
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    app.run(main)
