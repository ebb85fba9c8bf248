"""Feature decoding at the Generic Object Decoding's size, jaxbrain against scikit-learn's
per-unit loop in the same run.

    python -m experiments.bench_decoding                  # 4,096 units, 4,000 voxels, 5 subjects
    python -m experiments.bench_decoding --n_voxels=0     # every voxel decodes every unit
    python -m experiments.bench_decoding --quick          # a small size (the tests)

Stand-in data of GOD's shape (1,200 training and 50 test images, voxels carrying a few
latent image features) decoded in Horikawa & Kamitani's protocol (``decode_features``:
voxels z-scored, each unit's ``--n_voxels`` most correlated voxels, ridge with one alpha per
subject by fold cross-validation).  scikit-learn runs the same per-unit steps in a loop
(correlations, ``argsort`` selection, ``Ridge`` at jaxbrain's chosen alpha, so the alpha
search is not counted on its side; with ``--n_voxels=0``, ``RidgeCV`` per unit) on
``--sample_units`` units of one subject; its time is projected to every unit and subject,
and the sampled units' predictions are compared.
"""

from __future__ import annotations

import json
import time

import numpy as np
from absl import app, flags

from jaxbrain.benchmarks.decoding import BrainResponses, decode_features
from jaxbrain.kernels import DEFAULT_ALPHAS

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "400 units, 600 voxels, 2 subjects, 200 training images.")
flags.DEFINE_integer("units", 4096, "Units of the layer.")
flags.DEFINE_integer("voxels", 4000, "Voxels per subject.")
flags.DEFINE_integer("subjects", 5, "Subjects.")
flags.DEFINE_integer("n_train", 1200, "Training images.")
flags.DEFINE_integer("n_test", 50, "Test images.")
flags.DEFINE_integer("n_voxels", 1000, "Voxels per unit (0: all).")
flags.DEFINE_integer("sample_units", 20, "Units scikit-learn decodes (one subject).")
flags.DEFINE_string("json_out", None, "Also write the figures to this JSON file.")

QUICK = {"units": 400, "voxels": 600, "subjects": 2, "n_train": 200, "n_test": 50,
         "n_voxels": 100, "sample_units": 10}


def setting(name):
    if FLAGS.quick and not FLAGS[name].present:
        return QUICK[name]
    return FLAGS[name].value


def standins(units, voxels, subjects, n_train, n_test, seed=0):
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    latent = rng.standard_normal((n, 32))
    layer = (latent @ rng.standard_normal((32, units)) * 0.5
             + rng.standard_normal((n, units))).astype(np.float32)
    ids = np.array([f"img{i:05d}" for i in range(n)])
    brains = {}
    for s in range(subjects):
        mixing = rng.standard_normal((32, voxels)) * (rng.random(voxels) < 0.2)
        data = latent @ mixing + 2.0 * rng.standard_normal((n, voxels))
        brains[f"Subject{s + 1}"] = BrainResponses(data.astype(np.float32), ids)
    return brains, layer, ids, ids[n_train:]


def sklearn_units(x, y, train, test, sample, n_voxels, alpha):
    """scikit-learn's per-unit loop: z-score, correlate, select, Ridge, predict; with every
    voxel (``n_voxels`` 0), ``RidgeCV``'s leave-one-out alpha per unit on the raw voxels, as
    jaxbrain's all-voxel path."""
    from sklearn.linear_model import Ridge, RidgeCV

    if not n_voxels:
        return np.stack([RidgeCV(alphas=DEFAULT_ALPHAS).fit(x[train], y[train, unit])
                         .predict(x[test]) for unit in sample], 1)

    x_tr, x_te = x[train], x[test]
    mean, sd = x_tr.mean(0), x_tr.std(0, ddof=1)
    x_tr, x_te = (x_tr - mean) / sd, (x_te - mean) / sd
    preds = []
    for unit in sample:
        y_tr = y[train, unit]
        y_mean, y_sd = y_tr.mean(), y_tr.std(ddof=1)
        yz = (y_tr - y_mean) / y_sd
        corr = (x_tr.T @ yz) / (len(yz) - 1)
        voxels = np.argsort(-np.abs(corr))[:n_voxels] if n_voxels else slice(None)
        model = Ridge(alpha=alpha, fit_intercept=False).fit(x_tr[:, voxels], yz)
        preds.append(model.predict(x_te[:, voxels]) * y_sd + y_mean)
    return np.stack(preds, 1)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    size = {k: setting(k) for k in QUICK}
    brains, layer, ids, test_ids = standins(size["units"], size["voxels"], size["subjects"],
                                            size["n_train"], size["n_test"])
    print(f"== decoding {size['units']} units from {size['voxels']} voxels x "
          f"{size['subjects']} subjects, {size['n_train']} training / {size['n_test']} test "
          f"images, {size['n_voxels'] or 'all'} voxels per unit", flush=True)
    warm = {k: BrainResponses(v.data[:, : size["voxels"]], v.stimulus_id)
            for k, v in list(brains.items())[:1]}
    decode_features(warm, {"layer": layer[:, :64]}, ids, test_ids, n_voxels=size["n_voxels"])
    start = time.perf_counter()
    result = decode_features(brains, {"layer": layer}, ids, test_ids, n_voxels=size["n_voxels"])
    jax_s = time.perf_counter() - start
    first = next(iter(result["layers"]["layer"]["subjects"].values()))
    alpha = first.get("alpha", first.get("alpha_median"))
    print(f"jaxbrain: {jax_s:.1f} s for the layer (all subjects), alpha {alpha}", flush=True)

    x = next(iter(brains.values())).data.astype(np.float64)
    train = np.arange(size["n_train"])
    test = np.arange(size["n_train"], size["n_train"] + size["n_test"])
    rng = np.random.default_rng(1)
    sample = np.sort(rng.choice(size["units"], size["sample_units"], replace=False))
    start = time.perf_counter()
    preds = sklearn_units(x, layer.astype(np.float64), train, test, sample, size["n_voxels"],
                          alpha)
    sk_s = time.perf_counter() - start
    per_unit = sk_s / len(sample)
    projected = per_unit * size["units"] * size["subjects"]
    accuracy = np.array([np.corrcoef(preds[:, i], layer[test, u])[0, 1]
                         for i, u in enumerate(sample)])
    ours = np.asarray(first["accuracy"])[sample]
    print(f"scikit-learn: {1e3 * per_unit:.1f} ms per unit ({len(sample)} units of one subject)"
          f" -> {projected:.0f} s projected for the layer; ratio {projected / jax_s:.0f}x; "
          f"sampled units' accuracy |diff| max {np.nanmax(np.abs(accuracy - ours)):.1e}",
          flush=True)
    figures = {**size, "jaxbrain_s": jax_s, "sklearn_s_per_unit": per_unit,
               "sklearn_projected_s": projected, "ratio": projected / jax_s, "alpha": alpha,
               "accuracy_max_abs_diff": float(np.nanmax(np.abs(accuracy - ours))),
               "mean_accuracy": first["mean_accuracy"]}
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    app.run(main)
