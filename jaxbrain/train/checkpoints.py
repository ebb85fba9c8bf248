"""orbax checkpoints of a training run, and models restored from them.

A run's working directory holds ``config.json`` (the full training config), ``model.json``
(what ``create`` needs: architecture, classes, heads, seed, overrides), ``checkpoints/<step>``
(orbax; a step is only listed once its commit marker is written, so a checkpoint cut short
by a kill is never loaded) and ``metrics.jsonl``. A committed checkpoint damaged afterwards
(a file lost or truncated) is moved to ``damaged_checkpoints/`` when it fails to restore, and
the run resumes from the newest intact one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
import orbax.checkpoint as ocp
from flax import nnx

from jaxbrain.models import TappedModel, create

logger = logging.getLogger(__name__)


def manager(workdir, keep: int = 3, asynchronous: bool = False) -> ocp.CheckpointManager:
    """Checkpoints of a run; temporary directories left by a killed save are removed on start.

    Synchronous by default (a step is complete when ``save`` returns).  ``asynchronous``: the
    state is copied to host memory when ``save`` returns and written while training goes on;
    a step is listed only once its commit marker is written, so a kill mid-write loses that
    step and nothing else (``wait_until_finished`` before relying on the newest step)."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep,
                                           enable_async_checkpointing=asynchronous,
                                           cleanup_tmp_directories=True)
    return ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints", options=options)


def split_model(model: TappedModel):
    """(graphdef, params, batch_stats, rest): the trained, the running and the other state."""
    return nnx.split(model, nnx.Param, nnx.BatchStat, ...)


def initial_state(params, batch_stats, tx: optax.GradientTransformation) -> dict:
    return {"step": jnp.zeros((), jnp.int32), "params": params, "batch_stats": batch_stats,
            "opt_state": tx.init(params)}


def _abstract(tree):
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def save(mngr: ocp.CheckpointManager, step: int, state: dict) -> None:
    """Two items: ``model`` (what inference needs) and ``optimizer`` (what resuming adds), so
    a model restores without knowing the optimizer."""
    mngr.save(step, args=ocp.args.Composite(
        model=ocp.args.StandardSave({"params": state["params"],
                                     "batch_stats": state["batch_stats"]}),
        optimizer=ocp.args.StandardSave({"step": state["step"],
                                         "opt_state": state["opt_state"]})))


def _restore_newest_intact(mngr: ocp.CheckpointManager, load, step: int | None = None):
    """``(load(step), step)`` for the newest checkpoint that restores (or ``step`` only, when
    given). A damaged one (a file missing or truncated after its commit marker was written)
    is moved out of the way to ``<workdir>/damaged_checkpoints/<step>`` with a warning saying
    why, and the next older one is tried; the manager is refreshed to match."""
    directory = Path(mngr.directory)
    steps = sorted(mngr.all_steps(), reverse=True) if step is None else [step]
    if not steps:
        raise FileNotFoundError(f"{directory}: no complete checkpoint")
    for candidate in steps:
        try:
            return load(candidate), candidate
        except Exception as err:  # orbax raises many types for a damaged step
            if step is not None:
                raise ValueError(f"{directory / str(candidate)}: checkpoint cannot be restored "
                                 f"({type(err).__name__}: {str(err).splitlines()[0]})") from err
            aside = directory.parent / "damaged_checkpoints" / str(candidate)
            aside.parent.mkdir(exist_ok=True)
            if aside.exists():
                aside = aside.with_name(f"{candidate}.{len(list(aside.parent.iterdir()))}")
            (directory / str(candidate)).rename(aside)
            mngr.reload()
            logger.warning("checkpoint %s is damaged (%s: %s); moved to %s, trying the previous "
                           "one", directory / str(candidate), type(err).__name__,
                           str(err).splitlines()[0] if str(err) else "", aside)
    raise FileNotFoundError(f"{directory}: every checkpoint is damaged (moved to "
                            f"{directory.parent / 'damaged_checkpoints'})")


def restore(mngr: ocp.CheckpointManager, template: dict) -> tuple[dict, int]:
    """The newest intact training state, shaped like ``template``, and its step."""
    def load(step):
        saved = mngr.restore(step, args=ocp.args.Composite(
            model=ocp.args.StandardRestore(_abstract({"params": template["params"],
                                                      "batch_stats": template["batch_stats"]})),
            optimizer=ocp.args.StandardRestore(_abstract({"step": template["step"],
                                                          "opt_state": template["opt_state"]}))))
        return {**saved["model"], **saved["optimizer"]}

    return _restore_newest_intact(mngr, load)


def model_spec(workdir) -> dict:
    path = Path(workdir) / "model.json"
    if not path.exists():
        raise FileNotFoundError(f"{workdir}: not a training run (no model.json)")
    return json.loads(path.read_text())


def create_from_spec(spec: dict) -> TappedModel:
    """The network a run's ``model.json`` describes, freshly initialised.  Its
    ``input_size`` is the resolution it was trained at (older runs: the architecture's
    default), so sweeps show it images the way it learned to see them."""
    model = create(spec["arch"], num_classes=spec["num_classes"], heads=tuple(spec["heads"]),
                   seed=spec["seed"], **spec.get("overrides", {}))
    if "input_size" in spec:
        model.input_size = int(spec["input_size"])
    return model


def restore_model(workdir, step: int | None = None) -> TappedModel:
    """The network of a training run at ``step`` (default: the latest), in eval mode."""
    model = create_from_spec(model_spec(workdir))
    graphdef, params, batch_stats, rest = split_model(model)
    mngr = manager(workdir)
    saved, _ = _restore_newest_intact(mngr, lambda s: mngr.restore(s, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(_abstract({"params": params,
                                                  "batch_stats": batch_stats}))))["model"],
        step)
    model = nnx.merge(graphdef, saved["params"], saved["batch_stats"], rest)
    model.eval()
    return model
