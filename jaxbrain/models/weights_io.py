"""Read PyTorch-layout checkpoints into numpy arrays without torch and without running their code.

A `torch.save` file is a pickle, and unpickling an untrusted pickle can run arbitrary code. This
module only lets the pickle name the handful of globals that a tensor state dict needs, and maps
each to a local implementation, so reading a checkpoint never imports torch or calls anything the
file chooses. Files that pickle anything else (whole modules, `argparse.Namespace`, ...) are
refused; re-save the weights with `torch.save(model.state_dict(), ...)` or as safetensors.

bfloat16 tensors come back as `ml_dtypes.bfloat16` arrays (lossless, and the dtype `jnp.bfloat16`
is), from both formats.

A key prefix selects one sub-module of a checkpoint that holds several networks (ResMem's `model.pt`
keeps a torchvision ResNet under `features.` beside its own head): keys outside the prefix are
ignored and named in one log line, keys inside it are stripped of it. Nothing is lost unnoticed:
the selected keys are checked strictly against the model by `load_torch_state` (missing,
unexpected, wrong shape), and a prefix that selects no key at all is an error.
"""

import collections
import logging
import pickle
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import ml_dtypes  # also registers "bfloat16" with numpy, which safetensors.numpy needs
import numpy as np
import safetensors
import safetensors.numpy

__all__ = ["read_state_dict", "strip_prefix"]

T = TypeVar("T")

_log = logging.getLogger(__name__)
# How many key names a log line or error message lists before "... (N in all)".
_SHOWN_KEYS = 10

_NOT_A_CHECKPOINT = (
    "not a torch zip checkpoint or safetensors file; re-save with "
    "torch.save(..., _use_new_zipfile_serialization=True) or convert to safetensors"
)
_ZIP_MAGIC = b"PK\x03\x04"
# Training scripts often save {"state_dict": ..., "epoch": ..., ...}; the weights are under one of
# these keys.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
}


class _Unreadable(ValueError):
    """What is wrong with a checkpoint's contents; `read_state_dict` adds the file's path."""


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad, backward_hooks, *_):
    """Stand-in for `torch._utils._rebuild_tensor_v2`: copy the strided view out of `storage`.

    The bounds are checked before `as_strided`, which would otherwise read past the buffer.
    """
    if not (isinstance(storage, np.ndarray) and storage.ndim == 1 and storage.flags.c_contiguous):
        raise _Unreadable(f"tensor storage is {type(storage).__name__}, not a storage record")
    size, stride = tuple(size), tuple(stride)
    ints = (storage_offset, *size, *stride)
    if len(size) != len(stride) or not all(isinstance(n, int) and n >= 0 for n in ints):
        raise _Unreadable(
            f"malformed tensor: offset {storage_offset}, size {size}, stride {stride}"
        )
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= storage.size:
        raise _Unreadable(
            f"tensor of size {size}, stride {stride}, offset {storage_offset} needs element {last}"
            f" of a {storage.size}-element storage"
        )
    byte_strides = [s * storage.itemsize for s in stride]
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size, strides=byte_strides, writeable=False
    )
    return view.copy()


def _rebuild_parameter(data, requires_grad, backward_hooks, *_):
    """Stand-in for `torch._utils._rebuild_parameter[_with_state]`: a parameter is its data."""
    if not isinstance(data, np.ndarray):
        raise _Unreadable(f"parameter data is {type(data).__name__}, not a tensor")
    return data


# (module, name) -> what the pickle gets instead. Storage classes become their names (immutable, so
# a pickle's BUILD cannot alter them for later loads); `persistent_load` looks up the dtype.
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): name for name in _STORAGE_DTYPES},
}


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles `<archive>/data.pkl`, resolving storage records from `<archive>/data/<key>`."""

    def __init__(self, zf: zipfile.ZipFile, archive: str, byteorder: str):
        super().__init__(zf.open(f"{archive}/data.pkl"))
        self._zf, self._archive, self._byteorder = zf, archive, byteorder
        self._raw: dict[str, bytes] = {}  # tensors that share a storage read it once

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[module, name]
        except KeyError:
            raise _Unreadable(
                f"refuses to load '{module}.{name}': only tensor state dicts can be read"
                " (no code is executed)"
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Unreadable(f"unsupported persistent id {pid!r:.100}")
        _, storage_type, key, _location, numel = pid
        dtype = _STORAGE_DTYPES.get(storage_type) if isinstance(storage_type, str) else None
        if dtype is None or not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise _Unreadable(f"malformed storage record {pid!r:.100}")
        member = f"{self._archive}/data/{key}"
        if member not in self._raw:
            try:
                self._raw[member] = self._zf.read(member)
            except KeyError:
                raise _Unreadable(f"missing storage member '{member}'") from None
        raw = self._raw[member]
        if len(raw) < numel * dtype.itemsize:
            raise _Unreadable(
                f"storage member '{member}' has {len(raw)} bytes, needs {numel * dtype.itemsize}"
            )
        storage = np.frombuffer(raw, dtype, count=numel)
        return storage.byteswap() if self._byteorder == "big" else storage


def _archive_name(zf: zipfile.ZipFile) -> str:
    """The top-level folder holding `data.pkl` (torch names it after the file it saved to)."""
    pickles = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise _Unreadable(f"expected one '<archive>/data.pkl' member, found {len(pickles)}")
    return pickles[0].removesuffix("/data.pkl")


def _byteorder(zf: zipfile.ZipFile, archive: str) -> str:
    """Storage byte order; files older than the `byteorder` member are little-endian."""
    try:
        order = zf.read(f"{archive}/byteorder").decode("ascii", "replace")
    except KeyError:
        return "little"
    if order not in ("little", "big"):
        raise _Unreadable(f"unknown byteorder {order!r:.40}")
    return order


def _load_torch_zip(path: Path) -> object:
    with path.open("rb") as f:
        if f.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            raise _Unreadable(_NOT_A_CHECKPOINT)
    try:
        with zipfile.ZipFile(path) as zf:
            archive = _archive_name(zf)
            return _StateDictUnpickler(zf, archive, _byteorder(zf, archive)).load()
    except _Unreadable:
        raise
    # What zipfile and a malformed pickle raise (a REDUCE of the wrong arguments is a TypeError).
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
        OverflowError,
        NotImplementedError,
    ) as err:
        raise _Unreadable(f"corrupt or truncated checkpoint ({type(err).__name__}: {err})") from err


def _is_tensor_dict(obj: object) -> bool:
    return isinstance(obj, dict) and all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items()
    )


def _as_state_dict(obj: object) -> dict[str, np.ndarray]:
    """The tensor dict in a loaded pickle: the top level, or the one well-known wrapper entry.

    Non-tensor entries are an error rather than silently dropped, so that a checkpoint of some
    other shape is noticed instead of being read as a partial set of weights.
    """
    if not isinstance(obj, dict):
        raise _Unreadable(f"top level is {type(obj).__name__}, not a dict of tensors")
    if _is_tensor_dict(obj):
        return dict(obj)
    wrapped = [k for k in _WRAPPER_KEYS if _is_tensor_dict(obj.get(k))]
    if len(wrapped) == 1:
        return dict(obj[wrapped[0]])
    if wrapped:
        raise _Unreadable(f"ambiguous: entries {wrapped} all hold dicts of tensors")
    others = [repr(k) for k, v in obj.items() if not isinstance(v, np.ndarray)]
    raise _Unreadable(
        f"not a state dict: entries {', '.join(others[:10])}{', ...' * (len(others) > 10)} are"
        f" not tensors, and none of {', '.join(map(repr, _WRAPPER_KEYS))} holds a dict of tensors"
    )


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    try:
        return safetensors.numpy.load_file(path)
    except safetensors.SafetensorError as err:
        raise _Unreadable(f"not a valid safetensors file ({err})") from err


def _some_keys(keys: list[str], limit: int = _SHOWN_KEYS) -> str:
    """`'a', 'b', ... (N in all)`: at most `limit` of `keys`, quoted."""
    shown = ", ".join(map(repr, keys[:limit]))
    return shown + f", ... ({len(keys)} in all)" if len(keys) > limit else shown


def strip_prefix(state: Mapping[str, T], prefix: str, *, source: str = "") -> dict[str, T]:
    """The entries of `state` whose key starts with `prefix`, with the prefix removed.

    A checkpoint may hold several networks side by side (a backbone under `features.` and a head
    under `head.`), and the prefix picks one; the keys outside it are ignored and listed in one
    INFO log line (prefixed with `source`, e.g. the file's path). That drops no weights unnoticed:
    the selected entries are still checked strictly against the model they are loaded into. A
    non-empty prefix that no key starts with is a `ValueError` (a wrong prefix, which would
    otherwise load nothing) listing some of the keys there are. An empty prefix keeps every key.
    """
    if not prefix:
        return dict(state)
    kept = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    if not kept:
        keys = list(state)
        roots = list(dict.fromkeys(k.split(".", 1)[0] + "." * ("." in k) for k in keys))
        raise ValueError(
            f"no key starts with prefix {prefix!r}; the {len(keys)} keys"
            + (f" start with {_some_keys(roots)} and include {_some_keys(keys, 5)}" if keys else "")
        )
    ignored = [k for k in state if not k.startswith(prefix)]
    if ignored:
        _log.info(
            "%sprefix %r selects %d of %d keys; ignoring the %d others: %s",
            f"{source}: " if source else "",
            prefix,
            len(kept),
            len(state),
            len(ignored),
            _some_keys(ignored),
        )
    return kept


def read_state_dict(path, prefix: str = "") -> dict[str, np.ndarray]:
    """Tensors of a `.pt`/`.pth`/`.bin` (torch.save zip format) or `.safetensors` file, by name.

    With a `prefix` (e.g. "module." or "features."), only the keys that start with it are returned,
    stripped of it; the others are logged and ignored, and a prefix no key starts with raises
    `ValueError` (see `strip_prefix`).

    A torch checkpoint may be a state dict or a dict wrapping one under exactly one of the keys
    "state_dict", "model_state_dict" or "model" (other entries, e.g. "epoch", are then ignored).
    Problems with the file's contents raise `ValueError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        if path.suffix == ".safetensors":
            state = _read_safetensors(path)
        else:
            state = _as_state_dict(_load_torch_zip(path))
        return strip_prefix(state, prefix, source=str(path))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
