"""Benchmarks: named, versioned recipes from recordings and activations to scores."""

from jaxbrain.benchmarks.decoding import BrainResponses, decode_features
from jaxbrain.benchmarks.memorability import score_memorability
from jaxbrain.benchmarks.neural import CONVENTIONS, NeuralBenchmark, score_layers_on
from jaxbrain.benchmarks.registry import BENCHMARKS, load, names

__all__ = [
    "BENCHMARKS",
    "CONVENTIONS",
    "BrainResponses",
    "NeuralBenchmark",
    "decode_features",
    "load",
    "names",
    "score_layers_on",
    "score_memorability",
]
