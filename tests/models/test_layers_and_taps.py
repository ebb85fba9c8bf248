"""torch-semantics layers against torch itself, and the tap/heads contract of every model."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxbrain.models import ALL, create, names
from jaxbrain.models.layers import AdaptiveAvgPool, LocalResponseNorm, MaxPool
from tests.oracles import torchvision


def _nchw(x):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "ceil"), [
    (13, 3, 2, 0, False), (13, 3, 2, 0, True), (14, 3, 2, 0, True), (15, 3, 2, 1, False),
    (6, 3, 2, 1, True), (55, 3, 2, 0, True),
])
def test_max_pool_matches_torch(size, kernel, stride, padding, ceil):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(size).standard_normal((2, size, size + 1, 3)).astype(np.float32)
    ours = np.asarray(MaxPool(kernel, stride, padding, ceil)(x))
    theirs = torch.nn.functional.max_pool2d(torch.from_numpy(_nchw(x)), kernel, stride, padding,
                                            ceil_mode=ceil).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(("height", "width", "out"), [(9, 13, 6), (1, 1, 6), (6, 6, 6), (7, 5, 3)])
def test_adaptive_average_pool_matches_torch(height, width, out):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, height, width, 4)).astype(np.float32)
    ours = np.asarray(AdaptiveAvgPool(out)(x))
    theirs = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(_nchw(x)), out)
    np.testing.assert_allclose(ours, theirs.numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [5, 4, 3])
def test_local_response_norm_matches_torch(size):
    torch = pytest.importorskip("torch")
    x = 40 * np.random.default_rng(size).standard_normal((2, 5, 5, 11)).astype(np.float32)
    ours = np.asarray(LocalResponseNorm(size, 1e-3, 0.75, 2.0)(x))
    theirs = torch.nn.LocalResponseNorm(size, 1e-3, 0.75, 2.0)(torch.from_numpy(_nchw(x)))
    np.testing.assert_allclose(ours, theirs.numpy().transpose(0, 2, 3, 1), rtol=1e-5)


@pytest.mark.slow
def test_full_size_tap_names_match_torchvision_for_every_resnet_depth():
    _torch, tv = torchvision()
    from torchvision.models.feature_extraction import get_graph_node_names

    for arch in ("resnet34", "resnet101", "resnet152"):
        nodes = get_graph_node_names(getattr(tv.models, arch)())[1][1:]
        ours = [n for n in create(arch).tap_names()
                if not (n.startswith("layer") and n.count(".") <= 1)]
        assert ours == nodes, arch


TINY = {"alexnet_tiny": 64, "alexnet_caffe_tiny": 67, "resnet18_tiny": 32, "resnet50_tiny": 32}


@pytest.mark.parametrize("arch", sorted(TINY))
def test_taps_are_returned_in_forward_order_with_their_traced_shapes(arch):
    size = TINY[arch]
    model = create(arch, num_classes=5, heads=("classification", "memorability"))
    model.eval()
    shapes = model.tap_shapes(size)
    wanted = list(shapes)[::7]
    outputs, taps = jax.jit(lambda x: model(x, taps=wanted[::-1]))(
        np.zeros((3, size, size, 3), np.float32))
    assert list(taps) == wanted  # forward order, whatever order they were asked in
    assert all(taps[n].shape == (3, *shapes[n]) for n in wanted)
    assert outputs["logits"].shape == (3, 5) and outputs["memorability"].shape == (3,)
    _, everything = model(np.zeros((1, size, size, 3), np.float32), taps=ALL)
    assert list(everything) == model.tap_names()


def test_bad_requests_name_the_problem():
    model = create("resnet18_tiny", num_classes=3)
    with pytest.raises(KeyError, match=r"unknown layer tap\(s\) \['layer5'\]; valid names .*"
                                       r"layer4\.1\.relu_1"):
        model(np.zeros((1, 32, 32, 3), np.float32), taps=["layer5", "layer1"])
    with pytest.raises(ValueError, match=r"NHWC images .* got shape \(1, 3, 32, 32\)"):
        model(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="at least 3 pixels"):
        create("alexnet_tiny")(np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="built for 67 px"):
        create("alexnet_caffe_tiny")(np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="heads must be"):
        create("resnet18_tiny", heads=("classification", "beauty"))
    with pytest.raises(KeyError, match="known: alexnet"):
        create("vgg16")
    assert {"alexnet", "alexnet_caffe", "resnet18", "resnet152"} <= set(names())


def test_fc_width_and_heads_are_configurable():
    model = create("alexnet", num_classes=10, fc_width=256, heads="memorability")
    model.eval()
    outputs, taps = model(np.zeros((1, 224, 224, 3), np.float32), taps=["classifier.5"])
    assert set(outputs) == {"memorability"} and taps["classifier.5"].shape == (1, 256)
    assert "classifier.6" not in model.tap_names()
