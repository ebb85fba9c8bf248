"""Feature decoding against scikit-learn/SciPy, with planted decodable units."""

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.linear_model import RidgeCV

from jaxbrain.benchmarks import BrainResponses, decode_features
from jaxbrain.kernels import DEFAULT_ALPHAS


@pytest.fixture
def study(rng):
    n, n_units = 150, 12
    ids = np.array([f"img{i:03d}" for i in range(n)])
    units = rng.standard_normal((n, n_units))
    decodable = units[:, :6]  # the first 6 units drive the voxels, the rest do not
    subjects = {}
    for subject in ("s1", "s2"):
        voxels = decodable @ rng.standard_normal((6, 40)) + 0.5 * rng.standard_normal((n, 40))
        order = rng.permutation(n)
        subjects[subject] = BrainResponses(voxels[order], ids[order])
    return ids, units, subjects


def test_accuracy_matches_sklearn_and_ranks_planted_units(study):
    ids, units, subjects = study
    test_ids = ids[::5]
    result = decode_features(subjects, {"layer": units}, ids, test_ids)
    assert result["n_test"] == 30 and result["n_train"] == 120
    s1 = result["layers"]["layer"]["subjects"]["s1"]
    assert set(s1["ranking"][:6]) == set(range(6))  # decodable units ranked first
    # reference: scikit-learn RidgeCV (alpha per unit, LOO) and SciPy's pearsonr
    voxels, order = subjects["s1"]
    position = {sid: i for i, sid in enumerate(order)}
    x = voxels[[position[i] for i in ids]]
    test = np.isin(ids, test_ids)
    pred = RidgeCV(DEFAULT_ALPHAS, alpha_per_target=True).fit(x[~test], units[~test]).predict(
        x[test])
    expected = [sps.pearsonr(pred[:, j], units[test][:, j]).statistic for j in range(12)]
    np.testing.assert_allclose(s1["accuracy"], expected, atol=1e-5)  # float32 decoding
    consistency = result["layers"]["layer"]["consistency"]["s1~s2"]
    acc2 = result["layers"]["layer"]["subjects"]["s2"]["accuracy"]
    assert consistency == pytest.approx(np.corrcoef(s1["accuracy"], acc2)[0, 1], abs=1e-5)
    assert consistency > 0.8


def test_bad_inputs(study):
    ids, units, subjects = study
    with pytest.raises(ValueError, match="test stimuli not among"):
        decode_features(subjects, {"layer": units}, ids, ["nope"])
    with pytest.raises(ValueError, match="at least 3 training and 3 test"):
        decode_features(subjects, {"layer": units}, ids, ids[:2])
    short = BrainResponses(subjects["s1"].data[:-1], subjects["s1"].stimulus_id[:-1])
    bad = dict(subjects, s3=short)
    with pytest.raises(ValueError, match="subject 's3'"):
        decode_features(bad, {"layer": units}, ids, ids[::5])


def test_registry_benchmark_reads_subject_files_and_scores_in_the_common_schema(tmp_path, study):
    """``Synthetic.decoding`` on fmri_<subject>.nc files: one scorer (decode_features on the
    benchmark's sampled units and held-out stimuli), rows in the schema of every benchmark."""
    import xarray as xr

    from jaxbrain.benchmarks import layer_results, load, names
    from jaxbrain.data import write_assembly

    ids, units, subjects = study
    for subject, (voxels, order) in subjects.items():
        trials = np.concatenate([voxels, voxels + 0.01])  # two repetitions
        assembly = xr.DataArray(
            trials[:, :, None], dims=("presentation", "neuroid", "time_bin"),
            coords={"stimulus_id": ("presentation", np.tile(order, 2)),
                    "repetition": ("presentation", np.repeat([0, 1], len(order))),
                    "neuroid_id": ("neuroid", [f"v{i}" for i in range(voxels.shape[1])]),
                    "region": ("neuroid", ["VC"] * voxels.shape[1]),
                    "time_bin_start": ("time_bin", [0]), "time_bin_end": ("time_bin", [1])})
        write_assembly(assembly, tmp_path / f"fmri_{subject}.nc")
    assert "Synthetic.decoding" in names()
    with pytest.raises(ValueError, match="names no fMRI recordings"):
        load("Synthetic.decoding").prepare()
    benchmark = load("Synthetic.decoding").with_data(fmri=tmp_path).with_overrides(units=8)
    prepared = benchmark.prepare()
    assert sorted(prepared.subjects) == ["s1", "s2"]
    layers = {"layer": units, "narrow": units[:, :4]}
    result = layer_results(prepared, benchmark.score(prepared, layers, ids))
    decoded = benchmark.decode(prepared, layers, ids)
    means = [decoded["layers"]["layer"]["subjects"][s]["mean_accuracy"] for s in ("s1", "s2")]
    row = result["layers"]["layer"]
    assert row["raw"] == pytest.approx(np.mean(means)) and row["status"] == "ok"
    assert row["per_split"] == pytest.approx(means)
    assert decoded["n_test"] == 30
    assert len(decoded["layers"]["layer"]["subjects"]["s1"]["accuracy"]) == 8
    assert len(decoded["layers"]["narrow"]["subjects"]["s1"]["accuracy"]) == 4
    # the held-out stimuli do not depend on the activations' row order
    assert set(benchmark.test_ids(ids[::-1])) == set(benchmark.test_ids(ids))
