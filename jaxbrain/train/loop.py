"""The training loop: joint objective, optax, data parallel over all local devices, orbax
checkpoints with automatic resume, and a run that is a pure function of its config.

Determinism: batch i is a pure function of (seed, i) (``pipeline.train_dataset``), dropout
is reseeded from (seed, step) every step, and the state is checkpointed exactly, so a run
killed at any point and restarted ends with the same parameters as one never interrupted.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import jax
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from scipy import stats

from jaxbrain.files import atomic_write
from jaxbrain.train import checkpoints
from jaxbrain.train import data as train_data
from jaxbrain.train.objectives import Objective, joint_loss, objective
from jaxbrain.train.pipeline import eval_batches, train_dataset


def make_optimizer(config) -> optax.GradientTransformation:
    """SGD-momentum or AdamW under linear warm-up + cosine decay; weight decay on kernels
    only (not biases or BatchNorm scales)."""
    if not 0 <= config.warmup_steps < config.num_steps:
        raise ValueError(f"warmup_steps ({config.warmup_steps}) must be >= 0 and smaller than "
                         f"num_steps ({config.num_steps})")
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, config.warmup_steps, config.num_steps, 0.0)

    def kernels_only(params):
        return jax.tree.map(lambda p: p.ndim > 1, params)

    if config.optimizer == "sgd":
        return optax.chain(optax.add_decayed_weights(config.weight_decay, kernels_only),
                           optax.sgd(schedule, momentum=config.momentum))
    if config.optimizer == "adamw":
        return optax.adamw(schedule, weight_decay=config.weight_decay, mask=kernels_only)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw'; got {config.optimizer!r}")


def _objective(config) -> Objective:
    overrides = {"memorability_loss": config.memorability_loss}
    for head in ("classification", "memorability"):
        weight = config.loss_weights.get(head)
        if weight is not None:
            overrides[head] = float(weight)
    return objective(config.objective, **overrides)


def _fresh(tree):
    """A copy whose NNX variables belong to the current trace (variables from an outer
    trace cannot be updated inside ``jax.grad``)."""
    return jax.tree.map(lambda leaf: leaf, tree)


def _train_step(graphdef, rest, tx, objective_, seed, state, batch):
    def loss_fn(params):
        model = nnx.merge(graphdef, params, _fresh(state["batch_stats"]), _fresh(rest))
        nnx.reseed(model, dropout=jax.random.fold_in(jax.random.key(seed), state["step"]))
        outputs, _ = model(batch["image"])
        loss, metrics = joint_loss(outputs, batch, objective_)
        return loss, (metrics, nnx.state(model, nnx.BatchStat))

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (_, (metrics, batch_stats)), grads = grad_fn(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    new_state = {"step": state["step"] + 1, "params": optax.apply_updates(state["params"], updates),
                 "batch_stats": batch_stats, "opt_state": opt_state}
    return new_state, metrics


def data_parallel(batch_size: int) -> tuple[Mesh, NamedSharding, NamedSharding]:
    """(mesh over all local devices, replicated sharding, batch-sharded sharding)."""
    mesh = Mesh(np.array(jax.devices()), ("data",))
    if batch_size % mesh.size:
        raise ValueError(f"batch_size {batch_size} must be divisible by the {mesh.size} "
                         "devices it is sharded over")
    return mesh, NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))


def compile_train_step(graphdef, rest, tx, objective_: Objective, seed: int, batch_size: int):
    """``step(state, batch) -> (state, metrics)``, jitted data parallel: the batch sharded
    over the devices, the state replicated (and donated)."""
    _, replicated, sharded = data_parallel(batch_size)
    return jax.jit(partial(_train_step, graphdef, rest, tx, objective_, seed),
                   in_shardings=(replicated, sharded), out_shardings=(replicated, replicated),
                   donate_argnums=0)


def _predict(graphdef, rest, params, batch_stats, images):
    model = nnx.merge(graphdef, params, batch_stats, rest)
    model.eval()
    return model(images)[0]


def evaluate(predict, state, sources, *, batch_size: int, image_size: int, shard) -> dict:
    """Top-1 over class-labelled and Spearman rho over memorability-scored held-out images."""
    logits, labels, predicted, scores = [], [], [], []
    for source in sources:
        for batch in eval_batches(source, batch_size=batch_size, image_size=image_size):
            out = predict(state["params"], state["batch_stats"], shard(batch["image"]))
            keep = batch["valid"] > 0
            if "logits" in out:
                rows = keep & (batch["has_label"] > 0)
                logits.append(np.asarray(out["logits"])[rows])
                labels.append(batch["label"][rows])
            if "memorability" in out:
                rows = keep & (batch["has_memorability"] > 0)
                predicted.append(np.asarray(out["memorability"])[rows])
                scores.append(batch["memorability"][rows])
    metrics = {}
    if labels and sum(map(len, labels)):
        metrics["top1"] = float(np.mean(np.argmax(np.concatenate(logits), -1)
                                        == np.concatenate(labels)))
    if scores and sum(map(len, scores)) > 2:
        p, s = np.concatenate(predicted), np.concatenate(scores)
        metrics["memorability_rho"] = float(stats.spearmanr(p, s).statistic)
        metrics["memorability_mse"] = float(np.mean((p - s) ** 2))
    return metrics


def _write_json(path: Path, payload) -> None:
    atomic_write(path, json.dumps(payload, indent=2, sort_keys=True).encode())


def _check_config(workdir: Path, config) -> None:
    """A workdir belongs to one config: resuming with another would mix two runs."""
    path = workdir / "config.json"
    current = json.loads(config.to_json_best_effort())
    if path.exists():
        saved = json.loads(path.read_text())
        if saved != current:
            changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            raise ValueError(f"{workdir} holds a run with a different config (changed: "
                             f"{', '.join(changed)}); use a new workdir to start another run")
    else:
        _write_json(path, current)


def _trim_metrics(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint a run resumes from (they will be redone)."""
    if path.exists():
        lines = [line for line in path.read_text().splitlines()
                 if line and json.loads(line)["step"] <= step]
        atomic_write(path, "".join(line + "\n" for line in lines).encode())


def train(config: ml_collections.ConfigDict, workdir) -> dict:
    """Train (or resume) the run in ``workdir``; returns the final validation metrics."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    _check_config(workdir, config)
    objective_ = _objective(config)
    data = train_data.from_config(config.data)
    num_classes = config.num_classes or data.num_classes
    if "classification" in objective_.heads and not num_classes:
        raise ValueError(f"objective {config.objective!r} needs class labels; the data has none")
    spec = {"arch": config.arch, "num_classes": int(num_classes or 1),
            "heads": list(objective_.heads), "seed": config.seed,
            "input_size": int(config.image_size),  # the resolution it learned at
            "overrides": {k: tuple(v) if isinstance(v, list | tuple) else v
                          for k, v in config.arch_overrides.items()}}
    _write_json(workdir / "model.json", spec)

    mesh, replicated, sharded = data_parallel(config.batch_size)
    model = checkpoints.create_from_spec(spec)
    graphdef, params, batch_stats, rest = checkpoints.split_model(model)
    tx = make_optimizer(config)
    state = checkpoints.initial_state(params, batch_stats, tx)
    mngr = checkpoints.manager(workdir, keep=config.keep_checkpoints)
    start = 0
    if mngr.latest_step():
        state, start = checkpoints.restore(mngr, state)
        print(f"resumed {workdir} from step {start}", flush=True)
    _trim_metrics(workdir / "metrics.jsonl", start)
    state = jax.device_put(state, replicated)

    step_fn = compile_train_step(graphdef, rest, tx, objective_, config.seed, config.batch_size)
    predict = jax.jit(partial(_predict, graphdef, rest))
    dataset = train_dataset(data.train, batch_size=config.batch_size,
                            image_size=config.image_size, seed=config.seed,
                            num_steps=config.num_steps, weights=data.weights,
                            augment=config.data.augment)

    def shard(images):
        return jax.device_put(images, sharded if len(images) % mesh.size == 0 else replicated)

    def run_eval(step):
        metrics = evaluate(predict, state, data.validation, batch_size=config.batch_size,
                           image_size=config.image_size, shard=shard)
        log({"step": step, "split": "validation", **metrics})
        return metrics

    def log(record):
        with open(workdir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)

    final = {}
    window_start, window_steps = time.perf_counter(), 0
    for step, batch in enumerate(dataset[start:].to_iter_dataset(), start=start + 1):
        state, metrics = step_fn(state, jax.device_put(batch, sharded))
        window_steps += 1
        if step % config.log_every == 0 or step == config.num_steps:
            metrics = {k: float(v) for k, v in metrics.items()}
            elapsed = time.perf_counter() - window_start
            log({"step": step, "split": "train", **metrics,
                 "images_per_s": window_steps * config.batch_size / elapsed})
            window_start, window_steps = time.perf_counter(), 0
        if step % config.eval_every == 0 or step == config.num_steps:
            final = run_eval(step)
        if step % config.checkpoint_every == 0 or step == config.num_steps:
            checkpoints.save(mngr, step, state)
    if start >= config.num_steps:
        print(f"{workdir}: already trained to step {start}", flush=True)
        final = evaluate(predict, state, data.validation, batch_size=config.batch_size,
                         image_size=config.image_size, shard=shard)
    mngr.close()
    return final
