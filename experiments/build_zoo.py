"""Train the objective variants of a small network on the synthetic suite and register them,
with the untrained network, in a model zoo, for sweeps to score by name.

    python -m experiments.build_zoo --zoo_dir=runs/zoo [--arch=resnet18_tiny]

registers ``<arch>-random``, ``<arch>-categorization``, ``<arch>-memorability`` and
``<arch>-joint`` (a few minutes on 2 CPU cores).  Re-running resumes or skips finished runs.
"""

from __future__ import annotations

import json

from absl import app, flags, logging

from jaxbrain.train.synthetic_zoo import OBJECTIVES, build

FLAGS = flags.FLAGS
flags.DEFINE_string("zoo_dir", "runs/zoo", "Zoo folder (zoo.json + training runs).")
flags.DEFINE_string("arch", "resnet18_tiny", "Architecture to train.")
flags.DEFINE_string("synthetic_dir", "synthetic", "Synthetic suite (written if missing).")
flags.DEFINE_list("objectives", list(OBJECTIVES), "Variants.")
flags.DEFINE_integer("num_steps", 400, "Training steps per variant.")
flags.DEFINE_integer("image_size", 32, "Training image size.")
flags.DEFINE_integer("seed", 0, "Seed (initialisation, data order, augmentation).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    results = build(FLAGS.zoo_dir, FLAGS.arch, FLAGS.synthetic_dir, FLAGS.objectives,
                    num_steps=FLAGS.num_steps, image_size=FLAGS.image_size, seed=FLAGS.seed)
    print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    app.run(main)
