"""Split-half ceiling against a NumPy/SciPy reference and a planted noise level (float64)."""

import numpy as np
from scipy import stats as sps

from jaxbrain.kernels import split_half_consistency, split_half_splits


def test_matches_reference_definition(rng):
    reps = rng.standard_normal((6, 50, 8)) + rng.standard_normal((1, 50, 8))
    halves = split_half_splits(6)
    result = split_half_consistency(reps, halves.train, halves.test)
    expected = []
    for a, b in zip(halves.train, halves.test, strict=True):
        ma, mb = reps[a].mean(0), reps[b].mean(0)
        r = np.array([sps.pearsonr(ma[:, j], mb[:, j]).statistic for j in range(8)])
        expected.append(np.median(2 * r / (1 + r)))
    np.testing.assert_allclose(result.per_split, expected, atol=1e-12)
    np.testing.assert_allclose(result.ceiling, np.mean(expected), atol=1e-12)
    np.testing.assert_allclose(result.error, np.std(expected) / np.sqrt(10), atol=1e-12)


def test_recovers_planted_reliability(rng):
    """Signal variance 1, noise variance 4 per trial, 8 trials: reliability = 1 / (1 + 4/8)."""
    signal = rng.standard_normal((4000, 5))
    reps = signal[None] + 2.0 * rng.standard_normal((8, 4000, 5))
    halves = split_half_splits(8)
    result = split_half_consistency(reps, halves.train, halves.test)
    assert abs(float(result.ceiling) - 1 / 1.5) < 0.02


def test_constant_neuroid_is_nan_and_counted(rng):
    reps = rng.standard_normal((4, 30, 3))
    reps[:, :, 1] = 5.0
    halves = split_half_splits(4)
    result = split_half_consistency(reps, halves.train, halves.test)
    assert np.all(np.isnan(np.asarray(result.per_neuroid)[:, 1]))
    assert np.all(np.asarray(result.n_nan) == 1)
