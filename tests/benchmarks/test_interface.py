"""Every registered benchmark answers the questions the engine asks, and nothing else is needed
to score it: the CLI path and the sweep path give the same rows."""

import dataclasses

import numpy as np
import pytest

from jaxbrain.benchmarks import (
    Benchmark,
    MemorabilityBenchmark,
    NeuralBenchmark,
    layer_results,
    load,
    names,
)
from jaxbrain.data import read_assembly, read_lamem
from tests.benchmarks.test_neural import N_STIM, write_recordings
from tests.data.test_lamem import write_lamem


def test_every_registered_benchmark_implements_the_interface():
    kinds = set()
    for name in names():
        benchmark = load(name)
        assert isinstance(benchmark, Benchmark) and benchmark.identifier == name
        assert dataclasses.is_dataclass(benchmark)
        assert benchmark.role in ("selection", "final", "report")
        assert isinstance(benchmark.region, str) and isinstance(benchmark.metric, str)
        assert benchmark.visual_degrees > 0 and benchmark.version
        assert benchmark.definition()["kind"] == benchmark.kind
        kinds.add(benchmark.kind)
    assert kinds == {"neural", "memorability", "decoding"}
    assert {"Synthetic.memorability", "LaMem.memorability"} <= set(names())


def test_roles_and_data_of_brainscore_benchmarks():
    assert load("MajajHong2015public.IT-pls").role == "selection"
    assert load("FreemanZiemba2013public.V2-ridge").role == "selection"
    assert load("MajajHong2015.IT-pls").role == "final"
    assert load("Synthetic.IT-pls").role == "final"
    assert load("Synthetic.memorability").role == "report"
    assert load("Synthetic.memorability").region == ""
    with pytest.raises(ValueError, match="unknown benchmark options \\['region'\\]"):
        load("Synthetic.memorability").with_overrides(region="IT")
    with pytest.raises(ValueError, match="unknown role"):
        load("MajajHong2015.IT-pls").with_overrides(role="chosen")


def test_with_data_takes_the_override_that_fits(tmp_path):
    neural, memorability = load("Synthetic.IT-pls"), load("Synthetic.memorability")
    assert neural.with_data(assembly="a.nc", lamem="lamem/").assembly == "a.nc"
    assert memorability.with_data(assembly="a.nc", lamem="lamem/").lamem == "lamem/"
    assert neural.with_data() is neural
    with pytest.raises(ValueError, match="Synthetic.IT-pls names no recordings"):
        neural.prepare()
    with pytest.raises(ValueError, match="Synthetic.memorability names no memorability data"):
        memorability.prepare()


def test_prepare_from_paths_reads_shared_data_once_and_scores_as_the_sweep(tmp_path, rng):
    path, ids, good = write_recordings(tmp_path, rng, 12)
    it = NeuralBenchmark("t.IT-pls", region="IT", time_window_ms=(70.0, 170.0),
                         n_components=4, assembly=str(path))
    v4 = dataclasses.replace(it, identifier="t.V4-pls", region="V4")
    cache = {}
    prepared_it, prepared_v4 = it.prepare(cache), v4.prepare(cache)
    assert len(cache) == 1 and prepared_it.digest == prepared_v4.digest != ""
    assert prepared_it.y.shape == (N_STIM, 6) and prepared_v4.y.shape == (N_STIM, 3)
    layers = {"good": good, "noise": rng.standard_normal((N_STIM, 8))}
    scored = it.score(prepared_it, layers, ids)
    result = layer_results(prepared_it, scored)
    assert result["data"] == str(path) and result["ceiling"] is not None
    assert result["layers"]["good"]["raw"] == scored[0].fields["raw"] > 0.5
    assert list(result["layers"]["good"]["per_neuroid"]) == list(scored[0].neuroid_ids)
    # the in-memory route (score_layers_on) is the same scorer
    from jaxbrain.benchmarks import score_layers_on

    again = score_layers_on(it, layers, ids, read_assembly(path))
    assert again["layers"]["good"]["raw"] == result["layers"]["good"]["raw"]


def test_memorability_benchmark_from_a_folder(tmp_path, rng):
    names_ = [f"{i:03d}.jpg" for i in range(60)]
    signal = rng.standard_normal((60, 5))
    folder = write_lamem(tmp_path, names_, 1 / (1 + np.exp(-signal @ rng.standard_normal(5))),
                         n_splits=2, n_test=15)
    benchmark = MemorabilityBenchmark("t.memorability", lamem=str(folder))
    prepared = benchmark.prepare()
    assert prepared.ceiling is None and prepared.digest
    assert len(prepared.data.image_names) == len(read_lamem(folder).image_names)
    (scored,) = benchmark.score(prepared, {"signal": signal}, np.arange(60),
                                filenames=np.array(names_))
    assert scored.fields["status"] == "ok" and scored.fields["raw"] > 0.5
    assert len(scored.fields["per_split"]) == 2
