"""Load torchvision-layout weights (``.pt``/``.pth``/``.safetensors``) into jaxbrain models.

Parameter names follow from the module tree, which mirrors torchvision's, so the only
translations are layouts: conv kernels OIHW → HWIO, linear weights (out, in) → (in, out),
BatchNorm ``weight``/``running_mean``/``running_var`` → ``scale``/``mean``/``var``.
Everything is checked before anything is copied: one error lists every missing, unexpected
and mis-shaped tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxbrain.models.registry import ARCHITECTURES, create
from jaxbrain.models.taps import TappedModel
from jaxbrain.models.weights_io import read_state_dict

_LEAF_NAMES = {"kernel": "weight", "scale": "weight", "bias": "bias",
               "mean": "running_mean", "var": "running_var"}
# Keys torch saves that carry no weights jaxbrain uses.
_IGNORED_SUFFIXES = (".num_batches_tracked",)
# Where each architecture keeps its classifier weight and its fc width (for inference).
_CLASSIFIER_KEY = {"AlexNet": "classifier.6.weight", "AlexNetCaffe": "fc8.weight",
                   "ResNet": "fc.weight"}
_FC_WIDTH_KEY = {"AlexNet": "classifier.1.weight", "AlexNetCaffe": "fc6.weight"}


def _weights(model) -> list:
    """(path, variable) of every parameter and BatchNorm statistic."""
    return list(nnx.to_flat_state(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))))


def torch_key(path: tuple) -> str:
    """The torchvision state-dict key of an NNX variable path."""
    *modules, leaf = path
    return ".".join([*map(str, modules), _LEAF_NAMES[leaf]])


def _to_jax_layout(array: np.ndarray, target_ndim: int) -> np.ndarray:
    if target_ndim == 4 and array.ndim == 4:
        return array.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if target_ndim == 2 and array.ndim == 2:
        return array.T
    return array


def torch_state(model: TappedModel) -> dict[str, np.ndarray]:
    """The model's weights as a torchvision-layout state dict (the inverse of the import), so
    networks trained here load into PyTorch too."""
    state = {}
    for path, var in _weights(model):
        value = np.asarray(var[...])
        state[torch_key(path)] = (value.transpose(3, 2, 0, 1) if value.ndim == 4
                                  else value.T if value.ndim == 2 else value)
    return state


def load_torch_state(model: TappedModel, state: dict[str, np.ndarray], *, source: str = "state",
                     allow_missing: Sequence[str] = ()) -> TappedModel:
    """Copy ``state`` (torchvision keys → arrays) into ``model`` in place.

    Keys starting with a prefix in ``allow_missing`` may be absent (e.g. a new
    ``memorability.`` head, left at its initialisation for fine-tuning)."""
    targets = {torch_key(path): var
               for path, var in _weights(model)}
    missing = [k for k in targets if k not in state and not k.startswith(tuple(allow_missing))]
    unexpected = [k for k in state if k not in targets and not k.endswith(_IGNORED_SUFFIXES)]
    converted, misshaped = {}, []
    for key, var in targets.items():
        if key not in state:
            continue
        array = _to_jax_layout(np.asarray(state[key]), var[...].ndim)
        if array.shape != var[...].shape:
            expected = _to_jax_layout(np.empty(var[...].shape), np.asarray(state[key]).ndim).shape
            misshaped.append(f"{key}: checkpoint {tuple(state[key].shape)}, model expects "
                             f"{expected}")
        converted[key] = array
    if missing or unexpected or misshaped:
        lines = [f"{source}: the weights do not fit {getattr(model, 'arch', type(model).__name__)}"]
        for label, items in (("missing", missing), ("unexpected", unexpected),
                             ("wrong shape", misshaped)):
            if items:
                lines.append(f"  {label} ({len(items)}): " + "; ".join(items))
        raise ValueError("\n".join(lines))
    for key, array in converted.items():
        var = targets[key]
        var[...] = jnp.asarray(array, var[...].dtype)
    return model


def from_torchvision(arch: str, path, prefix: str = "", *,
                     heads: Sequence[str] | str = ("classification",), **overrides) -> TappedModel:
    """A model of architecture ``arch`` with the weights in ``path``, in eval mode.

    The number of classes (and AlexNet's fc width) are read off the checkpoint unless given.
    ``prefix`` is stripped from every key (``"module."`` for DataParallel checkpoints).
    """
    if arch not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    state = read_state_dict(path, prefix=prefix)
    kind = ARCHITECTURES[arch][0].__name__
    classifier = state.get(_CLASSIFIER_KEY[kind])
    if classifier is not None and classifier.ndim == 2:
        overrides.setdefault("num_classes", classifier.shape[0])
    width = state.get(_FC_WIDTH_KEY.get(kind, ""))
    if width is not None and width.ndim == 2:
        overrides.setdefault("fc_width", width.shape[0])
    model = create(arch, heads=heads, **overrides)
    load_torch_state(model, state, source=str(path), allow_missing=("memorability.",))
    model.eval()
    return model
