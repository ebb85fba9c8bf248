"""What every benchmark does to a layer bank before scoring: check each layer's activations,
and batch layers by width."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def flatten_checked(name: str, activations, n_stimuli: int) -> np.ndarray:
    """(stimuli, ...) activations as a finite float (stimuli, features) matrix, or a
    ValueError naming the layer: wrong row count, NaN/Inf, or no varying feature."""
    x = np.asarray(activations)
    if x.ndim == 0 or x.shape[0] != n_stimuli:
        raise ValueError(
            f"layer {name!r}: first axis must be the {n_stimuli} stimuli, got shape {x.shape}"
        )
    x = x.reshape(n_stimuli, -1)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"layer {name!r}: activations contain NaN or infinite values")
    if np.all(x.max(axis=0) == x.min(axis=0)):
        raise ValueError(f"layer {name!r}: every feature is constant across stimuli")
    return x


# Layers are batched by width: grouped into power-of-two buckets and zero-padded to the
# bucket, so one compiled kernel scores a whole group (docs/design.md §5). Zero columns change
# nothing for PLS, ridge or linear CKA (they add nothing to XᵀY, the Grams or the
# predictions); RDMs correlate stimulus vectors across features, which padding would change,
# so their groups hold one exact width.
_MIN_BUCKET = 32


def layer_widths(layers: Mapping[str, np.ndarray]) -> dict[str, int]:
    return {name: int(np.prod(np.shape(layers[name])[1:])) for name in layers}


def width_groups(widths: Mapping[str, int], exact: bool = False) -> list[tuple[int, list[str]]]:
    """Layer names grouped by padded width (power-of-two buckets, or exact widths)."""
    groups: dict[int, list[str]] = {}
    for name, width in widths.items():
        bucket = width if exact else max(_MIN_BUCKET, 1 << (int(width) - 1).bit_length())
        groups.setdefault(bucket, []).append(name)
    return sorted(groups.items())


def stack_layers(layers: Mapping[str, np.ndarray], names: Sequence[str], rows: np.ndarray,
                 width: int) -> np.ndarray:
    """(len(names), rows, width): each layer checked, its rows reordered by ``rows``,
    zero-padded to ``width``; float64 when every layer is (a float64 reference run), else
    float32."""
    double = all(np.asarray(layers[name]).dtype == np.float64 for name in names)
    stack = np.zeros((len(names), rows.size, width), np.float64 if double else np.float32)
    for i, name in enumerate(names):
        x = flatten_checked(name, layers[name], len(layers[name]))[rows]
        stack[i, :, :x.shape[1]] = x
    return stack
