"""Train a network on a joint objective, resuming automatically from the last checkpoint.

    python -m experiments.train --config=experiments/configs/train_synthetic.py:joint \
        --workdir=runs/joint [--config.num_steps=200 ...]
    python -m experiments.train --flagfile=experiments/configs/train_synthetic_joint.flags

    python -m experiments.train --config=experiments/configs/train_real.py:resmem \
        --config.data.lamem_dir=/data/lamem --workdir=runs/resmem --lamem_splits=1,2,3,4,5

Re-running the same command after an interruption (even kill -9) continues from the last
complete checkpoint and ends with the parameters an uninterrupted run would have.
``--lamem_splits`` runs LaMem's protocol: one run per official split (``workdir/split_K``),
then the test rho of each and their mean in ``workdir/lamem_splits.json``.
"""

from __future__ import annotations

import json

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from jaxbrain.train.loop import train
from jaxbrain.train.protocols import lamem_splits

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Training config (a get_config file).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory: config, checkpoints, metrics.")
flags.DEFINE_list("lamem_splits", [], "LaMem splits to train and test one run each on "
                  "(Khosla et al.'s protocol); empty: one run on config.data.lamem_split.")
flags.DEFINE_bool("distributed", False, "Several hosts: call jax.distributed.initialize() "
                  "(coordinator from the flags below, or from the cluster's environment: "
                  "SLURM, Open MPI, Cloud TPU); each process reads its rows of every batch.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (with --distributed).")
flags.DEFINE_integer("num_processes", None, "Processes in all (with --distributed).")
flags.DEFINE_integer("process_id", None, "This process's index (with --distributed).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if FLAGS.distributed:
        jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                                   FLAGS.process_id)
    if FLAGS.lamem_splits:
        result = lamem_splits(FLAGS.config, FLAGS.workdir, FLAGS.lamem_splits)
    else:
        result = train(FLAGS.config, FLAGS.workdir)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    app.run(main)
