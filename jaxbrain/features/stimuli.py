"""Stimuli placed at the model's visual field, as Brain-Score places them (docs/design.md §4.15).

A stimulus shown at ``stimulus_degrees`` to a model that sees ``model_degrees`` covers the
fraction ``stimulus_degrees / model_degrees`` of its input: a smaller stimulus is pasted centred
on a grey (128) canvas ``model_degrees / stimulus_degrees`` times its size, a larger one is
centre-cropped to that fraction (sizes and offsets rounded as Brain-Score's ``ImageConverter``
rounds them). The result is resized bilinearly with PIL to the model's input size (as
torchvision's ``Resize`` does on PIL images), scaled to [0, 1] and ImageNet-normalised.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import zipfile
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKGROUND = 128  # PIL's "gray", Brain-Score's canvas colour
PLACEMENT_VERSION = "brainscore-screen/1"


# PIL modes of high-bit-depth grey images; "I" is what PIL gives some 16-bit PNGs.
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def read_image(location: str) -> np.ndarray:
    """An image file (or ``archive.zip::member``) as (H, W, 3) uint8 RGB.

    8-bit images go through PIL's RGB conversion, as Brain-Score's pipeline sees them. 16-bit
    grey images are scaled to 8 bits (value / 257), where PIL's conversion would clip every
    value above 255 to white; other high-bit-depth images (32-bit float, integers beyond 16
    bits) are refused. Any unreadable or truncated file is a ValueError naming it."""
    return read_images([location])[0]


def read_images(locations: Sequence[str]) -> list[np.ndarray]:
    """:func:`read_image` of each location, opening each zip archive among them once (a
    stimulus set's zip lists thousands of members; reopening it per image reparses that
    list every time)."""
    archives: dict[str, zipfile.ZipFile] = {}
    try:
        return [_decode(_open(str(location), archives), str(location))
                for location in locations]
    finally:
        for archive in archives.values():
            archive.close()


def _open(location: str, archives: dict) -> Image.Image:
    try:
        if "::" in location:
            path, member = location.split("::", 1)
            if path not in archives:
                archives[path] = zipfile.ZipFile(path)
            image = Image.open(io.BytesIO(archives[path].read(member)))
            image.load()
            return image
        with Image.open(location) as image:
            image.load()
            return image
    except (OSError, KeyError, ValueError, SyntaxError, zipfile.BadZipFile) as err:
        raise ValueError(f"{location}: cannot read the image ({err})") from err


def _decode(image: Image.Image, location: str) -> np.ndarray:
    if image.mode in _SIXTEEN_BIT:
        values = np.asarray(image).astype(np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError(f"{location}: {image.mode} image with values {values.min()} to "
                             f"{values.max()}, outside the 16-bit range; convert it to 8 bits")
        grey = np.round(values / 257.0).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode == "F":
        raise ValueError(f"{location}: 32-bit float image (PIL mode F) has no defined 8-bit "
                         "scale; convert it to 8 bits")
    return np.asarray(image.convert("RGB"))


class ImageFiles(Sequence):
    """A stimulus set's images, read from their files when indexed or iterated.

    A set is never held decoded in memory (the real LaMem's 58,741 images are ~11 GB of
    pixels): extraction reads each batch on the placement threads, beside the device's work
    (:class:`PlacedStimuli`), and a pass over the set (its digest) holds one chunk at a time.
    Each file's size and modification time are noted when the set is made, and a file that
    has changed since is an error when read: what a digest taken at loading names is what
    the model sees. Slicing gives another ``ImageFiles``; an index one (H, W, 3) uint8 image."""

    CHUNK = 64  # images read per archive opening when iterating

    def __init__(self, locations: Sequence[str], stamps: Sequence[tuple] | None = None):
        self.locations = tuple(str(location) for location in locations)
        self.stamps = (tuple(stamps) if stamps is not None
                       else tuple(_stamp(location) for location in self.locations))

    def __len__(self) -> int:
        return len(self.locations)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ImageFiles(self.locations[index], self.stamps[index])
        return ImageFiles([self.locations[index]], [self.stamps[index]])._read(slice(None))[0]

    def __iter__(self):
        for start in range(0, len(self.locations), self.CHUNK):
            yield from self._read(slice(start, start + self.CHUNK))

    def _read(self, part: slice) -> list[np.ndarray]:
        locations, stamps = self.locations[part], self.stamps[part]
        images = read_images(locations)
        for location, stamp in zip(locations, stamps, strict=True):
            if _stamp(location) != stamp:
                raise ValueError(f"{location}: the file changed after its stimulus set was "
                                 "loaded (size or modification time); load the set again")
        return images

    def chunks(self, workers: int = 2):
        """The images in order, a chunk (list) at a time, read by ``workers`` threads at most
        ``2 * workers`` chunks ahead of the caller (PIL decodes without the GIL)."""
        starts = range(0, len(self.locations), self.CHUNK)
        with ThreadPoolExecutor(max(1, workers)) as pool:
            ahead: deque = deque()
            for start in starts:
                ahead.append(pool.submit(self._read, slice(start, start + self.CHUNK)))
                if len(ahead) >= 2 * max(1, workers):
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()


def _stamp(location: str) -> tuple | None:
    """(size, modification time in ns) of an image's file (a zip member: of its archive);
    None for a file that cannot be read (reading it names the problem)."""
    try:
        info = os.stat(location.split("::", 1)[0])
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns)


def _check_degrees(stimulus_degrees: float, model_degrees: float) -> None:
    for name, value in (("stimulus_degrees", stimulus_degrees), ("model_degrees", model_degrees)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0; got {value!r}")


def _as_rgb(image: np.ndarray, index: int) -> np.ndarray:
    """One (H, W, C) uint8 image as (H, W, 3): grey repeated, alpha dropped."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image {index}: expected uint8 pixels (0-255); got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4) or 0 in image.shape:
        raise ValueError(f"image {index}: expected shape (height, width, channels) with 1 (grey), "
                         f"3 (RGB) or 4 (RGBA) channels; got {image.shape}")
    if image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    return image[..., :3]


def _place(image: np.ndarray, ratio: float) -> np.ndarray:
    """Paste centred on grey (ratio > 1) or centre-crop (ratio < 1), Brain-Score's rounding."""
    size = np.array(image.shape[:2])
    target = np.round(ratio * size).astype(int)
    if ratio >= 1:
        canvas = np.full((*target, 3), BACKGROUND, np.uint8)
        top, left = np.round((target - size) / 2).astype(int)
        canvas[top:top + size[0], left:left + size[1]] = image
        return canvas
    top, left = np.round((size - target) / 2).astype(int)
    return image[top:top + target[0], left:left + target[1]]


def prepare_images(images: np.ndarray | Sequence[np.ndarray], *, stimulus_degrees: float,
                   model_degrees: float = 8.0, image_size: int, mean=IMAGENET_MEAN,
                   std=IMAGENET_STD) -> np.ndarray:
    """uint8 images (n, H, W, C), or a sequence of (H, W, C) images of differing sizes, as the
    model's float32 (n, image_size, image_size, 3) input, placed at its visual field."""
    _check_degrees(stimulus_degrees, model_degrees)
    if not (isinstance(image_size, int | np.integer) and image_size > 0):
        raise ValueError(f"image_size must be a positive integer; got {image_size!r}")
    if isinstance(images, np.ndarray) and images.ndim != 4:
        raise ValueError("expected images of shape (n, height, width, channels); "
                         f"got shape {images.shape}")
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    if mean.shape != (3,) or std.shape != (3,) or np.any(std <= 0):
        raise ValueError(f"mean and std need 3 values each, std > 0; got {mean}, {std}")
    ratio = model_degrees / stimulus_degrees
    out = np.empty((len(images), image_size, image_size, 3), np.float32)
    for i, image in enumerate(images):
        rgb = _as_rgb(image, i)
        if ratio != 1:
            rgb = _place(rgb, ratio)
        pil = Image.fromarray(rgb).resize((image_size, image_size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(pil, np.float32) / 255.0
    out -= mean
    out /= std
    return out


def model_preprocessing(model, stimulus_degrees: float) -> dict:
    """The keyword arguments of ``prepare_images`` / ``preprocessing_key`` for ``model`` (a
    TappedModel: its visual field, input size and pixel normalisation)."""
    return {"stimulus_degrees": stimulus_degrees, "model_degrees": model.visual_degrees,
            "image_size": model.input_size, "mean": model.pixel_mean, "std": model.pixel_std}


def preprocessing_key(*, stimulus_degrees: float, model_degrees: float = 8.0, image_size: int,
                      mean=IMAGENET_MEAN, std=IMAGENET_STD) -> dict:
    """What ``prepare_images`` did, as plain JSON data, for cache keys and bank metadata."""
    _check_degrees(stimulus_degrees, model_degrees)
    return {"placement": PLACEMENT_VERSION, "stimulus_degrees": float(stimulus_degrees),
            "model_degrees": float(model_degrees), "background": BACKGROUND,
            "image_size": int(image_size), "resize": "PIL-bilinear",
            "mean": [float(v) for v in mean], "std": [float(v) for v in std]}


@dataclasses.dataclass(frozen=True)
class PlacedStimuli:
    """Stimuli placed at a model's visual field on demand, a slice at a time.

    Extraction places each batch just before the device needs it (on host threads, beside
    the device's work), so a set's float32 model inputs never exist all at once (3200 images
    at 224 px are 1.9 GB).  ``images``: uint8 (H, W, C) images of any sizes, in memory or an
    :class:`ImageFiles` (then each batch is also read and decoded there); ``options``: the
    keyword arguments of :func:`prepare_images` (e.g. ``model_preprocessing(model, degrees)``);
    ``source_digest``: a digest of the raw images and their ids (e.g. ``Stimuli.digest``),
    which with the options identifies the placed inputs without placing them."""

    images: Sequence[np.ndarray]
    options: dict
    source_digest: str

    def __post_init__(self):
        if len(self.images) == 0:
            raise ValueError("no stimuli to place")
        preprocessing_key(**self.options)  # bad options fail here, not in a worker thread

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        size = int(self.options["image_size"])
        return (len(self.images), size, size, 3)

    @property
    def digest(self) -> str:
        """sha256 of the raw images' digest and the placement (what the inputs are)."""
        text = json.dumps([self.source_digest, preprocessing_key(**self.options)],
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def batch(self, start: int, stop: int) -> np.ndarray:
        """The model inputs of images ``start:stop``, (k, size, size, 3) float32."""
        return prepare_images(list(self.images[start:stop]), **self.options)
