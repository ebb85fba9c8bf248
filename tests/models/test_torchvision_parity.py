"""Imported torchvision weights reproduce PyTorch's outputs and taps (≤ 1e-4 relative).

Each test builds the torch model with random weights (and random BatchNorm statistics, so
eval-mode normalisation is not the identity), saves it as a checkpoint file, imports it with
``from_torchvision`` and compares.  Models run eagerly: one call is cheaper than compiling.
"""

from __future__ import annotations

import numpy as np
import pytest

from jaxbrain.models import create, from_torchvision, load_torch_state, torch_state
from tests.oracles import torchvision

RTOL = 1e-4


def _relative_error(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


def _nchw(torch, images):
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def _to_nhwc(value):
    value = value.detach().numpy()
    return value.transpose(0, 2, 3, 1) if value.ndim == 4 else value


def _randomise(torch, module, seed=0):
    """Random weights everywhere, including BatchNorm's affine terms and running statistics.

    In-place ReLUs are switched off: they overwrite the tensors torch's feature extractor
    returns for the node before them (``bn1``, ``add``), whose true values jaxbrain taps."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, torch.nn.ReLU):
                sub.inplace = False
            if isinstance(sub, torch.nn.BatchNorm2d):
                sub.weight.uniform_(0.5, 1.5, generator=generator)
                sub.bias.normal_(0.0, 0.1, generator=generator)
                sub.running_mean.normal_(0.0, 0.1, generator=generator)
                sub.running_var.uniform_(0.5, 1.5, generator=generator)
    return module.eval()


def _images(size, n=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, size, size, 3)).astype(np.float32)


def _compare(torch, tv, arch, net, size, taps, path, prefix=""):
    from torchvision.models.feature_extraction import create_feature_extractor

    images = _images(size)
    model = from_torchvision(arch, path, prefix=prefix)
    outputs, ours = model(images, taps=taps)
    extractor = create_feature_extractor(net, return_nodes=[*taps, next(reversed(
        dict(net.named_modules())))]).eval()
    with torch.no_grad():
        theirs = extractor(_nchw(torch, images))
    logits_key = list(theirs)[-1]
    assert _relative_error(outputs["logits"], theirs[logits_key].numpy()) <= RTOL
    for name in taps:
        assert ours[name].shape == _to_nhwc(theirs[name]).shape, name
        assert _relative_error(ours[name], _to_nhwc(theirs[name])) <= RTOL, name


@pytest.mark.parametrize(("arch", "taps"), [
    ("resnet18", ["conv1", "maxpool", "layer1.0.relu", "layer2.0.downsample.1", "layer3.1.add",
                  "layer4.1.relu_1", "avgpool", "flatten"]),
    ("resnet34", ["layer2.3.bn2", "layer3.5", "layer4"]),
    ("resnet50", ["layer1.0.relu_1", "layer2.0.downsample.0", "layer3.5.relu_2", "layer4.2",
                  "flatten"]),
    pytest.param("resnet101", ["layer3.22", "layer4.0.conv2"], marks=pytest.mark.slow),
    pytest.param("resnet152", ["layer2.7", "layer3.35.bn3", "layer4"], marks=pytest.mark.slow),
])
def test_resnet_logits_and_taps_match_torchvision(tmp_path, arch, taps):
    torch, tv = torchvision()
    torch.manual_seed(0)
    net = _randomise(torch, getattr(tv.models, arch)(num_classes=7))
    path = tmp_path / f"{arch}.pth"
    torch.save(net.state_dict(), path)
    _compare(torch, tv, arch, net, 32, taps, path)


@pytest.mark.parametrize("size", [64, 224])
def test_alexnet_logits_and_taps_match_torchvision(tmp_path, size):
    torch, tv = torchvision()
    torch.manual_seed(1)
    net = _randomise(torch, tv.models.alexnet(num_classes=11))
    path = tmp_path / "alexnet.pt"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)
    _compare(torch, tv, "alexnet", net, size,
             ["features.0", "features.2", "features.7", "features.12", "avgpool", "flatten",
              "classifier.2", "classifier.5"], path, prefix="module.")


def test_safetensors_checkpoint_imports_the_same_model(tmp_path):
    torch, tv = torchvision()
    from safetensors.torch import save_file

    torch.manual_seed(2)
    net = _randomise(torch, tv.models.resnet18(num_classes=5))
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, tmp_path / "resnet18.safetensors")
    torch.save(state, tmp_path / "resnet18.pth")
    images = _images(32)
    a, _ = from_torchvision("resnet18", tmp_path / "resnet18.safetensors")(images)
    b, _ = from_torchvision("resnet18", tmp_path / "resnet18.pth")(images)
    np.testing.assert_array_equal(np.asarray(a["logits"]), np.asarray(b["logits"]))


def test_tap_names_are_torchvision_graph_node_names():
    _torch, tv = torchvision()
    from torchvision.models.feature_extraction import get_graph_node_names

    for arch in ("alexnet", "resnet18", "resnet50"):
        _, nodes = get_graph_node_names(getattr(tv.models, arch)())
        ours = create(arch).tap_names()
        block_outputs = {n for n in ours if n.startswith("layer") and n.count(".") <= 1}
        assert [n for n in ours if n not in block_outputs] == nodes[1:], arch


class _CaffeNet:
    """A torch CaffeNet with the module names jaxbrain's ``AlexNetCaffe`` imports."""

    @staticmethod
    def build(torch, channels, fc_width, classes, input_size):
        nn = torch.nn
        c = channels

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(3, c[0], 11, stride=4)
                self.conv2 = nn.Conv2d(c[0], c[1], 5, padding=2, groups=2)
                self.conv3 = nn.Conv2d(c[1], c[2], 3, padding=1)
                self.conv4 = nn.Conv2d(c[2], c[3], 3, padding=1, groups=2)
                self.conv5 = nn.Conv2d(c[3], c[4], 3, padding=1, groups=2)
                self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
                self.norm = nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
                side = self._side(input_size)
                self.fc6 = nn.Linear(c[4] * side * side, fc_width)
                self.fc7 = nn.Linear(fc_width, fc_width)
                self.fc8 = nn.Linear(fc_width, classes)

            @staticmethod
            def _side(size):
                side = (size - 11) // 4 + 1
                for _ in range(3):
                    side = -(-(side - 3) // 2) + 1
                return side

            def forward(self, x):
                relu = torch.relu
                taps = {}
                x = taps["norm1"] = self.norm(self.pool(relu(self.conv1(x))))
                x = taps["norm2"] = self.norm(self.pool(relu(self.conv2(x))))
                x = relu(self.conv4(relu(self.conv3(x))))
                x = taps["pool5"] = self.pool(relu(self.conv5(x)))
                x = taps["relu6"] = relu(self.fc6(torch.flatten(x, 1)))
                x = relu(self.fc7(x))
                return self.fc8(x), taps

        return Net().eval()


@pytest.mark.parametrize(("arch", "channels", "fc_width", "size"), [
    ("alexnet_caffe_tiny", (8, 16, 24, 24, 16), 32, 67),
    ("alexnet_caffe", (96, 256, 384, 384, 256), 4096, 227),
])
def test_caffe_alexnet_matches_torch_equivalent(tmp_path, arch, channels, fc_width, size):
    torch, _ = torchvision()
    torch.manual_seed(3)
    net = _CaffeNet.build(torch, channels, fc_width, 9, size)
    with torch.no_grad():  # LRN only matters when activations are large
        net.conv1.weight.mul_(30.0)
    path = tmp_path / "caffenet.pth"
    torch.save(net.state_dict(), path)
    model = from_torchvision(arch, path)
    images = _images(size)
    outputs, ours = model(images, taps=["norm1", "norm2", "pool5", "relu6"])
    with torch.no_grad():
        logits, theirs = net(_nchw(torch, images))
    assert _relative_error(outputs["logits"], logits.numpy()) <= RTOL
    for name, value in theirs.items():
        assert _relative_error(ours[name], _to_nhwc(value)) <= RTOL, name


def test_mismatched_checkpoint_lists_every_problem(tmp_path):
    torch, tv = torchvision()
    state = tv.models.resnet18(num_classes=4).state_dict()
    del state["layer1.0.bn1.running_var"]
    state["layer9.weight"] = torch.zeros(3)
    state["layer2.0.conv1.weight"] = torch.zeros(128, 64, 5, 5)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as error:
        from_torchvision("resnet18", path)
    message = str(error.value)
    assert str(path) in message
    for fragment in ("missing (1): layer1.0.bn1.running_var", "unexpected (1): layer9.weight",
                     "layer2.0.conv1.weight: checkpoint (128, 64, 5, 5)"):
        assert fragment in message
    torch.save(tv.models.resnet18().state_dict(), path)
    with pytest.raises(ValueError, match="missing .*layer1.2.conv1.weight"):
        from_torchvision("resnet34", path)


def test_integer_weights_are_refused_by_name(tmp_path):
    """An int32 safetensors file (e.g. a quantised export) is not cast into NaN outputs."""
    import safetensors.numpy

    from jaxbrain.models import create
    from jaxbrain.models.torchvision_import import torch_state

    state = {k: v.astype(np.int32) if k == "fc.weight" else v
             for k, v in torch_state(create("resnet18", num_classes=4)).items()}
    path = tmp_path / "ints.safetensors"
    safetensors.numpy.save_file(state, path)
    with pytest.raises(ValueError, match=r"(?s)ints\.safetensors: .*not floating point \(1\): "
                                         r"fc\.weight: int32"):
        from_torchvision("resnet18", path)


def test_imported_model_is_in_eval_mode_and_new_memorability_head_is_allowed(tmp_path):
    torch, tv = torchvision()
    net = tv.models.resnet18(num_classes=3)
    path = tmp_path / "r18.pth"
    torch.save(net.state_dict(), path)
    model = from_torchvision("resnet18", path, heads=("classification", "memorability"))
    images = _images(32)
    first, _ = model(images)
    second, _ = model(images)  # eval mode: running statistics are not updated
    np.testing.assert_array_equal(np.asarray(first["logits"]), np.asarray(second["logits"]))
    assert first["memorability"].shape == (2,)
    memorability = np.asarray(first["memorability"])
    assert np.all((memorability >= 0) & (memorability <= 1))


def test_exported_weights_load_into_torchvision_and_round_trip():
    torch, tv = torchvision()
    model = create("resnet18", num_classes=4, seed=5)
    model.eval()
    state = torch_state(model)
    net = tv.models.resnet18(num_classes=4)
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()},
                        strict=False)
    net.eval()
    images = _images(32)
    ours, _ = model(images)
    with torch.no_grad():
        theirs = net(_nchw(torch, images)).numpy()
    assert _relative_error(ours["logits"], theirs) <= RTOL
    tiny = create("resnet50_tiny", num_classes=6, heads=("classification", "memorability"))
    tiny.eval()
    copy = load_torch_state(create("resnet50_tiny", num_classes=6, seed=9,
                                   heads=("classification", "memorability")), torch_state(tiny))
    copy.eval()
    a, b = tiny(images)[0], copy(images)[0]
    for key in ("logits", "memorability"):
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))
