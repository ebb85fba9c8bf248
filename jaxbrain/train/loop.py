"""The training loop: joint objective, optax, data parallel over all local devices, orbax
checkpoints with automatic resume, and a run that is a pure function of its config.

Determinism: batch i is a pure function of (seed, i) (``pipeline.train_dataset``), dropout
is reseeded from (seed, step) every step, and the state is checkpointed exactly, so a run
killed at any point and restarted ends with the same parameters as one never interrupted.
"""

from __future__ import annotations

import json
import math
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from scipy import stats

from jaxbrain.files import atomic_write
from jaxbrain.train import checkpoints, finetune
from jaxbrain.train import data as train_data
from jaxbrain.train.finetune import head_labels
from jaxbrain.train.objectives import Objective, joint_loss, objective
from jaxbrain.train.pipeline import eval_batches, iterate, train_dataset


def _schedule_and_rule(config, peak: float, num_steps: int) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(0.0, peak, config.warmup_steps, num_steps, 0.0)

    def kernels_only(params):
        return jax.tree.map(lambda p: p.ndim > 1, params)

    if config.optimizer == "sgd":
        return optax.chain(optax.add_decayed_weights(config.weight_decay, kernels_only),
                           optax.sgd(schedule, momentum=config.momentum))
    if config.optimizer == "adamw":
        return optax.adamw(schedule, weight_decay=config.weight_decay, mask=kernels_only)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw'; got {config.optimizer!r}")


def make_optimizer(config, head_prefixes: tuple[str, ...] = (),
                   num_steps: int | None = None) -> optax.GradientTransformation:
    """SGD-momentum or AdamW under linear warm-up + cosine decay; weight decay on kernels
    only (not biases or BatchNorm scales).

    Fine-tuning groups the parameters into the output heads (``head_prefixes``, torchvision
    keys) and the trunk: ``config.freeze_trunk`` leaves the trunk exactly as initialised (its
    updates are zero, no optimizer state is kept for it), ``config.trunk_learning_rate`` gives
    it its own peak rate (None: ``learning_rate``, one group)."""
    num_steps = config.num_steps if num_steps is None else num_steps
    if not 0 <= config.warmup_steps < num_steps:
        raise ValueError(f"warmup_steps ({config.warmup_steps}) must be >= 0 and smaller than "
                         f"num_steps ({num_steps})")
    freeze = bool(config.get("freeze_trunk", False))
    trunk_rate = config.get("trunk_learning_rate")
    heads = _schedule_and_rule(config, config.learning_rate, num_steps)
    if not freeze and trunk_rate is None:
        return heads
    if not head_prefixes:
        raise ValueError("freeze_trunk / trunk_learning_rate need a model with output heads")
    trunk = (optax.set_to_zero() if freeze
             else _schedule_and_rule(config, float(trunk_rate), num_steps))
    return optax.multi_transform({"head": heads, "trunk": trunk}, head_labels(head_prefixes))


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


COMPUTE_DTYPES = ("float32", "bfloat16")


def _in_compute_dtype(params, dtype: str):
    """The parameters as the forward pass uses them: float32 masters cast to ``dtype``
    (gradients flow back through the cast to float32)."""
    if dtype == "float32":
        return params
    return jax.tree.map(lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating)
                        else p, params)


def _train_step(graphdef, rest, tx, objective_, seed, dtype, state, batch):
    def loss_fn(params):
        reseed_key = jax.random.fold_in(jax.random.key(seed), state["step"])
        model = nnx.merge(graphdef, _in_compute_dtype(params, dtype),
                          _fresh(state["batch_stats"]), _fresh(rest))
        nnx.reseed(model, dropout=reseed_key)
        outputs, _ = model(batch["image"].astype(dtype))
        outputs = jax.tree.map(lambda a: a.astype(jnp.float32), outputs)
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


def compile_train_step(graphdef, rest, tx, objective_: Objective, seed: int, batch_size: int,
                       compute_dtype: str = "float32"):
    """``step(state, batch) -> (state, metrics)``, jitted data parallel: the batch sharded
    over the devices, the state replicated (and donated).  ``compute_dtype`` "bfloat16" runs
    the forward and backward passes in bfloat16 on float32 parameters, optimizer state, batch
    statistics and loss."""
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}; got {compute_dtype!r}")
    _, replicated, sharded = data_parallel(batch_size)
    return jax.jit(partial(_train_step, graphdef, rest, tx, objective_, seed, compute_dtype),
                   in_shardings=(replicated, sharded), out_shardings=(replicated, replicated),
                   donate_argnums=0)


def _predict(graphdef, rest, dtype, params, batch_stats, images):
    model = nnx.merge(graphdef, _in_compute_dtype(params, dtype), batch_stats, rest)
    model.eval()
    return jax.tree.map(lambda a: a.astype(jnp.float32), model(images.astype(dtype))[0])


def evaluate(predict, state, sources, *, batch_size: int, image_size: int, shard,
             recipe: str = "small") -> dict:
    """Top-1 (and top-5 with at least 5 classes) over class-labelled and Spearman rho over
    memorability-scored held-out images."""
    logits, labels, predicted, scores = [], [], [], []
    for source in sources:
        for batch in eval_batches(source, batch_size=batch_size, image_size=image_size,
                                  recipe=recipe):
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
        logits, labels = np.concatenate(logits), np.concatenate(labels)
        metrics["top1"] = float(np.mean(np.argmax(logits, -1) == labels))
        if logits.shape[1] >= 5:  # top-5: the label among the five largest logits
            top5 = np.argpartition(-logits, 4, axis=1)[:, :5]
            metrics["top5"] = float(np.mean(np.any(top5 == labels[:, None], axis=1)))
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


def _num_steps(config, train_sources) -> int:
    """``num_steps``, or ``num_epochs`` passes over the training sources (all of them,
    whatever their mixing weights) rounded up to whole batches."""
    epochs = config.get("num_epochs", 0) or 0
    if not epochs:
        return int(config.num_steps)
    examples = sum(len(s) for s in train_sources)
    return max(1, math.ceil(epochs * examples / config.batch_size))


def _device_memory() -> dict:
    """Peak and current bytes in use on the first local device, where the device reports
    them (accelerators; XLA on CPU reports nothing)."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return {f"device_{k}": int(stats[k]) for k in ("peak_bytes_in_use", "bytes_in_use")
            if k in stats}


def train(config: ml_collections.ConfigDict, workdir) -> dict:
    """Train (or resume) the run in ``workdir``; returns the final validation metrics.

    With ``config.init`` the run starts from trained weights (``jaxbrain.train.finetune``)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    init = finetune.resolve(config.get("init", ""), config.get("zoo_dir", ""))
    finetune.check_identity(workdir, init)
    _check_config(workdir, config)
    if init is not None and init.arch != config.arch:
        raise ValueError(f"config.arch is {config.arch!r} but init {init.identity['init']!r} "
                         f"holds {init.arch!r} weights")
    objective_ = _objective(config)
    dtype = config.get("compute_dtype", "float32")
    data = train_data.from_config(config.data)
    num_steps = _num_steps(config, data.train)
    num_classes = config.num_classes or data.num_classes
    if "classification" in objective_.heads and not num_classes:
        raise ValueError(f"objective {config.objective!r} needs class labels; the data has none")
    overrides = {**(init.overrides if init else {}), **config.arch_overrides.to_dict()}
    spec = {"arch": config.arch, "num_classes": int(num_classes or 1),
            "heads": list(objective_.heads), "seed": config.seed,
            "input_size": int(config.image_size),  # the resolution it learned at
            "overrides": {k: tuple(v) if isinstance(v, list | tuple) else v
                          for k, v in overrides.items()}}
    _write_json(workdir / "model.json", spec)

    mesh, replicated, sharded = data_parallel(config.batch_size)
    mngr = checkpoints.manager(workdir, keep=config.keep_checkpoints,
                               asynchronous=bool(config.get("async_checkpoints", True)))
    resuming = bool(mngr.latest_step())
    model = checkpoints.create_from_spec(spec)
    if init is not None and not resuming:  # a resumed run's weights come from its checkpoint
        finetune.load_initial(model, init)
    finetune.set_batch_norm(model, config.get("batch_norm", "auto"),
                            trunk_frozen=bool(config.get("freeze_trunk", False)))
    graphdef, params, batch_stats, rest = checkpoints.split_model(model)
    tx = make_optimizer(config, model.head_prefixes(), num_steps)
    state = checkpoints.initial_state(params, batch_stats, tx)
    start = 0
    if resuming:
        state, start = checkpoints.restore(mngr, state)
        print(f"resumed {workdir} from step {start}", flush=True)
    _trim_metrics(workdir / "metrics.jsonl", start)
    state = jax.device_put(state, replicated)

    recipe = config.data.get("recipe", "small")
    step_fn = compile_train_step(graphdef, rest, tx, objective_, config.seed, config.batch_size,
                                 dtype)
    predict = jax.jit(partial(_predict, graphdef, rest, dtype))
    dataset = train_dataset(data.train, batch_size=config.batch_size,
                            image_size=config.image_size, seed=config.seed,
                            num_steps=num_steps, weights=data.weights,
                            augment=config.data.augment, recipe=recipe,
                            process=(jax.process_index(), jax.process_count()))

    def shard(images):
        return jax.device_put(images, sharded if len(images) % mesh.size == 0 else replicated)

    def global_batch(batch):
        """This process's rows of the step's global batch, assembled over all processes."""
        if jax.process_count() == 1:
            return jax.device_put(batch, sharded)
        return jax.tree.map(lambda a: jax.make_array_from_process_local_data(sharded, a), batch)

    def validation_metrics():
        return evaluate(predict, state, data.validation, batch_size=config.batch_size,
                        image_size=config.image_size, shard=shard, recipe=recipe)

    def run_eval(step):
        metrics = validation_metrics()
        log({"step": step, "split": "validation", **metrics})
        return metrics

    def log(record):
        if jax.process_index() == 0:
            with open(workdir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)

    final = {}
    window_start, window_steps = time.perf_counter(), 0
    for step, batch in enumerate(iterate(dataset, start, config.data.get("workers", 0)),
                                 start=start + 1):
        state, metrics = step_fn(state, global_batch(batch))
        window_steps += 1
        if step % config.log_every == 0 or step == num_steps:
            metrics = {k: float(v) for k, v in metrics.items()}  # waits for the step
            elapsed = time.perf_counter() - window_start
            log({"step": step, "split": "train", **metrics,
                 "step_time_s": elapsed / window_steps,
                 "images_per_s": window_steps * config.batch_size / elapsed, **_device_memory()})
            window_start, window_steps = time.perf_counter(), 0
        if step % config.eval_every == 0 or step == num_steps:
            final = run_eval(step)
        if step % config.checkpoint_every == 0 or step == num_steps:
            checkpoints.save(mngr, step, state)
    if start >= num_steps:
        print(f"{workdir}: already trained to step {start}", flush=True)
        final = validation_metrics()
    mngr.wait_until_finished()
    mngr.close()
    return final
