"""Output heads on a shared trunk: object categorisation and image memorability.

The memorability head is a linear read-out squashed to [0, 1] (LaMem scores live there), on
the same penultimate features as the classifier, as in MemNet-style fine-tuning.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx

HEADS = ("classification", "memorability")


def check_heads(heads: Sequence[str] | str) -> tuple[str, ...]:
    """The heads as a tuple, validated: at least one, each known, none twice."""
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    unknown = [h for h in heads if h not in HEADS]
    if unknown or not heads or len(set(heads)) != len(heads):
        raise ValueError(f"heads must be a non-empty subset of {HEADS} without repeats; "
                         f"got {heads}")
    return heads


class MemorabilityHead(nnx.Module):
    """Features (n, d) → memorability (n,) in [0, 1]."""

    def __init__(self, features: int, rngs: nnx.Rngs):
        self.linear = nnx.Linear(features, 1, rngs=rngs)

    def __call__(self, x):
        return jax.nn.sigmoid(self.linear(x)[:, 0])
