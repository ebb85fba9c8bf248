"""Train the objective variants of a small network on the synthetic suite and register them,
with the untrained network, in a model zoo, for sweeps to score by name.

    python -m experiments.build_zoo --zoo_dir=runs/zoo [--arch=resnet18_tiny]

registers ``<arch>-random``, ``<arch>-categorization``, ``<arch>-memorability`` and
``<arch>-joint`` (a few minutes on 2 CPU cores).  Re-running resumes or skips finished runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import app, flags, logging

from experiments.configs.train_synthetic import get_config
from jaxbrain.models import zoo
from jaxbrain.train.checkpoints import model_spec
from jaxbrain.train.loop import train

FLAGS = flags.FLAGS
flags.DEFINE_string("zoo_dir", "runs/zoo", "Zoo folder (zoo.json + training runs).")
flags.DEFINE_string("arch", "resnet18_tiny", "Architecture to train.")
flags.DEFINE_string("synthetic_dir", "synthetic", "Synthetic suite (written if missing).")
flags.DEFINE_list("objectives", ["categorization", "memorability", "joint"], "Variants.")
flags.DEFINE_integer("num_steps", 400, "Training steps per variant.")
flags.DEFINE_integer("image_size", 32, "Training image size.")
flags.DEFINE_integer("seed", 0, "Seed (initialisation, data order, augmentation).")


def build(zoo_dir, arch: str, synthetic_dir, objectives, *, num_steps: int, image_size: int,
          seed: int) -> dict[str, dict]:
    """Train every objective (resuming) and register all variants; returns their metrics."""
    zoo_dir = Path(zoo_dir)
    results = {}
    spec = None
    for name in objectives:
        config = get_config(name)
        config.arch, config.seed = arch, seed
        config.num_steps, config.image_size = num_steps, image_size
        config.warmup_steps = min(config.warmup_steps, num_steps // 2)
        config.data.synthetic_dir = str(synthetic_dir)
        workdir = zoo_dir / "runs" / f"{arch}-{name}"
        metrics = train(config, workdir)
        zoo.register(zoo_dir, f"{arch}-{name}", workdir=workdir,
                     info={"objective": name, "data": "synthetic", "steps": num_steps,
                           "validation": metrics})
        results[f"{arch}-{name}"] = metrics
        spec = spec or model_spec(workdir)
    if spec is not None:
        random_spec = spec | {"heads": ["classification", "memorability"]}
        zoo.register(zoo_dir, f"{arch}-random", spec=random_spec,
                     info={"objective": "none (random initialisation)", "seed": seed})
    return results


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    results = build(FLAGS.zoo_dir, FLAGS.arch, FLAGS.synthetic_dir, FLAGS.objectives,
                    num_steps=FLAGS.num_steps, image_size=FLAGS.image_size, seed=FLAGS.seed)
    print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    app.run(main)
