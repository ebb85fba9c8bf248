"""Stand-in files in the real data sets' layouts: procedural images standing in for HvM
objects, FreemanZiemba textures and ImageNet photographs, stimulus sets and recordings written
exactly as Brain-Score's S3 names and lays them out, and a user catalog that puts them in place
of the real entries under the real identifiers.

Shared by the Brain-Score oracle (``experiments.brainscore_commitment``, which computes the
recordings from a torch network) and the study benchmark (``experiments.bench_study``, which
only needs the real shapes).  Imports beyond numpy are local: the oracle's Brain-Score step
runs this module in Brain-Score's own environment.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

# data set: assembly identifiers and stimulus-set identifiers (public, private), degrees
DATASETS = {
    "hvm": {"assembly": ("dicarlo.MajajHong2015.public", "dicarlo.MajajHong2015.private"),
            "stimuli": ("hvm-public", "hvm-private"), "degrees": 8},
    "fz": {"assembly": ("movshon.FreemanZiemba2013.public", "movshon.FreemanZiemba2013.private"),
           "stimuli": ("FreemanZiemba2013.aperture-public", "FreemanZiemba2013.aperture-private"),
           "degrees": 4},
}
FZ_BINS = (40, 220)  # 1 ms bins written; Brain-Score averages those starting in [50, 200)
FZ_WINDOW = (50, 200)


def s3_file_name(identifier: str, file_type: str) -> str:
    """The file name Brain-Score's ``brainio.s3.get_path`` derives from an identifier."""
    prefix = "stimulus_" if file_type in ("csv", "zip") else "assy_"
    return f"{prefix}{identifier.replace('.', '_')}.{file_type}"


# ----------------------------------------------------------------------------------- fixture
def pink(rng, shape, alpha=1.0):
    """1/f^alpha noise of ``shape`` (H, W, C), each channel scaled to mean 0, std 1."""
    import numpy as np

    h, w, c = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    spectrum = (rng.standard_normal((c, h, fx.shape[1]))
                + 1j * rng.standard_normal((c, h, fx.shape[1]))) / f**alpha
    spectrum[:, 0, 0] = 0
    noise = np.fft.irfft2(spectrum, s=(h, w)).transpose(1, 2, 0)
    return (noise - noise.mean((0, 1))) / noise.std((0, 1))


def to_uint8(x):
    import numpy as np

    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def colour(rng, shape):
    """Colour 1/f noise: a luminance field plus weaker chroma fields, in [0, 1]-ish."""
    import numpy as np

    lum = pink(rng, (*shape, 1), alpha=rng.uniform(0.9, 1.3))
    chroma = pink(rng, (*shape, 2), alpha=1.2)
    mix = np.array([[1, 0.5, 0.2], [1, -0.3, 0.4], [1, -0.2, -0.6]])  # rows: R, G, B
    base = rng.uniform(0.3, 0.7, 3)
    rgb = np.concatenate([lum, 0.5 * chroma], -1) @ mix.T
    return base + rng.uniform(0.08, 0.18) * rgb


def reference_image(rng):
    import numpy as np

    h, w = rng.integers(192, 321, 2)
    image = colour(rng, (h, w))
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(rng.integers(3, 9)):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(10, h / 3), rng.uniform(10, w / 3)
        theta = rng.uniform(0, np.pi)
        u = ((xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)) / rx
        v = (-(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)) / ry
        mask = (np.abs(u) ** rng.uniform(1, 4) + np.abs(v) ** rng.uniform(1, 4)) < 1
        image[mask] = colour(rng, (h, w))[mask]
    return to_uint8(image)


def hvm_objects(rng, n_objects):
    """Per object: radial-shape harmonics and a colour/texture seed."""
    import numpy as np

    return [{"amps": rng.uniform(0.05, 0.3, 4), "phases": rng.uniform(0, 2 * np.pi, 4),
             "colour": rng.uniform(0.1, 0.9, 3), "stripes": rng.uniform(0.03, 0.15),
             "stripe_angle": rng.uniform(0, np.pi)} for _ in range(n_objects)]


def hvm_image(rng, obj, size=256):
    import numpy as np

    background = 0.5 + 0.12 * pink(rng, (size, size, 1), 1.1).repeat(3, -1)
    scale, angle = rng.uniform(0.55, 1.1), rng.uniform(0, 2 * np.pi)
    cy, cx = size / 2 + rng.uniform(-40, 40, 2)
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - cy, xx - cx)
    phi = np.arctan2(yy - cy, xx - cx) - angle
    radius = 70 * scale * (1 + sum(a * np.cos((k + 2) * phi + p) for k, (a, p) in
                                   enumerate(zip(obj["amps"], obj["phases"], strict=True))))
    mask = r < radius
    stripes = np.sin(2 * np.pi * obj["stripes"] / scale * (
        (xx - cx) * np.cos(obj["stripe_angle"] + angle)
        + (yy - cy) * np.sin(obj["stripe_angle"] + angle)))
    shading = 1 - 0.4 * r / np.maximum(radius, 1)
    body = obj["colour"] * (0.75 + 0.25 * stripes[..., None]) * shading[..., None]
    image = np.where(mask[..., None], body, background)
    return to_uint8(image)


def fz_families(rng, n_families):
    import numpy as np

    return [{"f0": rng.uniform(0.03, 0.16), "theta": rng.uniform(0, np.pi),
             "orient_bw": rng.uniform(0.2, 1.5), "nonlin": rng.choice(["abs", "threshold",
                                                                       "product"])}
            for _ in range(n_families)]


def fz_image(rng, family, texture_type, size=320):
    """A grey-scale texture (``texture``: a non-linear function of band-pass noise, so it has
    higher-order structure) or its spectrally matched ``noise`` (phases randomised), in a soft
    circular aperture on grey 128."""
    import numpy as np

    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    f = np.hypot(fx, fy)
    ang = np.arctan2(fy, fx)
    envelope = (np.exp(-0.5 * (np.log(np.maximum(f, 1e-6) / family["f0"]) / 0.4) ** 2)
                * np.exp(family["orient_bw"] * np.cos(2 * (ang - family["theta"]))))

    def bandpass():
        return np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((size, size))) * envelope))

    x = bandpass()
    if family["nonlin"] == "abs":
        x = np.abs(x)
    elif family["nonlin"] == "threshold":
        x = np.tanh(3 * x / x.std())
    else:
        x = x * bandpass()
    if texture_type == "noise":
        amplitude = np.abs(np.fft.fft2(x - x.mean()))
        phases = np.angle(np.fft.fft2(rng.standard_normal((size, size))))
        x = np.real(np.fft.ifft2(amplitude * np.exp(1j * phases)))
    x = (x - x.mean()) / x.std()
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2) / (size / 2)
    aperture = np.clip((1 - r) / 0.1, 0, 1)
    image = 128 / 255 + 0.15 * x * aperture
    return to_uint8(image)


def write_stimulus_set(folder: Path, identifier: str, rows: list[dict], images: list) -> None:
    """CSV + flat zip of PNGs, Brain-Score's layout (``stimulus_id``, ``filename``, metadata)."""
    import io
    import zipfile

    import pandas as pd
    from PIL import Image

    zip_path = folder / s3_file_name(identifier, "zip")
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:
        for row, image in zip(rows, images, strict=True):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            archive.writestr(row["filename"], buffer.getvalue())
    pd.DataFrame(rows).to_csv(folder / s3_file_name(identifier, "csv"), index=False)


def stimulus_id(kind: str, index: int) -> str:
    return hashlib.sha1(f"{kind}-{index}".encode()).hexdigest()


# Brain-Score's registry names of the fixture's files (jaxbrain's catalog identifiers).
CATALOG_FILES = {
    "MajajHong2015.public": ("assembly", "dicarlo.MajajHong2015.public"),
    "MajajHong2015.private": ("assembly", "dicarlo.MajajHong2015.private"),
    "FreemanZiemba2013.public": ("assembly", "movshon.FreemanZiemba2013.public"),
    "FreemanZiemba2013.private": ("assembly", "movshon.FreemanZiemba2013.private"),
    "hvm-public": ("stimulus_set", "hvm-public"),
    "hvm-private": ("stimulus_set", "hvm-private"),
    "FreemanZiemba2013.aperture-public": ("stimulus_set", "FreemanZiemba2013.aperture-public"),
    "FreemanZiemba2013.aperture-private": ("stimulus_set",
                                           "FreemanZiemba2013.aperture-private"),
}
def local_catalog(folder: Path) -> Path:
    """``folder/jaxbrain_catalog.json``: a user catalog that replaces the built-in entries by
    the stand-in files under ``folder/data`` (written there by :func:`write_stimulus_set` and
    :func:`write_recordings`)."""
    def local(path: Path) -> dict:
        return {"path": str(path.resolve()), "checksum": "sha1:" + hashlib.sha1(path.read_bytes())
                .hexdigest()}

    entries = []
    for name, (kind, identifier) in CATALOG_FILES.items():
        if kind == "assembly":
            files = {"assembly": local(folder / "data" / s3_file_name(identifier, "nc"))}
        else:
            files = {role: local(folder / "data" / s3_file_name(identifier, suffix))
                     for role, suffix in (("csv", "csv"), ("images", "zip"))}
        entries.append({"identifier": name, "kind": kind, "replaces": True, "files": files})
    path = folder / "jaxbrain_catalog.json"
    path.write_text(json.dumps({"format": "jaxbrain-catalog/1", "entries": entries}))
    return path



def write_recordings(folder: Path, kind: str, identifier: str, rows: list[dict], signal,
                     region_of_site, gain, baseline, noise_sd, rng, repetitions: int) -> None:
    """One recording assembly in Brain-Score's layout: ``repetitions`` trials of
    ``baseline + gain * (signal + noise_sd * noise)`` per stimulus of ``rows`` and site.

    ``kind`` "hvm" writes MajajHong2015's layout (one 70-170 ms bin, ``object_name``, sites
    named as Chabo/Tito electrodes with animal and array levels); "fz" FreemanZiemba2013's
    (``texture_type``, 1 ms bins ``FZ_BINS`` that are quiet outside ``FZ_WINDOW``, float32)."""
    import numpy as np
    import xarray as xr

    from jaxbrain.data import write_assembly

    n, n_sites = len(rows), signal.shape[1]
    trials = signal[None] + noise_sd * rng.standard_normal((repetitions, n, n_sites))
    rates = baseline + gain * trials  # (rep, stimulus, site)
    presentation = {
        "stimulus_id": ("presentation", np.tile([r["stimulus_id"] for r in rows], repetitions)),
        "repetition": ("presentation", np.repeat(np.arange(repetitions), n)),
    }
    label = "object_name" if kind == "hvm" else "texture_type"
    presentation[label] = ("presentation", np.tile([r[label] for r in rows], repetitions))
    if kind == "hvm":
        ids = [f"Chabo_L_M_{i // 10}_{i % 10}" if region_of_site[i] == "IT"
               else f"Tito_L_P_{i // 10}_{i % 10}" for i in range(n_sites)]
        values = rates.reshape(repetitions * n, n_sites)[:, :, None]
        bins = {"time_bin_start": ("time_bin", [70]), "time_bin_end": ("time_bin", [170])}
    else:
        ids = np.arange(1, n_sites + 1)
        starts = np.arange(*FZ_BINS)
        inside = (starts >= FZ_WINDOW[0]) & (starts < FZ_WINDOW[1])
        per_bin = np.where(inside, 1.0, 0.1)[None, None, :]  # quiet outside the window
        base = rates.reshape(repetitions * n, n_sites)[:, :, None]
        values = base * per_bin + 2.0 * rng.standard_normal(
            (repetitions * n, n_sites, len(starts)))
        bins = {"time_bin_start": ("time_bin", starts), "time_bin_end": ("time_bin", starts + 1)}
    neuroid = {"neuroid_id": ("neuroid", ids), "region": ("neuroid", region_of_site)}
    if kind == "hvm":  # MajajHong's load_assembly needs >= 2 levels left after .sel(region=...)
        # (xarray 2022.3 collapses a 1-level MultiIndex); the real assembly has animal, arr, ...
        neuroid["animal"] = ("neuroid", [i.split("_")[0] for i in ids])
        neuroid["arr"] = ("neuroid", [i.split("_")[2] for i in ids])
    assembly = xr.DataArray(values.astype(np.float32 if kind == "fz" else np.float64),
                            dims=("presentation", "neuroid", "time_bin"),
                            coords={**presentation, **neuroid, **bins})
    write_assembly(assembly, folder / s3_file_name(identifier, "nc"))
