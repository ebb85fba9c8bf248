"""Load torchvision-layout weights (``.pt``/``.pth``/``.safetensors``) into jaxbrain models.

Parameter names follow from the module tree, which mirrors torchvision's, so the only
translations are layouts: conv kernels OIHW → HWIO, linear weights (out, in) → (in, out),
BatchNorm ``weight``/``running_mean``/``running_var`` → ``scale``/``mean``/``var``.
Everything is checked before anything is copied: one error lists every missing, unexpected
and mis-shaped tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxbrain.data.catalog import CatalogError, load_catalog
from jaxbrain.data.fetch import fetch
from jaxbrain.models.registry import ARCHITECTURES, create
from jaxbrain.models.taps import TappedModel
from jaxbrain.models.weights_io import read_state_dict

_LEAF_NAMES = {"kernel": "weight", "scale": "weight", "bias": "bias",
               "mean": "running_mean", "var": "running_var"}
# Keys torch saves that carry no weights jaxbrain uses.
_IGNORED_SUFFIXES = (".num_batches_tracked",)
# Where each architecture keeps its fc width (for inference).
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
        value = (value.transpose(3, 2, 0, 1) if value.ndim == 4
                 else value.T if value.ndim == 2 else value)
        # Contiguous: safetensors.numpy writes a strided view's buffer as if it were contiguous.
        state[torch_key(path)] = np.ascontiguousarray(value)
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
    converted, misshaped, not_float = {}, [], []
    for key, var in targets.items():
        if key not in state:
            continue
        if not np.issubdtype(np.asarray(state[key]).dtype, np.floating):
            # integer weights are a wrong file, never values to cast (they gave NaN outputs)
            not_float.append(f"{key}: {np.asarray(state[key]).dtype}")
            continue
        array = _to_jax_layout(np.asarray(state[key]), var[...].ndim)
        if array.shape != var[...].shape:
            expected = _to_jax_layout(np.empty(var[...].shape), np.asarray(state[key]).ndim).shape
            misshaped.append(f"{key}: checkpoint {tuple(state[key].shape)}, model expects "
                             f"{expected}")
        converted[key] = array
    if missing or unexpected or misshaped or not_float:
        lines = [f"{source}: the weights do not fit {getattr(model, 'arch', type(model).__name__)}"]
        for label, items in (("missing", missing), ("unexpected", unexpected),
                             ("wrong shape", misshaped), ("not floating point", not_float)):
            if items:
                lines.append(f"  {label} ({len(items)}): " + "; ".join(items))
        raise ValueError("\n".join(lines))
    for key, array in converted.items():
        var = targets[key]
        var[...] = jnp.asarray(array, var[...].dtype)
    return model


def weights_file(arch: str, weights, catalog=None) -> tuple[Path, str]:
    """(local file, key prefix) of ``weights``: an existing path (prefix ""), or a catalog
    weights entry named ``weights`` or ``<arch>.<weights>`` (``"IMAGENET1K_V1"``), fetched and
    verified, with the prefix the entry states."""
    path = Path(weights)
    if path.exists():
        return path, ""
    entries = load_catalog(catalog)
    names = [str(weights), f"{arch}.{weights}"]
    name = next((n for n in names if n in entries), None)
    if name is None:
        known = [e.identifier for e in entries if e.kind == "weights" and e.arch in (None, arch)]
        raise FileNotFoundError(
            f"{weights}: no such weight file, and no catalog weights named "
            f"{' or '.join(map(repr, dict.fromkeys(names)))} (for {arch}: {', '.join(known)})")
    entry = entries.get(name, "weights")
    if entry.arch is not None and entry.arch != arch:
        raise CatalogError(f"catalog weights {entry.identifier!r} ({entry.source}) are for "
                           f"{entry.arch}, not {arch}")
    return fetch(entry.identifier, entries, kind="weights")["weights"], entry.prefix


def shape_overrides(arch: str, state: dict[str, np.ndarray]) -> dict:
    """What a state dict says about the network's shape: its class count (the classifier's
    rows) and, for AlexNets, the fc width."""
    cls = ARCHITECTURES[arch][0]
    out = {}
    classifier = state.get(f"{cls.classifier_name}.weight")
    if classifier is not None and classifier.ndim == 2:
        out["num_classes"] = int(classifier.shape[0])
    width = state.get(_FC_WIDTH_KEY.get(cls.__name__, ""))
    if width is not None and width.ndim == 2:
        out["fc_width"] = int(width.shape[0])
    return out


def from_torchvision(arch: str, weights, prefix: str | None = None, *,
                     heads: Sequence[str] | str = ("classification",), catalog=None,
                     **overrides) -> TappedModel:
    """A model of architecture ``arch`` with torchvision-layout ``weights``, in eval mode.

    ``weights``: a ``.pt``/``.pth``/``.safetensors`` path, or a catalog name
    (``"IMAGENET1K_V1"`` for ``<arch>.IMAGENET1K_V1``, or a user catalog's weights entry),
    fetched, verified and cached on first use. The number of classes (and AlexNet's fc width)
    are read off the checkpoint unless given. Only keys under ``prefix`` are loaded, with the
    prefix stripped (``"module."`` for DataParallel checkpoints, ``"features."`` for a network
    stored inside another); default: the catalog entry's prefix, or none.
    """
    if arch not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    path, default_prefix = weights_file(arch, weights, catalog)
    state = read_state_dict(path, prefix=default_prefix if prefix is None else prefix)
    for key, value in shape_overrides(arch, state).items():
        overrides.setdefault(key, value)
    model = create(arch, heads=heads, **overrides)
    load_torch_state(model, state, source=str(path), allow_missing=("memorability.",))
    model.eval()
    return model
