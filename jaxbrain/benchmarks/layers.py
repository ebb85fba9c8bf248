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


# Host bytes of one stack of layers scored in one call: wider or more layers are scored in
# several calls, so a 195-tap model's bank never becomes one multi-GB array (and its copy on
# the device) at once.
STACK_BYTES = 1 << 30


def stack_chunks(names: Sequence[str], bytes_per_layer: int,
                 budget: int | None = None) -> list[list[str]]:
    """``names`` in consecutive chunks whose stacks fit ``budget`` (default ``STACK_BYTES``;
    at least one layer each); equal-sized chunks share one compiled kernel (plus one for the
    remainder)."""
    size = max(1, (budget or STACK_BYTES) // max(bytes_per_layer, 1))
    return [list(names[i:i + size]) for i in range(0, len(names), size)]


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


# Column blocks of this many bytes are read at a time when a Gram is accumulated.
_GRAM_BLOCK_BYTES = 256 << 20


def gram_form(width: int, n_stimuli: int) -> bool:
    """Whether a layer is scored through its Gram: when it has more features than stimuli,
    the n × n Gram is smaller than the features and the dual fits are the cheaper ones."""
    return width > n_stimuli


def layer_gram(name: str, activations, rows: np.ndarray) -> np.ndarray:
    """X₀X₀ᵀ (rows × rows) of the layer's column-centred features, rows reordered by ``rows``.

    Accumulated over column blocks read one at a time (a memory-mapped bank is never loaded
    whole) in float64, each block centred on its own column means, which is exact centring
    for the whole matrix; the products are numpy's (BLAS ``syrk`` for X Xᵀ, half the work of
    a general product). The same checks as :func:`flatten_checked`, block by block."""
    values = np.asarray(activations)  # a memory map stays one
    if values.ndim == 0 or values.shape[0] < rows.size:
        raise ValueError(f"layer {name!r}: first axis must be the stimuli, got shape "
                         f"{values.shape}")
    n = values.shape[0]
    values = values.reshape(n, -1)
    double = values.dtype == np.float64
    block = max(1, _GRAM_BLOCK_BYTES // (8 if double else 4) // n)
    gram = np.zeros((rows.size, rows.size), np.float64)
    varying = False
    for start in range(0, values.shape[1], block):
        x = np.asarray(values[:, start:start + block], np.float64 if double else np.float32)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"layer {name!r}: activations contain NaN or infinite values")
        x = x[rows]
        varying = varying or bool(np.any(x.max(axis=0) != x.min(axis=0)))
        x = x - x.mean(axis=0, dtype=np.float64).astype(x.dtype)
        gram += x @ x.T
    if not varying:
        raise ValueError(f"layer {name!r}: every feature is constant across stimuli")
    return gram.astype(np.float64 if double else np.float32)
