"""The accelerator path on 8 fake CPU devices: a benchmark scores its layers split over the
devices (layers over devices) and gives the single-device numbers (bar: 1e-5)."""

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from jaxbrain.benchmarks import load
from jaxbrain.benchmarks.memorability import MemorabilityBenchmark, prepare_memorability
from jaxbrain.data import read_lamem
from tests.benchmarks.test_neural import N_STIM, write_recordings
from tests.data.test_lamem import write_lamem


@pytest.fixture(scope="module")
def mesh():
    devices = jax.devices()
    assert len(devices) == 8, "tests/conftest.py must create 8 host devices"
    return Mesh(np.array(devices), ("layers",))


def _layers(rng, driver, n_rows):
    """11 layers (not a multiple of the 8 devices) of three widths, one the driver."""
    layers = {f"noise{i}": rng.standard_normal((n_rows, w)) for i, w in
              enumerate([6, 9, 6, 12, 9, 6, 12, 9, 6, 12])}
    layers["driver"] = driver
    return layers


@pytest.mark.parametrize("mapping", ["pls", "ridge"])
def test_neural_benchmark_sharded_equals_one_device(tmp_path, rng, mesh, mapping):
    path, ids, good = write_recordings(tmp_path, rng, 12)
    benchmark = load(f"MajajHong2015.IT-{mapping}").with_overrides(assembly=str(path))
    if mapping == "pls":
        benchmark = benchmark.with_overrides(n_components=5)
    prepared = benchmark.prepare({})
    layers = _layers(rng, good, N_STIM)
    one = {s.layer: s.fields for s in benchmark.score(prepared, layers, ids)}
    sharded = {s.layer: s.fields for s in benchmark.score(prepared, layers, ids, mesh=mesh)}
    assert list(sharded) == list(layers)
    for name in layers:
        assert sharded[name]["status"] == one[name]["status"] == "ok"
        for key in ("raw", "ceiled", "error"):
            assert abs(sharded[name][key] - one[name][key]) <= 1e-5, (name, key)
    assert one["driver"]["raw"] == max(fields["raw"] for fields in one.values())


def test_memorability_sharded_equals_one_device(tmp_path, rng, mesh):
    n = 60
    names = [f"{i:03d}.jpg" for i in range(n)]
    informative = rng.standard_normal((n, 8))
    scores = 1 / (1 + np.exp(-(informative @ rng.standard_normal(8)) / 3))
    data = read_lamem(write_lamem(tmp_path, names, scores, n_splits=3, n_test=15))
    benchmark = MemorabilityBenchmark("memorability")
    prepared = prepare_memorability(benchmark, data)
    layers = _layers(rng, informative, n)
    one = benchmark.score(prepared, layers, names, filenames=names)
    sharded = benchmark.score(prepared, layers, names, filenames=names, mesh=mesh)
    for a, b in zip(one, sharded, strict=True):
        assert a.layer == b.layer
        np.testing.assert_allclose(b.fields["per_split"], a.fields["per_split"], atol=1e-5)
    assert max(one, key=lambda s: s.fields["raw"]).layer == "driver"


def test_layers_are_scored_in_stacks_of_bounded_size(tmp_path, rng, monkeypatch):
    from jaxbrain.benchmarks import layers as layer_stacks

    assert layer_stacks.stack_chunks(list("abcde"), 10, budget=25) == [["a", "b"], ["c", "d"],
                                                                        ["e"]]
    assert layer_stacks.stack_chunks(["a"], 100, budget=1) == [["a"]]
    path, ids, good = write_recordings(tmp_path, rng, 12)
    benchmark = load("MajajHong2015.IT-pls").with_overrides(assembly=str(path), n_components=5)
    prepared = benchmark.prepare({})
    layers = _layers(rng, good, N_STIM)
    whole = benchmark.score(prepared, layers, ids)
    monkeypatch.setattr(layer_stacks, "STACK_BYTES", 2 * 4 * N_STIM * 16)  # 2 layers a stack
    chunked = benchmark.score(prepared, layers, ids)
    for a, b in zip(whole, chunked, strict=True):
        assert a.layer == b.layer and abs(a.fields["raw"] - b.fields["raw"]) <= 1e-6
