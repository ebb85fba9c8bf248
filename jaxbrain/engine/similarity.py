"""Model-to-model maps: CKA between every layer of one bank and every layer of another.

Each layer is reduced to its normalised centred Gram matrix (n × n, any width), so a map of
L₁ × L₂ layers is one matrix product of the stacked Grams, not a double loop.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxbrain.benchmarks.layers import width_groups
from jaxbrain.kernels.cka import center_gram, gram_linear


@jax.jit
def _normalised_grams(xs):
    def one(x):
        centred = center_gram(gram_linear(x - jnp.mean(x, axis=0)), True)
        return centred / jnp.sqrt(jnp.sum(centred * centred))

    return jax.lax.map(one, xs)


def layer_grams(layers: Mapping[str, np.ndarray]) -> np.ndarray:
    """(L, n, n) normalised, debiased-centred linear Grams of every layer, in ``layers`` order."""
    widths = {name: int(np.prod(np.shape(x)[1:])) for name, x in layers.items()}
    grams = {}
    for width, names in width_groups(widths):
        n = len(next(iter(layers.values())))
        stack = np.zeros((len(names), n, width), np.float32)
        for i, name in enumerate(names):
            x = np.asarray(layers[name], np.float32).reshape(n, -1)
            stack[i, :, :x.shape[1]] = x  # zero columns leave a linear Gram unchanged
        grams.update(zip(names, np.asarray(_normalised_grams(jnp.asarray(stack))), strict=True))
    return np.stack([grams[name] for name in layers])


def cka_map(grams_a: np.ndarray, grams_b: np.ndarray) -> np.ndarray:
    """(L₁, L₂) debiased linear CKA from two stacks of normalised Grams."""
    a = jnp.asarray(grams_a, jnp.float32).reshape(len(grams_a), -1)
    b = jnp.asarray(grams_b, jnp.float32).reshape(len(grams_b), -1)
    return np.asarray(a @ b.T)
