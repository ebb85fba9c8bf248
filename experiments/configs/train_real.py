"""Real-data training presets (``jaxbrain.train.configs.PRESETS``: costs stated there).

    python -m experiments.train --config=experiments/configs/train_real.py:resmem \
        --config.data.lamem_dir=/data/lamem --workdir=runs/resmem
    python -m experiments.train --config=experiments/configs/train_real.py:joint_resnet50_imagenet \
        --config.data.class_folder_dir=/data/imagenet --config.data.lamem_dir=/data/lamem \
        --workdir=runs/joint50

The argument after the colon picks the preset: joint_resnet50_scratch, joint_resnet50_imagenet,
memnet, resmem.
"""

from jaxbrain.train.configs import preset_config


def get_config(preset: str = "resmem"):
    return preset_config(preset)
