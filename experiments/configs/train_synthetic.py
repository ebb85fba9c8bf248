"""Train a small network on the synthetic suite's images.

    python -m experiments.train --config=experiments/configs/train_synthetic.py:joint \
        --workdir=runs/resnet18_tiny-joint

The argument after the colon picks the objective: categorization, memorability or joint.
Labels are the suite's 8 objects; memorability scores come from its LaMem split 1 (train
images train, test images validate).  The config itself is ``jaxbrain.train.configs``.
"""

from jaxbrain.train.configs import synthetic_config


def get_config(objective: str = "joint"):
    return synthetic_config(objective)
