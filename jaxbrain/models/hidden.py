"""The synthetic suite's hidden network as a tappable model, so a sweep can score the network
that generated the recordings next to the others (its generating layers must win).

Same weights and arithmetic as ``jaxbrain.data.synthetic.hidden_activations``: four 3×3
stride-2 convolutions with ReLU, taps ``block1`` … ``block4``, on images normalised with
mean 0.5 / sd 0.25 (not ImageNet's statistics).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxbrain.data.synthetic import hidden_network_params
from jaxbrain.models.taps import TappedModel, Taps


class HiddenNetwork(TappedModel):
    input_size = 32
    penultimate_tap = "block4"
    pixel_mean = (0.5, 0.5, 0.5)
    pixel_std = (0.25, 0.25, 0.25)

    def __init__(self, *, seed: int = 0, input_size: int = 32):
        self.input_size = input_size
        self.heads = ()
        self.kernels = nnx.List([nnx.Param(jnp.asarray(w, jnp.float32))
                                 for w in hidden_network_params(seed)])

    def _forward(self, x, rec: Taps) -> dict:
        for k, kernel in enumerate(self.kernels, start=1):
            x = jax.lax.conv_general_dilated(x, kernel[...], window_strides=(2, 2), padding="SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            x = rec(f"block{k}", jax.nn.relu(x))
        return {}


def hidden_network(seed: int = 0) -> HiddenNetwork:
    model = HiddenNetwork(seed=seed)
    model.arch = "synthetic_hidden"
    return model

