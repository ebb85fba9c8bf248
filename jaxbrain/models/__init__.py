"""Flax NNX vision networks whose every layer is tappable by its torchvision name.

``create(name, ...)`` builds an architecture; ``from_torchvision(arch, path)`` loads
torchvision-layout weights; ``model(images, taps=[...])`` returns (outputs, taps).
"""

from jaxbrain.models.heads import HEADS
from jaxbrain.models.registry import ARCHITECTURES, create, names
from jaxbrain.models.taps import ALL, TappedModel
from jaxbrain.models.torchvision_import import from_torchvision, load_torch_state, torch_state

__all__ = ["ALL", "ARCHITECTURES", "HEADS", "TappedModel", "create", "from_torchvision",
           "load_torch_state", "names",
           "torch_state"]
