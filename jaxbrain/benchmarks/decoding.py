"""Feature decoding from brain activity (Horikawa & Kamitani style, docs/design.md §4).

Each network unit is decoded from a subject's voxels by ridge regression fitted on the
training stimuli (alpha per unit by leave-one-out over the alpha grid); a unit's decoding
accuracy is the Pearson r between decoded and true activations across the test stimuli.
Units are ranked by accuracy, and subjects agree to the extent that their per-unit accuracies
correlate. :class:`DecodingBenchmark` is the registry's form: its data are the subjects'
recordings, it samples each layer's units and holds out its test stimuli itself.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np

from jaxbrain.benchmarks.base import Benchmark, Prepared, ScoredLayer, load_once
from jaxbrain.benchmarks.layers import flatten_checked
from jaxbrain.data.assemblies import average_repetitions, match_rows, time_window
from jaxbrain.data.bdata import SUBJECT_PATTERN, god_subject_files, read_god_subject
from jaxbrain.data.brainscore_io import read_assembly
from jaxbrain.files import file_digest
from jaxbrain.kernels import DEFAULT_ALPHAS, pearson, ridge_cv_predict
from jaxbrain.kernels.decoding import (
    cv_alpha_errors,
    pairwise_identification,
    selected_ridge_predict,
    standardise,
    top_voxels,
    unit_accuracy,
    voxel_unit_correlation,
)
from jaxbrain.kernels.splits import equal_kfold_splits

READOUT = "ridge from voxels, alpha per unit by efficient leave-one-out over logspace(-3, 7, 21)"
# Penalties tried for the per-unit decoders on selected voxels (z-scored voxels: the Gram's
# diagonal is n - 1, so these span 1e-3 n to 1e3 n for the papers' ~1,200 training images).
SELECTED_ALPHAS = tuple(float(a) for a in np.logspace(0, 6, 7))
CV_FOLDS, CV_UNITS = 3, 16


def selected_readout(n_voxels: int) -> str:
    return (f"ridge per unit on its {n_voxels} voxels of largest |r| with it on the training "
            f"images (voxels and units z-scored on them); one alpha per subject and layer, "
            f"chosen by {CV_FOLDS}-fold cross-validation on the training images ({CV_UNITS} "
            f"sampled units, selection redone in each fold)")


class BrainResponses(NamedTuple):
    """One subject's responses: ``data`` (stimuli, voxels) in the order of ``stimulus_id``."""

    data: np.ndarray
    stimulus_id: np.ndarray


def _decode_selected(x, units, train, test, alphas, n_voxels: int, rng) -> tuple[np.ndarray,
                                                                                  float]:
    """Decoded test units (de-standardised) and the alpha chosen on the training rows."""
    x_train, x_test, _, _ = standardise(x[train], x[test])
    y_train, _, y_mean, y_sd = standardise(units[train], units[test])
    sample = np.sort(rng.choice(units.shape[1], min(CV_UNITS, units.shape[1]), replace=False))
    fit, val = equal_kfold_splits(train.size, CV_FOLDS, rng)
    errors = np.asarray(cv_alpha_errors(x[train], units[train][:, sample], fit, val,
                                        np.asarray(alphas, x.dtype), n_voxels))
    alpha = float(alphas[int(np.nanargmin(errors))])
    voxels = top_voxels(voxel_unit_correlation(x_train, y_train), n_voxels)
    decoded = selected_ridge_predict(x_train, y_train, x_test, voxels, x.dtype.type(alpha))
    return np.asarray(decoded * y_sd + y_mean), alpha


def decode_features(
    subjects: Mapping[str, BrainResponses],
    layers: Mapping[str, np.ndarray],
    stimulus_ids: Iterable,
    test_ids: Iterable,
    alphas=None,
    n_voxels: int = 0,
    seed: int = 0,
) -> dict:
    """Per layer and subject: per-unit decoding accuracy, unit ranking (best first), mean
    accuracy, pairwise identification of the decoded feature vectors among the test images;
    and the correlation of per-unit accuracies between every pair of subjects (``consistency``
    by pair, ``consistency_matrix`` over all subjects).

    ``stimulus_ids`` give the row order of every layer; ``test_ids`` the held-out stimuli
    (all others train the decoders).  ``n_voxels`` 0: every voxel decodes every unit (alpha
    per unit by leave-one-out); N > 0: Horikawa & Kamitani's protocol, each unit decoded from
    its own N voxels (:data:`SELECTED_ALPHAS`, one alpha per subject and layer by
    cross-validation on the training images)."""
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
    selected = {s: 0 < n_voxels < x.shape[1] for s, x in voxels.items()}
    if any(selected.values()) and train_idx.size < 2 * CV_FOLDS:
        raise ValueError(f"voxel selection needs at least {2 * CV_FOLDS} training stimuli")
    if alphas is None:
        alphas = SELECTED_ALPHAS if any(selected.values()) else DEFAULT_ALPHAS
    alphas = np.asarray(alphas)

    results = {}
    for name, activations in layers.items():
        units = flatten_checked(name, activations, stimulus_ids.size)
        per_subject = {}
        for subject, x in voxels.items():
            dtype = np.result_type(x.dtype, np.float32)
            x, y = x.astype(dtype), units.astype(dtype)
            truth = y[test_idx[0]]
            if selected[subject]:
                rng = np.random.default_rng([seed, len(per_subject)])
                pred, alpha = _decode_selected(x, y, train_idx[0], test_idx[0],
                                               alphas.astype(dtype), n_voxels, rng)
                choice = {"alpha": alpha, "voxels_per_unit": int(n_voxels)}
            else:
                pred, chosen = ridge_cv_predict(x, y, train_idx, test_idx, alphas.astype(dtype))
                pred = pred[0]
                choice = {"alpha_median": float(np.median(np.asarray(chosen))),
                          "voxels_per_unit": int(x.shape[1])}
            accuracy = np.asarray(unit_accuracy(pred, truth))
            identification = np.asarray(pairwise_identification(pred, truth))
            ranking = np.argsort(-np.nan_to_num(accuracy, nan=-np.inf), kind="stable")
            per_subject[subject] = {
                "accuracy": accuracy.tolist(),
                "mean_accuracy": float(np.nanmean(accuracy)),
                "ranking": ranking.tolist(),
                "nan_units": int(np.isnan(accuracy).sum()),
                "identification": float(np.mean(identification)),
                "identification_per_image": identification.tolist(),
                **choice,
            }
        results[name] = {"subjects": per_subject, **_consistency(per_subject)}
    readout = (selected_readout(n_voxels) if any(selected.values()) else READOUT)
    return {"readout": readout, "accuracy": "Pearson r across test stimuli, per unit",
            "identification": "pairwise: fraction of other test images whose true features "
                              "the decoded vector correlates with less than with its own",
            "n_train": int(train_idx.size), "n_test": int(test_idx.size), "layers": results}


def _consistency(per_subject: dict) -> dict:
    """Pearson r of per-unit accuracies between subjects: by pair and as a matrix."""
    names = list(per_subject)
    matrix = np.eye(len(names))
    pairs = {}
    for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
        acc_a = np.asarray(per_subject[a]["accuracy"])
        acc_b = np.asarray(per_subject[b]["accuracy"])
        both = np.isfinite(acc_a) & np.isfinite(acc_b)
        matrix[i, j] = matrix[j, i] = pairs[f"{a}~{b}"] = float(pearson(acc_a[both],
                                                                         acc_b[both]))
    return {"consistency": pairs,
            "consistency_matrix": {"subjects": names, "r": matrix.tolist()}}


FMRI_PATTERN = "fmri_*.nc"  # one Brain-Score-layout NetCDF per subject: fmri_<subject>.nc


@dataclasses.dataclass(frozen=True)
class DecodingBenchmark(Benchmark):
    """Mean per-unit decoding accuracy of a layer's units from the subjects' voxels, averaged
    over subjects (``per_split``: each subject's mean, subjects in sorted order). The per-unit
    accuracies, rankings and cross-subject consistency are :meth:`decode`'s."""

    kind: ClassVar[str] = "decoding"
    region: ClassVar[str] = ""  # a target outside layer commitment (role "report")
    role: ClassVar[str] = "report"
    stimulus_set: ClassVar[str | None] = None  # the caller's stimuli (the recordings' ids)
    visual_degrees: ClassVar[float] = 8.0
    identifier: str
    version: str = "jaxbrain-1"
    # A folder of fmri_<subject>.nc files (voxel responses, trials averaged); None: the caller
    # gives it for the run.
    fmri: str | None = None
    units: int = 1000  # decoded units per layer: a seeded random subset, as Horikawa & Kamitani
    test_fraction: float = 0.2  # held-out stimuli (seeded)
    seed: int = 0
    alphas: tuple[float, ...] | None = None
    # 0: every voxel decodes every unit; N: each unit from its own N voxels (Horikawa's)
    n_voxels: int = 0
    readout: str = READOUT

    @property
    def metric(self) -> str:
        return "decoding_r"

    def with_data(self, *, assembly=None, lamem=None, fmri=None) -> DecodingBenchmark:
        return self if fmri is None else dataclasses.replace(self, fmri=str(fmri))

    def prepare(self, cache: dict | None = None, catalog=None) -> PreparedDecoding:
        if self.fmri is None:
            raise ValueError(f"benchmark {self.identifier} names no fMRI recordings: give a "
                             f"folder of {FMRI_PATTERN} files")

        def load():
            files = sorted(Path(self.fmri).glob(FMRI_PATTERN))
            if not files:
                raise ValueError(f"{self.fmri}: no fMRI subjects ({FMRI_PATTERN})")
            subjects = {}
            for path in files:
                trials = average_repetitions(time_window(read_assembly(path), -np.inf, np.inf))
                subjects[path.stem.removeprefix("fmri_")] = BrainResponses(
                    np.asarray(trials.values), np.asarray(trials["stimulus_id"].values))
            return subjects, "+".join(file_digest(path) for path in files)

        subjects, digest = load_once(cache, ("fmri", self.fmri), load)
        return PreparedDecoding(benchmark=self, source=self.fmri, digest=digest, ceiling=None,
                                subjects=subjects)

    def check_stimuli(self, prepared: PreparedDecoding, stimulus_ids, filenames=None) -> None:
        ids = np.asarray(stimulus_ids).astype(str)
        for subject, responses in prepared.subjects.items():
            match_rows(np.asarray(responses.stimulus_id).astype(str), ids,
                       source=f"{self.fmri}: subject {subject!r}", target="the stimuli")

    def test_ids(self, stimulus_ids) -> np.ndarray:
        """The held-out stimuli: a seeded ``test_fraction`` of the stimuli, independent of
        their order."""
        ids = np.sort(np.asarray(stimulus_ids).astype(str))
        n_test = max(3, round(self.test_fraction * ids.size))
        return ids[np.random.default_rng(self.seed).permutation(ids.size)[:n_test]]

    def sampled_units(self, layers: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each layer's decoded units: all, or a seeded random ``units`` of them."""
        rng = np.random.default_rng(self.seed)
        out = {}
        for name, values in layers.items():
            values = np.asarray(values).reshape(len(values), -1)
            if values.shape[1] > self.units:
                values = values[:, np.sort(rng.choice(values.shape[1], self.units,
                                                      replace=False))]
            out[name] = values
        return out

    def held_out(self, prepared: PreparedDecoding, stimulus_ids) -> np.ndarray:
        """The stimuli the decoders are tested on (:meth:`test_ids` here)."""
        del prepared
        return self.test_ids(stimulus_ids)

    def decode(self, prepared: PreparedDecoding, layers: Mapping[str, np.ndarray],
               stimulus_ids) -> dict:
        """The full :func:`decode_features` result (per-unit accuracies and rankings)."""
        return decode_features(prepared.subjects, self.sampled_units(layers), stimulus_ids,
                               self.held_out(prepared, stimulus_ids), self.alphas,
                               n_voxels=self.n_voxels, seed=self.seed)

    def score(self, prepared: PreparedDecoding, layers: Mapping[str, np.ndarray],
              stimulus_ids, *, filenames=None, mesh=None) -> list[ScoredLayer]:
        decoded = self.decode(prepared, layers, stimulus_ids)
        scored = []
        for name in layers:
            subjects = decoded["layers"][name]["subjects"]
            values = np.array([subjects[s]["mean_accuracy"] for s in sorted(subjects)])
            scored.append(ScoredLayer(name, {
                "raw": float(values.mean()),
                "error": float(values.std() / np.sqrt(values.size)),
                "per_split": values.tolist(), "status": "ok"}))
        return scored


@dataclasses.dataclass(frozen=True)
class PreparedDecoding(Prepared):
    subjects: dict  # subject -> BrainResponses


@dataclasses.dataclass(frozen=True)
class GODDecodingBenchmark(DecodingBenchmark):
    """Horikawa & Kamitani's Generic Object Decoding protocol on the published BData files
    (``fmri``: a folder of ``Subject{N}.h5``, :mod:`jaxbrain.data.bdata`): decoders trained
    on the training images (DataType 1), tested on the perception test images (DataType 2,
    repetitions averaged), each unit from its ``n_voxels`` voxels of ``roi`` most correlated
    with it.  The images are not public: ``stimuli_csv`` (``stimulus_id`` = ImageNet id such
    as ``n01443537_22563``, ``filename``) and ``images_dir`` name the user's copy."""

    visual_degrees: ClassVar[float] = 12.0  # the GOD images' extent on the screen
    roi: str = "ROI_VC"
    n_voxels: int = 1000  # the papers': 1,000 for VC, LVC, HVC; 500 for a single area
    stimuli_csv: str | None = None
    images_dir: str | None = None
    readout: str = "ridge per unit on its n_voxels most correlated voxels (see n_voxels)"

    def prepare(self, cache: dict | None = None, catalog=None) -> PreparedGOD:
        if self.fmri is None:
            raise ValueError(f"benchmark {self.identifier} names no BData folder: give the "
                             f"folder of the subjects' {SUBJECT_PATTERN} files")

        def load():
            subjects, tests = {}, {}
            files = god_subject_files(self.fmri)
            for subject, path in files.items():
                data = read_god_subject(path, self.roi)
                subjects[subject] = BrainResponses(np.concatenate([data.train, data.test]),
                                                   np.concatenate([data.train_ids,
                                                                   data.test_ids]))
                tests[subject] = data.test_ids
            first = next(iter(tests.values()))
            for subject, ids in tests.items():
                if not np.array_equal(ids, first):
                    raise ValueError(f"{files[subject]}: its test images differ from "
                                     f"{next(iter(files.values())).name}'s")
            digest = "+".join([self.roi, *(file_digest(p) for p in files.values())])
            return (subjects, first), digest

        (subjects, test_ids), digest = load_once(cache, ("god", self.fmri, self.roi), load)
        return PreparedGOD(benchmark=self, source=self.fmri, digest=digest, ceiling=None,
                           subjects=subjects, test_ids=test_ids)

    def stimulus_source(self, prepared: PreparedGOD) -> tuple[str, str, float] | None:
        if not self.stimuli_csv:
            return None
        return (self.stimuli_csv, self.images_dir or "", self.visual_degrees)

    def held_out(self, prepared: PreparedGOD, stimulus_ids) -> np.ndarray:
        return prepared.test_ids


@dataclasses.dataclass(frozen=True)
class PreparedGOD(PreparedDecoding):
    test_ids: np.ndarray  # the perception test images (every subject's)
