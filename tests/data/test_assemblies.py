"""Assembly operations against pandas/NumPy references, and the path to the kernels."""

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
    split_half_consistency,
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


def test_repetitions_stack_trials(assembly):
    window = time_window(assembly, 70, 170)
    reps = repetitions(window)
    assert reps.data.shape == (N_REPS, N_STIM, N_NEUROIDS)
    np.testing.assert_allclose(reps.data.mean(0), average_repetitions(window).values)
    uneven = window.isel(presentation=slice(1, None))
    with pytest.raises(ValueError, match="unequal numbers of repetitions"):
        repetitions(uneven)
    single = window.isel(presentation=np.arange(0, N_STIM * N_REPS, N_REPS))
    with pytest.raises(ValueError, match="single presentation per stimulus"):
        repetitions(single)


def test_repetitions_follow_the_repetition_coordinate(assembly):
    window = time_window(assembly, 70, 170)
    shuffled = window.isel(presentation=np.random.default_rng(1).permutation(N_STIM * N_REPS))
    reps = repetitions(shuffled).data
    first = window.isel(presentation=np.asarray(window["repetition"].values) == 0)
    np.testing.assert_allclose(reps[0], first.values)  # sorted by stimulus_id already
    relabelled = window.assign_coords(
        repetition=("presentation", np.where(np.arange(N_STIM * N_REPS) == 0, 9,
                                             window["repetition"].values)))
    with pytest.raises(ValueError, match="different sets of 'repetition' values"):
        repetitions(relabelled)


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
    halves = split_half_splits(reps.data.shape[0])
    ceiling = split_half_consistency(reps.data, halves.train, halves.test)
    assert ceiling.per_neuroid.shape == (10, 3)
