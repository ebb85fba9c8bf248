"""Streamed extraction: a bank built batch by batch (the last batch padded) equals the model run
on every image at once, reduced afterwards."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbrain.features import PCA, NoReduction, RandomProjection, extract, pca_fit
from jaxbrain.features.extract import group_layers
from jaxbrain.models import ALL, create

N = 10  # with batch 4: batches of 4, 4 and 2 + 2 padding rows


@pytest.fixture(scope="module")
def resnet():
    return create("resnet18_tiny", num_classes=8, heads=("classification", "memorability"))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).normal(size=(N, 32, 32, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def ids():
    return np.array([f"im{i:02d}" for i in range(N)])


@pytest.fixture(scope="module")
def whole(resnet, images):
    """Every tap of the eval-mode model on all images at once, flattened."""
    resnet.eval()
    try:
        _, taps = resnet(images, taps=ALL)
    finally:
        resnet.train()
    return {name: np.asarray(value).reshape(len(images), -1) for name, value in taps.items()}


@pytest.fixture(scope="module")
def resnet_bank(resnet, images, ids):
    return extract(resnet, images, ids, reduction="none", batch_size=4, model_name="r18")


def test_bank_equals_one_forward_over_all_images(resnet, resnet_bank, whole, ids):
    assert list(resnet_bank.layers) == resnet.tap_names() == list(whole)
    for name, value in whole.items():
        np.testing.assert_allclose(resnet_bank.layers[name], value, rtol=1e-5, atol=1e-6,
                                   err_msg=name)
        assert resnet_bank.layers[name].dtype == np.float32
    np.testing.assert_array_equal(resnet_bank.stimulus_ids, ids)
    meta = resnet_bank.meta
    assert meta["model"] == "r18" and meta["reduction"] == {"method": "none"}
    assert meta["tap_shapes"]["conv1"] == [16, 16, 8] and meta["features"]["conv1"] == 2048
    assert meta["features"]["memorability"] == 1 and meta["passes"] == 1
    assert not resnet.bn1.use_running_average  # the caller's model was not switched to eval


def test_taps_subset_comes_in_forward_order(resnet, resnet_bank, images, ids):
    bank = extract(resnet, images, ids, taps=["layer2", "fc", "conv1"], reduction="none",
                   batch_size=4)
    assert list(bank.layers) == ["conv1", "layer2", "fc"]
    for name, value in bank.layers.items():
        np.testing.assert_array_equal(value, resnet_bank.layers[name])
    assert bank.meta["taps"] == ["conv1", "layer2", "fc"]


def test_random_projection_inside_the_batch_function(resnet, whole, images, ids):
    reduction = RandomProjection(d=32, seed=4)
    taps = ["conv1", "layer1.0.relu", "layer2.1.add", "layer4", "fc", "memorability"]
    bank = extract(resnet, images, ids, taps=taps, reduction=reduction, batch_size=4)
    assert list(bank.layers) == taps
    apply = jax.jit(reduction.apply)
    for name in taps:
        value = whole[name]
        expected = apply(reduction.prepare(name, value.shape[1]), jnp.asarray(value))
        np.testing.assert_allclose(bank.layers[name], expected, rtol=1e-5, atol=1e-5,
                                   err_msg=name)
        assert bank.layers[name].shape == (N, min(32, value.shape[1]))


def test_pca_matches_a_fit_on_the_whole_reference_set(resnet, resnet_bank, images, ids):
    reference = np.random.default_rng(2).normal(size=(16, 32, 32, 3)).astype(np.float32)
    # the unreduced reference bank reuses the compiled batch function of resnet_bank
    reference_bank = extract(resnet, reference, np.arange(16), reduction="none", batch_size=4)
    taps = ["conv1", "layer1.0.conv1", "layer1", "layer2.0.bn1", "layer2.0.downsample.0", "fc"]
    pca = PCA(n_components=12)
    bank = extract(resnet, images, ids, taps=taps, reduction=pca,
                   reference_images=reference, batch_size=4)
    assert bank.meta["passes"] == 1 and list(bank.layers) == taps
    for name in taps:
        if name == "fc":  # 8 ≤ 12 features: kept unreduced
            np.testing.assert_array_equal(bank.layers[name], resnet_bank.layers[name])
            continue
        mean, components = pca_fit(reference_bank.layers[name].astype(np.float64), 12)
        expected = (resnet_bank.layers[name] - mean) @ components
        scale = np.abs(expected).max()
        np.testing.assert_allclose(bank.layers[name], expected, atol=1e-4 * scale, err_msg=name)

    # a budget of about a third of what the reference needs forces several passes, same bank
    total = sum(4 * d * (16 + 12) for d in bank.meta["features"].values() if d > 12)
    split = extract(resnet, images, ids, taps=taps, reduction=pca,
                    reference_images=reference, batch_size=4, memory_budget_bytes=total // 3)
    assert split.meta["passes"] >= 2
    assert list(split.layers) == list(bank.layers)
    for name, value in bank.layers.items():
        np.testing.assert_array_equal(split.layers[name], value, err_msg=name)


def test_grouping_respects_the_budget():
    dims = {"a": 5, "b": 5, "c": 20, "d": 1, "e": 5}
    assert group_layers(list(dims), dims, lambda d: d, 10) == [["a", "b"], ["c"], ["d", "e"]]
    assert group_layers(list(dims), dims, lambda d: d, 100) == [list(dims)]


def test_non_finite_activations_name_the_layer_and_stimulus(resnet, ids):
    images = np.zeros((N, 32, 32, 3), np.float32)
    images[6, 20, 20, 0] = np.nan
    with pytest.raises(ValueError, match=r"layer 'conv1'.*\['im06'\]"):
        extract(resnet, images, ids, reduction=NoReduction(), batch_size=4)


def test_unknown_tap_lists_the_valid_names(resnet, images, ids):
    with pytest.raises(KeyError, match=r"unknown layer tap\(s\) \['conv99'\].*conv1"):
        extract(resnet, images, ids, taps=["conv1", "conv99"])


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"images": np.zeros((N, 32, 32, 3), np.uint8)}, ValueError, "prepare_images"),
    ({"images": np.zeros((N, 32, 32), np.float32)}, ValueError, "shape"),
    ({"stimulus_ids": ["a"] * N}, ValueError, "duplicate"),
    ({"stimulus_ids": ["a", "b"]}, ValueError, "one per image"),
    ({"reduction": "pca"}, ValueError, "reference_images"),
    ({"reduction": "svd"}, KeyError, "unknown reduction"),
    ({"batch_size": 0}, ValueError, "batch_size"),
])
def test_bad_input_is_named(resnet, images, ids, kwargs, error, match):
    args = {"images": images, "stimulus_ids": ids, **kwargs}
    with pytest.raises(error, match=match):
        extract(resnet, args.pop("images"), args.pop("stimulus_ids"), **args)


def test_progress_wraps_each_pass(resnet, ids):
    images = np.zeros((N, 32, 32, 3), np.float32)
    seen = []

    def progress(batches):
        batches = list(batches)
        seen.append(batches)
        return batches

    extract(resnet, images, ids, taps=["conv1"], batch_size=4, progress=progress)
    assert seen == [[0, 4, 8]]


def _raw_images(n=N, seed=1):
    """uint8 stimuli of differing sizes, as a stimulus set holds them."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (20 + 3 * (i % 4), 24, 3), dtype=np.uint8) for i in range(n)]


def test_placed_stimuli_stream_to_the_same_bank_as_placed_arrays(resnet, ids):
    from jaxbrain.features import PlacedStimuli, prepare_images
    from jaxbrain.features.extract import stimuli_hash

    raw = _raw_images()
    options = {"stimulus_degrees": 4.0, "model_degrees": 8.0, "image_size": 32}
    placed = PlacedStimuli(raw, options, source_digest="raw-digest")
    assert placed.shape == (N, 32, 32, 3) and len(placed) == N
    timings = {}
    streamed = extract(resnet, placed, ids, reduction="none", batch_size=3, timings=timings)
    arrays = extract(resnet, prepare_images(raw, **options), ids, reduction="none",
                     batch_size=3)
    for name in arrays.layers:
        np.testing.assert_array_equal(streamed.layers[name], arrays.layers[name], err_msg=name)
    assert timings["placement_seconds"] > 0 and timings["input_wait_seconds"] >= 0
    # identified by the raw images' digest and the placement, without placing them
    assert stimuli_hash(ids, placed) == stimuli_hash(ids, PlacedStimuli(raw, options,
                                                                         "raw-digest"))
    assert stimuli_hash(ids, placed) != stimuli_hash(
        ids, PlacedStimuli(raw, {**options, "stimulus_degrees": 8.0}, "raw-digest"))
    with pytest.raises(ValueError, match="stimulus_degrees"):
        PlacedStimuli(raw, {**options, "stimulus_degrees": -1.0}, "raw-digest")


def test_batch_size_from_the_memory_budget(resnet, images, ids, resnet_bank):
    from jaxbrain.features.extract import auto_batch_size

    per_image = 4 * (32 * 32 * 3 + sum(resnet_bank.meta["features"].values()))
    budget = 3 * per_image + 1  # room for 3 images' activations
    bank = extract(resnet, images, ids, reduction="none", batch_size=None,
                   activation_memory_bytes=budget)
    assert bank.meta["batch_sizes"] == [3] == [auto_batch_size(per_image, N, budget)]
    for name, value in resnet_bank.layers.items():
        np.testing.assert_allclose(bank.layers[name], value, rtol=1e-5, atol=1e-6)
    assert auto_batch_size(per_image, N, 1) == 1 and auto_batch_size(1, N, 1 << 40) == N
    assert auto_batch_size(1, 10_000, 1 << 40) == 256


def test_bfloat16_extraction_is_close_to_float32_and_cached_apart(resnet, images, ids,
                                                                    resnet_bank, tmp_path):
    from jaxbrain.features import extract_cached

    bf16 = extract(resnet, images, ids, taps=["conv1", "layer1.0"], reduction="none",
                   batch_size=4, compute_dtype="bfloat16")
    assert bf16.meta["compute_dtype"] == "bfloat16"
    for name, value in bf16.layers.items():
        assert value.dtype == np.float32
        reference = resnet_bank.layers[name]
        assert not np.array_equal(value, reference)  # it did run in bfloat16
        scale = np.abs(reference).max()
        assert np.abs(value - reference).max() <= 0.05 * scale, name
    common = {"cache_dir": tmp_path, "taps": ["conv1"], "reduction": "none", "batch_size": 4}
    keys = {extract_cached(resnet, images, ids, compute_dtype=dtype, **common).meta["cache_key"]
            for dtype in ("float32", "bfloat16")}
    assert len(keys) == 2
    with pytest.raises(ValueError, match="compute_dtype"):
        extract(resnet, images, ids, compute_dtype="float16")
