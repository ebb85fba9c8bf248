"""The results store: one parquet row per scored unit (model, layer, benchmark), written so that
a sweep killed at any point and re-run ends with exactly the rows of an uninterrupted run, and a
changed configuration never reuses stale rows (docs/design.md §6).

Layout: ``root/rows/part-<hash>.parquet`` and ``root/neuroids/part-<hash>.parquet``, where the
hash is of the sorted unit keys a part holds, so re-writing the same units replaces the same
file.  Each part is written to a hidden temporary file in its own directory and renamed into
place (atomic on POSIX), the neuroid part before the row part: a unit counts as done only once
its row part exists, and then its neuroids exist too.  Shards of one sweep may write into one
root at the same time: they write distinct parts and never touch one another's.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jaxbrain.files import atomic_write

ROW_COLUMNS: dict[str, pa.DataType] = {
    "unit_key": pa.string(),
    "model": pa.string(),
    "model_key": pa.string(),
    "layer": pa.string(),
    "layer_index": pa.int64(),
    "layer_depth": pa.float64(),
    "benchmark": pa.string(),
    "kind": pa.string(),
    "region": pa.string(),
    "metric": pa.string(),
    "raw": pa.float64(),
    "error": pa.float64(),
    "ceiling": pa.float64(),
    "ceiled": pa.float64(),
    "convention": pa.string(),
    "per_split": pa.list_(pa.float64()),
    "n_neuroids": pa.int64(),
    "nan_neuroids": pa.int64(),
    "status": pa.string(),
    "reduction": pa.string(),
    "options": pa.string(),
    "created": pa.string(),
}
# What a missing optional value becomes; every other column is required.  ``raw`` may only be
# left out of skipped rows, and ``created`` defaults to the time of the write.
ROW_DEFAULTS: dict[str, object] = {
    "region": "",
    "raw": math.nan,
    "error": math.nan,
    "ceiling": math.nan,
    "ceiled": math.nan,
    "convention": "",
    "per_split": [],
    "n_neuroids": None,
    "nan_neuroids": None,
    "created": None,
}
# The dtypes rows() returns, whatever the store holds (counts are nullable: memorability and
# similarity units have no neuroids to count).
ROW_DTYPES: dict[str, str] = {
    name: {"string": "str", "double": "float64"}.get(str(typ), "object")
    for name, typ in ROW_COLUMNS.items()
}
ROW_DTYPES.update(layer_index="int64", n_neuroids="Int64", nan_neuroids="Int64")
ROW_SCHEMA = pa.schema(list(ROW_COLUMNS.items()))

NEUROID_COLUMNS: dict[str, pa.DataType] = {
    "unit_key": pa.string(),
    "neuroid_id": pa.string(),
    "value": pa.float64(),  # Pearson r averaged over splits
    "ceiling": pa.float64(),
}
NEUROID_DTYPES = {"unit_key": "str", "neuroid_id": "str", "value": "float64", "ceiling": "float64"}
NEUROID_SCHEMA = pa.schema(list(NEUROID_COLUMNS.items()))

_PART_GLOB = "part-*.parquet"  # temporary files start with "." and end in ".tmp"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def canonical_json(value) -> str:
    """One JSON text per value: sorted keys, no whitespace, floats as Python's shortest
    round-trip repr (so 0.1 and 0.1000001 differ and every platform agrees), numpy scalars and
    arrays as their Python values, dataclasses as their fields."""
    return json.dumps(
        _canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
        allow_nan=True,
    )


def _canonical(value):
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"mapping keys must be str to be hashed stably, got {bad!r}")
        return {k: _canonical(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _canonical(dataclasses.asdict(value))
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        return _canonical(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, PurePath):
        return value.as_posix()
    if value is None or isinstance(value, str):
        return value
    raise TypeError(
        f"cannot hash a {type(value).__name__} ({value!r}) stably; pass its identifying "
        "content instead (e.g. a file's sha256, a config as a dict)"
    )


def unit_key(**parts) -> str:
    """sha256 of everything a unit's score depends on, e.g. ``unit_key(weights=..., stimuli=...,
    preprocessing=..., reduction=..., benchmark=..., data=..., layer=...)``: the same parts in
    any order give the same key, any changed part a different one."""
    if not parts:
        raise ValueError("unit_key needs the parts the unit depends on")
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()


def part_name(keys: Iterable[str]) -> str:
    """The part file holding exactly these units (independent of their order)."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    return f"part-{digest[:32]}.parquet"


class ResultsStore:
    """Scored units under ``root`` (see the module docstring for the layout and guarantees)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.rows_dir = self.root / "rows"
        self.neuroids_dir = self.root / "neuroids"
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        self.neuroids_dir.mkdir(parents=True, exist_ok=True)

    def write(self, rows: list[dict], neuroids: pd.DataFrame | None = None) -> Path:
        """Store the units in ``rows`` (and their per-neuroid values) as one part; returns the
        row part's path.  Rows are validated against :data:`ROW_COLUMNS` first."""
        if not rows:
            raise ValueError("write() needs at least one row")
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")
        table = [_checked_row(row, now) for row in rows]
        keys = [row["unit_key"] for row in table]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"units written twice in one part: {repeated}")
        name = part_name(keys)
        if neuroids is not None and len(neuroids):
            atomic_write(self.neuroids_dir / name, _parquet(_neuroid_table(neuroids, set(keys))))
        return atomic_write(
            self.rows_dir / name, _parquet(pa.Table.from_pylist(table, schema=ROW_SCHEMA))
        )

    def done_keys(self) -> set[str]:
        """Unit keys already stored (reads only the unit_key column of each row part)."""
        done: set[str] = set()
        for path in _parts(self.rows_dir):
            done.update(_read(path, ROW_SCHEMA, ["unit_key"])["unit_key"].to_pylist())
        return done

    def stale_keys(self, current_keys: Iterable[str]) -> set[str]:
        """Stored units that are not among the current sweep's: rows of changed weights,
        stimuli or options, to be reported (never reused, never deleted automatically)."""
        return self.done_keys() - set(current_keys)

    def rows(self, keys: Iterable[str] | None = None) -> pd.DataFrame:
        """All rows (or those of ``keys``), one per unit (the latest ``created`` wins), sorted
        by model, benchmark and layer order, with :data:`ROW_DTYPES`."""
        frame = self._latest(keys, list(ROW_COLUMNS))
        return frame.drop(columns="_part").reset_index(drop=True)

    def neuroids(self, keys: Iterable[str] | None = None) -> pd.DataFrame:
        """Per-neuroid values of the stored units (or of ``keys``), taken from the part that
        holds each unit's current row, so parts orphaned by a crash are never read."""
        latest = self._latest(keys, ["unit_key", "created"])
        wanted: dict[str, set[str]] = {}
        for part, key in zip(latest["_part"], latest["unit_key"], strict=True):
            wanted.setdefault(part, set()).add(key)
        tables = []
        for part in sorted(wanted):
            path = self.neuroids_dir / part
            if path.exists():
                table = _read(path, NEUROID_SCHEMA)
                tables.append(table.filter(_is_in(table["unit_key"], wanted[part])))
        table = pa.concat_tables(tables) if tables else NEUROID_SCHEMA.empty_table()
        frame = _to_pandas(table, NEUROID_DTYPES)
        return frame.sort_values("unit_key", kind="stable").reset_index(drop=True)

    def _latest(self, keys: Iterable[str] | None, columns: list[str]) -> pd.DataFrame:
        wanted = None if keys is None else set(keys)
        frames = []
        for path in _parts(self.rows_dir):
            table = _read(path, ROW_SCHEMA, columns)
            if wanted is not None:
                table = table.filter(_is_in(table["unit_key"], wanted))
            frame = _to_pandas(table, ROW_DTYPES)
            frames.append(frame.assign(_part=path.name))
        if not frames:
            empty = _to_pandas(pa.schema([ROW_SCHEMA.field(c) for c in columns]).empty_table(),
                               ROW_DTYPES)
            return empty.assign(_part=pd.Series([], dtype="str"))
        frame = pd.concat(frames, ignore_index=True)
        # A unit in two parts (re-grouped by a resumed sweep) keeps its newest row; the part
        # name breaks exact ties so the choice never depends on directory order.
        when = pd.to_datetime(frame["created"], utc=True, format="ISO8601")
        order = frame.assign(_when=when).sort_values(["_when", "_part"], kind="stable")
        frame = frame.loc[order.index].drop_duplicates("unit_key", keep="last")
        by = [c for c in ("model", "benchmark", "layer_index", "layer", "unit_key") if c in frame]
        return frame.sort_values(by, kind="stable")


def _checked_row(row: Mapping, now: str) -> dict:
    unit = row.get("unit_key", "<no unit_key>")
    unknown = sorted(set(row) - set(ROW_COLUMNS))
    if unknown:
        raise ValueError(f"unit {unit}: unknown columns {unknown}; known: {list(ROW_COLUMNS)}")
    status = row.get("status")
    out = {}
    for name, typ in ROW_COLUMNS.items():
        value = row.get(name)
        if value is None:
            optional = name in ROW_DEFAULTS and not (name == "raw" and status == "ok")
            if not optional:
                raise ValueError(f"unit {unit}: required column {name!r} is missing")
            out[name] = now if name == "created" else ROW_DEFAULTS[name]
            continue
        if name == "options" and isinstance(value, Mapping):
            value = canonical_json(value)
        out[name] = _checked_value(unit, name, typ, value)
    _check_domain(unit, out)
    return out


def _checked_value(unit, name: str, typ: pa.DataType, value):
    def wrong(expected):
        return ValueError(
            f"unit {unit}: column {name!r} must be {expected}, got {type(value).__name__} "
            f"{value!r}"
        )

    number = (int, float, np.integer, np.floating)
    if typ == pa.string():
        if not isinstance(value, str):
            raise wrong("str")
        return value
    if typ == pa.int64():
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
            raise wrong("int")
        if value < 0:
            raise wrong("a non-negative int")
        return int(value)
    if typ == pa.float64():
        if isinstance(value, bool | np.bool_) or not isinstance(value, number):
            raise wrong("float")
        return float(value)
    values = np.asarray(value) if isinstance(value, list | tuple | np.ndarray) else None
    if values is None or values.ndim != 1 or not (
        values.size == 0 or np.issubdtype(values.dtype, np.number)
    ) or values.dtype == bool:
        raise wrong("a 1-d list of floats")
    return values.astype(float).tolist()


def _check_domain(unit, row: dict) -> None:
    problems = []
    if not _HEX64.fullmatch(row["unit_key"]):
        problems.append("'unit_key' must be a sha256 hex digest (use unit_key(**parts))")
    if not 0.0 <= row["layer_depth"] <= 1.0:
        problems.append(f"'layer_depth' must lie in [0, 1], got {row['layer_depth']}")
    if not (row["status"] == "ok" or re.fullmatch(r"skipped: \S.*", row["status"])):
        problems.append(f"'status' must be 'ok' or 'skipped: <reason>', got {row['status']!r}")
    try:
        datetime.datetime.fromisoformat(row["created"])
    except ValueError:
        problems.append(f"'created' must be an ISO time, got {row['created']!r}")
    if problems:
        raise ValueError(f"unit {unit}: " + "; ".join(problems))


def _neuroid_table(frame: pd.DataFrame, keys: set[str]) -> pa.Table:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"neuroids must be a pandas DataFrame, got {type(frame).__name__}")
    missing = {"unit_key", "neuroid_id", "value"} - set(frame.columns)
    unknown = set(frame.columns) - set(NEUROID_COLUMNS)
    if missing or unknown:
        raise ValueError(
            f"neuroid table: missing columns {sorted(missing)}, unknown columns "
            f"{sorted(unknown)}; expected {list(NEUROID_COLUMNS)} (ceiling optional)"
        )
    frame = frame.assign(unit_key=frame["unit_key"].astype(str),
                         neuroid_id=frame["neuroid_id"].astype(str))
    if "ceiling" not in frame:
        frame = frame.assign(ceiling=math.nan)
    foreign = sorted(set(frame["unit_key"]) - keys)
    if foreign:
        raise ValueError(f"neuroid values for units not among the rows written: {foreign}")
    for name in ("value", "ceiling"):
        column = frame[name]
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            raise ValueError(f"neuroid table: column {name!r} must be float, got {column.dtype}")
    repeated = frame.duplicated(["unit_key", "neuroid_id"])
    if repeated.any():
        first = frame.loc[repeated, ["unit_key", "neuroid_id"]].iloc[0].tolist()
        raise ValueError(f"neuroid table: (unit_key, neuroid_id) {first} appears twice")
    return pa.Table.from_pandas(
        frame[list(NEUROID_COLUMNS)].astype({"value": float, "ceiling": float}),
        schema=NEUROID_SCHEMA, preserve_index=False,
    )


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _parts(directory: Path) -> list[Path]:
    return sorted(directory.glob(_PART_GLOB))


def _read(path: Path, schema: pa.Schema, columns: list[str] | None = None) -> pa.Table:
    """One part, checked against the schema; an unreadable part is named with what to do."""
    try:
        table = pq.ParquetFile(path).read(columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(
            f"results part {path} cannot be read ({exc}). It is corrupt: delete it and the "
            f"file of the same name under {path.parent.parent}/rows and /neuroids, then re-run "
            "the sweep to recompute its units."
        ) from exc
    expected = schema if columns is None else pa.schema([schema.field(c) for c in columns])
    if not table.schema.remove_metadata().equals(expected):
        raise ValueError(
            f"results part {path} has schema {table.schema.remove_metadata()}, expected "
            f"{expected}; it was written by another version of jaxbrain or another program"
        )
    return table


def _is_in(column, keys: set[str]):
    return pc.is_in(column, value_set=pa.array(sorted(keys), pa.string()))


def _to_pandas(table: pa.Table, dtypes: Mapping[str, str]) -> pd.DataFrame:
    columns = {}
    for name in table.column_names:
        column = table[name]
        if pa.types.is_list(column.type):  # Python lists, not numpy arrays, for JSON and ==
            columns[name] = pd.Series(column.to_pylist(), dtype="object")
        else:
            columns[name] = column.to_pandas().astype(dtypes[name])
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))
