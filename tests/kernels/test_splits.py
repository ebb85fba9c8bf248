"""Split indices are identical to scikit-learn's (Brain-Score's) splitters."""

import numpy as np
import pytest
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

from jaxbrain.kernels import shuffle_splits, split_half_splits, stratified_shuffle_splits


def test_stratified_splits_identical_to_sklearn(rng):
    labels = rng.permutation(np.repeat([f"obj{i}" for i in range(64)], 50))
    splits = stratified_shuffle_splits(labels)
    assert splits.train.shape == (10, 2880) and splits.test.shape == (10, 320)
    reference = StratifiedShuffleSplit(n_splits=10, train_size=0.9, random_state=1)
    for k, (train, test) in enumerate(reference.split(np.zeros(len(labels)), labels)):
        np.testing.assert_array_equal(splits.train[k], train)
        np.testing.assert_array_equal(splits.test[k], test)


def test_shuffle_and_split_half_identical_to_sklearn():
    reference = list(ShuffleSplit(n_splits=10, train_size=0.5, random_state=1).split(np.zeros(6)))
    halves = split_half_splits(6)
    assert halves.train.shape == (10, 3) and halves.test.shape == (10, 3)
    for k, (a, b) in enumerate(reference):
        np.testing.assert_array_equal(halves.train[k], a)
        np.testing.assert_array_equal(halves.test[k], b)
    plain = shuffle_splits(20, n_splits=3, train_size=0.8, seed=4)
    reference = ShuffleSplit(n_splits=3, train_size=0.8, random_state=4).split(np.zeros(20))
    for k, (a, _) in enumerate(reference):
        np.testing.assert_array_equal(plain.train[k], a)


def test_test_size_sizing_identical_to_sklearn(rng):
    labels = rng.permutation(np.repeat(np.arange(7), 13))  # 91 stimuli: rounding matters
    splits = stratified_shuffle_splits(labels, test_size=0.9)
    reference = StratifiedShuffleSplit(n_splits=10, test_size=0.9, random_state=1)
    for k, (train, test) in enumerate(reference.split(np.zeros(91), labels)):
        np.testing.assert_array_equal(splits.train[k], train)
        np.testing.assert_array_equal(splits.test[k], test)


def test_class_with_single_stimulus_is_a_clear_error():
    labels = np.array(["a"] * 10 + ["b"] * 10 + ["lonely"])
    with pytest.raises(ValueError, match="lonely.*single stimulus"):
        stratified_shuffle_splits(labels)


def test_too_few_stimuli_is_a_clear_error():
    with pytest.raises(ValueError, match="too few stimuli"):
        stratified_shuffle_splits(np.array(["a", "a", "b", "b"]), train_size=0.9)
    with pytest.raises(ValueError, match="too few stimuli.*10 stratification classes"):
        # 20 stimuli, 10 classes: 2 test stimuli cannot cover 10 classes
        stratified_shuffle_splits(np.repeat(np.arange(10), 2), train_size=0.9)


def test_split_half_needs_repetitions():
    with pytest.raises(ValueError, match="at least 2 repetitions"):
        split_half_splits(1)


@pytest.mark.parametrize("n_reps,sizes", [(2, (1, 1)), (3, (1, 2))])
def test_split_half_of_few_repetitions(n_reps, sizes):
    halves = split_half_splits(n_reps)
    assert (halves.train.shape[1], halves.test.shape[1]) == sizes
