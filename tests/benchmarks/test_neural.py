"""Benchmarks by name and their scores on files in Brain-Score's layout."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from jaxbrain.benchmarks import CONVENTIONS, load, names, score_layers_on
from jaxbrain.data import average_repetitions, read_assembly, select_region
from jaxbrain.kernels import neural_predictivity, stratified_shuffle_splits
from tests.data.test_brainscore_io import write_like_brainio

N_OBJECTS, PER_OBJECT, N_REPS = 4, 12, 4
N_STIM = N_OBJECTS * PER_OBJECT


def recordings(rng, driver, n_it=6, n_v4=3, noise=1.0):
    """Trials whose IT responses are a linear read-out of ``driver`` (stimuli x features)."""
    ids = np.array([f"s{i:03d}" for i in range(N_STIM)])
    objects = np.repeat([f"obj{i}" for i in range(N_OBJECTS)], PER_OBJECT)
    signal = np.concatenate(
        [driver @ rng.standard_normal((driver.shape[1], n_it)),
         rng.standard_normal((N_STIM, n_v4))], axis=1)
    trials = signal[None] + noise * rng.standard_normal((N_REPS, N_STIM, n_it + n_v4))
    presentation = pd.MultiIndex.from_arrays(
        [np.tile(ids, N_REPS), np.repeat(np.arange(N_REPS), N_STIM), np.tile(objects, N_REPS)],
        names=["stimulus_id", "repetition", "object_name"],
    )
    neuroid = pd.MultiIndex.from_arrays(
        [[f"n{i}" for i in range(n_it + n_v4)], ["IT"] * n_it + ["V4"] * n_v4],
        names=["neuroid_id", "region"],
    )
    time_bin = pd.MultiIndex.from_arrays([[70], [170]], names=["time_bin_start", "time_bin_end"])
    coords = xr.Coordinates.from_pandas_multiindex(presentation, "presentation")
    coords = coords.merge(xr.Coordinates.from_pandas_multiindex(neuroid, "neuroid")).coords
    coords = coords.merge(xr.Coordinates.from_pandas_multiindex(time_bin, "time_bin")).coords
    data = trials.reshape(N_REPS * N_STIM, -1)[:, :, None]
    return xr.DataArray(data, dims=("presentation", "neuroid", "time_bin"), coords=coords), ids


def write_recordings(tmp_path, rng, n_features):
    """An assembly file driven by a random layer: (path, stimulus ids, the layer)."""
    good = rng.standard_normal((N_STIM, n_features))
    assembly, ids = recordings(rng, good)
    path = tmp_path / "assy.nc"
    write_like_brainio(assembly, path)
    return path, ids, good


@pytest.fixture
def setup(tmp_path, rng):
    return write_recordings(tmp_path, rng, 12)


def test_registry_names_and_errors():
    assert {"MajajHong2015.IT-pls", "MajajHong2015public.V4-pls", "FreemanZiemba2013.V1-pls",
            "MajajHong2015.IT-ridge", "MajajHong2015.IT.early-pls",
            "MajajHong2015.IT.late-pls"} <= set(names())
    it = load("MajajHong2015.IT-pls")
    assert (it.region, it.time_window_ms, it.stratification_coord) == ("IT", (70, 170),
                                                                        "object_name")
    v1 = load("FreemanZiemba2013.V1-pls")
    assert (v1.time_window_ms, v1.stratification_coord, v1.visual_degrees) == (
        (50, 200), "texture_type", 4.0)
    assert load("MajajHong2015.IT.late-pls").time_window_ms == (180, 210)
    with pytest.raises(ValueError, match=r"did you mean \['MajajHong2015.IT-pls'"):
        load("MajajHong2015.IT-pl")
    with pytest.raises(ValueError, match="unknown ceiling convention"):
        it.with_overrides(convention="v2")
    as_cka = it.with_overrides(mapping="cka")
    assert (as_cka.test_size, as_cka.ceiling) == (0.9, None)
    back = as_cka.with_overrides(mapping="ridge")
    assert (back.test_size, back.ceiling) == (None, "split_half")


def test_scores_equal_the_kernel_path_and_the_driver_wins(setup, rng):
    path, ids, good = setup
    benchmark = load("MajajHong2015.IT-pls").with_overrides(n_components=5)
    order = rng.permutation(N_STIM)
    layers = {"good": good[order], "noise": rng.standard_normal((N_STIM, 3, 4))}
    result = score_layers_on(benchmark, layers, ids[order], read_assembly(path))
    scores = result["layers"]
    assert scores["good"]["raw"] > 0.5 > scores["noise"]["raw"]
    # the same numbers straight from the kernels, on targets averaged and sorted by id
    targets = average_repetitions(select_region(read_assembly(path), "IT").isel(time_bin=0))
    splits = stratified_shuffle_splits(targets["object_name"].values)
    direct = neural_predictivity(good.astype(np.float32), targets.values.astype(np.float32),
                                 splits, n_components=5, pls_weights=benchmark.pls_weights)
    assert scores["good"]["raw"] == pytest.approx(float(direct.score), abs=1e-5)
    ceiling = result["ceiling"]["ceiling"]
    assert 0.5 < ceiling <= 1.0
    for name, fn in CONVENTIONS.items():
        expected = fn(scores["good"]["raw"], ceiling)
        assert scores["good"]["ceiled_by_convention"][name] == pytest.approx(expected)
    assert scores["good"]["ceiled"] == scores["good"]["ceiled_by_convention"]["v4"]
    assert scores["good"]["n_neuroids"] == 6 and scores["good"]["nan_neuroids"] == 0


@pytest.mark.parametrize("mapping", ["cka", "rdm"])
def test_similarity_variants_score_the_test_side_of_brainscore_splits(setup, rng, mapping):
    from scipy import stats as sps
    from sklearn.model_selection import StratifiedShuffleSplit

    from tests.kernels.test_cka import hsic_unbiased_slow

    path, ids, good = setup
    benchmark = load(f"MajajHong2015.IT-{mapping}")
    assert benchmark.test_size == 0.9 and benchmark.ceiling is None
    result = score_layers_on(benchmark, {"good": good}, ids, read_assembly(path))
    assert result["ceiling"] is None
    targets = average_repetitions(select_region(read_assembly(path), "IT").isel(time_bin=0))
    y = targets.values
    splitter = StratifiedShuffleSplit(n_splits=10, test_size=0.9, random_state=1)
    expected = []
    for _, test in splitter.split(np.zeros(len(y)), targets["object_name"].values):
        a, b = good[test], y[test]
        if mapping == "cka":
            k = (a - a.mean(0)) @ (a - a.mean(0)).T
            l = (b - b.mean(0)) @ (b - b.mean(0)).T
            expected.append(hsic_unbiased_slow(k, l)
                            / np.sqrt(hsic_unbiased_slow(k, k) * hsic_unbiased_slow(l, l)))
        else:
            iu = np.triu_indices(len(test), k=1)
            expected.append(sps.spearmanr((1 - np.corrcoef(a))[iu],
                                          (1 - np.corrcoef(b))[iu]).statistic)
    np.testing.assert_allclose(result["layers"]["good"]["per_split"], expected, atol=1e-5)
    assert result["layers"]["good"]["raw"] == pytest.approx(np.mean(expected), abs=1e-5)


@pytest.mark.parametrize("mapping", ["pls", "ridge", "cka"])
def test_wide_layers_score_through_their_grams_exactly(tmp_path, setup, rng, mapping):
    """A layer wider than the stimuli, memory-mapped from disk with its rows permuted, scores
    as the kernels score its features (the Gram path keeps ~800k-feature layers small)."""
    from jaxbrain.kernels import cka

    path, ids, good = setup
    wide = np.concatenate([good, rng.standard_normal((N_STIM, 300))], axis=1) + 5.0
    order = rng.permutation(N_STIM)
    mapped = np.lib.format.open_memmap(tmp_path / "wide.npy", "w+", np.float32, wide.shape)
    mapped[:] = wide[order]
    mapped.flush()
    layer = np.load(tmp_path / "wide.npy", mmap_mode="r")
    benchmark = load(f"MajajHong2015.IT-{mapping}").with_overrides(n_components=5)
    got = score_layers_on(benchmark, {"wide": layer}, ids[order], read_assembly(path))
    targets = average_repetitions(select_region(read_assembly(path), "IT").isel(time_bin=0))
    y = targets.values.astype(np.float32)
    x = wide.astype(np.float32)
    splits = stratified_shuffle_splits(targets["object_name"].values,
                                       test_size=benchmark.test_size)
    if mapping == "cka":
        expected = [float(cka(x[t], y[t])) for t in splits.test]
    else:
        expected = neural_predictivity(x, y, splits, mapping, n_components=5,
                                       pls_weights=benchmark.pls_weights).per_split
    np.testing.assert_allclose(got["layers"]["wide"]["per_split"], expected, atol=2e-5)
