"""Cross-validation index generation as stacked, static-shape index arrays.

Splits are generated on the host with scikit-learn (so they are *identical* to the ones the
Brain-Score reference code draws, RNG included) and stacked into ``(n_splits, n_train)`` /
``(n_splits, n_test)`` integer arrays: every split has the same sizes, so one compiled kernel
serves all of them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit


class Splits(NamedTuple):
    """Stacked train/test row indices, one row per split."""

    train: np.ndarray  # (n_splits, n_train) int32
    test: np.ndarray  # (n_splits, n_test) int32

    @property
    def n_splits(self) -> int:
        return self.train.shape[0]


def _stack(split_iter) -> Splits:
    train, test = zip(*split_iter, strict=True)
    return Splits(np.stack(train).astype(np.int32), np.stack(test).astype(np.int32))


def stratified_shuffle_splits(
    labels, n_splits: int = 10, train_size: float = 0.9, seed: int = 1,
    test_size: float | None = None,
) -> Splits:
    """``StratifiedShuffleSplit(n_splits, train_size, random_state=seed)`` on ``labels``.

    With ``test_size`` the split is sized by it instead (scikit-learn's ``train_size=None,
    test_size=...``; Brain-Score's test-only cross-validation uses ``test_size=0.9``), which
    rounds differently from ``train_size=1 - test_size``.

    ``labels`` are the stratification values (e.g. ``object_name``) of the stimuli in the
    targets' row order.  ``labels=None`` gives plain ``ShuffleSplit`` splits; pass the number
    of stimuli through :func:`shuffle_splits` in that case.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"stratification labels must be 1-D, got shape {labels.shape}")
    n = labels.shape[0]
    n_train = _n_train(n, n_splits, train_size, test_size)
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2:
        rare = classes[counts < 2][:5].tolist()
        raise ValueError(
            f"too few stimuli for stratified splits: stratification classes {rare} have a "
            "single stimulus (each class needs at least 2)"
        )
    if min(n_train, n - n_train) < classes.size:
        raise ValueError(
            f"too few stimuli for stratified splits: {n} stimuli "
            f"give {n_train} training and {n - n_train} test stimuli, but each side needs one "
            f"per class ({classes.size} stratification classes)"
        )
    splitter = StratifiedShuffleSplit(
        n_splits=n_splits, random_state=seed,
        **({"test_size": test_size} if test_size is not None else {"train_size": train_size}),
    )
    try:
        return _stack(splitter.split(np.zeros(n), labels))
    except ValueError as err:  # sklearn's own size checks, e.g. fewer test rows than classes
        raise ValueError(
            f"cannot draw {n_splits} stratified splits ({n_train} training) from {n} "
            f"stimuli in {classes.size} classes: {err}"
        ) from err


def shuffle_splits(n: int, n_splits: int = 10, train_size: float = 0.9, seed: int = 1) -> Splits:
    """Unstratified ``ShuffleSplit(n_splits, train_size, random_state=seed)`` over ``n`` rows."""
    _n_train(n, n_splits, train_size)
    return _shuffle(n, n_splits, train_size, seed)


def split_half_splits(n_repetitions: int, n_splits: int = 10, seed: int = 1) -> Splits:
    """Random halves of the repetition indices (docs/design.md §4.6): ShuffleSplit(train_size=.5).

    With an odd count the first half is the smaller one (3 repetitions: 1 vs 2), as
    scikit-learn sizes it."""
    if n_repetitions < 2:
        raise ValueError(
            f"a split-half ceiling needs at least 2 repetitions per stimulus, got {n_repetitions}"
        )
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    return _shuffle(n_repetitions, n_splits, 0.5, seed)


def equal_kfold_splits(n: int, k: int, rng: np.random.Generator) -> Splits:
    """``k`` folds of a seeded permutation of ``n`` rows, each fold ``n // k`` rows (the
    remainder never validates, so every split has one shape); train = the other rows."""
    if not 2 <= k <= n:
        raise ValueError(f"need 2 <= k <= n rows for k-fold splits; got k={k}, n={n}")
    order = rng.permutation(n)
    size = n // k
    test = np.stack([order[i * size:(i + 1) * size] for i in range(k)])
    train = np.stack([np.setdiff1d(order, fold) for fold in test])
    return Splits(train.astype(np.int32), test.astype(np.int32))


def _shuffle(n: int, n_splits: int, train_size: float, seed: int) -> Splits:
    splitter = ShuffleSplit(n_splits=n_splits, train_size=train_size, random_state=seed)
    return _stack(splitter.split(np.zeros(n)))


def _n_train(n: int, n_splits: int, train_size: float, test_size: float | None = None) -> int:
    """Training-set size as scikit-learn computes it, after checking the request is possible."""
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    fraction, name = (train_size, "train_size") if test_size is None else (test_size, "test_size")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{name} must be a fraction in (0, 1), got {fraction}")
    if test_size is None:
        n_train = int(np.floor(train_size * n))
    else:
        n_train = n - int(np.ceil(test_size * n))
    if n_train < 2 or n - n_train < 1:
        raise ValueError(
            f"too few stimuli for the requested splits: {n} stimuli with {name}={fraction} "
            f"give {n_train} training and {n - n_train} test stimuli (need >= 2 and >= 1)"
        )
    return n_train
