"""Results store: exact round trips, idempotent atomic parts, crash and concurrency safety,
cache keys that change with every input, and validation that names the unit and column."""

import dataclasses
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jaxbrain.engine.store import (
    ROW_COLUMNS,
    ROW_DTYPES,
    ResultsStore,
    canonical_json,
    part_name,
    unit_key,
)

REPO = Path(__file__).resolve().parents[2]


def make_row(i: int, **changes) -> dict:
    row = {
        "unit_key": unit_key(model="alexnet", layer=f"conv{i}", benchmark="Synthetic.IT-pls"),
        "model": "alexnet",
        "model_key": "weights-sha",
        "layer": f"conv{i}",
        "layer_index": i,
        "layer_depth": i / 64,
        "benchmark": "Synthetic.IT-pls",
        "kind": "neural",
        "region": "IT",
        "metric": "pls",
        "raw": 0.5 + i / 100,
        "error": 0.01,
        "ceiling": 0.8,
        "ceiled": (0.5 + i / 100) ** 2 / 0.8,
        "convention": "v4",
        "per_split": [0.4, 0.5 + i / 100, 0.6],
        "n_neuroids": 3,
        "nan_neuroids": 0,
        "status": "ok",
        "reduction": "pca-1000",
        "options": {"n_components": 25},
    }
    row.update(changes)
    return row


def neuroids_of(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"unit_key": r["unit_key"], "neuroid_id": f"n{j}", "value": r["raw"] + j / 10,
             "ceiling": 0.7 + j / 100}
            for r in rows for j in range(3)
        ]
    )


def test_round_trip_exact_values_and_dtypes(tmp_path):
    store = ResultsStore(tmp_path)
    ok = make_row(1)
    skipped = {
        k: v for k, v in make_row(2).items()
        if k not in {"raw", "error", "ceiling", "ceiled", "convention", "per_split",
                     "n_neuroids", "nan_neuroids"}
    } | {"status": "skipped: layer has 0 features", "kind": "memorability", "region": ""}
    store.write([skipped, ok], neuroids_of([ok]))
    rows = store.rows()
    assert list(rows.columns) == list(ROW_COLUMNS)
    assert rows.dtypes.astype(str).to_dict() == ROW_DTYPES
    assert list(rows["layer"]) == ["conv1", "conv2"]  # layer order, not write order
    first = rows.iloc[0].to_dict()
    for name in ROW_COLUMNS:
        if name == "options":
            assert first[name] == '{"n_components":25}'
        elif name != "created":
            assert first[name] == ok[name], name
    second = rows.iloc[1]
    assert math.isnan(second["raw"]) and math.isnan(second["ceiling"])
    assert second["per_split"] == [] and pd.isna(second["n_neuroids"])
    assert second["status"] == "skipped: layer has 0 features" and second["convention"] == ""
    assert pd.Timestamp(second["created"]).tzinfo is not None
    got = store.neuroids()
    assert list(got.columns) == ["unit_key", "neuroid_id", "value", "ceiling"]
    pd.testing.assert_frame_equal(got, neuroids_of([ok]).astype({"unit_key": "str",
                                                                  "neuroid_id": "str"}))
    assert store.rows([ok["unit_key"]])["layer"].tolist() == ["conv1"]
    assert len(store.neuroids([skipped["unit_key"]])) == 0


def test_empty_store_has_the_schema(tmp_path):
    store = ResultsStore(tmp_path)
    assert store.done_keys() == set()
    rows = store.rows()
    assert rows.empty and rows.dtypes.astype(str).to_dict() == ROW_DTYPES
    assert list(store.neuroids().columns) == ["unit_key", "neuroid_id", "value", "ceiling"]


def test_rewrite_is_idempotent_and_newest_row_wins(tmp_path):
    store = ResultsStore(tmp_path)
    rows = [make_row(i) for i in range(3)]
    first = store.write(rows, neuroids_of(rows))
    again = store.write(rows[::-1], neuroids_of(rows))
    assert first == again and first.name == part_name(r["unit_key"] for r in rows)
    assert [p.name for p in (tmp_path / "rows").iterdir()] == [first.name]
    assert [p.name for p in (tmp_path / "neuroids").iterdir()] == [first.name]
    assert len(store.rows()) == 3 and len(store.neuroids()) == 9
    # A resumed sweep may group units differently: one unit now sits in two parts.
    store.write([make_row(1, raw=0.9)])
    got = store.rows()
    assert len(got) == 3 and got.set_index("layer").loc["conv1", "raw"] == 0.9


def test_crash_between_neuroid_and_row_part(tmp_path):
    store = ResultsStore(tmp_path)
    rows = [make_row(i) for i in range(2)]
    part = store.write(rows, neuroids_of(rows))
    part.unlink()  # killed after the neuroid part's rename, before the row part's
    assert store.done_keys() == set()
    assert store.neuroids().empty  # the orphaned neuroid part is never read
    for row in rows:  # the re-run, one unit per part this time
        store.write([row], neuroids_of([row]))
    assert store.done_keys() == {r["unit_key"] for r in rows}
    assert len(store.neuroids()) == 6


def test_leftover_temp_file_is_ignored_and_corrupt_part_is_named(tmp_path):
    store = ResultsStore(tmp_path)
    store.write([make_row(0)])
    (tmp_path / "rows" / ".part-0123.parquet.99.abc.tmp").write_bytes(b"half a file")
    assert len(store.rows()) == 1 and len(store.done_keys()) == 1
    bad = tmp_path / "rows" / "part-deadbeef.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    for read in (store.rows, store.done_keys, store.neuroids):
        with pytest.raises(ValueError, match=r"part-deadbeef\.parquet.*delete it"):
            read()


def test_concurrent_writers_in_two_processes(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from tests.engine.test_store import make_row, neuroids_of
        from jaxbrain.engine.store import ResultsStore
        store = ResultsStore(sys.argv[1])
        for i in range(int(sys.argv[2]), int(sys.argv[3])):
            store.write([make_row(i)], neuroids_of([make_row(i)]))
        """
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(lo), str(lo + 25)],
                         cwd=REPO)
        for lo in (0, 25)
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    store = ResultsStore(tmp_path)
    assert store.done_keys() == {make_row(i)["unit_key"] for i in range(50)}
    assert store.rows()["layer_index"].tolist() == list(range(50))
    assert len(store.neuroids()) == 150


def test_stale_keys(tmp_path):
    store = ResultsStore(tmp_path)
    old, kept = make_row(0, reduction="pca-500"), make_row(1)
    old["unit_key"] = unit_key(model="alexnet", layer="conv0", reduction="pca-500")
    store.write([old, kept])
    assert store.stale_keys({kept["unit_key"], make_row(2)["unit_key"]}) == {old["unit_key"]}


@dataclasses.dataclass(frozen=True)
class Options:
    alpha: float
    splits: int


def test_unit_key_is_stable_and_covers_every_part():
    parts = {"weights": "abc", "stimuli": "def", "options": {"alpha": 0.1, "window": (70, 170)}}
    key = unit_key(**parts)
    assert key == unit_key(options={"window": [70, 170], "alpha": 0.1}, stimuli="def",
                           weights="abc")
    assert key == unit_key(**parts | {"options": {"alpha": np.float64(0.1),
                                                  "window": np.array([70, 170])}})
    # Pinned: a change here silently orphans every stored result.
    assert canonical_json(parts) == (
        '{"options":{"alpha":0.1,"window":[70,170]},"stimuli":"def","weights":"abc"}'
    )
    assert key == "e7a75c27e6fed6a87bc5889068be009e2957b7867449841832d5baf911a7f922"
    changed = [
        parts | {"weights": "abd"},
        parts | {"stimuli": "deff"},
        parts | {"options": {"alpha": 0.1000001, "window": (70, 170)}},
        parts | {"options": {"alpha": 0.1, "window": (70, 171)}},
        parts | {"options": {"alpha": 0.1, "window": (170, 70)}},
        parts | {"preprocessing": None},
    ]
    assert len({key, *(unit_key(**p) for p in changed)}) == len(changed) + 1
    assert unit_key(b=Options(0.5, 10)) == unit_key(b={"splits": 10, "alpha": 0.5})
    with pytest.raises(TypeError, match="set"):
        unit_key(layers={"a", "b"})
    with pytest.raises(ValueError, match="needs the parts"):
        unit_key()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": None}, r"required column 'model' is missing"),
        ({"layer_index": "3"}, r"column 'layer_index' must be int, got str"),
        ({"raw": True}, r"column 'raw' must be float"),
        ({"raw": None}, r"required column 'raw'"),  # an ok row must have a score
        ({"per_split": ["a"]}, r"column 'per_split' must be a 1-d list of floats"),
        ({"layer_depth": 1.5}, r"'layer_depth' must lie in \[0, 1\]"),
        ({"status": "skipped"}, r"'status' must be 'ok' or 'skipped: <reason>'"),
        ({"unit_key": "alexnet/conv3"}, r"unit alexnet/conv3: 'unit_key' must be a sha256"),
        ({"created": "yesterday"}, r"'created' must be an ISO time"),
        ({"nan_neuroid": 0}, r"unknown columns \['nan_neuroid'\]"),
    ],
)
def test_validation_names_unit_and_column(tmp_path, changes, message):
    row = make_row(3)
    row = {k: v for k, v in row.items() if k not in changes} | {
        k: v for k, v in changes.items() if v is not None
    }
    with pytest.raises(ValueError, match=message) as info:
        ResultsStore(tmp_path).write([row])
    assert row["unit_key"] in str(info.value)
    assert list((tmp_path / "rows").iterdir()) == []


def test_write_rejects_bad_batches(tmp_path):
    store = ResultsStore(tmp_path)
    row = make_row(0)
    with pytest.raises(ValueError, match="at least one row"):
        store.write([])
    with pytest.raises(ValueError, match="written twice"):
        store.write([row, row])
    stray = neuroids_of([make_row(1)])
    with pytest.raises(ValueError, match="units not among the rows written"):
        store.write([row], stray)
    with pytest.raises(ValueError, match=r"missing columns \['value'\]"):
        store.write([row], neuroids_of([row]).drop(columns="value"))
    with pytest.raises(ValueError, match="appears twice"):
        store.write([row], pd.concat([neuroids_of([row])] * 2))
    assert store.done_keys() == set()
    assert list((tmp_path / "neuroids").iterdir()) == []
