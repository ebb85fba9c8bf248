"""Neural data: assemblies (labelled recordings), readers for Brain-Score's file layouts, and the
catalog of real data and weights fetched by name."""

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
from jaxbrain.data.catalog import Catalog, CatalogError, load_catalog
from jaxbrain.data.fetch import FetchError, fetch
from jaxbrain.data.lamem import MemorabilityData, read_lamem

__all__ = [
    "Catalog",
    "CatalogError",
    "FetchError",
    "MemorabilityData",
    "Trials",
    "align",
    "average_repetitions",
    "fetch",
    "load_catalog",
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
