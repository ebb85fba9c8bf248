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
