"""Memorability prediction (docs/design.md §4): a layer's linear read-out of per-image memorability.

Per official split: ridge (alpha per target by leave-one-out over the alpha grid) fitted on
the training images, Spearman rho between predicted and true scores on the test images;
the layer's score is the mean over splits.  The selection rule is part of the definition
and is named in the output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import jax
import numpy as np

from jaxbrain.benchmarks.layers import flatten_checked
from jaxbrain.data.assemblies import match_rows
from jaxbrain.data.lamem import MemorabilityData
from jaxbrain.kernels import DEFAULT_ALPHAS, ridge_cv_predict, spearman

READOUT = "ridge, alpha per target by efficient leave-one-out over logspace(-3, 7, 21)"


def _split_groups(data: MemorabilityData):
    """Official splits as stacked index arrays, grouped by shape (usually one group)."""
    position = {name: i for i, name in enumerate(data.image_names.tolist())}
    groups: dict[tuple[int, int], list] = {}
    for k in sorted(data.splits):
        train = np.array([position[n] for n in data.splits[k]["train"].tolist()])
        test = np.array([position[n] for n in data.splits[k]["test"].tolist()])
        groups.setdefault((train.size, test.size), []).append((k, train, test))
    return [
        ([k for k, _, _ in members], np.stack([t for _, t, _ in members]),
         np.stack([e for _, _, e in members]))
        for members in groups.values()
    ]


def score_memorability(
    layers: Mapping[str, np.ndarray],
    image_names: Iterable,
    data: MemorabilityData,
    alphas=None,
    progress=None,
) -> dict:
    """Spearman rho of each layer's ridge read-out of memorability, per official split."""
    rows = match_rows(np.asarray(image_names).astype(str), data.image_names.astype(str),
                      source="activations", target="memorability splits")
    groups = _split_groups(data)
    alphas = np.asarray(DEFAULT_ALPHAS if alphas is None else alphas)
    names = list(layers)
    scored = {}
    for name in progress(names) if progress else names:
        x = flatten_checked(name, layers[name], rows.size)[rows]
        y = data.scores[:, None].astype(x.dtype)
        per_split = {}
        for ks, train, test in groups:
            pred, _ = ridge_cv_predict(x, y, train, test, alphas.astype(x.dtype))
            rho = jax.vmap(spearman)(pred[..., 0], y[test][..., 0])
            per_split.update(zip(ks, np.asarray(rho).tolist(), strict=True))
        values = np.array([per_split[k] for k in sorted(per_split)])
        scored[name] = {
            "rho": float(values.mean()),
            "error": float(values.std() / np.sqrt(values.size)),
            "per_split": {str(k): per_split[k] for k in sorted(per_split)},
        }
    return {"readout": READOUT, "metric": "Spearman rho on held-out images",
            "n_images": int(rows.size), "layers": scored}
