"""Starting a training run from trained weights: where they come from, what identifies them,
and which parameters are the trunk and which the heads.

``config.init`` names the initialisation:

* ``""`` — random initialisation from ``config.seed`` (training from scratch);
* ``"<arch>=<weights>"`` — torchvision-layout weights: a catalog name (``resnet50=IMAGENET1K_V1``)
  fetched and verified on first use, or a ``.pt``/``.pth``/``.safetensors`` file;
* ``"run:<workdir>"`` — the latest checkpoint of a finished (or any) training run;
* ``"zoo:<name>"`` — a trained network registered in the zoo ``config.zoo_dir``.

Every source becomes one torchvision-layout state dict and loads through
:func:`jaxbrain.models.torchvision_import.load_torch_state`, so a run initialised from another
run is checked exactly as one initialised from a file.  A head the weights do not fit (a
classifier for another class count, a head the source never had) starts from its random
initialisation and is named in the log; everything else must fit exactly.

The weights' sha256 (of the file, or of the run's state dict) is the initialisation's
identity: a working directory records it in ``init.json`` and refuses to resume from changed
weights, as it refuses a changed config.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
from flax import nnx

from jaxbrain.files import atomic_write, file_digest, json_bytes
from jaxbrain.models import zoo
from jaxbrain.models.registry import ARCHITECTURES
from jaxbrain.models.taps import TappedModel
from jaxbrain.models.torchvision_import import (
    load_torch_state,
    shape_overrides,
    torch_state,
    weights_file,
)
from jaxbrain.models.weights_io import read_state_dict

logger = logging.getLogger(__name__)

INIT_FILE = "init.json"
BATCH_NORM_MODES = ("auto", "update", "frozen")


class Initialisation(NamedTuple):
    """Weights to start from: a torchvision-layout state dict and what identifies it."""

    arch: str
    state: dict[str, np.ndarray]
    overrides: dict  # architecture overrides the weights imply (AlexNet's fc width, a run's)
    identity: dict  # {"init": the config's text, "source": resolved path, "sha256": digest}


def state_digest(state: dict[str, np.ndarray]) -> str:
    """sha256 over a state dict's keys, dtypes, shapes and bytes (key order does not count)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        value = np.ascontiguousarray(state[key])
        digest.update(json.dumps([key, value.dtype.str, value.shape]).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _from_run(text: str, workdir: Path) -> Initialisation:
    from jaxbrain.train import checkpoints  # a run's checkpoints; checkpoints imports models

    spec = checkpoints.model_spec(workdir)
    state = torch_state(checkpoints.restore_model(workdir))
    return Initialisation(spec["arch"], state, dict(spec.get("overrides", {})),
                          {"init": text, "source": str(Path(workdir).absolute()),
                           "sha256": state_digest(state)})


def resolve(text: str, zoo_dir: str = "") -> Initialisation | None:
    """The initialisation ``config.init`` names (see the module docstring); None for ``""``."""
    text = text.strip()
    if not text:
        return None
    kind, _, rest = text.partition(":")
    if kind == "run" and rest:
        return _from_run(text, Path(rest))
    if kind == "zoo" and rest:
        if not zoo_dir:
            raise ValueError(f"init {text!r} names a zoo model but config.zoo_dir is empty")
        table = zoo.entries(zoo_dir)
        if rest not in table:
            raise KeyError(f"init {text!r}: {Path(zoo_dir) / zoo.ZOO_FILE} has no model "
                           f"{rest!r}; registered: {', '.join(sorted(table)) or 'none'}")
        if "workdir" not in table[rest]:
            raise ValueError(f"init {text!r}: zoo model {rest!r} is untrained (a spec, no "
                             "weights); start from scratch with its arch instead")
        return _from_run(text, Path(zoo_dir) / table[rest]["workdir"])
    arch, sep, weights = text.partition("=")
    if not sep or not weights:
        raise ValueError(f"init {text!r}: expected '<arch>=<weights name or file>', "
                         "'run:<workdir>' or 'zoo:<name>'")
    if arch not in ARCHITECTURES:
        raise KeyError(f"init {text!r}: unknown architecture {arch!r}; known: "
                       f"{', '.join(sorted(ARCHITECTURES))}")
    path, prefix = weights_file(arch, weights)
    state = read_state_dict(path, prefix=prefix)
    overrides = {k: v for k, v in shape_overrides(arch, state).items() if k != "num_classes"}
    return Initialisation(arch, state, overrides,
                          {"init": text, "source": str(Path(path).absolute()),
                           "sha256": file_digest(path)})


def check_identity(workdir, init: Initialisation | None) -> None:
    """Record the initialisation of a new run in ``init.json``; refuse to resume a run whose
    initial weights have changed since (another file, or the same name with other bytes)."""
    path = Path(workdir) / INIT_FILE
    current = {"init": "", "sha256": None} if init is None else init.identity
    if path.exists():
        saved = json.loads(path.read_text())
        if (saved.get("init"), saved.get("sha256")) != (current["init"], current["sha256"]):
            raise ValueError(
                f"{workdir} was initialised from {saved.get('init') or 'scratch'!r} (sha256 "
                f"{saved.get('sha256')}); now {current['init'] or 'scratch'!r} (sha256 "
                f"{current['sha256']}): the initial weights changed; use a new workdir")
    else:
        atomic_write(path, json_bytes(current, indent=2))


def load_initial(model: TappedModel, init: Initialisation) -> list[str]:
    """Copy the initial weights into ``model``; heads they do not fit keep their random
    initialisation.  Returns the heads re-initialised (logged)."""
    state = dict(init.state)
    ours = torch_state(model)
    fresh, replaced = [], []
    for head in model.head_prefixes():
        theirs = {k: v for k, v in state.items() if k.startswith(head)}
        mine = {k: v for k, v in ours.items() if k.startswith(head)}
        fits = theirs.keys() == mine.keys() and all(
            np.shape(theirs[k]) == mine[k].shape for k in mine)
        if mine and not fits:
            fresh.append(head.rstrip("."))
            if theirs:
                replaced.append(head.rstrip("."))
        if not fits:
            for key in theirs:
                del state[key]
    if replaced:
        logger.warning("%s: %s start from random initialisation (the weights hold a head of "
                       "another shape)", init.identity["init"], ", ".join(replaced))
    if set(fresh) - set(replaced):
        logger.info("%s: new head(s) %s", init.identity["init"],
                    ", ".join(sorted(set(fresh) - set(replaced))))
    load_torch_state(model, state, source=init.identity["source"],
                     allow_missing=tuple(f"{h}." for h in fresh))
    return fresh


def head_labels(head_prefixes: tuple[str, ...]):
    """``params -> labels`` for ``optax.multi_transform``: "head" for the output heads'
    parameters, "trunk" for the rest."""
    def name(path) -> str:
        return ".".join(str(getattr(k, "key", getattr(k, "idx", ""))) for k in path
                        if not isinstance(k, jax.tree_util.GetAttrKey)) + "."

    def labels(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "head" if name(path).startswith(head_prefixes) else "trunk", params)

    return labels


def set_batch_norm(model: TappedModel, mode: str, *, trunk_frozen: bool) -> str:
    """Batch-norm statistics during training: "update" (batch statistics, running averages
    updated) or "frozen" (the running statistics, never changed: what a frozen trunk or
    small-batch fine-tuning needs); "auto" is frozen exactly when the trunk is.  Returns the
    mode applied."""
    if mode not in BATCH_NORM_MODES:
        raise ValueError(f"batch_norm must be one of {BATCH_NORM_MODES}; got {mode!r}")
    if mode == "auto":
        mode = "frozen" if trunk_frozen else "update"
    if mode == "frozen":
        for _, module in nnx.iter_modules(model):
            if isinstance(module, nnx.BatchNorm):
                module.use_running_average = True
    return mode
