"""Fine-tuning from trained weights: a torchvision-layout ResNet-18 file fine-tuned on small
LaMem-layout (and class-folder) trees read directly from their image files; the frozen trunk
stays bitwise equal to the file, the unfrozen network learns both objectives, the run's
identity includes the initial weights, and the bfloat16 path follows float32."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import safetensors.numpy
from PIL import Image

from jaxbrain.files import file_digest
from jaxbrain.models import create
from jaxbrain.models.torchvision_import import torch_state
from jaxbrain.train import finetune
from jaxbrain.train.checkpoints import restore_model
from jaxbrain.train.configs import synthetic_config
from jaxbrain.train.loop import train

N_LAMEM, N_TEST = 96, 24


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A LaMem folder whose scores follow image brightness, a two-class folder tree (red vs
    blue images) and a torchvision-layout ResNet-18 file with a 10-class classifier."""
    root = tmp_path_factory.mktemp("finetune")
    rng = np.random.default_rng(0)
    lamem = root / "lamem"
    (lamem / "images").mkdir(parents=True)
    (lamem / "splits").mkdir()
    levels = rng.uniform(0.1, 0.9, N_LAMEM)
    names = [f"{i:05d}.jpg" for i in range(N_LAMEM)]
    for name, level in zip(names, levels, strict=True):
        pixels = np.clip(level * 255 + rng.normal(0, 20, (40, 48, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(lamem / "images" / name, quality=95)
    scores = np.clip(0.3 + 0.6 * levels + rng.normal(0, 0.02, N_LAMEM), 0, 1)
    for part, rows in (("train", range(N_LAMEM - N_TEST)), ("test", range(N_LAMEM - N_TEST,
                                                                           N_LAMEM))):
        (lamem / "splits" / f"{part}_1.txt").write_text(
            "".join(f"{names[i]} {scores[i]:.4f}\n" for i in rows))
    for split, count in (("train", 24), ("val", 8)):
        for channel, label in ((0, "red"), (2, "blue")):
            folder = root / "imagenet" / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 120, (36, 36, 3)).astype(np.uint8)
                pixels[..., channel] += 120
                Image.fromarray(pixels).save(folder / f"{i}.png")
    for arch in ("resnet18", "resnet18_tiny"):
        safetensors.numpy.save_file(torch_state(create(arch, num_classes=10, seed=7)),
                                    str(root / f"{arch}.safetensors"))
    return root


def _config(folders, objective="memorability", **changes):
    config = synthetic_config(objective)
    config.arch = "resnet18"
    config.init = f"resnet18={folders / 'resnet18.safetensors'}"
    config.image_size, config.batch_size = 32, 16
    config.num_steps, config.warmup_steps = 4, 1
    config.checkpoint_every = config.eval_every = config.log_every = 4
    config.data.kind, config.data.reader = "folders", "files"
    config.data.lamem_dir = str(folders / "lamem")
    for key, value in changes.items():
        config[key] = value
    return config


def _trunk(state: dict, model) -> dict:
    return {k: v for k, v in state.items() if not k.startswith(model.head_prefixes())}


@pytest.fixture(scope="module")
def frozen(folders, tmp_path_factory):
    """A run fine-tuning the full-size file's memorability head, trunk frozen; and what it
    logged at warning level."""
    workdir = tmp_path_factory.mktemp("frozen") / "run"
    handler = logging.Handler()
    records = []
    handler.emit = records.append
    logger = logging.getLogger("jaxbrain.train.finetune")
    logger.addHandler(handler)
    try:
        train(_config(folders, freeze_trunk=True), workdir)
    finally:
        logger.removeHandler(handler)
    return workdir, [r for r in records if r.levelno >= logging.WARNING]


def test_frozen_trunk_changes_only_the_head_and_the_run_is_tied_to_its_weights(
        folders, frozen, tmp_path):
    import shutil

    run, warnings = frozen
    assert not warnings, "the memorability head is new: nothing is replaced"
    shutil.copytree(run, tmp_path / "frozen")
    model = restore_model(tmp_path / "frozen")
    start = safetensors.numpy.load_file(str(folders / "resnet18.safetensors"))
    trained = torch_state(model)
    assert set(model.head_prefixes()) == {"fc.", "memorability."}
    assert not any(k.startswith("fc.") for k in trained)  # memorability only: no classifier
    trunk = _trunk(trained, model)
    assert len(trunk) == len(start) - 2  # every trunk tensor, BatchNorm statistics included
    for key, value in trunk.items():
        np.testing.assert_array_equal(value, start[key], err_msg=key)
    fresh = torch_state(create("resnet18", heads=("memorability",), seed=0))
    assert not np.array_equal(trained["memorability.linear.weight"],
                              fresh["memorability.linear.weight"]), "the head did not train"
    identity = json.loads((tmp_path / "frozen" / finetune.INIT_FILE).read_text())
    assert identity["sha256"] == file_digest(folders / "resnet18.safetensors")

    # The same name with other bytes, or another initialisation: the workdir refuses both.
    changed = tmp_path / "changed.safetensors"
    safetensors.numpy.save_file({**start, "conv1.weight": start["conv1.weight"] * 2},
                                str(changed))
    (tmp_path / "frozen" / "config.json").unlink()  # only the weights differ from here on
    with pytest.raises(ValueError, match="initial weights changed"):
        train(_config(folders, freeze_trunk=True, init=f"resnet18={changed}"),
              tmp_path / "frozen")
    with pytest.raises(ValueError, match="initial weights changed"):
        train(_config(folders, freeze_trunk=True, init=""), tmp_path / "frozen")


def test_unfrozen_fine_tuning_learns_both_objectives_with_a_new_classifier(
        folders, tmp_path, caplog):
    """Joint objective on the class folders mixed 1:1 with LaMem, images decoded in 2 grain
    workers: the 10-class classifier of the file is replaced for the data's 2 classes; both
    losses fall and held-out rho rises.  (The ResNet-18 topology at test widths: the full
    network's steps cost ~2 s each on the tests' 8 fake devices.)"""
    config = _config(folders, "joint", num_steps=32, warmup_steps=4, learning_rate=1e-3,
                     trunk_learning_rate=3e-4, eval_every=8, log_every=4, checkpoint_every=32,
                     arch="resnet18_tiny",
                     init=f"resnet18_tiny={folders / 'resnet18_tiny.safetensors'}")
    config.data.class_folder_dir = str(folders / "imagenet")
    config.data.weights = (1.0, 1.0)
    config.data.workers = 2
    with caplog.at_level(logging.WARNING, logger="jaxbrain.train.finetune"):
        metrics = train(config, tmp_path / "joint")
    assert any("fc start from random initialisation" in r.getMessage() for r in caplog.records)
    spec = json.loads((tmp_path / "joint" / "model.json").read_text())
    assert spec["num_classes"] == 2 and spec["heads"] == ["classification", "memorability"]
    records = [json.loads(line) for line in
               (tmp_path / "joint" / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["split"] == "train"]
    for loss in ("classification_loss", "memorability_loss"):
        early = np.mean([r[loss] for r in train_records[:2]])
        late = np.mean([r[loss] for r in train_records[-2:]])
        assert late < 0.7 * early, (loss, early, late)
    assert all(r["step_time_s"] > 0 and r["images_per_s"] > 0 for r in train_records)
    rhos = [r["memorability_rho"] for r in records if r["split"] == "validation"]
    assert rhos[-1] > rhos[0] + 0.1 and rhos[-1] > 0.5, rhos
    assert metrics["top1"] > 0.9


def test_a_run_initialises_another_and_mismatches_are_named(folders, frozen, tmp_path):
    run, _ = frozen
    first = torch_state(restore_model(run))
    # From a run: its weights are the start (trunk frozen again: bitwise equal to the run's).
    train(_config(folders, freeze_trunk=True, init=f"run:{run}"), tmp_path / "second")
    second = restore_model(tmp_path / "second")
    for key, value in _trunk(torch_state(second), second).items():
        np.testing.assert_array_equal(value, first[key], err_msg=key)
    identity = json.loads((tmp_path / "second" / finetune.INIT_FILE).read_text())
    assert identity["sha256"] == finetune.state_digest(first)
    with pytest.raises(ValueError, match="config.arch is 'resnet34' but init .* 'resnet18'"):
        train(_config(folders, arch="resnet34"), tmp_path / "arch")
    with pytest.raises(ValueError, match="expected '<arch>=<weights name or file>'"):
        train(_config(folders, init="resnet18"), tmp_path / "syntax")
    with pytest.raises(FileNotFoundError, match="no catalog weights named"):
        train(_config(folders, init="resnet18=NO_SUCH_WEIGHTS"), tmp_path / "name")
    with pytest.raises(ValueError, match="zoo_dir is empty"):
        train(_config(folders, init="zoo:anything"), tmp_path / "zoo")


def test_bfloat16_training_follows_the_float32_loss_curve(folders, tmp_path):
    """The same joint run in float32 and in bfloat16 compute (float32 parameters, optimizer
    state, batch statistics and loss).  Tolerance: the first step, on identical weights,
    within 1 % (only the arithmetic differs); after it the two trajectories part like two
    seeds do, so the curve is compared as means over 8-step windows, each within 10 % of the
    starting loss of the float32 run."""
    curves = {}
    for dtype in ("float32", "bfloat16"):
        config = _config(folders, "joint", num_steps=24, log_every=1, eval_every=24,
                         checkpoint_every=24, compute_dtype=dtype, arch="resnet18_tiny",
                         learning_rate=1e-3,
                         init=f"resnet18_tiny={folders / 'resnet18_tiny.safetensors'}")
        config.data.class_folder_dir = str(folders / "imagenet")
        config.data.weights = (1.0, 1.0)
        train(config, tmp_path / dtype)
        curves[dtype] = np.array([json.loads(line)["loss"] for line in
                                  (tmp_path / dtype / "metrics.jsonl").read_text().splitlines()
                                  if '"train"' in line])
    f32, bf16 = curves["float32"], curves["bfloat16"]
    assert len(f32) == len(bf16) == 24
    np.testing.assert_allclose(bf16[0], f32[0], rtol=0.01)
    windows = f32.reshape(3, 8).mean(1), bf16.reshape(3, 8).mean(1)
    assert windows[0][-1] < 0.5 * windows[0][0], "the float32 run did not learn"
    np.testing.assert_allclose(windows[1], windows[0], atol=0.1 * f32[0])
    with pytest.raises(ValueError, match="compute_dtype must be one of"):
        train(_config(folders, compute_dtype="float16"), tmp_path / "half")


def test_an_interrupted_fine_tuning_run_resumes_to_the_uninterrupted_weights(folders, tmp_path):
    """Two parameter groups (their own optimizer states) and a new head: the run cut after
    its step-3 checkpoint resumes from it (the initial weights are not loaded again over
    it) and ends bitwise equal to the run never interrupted."""
    def config():
        return _config(folders, num_steps=6, checkpoint_every=3, eval_every=6, log_every=3,
                       arch="resnet18_tiny", trunk_learning_rate=1e-4,
                       init=f"resnet18_tiny={folders / 'resnet18_tiny.safetensors'}")

    train(config(), tmp_path / "whole")
    train(config(), tmp_path / "cut")
    checkpoints = tmp_path / "cut" / "checkpoints"
    (checkpoints / "6").rename(checkpoints / "6.orbax-checkpoint-tmp")
    train(config(), tmp_path / "cut")
    whole, cut = torch_state(restore_model(tmp_path / "whole")), torch_state(
        restore_model(tmp_path / "cut"))
    assert whole.keys() == cut.keys()
    for key in whole:
        np.testing.assert_array_equal(whole[key], cut[key], err_msg=key)
