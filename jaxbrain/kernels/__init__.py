"""Pure, jit-compiled scoring kernels: import them from any JAX code.

Everything here is a function of arrays (no I/O, no global state); leading layer axes are
handled by ``vmap`` (see :func:`score_layers` and :func:`cka_matrix`).
"""

from jaxbrain.kernels.ceiling import (
    CeilingResult,
    split_half_consistency,
    split_half_consistency_trials,
)
from jaxbrain.kernels.cka import center_gram, cka, cka_gram, cka_matrix, gram_linear, gram_rbf
from jaxbrain.kernels.pls import (
    PLSFit,
    pls_cv_predict,
    pls_cv_predict_gram,
    pls_fit,
    pls_predict,
)
from jaxbrain.kernels.predictivity import (
    DEFAULT_ALPHAS,
    PredictivityResult,
    neural_predictivity,
    score_layers,
)
from jaxbrain.kernels.ridge import (
    RidgeFit,
    ridge_cv_predict,
    ridge_cv_predict_gram,
    ridge_fit,
    ridge_predict,
)
from jaxbrain.kernels.rsa import compare_rdms, rdm, rsa
from jaxbrain.kernels.splits import (
    Splits,
    shuffle_splits,
    split_half_splits,
    stratified_shuffle_splits,
)
from jaxbrain.kernels.stats import (
    explained_variance,
    partial_correlation,
    pearson,
    spearman,
    spearman_brown,
)

__all__ = [
    "DEFAULT_ALPHAS",
    "CeilingResult",
    "PLSFit",
    "PredictivityResult",
    "RidgeFit",
    "Splits",
    "center_gram",
    "cka",
    "cka_gram",
    "cka_matrix",
    "compare_rdms",
    "explained_variance",
    "gram_linear",
    "gram_rbf",
    "neural_predictivity",
    "partial_correlation",
    "pearson",
    "pls_cv_predict",
    "pls_cv_predict_gram",
    "pls_fit",
    "pls_predict",
    "rdm",
    "ridge_cv_predict",
    "ridge_cv_predict_gram",
    "ridge_fit",
    "ridge_predict",
    "rsa",
    "score_layers",
    "shuffle_splits",
    "spearman",
    "spearman_brown",
    "split_half_consistency",
    "split_half_consistency_trials",
    "split_half_splits",
    "stratified_shuffle_splits",
]
