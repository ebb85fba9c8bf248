"""The studies' analyses: from scores and held-out predictions to tables and plot data.

* :mod:`~jaxbrain.analysis.predictions` — cross-validated predictions and per-site
  statistics on them (Pearson r per split, noise-corrected explained variance, partial
  correlation), computed by the same kernels as ``neural_predictivity``;
* :mod:`~jaxbrain.analysis.statistics` — paired tests, correlations with confidence
  intervals, means ± s.e.m. across groups by depth bin;
* :mod:`~jaxbrain.analysis.studies` — one function per analysis (CKA by relative depth,
  objectives vs IT, %EV by time window, unique variance, memorability vs brain score,
  feature decodability);
* :mod:`~jaxbrain.analysis.sweep_data` — a finished sweep (rows, banks, targets) as input;
* :mod:`~jaxbrain.analysis.planted`, :mod:`~jaxbrain.analysis.pipeline`,
  :mod:`~jaxbrain.analysis.figures`, :mod:`~jaxbrain.analysis.report` — the studies run on
  the planted suite (``python -m experiments.studies``).
"""

from jaxbrain.analysis.predictions import cv_predictions, percent_ev, site_scores, unique_r
from jaxbrain.analysis.statistics import correlation_ci, mean_sem_by_bin, paired_test
from jaxbrain.analysis.studies import (
    corresponding_layer_cka,
    decodability_summary,
    ev_comparison,
    memorability_vs_brain,
    objective_similarity,
    progressive_difference,
    unique_variance_table,
)
from jaxbrain.analysis.sweep_data import SweepData

__all__ = [
    "SweepData",
    "correlation_ci",
    "corresponding_layer_cka",
    "cv_predictions",
    "decodability_summary",
    "ev_comparison",
    "mean_sem_by_bin",
    "memorability_vs_brain",
    "objective_similarity",
    "paired_test",
    "percent_ev",
    "progressive_difference",
    "site_scores",
    "unique_r",
    "unique_variance_table",
]
