"""Training configs (ml_collections) shipped with the library; experiments/configs/ wraps
them for ``--config=...:objective``."""

import ml_collections
from ml_collections.config_dict import placeholder


def synthetic_config(objective: str = "joint") -> ml_collections.ConfigDict:
    """A small network on the synthetic suite's images: 8 object classes, memorability from
    LaMem split 1 (train images train, test images validate)."""
    config = ml_collections.ConfigDict()
    config.arch = "resnet18_tiny"
    config.arch_overrides = ml_collections.ConfigDict()
    config.num_classes = 0  # 0: as many as the data has
    config.objective = objective
    config.memorability_loss = "mse"
    # None: the objective's own weights (1 for each head it trains)
    config.loss_weights = ml_collections.ConfigDict({"classification": placeholder(float),
                                                     "memorability": placeholder(float)})
    if objective == "joint":
        # Memorability scores vary little (sd ≈ 0.2), so their MSE is ~25× smaller than the
        # cross-entropy; weight 10 keeps the head learning (rho 0.43 vs 0.31 at weight 1).
        config.loss_weights.memorability = 10.0
    # Where the weights start (jaxbrain.train.finetune): "" from scratch,
    # "<arch>=<weights name or file>", "run:<workdir>" or "zoo:<name>" (in zoo_dir).
    config.init = ""
    config.zoo_dir = ""
    config.freeze_trunk = False  # train the heads only; the trunk stays as initialised
    config.trunk_learning_rate = placeholder(float)  # None: learning_rate for every parameter
    config.batch_norm = "auto"  # "update", "frozen", or "auto": frozen iff the trunk is
    config.compute_dtype = "float32"  # or "bfloat16" (parameters, optimizer, loss stay float32)
    config.seed = 0
    config.image_size = 32
    config.batch_size = 32
    config.num_steps = 400
    config.num_epochs = 0  # > 0: as many steps as that many passes over the training images
    config.optimizer = "adamw"
    config.learning_rate = 3e-3
    config.momentum = 0.9
    config.weight_decay = 5e-4
    config.warmup_steps = 20
    config.log_every = 20
    config.eval_every = 100
    config.checkpoint_every = 100
    config.keep_checkpoints = 2
    config.async_checkpoints = True  # written while training goes on

    config.data = ml_collections.ConfigDict()
    config.data.kind = "synthetic"
    config.data.synthetic_dir = "synthetic"
    config.data.lamem_split = 1
    config.data.augment = True
    config.data.recipe = "small"  # "torchvision": RandomResizedCrop + flip, Resize + CenterCrop
    config.data.reader = "array_record"  # folders: prepared once, or "files": read directly
    config.data.workers = 0  # grain worker processes decoding and augmenting
    config.data.class_folder_dir = ""
    config.data.lamem_dir = ""
    config.data.tfds_dir = ""
    config.data.weights = placeholder(tuple)  # mixing proportions of the folder sources
    return config


# Real-data presets.  Their costs are estimates for the hardware named (no accelerator was
# available to measure them; BUILD_NOTES.md holds what this CPU measured): ImageNet has
# 1,281,167 training images, LaMem split 1 has 45,000 training images.
PRESETS = {
    # Ahuja et al.'s joint network from scratch: ResNet-50, ImageNet + LaMem mixed 3:1 per
    # batch, torchvision's recipe (SGD 0.1 × batch/256, 90 epochs, ~5 warm-up epochs).
    # Expects accelerators: 90 epochs are ~120M images, ~1.5 days on 8 GPUs that train at
    # ~1,200 images/s each in bfloat16 (an estimate, not measured here); on this 2-core CPU a
    # ResNet train step runs at a few images/s (BUILD_NOTES.md): out of reach.
    "joint_resnet50_scratch": {
        "arch": "resnet50", "objective": "joint", "image_size": 224, "batch_size": 256,
        "optimizer": "sgd", "learning_rate": 0.1, "weight_decay": 1e-4, "num_epochs": 90,
        "warmup_steps": 28_000, "compute_dtype": "bfloat16",
        "data": {"weights": (3.0, 1.0)},
    },
    # The same network started from torchvision's ImageNet weights: 10 epochs at a tenth of the
    # rate (trunk at a hundredth), the memorability head new.  ~13M images: ~3 h on 8 GPUs
    # (estimate, as above).
    "joint_resnet50_imagenet": {
        "arch": "resnet50", "objective": "joint", "init": "resnet50=IMAGENET1K_V1",
        "image_size": 224, "batch_size": 256, "optimizer": "sgd", "learning_rate": 0.01,
        "trunk_learning_rate": 0.001, "weight_decay": 1e-4, "num_epochs": 10,
        "warmup_steps": 500, "compute_dtype": "bfloat16", "data": {"weights": (3.0, 1.0)},
    },
    # MemNet-style (Khosla et al. 2015): every layer of an ImageNet AlexNet fine-tuned on a
    # LaMem split with a Euclidean loss, the new head at 10× the trunk's rate.  (MemNet used
    # CaffeNet; give --config.arch=alexnet_caffe --config.init=alexnet_caffe=<file> for it.)
    # 45k images × 30 epochs = 1.35M images: about an hour on one GPU (estimate).
    "memnet": {
        "arch": "alexnet", "objective": "memorability", "init": "alexnet=IMAGENET1K_V1",
        "image_size": 224, "batch_size": 256, "optimizer": "sgd", "learning_rate": 0.01,
        "trunk_learning_rate": 0.001, "weight_decay": 5e-4, "num_epochs": 30,
        "warmup_steps": 100, "compute_dtype": "bfloat16",
    },
    # ResMem-style (Needell & Bainbridge 2022): a frozen ImageNet ResNet-152 (batch norm
    # frozen with it) and a trained memorability head.  450k images through the trunk (the
    # backward pass still runs through it to the head's input): a few GPU-hours (estimate).
    "resmem": {
        "arch": "resnet152", "objective": "memorability", "init": "resnet152=IMAGENET1K_V1",
        "freeze_trunk": True, "image_size": 224, "batch_size": 128, "optimizer": "adamw",
        "learning_rate": 1e-3, "weight_decay": 1e-4, "num_epochs": 10, "warmup_steps": 100,
        "compute_dtype": "bfloat16",
    },
}


def preset_config(name: str) -> ml_collections.ConfigDict:
    """A real-data training config (``PRESETS``): image folders read directly in 8 grain
    workers with torchvision's recipe; give the data with ``--config.data.class_folder_dir``
    (ImageNet: ``train/<wnid>/…``, ``val/<wnid>/…``) and/or ``--config.data.lamem_dir``."""
    if name not in PRESETS:
        raise KeyError(f"unknown training preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    preset = dict(PRESETS[name])
    config = synthetic_config(preset.pop("objective"))
    config.data.kind, config.data.reader, config.data.recipe = "folders", "files", "torchvision"
    config.data.workers = 8
    config.data.augment = True
    config.log_every, config.eval_every, config.checkpoint_every = 100, 5000, 1000
    config.keep_checkpoints = 3
    for key, value in preset.pop("data", {}).items():
        config.data[key] = value
    for key, value in preset.items():
        config[key] = value
    return config
