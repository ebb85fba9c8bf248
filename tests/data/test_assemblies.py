"""Assembly operations against pandas/NumPy references, and the path to the kernels."""

import warnings

import numpy as np
import pytest

from jaxbrain.data import (
    align,
    average_repetitions,
    read_assembly,
    repetitions,
    select_region,
    time_window,
)
from jaxbrain.kernels import (
    neural_predictivity,
    split_half_consistency_trials,
    split_half_splits,
    stratified_shuffle_splits,
)
from tests.data.test_brainscore_io import (
    N_NEUROIDS,
    N_REPS,
    N_STIM,
    brainio_style_assembly,
    write_like_brainio,
)


@pytest.fixture
def assembly(tmp_path, rng):
    path = tmp_path / "assy.nc"
    write_like_brainio(brainio_style_assembly(rng), path)
    return read_assembly(path)


def test_time_window_averages_bins_inside(assembly):
    both = time_window(assembly, 70, 170)
    np.testing.assert_allclose(both.values, assembly.values.mean(axis=2))
    early = time_window(assembly, 60, 125)
    np.testing.assert_allclose(early.values, assembly.values[:, :, 0])
    with pytest.raises(ValueError, match="no time bin lies inside the window 180-210"):
        time_window(assembly, 180, 210)


def test_average_repetitions_matches_pandas(assembly):
    window = time_window(assembly, 70, 170)
    targets = average_repetitions(window)
    frame = window.to_pandas()
    frame.index = window["stimulus_id"].values
    expected = frame.groupby(level=0).mean().sort_index()
    np.testing.assert_allclose(targets.values, expected.values)
    assert targets["stimulus_id"].values.tolist() == sorted(set(window["stimulus_id"].values))
    assert "object_name" in targets.coords and "repetition" not in targets.coords
    assert targets["region"].values.tolist() == ["V4", "V4", "IT", "IT", "IT"]
    with pytest.raises(ValueError, match="select a window first"):
        average_repetitions(assembly)


def test_repetitions_index_trials_by_stimulus_and_repetition(assembly):
    window = time_window(assembly, 70, 170)
    shuffled = window.isel(presentation=np.random.default_rng(1).permutation(N_STIM * N_REPS))
    reps = repetitions(shuffled)
    assert reps.data.shape == (N_STIM * N_REPS, N_NEUROIDS) and reps.n_repetitions == N_REPS
    np.testing.assert_array_equal(reps.stimulus_id[reps.stimulus_index],
                                  shuffled["stimulus_id"].values)
    np.testing.assert_array_equal(reps.repetition_index, shuffled["repetition"].values)
    no_coord = window.drop_vars("repetition")
    np.testing.assert_array_equal(repetitions(no_coord).repetition_index,
                                  window["repetition"].values)  # order of appearance
    single = window.isel(presentation=np.arange(0, N_STIM * N_REPS, N_REPS))
    with pytest.raises(ValueError, match="single presentation per stimulus"):
        repetitions(single)


def test_ceiling_with_unequal_repetitions_matches_direct_computation(assembly):
    """Drop some trials: each half averages whatever trials a stimulus has (Brain-Score)."""
    from scipy import stats as sps

    window = time_window(assembly, 70, 170)
    keep = np.ones(N_STIM * N_REPS, bool)
    keep[[2, 5, 11]] = False  # three stimuli lose one repetition each
    trials_da = window.isel(presentation=keep)
    reps = repetitions(trials_da)
    halves = split_half_splits(reps.n_repetitions)
    result = split_half_consistency_trials(reps.data, reps.stimulus_index,
                                           reps.repetition_index, halves.train, halves.test,
                                           n_stimuli=reps.stimulus_id.size)
    values = trials_da.values
    stim, rep = trials_da["stimulus_id"].values, trials_da["repetition"].values
    expected = []
    for a, b in zip(halves.train, halves.test, strict=True):
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a stimulus empty in a half: NaN
            means = [np.stack([values[(stim == s) & np.isin(rep, h)].mean(0)
                               for s in reps.stimulus_id]) for h in (a, b)]
        r = np.array([sps.pearsonr(means[0][:, j], means[1][:, j]).statistic
                      for j in range(N_NEUROIDS)])
        expected.append(np.median(2 * r / (1 + r)))
    np.testing.assert_allclose(result.per_split, expected, atol=1e-12)
    assert np.isfinite(np.asarray(result.per_split)).sum() >= 3  # not vacuous


def test_align_orders_rows_and_names_mismatches(assembly):
    targets = average_repetitions(time_window(assembly, 70, 170))
    order = targets["stimulus_id"].values[::-1]
    aligned = align(targets, order)
    np.testing.assert_array_equal(aligned.values, targets.values[::-1])
    with pytest.raises(ValueError, match=r"1 in activations but not in assembly \(e.g. \['ghost'"):
        align(targets, [*order[:-1], "ghost"])


def test_select_region(assembly):
    assert select_region(assembly, "IT").sizes["neuroid"] == 3
    with pytest.raises(ValueError, match=r"regions present: \['IT', 'V4'\]"):
        select_region(assembly, "V1")


def test_from_file_to_scores(assembly, rng):
    """Read, window, average, align to activations, score and ceil: the pieces fit."""
    window = select_region(time_window(assembly, 70, 170), "IT")
    targets = average_repetitions(window)
    stimulus_order = rng.permutation(targets["stimulus_id"].values)
    activations = rng.standard_normal((N_STIM, 6))
    aligned = align(targets, stimulus_order)
    labels = aligned["object_name"].values
    splits = stratified_shuffle_splits(labels, n_splits=3, train_size=0.5)
    result = neural_predictivity(activations, aligned.values, splits, "ridge")
    assert result.per_neuroid.shape == (3, 3)
    reps = repetitions(window)
    halves = split_half_splits(reps.n_repetitions)
    ceiling = split_half_consistency_trials(reps.data, reps.stimulus_index,
                                            reps.repetition_index, halves.train, halves.test,
                                            n_stimuli=reps.stimulus_id.size)
    assert ceiling.per_neuroid.shape == (10, 3)
