"""What a sweep reads: models by reference, the stimulus set, and its benchmarks' data.

Model references: a zoo name (``resnet18_tiny-joint``, from ``--zoo_dir``), a training run's
directory (its latest checkpoint), ``arch=weights`` for torchvision-layout weights (a file, or a
catalog name such as ``resnet50=IMAGENET1K_V1``, fetched on first use), an
architecture name (random initialisation, seed 0), or ``synthetic_hidden`` (the synthetic
suite's generating network).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxbrain import benchmarks as benchmark_registry
from jaxbrain.benchmarks.base import Benchmark, Prepared
from jaxbrain.data.brainscore_io import image_folder, read_stimulus_set
from jaxbrain.data.catalog import load_catalog
from jaxbrain.features.stimuli import ImageFiles
from jaxbrain.models import ARCHITECTURES, create, from_torchvision, zoo
from jaxbrain.models.hidden import hidden_network
from jaxbrain.models.taps import TappedModel


class InputError(ValueError):
    """A sweep input (model reference, benchmark, data or stimulus file) that cannot be used;
    found before the first model runs, reported as one line naming it."""


def _unknown_model(reference: str, zoo_dir) -> InputError:
    known = sorted(zoo.entries(zoo_dir)) if zoo_dir is not None else []
    return InputError(f"unknown model {reference!r}: not 'synthetic_hidden', not a training "
                      "run directory, not arch=path, "
                      f"not an architecture ({', '.join(sorted(ARCHITECTURES))}) and not in "
                      f"the zoo {zoo_dir} ({', '.join(known) or 'empty'})")


def check_model_reference(reference: str, zoo_dir=None, catalog=None) -> None:
    """That :func:`resolve_model` can build ``reference``, checked without building it (so a
    typo in the last model of a sweep is found before the first one runs)."""
    if reference == "synthetic_hidden" or reference in ARCHITECTURES:
        return
    if (Path(reference) / "model.json").exists():
        if not (Path(reference) / "checkpoints").is_dir():
            raise InputError(f"model {reference!r}: a training run without checkpoints/")
        return
    if "=" in reference:
        arch, weights = reference.split("=", 1)
        if arch not in ARCHITECTURES:
            raise InputError(f"model {reference!r}: unknown architecture {arch!r} (known: "
                             f"{', '.join(sorted(ARCHITECTURES))})")
        entries = load_catalog(catalog)
        if not (Path(weights).is_file() or weights in entries or f"{arch}.{weights}" in entries):
            raise InputError(f"model {reference!r}: {weights}: no such weight file and no "
                             "catalog weights by that name")
        return
    if zoo_dir is not None and reference in zoo.entries(zoo_dir):
        return
    raise _unknown_model(reference, zoo_dir)


def resolve_model(reference: str, zoo_dir=None) -> TappedModel:
    """The network a sweep reference names, in eval mode."""
    if reference == "synthetic_hidden":
        model = hidden_network(0)
    elif (Path(reference) / "model.json").exists():
        from jaxbrain.train.checkpoints import restore_model

        model = restore_model(reference)
    elif "=" in reference:
        arch, weights = reference.split("=", 1)
        model = from_torchvision(arch, weights)
    elif zoo_dir is not None and reference in zoo.entries(zoo_dir):
        model = zoo.load(reference, zoo_dir)
    elif reference in ARCHITECTURES:
        model = create(reference, heads=("classification", "memorability"))
    else:
        raise _unknown_model(reference, zoo_dir)
    model.eval()
    return model


class Stimuli(NamedTuple):
    ids: np.ndarray  # (n,) str
    images: Sequence[np.ndarray]  # uint8 (H, W, 3) in ids order; from files: ImageFiles
    filenames: np.ndarray  # (n,) file names, to match LaMem-style lists
    degrees: float
    digest: str  # sha256 over ids and pixels
    source: str = ""  # the stimulus set's catalog name or CSV


def load_stimuli(csv_path, image_dir, degrees: float = 8.0, workers: int = 2) -> Stimuli:
    """The stimuli of a CSV and its images, of a catalog stimulus set (``image_dir`` None), or
    every image in a folder (``csv_path`` None; ids are the file names, in sorted order).

    The images stay in their files (:class:`ImageFiles`): one pass here, ``workers`` threads
    decoding, checks every image and hashes ids and pixels; extraction reads them again a
    batch at a time, so no set is ever held decoded in memory."""
    if not csv_path:
        table = image_folder(image_dir)
        csv_path = image_dir
    else:
        table = read_stimulus_set(csv_path, image_dir or None)
    images = ImageFiles(table["stimulus_path"].astype(str))
    ids = table["stimulus_id"].to_numpy(str)
    digest, first, all_same = hashlib.sha256(), None, True
    for sid, image in zip(ids, itertools.chain.from_iterable(images.chunks(workers)),
                          strict=True):
        digest.update(sid.encode())
        digest.update(np.ascontiguousarray(image).tobytes())
        if first is None:
            first = image
        elif all_same:
            all_same = np.array_equal(first, image)
    if len(images) > 1 and all_same:
        raise ValueError(f"{csv_path}: all {len(images)} images are identical (e.g. one flat "
                         "colour): nothing could be scored; check how they were written")
    filenames = np.array([Path(str(p).split("::")[-1]).name for p in table["stimulus_path"]])
    return Stimuli(ids, images, filenames, float(degrees), digest.hexdigest(), str(csv_path))


class BenchmarkData(NamedTuple):
    """A benchmark of the sweep on the data it runs on this time, prepared once."""

    name: str
    benchmark: Benchmark
    prepared: Prepared

    @property
    def digest(self) -> str:
        return self.prepared.digest


def load_benchmarks(names, *, assembly_path="", lamem_dir="", fmri_dir="") -> list[BenchmarkData]:
    """Registry benchmarks, each on its own data unless ``assembly_path`` / ``lamem_dir`` /
    ``fmri_dir`` override it for this run (each benchmark takes the override that fits it);
    data shared by several benchmarks are read once."""
    loaded, cache = [], {}
    for name in names:
        benchmark = benchmark_registry.load(name).with_data(assembly=assembly_path or None,
                                                            lamem=lamem_dir or None,
                                                            fmri=fmri_dir or None)
        loaded.append(BenchmarkData(name, benchmark, benchmark.prepare(cache)))
    return loaded
