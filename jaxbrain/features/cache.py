"""Layer banks cached on disk, keyed by everything they depend on (docs/design.md §6).

Layout: ``cache_dir/<key>/`` holds ``meta.json`` (format, key, the layers in forward order with
their files and shapes, the bank's ``meta``), ``stimulus_ids.npy`` (unicode, no pickle) and one
``layerNNNN.npy`` (float32, n × d) per layer. ``<key>`` is the sha256 of a canonical JSON of the
model class, weights hash, stimuli hash, reference-images hash, preprocessing, reduction and
taps, so a changed configuration never reuses a stale bank.

Writes are atomic: a bank is written into a hidden temporary directory beside its final one
(``.<key>.*.tmp``) and renamed into place only when complete, so a killed save leaves debris
that is never loaded (and is safe to delete), never a half bank under the final name. Every
layer file's sha256 is stored and checked on load: an entry under the final name that is
unreadable, truncated or changed can only come from outside damage, so ``load`` raises
:class:`DamagedBank` naming it, and ``extract_cached`` moves it aside (``.<key>.damaged-N``,
kept for inspection) with a warning and recomputes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from jaxbrain.features.extract import (
    LayerBank,
    check_compute_dtype,
    check_ids,
    check_images,
    extract_fingerprinted,
    fingerprint,
)
from jaxbrain.features.reductions import DEFAULT_REDUCTION, Reduction, as_reduction
from jaxbrain.files import write_error
from jaxbrain.models.taps import ALL

FORMAT = "jaxbrain.layerbank/1"
logger = logging.getLogger(__name__)


def _canonical_taps(taps: Iterable[str] | str) -> str | list[str]:
    if isinstance(taps, str):
        return taps if taps == ALL else [taps]
    return sorted(set(taps))  # the bank is in forward order whatever order they were asked in


def cache_key(*, weights_hash: str, stimuli_hash: str, preprocessing: dict | None,
              reduction: Reduction | str, taps: Iterable[str] | str,
              reference_hash: str | None = None, model_class: str = "",
              compute_dtype: str = "float32") -> str:
    """sha256 hex of a canonical JSON of everything a layer bank depends on (the compute
    dtype only when it is not float32, so float32 banks keep the keys they always had)."""
    payload = {"format": FORMAT, "model_class": model_class, "weights_hash": weights_hash,
               "stimuli_hash": stimuli_hash, "reference_hash": reference_hash,
               "preprocessing": preprocessing, "reduction": as_reduction(reduction).key(),
               "taps": _canonical_taps(taps)}
    if compute_dtype != "float32":
        payload["compute_dtype"] = compute_dtype
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def save(bank: LayerBank, cache_dir: str | os.PathLike, key: str) -> Path:
    """Write ``bank`` to ``cache_dir/key/`` atomically, with the sha256 of every layer file;
    returns that path. A failed write (a full disk) raises :class:`WriteError` naming the file
    and the cause, and leaves nothing under the final name."""
    cache_dir = Path(cache_dir)
    final = cache_dir / key
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=cache_dir))
    except OSError as err:
        raise write_error(cache_dir, err) from err
    current = tmp
    try:
        current = tmp / "stimulus_ids.npy"
        np.save(current, np.asarray(bank.stimulus_ids).astype(str))
        entries = []
        for i, (name, values) in enumerate(bank.layers.items()):
            file = f"layer{i:04d}.npy"
            current = tmp / file
            values = np.ascontiguousarray(values, np.float32)
            np.save(current, values)
            entries.append({"name": name, "file": file, "shape": list(np.shape(values)),
                            "sha256": hashlib.sha256(values.data).hexdigest()})
        info = {"format": FORMAT, "key": key, "layers": entries, "meta": bank.meta}
        current = tmp / "meta.json"
        current.write_text(json.dumps(info, indent=1))
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "meta.json").exists():
                raise
            shutil.rmtree(tmp)  # another writer finished first; the same key is the same bank
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_error(final / current.name, err) from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load(cache_dir: str | os.PathLike, key: str) -> LayerBank | None:
    """The bank saved under ``key`` (layers memory-mapped read-only; ``meta`` gains
    ``cache_key`` and ``cache_dir``), or None if there is none. Every layer file is checked
    against its stored sha256: a damaged entry (truncated, or overwritten with other values
    of the same size) raises a :class:`DamagedBank` error naming its path."""
    path = Path(cache_dir) / key
    if not path.exists():
        return None
    try:
        info = json.loads((path / "meta.json").read_text())
        if info.get("format") != FORMAT or info.get("key") != key:
            raise ValueError(f"meta.json has format {info.get('format')!r} and key "
                             f"{info.get('key')!r}; expected {FORMAT!r} and {key!r}")
        ids = np.load(path / "stimulus_ids.npy")
        layers = {}
        for entry in info["layers"]:
            values = np.load(path / entry["file"], mmap_mode="r")
            if values.shape != (len(ids), *entry["shape"][1:]) or values.dtype != np.float32:
                raise ValueError(f"{entry['file']} holds {values.dtype} {values.shape}; expected "
                                 f"float32 {tuple(entry['shape'])} for {len(ids)} stimuli")
            if "sha256" in entry and hashlib.sha256(values.data).hexdigest() != entry["sha256"]:
                raise ValueError(f"{entry['file']} does not match its stored sha256 (its values "
                                 "were changed after it was written)")
            layers[entry["name"]] = values
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DamagedBank(f"layer bank cache entry {path} is corrupt or truncated: {err}") \
            from err
    return LayerBank(stimulus_ids=ids, layers=layers, meta=_located(info["meta"], cache_dir, key))


class DamagedBank(ValueError):
    """A cache entry that exists but cannot be trusted (see :func:`load`)."""


def quarantine(cache_dir: str | os.PathLike, key: str) -> Path:
    """Move a damaged entry aside (``<key>.damaged-<n>``), kept for inspection, never loaded."""
    path = Path(cache_dir) / key
    for n in range(1000):
        target = path.with_name(f".{key}.damaged-{n}")
        if not target.exists():
            os.rename(path, target)
            return target
    raise DamagedBank(f"{path}: too many damaged copies beside it; delete them")


def _located(meta: dict, cache_dir, key: str) -> dict:
    """``meta`` plus where the bank lives, so a caller can ``load`` it again later."""
    return {**meta, "cache_key": key, "cache_dir": str(cache_dir)}


def extract_cached(model, images, stimulus_ids: Sequence[str], *,
                   cache_dir: str | os.PathLike, taps: Iterable[str] | str = ALL,
                   reduction: Reduction | str = DEFAULT_REDUCTION, batch_size: int | None = 32,
                   reference_images: np.ndarray | None = None,
                   memory_budget_bytes: int = 4 << 30, progress=None, model_name: str = "",
                   preprocessing: dict | None = None, compute_dtype: str = "float32",
                   activation_memory_bytes: int | None = None,
                   timings: dict | None = None) -> LayerBank:
    """``extract`` through the cache: the saved bank when one matches every input and option,
    else a fresh extraction, saved before it is returned. Its ``meta`` names the entry
    (``cache_key``, ``cache_dir``) for a later ``load``. ``timings``: as ``extract``'s (left as
    they are when the bank comes from the cache)."""
    images = check_images(images, "images")
    ids = check_ids(stimulus_ids, len(images))
    reduction = as_reduction(reduction)
    reference = (check_images(reference_images, "reference_images")
                 if reduction.needs_reference else None)
    prints = fingerprint(model, images, ids, reference)
    key = cache_key(weights_hash=prints["weights_hash"], stimuli_hash=prints["stimuli_hash"],
                    preprocessing=preprocessing, reduction=reduction, taps=taps,
                    reference_hash=prints["reference_hash"], model_class=prints["model_class"],
                    compute_dtype=check_compute_dtype(compute_dtype))
    try:
        bank = load(cache_dir, key)
    except DamagedBank as err:  # recomputed; the damaged entry is kept aside, and said so
        moved = quarantine(cache_dir, key)
        logger.warning("%s; moved to %s and recomputing", err, moved)
        bank = None
    if bank is None:
        bank = extract_fingerprinted(model, images, ids, prints, taps=taps, reduction=reduction,
                        batch_size=batch_size, reference=reference,
                        memory_budget_bytes=memory_budget_bytes, progress=progress,
                        model_name=model_name, preprocessing=preprocessing,
                        compute_dtype=compute_dtype,
                        activation_memory_bytes=activation_memory_bytes, timings=timings)
        save(bank, cache_dir, key)
        # Served from the saved files (memory-mapped), not the extraction's arrays: an
        # unreduced ~800k-feature layer (10 GB for 3200 stimuli) then leaves the process's
        # memory once written and is read back block by block where it is scored.
        bank = load(cache_dir, key)
    return bank
