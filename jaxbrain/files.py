"""File-level helpers every layer shares: writing a file so that a reader, or a re-run after
kill -9, sees either the old file or the whole new one, never a torn one; a write failure
reported with the path and its cause; JSON that stays JSON when a value is undefined; and the
content digest of a data file or folder that stored results are keyed by."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import uuid
from pathlib import Path

import numpy as np


class WriteError(OSError):
    """A file could not be written; the message names the path and the cause."""


def write_error(path: str | Path, err: OSError) -> WriteError:
    """``err`` (raised while writing ``path``) as a WriteError naming the path and the cause.
    numpy's short writes carry no errno; a nearly full filesystem is then named as the likely
    cause, with the space left."""
    path = Path(path)
    cause = err.strerror or str(err)
    if err.errno is None or err.errno == errno.ENOSPC:
        try:
            free = shutil.disk_usage(_existing_parent(path)).free
            if err.errno == errno.ENOSPC or free < 64 << 20:
                cause = f"no space left on device ({free / 2**20:.0f} MiB free): {cause}"
        except OSError:
            pass
    return WriteError(err.errno, f"cannot write {path}: {cause}")


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable_file(path: str | Path) -> Path:
    """That ``path`` can be created or replaced as a file, before any work is done: its
    parent is (or can be made) a writable folder and it is not itself a folder. Raises
    ValueError naming the path and the problem."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; give a file name")
    parent = _existing_parent(path.parent)
    if not parent.is_dir():
        raise ValueError(f"{path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: {parent} is not writable")
    return path


def atomic_write(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename,
    so a reader (or a re-run after kill -9) sees the old file or the whole new one. The file
    gets the umask's mode, like any other; a failure raises :class:`WriteError` and leaves
    the old file (if any) as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise write_error(path, err) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def json_safe(value):
    """``value`` with every non-finite float (NaN, ±inf) as None, numpy scalars and arrays as
    plain Python: what JSON can hold (``json.dumps`` would write bare ``NaN`` tokens)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_bytes(payload, indent: int | None = 1) -> bytes:
    """Strict JSON of ``payload`` (see :func:`json_safe`: undefined numbers become null)."""
    return json.dumps(json_safe(payload), indent=indent, allow_nan=False).encode()


def fsync_directory(directory: str | Path) -> None:
    """Make renames into ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_digest(path) -> str:
    """sha256 of a data file (or of every file under a folder, names included)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as f:  # streamed: a layer file can be gigabytes
            for block in iter(lambda: f.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()
