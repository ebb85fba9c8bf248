"""Streamed extraction of every layer tap into a reduced layer bank (docs/design.md §5).

The model runs once over the stimuli in fixed-size batches (the last one zero-padded, so one
compiled function serves all); each requested tap is flattened and reduced inside that jitted
function, so only reduced batches reach the host, where they fill preallocated arrays. Memory
stays bounded by one batch of one model's activations plus the reduced bank, whatever the
number and size of the layers. The model runs in eval mode (running batch-norm statistics, no
dropout), on a view of it: the caller's model is left as it was.

PCA is fitted per layer on a reference image set's activations, which are held whole on the
host (n_ref × D per tap) together with the fitted components (D × k). Taps are therefore split,
in forward order, into groups whose reference activations plus components fit
``memory_budget_bytes``; each group costs one pass over the reference images (to fit) and one
over the stimuli (to transform). When everything fits there is one group; a tap too large for
the budget on its own gets a group of its own. On top of the budget come the batches in flight
(two at a time, so host and device overlap) of the group's unreduced activations.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxbrain.features.reductions import (
    DEFAULT_REDUCTION,
    NoReduction,
    Reduction,
    as_reduction,
    flatten,
)
from jaxbrain.features.stimuli import PlacedStimuli
from jaxbrain.models.taps import ALL

COMPUTE_DTYPES = ("float32", "bfloat16")
# Batches placed ahead of the device by the host threads (the queue between them).
PREFETCH = 2


@dataclasses.dataclass
class LayerBank:
    """Reduced activations of every extracted layer, rows in ``stimulus_ids`` order."""

    stimulus_ids: np.ndarray  # (n,) str
    layers: dict[str, np.ndarray]  # tap name -> (n, d) float32, forward order
    meta: dict  # model, hashes, preprocessing, reduction, unreduced tap shapes


def weights_hash(model: nnx.Module) -> str:
    """sha256 over every Param and BatchStat of the model: path, kind, dtype, shape and bytes."""
    state = nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))
    digest = hashlib.sha256()
    for path, variable in nnx.to_flat_state(state):
        value = np.ascontiguousarray(variable.get_value())
        header = ["/".join(map(str, path)), type(variable).__name__, value.dtype.str, value.shape]
        digest.update(json.dumps(header).encode())
        digest.update(value)
    return digest.hexdigest()


def stimuli_hash(stimulus_ids: Sequence[str] | None, images) -> str:
    """sha256 over the stimulus ids (if given) and the images' dtype, shape and bytes (for
    :class:`PlacedStimuli`, their digest: the raw images and the placement)."""
    ids = None if stimulus_ids is None else [str(i) for i in stimulus_ids]
    if isinstance(images, PlacedStimuli):
        text = json.dumps([ids, "placed", images.digest])
        return hashlib.sha256(text.encode()).hexdigest()
    images = np.asarray(images)
    digest = hashlib.sha256()
    digest.update(json.dumps([ids, images.dtype.str, images.shape]).encode())
    for image in images:  # row by row: no full contiguous copy of a large set
        digest.update(np.ascontiguousarray(image))
    return digest.hexdigest()


def check_images(images, what: str):
    """Model inputs as extraction takes them (float NHWC, or :class:`PlacedStimuli`), or a
    ValueError naming ``what`` is wrong."""
    if images is None:
        raise ValueError(f"{what} are required")
    if isinstance(images, PlacedStimuli):
        return images
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"{what} must be float NHWC model inputs (see features.prepare_images); "
                         f"got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] == 0:
        raise ValueError(f"{what} must have shape (n ≥ 1, height, width, 3); got {images.shape}")
    return images.astype(np.float32, copy=False)


def check_ids(stimulus_ids, n: int) -> np.ndarray:
    """``n`` distinct stimulus ids as strings, or a ValueError naming the duplicates."""
    ids = np.asarray(stimulus_ids).astype(str)
    if ids.shape != (n,):
        raise ValueError(f"stimulus_ids must be {n} ids, one per image; got shape {ids.shape}")
    unique, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"duplicate stimulus ids: {unique[counts > 1][:10].tolist()}")
    return ids


def fingerprint(model, images: np.ndarray, stimulus_ids: np.ndarray, reference) -> dict:
    """What a bank depends on besides its options: the model and every input image."""
    return {"model_class": type(model).__qualname__, "weights_hash": weights_hash(model),
            "stimuli_hash": stimuli_hash(stimulus_ids, images),
            "reference_hash": None if reference is None else stimuli_hash(None, reference)}


def _eval_split(model: nnx.Module):
    """(graphdef, state) of an eval-mode view sharing the model's arrays."""
    view = nnx.merge(*nnx.split(model))
    view.eval()
    return nnx.split(view)


def _tap_shapes(graphdef, state, taps, image_shape) -> dict[str, tuple[int, ...]]:
    """Per-image shapes of the requested taps in forward order (traced; unknown names raise
    the model's KeyError listing the valid ones)."""
    def trace(state, x):
        return nnx.merge(graphdef, state)(x, taps=taps)[1]

    out = jax.eval_shape(trace, state, jax.ShapeDtypeStruct((1, *image_shape), jnp.float32))
    return {name: tuple(value.shape[1:]) for name, value in out.items()}


@functools.partial(jax.jit, static_argnames=("graphdef", "names", "reduction", "dtype"))
def _reduced_batch(state, params, x, *, graphdef, names: tuple[str, ...], reduction: Reduction,
                   dtype: str = "float32"):
    if dtype != "float32":  # the model in ``dtype``; reductions in float32
        state = jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating)
                             else a, state)
        x = x.astype(dtype)
    _, acts = nnx.merge(graphdef, state)(x, taps=names)
    return {name: reduction.apply(params[name], flatten(acts[name]).astype(jnp.float32))
            for name in names}


def auto_batch_size(per_image_bytes: int, n: int, memory_bytes: int) -> int:
    """The largest batch whose unreduced activations (``per_image_bytes`` per image, every
    tap extracted at once) fit ``memory_bytes``: at least 1, at most ``n`` and 256."""
    return int(max(1, min(n, 256, memory_bytes // max(per_image_bytes, 1))))


def default_activation_memory() -> int:
    """Bytes a batch's activations may take: a quarter of the device's memory where the
    device reports it (accelerators), else 2 GiB of host memory."""
    stats = jax.local_devices()[0].memory_stats() or {}
    limit = stats.get("bytes_limit")
    return int(limit) // 4 if limit else 2 << 30


def _input_batch(images, start: int, stop: int, batch_size: int) -> np.ndarray:
    """Model inputs of rows ``start:stop``, zero-padded to ``batch_size`` rows (one compiled
    function serves every batch)."""
    batch = (images.batch(start, stop) if isinstance(images, PlacedStimuli)
             else np.asarray(images[start:stop], np.float32))
    if len(batch) < batch_size:
        batch = np.concatenate([batch, np.zeros((batch_size - len(batch), *batch.shape[1:]),
                                                batch.dtype)])
    return batch


def _run(graphdef, state, images, ids, names, params, reduction, batch_size, progress, dims, what,
         dtype="float32", timings=None):
    """One pass over ``images``: the reduced activations of ``names``, (n, d) float32 each.

    Host threads prepare (place) the next ``PREFETCH`` batches while the device runs the
    current one; the batch before is copied out meanwhile.  ``timings`` (a dict) gains the
    host threads' placement seconds and the seconds the device's feeder waited for them."""
    n = len(images)
    batch_size = min(batch_size, n)
    params = jax.device_put(params)  # once, not with every batch
    out = {name: np.empty((n, reduction.out_dim(params[name], dims[name])), np.float32)
           for name in names}
    timings = {} if timings is None else timings
    timings.setdefault("placement_seconds", 0.0)
    timings.setdefault("input_wait_seconds", 0.0)

    def store(start, result):
        rows = min(batch_size, n - start)
        for name in names:  # forward order: the first bad layer is the one reported
            block = np.asarray(result[name])[:rows]
            bad = ~np.all(np.isfinite(block), axis=1)
            if bad.any():
                raise ValueError(f"layer {name!r}: NaN or infinite activations for {what} "
                                 f"{ids[start:start + rows][bad][:5].tolist()}")
            out[name][start:start + rows] = block

    def prepare(start):
        begin = time.perf_counter()
        batch = _input_batch(images, start, min(start + batch_size, n), batch_size)
        return batch, time.perf_counter() - begin

    starts = list(range(0, n, batch_size))
    steps: Iterable[int] = starts
    if progress is not None:
        steps = progress(steps)
    workers = max(1, min(PREFETCH, (os.cpu_count() or 1)))
    with ThreadPoolExecutor(workers, thread_name_prefix="jaxbrain-inputs") as pool:
        ahead = {k: pool.submit(prepare, starts[k]) for k in range(min(PREFETCH, len(starts)))}
        pending = None
        for k, _ in enumerate(steps):
            begin = time.perf_counter()
            batch, placing = ahead.pop(k).result()
            timings["input_wait_seconds"] += time.perf_counter() - begin
            timings["placement_seconds"] += placing
            if k + PREFETCH < len(starts):
                ahead[k + PREFETCH] = pool.submit(prepare, starts[k + PREFETCH])
            # dispatch this batch before storing the previous one, so host and device overlap
            result = _reduced_batch(state, params, jax.device_put(batch), graphdef=graphdef,
                                    names=tuple(names), reduction=reduction, dtype=dtype)
            if pending is not None:
                store(*pending)
            pending = (starts[k], result)
        if pending is not None:
            store(*pending)
    return out


def pca_cost(dim: int, n_reference: int, n_components: int) -> int:
    """Host bytes of fitting one layer's PCA: its float32 reference activations and
    components (0 for a layer PCA keeps as it is)."""
    return 4 * dim * (n_reference + min(n_components, n_reference)) if dim > n_components else 0


def group_layers(names, dims, cost: Callable[[int], int], budget: int) -> list[list[str]]:
    """Consecutive taps in groups whose summed cost stays within budget (a tap over budget on
    its own is a group of its own): each group is one pass over the reference images."""
    groups: list[list[str]] = [[]]
    used = 0
    for name in names:
        c = cost(dims[name])
        if groups[-1] and used + c > budget:
            groups.append([])
            used = 0
        groups[-1].append(name)
        used += c
    return groups


def extract(model: nnx.Module, images, stimulus_ids: Sequence[str], *,
            taps: Iterable[str] | str = ALL, reduction: Reduction | str = DEFAULT_REDUCTION,
            batch_size: int | None = 32, reference_images: np.ndarray | None = None,
            memory_budget_bytes: int = 4 << 30, progress: Callable | None = None,
            model_name: str = "", preprocessing: dict | None = None,
            compute_dtype: str = "float32", activation_memory_bytes: int | None = None,
            timings: dict | None = None) -> LayerBank:
    """The layer bank of ``model`` on ``images``: float32 NHWC model inputs (e.g. from
    ``prepare_images``), or a :class:`PlacedStimuli` that places each batch on host threads
    while the device runs the previous one (``preprocessing`` is recorded as given, e.g.
    ``preprocessing_key(...)``).

    ``reduction``: a Reduction or its name; the default sketches every layer wider than 1000
    features to 1000 (``DEFAULT_REDUCTION = RandomProjection()``), so the bank stays small. ``pca``
    needs ``reference_images``. ``progress`` wraps each pass's batch iterator (e.g. tqdm).
    ``batch_size`` None: the largest batch whose unreduced activations fit
    ``activation_memory_bytes`` (default :func:`default_activation_memory`).
    ``compute_dtype`` "bfloat16" runs the model in bfloat16 (reductions stay float32): faster
    on accelerators, different numbers (a separate cache entry; BUILD_NOTES.md says by how much).
    ``timings`` (a dict) gains the seconds the host threads spent placing images
    (``placement_seconds``) and the model waited for them (``input_wait_seconds``).
    """
    images = check_images(images, "images")
    ids = check_ids(stimulus_ids, len(images))
    reduction = as_reduction(reduction)
    reference = (check_images(reference_images, "reference_images")
                 if reduction.needs_reference else None)
    return extract_fingerprinted(
        model, images, ids, fingerprint(model, images, ids, reference), taps=taps,
        reduction=reduction, batch_size=batch_size, reference=reference,
        memory_budget_bytes=memory_budget_bytes, progress=progress, model_name=model_name,
        preprocessing=preprocessing, compute_dtype=compute_dtype,
        activation_memory_bytes=activation_memory_bytes, timings=timings)


def check_compute_dtype(compute_dtype: str) -> str:
    """The dtype the model runs in (``COMPUTE_DTYPES``), or a ValueError."""
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}; got {compute_dtype!r}")
    return compute_dtype


def extract_fingerprinted(model, images, ids, prints: dict, *, taps, reduction: Reduction,
                          batch_size: int | None, reference, memory_budget_bytes: int,
                          progress, model_name: str, preprocessing,
                          compute_dtype: str = "float32",
                          activation_memory_bytes: int | None = None,
                          timings: dict | None = None) -> LayerBank:
    """``extract`` on inputs checked by :func:`check_images` / :func:`check_ids` whose
    :func:`fingerprint` is already known (``extract_cached`` computes it for its key)."""
    if batch_size is not None and not (isinstance(batch_size, int) and batch_size > 0):
        raise ValueError(f"batch_size must be a positive integer or None (from the memory "
                         f"budget); got {batch_size!r}")
    dtype = check_compute_dtype(compute_dtype)
    graphdef, state = _eval_split(model)
    shapes = _tap_shapes(graphdef, state, taps, images.shape[1:])
    if not shapes:
        raise ValueError("no layer taps requested")
    names = list(shapes)
    dims = {name: math.prod(shape) for name, shape in shapes.items()}
    budget = activation_memory_bytes or default_activation_memory()
    input_bytes = 4 * math.prod(images.shape[1:])
    timings = {} if timings is None else timings
    batches: list[int] = []

    def size_for(group, n):
        """The batch of one pass: as asked, or from the memory budget for its taps."""
        chosen = batch_size or auto_batch_size(input_bytes + 4 * sum(dims[g] for g in group),
                                               n, budget)
        batches.append(min(chosen, n))
        return chosen

    def run(images_, ids_, group, params, reduction_, what):
        return _run(graphdef, state, images_, ids_, group, params, reduction_,
                    size_for(group, len(images_)), progress, dims, what, dtype, timings)

    layers: dict[str, np.ndarray] = {}
    if reduction.needs_reference:
        if reference.shape[1:] != images.shape[1:]:
            raise ValueError(f"reference images have shape {reference.shape[1:]} per image, "
                             f"the stimuli {images.shape[1:]}; they must match")
        n_ref = len(reference)
        ref_ids = np.arange(n_ref).astype(str)

        def cost(dim):
            return pca_cost(dim, n_ref, reduction.n_components)

        groups = group_layers(names, dims, cost, memory_budget_bytes)
        for group in groups:
            fitted = [name for name in group if reduction.reduces(dims[name])]
            acts = (run(reference, ref_ids, fitted, dict.fromkeys(fitted), NoReduction(),
                        "reference images") if fitted else {})
            params = {name: reduction.fit(name, acts.pop(name)) if name in fitted else None
                      for name in group}
            layers.update(run(images, ids, group, params, reduction, "stimuli"))
    else:
        groups = [names]
        params = {name: reduction.prepare(name, dims[name]) for name in names}
        layers = run(images, ids, names, params, reduction, "stimuli")
    meta = {"model": model_name or getattr(model, "arch", type(model).__name__), **prints,
            "preprocessing": preprocessing, "reduction": reduction.key(),
            "taps": taps if taps == ALL else names, "image_shape": list(images.shape[1:]),
            "tap_shapes": {name: list(shape) for name, shape in shapes.items()},
            "features": dims, "passes": len(groups), "compute_dtype": dtype,
            "batch_sizes": batches}
    return LayerBank(stimulus_ids=ids, layers={name: layers[name] for name in names}, meta=meta)
