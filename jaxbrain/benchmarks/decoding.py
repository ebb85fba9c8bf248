"""Feature decoding from brain activity (Horikawa & Kamitani style, docs/design.md §4).

Each network unit is decoded from a subject's voxels by ridge regression fitted on the
training stimuli (alpha per unit by leave-one-out over the alpha grid); a unit's decoding
accuracy is the Pearson r between decoded and true activations across the test stimuli.
Units are ranked by accuracy, and subjects agree to the extent that their per-unit accuracies
correlate.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np

from jaxbrain.benchmarks.layers import flatten_checked
from jaxbrain.data.assemblies import match_rows
from jaxbrain.kernels import DEFAULT_ALPHAS, pearson, ridge_cv_predict

READOUT = "ridge from voxels, alpha per unit by efficient leave-one-out over logspace(-3, 7, 21)"


class BrainResponses(NamedTuple):
    """One subject's responses: ``data`` (stimuli, voxels) in the order of ``stimulus_id``."""

    data: np.ndarray
    stimulus_id: np.ndarray


def decode_features(
    subjects: Mapping[str, BrainResponses],
    layers: Mapping[str, np.ndarray],
    stimulus_ids: Iterable,
    test_ids: Iterable,
    alphas=None,
) -> dict:
    """Per layer and subject: per-unit decoding accuracy, unit ranking (best first), mean
    accuracy; and the correlation of per-unit accuracies between every pair of subjects.

    ``stimulus_ids`` give the row order of every layer; ``test_ids`` the held-out stimuli
    (all others train the decoders)."""
    if len(subjects) < 1:
        raise ValueError("feature decoding needs at least one subject's responses")
    stimulus_ids = np.asarray(stimulus_ids).astype(str)
    test_ids = np.asarray(test_ids).astype(str)
    unknown = np.setdiff1d(test_ids, stimulus_ids)
    if unknown.size:
        raise ValueError(f"test stimuli not among the activations' stimuli: {unknown[:5].tolist()}")
    is_test = np.isin(stimulus_ids, test_ids)
    train_idx, test_idx = np.flatnonzero(~is_test)[None], np.flatnonzero(is_test)[None]
    if test_idx.size < 3 or train_idx.size < 3:
        raise ValueError(
            f"need at least 3 training and 3 test stimuli, got {train_idx.size} and "
            f"{test_idx.size}"
        )
    voxels = {}
    for subject, responses in subjects.items():
        rows = match_rows(np.asarray(responses.stimulus_id).astype(str), stimulus_ids,
                          source=f"subject {subject!r}", target="activations")
        voxels[subject] = flatten_checked(f"subject {subject}", responses.data, rows.size)[rows]
    alphas = np.asarray(DEFAULT_ALPHAS if alphas is None else alphas)

    results = {}
    for name, activations in layers.items():
        units = flatten_checked(name, activations, stimulus_ids.size)
        per_subject = {}
        for subject, x in voxels.items():
            dtype = np.result_type(x.dtype, np.float32)
            pred, _ = ridge_cv_predict(x.astype(dtype), units.astype(dtype), train_idx,
                                       test_idx, alphas.astype(dtype))
            accuracy = np.asarray(pearson(pred[0], units[test_idx[0]].astype(dtype)))
            ranking = np.argsort(-np.nan_to_num(accuracy, nan=-np.inf), kind="stable")
            per_subject[subject] = {
                "accuracy": accuracy.tolist(),
                "mean_accuracy": float(np.nanmean(accuracy)),
                "ranking": ranking.tolist(),
                "nan_units": int(np.isnan(accuracy).sum()),
            }
        consistency = {}
        for a, b in itertools.combinations(per_subject, 2):
            acc_a = np.asarray(per_subject[a]["accuracy"])
            acc_b = np.asarray(per_subject[b]["accuracy"])
            both = np.isfinite(acc_a) & np.isfinite(acc_b)
            consistency[f"{a}~{b}"] = float(pearson(acc_a[both], acc_b[both]))
        results[name] = {"subjects": per_subject, "consistency": consistency}
    return {"readout": READOUT, "accuracy": "Pearson r across test stimuli, per unit",
            "n_train": int(train_idx.size), "n_test": int(test_idx.size), "layers": results}
