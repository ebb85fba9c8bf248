"""Loading a stimulus set: held decoded in memory (the baseline, how sets were loaded before
``ImageFiles``) against left in its files (``engine.inputs.load_stimuli``), side by side.

    python -m experiments.bench_stimuli                        # 20,000 LaMem-sized JPEGs
    python -m experiments.bench_stimuli --images=200 --runs=1  # seconds

The folder (``--folder``) is written once: 256 × 256 JPEGs (quality 90), LaMem's size. Each
way runs ``--runs`` times, alternating, each in a fresh process, so its peak resident memory
(``ru_maxrss``) is its own; both hash ids and pixels into the set's digest, which must agree.
"""

from __future__ import annotations

import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("images", 20000, "Images in the folder (written once).")
flags.DEFINE_string("folder", "runs/bench_stimuli/images", "The image folder.")
flags.DEFINE_integer("runs", 2, "Runs of each way (alternating, fresh processes).")
flags.DEFINE_enum("way", None, ["held", "files"], "Run one way in this process (internal).")
flags.DEFINE_string("json_out", None, "Also write the figures to this file.")


def write_folder(folder: Path, n: int) -> None:
    from PIL import Image

    if (folder / f"{n - 1:06d}.jpg").exists() and not (folder / f"{n:06d}.jpg").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.jpg"):
        stale.unlink()
    base = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    for i in range(n):
        Image.fromarray(np.roll(base, i, axis=(0, 1))).save(folder / f"{i:06d}.jpg", quality=90)


def load(way: str, folder: Path) -> dict:
    """One way of loading the folder: seconds, peak resident GiB, digest."""
    start = time.perf_counter()
    if way == "held":
        from jaxbrain.data.brainscore_io import image_folder
        from jaxbrain.features.stimuli import read_image

        table = image_folder(folder)
        images = [read_image(str(p)) for p in table["stimulus_path"]]
        digest = hashlib.sha256()
        for sid, image in zip(table["stimulus_id"].astype(str), images, strict=True):
            digest.update(sid.encode())
            digest.update(image.tobytes())
        digest = digest.hexdigest()
    else:
        from jaxbrain.engine.inputs import load_stimuli

        digest = load_stimuli(None, folder).digest
    return {"way": way, "seconds": time.perf_counter() - start,
            "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "digest": digest}


def run(images: int, folder: str, runs: int) -> dict:
    folder = Path(folder)
    write_folder(folder, images)
    results = {"held": [], "files": []}
    for _ in range(runs):
        for way in results:
            out = subprocess.run([sys.executable, "-m", "experiments.bench_stimuli",
                                  f"--way={way}", f"--folder={folder}"],
                                 check=True, capture_output=True, text=True)
            results[way].append(json.loads(out.stdout.strip().splitlines()[-1]))
    digests = {r["digest"] for rs in results.values() for r in rs}
    if len(digests) != 1:
        raise SystemExit(f"the two ways hash the set differently: {digests}")
    summary = {"images": images, "runs": results}
    for way, rs in results.items():
        summary[way] = {"seconds": [round(r["seconds"], 2) for r in rs],
                        "peak_gib": [round(r["peak_gib"], 3) for r in rs]}
    summary["memory_ratio"] = (min(r["peak_gib"] for r in results["held"])
                               / max(r["peak_gib"] for r in results["files"]))
    return summary


def main(argv):
    del argv
    if FLAGS.way:
        print(json.dumps(load(FLAGS.way, Path(FLAGS.folder))))
        return
    summary = run(FLAGS.images, FLAGS.folder, FLAGS.runs)
    for way in ("held", "files"):
        print(f"{way:6s} seconds {summary[way]['seconds']}   peak host GiB "
              f"{summary[way]['peak_gib']}")
    print(f"peak memory held / files: {summary['memory_ratio']:.1f}x ({summary['images']} "
          "images, same digest)")
    if FLAGS.json_out:
        Path(FLAGS.json_out).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    app.run(main)
