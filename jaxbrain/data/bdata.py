"""The Generic Object Decoding fMRI (Horikawa & Kamitani 2017) as published: one BData HDF5
file per subject (``Subject{1..5}.h5``), read with bdpy, the Kamitani lab's own library
(docs/design.md §7).

A BData file is a samples × columns matrix with metadata rows: voxel columns carry ROI
flags (``ROI_V1`` … ``ROI_VC``, 1 inside), and per-sample columns ``DataType`` (1 training
images, 2 perception test, 3 imagery) and ``stimulus_id``, a float ``<wnid digits>.<image
number>`` (``1443537.022563`` is ImageNet's ``n01443537_22563``).  Training images were shown
once each, test images 35 times; both are averaged per image here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

TRAINING, PERCEPTION_TEST = 1, 2
SUBJECT_PATTERN = "Subject*.h5"
_IMAGE_ID = re.compile(r"^n(\d{8})_(\d{1,6})$")


def god_image_id(value: float) -> str:
    """``1443537.022563`` → ``"n01443537_22563"`` (the fraction holds 6 digits of image
    number; rounding absorbs the float's last bits)."""
    wnid = int(np.floor(value))
    number = round((float(value) - wnid) * 1e6)
    return f"n{wnid:08d}_{number}"


def god_stimulus_value(image_id: str) -> float:
    """The inverse of :func:`god_image_id`."""
    match = _IMAGE_ID.match(image_id)
    if not match:
        raise ValueError(f"{image_id!r} is not an ImageNet image id like 'n01443537_22563'")
    return int(match.group(1)) + int(match.group(2)) / 1e6


class GODResponses(NamedTuple):
    """One subject's voxel responses in one ROI, averaged per image."""

    train: np.ndarray  # (training images, voxels)
    train_ids: np.ndarray  # (training images,) ImageNet ids, sorted
    test: np.ndarray  # (test images, voxels), repetitions averaged
    test_ids: np.ndarray  # (test images,)
    test_repetitions: np.ndarray  # (test images,) presentations averaged
    roi: str
    source: str


def _averaged(data: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    ids = np.array([god_image_id(v) for v in values])
    unique, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    sums = np.zeros((unique.size, data.shape[1]))
    np.add.at(sums, inverse, data)
    return sums / counts[:, None], unique, counts


def read_god_subject(path, roi: str = "ROI_VC") -> GODResponses:
    """One subject's training and perception-test responses in ``roi``; a file without the
    ROI, the data types or the stimulus ids is an error naming what it has instead."""
    import bdpy  # the lab's reader; imported here, it loads h5py and hdf5storage

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such BData file")
    try:
        bdata = bdpy.BData(str(path))
    except Exception as error:  # h5py/hdf5storage raise many types for a bad file
        raise ValueError(f"{path}: not a readable BData file ({type(error).__name__}: "
                         f"{error})") from error
    keys = list(bdata.metadata.key)
    for needed in (roi, "DataType", "stimulus_id"):
        if needed not in keys:
            rois = [k for k in keys if k.startswith("ROI_")]
            raise ValueError(f"{path}: no {needed!r} in its metadata (ROIs: "
                             f"{', '.join(rois) or 'none'}; keys: {', '.join(keys)})")
    voxels = np.asarray(bdata.select(roi, verbose=False), np.float64)
    if voxels.shape[1] == 0:
        raise ValueError(f"{path}: ROI {roi!r} marks no voxel")
    data_type = np.asarray(bdata.select("DataType", verbose=False)).ravel()
    stimulus = np.asarray(bdata.select("stimulus_id", verbose=False), np.float64).ravel()
    missing = [f"{name} (DataType {code})" for code, name in
               ((TRAINING, "training samples"), (PERCEPTION_TEST, "perception test samples"))
               if not np.any(data_type == code)]
    if missing:
        raise ValueError(f"{path}: no {' and no '.join(missing)}; DataType values present: "
                         f"{sorted(set(np.unique(data_type).tolist()))}")
    train, train_ids, _ = _averaged(voxels[data_type == TRAINING],
                                    stimulus[data_type == TRAINING])
    test, test_ids, reps = _averaged(voxels[data_type == PERCEPTION_TEST],
                                     stimulus[data_type == PERCEPTION_TEST])
    shared = np.intersect1d(train_ids, test_ids)
    if shared.size:
        raise ValueError(f"{path}: images both in training and test samples, e.g. "
                         f"{shared[:3].tolist()}")
    return GODResponses(train, train_ids, test, test_ids, reps, roi, str(path))


def god_subject_files(folder) -> dict[str, Path]:
    """``{"Subject1": path, ...}`` of a folder of BData files, in subject order."""
    files = sorted(Path(folder).glob(SUBJECT_PATTERN),
                   key=lambda p: (len(p.stem), p.stem))
    if not files:
        raise ValueError(f"{folder}: no BData subjects ({SUBJECT_PATTERN})")
    return {p.stem: p for p in files}
