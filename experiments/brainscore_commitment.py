"""Brain-Score vision 2.4.2's own layer commitment, as an oracle for jaxbrain's.

Two steps, in one folder (Brain-Score pins numpy < 2 and xarray 2022.3, so it lives in its own
virtual environment and is never imported by jaxbrain):

    .venv/bin/python -m experiments.brainscore_commitment make DIR [real] # fixture (jaxbrain venv)
    python3 -m venv /tmp/bsenv && BS_INSTALL_DEPENDENCIES=no /tmp/bsenv/bin/pip install \\
        torch==2.13.0 torchvision==0.28.0 brainscore-vision                # once
    BS_INSTALL_DEPENDENCIES=no RESULTCACHING_DISABLE=1 MT_MULTITHREAD=0 /tmp/bsenv/bin/python \\
        -m experiments.brainscore_commitment brainscore DIR [V1 V2 V4 IT] [from=LAYER]

``make DIR`` writes the small fixture described below (ResNet-18); ``make DIR real`` the same
kinds of files at the real sets' sizes (``SIZES["real"]``: ResNet-50 with Brain-Score's 18
candidates, 3200 + 2560 HvM-like and 135 + 315 FreemanZiemba-like images, the real numbers of
sites) for the speed and memory bars. ``from=LAYER`` (``brainscore`` and ``compare``) keeps
the candidates from LAYER on. ``memory DIR`` measures jaxbrain's final scoring of the widest
candidate on the 3200 hvm-public stimuli (``DIR/memory.json``).

``make`` writes, under DIR:

* ``resnet18.pth`` — a torchvision ResNet-18 state dict (plain tensors, loads with
  ``weights_only=True``): torchvision's own random initialisation under ``torch.manual_seed(0)``,
  batch-norm affine parameters perturbed, then every batch-norm's running statistics re-estimated
  (cumulative average, ``momentum=None``) over the first 256 reference images, so the statistics
  are non-trivial and the network stays well conditioned;
* ``reference/ref0000.png`` … — 1000 "natural-looking" random images (1/f colour noise with
  textured blobs, 192-320 px, not square), standing in for the 1000 ImageNet validation images
  that Brain-Score's ``LayerPCA`` fits its PCA on;
* ``data/`` — the files exactly as Brain-Score's S3 names them (``assy_<identifier>.nc``,
  ``stimulus_<identifier>.csv|.zip``; see DESIGN.md §7):
  ``dicarlo.MajajHong2015.{public,private}`` with ``hvm-{public,private}`` (320 images of 16
  objects in 4 categories, 160 public / 160 private, 256 px at 8°; V4 and IT sites, one
  70-170 ms bin, 6 repetitions) and ``movshon.FreemanZiemba2013.{public,private}`` with
  ``FreemanZiemba2013.aperture-{public,private}`` (90 + 90 grey-scale 320 px texture/noise images
  of 9 families, at 4°; V1 and V2 sites, 1 ms bins from 40 to 220 ms, 6 repetitions).

Each region's sites are a noisy linear read-out of a different layer of the same network, computed
in torch on the images as Brain-Score feeds them (placed at the model's 8°, resized to 224 px,
ImageNet mean/std): V1 <- layer1, V2 <- layer2, V4 <- layer3, IT <- layer4 (a random channel
mix pooled over a Gaussian receptive field), z-scored, plus trial noise (and per-bin noise for
FreemanZiemba).

``compare`` (jaxbrain's venv) runs jaxbrain's sweep in the same protocol on the same files
(a user catalog names the fixture's files in place of Brain-Score's, by the same identifiers;
``resnet18=DIR/resnet18.pth`` with the same candidate layers; LayerPCA(1000) on
``DIR/reference``) and prints, per region, the committed layers and the differences of every
selection score and of the final raw, ceiling and ceiled scores (``DIR/comparison.json``):

    .venv/bin/python -m experiments.brainscore_commitment compare DIR

``brainscore`` runs Brain-Score's own objects end to end — the registered benchmarks
(``FreemanZiemba2013public.V1-pls`` … ``MajajHong2015.IT-pls``) on these local files, a
``PytorchWrapper`` of torchvision's resnet18 with the fixture weights, ``ModelCommitment`` with
its ``LayerSelection`` + ``LayerPCA`` — and writes ``DIR/brainscore_commitment.json``.  The
monkeypatches it needs are listed in that file (``monkeypatches``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from experiments.standins import (
    DATASETS,
    FZ_BINS,
    FZ_WINDOW,
    fz_families,
    fz_image,
    hvm_image,
    hvm_objects,
    local_catalog,
    reference_image,
    s3_file_name,
    stimulus_id,
    write_recordings,
    write_stimulus_set,
)

MODEL_DEGREES = 8
IMAGE_SIZE = 224
N_REFERENCE = 1000  # Brain-Score's LayerPCA uses exactly n_components (1000) reference images
N_RECALIBRATE = 256
REPETITIONS = 6
# Two fixture sizes. "small": ResNet-18 with 5 candidates; 16 HvM objects x 10 images per
# access (MajajHong2015's 10% test split, 16 images, needs one per object) and 9 FZ families
# x 2 types x 5 samples per access. "real": the real sets' sizes: ResNet-50 with Brain-Score's
# 18 candidates, 64 HvM objects x 50 public / 40 private images (3200 + 2560), 15 FZ families x
# 2 types x 15 samples split 135 public / 315 private, and the real numbers of sites.
SIZES = {
    "small": {"arch": "resnet18", "hvm_objects": 16, "hvm_per_object": (10, 10),
              "hvm_categories": ["animals", "cars", "chairs", "faces"],
              "fz_families": [13, 18, 23, 30, 38, 48, 52, 56, 60], "fz_samples": 10,
              "sites": {"V1": 40, "V2": 40, "V4": 40, "IT": 48},
              "candidates": ["layer1", "layer2", "layer3", "layer4", "avgpool"]},
    "real": {"arch": "resnet50", "hvm_objects": 64, "hvm_per_object": (50, 40),
             "hvm_categories": ["animals", "boats", "cars", "chairs", "faces", "fruits",
                                "planes", "tables"],
             "fz_families": [13, 18, 23, 30, 38, 48, 52, 56, 60, 71, 99, 327, 336, 393, 402],
             "fz_samples": 15, "sites": {"V1": 102, "V2": 103, "V4": 88, "IT": 168},
             "candidates": ["conv1"] + [f"layer{b}.{i}" for b, n in ((1, 3), (2, 4), (3, 6),
                                                                      (4, 3)) for i in range(n)]
                           + ["avgpool"]},
}
# region: (source layer, data set, Gaussian RF sigma in feature-map units)
REGIONS = {
    "V1": ("layer1", "fz", 1.5),
    "V2": ("layer2", "fz", 1.2),
    "V4": ("layer3", "hvm", 1.0),
    "IT": ("layer4", "hvm", 1.5),
}


def _fz_public(size: str, texture_type: str, sample: int) -> bool:
    """Which FreemanZiemba samples are public: 1-5 of 10 (small); 1-4, and 5 of the
    textures, of 15 (real: 135 of 450)."""
    if size == "small":
        return sample <= 5
    return sample <= 4 or (sample == 5 and texture_type == "texture")


# Host memory for fitting PCAs at once, by both tools (jaxbrain's extraction_memory_gb and the
# groups the Brain-Score run is given); sized for this 24 GiB machine.
REFERENCE_BUDGET_BYTES = 8 << 30


def reference_groups(layers: list[str], features: dict[str, int]) -> list[list[str]]:
    """The candidates grouped as jaxbrain's extraction groups them for PCA fitting (one pass
    over the reference images per group), written to fixture.json for the Brain-Score run."""
    from jaxbrain.features.extract import group_layers, pca_cost

    return group_layers(layers, features, lambda dim: pca_cost(dim, N_REFERENCE, N_REFERENCE),
                        REFERENCE_BUDGET_BYTES)


def _fixture(folder: Path) -> dict:
    manifest = json.loads((folder / "fixture.json").read_text())
    return {**SIZES[manifest.get("size", "small")], "size": manifest.get("size", "small")}


def _options(rest) -> tuple[list[str], str | None]:
    """Regions and an optional ``from=LAYER``: only the candidates from LAYER on (Brain-Score's
    LayerPCA cannot fit ResNet-50's 802,816-feature layers in 24 GiB, see BUILD_NOTES)."""
    regions = [r for r in rest if not r.startswith("from=")]
    first = next((r.split("=", 1)[1] for r in rest if r.startswith("from=")), None)
    return regions, first


def _candidates(fixture: dict, first: str | None) -> list[str]:
    layers = fixture["candidates"]
    return layers if first is None else layers[layers.index(first):]
FINAL_BENCHMARKS = {"V1": "FreemanZiemba2013.V1-pls", "V2": "FreemanZiemba2013.V2-pls",
                    "V4": "MajajHong2015.V4-pls", "IT": "MajajHong2015.IT-pls"}
SELECTION_BENCHMARKS = {"V1": "FreemanZiemba2013public.V1-pls",
                        "V2": "FreemanZiemba2013public.V2-pls",
                        "V4": "MajajHong2015public.V4-pls", "IT": "MajajHong2015public.IT-pls"}
def _brainscore_input(image, degrees, torch_vision):
    """The model input Brain-Score builds from one image: ``place_on_screen`` (paste centred on
    PIL 'gray' when the stimulus spans fewer degrees than the model), PIL RGB conversion,
    ``Resize((224, 224))``, ``ToTensor``, ImageNet ``Normalize`` — the same torchvision calls."""
    import numpy as np
    from PIL import Image

    pil = Image.fromarray(image)
    if pil.mode != "RGB":
        rgb = Image.new("RGB", pil.size)
        rgb.paste(pil)
        pil = rgb
    ratio = MODEL_DEGREES / degrees
    if ratio != 1:
        size = np.array(pil.size)
        target = (ratio * size).round().astype(int)
        canvas = Image.new("RGB", tuple(target), "gray")
        canvas.paste(pil, tuple(((target - size) / 2).round().astype(int)))
        pil = canvas
    transforms = torch_vision.transforms
    return transforms.Compose([
        transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)), transforms.ToTensor(),
        transforms.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    ])(pil)


def _features(model, inputs, torch, layers, batch=64):
    """Layer outputs (forward hooks, as Brain-Score's PytorchWrapper), numpy float32; ``inputs``
    is a list of input tensors or a callable giving batch ``[start, stop)``."""
    import numpy as np

    out = {name: [] for name in layers}
    hooks = [model.get_submodule(name).register_forward_hook(
        lambda _m, _i, o, name=name: out[name].append(o.detach().numpy())) for name in layers]
    model.eval()
    with torch.no_grad():
        for start in range(0, len(inputs), batch):
            model(torch.stack(inputs[start:start + batch]))
    for hook in hooks:
        hook.remove()
    return {name: np.concatenate(v) for name, v in out.items()}


def _make_weights(folder: Path, arch: str, reference_inputs, torch, torch_vision):
    torch.manual_seed(0)
    model = getattr(torch_vision.models, arch)(weights=None)
    generator = torch.Generator().manual_seed(1)
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in batch_norms:
            bn.weight.copy_(0.6 + 0.8 * torch.rand(bn.weight.shape, generator=generator))
            bn.bias.copy_(0.1 * torch.randn(bn.bias.shape, generator=generator))
            bn.reset_running_stats()
            bn.momentum = None  # cumulative moving average over the calibration batches
        model.train()
        for start in range(0, N_RECALIBRATE, 64):
            model(torch.stack(reference_inputs[start:start + 64]))
    for bn in batch_norms:
        bn.momentum = 0.1
    model.eval()
    torch.save(model.state_dict(), folder / f"{arch}.pth")
    return model


def _site_readouts(rng, shape, n_sites, sigma, centre_range):
    """Per site: a Gaussian receptive field, a random channel subset and its weights."""
    import numpy as np

    c, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    lo, hi = centre_range
    readouts = []
    for _ in range(n_sites):
        cy, cx = rng.uniform(lo * h, hi * h), rng.uniform(lo * w, hi * w)
        rf = np.exp(-0.5 * ((yy - cy) ** 2 + (xx - cx) ** 2) / sigma**2)
        channels = rng.choice(c, size=min(c, 24), replace=False)
        readouts.append((rf, channels, rng.standard_normal(len(channels))))
    return readouts


def _site_responses(features, readouts):
    """Noise-free responses (not yet z-scored) of the sites to a batch of feature maps."""
    import numpy as np

    return np.stack([np.einsum("nchw,hw->nc", features[:, channels].astype(np.float64), rf)
                     @ weights for rf, channels, weights in readouts], axis=1)


def make(folder: Path, size: str = "small") -> None:
    import numpy as np
    from PIL import Image

    from experiments.torch_oracle import import_torchvision

    torch, torch_vision = import_torchvision()
    torch.set_num_threads(os.cpu_count() or 1)
    config = SIZES[size]
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    data = folder / "data"
    (folder / "reference").mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)

    reference_inputs = []
    for index in range(N_REFERENCE):
        image = reference_image(rng)
        Image.fromarray(image).save(folder / "reference" / f"ref{index:04d}.png")
        if index < N_RECALIBRATE:
            reference_inputs.append(_brainscore_input(image, MODEL_DEGREES, torch_vision))
    print(f"reference images: {time.perf_counter() - start:.1f} s", flush=True)
    model = _make_weights(folder, config["arch"], reference_inputs, torch, torch_vision)
    candidate_features = {name: int(np.prod(v.shape[1:])) for name, v in _features(
        model, reference_inputs[:1], torch, config["candidates"]).items()}

    # stimuli
    objects = hvm_objects(rng, config["hvm_objects"])
    categories = config["hvm_categories"]
    per_category = config["hvm_objects"] // len(categories)
    n_public, n_private = config["hvm_per_object"]
    family_ids = config["fz_families"]
    families = fz_families(rng, len(family_ids))
    stimuli = {}  # (kind, access) -> rows, images
    for access, variation in (("public", 3), ("private", 6)):
        rows, images = [], []
        for o, obj in enumerate(objects):
            for k in range(n_public if access == "public" else n_private):
                index = o * (n_public + n_private) + k + (n_public if access == "private"
                                                          else 0)
                sid = stimulus_id("hvm", index)
                rows.append({"stimulus_id": sid, "filename": f"{sid}.png",
                             "object_name": f"obj{o:02d}",
                             "category_name": categories[o // per_category],
                             "variation": variation, "image_index": index})
                images.append(hvm_image(rng, obj))
        stimuli["hvm", access] = rows, images
        rows, images = [], []
        for f, family in enumerate(families):
            for texture_type in ("noise", "texture"):
                for sample_id in range(1, config["fz_samples"] + 1):
                    if _fz_public(size, texture_type, sample_id) != (access == "public"):
                        continue
                    sid = stimulus_id("fz", f * 100 + (texture_type == "texture") * 50
                                       + sample_id)
                    prefix = "noise" if texture_type == "noise" else "tex"
                    rows.append({"stimulus_id": sid,
                                 "filename": f"{prefix}-320x320-im{family_ids[f]}-smp{sample_id}"
                                             ".png",
                                 "texture_family": family_ids[f], "texture_type": texture_type,
                                 "sample": sample_id, "resolution": "320x320"})
                    images.append(fz_image(rng, family, texture_type))
        stimuli["fz", access] = rows, images
    for kind, spec in DATASETS.items():
        for access, identifier in zip(("public", "private"), spec["stimuli"], strict=True):
            write_stimulus_set(data, identifier, *stimuli[kind, access])
    print(f"stimuli: {time.perf_counter() - start:.1f} s", flush=True)

    # sites: read-outs drawn per region, responses computed batch by batch on both splits
    # together (so the z-scoring is shared)
    shapes = {name: v.shape[1:] for name, v in _features(
        model, reference_inputs[:1], torch, ["layer1", "layer2", "layer3", "layer4"]).items()}
    readouts = {}
    for region, (layer, kind, sigma) in REGIONS.items():
        # FreemanZiemba images fill the central half of the model's field (4° of 8°)
        centre = (0.32, 0.68) if kind == "fz" else (0.25, 0.75)
        readouts[region] = _site_readouts(rng, shapes[layer], config["sites"][region], sigma,
                                          centre)
    signals = {region: [] for region in REGIONS}
    for kind, spec in DATASETS.items():
        images = [image for access in ("public", "private") for image in stimuli[kind, access][1]]
        regions = [r for r, v in REGIONS.items() if v[1] == kind]
        for batch in range(0, len(images), 64):
            inputs = [_brainscore_input(image, spec["degrees"], torch_vision)
                      for image in images[batch:batch + 64]]
            features = _features(model, inputs, torch, [REGIONS[r][0] for r in regions])
            for region in regions:
                signals[region].append(_site_responses(features[REGIONS[region][0]],
                                                       readouts[region]))
    print(f"features: {time.perf_counter() - start:.1f} s", flush=True)
    for region, parts in signals.items():
        responses = np.concatenate(parts)
        signals[region] = (responses - responses.mean(0)) / responses.std(0)

    for kind, spec in DATASETS.items():
        regions = [r for r, v in REGIONS.items() if v[1] == kind]
        signal = np.concatenate([signals[r] for r in regions], 1)  # (2n, sites)
        region_of_site = np.concatenate([[r] * config["sites"][r] for r in regions])
        n_sites = signal.shape[1]
        gain, baseline = rng.uniform(3, 8, n_sites), rng.uniform(5, 20, n_sites)
        noise_sd = rng.uniform(0.8, 2.0, n_sites)  # in units of the signal's sd
        n_first = len(stimuli[kind, "public"][0])
        for access, identifier in zip(("public", "private"), spec["assembly"], strict=True):
            part = signal[:n_first] if access == "public" else signal[n_first:]
            write_recordings(data, kind, identifier, stimuli[kind, access][0], part,
                             region_of_site, gain, baseline, noise_sd, rng, REPETITIONS)
    arch = config["arch"]
    manifest = {
        "size": size,
        "weights": f"{arch}.pth: torchvision {arch}, torch.manual_seed(0) init; BN weight "
                   "~U(0.6,1.4), bias ~N(0,0.1^2) (torch.Generator seed 1); BN running stats "
                   f"re-estimated (momentum=None) on reference images 0..{N_RECALIBRATE - 1}",
        "reference_images": N_REFERENCE,
        "candidate_features": candidate_features,
        "reference_groups": reference_groups(config["candidates"], candidate_features),
        "stimuli": {f"{kind}-{access}": len(rows) for (kind, access), (rows, _) in
                    stimuli.items()},
        "regions": {r: {"source_layer": v[0], "dataset": v[1], "sites": config["sites"][r],
                        "rf_sigma": v[2]} for r, v in REGIONS.items()},
        "repetitions": REPETITIONS, "fz_bins_written": list(FZ_BINS),
        "fz_window": list(FZ_WINDOW),
        "datasets": DATASETS,
    }
    (folder / "fixture.json").write_text(json.dumps(manifest, indent=1))
    print(f"wrote fixture under {folder} in {time.perf_counter() - start:.1f} s")


# -------------------------------------------------------------------------------- Brain-Score
def brainscore(folder: Path, rest=()) -> None:
    """Runs inside Brain-Score's environment."""
    regions, first = _options(rest)
    folder = folder.resolve()
    os.environ.setdefault("BRAINSCORE_HOME", str(folder / "brainscore_home"))
    os.environ.setdefault("RESULTCACHING_DISABLE", "1")
    os.environ.setdefault("BS_INSTALL_DEPENDENCIES", "no")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from experiments.torch_oracle import import_torchvision

    torch, torch_vision = import_torchvision()
    import functools
    from importlib.metadata import version

    import brainscore_core.supported_data_standards.brainio.s3 as brainio_s3
    import brainscore_vision
    import brainscore_vision.model_helpers.activations.pca as pca_module
    import numpy as np
    from brainscore_vision import load_benchmark
    from brainscore_vision.benchmark_helpers.neural_common import NeuralBenchmark
    from brainscore_vision.model_helpers.activations.pytorch import (
        PytorchWrapper,
        load_preprocess_images,
    )
    from brainscore_vision.model_helpers.brain_transformation import ModelCommitment
    from brainscore_vision.model_helpers.brain_transformation.neural import LayerScores

    started = time.perf_counter()
    patches = []

    # 1. data: every S3 fetch resolves to the fixture's identically named local file
    original_get_path = brainio_s3.get_path

    def local_get_path(identifier, file_type, bucket, version_id, sha1, filename_prefix=None,
                       folder_name=None):
        name = f"{filename_prefix}{identifier.replace('.', '_')}.{file_type}" \
            if filename_prefix is not None else s3_file_name(identifier, file_type)
        path = folder / "data" / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not in the fixture (Brain-Score asked for "
                                    f"{identifier} .{file_type})")
        return str(path)

    brainio_s3.get_path = local_get_path
    patches.append({
        "target": "brainscore_core.supported_data_standards.brainio.s3.get_path",
        "original": f"{original_get_path.__module__}.{original_get_path.__qualname__}",
        "why": "the data plugins' load_assembly_from_s3 / load_stimulus_set_from_s3 call it to "
               "download a file from S3 and verify its sha1; replaced by a function returning "
               "DIR/data/<the same file name> (no download, no sha1 check). Everything after "
               "the fetch (unzip, StimulusSetLoader, StimulusMergeAssemblyLoader, the benchmark "
               "classes' load_assembly) is Brain-Score's own code.",
    })

    # 2. LayerPCA's reference images: the local folder instead of ImageNet validation from S3
    reference = sorted((folder / "reference").glob("*.png"))

    def local_imagenet_val(num_images):
        if num_images > len(reference):
            raise ValueError(f"LayerPCA asks for {num_images} images, the fixture has "
                             f"{len(reference)}")
        return [str(p) for p in reference[:num_images]]

    pca_module._get_imagenet_val = local_imagenet_val
    patches.append({
        "target": "brainscore_vision.model_helpers.activations.pca._get_imagenet_val",
        "why": "LayerPCA._pcas calls _get_imagenet_val(num_images=n_components) for its PCA "
               "reference images (1000 ImageNet validation images, one per class: indices "
               "50*i of imagenet2012-val.hdf5 downloaded from S3); replaced by the first "
               "num_images files of DIR/reference (sorted by name), same count.",
    })

    # 3. recording only (no change in behaviour): every NeuralBenchmark call and LayerScores
    records = []
    original_benchmark_call = NeuralBenchmark.__call__

    def recorded_benchmark_call(self, candidate):
        t0 = time.perf_counter()
        score = original_benchmark_call(self, candidate)
        raw = score.attrs["raw"]
        records.append({
            "benchmark": self.identifier, "ceiled": float(score.values),
            "raw": float(raw.values), "error": float(raw.attrs["error"]),
            "ceiling": float(score.attrs["ceiling"].values),
            "per_split": raw.attrs["raw"].median("neuroid").values.tolist()
            if "raw" in raw.attrs and "split" in raw.attrs["raw"].dims else None,
            "seconds": time.perf_counter() - t0,
        })
        print(f"{self.identifier}: ceiled {float(score.values):.6f} raw {float(raw.values):.6f}"
              f" ({records[-1]['seconds']:.1f} s)", flush=True)
        return score

    NeuralBenchmark.__call__ = recorded_benchmark_call
    layer_score_calls = []
    original_layer_scores = LayerScores.__call__

    def recorded_layer_scores(self, benchmark, layers, benchmark_identifier=None, prerun=False):
        first = len(records)
        t0 = time.perf_counter()
        scores = original_layer_scores(self, benchmark, layers,
                                       benchmark_identifier=benchmark_identifier, prerun=prerun)
        layer_score_calls.append({
            "selection_identifier": benchmark_identifier, "benchmark": benchmark.identifier,
            "layers": list(layers), "model_identifier": self._activations_model.identifier,
            "ceiled": {str(layer): float(scores.sel(layer=layer).values)
                       for layer in scores["layer"].values},
            "records": records[first:], "seconds": time.perf_counter() - t0,
        })
        return scores

    LayerScores.__call__ = recorded_layer_scores
    patches.append({
        "target": "NeuralBenchmark.__call__, LayerScores.__call__ (brainscore_vision)",
        "why": "recording wrappers only: call the original and keep the returned scores "
               "(ceiled, raw, error, ceiling) and the candidate layers; values unchanged.",
    })

    # 4. memory only: LayerPCA fits its PCAs on all candidates' reference activations at once
    # (1000 images x 6.3M features for ResNet-50's 18 candidates: 25 GB). Call it on groups of
    # candidates whose activations fit, in forward order, as jaxbrain groups its own fits.
    fixture = _fixture(folder)
    groups = json.loads((folder / "fixture.json").read_text())["reference_groups"]
    original_pcas = pca_module.LayerPCA._pcas

    def grouped_pcas(self, identifier, layers, n_components):
        fitted = {}
        for group in groups:
            wanted = [layer for layer in group if layer in layers]
            if wanted:
                fitted.update(original_pcas(self, identifier=identifier, layers=wanted,
                                            n_components=n_components))
        return fitted

    pca_module.LayerPCA._pcas = grouped_pcas
    patches.append({
        "target": "brainscore_vision.model_helpers.activations.pca.LayerPCA._pcas",
        "why": "memory only: the original is called once per group of candidate layers "
               "(jaxbrain's extraction groups, reference_groups: activations + components "
               f"<= {REFERENCE_BUDGET_BYTES / 2**30:.0f} GiB) instead of once for all; "
               "each group costs one more pass over the reference images. Same PCAs "
               "(fitted per layer either way).",
        "groups": groups,
    })

    # the model: torchvision weights from the fixture, Brain-Score's standard preprocessing
    arch = fixture["arch"]
    candidates = _candidates(fixture, first)
    model = getattr(torch_vision.models, arch)(weights=None)
    model.load_state_dict(torch.load(folder / f"{arch}.pth", weights_only=True))
    identifier = f"jaxbrain-fixture-{arch}"
    preprocessing = functools.partial(load_preprocess_images, image_size=IMAGE_SIZE)
    wrapper = PytorchWrapper(identifier=identifier, model=model, preprocessing=preprocessing)
    wrapper.image_size = IMAGE_SIZE
    commitment = ModelCommitment(identifier=identifier, activations_model=wrapper,
                                 layers=candidates, visual_degrees=MODEL_DEGREES)
    region_layer_map = commitment.layer_model.region_layer_map  # TemporalAligned's RegionLayerMap

    result = {"regions": {}, "candidate_layers": candidates, "monkeypatches": patches,
              "model": {"identifier": identifier, "weights": f"{arch}.pth",
                        "architecture": f"torchvision.models.{arch}",
                        "preprocessing": f"load_preprocess_images(image_size={IMAGE_SIZE}) "
                                         "(Resize((224,224)), ToTensor, ImageNet Normalize)",
                        "visual_degrees": MODEL_DEGREES},
              "versions": {name: version(name) for name in (
                  "brainscore_vision", "brainscore_core", "torch", "torchvision", "numpy",
                  "xarray", "scikit-learn", "pandas", "scipy")},
              "environment": {k: os.environ.get(k) for k in (
                  "RESULTCACHING_DISABLE", "BS_INSTALL_DEPENDENCIES", "BRAINSCORE_HOME",
                  "MT_MULTITHREAD")},
              "timings": {}, "complete": False, "notes": _notes(),
              "brainscore_vision_path": str(Path(brainscore_vision.__file__).parent)}
    out = folder / "brainscore_commitment.json"  # rewritten after every region
    chosen = [r for r in FINAL_BENCHMARKS if not regions or r in regions]
    for region in chosen:
        final_name = FINAL_BENCHMARKS[region]
        t0 = time.perf_counter()
        benchmark = load_benchmark(final_name)
        score = benchmark(commitment)  # commits the region on first use (LayerSelection)
        seconds = time.perf_counter() - t0
        selection = next(c for c in layer_score_calls if c["selection_identifier"] == region)
        final = records[-1]
        assert final["benchmark"] == benchmark.identifier, (final, benchmark.identifier)
        result["regions"][region] = {
            "committed_layer": str(region_layer_map[region]),
            "selection_benchmark": SELECTION_BENCHMARKS[region],
            "selection_benchmark_identifier": selection["benchmark"],
            "selection_scores_ceiled": selection["ceiled"],
            "selection_details": {rec_layer: rec for rec_layer, rec in
                                  zip(selection["layers"], selection["records"], strict=True)},
            "selection_seconds": selection["seconds"],
            "final_benchmark": final_name,
            "final_benchmark_identifier": benchmark.identifier,
            "final": {k: final[k] for k in ("raw", "error", "ceiling", "ceiled", "per_split")},
            "final_ceiled_score_value": float(score.values),
            "seconds_total": seconds,
        }
        result["timings"][region] = seconds
        print(f"{region}: committed {region_layer_map[region]}, final ceiled "
              f"{float(score.values):.6f} ({seconds:.1f} s)", flush=True)
        result["timings"]["total"] = time.perf_counter() - started
        result["complete"] = region == chosen[-1]
        out.write_text(json.dumps(result, indent=1, default=lambda o: np.asarray(o).tolist()))
    print(f"wrote {out} in {result['timings']['total']:.1f} s")


def _notes() -> dict:
    return {
        "selection_pca": "LayerSelection hooks LayerPCA(n_components=1000) for selection only; "
                         "PCA(1000, random_state=0) fitted per layer on the activations of the "
                         "1000 reference images (from paths: no place_on_screen), layers of "
                         "<= 1000 features (avgpool, 512) left as they are. The hook is "
                         "removed after each region's selection, so with result caching "
                         "disabled the PCAs are refitted for every region.",
        "final_scoring": "final benchmarks score the committed layer's unreduced activations",
        "ceiled": "explained_variance: raw^2 / ceiling (benchmark version 3/4 convention)",
        "layer_choice": "argmax of the ceiled selection scores",
    }


_BENCHMARKS = {"V1": ("FreemanZiemba2013public.V1-pls", "FreemanZiemba2013.V1-pls"),
               "V2": ("FreemanZiemba2013public.V2-pls", "FreemanZiemba2013.V2-pls"),
               "V4": ("MajajHong2015public.V4-pls", "MajajHong2015.V4-pls"),
               "IT": ("MajajHong2015public.IT-pls", "MajajHong2015.IT-pls")}


def compare(folder: Path, rest=()) -> None:
    """jaxbrain's protocol on the fixture, against ``brainscore_commitment.json``."""
    import pandas as pd

    regions, first = _options(rest)
    theirs = json.loads((folder / "brainscore_commitment.json").read_text())
    os.environ["JAXBRAIN_CATALOG"] = str(local_catalog(folder))
    from jaxbrain.engine.store import ResultsStore
    from jaxbrain.engine.sweep import SweepSpec, run_sweep

    fixture = _fixture(folder)
    arch = fixture["arch"]
    model = f"{arch}={folder / f'{arch}.pth'}"
    regions = [r for r in _BENCHMARKS if r in theirs["regions"] and (not regions or r in regions)]
    out = folder / ("jaxbrain" if first is None else f"jaxbrain-from-{first}")
    spec = SweepSpec(models=(model,), output_dir=str(out),
                     benchmarks=tuple(b for r in regions for b in _BENCHMARKS[r]),
                     protocol="brainscore", pca_components=N_REFERENCE,
                     reference_dir=str(folder / "reference"),
                     candidates=((model, tuple(_candidates(fixture, first))),), cka=False,
                     extraction_memory_gb=REFERENCE_BUDGET_BYTES / 2**30)
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    run_sweep(spec)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = {"user": after.ru_utime - before.ru_utime, "system": after.ru_stime - before.ru_stime,
           "peak_rss_gib": after.ru_maxrss / 2**20}
    rows = ResultsStore(Path(spec.output_dir) / "results").rows()
    pca = rows["reduction"].str.contains('"method":"pca"', regex=False)
    report = {"seconds": seconds, "cpu_seconds": cpu, "regions": {}}
    for region in regions:
        selection, final = _BENCHMARKS[region]
        ref = theirs["regions"][region]
        chosen = rows[pca & (rows["benchmark"] == selection)].set_index("layer")
        ours_final = rows[~pca & (rows["benchmark"] == final)].iloc[0]
        differences = {layer: float(chosen.loc[layer, "ceiled"]) - value
                       for layer, value in ref["selection_scores_ceiled"].items()}
        entry = {
            "committed": {"jaxbrain": str(ours_final["layer"]),
                          "brainscore": ref["committed_layer"]},
            "selection_ceiled_difference": differences,
            "final": {key: {"jaxbrain": float(ours_final[key]),
                            "brainscore": float(ref["final"][key]),
                            "difference": float(ours_final[key]) - float(ref["final"][key])}
                      for key in ("raw", "error", "ceiling", "ceiled")},
        }
        report["regions"][region] = entry
        worst = max(abs(v) for v in differences.values())
        print(f"{region}: committed {entry['committed']['jaxbrain']} (Brain-Score "
              f"{entry['committed']['brainscore']}); selection |diff| max {worst:.1e}; final "
              + ", ".join(f"{k} {v['jaxbrain']:.6f} vs {v['brainscore']:.6f}"
                          for k, v in entry["final"].items()))
    report["brainscore_seconds"] = theirs.get("timings")
    (out / "comparison.json").write_text(json.dumps(report, indent=1))
    print(f"jaxbrain: {seconds:.0f} s for {len(regions)} regions; table: "
          f"{out / 'comparison.json'}; rows: {len(pd.unique(rows['unit_key']))}")


MEMORY_BENCHMARK = "MajajHong2015public.IT-pls"  # 3200 stimuli (hvm-public)


def memory(folder: Path, rest=()) -> None:
    """The memory bar: jaxbrain's final (unreduced) scoring of the fixture model's widest
    candidate on the 3200 hvm-public stimuli. The layer is extracted unreduced through the bank
    cache here; a fresh process then scores it, and its peak resident memory (``ru_maxrss``,
    imports and the prepared benchmark included) is the figure (``DIR/memory.json``)."""
    import subprocess

    import numpy as np

    os.environ["JAXBRAIN_CATALOG"] = str(local_catalog(folder))
    from jaxbrain.benchmarks import load
    from jaxbrain.engine.inputs import load_stimuli, resolve_model
    from jaxbrain.features import NoReduction, extract_cached, prepare_images
    from jaxbrain.features.stimuli import model_preprocessing, preprocessing_key

    fixture = _fixture(folder)
    features = json.loads((folder / "fixture.json").read_text())["candidate_features"]
    layer = max(fixture["candidates"], key=lambda name: features[name])
    benchmark = load(MEMORY_BENCHMARK)
    model = resolve_model(f"{fixture['arch']}={folder / (fixture['arch'] + '.pth')}")
    stimuli = load_stimuli(benchmark.stimulus_set, None, benchmark.visual_degrees)
    options = model_preprocessing(model, stimuli.degrees)
    start = time.perf_counter()
    bank = extract_cached(model, prepare_images(stimuli.images, **options), stimuli.ids,
                          cache_dir=folder / "memory_cache", taps=[layer],
                          reduction=NoReduction(), preprocessing=preprocessing_key(**options))
    extraction = time.perf_counter() - start
    shape = bank.layers[layer].shape
    del bank
    out = subprocess.run([sys.executable, "-m", "experiments.brainscore_commitment",
                          "memory-score", str(folder), layer], check=True,
                         capture_output=True, text=True).stdout
    scored = json.loads(out.strip().splitlines()[-1])
    report = {"benchmark": MEMORY_BENCHMARK, "layer": layer, "shape": list(shape),
              "bank_gib": float(np.prod(shape)) * 4 / 2**30,
              "extraction_seconds": extraction, **scored}
    (folder / "memory.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


def _memory_score(folder: Path, rest) -> None:
    """In a fresh process: score the cached bank, print peak memory and time as JSON."""
    import resource

    os.environ["JAXBRAIN_CATALOG"] = str(local_catalog(folder))
    from jaxbrain.benchmarks import load
    from jaxbrain.features import load as load_bank

    (layer,) = rest
    cache = folder / "memory_cache"
    (key,) = [p.name for p in cache.iterdir() if not p.name.startswith(".")]
    benchmark = load(MEMORY_BENCHMARK)
    prepared = benchmark.prepare({})
    bank = load_bank(cache, key)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    start = time.perf_counter()
    (scored,) = benchmark.score(prepared, {layer: bank.layers[layer]}, bank.stimulus_ids)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"scoring_seconds": seconds, "peak_rss_gib": peak,
                      "peak_rss_before_scoring_gib": before, "raw": scored.fields.get("raw"),
                      "status": scored.fields.get("status")}))


if __name__ == "__main__":
    step, target, *rest = sys.argv[1:]
    if step == "make":
        make(Path(target), *rest)
    else:
        {"brainscore": brainscore, "compare": compare, "memory": memory,
         "memory-score": _memory_score}[step](Path(target), rest)
