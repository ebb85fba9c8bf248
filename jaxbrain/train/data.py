"""Training and validation sources named by a config: the synthetic suite, or an
ImageNet-style class-folder tree and/or a LaMem folder (via the tfds builders)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from jaxbrain.data import synthetic
from jaxbrain.data.lamem import read_lamem
from jaxbrain.data.tfds_builders import (
    build_class_folder,
    build_lamem,
    class_folder_sources,
    data_source,
    lamem_sources,
)
from jaxbrain.train.pipeline import ArraySource


class TrainingData(NamedTuple):
    train: list  # random-access sources of common records
    weights: list[float] | None  # mixing proportions (None: concatenate)
    validation: list  # sources scored for top-1 / memorability rho
    num_classes: int  # 0 when no source has class labels


def synthetic_data(root, split_index: int = 1) -> TrainingData:
    """The synthetic suite's images with object labels and memorability scores; LaMem split
    ``split_index``'s train images train, its test images validate.  The suite is written
    on first use."""
    root = Path(root)
    if not (root / "truth.json").exists():
        synthetic.write_suite(root)
    ids, images = synthetic.load_images(root)
    objects = pd.read_csv(root / "stimuli" / "stimuli.csv")["object_name"].to_numpy(str)
    class_names, labels = np.unique(objects, return_inverse=True)
    memorability = read_lamem(root / "lamem")
    if split_index not in memorability.splits:
        raise ValueError(f"{root / 'lamem'}: no split {split_index}; "
                         f"has {sorted(memorability.splits)}")
    score = dict(zip(memorability.image_names, memorability.scores, strict=True))
    index = {f"{sid}.png": i for i, sid in enumerate(ids)}

    def source(part: str) -> ArraySource:
        names = memorability.splits[split_index][part]
        rows = np.array([index[name] for name in names])
        return ArraySource(images[rows], labels[rows], np.array([score[n] for n in names]))

    return TrainingData([source("train")], None, [source("test")], len(class_names))


READERS = ("array_record", "files")


def folder_data(class_folder_dir: str, lamem_dir: str, tfds_dir, split_index: int = 1,
                weights=None, reader: str = "array_record") -> TrainingData:
    """A class-folder tree (splits ``train``, ``val``) and/or a LaMem folder (split
    ``split_index``: train / test).  ``reader`` "array_record": prepared once as array_record
    datasets under ``tfds_dir`` (one pass over the images, JPEG bytes kept as they are);
    "files": the image files read and decoded by the pipeline itself (no preparation)."""
    if not class_folder_dir and not lamem_dir:
        raise ValueError("data: give class_folder_dir and/or lamem_dir")
    if reader not in READERS:
        raise ValueError(f"data.reader must be one of {READERS}; got {reader!r}")
    train, validation, num_classes = [], [], 0
    if class_folder_dir:
        if reader == "files":
            sources, class_names = class_folder_sources(class_folder_dir)
            num_classes = len(class_names)
        else:
            builder = build_class_folder(class_folder_dir, tfds_dir)
            sources = {split: data_source(builder, split) for split in builder.info.splits}
            num_classes = builder.info.features["label"].num_classes
        if "train" not in sources:
            raise ValueError(f"{class_folder_dir}: no 'train' split folder")
        train.append(sources["train"])
        if "val" in sources:
            validation.append(sources["val"])
    if lamem_dir:
        if reader == "files":
            sources = lamem_sources(lamem_dir, split_index)
        else:
            builder = build_lamem(lamem_dir, tfds_dir, split_index=split_index)
            sources = {part: data_source(builder, part) for part in ("train", "test")}
        train.append(sources["train"])
        validation.append(sources["test"])
    if weights is not None and len(weights) != len(train):
        raise ValueError(f"data.weights needs one weight per source ({len(train)}); got {weights}")
    return TrainingData(train, list(weights) if weights else None, validation, num_classes)


def from_config(data) -> TrainingData:
    """``data.kind`` "synthetic" or "folders" (see the two builders above)."""
    if data.kind == "synthetic":
        return synthetic_data(data.synthetic_dir, data.lamem_split)
    if data.kind == "folders":
        return folder_data(data.class_folder_dir, data.lamem_dir, data.tfds_dir,
                           data.lamem_split, data.weights, data.get("reader", "array_record"))
    raise ValueError(f"data.kind must be 'synthetic' or 'folders'; got {data.kind!r}")
