"""grain input pipelines: random-access training and evaluation batches.

Every example becomes one common record so a batch can mix class-labelled images (ImageNet
style) with memorability-scored ones (LaMem); the loss uses the masks:

    image             float32 (S, S, 3), ImageNet-normalised on the [0, 1] pixel scale
    label             int32, -1 where the example has no class label
    has_label         float32 0/1
    memorability      float32, 0 where the example has no score
    has_memorability  float32 0/1

Sources are anything with ``len`` and ``__getitem__`` returning a dict with a uint8 (H, W, 3)
``image`` and ``label`` and/or ``memorability`` (``tfds_builders.data_source``, ``ArraySource``).

``train_dataset(...)[i]`` is the batch for step i, a pure function of (seed, i): shuffling
and augmentation draw from per-index seeds, so a run resumes at any step exactly, in any order
(``ds[step:].to_iter_dataset()`` to iterate with prefetching from ``step`` on).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import grain
import numpy as np
from absl import flags
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


class Recipe(NamedTuple):
    """Augmentation and evaluation crops: training takes a random-resized crop (area fraction
    in ``crop_area``, aspect ratio in [3/4, 4/3]) and a horizontal flip; evaluation the centre
    square of side ``eval_crop`` × the shorter side, resized to the image size."""

    crop_area: tuple[float, float]
    eval_crop: float


RECIPES = {
    # torchvision's reference recipe: RandomResizedCrop(224) + flip; Resize(256) + CenterCrop(224)
    "torchvision": Recipe(crop_area=(0.08, 1.0), eval_crop=224 / 256),
    # small images (the synthetic suite): a milder area floor, the whole image for evaluation;
    # a memorability score belongs to the whole image
    "small": Recipe(crop_area=(0.25, 1.0), eval_crop=1.0),
}
_CROP_LOG_ASPECT = (np.log(3 / 4), np.log(4 / 3))


def named_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"data.recipe must be one of {sorted(RECIPES)}; got {name!r}")
    return RECIPES[name]


class ArraySource:
    """In-memory random-access source (uint8 NHWC images, optional labels / memorability)
    yielding the common record's target keys; grey (C = 1) images are repeated to RGB."""

    def __init__(self, images, labels=None, memorability=None):
        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.uint8 or images.shape[-1] not in (1, 3):
            raise ValueError(
                f"images must be uint8 (N, H, W, 1 or 3), got {images.dtype} {images.shape}"
            )
        n = len(images)
        for name, values in (("labels", labels), ("memorability", memorability)):
            if values is not None and np.shape(values) != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {np.shape(values)}")
        self.images = images
        self.labels = None if labels is None else np.asarray(labels, np.int32)
        self.memorability = None if memorability is None else np.asarray(memorability, np.float32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index) -> dict:
        targets = {}
        if self.labels is not None:
            targets["label"] = self.labels[index]
        if self.memorability is not None:
            targets["memorability"] = self.memorability[index]
        image = self.images[index]
        return {"image": np.broadcast_to(image, (*image.shape[:2], 3))} | _targets(targets)


def _targets(example: dict) -> dict:
    """The record's target keys; absent targets get the masked defaults."""
    has_label = float(example.get("has_label", "label" in example))
    has_score = float(example.get("has_memorability", "memorability" in example))
    return {
        "label": np.int32(example["label"] if has_label else -1),
        "has_label": np.float32(has_label),
        "memorability": np.float32(example["memorability"] if has_score else 0.0),
        "has_memorability": np.float32(has_score),
    }


def _resized(image: np.ndarray, box, size: int) -> np.ndarray:
    """``box`` (x0, y0, x1, y1; floats allowed) of the image, bilinearly resized to size²
    (PIL widens the filter when shrinking, so large images are not aliased)."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR, box=box))


def _centre_box(height: int, width: int, fraction: float = 1.0) -> tuple[float, ...]:
    """The centre square of side ``fraction`` × the shorter side (Resize(s) + CenterCrop(c)
    is this box with fraction c/s, resized once)."""
    side = min(height, width) * fraction
    return ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)


def _random_box(rng: np.random.Generator, height: int, width: int,
                area_range: tuple[float, float]) -> tuple[float, ...]:
    """torchvision's ``RandomResizedCrop.get_params``: up to 10 draws of area and aspect,
    the first that fits the image, else the centre crop at the nearest allowed aspect."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(*area_range)
        aspect = np.exp(rng.uniform(*_CROP_LOG_ASPECT))
        w = round(np.sqrt(target * aspect))
        h = round(np.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            y0 = int(rng.integers(0, height - h + 1))
            x0 = int(rng.integers(0, width - w + 1))
            return (x0, y0, x0 + w, y0 + h)
    ratio = width / height
    low, high = np.exp(_CROP_LOG_ASPECT)
    if ratio < low:
        w, h = width, round(width / low)
    elif ratio > high:
        w, h = round(height * high), height
    else:
        w, h = width, height
    x0, y0 = (width - w) // 2, (height - h) // 2
    return (x0, y0, x0 + w, y0 + h)


def _normalised(image: np.ndarray) -> np.ndarray:
    return ((image.astype(np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)


def _record(example: dict, rng: np.random.Generator | None, *, image_size: int,
            recipe: Recipe) -> dict:
    """The common record; ``rng`` None: centre crop, otherwise random crop + flip."""
    image = np.asarray(example["image"])
    height, width = image.shape[:2]
    if rng is None:
        image = _resized(image, _centre_box(height, width, recipe.eval_crop), image_size)
    else:
        image = _resized(image, _random_box(rng, height, width, recipe.crop_area), image_size)
        if rng.random() < 0.5:
            image = image[:, ::-1]
    return {"image": _normalised(image)} | _targets(example)


def _derived_seed(seed: int, stream: int) -> int:
    """Independent 32-bit seed per stream. grain seeds epoch e with seed + e, so raw seeds
    s and s + 1 would share permutations one epoch apart."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def train_dataset(
    sources: Sequence,
    *,
    batch_size: int,
    image_size: int,
    seed: int,
    num_steps: int,
    weights: Sequence[float] | None = None,
    augment: bool = True,
    recipe: str = "small",
    process: tuple[int, int] = (0, 1),
) -> grain.MapDataset:
    """Item i = the batch (dict of stacked arrays) for training step i, i < num_steps.

    ``process`` (index, count): with several processes (hosts), item i is only this process's
    rows of the global batch i (rows index·b/count … (index+1)·b/count), and only those are
    read and decoded; every record is the one a single process would make (the augmentation
    draws from the record's global index).

    Without ``weights`` the sources are concatenated and shuffled globally, a new order each
    epoch, so every example appears once per epoch. With ``weights`` each source is shuffled
    and repeated on its own and grain interleaves them in those proportions. Batches run
    across epoch boundaries, so each has exactly ``batch_size`` examples.
    """
    if not sources or any(len(s) == 0 for s in sources):
        raise ValueError("train_dataset needs at least one source, none of them empty")
    if batch_size < 1 or num_steps < 0:
        raise ValueError(f"need batch_size >= 1 and num_steps >= 0, got {batch_size}, {num_steps}")
    datasets = [grain.MapDataset.source(s) for s in sources]
    if weights is None:
        mixed = grain.MapDataset.concatenate(datasets).shuffle(_derived_seed(seed, 0)).repeat()
    else:
        if len(weights) != len(sources) or min(weights) <= 0:
            raise ValueError(f"need one positive weight per source, got {list(weights)}")
        mixed = grain.MapDataset.mix(
            [ds.shuffle(_derived_seed(seed, 2 + k)).repeat() for k, ds in enumerate(datasets)],
            weights,
        )
    make = partial(_record, image_size=image_size, recipe=named_recipe(recipe))
    if augment:
        records = mixed.random_map(make, seed=_derived_seed(seed, 1))
    else:
        records = mixed.map(partial(make, rng=None))
    index, count = process
    if batch_size % count or not 0 <= index < count:
        raise ValueError(f"the global batch ({batch_size}) must split evenly over {count} "
                         f"processes (process index {index})")
    if count > 1:
        local = batch_size // count
        records = grain.MapDataset.range(num_steps * local).map(
            partial(_global_record, records, batch_size, local, index))
        return records.batch(local, drop_remainder=True)
    return records.batch(batch_size, drop_remainder=True)[:num_steps]


def _global_record(records, batch_size: int, local: int, index: int, k: int) -> dict:
    """Local record k of process ``index``: row index·local + k mod local of global batch
    k // local."""
    return records[(k // local) * batch_size + index * local + k % local]


def iterate(dataset: grain.MapDataset, start: int, workers: int = 0):
    """The batches from ``start`` on, read ahead; ``workers`` > 0 decodes and augments in that
    many worker processes (the order and the batches stay the same)."""
    batches = dataset[start:].to_iter_dataset()
    if workers > 0:
        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags (their defaults
            flags.FLAGS.mark_as_parsed()  # here) even when no absl app parsed any
        batches = batches.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return iter(batches)


def _padded(batch: dict, *, batch_size: int) -> dict:
    """Fill the last batch up with masked records, so every batch has the same shape."""
    n = len(batch["label"])
    pad = {"image": np.zeros_like(batch["image"][0])} | _targets({})
    padded = {
        key: np.concatenate([value, np.repeat(pad[key][None], batch_size - n, axis=0)])
        for key, value in batch.items()
    }
    padded["valid"] = (np.arange(batch_size) < n).astype(np.float32)
    return padded


def eval_batches(source, *, batch_size: int, image_size: int,
                 recipe: str = "small") -> grain.MapDataset:
    """Batches in source order: the recipe's centre crop resized to ``image_size``,
    normalised; ``valid`` is 0 for the padding that fills up the last batch."""
    if batch_size < 1 or len(source) == 0:
        raise ValueError(f"need batch_size >= 1 and a non-empty source, got {batch_size}")
    return (
        grain.MapDataset.source(source)
        .map(partial(_record, rng=None, image_size=image_size, recipe=named_recipe(recipe)))
        .batch(batch_size)
        .map(partial(_padded, batch_size=batch_size))
    )
