"""Memorability benchmark: ridge read-out per official split, Spearman rho (vs scikit-learn)."""

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.linear_model import RidgeCV

from jaxbrain.benchmarks import score_memorability
from jaxbrain.data import read_lamem
from jaxbrain.kernels import DEFAULT_ALPHAS
from tests.data.test_lamem import write_lamem


def test_matches_sklearn_and_ranks_layers(tmp_path, rng):
    n = 120
    names = [f"{i:05d}.jpg" for i in range(n)]
    informative = rng.standard_normal((n, 30))
    scores = 1 / (1 + np.exp(-(informative @ rng.standard_normal(30)) / 4))
    data = read_lamem(write_lamem(tmp_path, names, scores, n_splits=3, n_test=30))
    order = rng.permutation(n)
    layers = {"informative": informative[order], "noise": rng.standard_normal((n, 2, 10))}
    result = score_memorability(layers, np.array(names)[order], data)
    good = result["layers"]["informative"]
    assert good["raw"] > 0.8 > result["layers"]["noise"]["raw"]
    assert "leave-one-out" in result["benchmark"]["readout"]
    position = {name: i for i, name in enumerate(names)}
    for i, (_, parts) in enumerate(sorted(data.splits.items())):
        train = [position[n] for n in parts["train"]]
        test = [position[n] for n in parts["test"]]
        model = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True)
        model.fit(informative[train], data.scores[train][:, None])
        pred = np.ravel(model.predict(informative[test]))
        expected = sps.spearmanr(pred, data.scores[test]).statistic
        assert good["per_split"][i] == pytest.approx(expected, abs=1e-9)


def test_image_mismatch_is_named(tmp_path, rng):
    names = [f"{i}.jpg" for i in range(30)]
    data = read_lamem(write_lamem(tmp_path, names, np.linspace(0, 1, 30)))
    with pytest.raises(ValueError, match=r"'extra.jpg'"):
        score_memorability({"x": rng.standard_normal((30, 4))}, [*names[:-1], "extra.jpg"], data)
