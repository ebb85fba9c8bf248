"""Layers over devices: a per-layer kernel run with its leading layer axis split over a mesh.

Scoring layers is embarrassingly parallel: each device takes its own block of layers, the
targets and splits are replicated, and nothing is communicated but the inputs and the
results.  The layer count need not divide the devices: the last layer is repeated to fill
the blocks and the copies are dropped from the results.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def over_layers(fn: Callable, mesh: Mesh, n_replicated: int) -> Callable:
    """``fn(xs, *replicated)`` (independent per layer of ``xs``) as one compiled program
    whose layer axis is split over ``mesh``'s first axis; call it with :func:`put_layers`'d
    ``xs`` and slice its outputs back with :func:`take_layers`."""
    spec = PartitionSpec(mesh.axis_names[0])
    return jax.jit(jax.shard_map(
        fn, mesh=mesh, in_specs=(spec, *[PartitionSpec()] * n_replicated), out_specs=spec,
        check_vma=False,  # per-device loops over local layers; nothing is reduced across
    ))


def put_layers(xs, mesh: Mesh) -> jax.Array:
    """``xs`` padded to a multiple of the mesh's devices (the last layer repeated) and placed
    block-wise on them."""
    axis = mesh.axis_names[0]
    pad = (-xs.shape[0]) % mesh.shape[axis]
    if pad:
        xs = jnp.concatenate([xs, jnp.repeat(xs[-1:], pad, axis=0)])
    return jax.device_put(xs, NamedSharding(mesh, PartitionSpec(axis)))


def take_layers(out, n_layers: int):
    """The first ``n_layers`` entries of every output (the padding dropped)."""
    return jax.tree.map(lambda a: a[:n_layers], out)
