"""AlexNet in two forms, each tappable under the names its own framework uses.

* ``AlexNet``: torchvision's single-tower AlexNet (``features.0`` … ``classifier.6``).
* ``AlexNetCaffe``: the original two-group network with local response normalisation, as in
  Caffe's reference CaffeNet from which MemNet was fine-tuned (``conv1`` … ``fc8``; pooling
  rounds up, normalisation follows pooling).

Fully connected width, channel widths and heads are configurable so the same code gives tiny
test variants and the memorability/joint models.
"""

from __future__ import annotations

from collections.abc import Sequence

from flax import nnx

from jaxbrain.models.heads import MemorabilityHead, check_heads
from jaxbrain.models.layers import (
    AdaptiveAvgPool,
    Flatten,
    LocalResponseNorm,
    MaxPool,
    ReLU,
    _pool_output,
    conv,
)
from jaxbrain.models.taps import TappedModel, Taps


class AlexNet(TappedModel):
    """torchvision ``alexnet`` (the single-tower "one weird trick" variant)."""

    penultimate_tap = "classifier.5"
    classifier_name = "classifier.6"
    # Brain-Score's AlexNet plugin: each pooling stage, the conv ReLUs, the fc ReLUs
    commitment_taps = ("features.2", "features.5", "features.7", "features.9", "features.12",
                   "classifier.2", "classifier.5")

    def __init__(self, *, num_classes: int = 1000, heads: Sequence[str] = ("classification",),
                 channels: Sequence[int] = (64, 192, 384, 256, 256), fc_width: int = 4096,
                 dropout: float = 0.5, rngs: nnx.Rngs):
        self.heads = check_heads(heads)
        c = tuple(channels)
        if len(c) != 5:
            raise ValueError(f"AlexNet needs 5 channel widths; got {c}")
        self.features = nnx.List([
            conv(3, c[0], 11, stride=4, padding=2, rngs=rngs), ReLU(), MaxPool(3, 2),
            conv(c[0], c[1], 5, padding=2, rngs=rngs), ReLU(), MaxPool(3, 2),
            conv(c[1], c[2], 3, padding=1, rngs=rngs), ReLU(),
            conv(c[2], c[3], 3, padding=1, rngs=rngs), ReLU(),
            conv(c[3], c[4], 3, padding=1, rngs=rngs), ReLU(), MaxPool(3, 2),
        ])
        self.avgpool = AdaptiveAvgPool(6)
        self.flatten = Flatten()
        classifier = [
            nnx.Dropout(dropout, rngs=rngs), nnx.Linear(c[4] * 36, fc_width, rngs=rngs), ReLU(),
            nnx.Dropout(dropout, rngs=rngs), nnx.Linear(fc_width, fc_width, rngs=rngs), ReLU(),
        ]
        if "classification" in self.heads:
            classifier.append(nnx.Linear(fc_width, num_classes, rngs=rngs))
        self.classifier = nnx.List(classifier)
        self.memorability = (MemorabilityHead(fc_width, rngs) if "memorability" in self.heads
                             else None)

    def _forward(self, x, rec: Taps) -> dict:
        for i, layer in enumerate(self.features):
            x = rec(f"features.{i}", layer(x))
        x = rec("avgpool", self.avgpool(x))
        x = rec("flatten", self.flatten(x))
        for i in range(6):
            x = rec(f"classifier.{i}", self.classifier[i](x))
        classifier = self.classifier[6] if "classification" in self.heads else None
        return self._heads(x, rec, classifier, "classifier.6")


class AlexNetCaffe(TappedModel):
    """CaffeNet/MemNet AlexNet: two groups in conv2/4/5, LRN after pool1 and pool2."""

    input_size = 227
    penultimate_tap = "relu7"
    classifier_name = "fc8"
    commitment_taps = ("pool1", "pool2", "relu3", "relu4", "pool5", "relu6", "relu7")

    def __init__(self, *, num_classes: int = 1000, heads: Sequence[str] = ("classification",),
                 channels: Sequence[int] = (96, 256, 384, 384, 256), fc_width: int = 4096,
                 dropout: float = 0.5, input_size: int = 227, rngs: nnx.Rngs):
        self.heads = check_heads(heads)
        self.input_size = input_size
        c = tuple(channels)
        if len(c) != 5 or any(width % 2 for width in c):
            raise ValueError(f"AlexNetCaffe needs 5 even channel widths (two groups); got {c}")
        self.conv1 = conv(3, c[0], 11, stride=4, rngs=rngs)
        self.conv2 = conv(c[0], c[1], 5, padding=2, groups=2, rngs=rngs)
        self.conv3 = conv(c[1], c[2], 3, padding=1, rngs=rngs)
        self.conv4 = conv(c[2], c[3], 3, padding=1, groups=2, rngs=rngs)
        self.conv5 = conv(c[3], c[4], 3, padding=1, groups=2, rngs=rngs)
        self.pool = MaxPool(3, 2, ceil_mode=True)
        self.norm = LocalResponseNorm(5, 1e-4, 0.75, 1.0)
        self.relu, self.flatten = ReLU(), Flatten()
        side = (input_size - 11) // 4 + 1
        for _ in range(3):
            side = _pool_output(side, 3, 2, 0, ceil_mode=True)
        self.fc6 = nnx.Linear(c[4] * side * side, fc_width, rngs=rngs)
        self.fc7 = nnx.Linear(fc_width, fc_width, rngs=rngs)
        self.drop6 = nnx.Dropout(dropout, rngs=rngs)
        self.drop7 = nnx.Dropout(dropout, rngs=rngs)
        self.fc8 = (nnx.Linear(fc_width, num_classes, rngs=rngs)
                    if "classification" in self.heads else None)
        self.memorability = (MemorabilityHead(fc_width, rngs) if "memorability" in self.heads
                             else None)

    def _forward(self, x, rec: Taps) -> dict:
        if x.shape[1:3] != (self.input_size, self.input_size):
            raise ValueError(f"AlexNetCaffe was built for {self.input_size} px inputs (its fc6 "
                             f"size depends on it); got {x.shape[1]}x{x.shape[2]}")
        x = rec("conv1", self.conv1(x))
        x = rec("relu1", self.relu(x))
        x = rec("pool1", self.pool(x))
        x = rec("norm1", self.norm(x))
        x = rec("conv2", self.conv2(x))
        x = rec("relu2", self.relu(x))
        x = rec("pool2", self.pool(x))
        x = rec("norm2", self.norm(x))
        for k in (3, 4, 5):
            x = rec(f"conv{k}", getattr(self, f"conv{k}")(x))
            x = rec(f"relu{k}", self.relu(x))
        x = rec("pool5", self.pool(x))
        x = self.flatten(x)
        for k in (6, 7):
            x = rec(f"fc{k}", getattr(self, f"fc{k}")(x))
            x = rec(f"relu{k}", self.relu(x))
            x = rec(f"drop{k}", getattr(self, f"drop{k}")(x))
        return self._heads(x, rec, self.fc8, "fc8")
