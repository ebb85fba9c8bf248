"""The training loop: determinism, resume after an interruption (in-process and kill -9),
data parallelism over the 8 test devices, config guards, the model zoo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from jaxbrain.data.synthetic import SuiteConfig, write_suite
from jaxbrain.models import create, zoo
from jaxbrain.train.checkpoints import initial_state, manager, restore_model, split_model
from jaxbrain.train.configs import synthetic_config
from jaxbrain.train.loop import compile_train_step, make_optimizer, train
from jaxbrain.train.objectives import objective
from jaxbrain.train.synthetic_zoo import build

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    write_suite(root, SuiteConfig(n_objects=4, images_per_object=24))
    return root


def _config(suite, objective="joint", **changes):
    config = synthetic_config(objective)
    config.arch, config.image_size, config.batch_size = "alexnet_tiny", 64, 16
    config.num_steps, config.checkpoint_every, config.eval_every, config.log_every = 6, 3, 6, 2
    config.warmup_steps = 2
    config.data.synthetic_dir = str(suite)
    for key, value in changes.items():
        config[key] = value
    return config


def _weights(model) -> dict:
    return {path: np.asarray(v[...]) for path, v in
            nnx.to_flat_state(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat)))}


def _assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for path in wa:
        np.testing.assert_array_equal(wa[path], wb[path], err_msg=str(path))


def test_runs_are_deterministic_and_resume_from_the_last_complete_checkpoint(suite, tmp_path):
    train(_config(suite), tmp_path / "a")
    train(_config(suite), tmp_path / "b")
    first = restore_model(tmp_path / "a")
    _assert_same_weights(first, restore_model(tmp_path / "b"))
    assert sorted(manager(tmp_path / "a").all_steps()) == [3, 6]

    # An interruption after step 3: the step-6 checkpoint never completed (only its
    # temporary directory exists), and the log has lines past step 3.
    workdir = tmp_path / "b"
    (workdir / "checkpoints" / "6").rename(workdir / "checkpoints" / "6.orbax-checkpoint-tmp")
    train(_config(suite), workdir)
    _assert_same_weights(first, restore_model(workdir))
    steps = [(r["step"], r["split"]) for r in map(json.loads, (workdir / "metrics.jsonl")
                                                  .read_text().splitlines())]
    assert len(steps) == len(set(steps)), "resumed run duplicated log lines"
    assert steps == [(r["step"], r["split"]) for r in map(
        json.loads, (tmp_path / "a" / "metrics.jsonl").read_text().splitlines())]


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(suite, tmp_path, caplog,
                                                                   damage):
    """A committed checkpoint that later lost or truncated a file: the resume says which one
    it skipped and why, moves it aside, continues from the previous one and ends bitwise equal
    to an uninterrupted run."""
    train(_config(suite), tmp_path / "clean")
    workdir = tmp_path / "damaged"
    train(_config(suite), workdir)
    files = sorted(p for p in (workdir / "checkpoints" / "6").rglob("*") if p.is_file()
                   and p.stat().st_size > 1000)
    target = files[0]
    if damage == "missing":
        target.unlink()
    else:
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with caplog.at_level("WARNING", logger="jaxbrain.train.checkpoints"):
        train(_config(suite), workdir)
    assert any("checkpoints/6 is damaged" in r.getMessage() for r in caplog.records)
    assert (workdir / "damaged_checkpoints" / "6").is_dir()
    assert sorted(manager(workdir).all_steps()) == [3, 6]
    _assert_same_weights(restore_model(tmp_path / "clean"), restore_model(workdir))


def test_different_seeds_give_different_weights_and_finished_runs_are_not_retrained(
        suite, tmp_path):
    train(_config(suite, seed=1), tmp_path / "s1")
    before = (tmp_path / "s1" / "metrics.jsonl").read_text()
    metrics = train(_config(suite, seed=1), tmp_path / "s1")
    assert (tmp_path / "s1" / "metrics.jsonl").read_text() == before
    assert set(metrics) == {"top1", "memorability_rho", "memorability_mse"}
    train(_config(suite, seed=2), tmp_path / "s2")
    a, b = _weights(restore_model(tmp_path / "s1")), _weights(restore_model(tmp_path / "s2"))
    assert any(not np.array_equal(a[p], b[p]) for p in a)


def test_guards_name_the_problem(suite, tmp_path):
    train(_config(suite, num_steps=3), tmp_path / "run")
    with pytest.raises(ValueError, match="different config .*learning_rate"):
        train(_config(suite, num_steps=3, learning_rate=0.5), tmp_path / "run")
    with pytest.raises(ValueError, match="divisible by the 8 devices"):
        train(_config(suite, batch_size=12), tmp_path / "odd")
    with pytest.raises(ValueError, match="optimizer must be"):
        train(_config(suite, optimizer="lbfgs"), tmp_path / "opt")
    with pytest.raises(ValueError, match=r"warmup_steps \(6\) must be .* num_steps \(6\)"):
        train(_config(suite, warmup_steps=6), tmp_path / "warm")
    with pytest.raises(KeyError, match="unknown objective"):
        train(_config(suite, objective="beauty"), tmp_path / "obj")


def test_data_parallel_state_is_replicated_over_all_devices(suite, tmp_path):
    assert jax.device_count() == 8
    config = _config(suite, optimizer="sgd")
    model = create("resnet18_tiny", num_classes=4, heads=("classification", "memorability"))
    graphdef, params, batch_stats, rest = split_model(model)
    tx = make_optimizer(config)
    step = compile_train_step(graphdef, rest, tx, objective("joint"), 0, 16)
    rng = np.random.default_rng(0)
    batch = {"image": rng.standard_normal((16, 32, 32, 3)).astype(np.float32),
             "label": rng.integers(0, 4, 16).astype(np.int32),
             "has_label": np.ones(16, np.float32),
             "memorability": rng.uniform(0, 1, 16).astype(np.float32),
             "has_memorability": np.ones(16, np.float32)}
    state, metrics = step(initial_state(params, batch_stats, tx), batch)
    kernel = state["params"]["conv1"]["kernel"]
    assert len(kernel.sharding.device_set) == 8 and kernel.sharding.is_fully_replicated
    assert int(state["step"]) == 1 and np.isfinite(float(metrics["loss"]))
    # BatchNorm statistics are those of the whole (sharded) batch
    assert np.any(np.asarray(state["batch_stats"]["bn1"]["mean"]) != 0)


def test_zoo_registers_runs_and_random_init(suite, tmp_path):
    train(_config(suite, num_steps=3), tmp_path / "zoo" / "runs" / "joint")
    zoo.register(tmp_path / "zoo", "tiny-joint", workdir=tmp_path / "zoo" / "runs" / "joint")
    spec = json.loads((tmp_path / "zoo" / "runs" / "joint" / "model.json").read_text())
    zoo.register(tmp_path / "zoo", "tiny-random", spec=spec)
    moved = tmp_path / "moved"
    (tmp_path / "zoo").rename(moved)  # relative paths: the zoo folder moves as a whole
    trained, random = zoo.load("tiny-joint", moved), zoo.load("tiny-random", moved)
    _assert_same_weights(trained, restore_model(moved / "runs" / "joint"))
    images = np.zeros((2, 64, 64, 3), np.float32)
    assert set(random(images)[0]) == {"logits", "memorability"}
    with pytest.raises(KeyError, match="registered: tiny-joint, tiny-random"):
        zoo.load("resnet", moved)


def _train_command(suite, workdir, steps):
    return [sys.executable, "-m", "experiments.train",
            "--config=experiments/configs/train_synthetic.py:joint", f"--workdir={workdir}",
            "--config.arch=alexnet_tiny", "--config.image_size=64", "--config.batch_size=16",
            f"--config.num_steps={steps}", "--config.checkpoint_every=5",
            "--config.eval_every=1000", "--config.log_every=5",
            f"--config.data.synthetic_dir={suite}"]


@pytest.mark.slow
def test_kill_9_between_checkpoints_then_same_command_equals_uninterrupted_run(suite, tmp_path):
    steps = 100  # each checkpoint takes ~0.3 s: the kill lands long before the end
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(_train_command(suite, tmp_path / "whole", steps), cwd=ROOT, env=env,
                   check=True, capture_output=True)
    command = _train_command(suite, tmp_path / "killed", steps)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    first = tmp_path / "killed" / "checkpoints" / "10" / "commit_success.txt"
    deadline = time.time() + 300
    while not first.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = manager(tmp_path / "killed").latest_step()
    assert 10 <= killed_at < steps
    resumed = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True,
                             text=True)
    assert f"from step {killed_at}" in resumed.stdout
    _assert_same_weights(restore_model(tmp_path / "whole"), restore_model(tmp_path / "killed"))


@pytest.mark.slow
def test_joint_objective_lowers_both_losses_and_predicts_memorability(tmp_path):
    suite_dir = tmp_path / "suite"
    metrics = train(_config(suite_dir, arch="resnet18_tiny", image_size=32, batch_size=32,
                            num_steps=400, checkpoint_every=400, eval_every=400, log_every=20,
                            warmup_steps=20), tmp_path / "joint")
    records = [json.loads(line) for line in
               (tmp_path / "joint" / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["split"] == "train"]
    for loss in ("classification_loss", "memorability_loss"):
        early = np.mean([r[loss] for r in train_records[:3]])
        late = np.mean([r[loss] for r in train_records[-3:]])
        assert late < 0.8 * early, (loss, early, late)
    assert metrics["memorability_rho"] > 0.2
    assert metrics["top1"] > 0.5


def test_trains_on_imagenet_style_folders_mixed_with_lamem_through_tfds(tmp_path):
    """Class-folder tree (labels only) + LaMem folder (scores only), prepared as array_record
    datasets, mixed 1:1 in every batch: both losses are finite and both metrics reported."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 2)):
        for label in ("cat", "dog"):
            folder = tmp_path / "imagenet" / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (20, 28, 3), np.uint8)).save(
                    folder / f"{i}.png")
    lamem = tmp_path / "lamem"
    (lamem / "images").mkdir(parents=True)
    (lamem / "splits").mkdir()
    names = [f"m{i}.jpg" for i in range(16)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (30, 24, 3), np.uint8)).save(lamem / "images" / name)
    scores = rng.uniform(0, 1, len(names))
    for part, rows in (("train", range(12)), ("test", range(12, 16))):
        (lamem / "splits" / f"{part}_1.txt").write_text(
            "".join(f"{names[i]} {scores[i]:.4f}\n" for i in rows))
    config = _config(tmp_path, num_steps=4, eval_every=4)
    config.data.kind = "folders"
    config.data.class_folder_dir = str(tmp_path / "imagenet")
    config.data.lamem_dir = str(lamem)
    config.data.tfds_dir = str(tmp_path / "tfds")
    config.data.weights = (1.0, 1.0)
    metrics = train(config, tmp_path / "run")
    assert set(metrics) == {"top1", "memorability_rho", "memorability_mse"}
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
               .splitlines() if '"train"' in line]
    assert all(np.isfinite(r["classification_loss"]) and np.isfinite(r["memorability_loss"])
               for r in records)
    assert json.loads((tmp_path / "run" / "model.json").read_text())["num_classes"] == 2


@pytest.mark.slow
def test_build_zoo_registers_random_and_three_objectives(tmp_path, suite):
    results = build(tmp_path / "zoo", "alexnet_tiny", suite,
                    ["categorization", "memorability", "joint"], num_steps=3, image_size=64,
                    seed=0)
    assert set(results) == {f"alexnet_tiny-{o}" for o in
                            ("categorization", "memorability", "joint")}
    names = sorted(zoo.entries(tmp_path / "zoo"))
    assert names == sorted([*results, "alexnet_tiny-random"])
    images = np.zeros((1, 64, 64, 3), np.float32)
    heads = {name: set(zoo.load(name, tmp_path / "zoo")(images)[0]) for name in names}
    assert heads["alexnet_tiny-categorization"] == {"logits"}
    assert heads["alexnet_tiny-memorability"] == {"memorability"}
    assert heads["alexnet_tiny-joint"] == heads["alexnet_tiny-random"] == {"logits",
                                                                           "memorability"}
