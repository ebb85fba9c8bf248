"""torchvision's ResNets (v1.5: the bottleneck strides on its 3×3 conv), tappable by the
names of torchvision's FX graph nodes (``layer3.5.conv2``, ``layer3.5.relu_1``, ``layer3.5.add``)
plus each block's and stage's output (``layer3.5``, ``layer3``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import jax
from flax import nnx

from jaxbrain.models.heads import MemorabilityHead, check_heads
from jaxbrain.models.layers import Flatten, GlobalAvgPool, MaxPool, batch_norm, conv
from jaxbrain.models.taps import TappedModel, Taps

# torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") for every conv
_CONV_INIT = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


def _conv(in_ch, out_ch, kernel, stride, rngs):
    return conv(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False,
                kernel_init=_CONV_INIT, rngs=rngs)


def _downsample(in_ch, out_ch, stride, rngs):
    if stride == 1 and in_ch == out_ch:
        return None
    return nnx.List([_conv(in_ch, out_ch, 1, stride, rngs), batch_norm(out_ch, rngs)])


class BasicBlock(nnx.Module):
    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int, rngs: nnx.Rngs):
        self.conv1 = _conv(in_ch, width, 3, stride, rngs)
        self.bn1 = batch_norm(width, rngs)
        self.conv2 = _conv(width, width, 3, 1, rngs)
        self.bn2 = batch_norm(width, rngs)
        self.downsample = _downsample(in_ch, width, stride, rngs)

    def __call__(self, x, rec: Taps, name: str):
        out = rec(f"{name}.relu", jax.nn.relu(_conv_bn(self, 1, x, rec, name)))
        out = _conv_bn(self, 2, out, rec, name)
        return _residual(self.downsample, x, out, rec, name, "relu_1")


class Bottleneck(nnx.Module):
    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int, rngs: nnx.Rngs):
        self.conv1 = _conv(in_ch, width, 1, 1, rngs)
        self.bn1 = batch_norm(width, rngs)
        self.conv2 = _conv(width, width, 3, stride, rngs)
        self.bn2 = batch_norm(width, rngs)
        self.conv3 = _conv(width, width * 4, 1, 1, rngs)
        self.bn3 = batch_norm(width * 4, rngs)
        self.downsample = _downsample(in_ch, width * 4, stride, rngs)

    def __call__(self, x, rec: Taps, name: str):
        out = rec(f"{name}.relu", jax.nn.relu(_conv_bn(self, 1, x, rec, name)))
        out = rec(f"{name}.relu_1", jax.nn.relu(_conv_bn(self, 2, out, rec, name)))
        out = _conv_bn(self, 3, out, rec, name)
        return _residual(self.downsample, x, out, rec, name, "relu_2")


def _conv_bn(block, k: int, x, rec: Taps, name: str):
    """A block's k-th conv and its BatchNorm, both tapped."""
    x = rec(f"{name}.conv{k}", getattr(block, f"conv{k}")(x))
    return rec(f"{name}.bn{k}", getattr(block, f"bn{k}")(x))


def _residual(downsample, x, out, rec: Taps, name: str, last_relu: str):
    identity = x
    if downsample is not None:
        identity = rec(f"{name}.downsample.0", downsample[0](x))
        identity = rec(f"{name}.downsample.1", downsample[1](identity))
    out = rec(f"{name}.add", out + identity)
    return rec(name, rec(f"{name}.{last_relu}", jax.nn.relu(out)))


class ResNet(TappedModel):
    """torchvision ``resnet{18,34,50,101,152}``; ``widths``/``stem_width`` shrink it for tests."""

    penultimate_tap = "flatten"
    classifier_name = "fc"

    def __init__(self, *, block: str, stage_sizes: Sequence[int], num_classes: int = 1000,
                 heads: Sequence[str] = ("classification",),
                 widths: Sequence[int] = (64, 128, 256, 512), stem_width: int = 64,
                 rngs: nnx.Rngs):
        self.heads = check_heads(heads)
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck'; got {block!r}")
        if len(stage_sizes) != 4 or len(widths) != 4:
            raise ValueError("ResNet needs 4 stage sizes and 4 widths; "
                             f"got {tuple(stage_sizes)} and {tuple(widths)}")
        cls = BasicBlock if block == "basic" else Bottleneck
        self.conv1 = conv(3, stem_width, 7, stride=2, padding=3, bias=False,
                          kernel_init=_CONV_INIT, rngs=rngs)
        self.bn1 = batch_norm(stem_width, rngs)
        self.maxpool = MaxPool(3, 2, padding=1)
        channels = stem_width
        for stage, (size, width) in enumerate(zip(stage_sizes, widths, strict=True), start=1):
            blocks = []
            for k in range(size):
                blocks.append(cls(channels, width, 2 if (k == 0 and stage > 1) else 1, rngs))
                channels = width * cls.expansion
            setattr(self, f"layer{stage}", nnx.List(blocks))
        self.avgpool, self.flatten = GlobalAvgPool(), Flatten()
        self.fc = (nnx.Linear(channels, num_classes, rngs=rngs)
                   if "classification" in self.heads else None)
        self.memorability = (MemorabilityHead(channels, rngs) if "memorability" in self.heads
                             else None)

    def commitment_layers(self) -> list[str]:
        """conv1, every block's output, avgpool (Brain-Score's ResNet plugins)."""
        blocks = [t for t in self.tap_names() if re.fullmatch(r"layer\d\.\d+", t)]
        return ["conv1", *blocks, "avgpool"]

    def _forward(self, x, rec: Taps) -> dict:
        x = rec("conv1", self.conv1(x))
        x = rec("bn1", self.bn1(x))
        x = rec("relu", jax.nn.relu(x))
        x = rec("maxpool", self.maxpool(x))
        for stage in range(1, 5):
            for k, block in enumerate(getattr(self, f"layer{stage}")):
                x = block(x, rec, f"layer{stage}.{k}")
            rec(f"layer{stage}", x)
        x = rec("avgpool", self.avgpool(x))
        x = rec("flatten", self.flatten(x))
        return self._heads(x, rec, self.fc, "fc")
