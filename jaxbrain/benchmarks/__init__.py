"""Benchmarks: named, versioned recipes from data and activations to scores. Each kind is one
module (``neural``, ``memorability``, ``decoding``) implementing :class:`Benchmark`;
``load(name)`` and ``names()`` cover every registered one."""

from jaxbrain.benchmarks.base import (
    CONVENTIONS,
    Benchmark,
    Prepared,
    ScoredLayer,
    ceiled,
    layer_results,
)
from jaxbrain.benchmarks.decoding import (
    BrainResponses,
    DecodingBenchmark,
    GODDecodingBenchmark,
    decode_features,
)
from jaxbrain.benchmarks.memorability import MemorabilityBenchmark, score_memorability
from jaxbrain.benchmarks.neural import NeuralBenchmark, score_layers_on
from jaxbrain.benchmarks.registry import BENCHMARKS, load, names

__all__ = [
    "BENCHMARKS",
    "CONVENTIONS",
    "Benchmark",
    "BrainResponses",
    "DecodingBenchmark",
    "GODDecodingBenchmark",
    "MemorabilityBenchmark",
    "NeuralBenchmark",
    "Prepared",
    "ScoredLayer",
    "ceiled",
    "decode_features",
    "layer_results",
    "load",
    "names",
    "score_layers_on",
    "score_memorability",
]
