"""A synthetic benchmark suite with a known answer, written in the real formats.

Deterministic from a seed.  Images of a few procedurally drawn objects (with object and
category labels and per-image memorability) pass through a hidden random convolutional
network; each region's recordings are random linear read-outs of one known layer plus trial
noise of known size:

    V1 <- block1, V2 <- block2, V4 <- block3, IT <- block4, memorability <- block3,
    fMRI subjects (voxels) <- block2 (the units to decode are block3's)

so the generating layer must win for its region, and the split-half ceiling is known from
the noise level: with unit signal variance, noise sd s and R repetitions it is 1 / (1 + s²/R).

On disk (``write_suite``): ``stimuli/`` (images + stimulus-set CSV), ``lamem/`` (LaMem
layout), ``neural.nc`` (Brain-Score NetCDF, all four regions), ``fmri_<subject>.nc``, and
``truth.json`` with the generating layers, noise levels and expected ceilings.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib import image as mpimg

from jaxbrain.data.brainscore_io import write_assembly

REGION_LAYERS = {"V1": "block1", "V2": "block2", "V4": "block3", "IT": "block4"}
N_CATEGORIES = 2  # objects k and k + 2, k + 4, ... share category k % 2
MEMORABILITY_LAYER = "block3"
FMRI_LAYER, DECODED_LAYER = "block2", "block3"
_CHANNELS = (3, 16, 32, 64, 128)


def split_half_ceiling(trial_noise: float, n_repetitions: int) -> float:
    """Spearman-Brown split-half reliability of a unit-variance signal under trial noise."""
    return 1.0 / (1.0 + trial_noise**2 / n_repetitions)


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
    seed: int = 0
    n_objects: int = 8
    images_per_object: int = 40
    image_size: int = 32
    n_repetitions: int = 6
    neuroids_per_region: int = 40
    trial_noise: float = 1.0  # sd of trial noise, in units of the signal sd
    n_voxels: int = 120
    fmri_subjects: tuple[str, ...] = ("subject1", "subject2")
    memorability_splits: int = 3
    memorability_test_fraction: float = 0.2

    @property
    def n_images(self) -> int:
        return self.n_objects * self.images_per_object

    @property
    def expected_ceiling(self) -> float:
        return split_half_ceiling(self.trial_noise, self.n_repetitions)


WINDOWS = {"early": (70, 100), "late": (180, 210)}  # ms; the memorability study's windows


@dataclasses.dataclass(frozen=True)
class StudiesConfig:
    """The studies' IT recordings (:func:`write_studies_assembly`)."""

    seed: int = 0
    n_sites: int = 60
    mix: float = 0.2  # share of the other window's generator in each window's signal
    trial_noise: float = 1.0
    n_repetitions: int = 6

    @property
    def expected_ceiling(self) -> float:
        return split_half_ceiling(self.trial_noise, self.n_repetitions)


def make_images(config: SuiteConfig) -> tuple[np.ndarray, np.ndarray]:
    """(n, H, W, 3) uint8 images and their object labels: each object is an arrangement of
    coloured blobs, drawn shifted, with each blob jittered, scaled in contrast and with
    pixel noise on grey (variation within objects is what lets layers differ)."""
    rng = np.random.default_rng(config.seed)
    size = config.image_size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images, labels = [], []
    for obj in range(config.n_objects):
        blobs = [(rng.uniform(8, size - 8, 2), rng.uniform(2.0, 5.0), rng.uniform(-1, 1, 3))
                 for _ in range(4)]
        for _ in range(config.images_per_object):
            shift = rng.integers(-6, 7, 2)
            canvas = np.zeros((size, size, 3))
            for (cy, cx), radius, colour in blobs:
                jy, jx = shift + rng.normal(0, 2.0, 2)
                bump = np.exp(-((yy - cy - jy) ** 2 + (xx - cx - jx) ** 2) / (2 * radius**2))
                canvas += bump[:, :, None] * (colour + rng.normal(0, 0.3, 3))
            canvas *= rng.uniform(0.5, 1.0)
            canvas += 0.15 * rng.standard_normal(canvas.shape)
            images.append(np.clip(128 + 110 * canvas, 0, 255).astype(np.uint8))
            labels.append(f"object{obj}")
    return np.stack(images), np.array(labels)


def hidden_network_params(seed: int) -> list[np.ndarray]:
    """Weights of the hidden network: four 3x3 stride-2 convolutions (He-scaled)."""
    rng = np.random.default_rng(seed + 1)
    return [rng.standard_normal((3, 3, c_in, c_out)) * np.sqrt(2.0 / (9 * c_in))
            for c_in, c_out in itertools.pairwise(_CHANNELS)]


def hidden_activations(images: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Flattened activations of every block of the hidden network for ``images`` (NHWC)."""
    x = jnp.asarray((images.astype(np.float32) / 255.0 - 0.5) / 0.25)
    layers = {}
    for k, w in enumerate(hidden_network_params(seed), start=1):
        x = jax.lax.conv_general_dilated(
            x, jnp.asarray(w, jnp.float32), window_strides=(2, 2), padding="SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"))
        x = jax.nn.relu(x)
        layers[f"block{k}"] = np.asarray(x.reshape(x.shape[0], -1))
    return layers


def _readout(rng, features: np.ndarray, n_out: int) -> np.ndarray:
    """Unit-variance random linear read-outs of standardised features."""
    z = (features - features.mean(0)) / (features.std(0) + 1e-6)
    signal = z @ rng.standard_normal((z.shape[1], n_out))
    return (signal - signal.mean(0)) / signal.std(0)


def categories(labels: np.ndarray) -> np.ndarray:
    """Category of each object label (``objectK`` belongs to ``categoryK%2``)."""
    return np.array([f"category{int(label.removeprefix('object')) % N_CATEGORIES}"
                     for label in labels])


def _recordings(ids, labels, signal, regions, config, rng,
                bins=((70, 170),)) -> xr.DataArray:
    """Trials (repetitions x stimuli) of ``signal`` (n, m) or (n, m, time bins) plus noise."""
    signal = signal[:, :, None] if signal.ndim == 2 else signal
    reps = config.n_repetitions
    trials = signal[None] + config.trial_noise * rng.standard_normal((reps, *signal.shape))
    n, m, _ = signal.shape
    coords = {
        "stimulus_id": ("presentation", np.tile(ids, reps)),
        "repetition": ("presentation", np.repeat(np.arange(reps), n)),
        "object_name": ("presentation", np.tile(labels, reps)),
        "category_name": ("presentation", np.tile(categories(labels), reps)),
        "neuroid_id": ("neuroid", [f"{r}_{i}" for i, r in enumerate(regions)]),
        "region": ("neuroid", list(regions)),
        "time_bin_start": ("time_bin", [start for start, _ in bins]),
        "time_bin_end": ("time_bin", [end for _, end in bins]),
    }
    data = trials.reshape(reps * n, m, len(bins))
    return xr.DataArray(data, dims=("presentation", "neuroid", "time_bin"), coords=coords)


def write_suite(root, config: SuiteConfig = SuiteConfig()) -> dict:
    """Write the whole suite under ``root``; returns the ground truth (also truth.json)."""
    root = Path(root)
    rng = np.random.default_rng(config.seed + 2)
    images, labels = make_images(config)
    ids = np.array([f"syn{i:04d}" for i in range(len(images))])
    acts = hidden_activations(images, config.seed)

    for folder in ("stimuli/images", "lamem/images", "lamem/splits"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for sid, img in zip(ids, images, strict=True):
        mpimg.imsave(root / "stimuli" / "images" / f"{sid}.png", img)
        mpimg.imsave(root / "lamem" / "images" / f"{sid}.png", img)
    pd.DataFrame({"stimulus_id": ids, "object_name": labels, "category_name": categories(labels),
                  "filename": [f"{s}.png" for s in ids]}
                 ).to_csv(root / "stimuli" / "stimuli.csv", index=False)

    memorability = 1.0 / (1.0 + np.exp(-_readout(rng, acts[MEMORABILITY_LAYER], 1)[:, 0]))
    n_test = round(config.memorability_test_fraction * len(ids))
    for k in range(1, config.memorability_splits + 1):
        order = rng.permutation(len(ids))
        for part, rows in (("test", order[:n_test]), ("train", order[n_test:])):
            lines = [f"{ids[i]}.png {memorability[i]:.6f}" for i in np.sort(rows)]
            (root / "lamem" / "splits" / f"{part}_{k}.txt").write_text("\n".join(lines) + "\n")

    signals, regions = [], []
    for region, layer in REGION_LAYERS.items():
        signals.append(_readout(rng, acts[layer], config.neuroids_per_region))
        regions += [region] * config.neuroids_per_region
    write_assembly(_recordings(ids, labels, np.concatenate(signals, axis=1), regions, config,
                               rng), root / "neural.nc")
    for subject in config.fmri_subjects:
        voxels = _readout(rng, acts[FMRI_LAYER], config.n_voxels)
        write_assembly(_recordings(ids, labels, voxels, ["VC"] * config.n_voxels, config, rng),
                       root / f"fmri_{subject}.nc")

    truth = {
        "config": dataclasses.asdict(config),
        "region_layers": REGION_LAYERS,
        "memorability_layer": MEMORABILITY_LAYER,
        "fmri_layer": FMRI_LAYER,
        "decoded_layer": DECODED_LAYER,
        "expected_ceiling": config.expected_ceiling,
        "files": {"stimuli": "stimuli/stimuli.csv", "images": "stimuli/images",
                  "lamem": "lamem", "neural": "neural.nc",
                  "fmri": {s: f"fmri_{s}.nc" for s in config.fmri_subjects}},
    }
    text = json.dumps(truth, indent=2)
    (root / "truth.json").write_text(text)
    return json.loads(text)  # exactly what truth.json holds (tuples become lists)


def write_studies_assembly(root, early_features: np.ndarray, late_features: np.ndarray,
                           generators: dict, config: StudiesConfig = StudiesConfig()) -> dict:
    """Write ``<root>/studies/neural.nc``, the studies' recordings with a planted answer.

    IT sites respond in two windows (``WINDOWS``): the early response reads out mostly
    ``early_features`` (e.g. a memorability-trained layer), the late one mostly
    ``late_features`` (a categorisation-trained layer).  Each site has one read-out a of the
    early features and one b of the late ones; its early signal is √(1−w)·a + √w·b and its
    late signal √w·a + √(1−w)·b, w = ``config.mix``.  V1, V2 and V4 read out the hidden
    network's blocks 1–3 as in the base suite, with the same signal in both windows
    (sustained).  Rows are the suite's stimuli in stimulus-set order.  Returns the ground
    truth, also written to ``studies/truth.json``.
    """
    root = Path(root)
    suite = SuiteConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in
                           json.loads((root / "truth.json").read_text())["config"].items()})
    ids, images = load_images(root)
    labels = pd.read_csv(root / "stimuli" / "stimuli.csv")["object_name"].to_numpy(str)
    for name, features in (("early", early_features), ("late", late_features)):
        if np.shape(features)[0] != ids.size:
            raise ValueError(f"{name} features have {np.shape(features)[0]} rows; the suite has "
                             f"{ids.size} stimuli")
    if not 0.0 <= config.mix <= 0.5:
        raise ValueError(f"mix must lie in [0, 0.5] (the other window's share), got {config.mix}")
    rng = np.random.default_rng(config.seed + 3)
    acts = hidden_activations(images, suite.seed)
    signals, regions = [], []
    for region in ("V1", "V2", "V4"):
        sustained = _readout(rng, acts[REGION_LAYERS[region]], suite.neuroids_per_region)
        signals.append(np.stack([sustained, sustained], axis=-1))
        regions += [region] * suite.neuroids_per_region
    a = _readout(rng, np.asarray(early_features, np.float64), config.n_sites)
    b = _readout(rng, np.asarray(late_features, np.float64), config.n_sites)
    w = config.mix
    early = np.sqrt(1 - w) * a + np.sqrt(w) * b
    late = np.sqrt(w) * a + np.sqrt(1 - w) * b
    unit = lambda s: (s - s.mean(0)) / s.std(0)  # noqa: E731
    signals.append(np.stack([unit(early), unit(late)], axis=-1))
    regions += ["IT"] * config.n_sites
    noise = dataclasses.replace(suite, trial_noise=config.trial_noise,
                                n_repetitions=config.n_repetitions)
    out = root / "studies"
    out.mkdir(exist_ok=True)
    write_assembly(_recordings(ids, labels, np.concatenate(signals, axis=1), regions, noise, rng,
                               bins=tuple(WINDOWS.values())), out / "neural.nc")
    truth = {"config": dataclasses.asdict(config), "windows": WINDOWS,
             "generators": generators, "expected_ceiling": config.expected_ceiling,
             "files": {"neural": "studies/neural.nc"}}
    text = json.dumps(truth, indent=2)
    (out / "truth.json").write_text(text)
    return json.loads(text)


def load_images(root) -> tuple[np.ndarray, np.ndarray]:
    """The suite's stimuli as (ids, uint8 NHWC images), read back from disk."""
    table = pd.read_csv(Path(root) / "stimuli" / "stimuli.csv")
    images = [mpimg.imread(Path(root) / "stimuli" / "images" / name) for name in table["filename"]]
    pixels = np.stack([np.round(img[..., :3] * 255).astype(np.uint8) for img in images])
    return table["stimulus_id"].to_numpy(str), pixels
