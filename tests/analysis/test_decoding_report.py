"""Decoding results beside Horikawa & Kamitani's published per-unit accuracies (files in the
published layout, written with SciPy), and the study's figures."""

import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

from jaxbrain.analysis.decoding import (
    accuracy_table,
    compare_with_published,
    decoding_figures,
    read_published,
)


def _result(rng, layers=("conv1", "fc8"), subjects=("Subject1", "Subject2"), units=50):
    out = {}
    for layer in layers:
        subs = {}
        for s in subjects:
            acc = rng.uniform(-0.2, 0.8, units)
            subs[s] = {"accuracy": acc.tolist(), "mean_accuracy": float(acc.mean()),
                       "identification": 0.8, "alpha": 100.0, "nan_units": 0,
                       "ranking": np.argsort(-acc).tolist()}
        out[layer] = {"subjects": subs,
                      "consistency_matrix": {"subjects": list(subjects),
                                             "r": np.eye(len(subjects)).tolist()}}
    return {"layers": out}


def test_published_accuracies_compare_unit_by_unit_and_by_mean(tmp_path):
    rng = np.random.default_rng(0)
    result = _result(rng)
    for layer in ("conv1", "fc8"):
        for k, subject in ((1, "Subject1"), (2, "Subject2")):
            ours = np.asarray(result["layers"][layer]["subjects"][subject]["accuracy"])
            theirs = ours + rng.normal(0, 0.05, ours.size) + 0.1
            if layer == "conv1":
                theirs = theirs[:40]  # other units: only the means compare
            savemat(tmp_path / f"accuracy-AlexNet-{layer}-S{k}.mat",
                    {"accuracy": theirs[None, :]})
    savemat(tmp_path / "accuracy-VGG19-conv1-S1.mat", {"accuracy": np.zeros((1, 3))})
    published = read_published(tmp_path, "AlexNet")
    assert len(published) == 4 and set(published["layer"]) == {"conv1", "fc8"}
    table = compare_with_published(result, published)
    assert len(table) == 4
    fc8 = table[table["layer"] == "fc8"]
    assert (fc8["r"] > 0.95).all() and np.allclose(fc8["mean_difference"], -0.1, atol=0.03)
    conv1 = table[table["layer"] == "conv1"]
    assert conv1["r"].isna().all() and (conv1["note"] == "different units: means only").all()
    with pytest.raises(ValueError, match="no published accuracies"):
        read_published(tmp_path, "ResNet")
    with pytest.raises(ValueError, match="check the layer names"):
        compare_with_published(result, published, layer_names={"conv1": "x", "fc8": "y"})


def test_figures_and_table(tmp_path):
    rng = np.random.default_rng(1)
    result = _result(rng, layers=("conv1", "conv2", "fc8"))
    table = accuracy_table(result)
    assert list(table["layer"].unique()) == ["conv1", "conv2", "fc8"]
    comparison = pd.DataFrame({"layer": ["conv1", "fc8"], "mean": [0.1, 0.3],
                               "published_mean": [0.12, 0.25]})
    paths = decoding_figures(result, tmp_path, comparison)
    assert [p.name for p in paths] == ["accuracy_by_layer.png", "unit_ranks.png",
                                       "consistency.png", "published_comparison.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
