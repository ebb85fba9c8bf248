"""Neural data: assemblies (labelled recordings) and readers for Brain-Score's file layouts."""

from jaxbrain.data.assemblies import (
    Trials,
    align,
    average_repetitions,
    match_rows,
    repetitions,
    select_region,
    time_window,
    validate,
)
from jaxbrain.data.brainscore_io import read_assembly, read_stimulus_set, write_assembly
from jaxbrain.data.lamem import MemorabilityData, read_lamem

__all__ = [
    "MemorabilityData",
    "Trials",
    "align",
    "average_repetitions",
    "match_rows",
    "read_assembly",
    "read_lamem",
    "read_stimulus_set",
    "repetitions",
    "select_region",
    "time_window",
    "validate",
    "write_assembly",
]
