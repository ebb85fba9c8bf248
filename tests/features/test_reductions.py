"""Random projection (sparse sign sketch) and PCA reductions against their definitions and
scikit-learn."""

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

from jaxbrain.features import (
    PCA,
    NoReduction,
    RandomProjection,
    as_reduction,
    pca_fit,
    pca_transform,
    sketch,
    sketch_params,
)


def _project(x, name="layer", d=64, seed=0):
    reduction = RandomProjection(d=d, seed=seed)
    return np.asarray(reduction.apply(reduction.prepare(name, x.shape[1]), jnp.asarray(x)))


def test_sketch_follows_its_definition(rng):
    dim, d = 1000, 64  # padded to 1024: 16 slots per output, 24 of them padding
    bucket, sign = sketch_params("layer", dim, d, seed=3)
    counts = np.bincount(bucket, minlength=d)
    assert counts.max() == 16 and counts.sum() == dim and set(sign.tolist()) == {-1.0, 1.0}
    # the definition: permute the padded features, sum consecutive blocks of 16
    rng_ = np.random.default_rng([3, zlib.crc32(b"layer")])
    slots = rng_.permutation(1024)
    x = rng.normal(size=(5, dim)).astype(np.float32)
    permuted = np.zeros((5, 1024), np.float32)
    permuted[:, slots[:dim]] = x * sign
    expected = permuted.reshape(5, d, 16).sum(-1)
    np.testing.assert_allclose(np.asarray(sketch(jnp.asarray(x), bucket, sign, d)), expected,
                               rtol=1e-5, atol=1e-5)


def test_projection_shape_determinism_and_layer_dependence(rng):
    x = rng.normal(size=(6, 3000)).astype(np.float32)
    y = _project(x)
    assert y.shape == (6, 64) and y.dtype == np.float32
    np.testing.assert_array_equal(y, _project(x))  # across processes: test_cache.py
    assert not np.allclose(y, _project(x, name="other"))
    assert not np.allclose(y, _project(x, seed=1))


def test_narrow_layers_pass_through_exactly(rng):
    x = rng.normal(size=(4, 64))
    reduction = RandomProjection(d=64)
    assert reduction.prepare("fc", 64) is None and reduction.out_dim(None, 64) == 64
    np.testing.assert_array_equal(np.asarray(reduction.apply(None, jnp.asarray(x))), x)


def test_norms_preserved_in_expectation():
    # a fixed, far-from-isotropic vector; E over sketches of ‖y‖²/‖x‖² is 1 and each draw has
    # variance ≤ 2/d = 0.04, so the mean of 400 draws has sd ≤ 0.01: tolerance 0.05 (5 sd)
    x = (1.0 / np.arange(1, 1001))[None].astype(np.float32)
    ratios = [np.sum(_project(x, d=50, seed=s) ** 2) / np.sum(x ** 2) for s in range(400)]
    assert abs(np.mean(ratios) - 1) < 0.05
    assert 0.1 < np.std(ratios) < 0.3  # it is random, and not wildly so


def test_inner_products_approximately_preserved(rng):
    # cos(x1, x2) = 0.5; with d = 2000 the sketched cosine has sd ≈ sqrt(1.25/d) ≈ 0.025
    a, b = rng.normal(size=(2, 20000))
    x = np.stack([a, 0.5 * a + np.sqrt(0.75) * b]).astype(np.float32)
    y = _project(x, d=2000)
    cos = np.sum(y[0] * y[1]) / np.sqrt(np.sum(y[0] ** 2) * np.sum(y[1] ** 2))
    exact = np.sum(x[0] * x[1]) / np.sqrt(np.sum(x[0] ** 2) * np.sum(x[1] ** 2))
    assert abs(cos - exact) < 0.125


def test_sketch_in_batches_equals_sketch_of_whole_matrix(rng):
    x = rng.normal(size=(10, 5000)).astype(np.float32)
    reduction = RandomProjection(d=100)
    params = reduction.prepare("layer1.0.conv1", 5000)
    apply = jax.jit(reduction.apply)
    whole = np.asarray(apply(params, jnp.asarray(x)))
    batches = np.concatenate([np.asarray(apply(params, jnp.asarray(x[i:i + 4])))
                              for i in range(0, 10, 4)])
    np.testing.assert_allclose(batches, whole, rtol=1e-6, atol=1e-6)


def test_keys_name_the_method_and_its_options():
    key = RandomProjection(d=256, seed=2).key()
    assert key["method"] == "random_projection" and key["d"] == 256 and key["seed"] == 2
    assert RandomProjection(d=256, seed=2).describe() != RandomProjection(d=256).describe()
    assert PCA(n_components=10).key()["n_components"] == 10
    assert as_reduction("none") == NoReduction() and as_reduction("pca") == PCA()
    with pytest.raises(KeyError, match="random_projection"):
        as_reduction("svd")
    with pytest.raises(ValueError, match="d > 0"):
        RandomProjection(d=0)


def _aligned(ours, theirs):
    return ours * np.sign(np.sum(ours * theirs, axis=0))


@pytest.mark.parametrize(("n_ref", "dim", "n_components", "k"), [
    (60, 200, 20, 20),  # full rank: the first 20 components
    (30, 100, 50, 29),  # centred rank 29 < n_components: near-zero eigenvalues dropped
])
def test_pca_equals_sklearn(rng, n_ref, dim, n_components, k):
    scales = np.linspace(3, 0.5, dim)
    reference = rng.normal(size=(n_ref, dim)) * scales + rng.normal(size=dim)
    x = rng.normal(size=(15, dim)) * scales
    params = PCA(n_components=n_components).fit("layer", reference)
    assert params[1].shape == (dim, k)
    ours = np.asarray(jax.jit(pca_transform)(jnp.asarray(x), *map(jnp.asarray, params)))
    sk = SkPCA(n_components=k).fit(reference)
    theirs = sk.transform(x)
    np.testing.assert_allclose(_aligned(ours, theirs), theirs, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)  # svd_flip's signs as well
    np.testing.assert_allclose(params[0], sk.mean_, atol=1e-12)


def test_pca_chunking_does_not_change_the_fit(rng):
    reference = rng.normal(size=(20, 300))
    mean, components = pca_fit(reference, 10)
    mean_c, components_c = pca_fit(reference, 10, chunk_bytes=8 * 20 * 7)  # 7 columns a chunk
    np.testing.assert_allclose(mean_c, mean, atol=1e-14)
    np.testing.assert_allclose(components_c, components, atol=1e-12)


def test_pca_float32_reference_gives_float32_components(rng):
    mean, components = pca_fit(rng.normal(size=(20, 50)).astype(np.float32), 5)
    assert mean.dtype == components.dtype == np.float32 and components.shape == (50, 5)


def test_pca_keeps_narrow_layers_and_names_constant_ones(rng):
    reduction = PCA(n_components=50)
    x = rng.normal(size=(30, 50))
    assert reduction.fit("fc", x) is None
    np.testing.assert_array_equal(np.asarray(reduction.apply(None, jnp.asarray(x))), x)
    with pytest.raises(ValueError, match="layer 'conv1'.*constant"):
        reduction.fit("conv1", np.ones((30, 60)))
