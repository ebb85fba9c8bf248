"""Each study on planted toy data whose answer is known."""

import numpy as np
import pandas as pd
import pytest

from jaxbrain.analysis import (
    corresponding_layer_cka,
    decodability_summary,
    ev_comparison,
    memorability_vs_brain,
    objective_similarity,
    progressive_difference,
    unique_r,
    unique_variance_table,
)
from jaxbrain.benchmarks import BrainResponses, decode_features
from jaxbrain.kernels import cka, shuffle_splits


def test_corresponding_layer_cka(rng):
    x1, x2 = rng.standard_normal((60, 8)), rng.standard_normal((60, 2, 3, 2))
    rotation = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    other = rng.standard_normal((60, 5))
    layers_a = {"l1": x1, "only_a": x1, "l2": x2}
    layers_b = {"l2": other, "l1": 3.0 * x1 @ rotation + 1.0, "only_b": other}
    names, values = corresponding_layer_cka(layers_a, layers_b)
    assert names == ["l1", "l2"]
    assert values[0] == pytest.approx(1.0, abs=1e-5)  # CKA is rotation and scale invariant
    assert values[1] == pytest.approx(float(cka(x2.reshape(60, -1), other)), abs=1e-5)
    with pytest.raises(ValueError, match="share no layer"):
        corresponding_layer_cka({"a": x1}, {"b": x1})


def test_progressive_difference_by_hand():
    depths_a, depths_b = np.linspace(0, 1, 5), np.array([0.0, 0.5, 1.0])
    maps = {
        "a": ([f"a{i}" for i in range(5)], depths_a, 1.0 - 0.5 * depths_a),
        "b": (["b0", "b1", "b2"], depths_b, 0.9 - 0.5 * depths_b),
    }
    got = progressive_difference(maps, bins=2)
    # bin [0, .5): a -> mean(1, .875), b -> .9; bin [.5, 1]: a -> mean(.75, .625, .5), b -> .525
    np.testing.assert_allclose(got["by_depth"]["mean"], [0.91875, 0.575])
    np.testing.assert_allclose(got["by_depth"]["sem"], [0.01875, 0.05])
    assert len(got["per_layer"]) == 8
    np.testing.assert_allclose(got["per_architecture"]["rho_depth_cka"], [-1.0, -1.0])


def similarity_table(rng, n_sites=30):
    base = rng.uniform(0.2, 0.6, n_sites)
    shift = 0.2 + 0.3 * rng.standard_normal(n_sites)  # memorability models differ per site
    rows = []
    for model, objective in [("c1", "cls"), ("m1", "mem"), ("c2", "cls"), ("c3", "cls"),
                             ("m2", "mem")]:
        value = base + (shift if objective == "mem" else 0.0)
        value = value + 0.01 * rng.standard_normal(n_sites)
        rows += [{"model": model, "objective": objective, "site": s, "value": v}
                 for s, v in enumerate(value)]
    return pd.DataFrame(rows)


def test_objective_similarity_planted(rng):
    table = similarity_table(rng)
    got = objective_similarity(table)
    assert got["per_objective"]["objective"].tolist() == ["cls", "mem"]
    assert got["per_objective"]["n_models"].tolist() == [3, 2]
    test = got["objective_tests"].iloc[0]
    assert test["objective_a"] == "cls" and test["mean_diff"] < -0.1 and test["p"] < 0.01
    pairs = got["pairs"]
    assert (pairs["relation"] == "within").sum() == 4 and (pairs["relation"] == "across").sum() == 6
    within = got["within_vs_across"]
    assert within["n"] == 30 and within["mean_a"] < 0.03 < within["mean_b"] and within["p"] < 1e-6
    with pytest.raises(ValueError, match="several values"):
        objective_similarity(pd.concat([table, table.iloc[:1]]))
    with pytest.raises(ValueError, match="more than one objective"):
        objective_similarity(table.assign(objective=["x"] + ["cls"] * (len(table) - 1)))


def test_ev_comparison_planted(rng):
    a_early, a_late = rng.uniform(0.1, 0.6, (2, 40))
    ev_a = {"early": a_early, "late": a_late}
    ev_b = {"early": a_early + 0.01 * rng.standard_normal(40),
            "late": a_late + 0.1 + 0.01 * rng.standard_normal(40)}
    got = ev_comparison(ev_a, ev_b, "resnet", "resmem")
    assert len(got["sites"]) == 80 and got["models"] == ("resnet", "resmem")
    early, late = got["tests"].set_index("window").loc[["early", "late"]].to_dict("records")
    assert abs(early["mean_diff"]) < 0.01 and early["p"] > 1e-3
    assert late["mean_diff"] == pytest.approx(-0.1, abs=0.01) and late["p"] < 1e-10
    change = got["window_change"].iloc[0]
    assert change["window_a"] == "early" and change["mean_diff"] == pytest.approx(0.1, abs=0.01)
    with pytest.raises(ValueError, match="windows differ"):
        ev_comparison(ev_a, {"early": a_early})


def test_unique_variance_of_the_model_with_the_extra_signal(rng):
    n, m = 200, 6
    s1, s2 = rng.standard_normal((2, n, m))
    y = s1 + s2 + 0.5 * rng.standard_normal((n, m))
    splits = shuffle_splits(n, n_splits=3, train_size=0.8)
    noise = 0.1 * rng.standard_normal((2, 3, 40, m))
    predictions = {"full": (s1 + s2)[splits.test] + noise[0], "part": s1[splits.test] + noise[1]}
    got = unique_variance_table(y, predictions, splits, [("full", "part")])
    sites = got["sites"]
    assert len(sites) == m
    assert (sites["r_a_given_b"] > 0.5).all() and (sites["r_b_given_a"].abs() < 0.3).all()
    np.testing.assert_allclose(
        sites["r_a_given_b"], np.mean(unique_r(predictions["full"], predictions["part"], y,
                                               splits), axis=0))
    tests = got["tests"].set_index("comparison")
    assert tests.loc["unique_a_vs_unique_b", "mean_diff"] > 0.5
    assert tests.loc["unique_a_vs_unique_b", "p"] < 1e-4
    assert tests.loc["unique_a_vs_r_a", "mean_diff"] < 0  # B explains part of A's fit
    with pytest.raises(ValueError, match="no predictions"):
        unique_variance_table(y, predictions, splits, [("full", "other")])


def memorability_rows(rng):
    rows = []
    for model in ("m1", "m2", "m3", "m4", "m5"):
        for i in rng.permutation(5):  # row order must not matter
            mem = rng.uniform(0.1, 0.6)
            rows.append({"model": model, "layer": f"l{i}", "layer_depth": i / 4,
                         "memorability_rho": mem, "region": "IT",
                         "brain_score": 0.5 * mem + 0.005 * rng.standard_normal()})
            rows.append({**rows[-1], "region": "V4", "brain_score": rng.uniform()})
    return pd.DataFrame(rows)


def test_memorability_vs_brain_planted(rng):
    rows = memorability_rows(rng)
    got = memorability_vs_brain(rows, n_boot=300)
    corr = got["correlation"].set_index("region")
    assert corr.loc["IT", "n"] == 25 and corr.loc["IT", "n_models"] == 5
    assert corr.loc["IT", "r"] > 0.98 and corr.loc["IT", "boot_low"] > 0.95
    assert corr.loc["IT", "fisher_low"] < corr.loc["IT", "r"] < corr.loc["IT", "fisher_high"]
    assert abs(corr.loc["V4", "r"]) < 0.5
    pen = got["penultimate"]
    assert len(pen) == 10 and set(pen["layer"]) == {"l3"}
    assert got["penultimate_correlation"].set_index("region").loc["IT", "r"] > 0.95
    chosen = memorability_vs_brain(rows, n_boot=10,
                                   penultimate={f"m{i}": "l1" for i in range(1, 6)})
    assert set(chosen["penultimate"]["layer"]) == {"l1"}
    single = memorability_vs_brain(rows[rows.region == "IT"].drop(columns="region"), n_boot=10)
    assert single["correlation"]["region"].tolist() == ["all"]
    with pytest.raises(ValueError, match="lacks columns"):
        memorability_vs_brain(rows.drop(columns="brain_score"))


def test_decodability_summary_identical_subjects_are_consistent(rng):
    n = 80
    ids = np.array([f"img{i:02d}" for i in range(n)])
    early = rng.standard_normal((n, 6))
    late = rng.standard_normal((n, 6))
    voxels = early[:, :3] @ rng.standard_normal((3, 20)) + 0.3 * rng.standard_normal((n, 20))
    other = early[:, :3] @ rng.standard_normal((3, 20)) + 0.3 * rng.standard_normal((n, 20))
    subjects = {"s1": BrainResponses(voxels, ids), "s2": BrainResponses(voxels, ids),
                "s3": BrainResponses(other, ids)}
    result = decode_features(subjects, {"late": late, "early": early}, ids, ids[::4])
    got = decodability_summary(result, {"early": 0.25, "late": 0.75}, top_k=3)
    assert got["by_depth"]["layer"].tolist() == ["early", "late"]
    assert got["by_depth"]["mean"][0] > got["by_depth"]["mean"][1] + 0.2
    assert got["by_depth"]["n_subjects"].tolist() == [3, 3]
    assert got["depth_trend"]["n"] == 2 and np.isnan(got["depth_trend"]["r"])  # too few layers
    top = got["top_units"]
    assert len(top) == 2 * 3 * 3
    assert set(top[top.layer == "early"]["unit"]) == {0, 1, 2}  # the planted decodable units
    cons = got["consistency"].set_index(["layer", "subject_a", "subject_b"])
    assert cons.loc[("early", "s1", "s2"), "r"] == pytest.approx(1.0, abs=1e-6)
    assert cons.loc[("late", "s1", "s2"), "r"] == pytest.approx(1.0, abs=1e-6)
    assert cons.loc[("early", "s1", "s2"), "top_k_overlap"] == 1.0
    assert cons.loc[("early", "s1", "s3"), "top_k_overlap"] == 1.0
    assert len(got["per_subject"]) == 6
    with pytest.raises(ValueError, match="no depth"):
        decodability_summary(result, {"early": 0.25})
