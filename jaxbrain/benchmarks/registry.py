"""Benchmarks by name: ``jaxbrain.benchmarks.load("MajajHong2015.IT-pls")``.

Names and parameters follow Brain-Score vision's public definitions (region, time window,
stratification, visual degrees, trials, and the data: ``MajajHong2015public.*`` score the
``MajajHong2015.public`` recordings of the ``hvm-public`` images, the names without
``public`` Brain-Score's held-out private files; likewise FreemanZiemba2013); ``-ridge``
variants, the early/late IT windows and the ``Synthetic.*`` benchmarks (for
:mod:`jaxbrain.data.synthetic`, whose data the caller supplies) are jaxbrain's additions and
carry jaxbrain version labels.
"""

from __future__ import annotations

import difflib

from jaxbrain.benchmarks.base import Benchmark
from jaxbrain.benchmarks.decoding import DecodingBenchmark, GODDecodingBenchmark
from jaxbrain.benchmarks.memorability import MemorabilityBenchmark
from jaxbrain.benchmarks.neural import MAPPINGS, NeuralBenchmark


def _similarity_options(mapping: str) -> dict:
    """CKA / RDM variants: Brain-Score's test-only cross-validation (score the 90 % test side),
    no ceiling defined yet."""
    if mapping in ("cka", "rdm"):
        return {"test_size": 0.9, "ceiling": None}
    return {}


def _role(public: bool) -> str:
    """Brain-Score commits a region's layer on public data and reports the private data."""
    return "selection" if public else "final"


def _majajhong(region: str, mapping: str, public: bool, window=(70.0, 170.0), tag=""):
    name = f"MajajHong2015{'public' if public else ''}.{region}{tag}-{mapping}"
    access = "public" if public else "private"
    return NeuralBenchmark(role=_role(public),
        identifier=name, region=region, time_window_ms=window, mapping=mapping,
        stratification_coord="object_name", visual_degrees=8.0, number_of_trials=50,
        version="3" if mapping == "pls" and not tag else "jaxbrain-1",
        assembly=f"MajajHong2015.{access}", stimulus_set=f"hvm-{access}",
        **_similarity_options(mapping),
    )


def _freemanziemba(region: str, mapping: str, public: bool):
    name = f"FreemanZiemba2013{'public' if public else ''}.{region}-{mapping}"
    access = "public" if public else "private"
    return NeuralBenchmark(
        role=_role(public),
        identifier=name, region=region, time_window_ms=(50.0, 200.0), mapping=mapping,
        stratification_coord="texture_type", visual_degrees=4.0, number_of_trials=20,
        version="2" if mapping == "pls" else "jaxbrain-1",
        assembly=f"FreemanZiemba2013.{access}",
        stimulus_set=f"FreemanZiemba2013.aperture-{access}", **_similarity_options(mapping),
    )


def _synthetic(region: str, mapping: str, window=(70.0, 170.0), tag=""):
    """The synthetic suite's regions (jaxbrain.data.synthetic; 6 repetitions per image); the
    early/late IT windows are the studies' recordings (``write_studies_assembly``)."""
    return NeuralBenchmark(
        identifier=f"Synthetic.{region}{tag}-{mapping}", region=region, time_window_ms=window,
        mapping=mapping, stratification_coord="object_name", visual_degrees=8.0,
        number_of_trials=6, version="jaxbrain-1", **_similarity_options(mapping),
    )


def _build() -> dict[str, Benchmark]:
    benchmarks: list[Benchmark] = [_synthetic(r, m) for r in ("V1", "V2", "V4", "IT")
                                   for m in MAPPINGS]
    benchmarks += [_synthetic("IT", m, (70.0, 100.0), ".early") for m in MAPPINGS]
    benchmarks += [_synthetic("IT", m, (180.0, 210.0), ".late") for m in MAPPINGS]
    for public in (False, True):
        for mapping in MAPPINGS:
            benchmarks += [_majajhong(r, mapping, public) for r in ("V4", "IT")]
            benchmarks += [_freemanziemba(r, mapping, public) for r in ("V1", "V2")]
            benchmarks.append(_majajhong("IT", mapping, public, (70.0, 100.0), ".early"))
            benchmarks.append(_majajhong("IT", mapping, public, (180.0, 210.0), ".late"))
    # Memorability read-outs: the synthetic suite's LaMem folder, and LaMem itself (not
    # downloadable: its folder, or a user-catalog archive, is given with the benchmark).
    benchmarks += [MemorabilityBenchmark("Synthetic.memorability"),
                   MemorabilityBenchmark("LaMem.memorability")]
    # Feature decoding from the synthetic suite's fMRI subjects (their folder given per run).
    benchmarks.append(DecodingBenchmark("Synthetic.decoding"))
    # Horikawa & Kamitani's Generic Object Decoding: the published BData subjects (their
    # folder given per run) and the user's copy of the images (not public).
    benchmarks.append(GODDecodingBenchmark("Horikawa2017.decoding"))
    return {b.identifier: b for b in benchmarks}


BENCHMARKS = _build()


def load(name: str) -> Benchmark:
    """The benchmark registered under ``name``; an unknown name lists the close ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        close = difflib.get_close_matches(name, BENCHMARKS, n=5, cutoff=0.5)
        hint = f"; did you mean {close}?" if close else f"; known: {sorted(BENCHMARKS)}"
        raise ValueError(f"unknown benchmark {name!r}{hint}") from None


def names() -> list[str]:
    return sorted(BENCHMARKS)
