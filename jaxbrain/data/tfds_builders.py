"""tensorflow-datasets builders for image folders, usable without TensorFlow.

Only tfds' array_record path avoids importing TensorFlow, so both builders write
``file_format="array_record"`` and are read back with ``data_source`` (random access, numpy).

- ``build_class_folder``: an ImageNet-style tree ``root/<split>/<class_name>/<image>``; class
  names sorted give the integer labels, one mapping for all splits (the ClassLabel names).
- ``build_lamem``: a LaMem-layout folder (see ``jaxbrain.data.lamem``); one tfds config
  ``split_K`` per official split index K = 1..5, with tfds splits train, test (and val).
- ``class_folder_sources`` / ``lamem_sources``: the same folders read directly, image files
  decoded as the pipeline asks for them (no preparation pass; decoding cost every epoch).

Images are stored with tfds' ``Image`` feature, which needs TensorFlow only to encode numpy
arrays: we hand it encoded bytes instead. RGB JPEGs keep their original bytes (re-encoding
would lose quality); anything else (grey, palette, RGBA: alpha dropped, CMYK, ...) is converted
to RGB and stored as lossless PNG, so every decoded image is uint8 (H, W, 3). tfds decodes with
PIL (or OpenCV where installed) when read through ``data_source``.

A prepared dataset lives in ``data_dir/<name>[/<config>]/1.0.0`` and is reused by later
builds; one whose split sizes no longer match the source raises instead of being reused
silently.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxbrain.data.lamem import read_lamem
from jaxbrain.features.stimuli import read_image

_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_LAMEM_SPLITS = range(1, 6)


def _encoded_rgb(path: Path) -> bytes:
    """The image as bytes that decode to uint8 RGB (JPEGs as they are; anything else as PNG of
    :func:`read_image`'s pixels, so 16-bit images are scaled, not clipped); a ValueError naming
    the file if unreadable."""
    try:
        with Image.open(path) as image:
            if image.format == "JPEG" and image.mode == "RGB":
                image.load()  # decode fully now, so truncated files fail at build time
                return path.read_bytes()
    except Exception as error:
        raise ValueError(f"{path}: unreadable image file ({error})") from error
    buffer = io.BytesIO()
    Image.fromarray(read_image(str(path))).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in _IMAGE_SUFFIXES
    )


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def class_folder_files(source_dir, splits=None) -> tuple[dict, list[str]]:
    """``({split: [(class_name, path), ...]}, sorted class names)`` of a tree
    ``root/<split>/<class_name>/<image>``; ``splits`` defaults to every folder under the root."""
    root = Path(source_dir)
    if not root.is_dir():
        raise ValueError(f"{root}: class-folder root is not a directory")
    split_dirs = [root / s for s in splits] if splits else _subfolders(root)
    if not split_dirs:
        raise ValueError(f"{root}: no split folders (expected <split>/<class>/<image>)")
    files: dict[str, list[tuple[str, Path]]] = {}
    for split_dir in split_dirs:
        if not split_dir.is_dir():
            raise ValueError(f"{split_dir}: split folder missing")
        files[split_dir.name] = [(class_dir.name, path) for class_dir in _subfolders(split_dir)
                                 for path in _image_files(class_dir)]
        if not files[split_dir.name]:
            raise ValueError(f"{split_dir}: no images in class folders (<class>/<image>)")
    return files, sorted({c for entries in files.values() for c, _ in entries})


def lamem_files(lamem_root, split_index: int) -> tuple[dict, Path]:
    """``({part: [(image_name, score), ...]}, image folder)`` of LaMem split ``split_index``
    (1..5); an image a split file names but the folder lacks is an error naming both."""
    data = read_lamem(lamem_root, check_images=False)
    if split_index not in _LAMEM_SPLITS or split_index not in data.splits:
        raise ValueError(
            f"{data.image_dir.parent}: split index {split_index} not available "
            f"(split files for {sorted(data.splits)}; official splits 1..5)"
        )
    present = {p.name for p in data.image_dir.iterdir()} if data.image_dir.is_dir() else set()
    files: dict[str, list[tuple[str, float]]] = {}
    score = dict(zip(data.image_names.tolist(), data.scores.tolist(), strict=True))
    for part, names in data.splits[split_index].items():
        split_file = data.image_dir.parent / "splits" / f"{part}_{split_index}.txt"
        missing = [n for n in names.tolist() if n not in present]
        if missing:
            raise ValueError(
                f"{split_file}: names {len(missing)} image(s) absent from "
                f"{data.image_dir}, e.g. {missing[:5]}"
            )
        files[part] = [(n, score[n]) for n in names.tolist()]
    return files, data.image_dir


class _FolderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared parts: one tfds split per entry of ``self.files``, nothing to download."""

    VERSION = tfds.core.Version("1.0.0")
    # tfds looks for download checksums beside the builder's code through importlib_resources,
    # which is not installed; these builders download nothing.
    code_path = None
    files: dict

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(files) for split, files in self.files.items()}


class ClassFolder(_FolderBuilder, skip_registration=True):
    """``root/<split>/<class_name>/<image>``: label = index of the class name in sorted order."""

    def __init__(self, *, source_dir, splits=None, name="class_folder", **kwargs):
        self.name = name  # instance name: several trees can share one data_dir
        self.files, self.class_names = class_folder_files(source_dir, splits)
        super().__init__(**kwargs)

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="Images in class folders; labels follow sorted class-folder names.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format=None),
                "image_name": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=self.class_names),
            }),
            supervised_keys=("image", "label"),
            disable_shuffling=True,  # keep the sorted folder order: reproducible, readable
        )

    def _generate_examples(self, files):
        for class_name, path in files:
            yield f"{class_name}/{path.name}", {
                "image": _encoded_rgb(path),
                "image_name": path.name,
                "label": class_name,
            }


class LaMem(_FolderBuilder, skip_registration=True):
    """LaMem layout, one config ``split_K`` per official split index K."""

    BUILDER_CONFIGS = [  # noqa: RUF012 (tfds reads this class attribute)
        tfds.core.BuilderConfig(name=f"split_{k}", description=f"LaMem split {k}")
        for k in _LAMEM_SPLITS
    ]

    def __init__(self, *, lamem_root, split_index=1, name="lamem", **kwargs):
        self.name = name
        self.files, self.image_dir = lamem_files(lamem_root, split_index)
        super().__init__(config=f"split_{split_index}", **kwargs)

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="LaMem-layout images with memorability scores in [0, 1].",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format=None),
                "image_name": tfds.features.Text(),
                "memorability": tfds.features.Scalar(np.float32),
            }),
            disable_shuffling=True,
        )

    def _generate_examples(self, files):
        for name, score in files:
            yield name, {
                "image": _encoded_rgb(self.image_dir / name),
                "image_name": name,
                "memorability": score,
            }


def _prepare(builder):
    """Build unless already built; refuse a prepared copy whose split sizes differ from the
    source (files added or removed since), rather than train on stale data."""
    builder.download_and_prepare()
    prepared = {split: info.num_examples for split, info in builder.info.splits.items()}
    expected = {split: len(files) for split, files in builder.files.items()}
    if prepared != expected:
        raise ValueError(
            f"{builder.data_dir}: prepared from a different source (split sizes {prepared}, "
            f"source now {expected}); delete it or build under another name"
        )
    return builder


def build_class_folder(source_dir, data_dir, name="class_folder", splits=None) -> ClassFolder:
    """Prepare (once) a class-folder tree; ``splits`` defaults to every folder under the root."""
    return _prepare(ClassFolder(
        source_dir=source_dir, splits=splits, name=name,
        data_dir=str(data_dir), file_format="array_record",
    ))


def build_lamem(lamem_root, data_dir, split_index=1, name="lamem") -> LaMem:
    """Prepare (once) LaMem split ``split_index`` (1..5) as tfds splits train/test[/val]."""
    return _prepare(LaMem(
        lamem_root=lamem_root, split_index=split_index, name=name,
        data_dir=str(data_dir), file_format="array_record",
    ))


@dataclasses.dataclass(frozen=True)
class _DecodedSource:
    """tfds' array_record source with ``image_name`` as str and the targets as numpy int32 /
    float32 (tfds returns bytes and Python scalars)."""

    source: object

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index) -> dict:
        example = dict(self.source[index])
        example["image_name"] = example["image_name"].decode()
        for key, dtype in (("label", np.int32), ("memorability", np.float32)):
            if key in example:
                example[key] = dtype(example[key])
        return example


def data_source(builder, split):
    """Random-access source of decoded examples (numpy) from a prepared builder or its
    directory. Read through a read-only builder: it pickles (grain workers) without the
    source folder, where our builders would rescan it."""
    directory = getattr(builder, "data_dir", builder)
    return _DecodedSource(tfds.builder_from_directory(directory).as_data_source(split))


@dataclasses.dataclass(frozen=True)
class FileSource:
    """Random access to image files read as they are asked for: no preparation pass, the
    decoding happens in the pipeline (grain workers).  Records as ``data_source``'s."""

    paths: tuple[Path, ...]
    labels: tuple[int, ...] | None = None
    memorability: tuple[float, ...] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index) -> dict:
        path = self.paths[index]
        example = {"image": read_image(str(path)), "image_name": path.name}
        if self.labels is not None:
            example["label"] = np.int32(self.labels[index])
        if self.memorability is not None:
            example["memorability"] = np.float32(self.memorability[index])
        return example


def class_folder_sources(source_dir, splits=None) -> tuple[dict[str, FileSource], list[str]]:
    """One :class:`FileSource` per split of a class-folder tree, and the class names (the
    labels' order, the same as ``build_class_folder``'s)."""
    files, class_names = class_folder_files(source_dir, splits)
    index = {name: k for k, name in enumerate(class_names)}
    return {split: FileSource(tuple(p for _, p in entries),
                              labels=tuple(index[c] for c, _ in entries))
            for split, entries in files.items()}, class_names


def lamem_sources(lamem_root, split_index: int) -> dict[str, FileSource]:
    """One :class:`FileSource` per part (train, test[, val]) of LaMem split ``split_index``."""
    files, image_dir = lamem_files(lamem_root, split_index)
    return {part: FileSource(tuple(image_dir / n for n, _ in entries),
                             memorability=tuple(s for _, s in entries))
            for part, entries in files.items()}
