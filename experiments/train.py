"""Train a network on a joint objective, resuming automatically from the last checkpoint.

    python -m experiments.train --config=experiments/configs/train_synthetic.py:joint \
        --workdir=runs/joint [--config.num_steps=200 ...]
    python -m experiments.train --flagfile=experiments/configs/train_synthetic_joint.flags

Re-running the same command after an interruption (even kill -9) continues from the last
complete checkpoint and ends with the parameters an uninterrupted run would have.
"""

from __future__ import annotations

import json

from absl import app, flags, logging
from ml_collections import config_flags

from jaxbrain.train.loop import train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Training config (a get_config file).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory: config, checkpoints, metrics.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    print(json.dumps(train(FLAGS.config, FLAGS.workdir), sort_keys=True))


if __name__ == "__main__":
    app.run(main)
