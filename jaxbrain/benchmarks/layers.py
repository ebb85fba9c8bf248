"""Checks shared by every benchmark on a layer's activations before any scoring."""

from __future__ import annotations

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
