"""Architectures by name: ``create("resnet50", num_classes=1000, heads=(...))``.

Full-size entries reproduce torchvision's (and CaffeNet's) shapes exactly so their weights
import; ``*_tiny`` entries keep each topology but shrink widths, for tests and CPU training.
"""

from __future__ import annotations

from collections.abc import Sequence

from flax import nnx

from jaxbrain.models.alexnet import AlexNet, AlexNetCaffe
from jaxbrain.models.resnet import ResNet
from jaxbrain.models.taps import TappedModel

_TINY_RESNET = {"widths": (8, 16, 32, 64), "stem_width": 8}

ARCHITECTURES: dict[str, tuple[type[TappedModel], dict]] = {
    "alexnet": (AlexNet, {}),
    "alexnet_caffe": (AlexNetCaffe, {}),
    "resnet18": (ResNet, {"block": "basic", "stage_sizes": (2, 2, 2, 2)}),
    "resnet34": (ResNet, {"block": "basic", "stage_sizes": (3, 4, 6, 3)}),
    "resnet50": (ResNet, {"block": "bottleneck", "stage_sizes": (3, 4, 6, 3)}),
    "resnet101": (ResNet, {"block": "bottleneck", "stage_sizes": (3, 4, 23, 3)}),
    "resnet152": (ResNet, {"block": "bottleneck", "stage_sizes": (3, 8, 36, 3)}),
    "alexnet_tiny": (AlexNet, {"channels": (8, 16, 24, 16, 16), "fc_width": 32}),
    "alexnet_caffe_tiny": (AlexNetCaffe, {"channels": (8, 16, 24, 24, 16), "fc_width": 32,
                                          "input_size": 67}),
    "resnet18_tiny": (ResNet, {"block": "basic", "stage_sizes": (2, 2, 2, 2), **_TINY_RESNET}),
    "resnet50_tiny": (ResNet, {"block": "bottleneck", "stage_sizes": (1, 2, 1, 1),
                               **_TINY_RESNET}),
}


def names() -> list[str]:
    return sorted(ARCHITECTURES)


def create(name: str, *, num_classes: int = 1000, heads: Sequence[str] | str = ("classification",),
           seed: int = 0, **overrides) -> TappedModel:
    """A freshly initialised network (train mode); ``overrides`` change its defaults
    (``fc_width``, ``channels``, ``widths``, ``dropout``, ``input_size``…)."""
    if name not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(names())}")
    cls, defaults = ARCHITECTURES[name]
    model = cls(num_classes=num_classes, heads=heads, rngs=nnx.Rngs(params=seed, dropout=seed + 1),
                **{**defaults, **overrides})
    model.arch = name
    return model
