"""Neural assemblies: labelled recordings as plain ``xarray.DataArray``s.

An assembly has dims ``presentation`` × ``neuroid`` (× ``time_bin``), with coordinates along
each dim: ``stimulus_id`` (and e.g. ``repetition``, ``object_name``) on presentations,
``neuroid_id`` and ``region`` on neuroids, ``time_bin_start`` / ``time_bin_end`` (ms) on time
bins.  No subclass and no MultiIndex: plain coordinates survive any xarray version, and they
are exactly what Brain-Score writes to disk.  The operations here turn an assembly into the
static-shape arrays the kernels take: trial-averaged targets, repetitions for ceilings, rows
aligned to activations.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import xarray as xr

PRESENTATION, NEUROID, TIME_BIN = "presentation", "neuroid", "time_bin"


def validate(assembly: xr.DataArray, source: str = "assembly") -> xr.DataArray:
    """Check dims and required coordinates; return the assembly (for chaining)."""
    dims = set(assembly.dims)
    if not {PRESENTATION, NEUROID} <= dims or not dims <= {PRESENTATION, NEUROID, TIME_BIN}:
        raise ValueError(
            f"{source}: dims must be presentation x neuroid [x time_bin], got {assembly.dims}"
        )
    required = {"stimulus_id": PRESENTATION, "neuroid_id": NEUROID}
    if TIME_BIN in dims:
        required |= {"time_bin_start": TIME_BIN, "time_bin_end": TIME_BIN}
    for coord, dim in required.items():
        if coord not in assembly.coords:
            raise ValueError(f"{source}: missing coordinate {coord!r} along {dim!r}")
        if assembly[coord].dims != (dim,):
            raise ValueError(
                f"{source}: coordinate {coord!r} must lie along {dim!r}, "
                f"got dims {assembly[coord].dims}"
            )
    return assembly


def select_region(assembly: xr.DataArray, region: str) -> xr.DataArray:
    """Neuroids of one region (``region`` coordinate)."""
    if "region" not in assembly.coords:
        raise ValueError("assembly has no 'region' coordinate along 'neuroid'")
    keep = np.asarray(assembly["region"].values) == region
    if not keep.any():
        present = sorted(set(np.asarray(assembly["region"].values).tolist()))
        raise ValueError(f"no neuroids in region {region!r}; regions present: {present}")
    return assembly.isel({NEUROID: keep})


def time_window(assembly: xr.DataArray, start_ms: float, end_ms: float) -> xr.DataArray:
    """Average the time bins that lie inside [start_ms, end_ms]; drops the time_bin dim.

    An assembly without a time_bin dim is returned unchanged (already one window).
    """
    if TIME_BIN not in assembly.dims:
        return assembly
    starts = np.asarray(assembly["time_bin_start"].values, dtype=float)
    ends = np.asarray(assembly["time_bin_end"].values, dtype=float)
    inside = (starts >= start_ms) & (ends <= end_ms)
    if not inside.any():
        bins = [f"{s:g}-{e:g}" for s, e in zip(starts, ends, strict=True)]
        raise ValueError(
            f"no time bin lies inside the window {start_ms:g}-{end_ms:g} ms; bins: {bins}"
        )
    return assembly.isel({TIME_BIN: inside}).mean(TIME_BIN, keep_attrs=True)


def _stimulus_groups(assembly: xr.DataArray):
    ids = np.asarray(assembly["stimulus_id"].values)
    unique, inverse = np.unique(ids, return_inverse=True)  # sorted by stimulus_id
    return unique, inverse


def average_repetitions(assembly: xr.DataArray) -> xr.DataArray:
    """Mean over the presentations of each stimulus: one row per stimulus, sorted by
    ``stimulus_id``.  Presentation coordinates that are constant within every stimulus
    (``object_name``, ...) are kept; per-trial ones (``repetition``) are dropped."""
    assembly = _single_window(assembly)
    unique, inverse = _stimulus_groups(assembly)
    data = np.asarray(assembly.transpose(PRESENTATION, NEUROID).values, dtype=np.float64)
    counts = np.bincount(inverse, minlength=unique.size)
    sums = np.zeros((unique.size, data.shape[1]))
    np.add.at(sums, inverse, data)
    first = np.zeros(unique.size, dtype=int)
    first[inverse[::-1]] = np.arange(inverse.size)[::-1]  # first presentation of each stimulus
    coords = {"stimulus_id": (PRESENTATION, unique)}
    for name, coord in assembly.coords.items():
        if coord.dims == (PRESENTATION,) and name != "stimulus_id":
            values = np.asarray(coord.values)
            if np.array_equal(values, values[first][inverse]):
                coords[name] = (PRESENTATION, values[first])
        elif coord.dims == (NEUROID,):
            coords[name] = (NEUROID, np.asarray(coord.values))
    return xr.DataArray(
        sums / counts[:, None], dims=(PRESENTATION, NEUROID), coords=coords,
        attrs=dict(assembly.attrs),
    )


class Trials(NamedTuple):
    """Single trials for split-half ceilings, flat: any number of trials per stimulus."""

    data: np.ndarray  # (n_trials, n_neuroids)
    stimulus_index: np.ndarray  # (n_trials,) row of the trial's stimulus in `stimulus_id`
    repetition_index: np.ndarray  # (n_trials,) position of its repetition among the values
    stimulus_id: np.ndarray  # (n_stimuli,) sorted, as in average_repetitions
    n_repetitions: int  # number of distinct repetition values


def repetitions(assembly: xr.DataArray) -> Trials:
    """The trials of a single-window assembly, indexed by stimulus and repetition.

    Repetitions are the sorted distinct values of the ``repetition`` coordinate (as
    Brain-Score splits them); without that coordinate, a trial's repetition is its order of
    appearance among its stimulus's trials.  Stimuli may have different numbers of trials."""
    assembly = _single_window(assembly)
    unique, inverse = _stimulus_groups(assembly)
    counts = np.bincount(inverse, minlength=unique.size)
    if counts.max() < 2:
        raise ValueError(
            "the assembly has a single presentation per stimulus: a ceiling needs repetitions"
        )
    if "repetition" in assembly.coords:
        values, repetition_index = np.unique(np.asarray(assembly["repetition"].values),
                                             return_inverse=True)
        n_repetitions = values.size
    else:
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        repetition_index = np.empty(inverse.size, dtype=np.int64)
        repetition_index[order] = np.arange(inverse.size) - np.repeat(starts, counts)
        n_repetitions = int(counts.max())
    data = np.asarray(assembly.transpose(PRESENTATION, NEUROID).values)
    return Trials(data, inverse.astype(np.int64), repetition_index.astype(np.int64), unique,
                  n_repetitions)


def match_rows(source_ids, target_ids, source: str = "activations",
               target: str = "assembly") -> np.ndarray:
    """Indices into ``source_ids`` that put its rows in the order of ``target_ids``.

    Both must list the same set of stimuli, each once; a mismatch names examples from
    both sides."""
    source_ids, target_ids = np.asarray(source_ids), np.asarray(target_ids)
    for ids, what in ((source_ids, source), (target_ids, target)):
        unique, counts = np.unique(ids, return_counts=True)
        if unique.size != ids.size:
            repeated = unique[counts > 1]
            raise ValueError(f"{what} list {repeated.size} stimulus_id(s) more than once "
                             f"(e.g. {repeated[:5].tolist()})")
    missing = np.setdiff1d(source_ids, target_ids)
    extra = np.setdiff1d(target_ids, source_ids)
    if missing.size or extra.size:
        raise ValueError(
            f"stimulus_id mismatch between {source} and {target}: "
            f"{missing.size} in {source} but not in {target} (e.g. {missing[:5].tolist()}), "
            f"{extra.size} in {target} but not in {source} (e.g. {extra[:5].tolist()})"
        )
    position = {sid: i for i, sid in enumerate(source_ids.tolist())}
    return np.array([position[s] for s in target_ids.tolist()], dtype=np.int64)


def align(targets: xr.DataArray, stimulus_ids, what: str = "activations") -> xr.DataArray:
    """Rows of trial-averaged ``targets`` in the order of ``stimulus_ids`` (e.g. the row
    order of an activation matrix).  Both sides must hold the same set of stimuli."""
    have = np.asarray(targets["stimulus_id"].values)
    if np.unique(have).size != have.size:
        raise ValueError("targets have repeated stimulus_ids: average repetitions first")
    rows = match_rows(have, stimulus_ids, source="assembly", target=what)
    return targets.isel({PRESENTATION: rows})


def _single_window(assembly: xr.DataArray) -> xr.DataArray:
    if TIME_BIN in assembly.dims:
        if assembly.sizes[TIME_BIN] != 1:
            raise ValueError(
                f"assembly has {assembly.sizes[TIME_BIN]} time bins: select a window first "
                "(time_window)"
            )
        assembly = assembly.isel({TIME_BIN: 0})
    return assembly
