"""Memorability data in the LaMem layout.

A LaMem root holds ``images/`` and ``splits/`` with files ``train_K.txt``, ``test_K.txt``
(and optionally ``val_K.txt``), K = 1..5, one ``image_name score`` per line, scores in [0, 1].
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

_SPLIT_FILE = re.compile(r"^(train|val|test)_(\d+)\.txt$")


class MemorabilityData(NamedTuple):
    image_names: np.ndarray  # (n,) every image named in any split file, sorted
    scores: np.ndarray  # (n,) memorability per image
    splits: dict  # {K: {"train": names, "test": names[, "val": names]}}
    image_dir: Path


def _read_split_file(path: Path) -> dict[str, float]:
    entries = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected 'image_name score', got {line!r}")
        name, value = parts
        try:
            score = float(value)
        except ValueError:
            raise ValueError(f"{path}:{number}: score {value!r} is not a number") from None
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"{path}:{number}: score {score} outside [0, 1]")
        if name in entries and entries[name] != score:
            raise ValueError(f"{path}:{number}: image {name!r} listed twice with two scores")
        entries[name] = score
    if not entries:
        raise ValueError(f"{path}: no entries")
    return entries


def read_lamem(root, check_images: bool = True) -> MemorabilityData:
    """Read a LaMem-layout folder; every split needs train and test files."""
    root = Path(root)
    split_dir, image_dir = root / "splits", root / "images"
    if not split_dir.is_dir():
        raise ValueError(f"{root}: no 'splits' folder (LaMem layout: images/ and splits/)")
    splits: dict[int, dict[str, np.ndarray]] = {}
    scores: dict[str, float] = {}
    for path in sorted(split_dir.iterdir()):
        match = _SPLIT_FILE.match(path.name)
        if not match:
            continue
        entries = _read_split_file(path)
        for name, score in entries.items():
            if scores.setdefault(name, score) != score:
                raise ValueError(f"{path}: image {name!r} has a different score in another split")
        splits.setdefault(int(match.group(2)), {})[match.group(1)] = np.array(sorted(entries))
    if not splits:
        raise ValueError(f"{split_dir}: no split files named train_K.txt / test_K.txt")
    for k, parts in splits.items():
        if not {"train", "test"} <= set(parts):
            raise ValueError(f"{split_dir}: split {k} needs both train_{k}.txt and test_{k}.txt")
        if np.intersect1d(parts["train"], parts["test"]).size:
            raise ValueError(f"{split_dir}: split {k} has images in both train and test")
    names = np.array(sorted(scores))
    if check_images:
        if not image_dir.is_dir():
            raise ValueError(f"{root}: no 'images' folder")
        present = {p.name for p in image_dir.iterdir()}
        missing = [str(n) for n in names if n not in present]
        if missing:
            raise ValueError(
                f"{image_dir}: {len(missing)} listed images missing, e.g. {missing[:5]}"
            )
    return MemorabilityData(names, np.array([scores[n] for n in names]), splits, image_dir)
