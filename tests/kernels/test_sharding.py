"""Layer-sharded scoring on 8 fake CPU devices gives the unsharded numbers."""

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from jaxbrain.kernels import neural_predictivity, stratified_shuffle_splits


@pytest.fixture(scope="module")
def mesh():
    devices = jax.devices()
    assert len(devices) == 8, "tests/conftest.py must create 8 host devices"
    return Mesh(np.array(devices), ("layers",))


@pytest.mark.parametrize("mapping", ["pls", "ridge"])
def test_sharded_equals_unsharded(rng, mesh, mapping):
    labels = np.repeat(np.arange(6), 10)
    xs = rng.standard_normal((11, 60, 20))  # 11 layers: not a multiple of 8 devices
    y = xs[3] @ rng.standard_normal((20, 5)) + rng.standard_normal((60, 5))
    splits = stratified_shuffle_splits(labels, n_splits=3)
    plain = neural_predictivity(xs, y, splits, mapping, n_components=4)
    sharded = neural_predictivity(xs, y, splits, mapping, n_components=4, mesh=mesh)
    assert sharded.score.shape == (11,)
    for a, b in zip(plain, sharded, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
