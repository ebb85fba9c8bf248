"""Check jaxbrain's import of the ResNet-152 inside ResMem's checkpoint against torchvision.

ResMem (``pip download --no-deps resmem==1.1.6``; the wheel holds ``resmem/model.pt``) keeps a
torchvision ResNet-152 with its ImageNet classifier under ``features.`` beside its own AlexNet-like
memorability branch (``conv1``..``fc12``). The ResNet's batch-norm statistics were re-estimated on
inputs in [0, 1], so it classifies photos only when they are fed WITHOUT ImageNet mean/std
normalisation. This script imports the ``features.*`` tensors twice, with
``jaxbrain.models.from_torchvision("resnet152", path, prefix="features.")`` and into torchvision's
``resnet152`` (read independently with ``torch.load``), runs both on the photos that installed
packages ship (scikit-learn's china/flower, matplotlib's grace_hopper, and scikit-image's
chelsea/coffee/astronaut when it is importable, e.g. from ``PYTHONPATH``), resized to 256 and
centre-cropped to 224, and prints each photo's top-5 ImageNet classes from both and the largest
relative logit difference. It exits 1 if the two disagree on any top-1 class.

    .venv/bin/python experiments/resmem_check.py --model_pt /tmp/resmem/model.pt

Not part of the test suite: it needs the 528 MB checkpoint, which is not shipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from experiments.torch_oracle import import_torchvision


def _photos() -> dict[str, Image.Image]:
    """Real photographs shipped inside installed packages, by name."""
    from sklearn.datasets import load_sample_images

    sample = load_sample_images()
    photos = {
        Path(name).name: Image.fromarray(image)
        for name, image in zip(sample.filenames, sample.images, strict=True)
    }
    if importlib.util.find_spec("matplotlib") is not None:
        from matplotlib import cbook

        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        photos["grace_hopper.jpg"] = Image.open(path).convert("RGB")
    skimage = importlib.util.find_spec("skimage")
    if skimage is not None:  # its bundled PNGs, read directly (skimage.io needs more packages)
        data = Path(next(iter(skimage.submodule_search_locations))) / "data"
        for name in ("chelsea.png", "coffee.png", "astronaut.png"):
            if (data / name).is_file():
                photos[name] = Image.open(data / name).convert("RGB")
    return photos


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_pt", required=True, type=Path, help="ResMem's model.pt")
    parser.add_argument("--prefix", default="features.", help="key prefix of the ResNet-152")
    parser.add_argument("--imagenet_norm", action="store_true",
                        help="also apply ImageNet mean/std (wrong for this checkpoint)")
    args = parser.parse_args(argv)
    start = time.perf_counter()

    torch, tv = import_torchvision()
    from torchvision import transforms

    import jaxbrain
    from jaxbrain.models import from_torchvision

    steps = [transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()]
    if args.imagenet_norm:
        steps.append(transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    preprocess = transforms.Compose(steps)
    photos = _photos()
    nchw = torch.stack([preprocess(image) for image in photos.values()])
    print(f"jaxbrain {jaxbrain.__file__}; torch {torch.__version__}, torchvision "
          f"{tv.__version__}; {len(photos)} photos, input {tuple(nchw.shape)} NCHW, range "
          f"[{float(nchw.min()):.3f}, {float(nchw.max()):.3f}]"
          f"{', ImageNet-normalised' if args.imagenet_norm else ', not normalised'}")

    t = time.perf_counter()
    model = from_torchvision("resnet152", args.model_pt, prefix=args.prefix)
    print(f"jaxbrain import: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    outputs, _ = model(np.ascontiguousarray(nchw.numpy().transpose(0, 2, 3, 1)))
    ours = np.asarray(outputs["logits"], np.float64)
    print(f"jaxbrain forward: {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    checkpoint = torch.load(args.model_pt, map_location="cpu", weights_only=True)
    net = tv.models.resnet152()
    net.load_state_dict({k.removeprefix(args.prefix): v for k, v in checkpoint.items()
                         if k.startswith(args.prefix)}, strict=True)
    net.eval()
    with torch.no_grad():
        theirs = net(nchw).double().numpy()
    print(f"torchvision load + forward: {time.perf_counter() - t:.1f} s")

    categories = tv.models.ResNet152_Weights.IMAGENET1K_V1.meta["categories"]
    disagree, differences = [], []
    for i, name in enumerate(photos):
        top_ours, top_theirs = np.argsort(-ours[i])[:5], np.argsort(-theirs[i])[:5]
        relative = np.max(np.abs(ours[i] - theirs[i])) / np.max(np.abs(theirs[i]))
        differences.append(relative)
        print(f"\n{name}: max |logit difference| / max |torch logit| = {relative:.2e}")
        for label, top in (("jaxbrain", top_ours), ("torch   ", top_theirs)):
            print(f"  {label} top-5: " + ", ".join(f"{k} {categories[k]}" for k in top))
        if top_ours[0] != top_theirs[0]:
            disagree.append(name)
    print(f"\nall photos: max relative logit difference {max(differences):.2e}; top-1 agrees on "
          f"{len(photos) - len(disagree)}/{len(photos)}; wall time "
          f"{time.perf_counter() - start:.1f} s")
    if disagree:
        print(f"top-1 DISAGREES on {', '.join(disagree)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
