"""Cross-validated neural predictivity (docs/design.md §4), for one layer or a stack of layers.

Per split: fit the mapping (PLS or ridge) on the training stimuli, predict the held-out ones,
Pearson r per neuroid; the split's score is the median over neuroids (NaN neuroids — constant
target or prediction — are counted and left out of the median, as xarray's median does);
the layer's score is the mean over splits and its error the standard deviation over splits
(ddof 0) / √splits.

``score_layers`` is the pure, jit-compiled kernel (looped over a leading layer axis);
``neural_predictivity`` is the checked entry point: it validates inputs with clear
``ValueError``s, shards the layer axis over a device mesh when given one, and checks that the
PLS did not run past the rank of X.
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxbrain.kernels.pls import WEIGHT_SOLVERS, pls_cv_predict, pls_cv_predict_gram
from jaxbrain.kernels.ridge import ridge_cv_predict, ridge_cv_predict_gram
from jaxbrain.kernels.sharding import over_layers, put_layers, take_layers
from jaxbrain.kernels.splits import Splits
from jaxbrain.kernels.stats import nanmedian_and_count, pearson

MAPPINGS = ("pls", "ridge")
DEFAULT_ALPHAS = np.logspace(-3, 7, 21)
# A PLS component whose score norm² falls below this fraction of the first one means the
# deflated X is numerically zero: X's rank ran out before n_components.
_RANK_TOL_FACTOR = 1e3


class PredictivityResult(NamedTuple):
    """Scores of one layer (scalars) or of a stack of layers (leading layer axis)."""

    score: jax.Array  # mean over splits of the per-split median r
    error: jax.Array  # std over splits (ddof 0) / sqrt(n_splits)
    per_split: jax.Array  # (..., S) median r over neuroids
    per_neuroid: jax.Array  # (..., S, m) held-out Pearson r per neuroid
    n_nan: jax.Array  # (..., S) neuroids with undefined r per split
    fit_info: jax.Array  # PLS: (..., S, n_components) score norms²; ridge: (..., S, m) alphas


def _score_one_layer(x, y, train_idx, test_idx, alphas, mapping, n_components, pls_weights,
                     gram):
    if mapping == "pls":
        fit = pls_cv_predict_gram if gram else pls_cv_predict
        pred, info = fit(x, y, train_idx, test_idx, n_components, pls_weights)
    else:
        fit = ridge_cv_predict_gram if gram else ridge_cv_predict
        pred, info = fit(x, y, train_idx, test_idx, alphas)
    r = jax.vmap(pearson)(pred, y[test_idx])  # (S, m)
    per_split, n_nan = nanmedian_and_count(r)
    n_splits = per_split.shape[-1]
    score = jnp.mean(per_split)
    error = jnp.std(per_split) / jnp.sqrt(n_splits)
    return PredictivityResult(score, error, per_split, r, n_nan, info)


@partial(jax.jit,
         static_argnames=("mapping", "n_components", "layer_batch", "pls_weights", "gram"))
def score_layers(
    xs: jax.Array,
    y: jax.Array,
    train_idx: jax.Array,
    test_idx: jax.Array,
    alphas: jax.Array | None = None,
    mapping: str = "pls",
    n_components: int = 25,
    layer_batch: int = 1,
    pls_weights: str = "exact",
    gram: bool = False,
) -> PredictivityResult:
    """Pure kernel: score a stack of layers ``xs`` (L, n, d) against ``y`` (n, m); with
    ``gram=True`` ``xs`` are the layers' Grams (L, n, n) of column-centred features (the same
    fits in dual form, for layers wider than the stimuli).

    No input checks (see :func:`neural_predictivity`).  Layers run one after another inside
    one compiled loop (``lax.map``): on CPU that is ~1.4x faster than ``vmap``, whose batch
    dimension pushes XLA's dots onto slower paths, and memory stays at one layer's working
    set.  ``layer_batch > 1`` vmaps that many layers per step (worth trying on accelerators).
    """
    alphas = jnp.asarray(DEFAULT_ALPHAS if alphas is None else alphas, xs.dtype)

    def one(x):
        return _score_one_layer(
            x, y, train_idx, test_idx, alphas, mapping, n_components, pls_weights, gram
        )

    if layer_batch == 1:
        return jax.lax.map(one, xs)
    return jax.lax.map(one, xs, batch_size=layer_batch)


@lru_cache(maxsize=32)
def _sharded_scorer(mapping: str, n_components: int, pls_weights: str, gram: bool, mesh: Mesh):
    """``score_layers`` with the layer axis split over the mesh (see
    :mod:`jaxbrain.kernels.sharding`); cached so that repeated calls reuse one program."""
    local = partial(score_layers, mapping=mapping, n_components=n_components,
                    pls_weights=pls_weights, gram=gram)
    return over_layers(local, mesh, n_replicated=4)


def neural_predictivity(
    x,
    y,
    splits: Splits,
    mapping: str = "pls",
    *,
    n_components: int = 25,
    alphas=None,
    mesh: Mesh | None = None,
    layer_batch: int = 1,
    pls_weights: str = "exact",
    check_rank: bool = True,
    gram: bool = False,
) -> PredictivityResult:
    """Cross-validated predictivity of ``y`` (n, m) from one layer ``x`` (n, d) or a stack
    of layers (L, n, d), with the splits' stacked train/test indices.

    ``mapping``: ``"pls"`` (``n_components``) or ``"ridge"`` (``alphas`` grid, alpha per
    neuroid by leave-one-out; a single alpha is a fixed-alpha ridge).  ``mesh``: shard the
    layer axis over the mesh's first axis.  Raises ``ValueError`` naming the problem for
    non-finite data, mismatched shapes, impossible splits or too many PLS components.
    ``layer_batch``: layers scored together per step of the layer loop (see ``score_layers``).
    ``pls_weights``: "exact" leading singular vectors (default) or "sklearn", which replays
    scikit-learn's power iteration and so reproduces Brain-Score's numbers where that
    iteration stops short of convergence.  ``check_rank=False`` returns PLS fits that ran past
    a layer's rank instead of raising; :func:`pls_usable_components` says which.
    ``gram=True``: ``x`` holds each layer's Gram X₀X₀ᵀ (n, n) of column-centred features
    instead of the features (see :func:`jaxbrain.benchmarks.layers.layer_gram`).
    """
    x = jnp.asarray(x)
    if x.ndim not in (2, 3):
        raise ValueError(
            "activations must be (stimuli, features) or (layers, stimuli, features), "
            f"got shape {x.shape}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    y = jnp.asarray(y, dtype=x.dtype)
    single = x.ndim == 2
    xs = x[None] if single else x
    y = y[:, None] if y.ndim == 1 else y
    if gram and xs.shape[1] != xs.shape[2]:
        raise ValueError(f"Grams must be square (stimuli, stimuli), got shape {xs.shape[1:]}")
    train_idx, test_idx = check_inputs(xs, y, splits, mapping, n_components, pls_weights)
    alphas = jnp.asarray(check_alphas(DEFAULT_ALPHAS if alphas is None else alphas), x.dtype)

    n_layers = xs.shape[0]
    if mesh is None:
        result = score_layers(xs, y, train_idx, test_idx, alphas, mapping, n_components,
                              layer_batch, pls_weights, gram)
    else:
        scorer = _sharded_scorer(mapping, n_components, pls_weights, gram, mesh)
        result = take_layers(scorer(put_layers(xs, mesh), y, train_idx, test_idx, alphas),
                             n_layers)
    if mapping == "pls" and check_rank:
        check_pls_rank(result.fit_info, n_components)
    return jax.tree.map(lambda a: a[0], result) if single else result


def check_inputs(xs, y, splits, mapping, n_components, pls_weights):
    """Every check a cross-validated fit needs before compiling anything (shared with
    ``jaxbrain.analysis``); returns the stacked train/test indices."""
    if mapping not in MAPPINGS:
        raise ValueError(f"unknown mapping {mapping!r}; expected one of {MAPPINGS}")
    if pls_weights not in WEIGHT_SOLVERS:
        raise ValueError(f"unknown pls_weights {pls_weights!r}; expected one of {WEIGHT_SOLVERS}")
    if y.ndim != 2:
        raise ValueError(f"targets must be (stimuli, neuroids), got shape {y.shape}")
    n = xs.shape[1]
    if y.shape[0] != n:
        raise ValueError(
            f"row count mismatch: activations have {n} stimuli but targets have {y.shape[0]}"
        )
    bad_layers = np.flatnonzero(~np.asarray(jnp.all(jnp.isfinite(xs), axis=(1, 2))))
    if bad_layers.size:
        raise ValueError(
            f"activations contain NaN or infinite values (layer indices {bad_layers[:10].tolist()})"
        )
    bad_targets = np.flatnonzero(~np.asarray(jnp.all(jnp.isfinite(y), axis=0)))
    if bad_targets.size:
        raise ValueError(
            "targets contain NaN or infinite values (neuroid columns "
            f"{bad_targets[:10].tolist()})"
        )
    train_idx = np.asarray(splits.train)
    test_idx = np.asarray(splits.test)
    if train_idx.ndim != 2 or test_idx.ndim != 2 or train_idx.shape[0] != test_idx.shape[0]:
        raise ValueError(
            f"splits must be stacked (n_splits, n_train) / (n_splits, n_test) index arrays, "
            f"got {train_idx.shape} / {test_idx.shape}"
        )
    if max(train_idx.max(), test_idx.max()) >= n or min(train_idx.min(), test_idx.min()) < 0:
        raise ValueError(f"split indices out of range for {n} stimuli")
    n_train, n_test = train_idx.shape[1], test_idx.shape[1]
    if n_train < 3 or n_test < 3:
        raise ValueError(
            f"too few stimuli per split: {n_train} training / {n_test} test stimuli "
            "(a held-out Pearson r needs at least 3 test stimuli)"
        )
    if mapping == "pls":
        rank_limit = min(n_train - 1, xs.shape[2])
        if not 1 <= n_components <= rank_limit:
            raise ValueError(
                f"n_components={n_components} is larger than the rank allows: at most "
                f"min(n_train - 1, n_features) = min({n_train - 1}, {xs.shape[2]}) = {rank_limit}"
            )
    return jnp.asarray(train_idx), jnp.asarray(test_idx)


def check_alphas(alphas) -> np.ndarray:
    """The ridge grid as positive finite float64 values, or a ValueError."""
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(
        alphas <= 0
    ):
        raise ValueError(f"ridge alphas must be a non-empty 1-D grid of positive numbers: {alphas}")
    return alphas


def _first_null_component(score_sqnorms) -> np.ndarray:
    """(layers, splits): index of the first component with numerically zero X scores (the
    number of components fitted where there is none)."""
    tts = np.asarray(score_sqnorms)  # (L, S, A)
    eps = np.finfo(tts.dtype).eps
    null = tts < tts[..., :1] * (_RANK_TOL_FACTOR * eps) ** 2
    return np.where(null.any(-1), null.argmax(-1), tts.shape[-1])


def pls_usable_components(score_sqnorms) -> np.ndarray:
    """Per layer, how many PLS components have non-null X scores on every split: the layer's
    rank as PLS sees it, capped at the number of components fitted."""
    return _first_null_component(score_sqnorms).min(axis=-1)


def check_pls_rank(score_sqnorms, n_components):
    """After a PLS fit: a component with a null score means the layer has lower rank than
    ``n_components`` on some split, which is an error, not a silently shorter model."""
    first_null = _first_null_component(score_sqnorms)
    if (first_null < n_components).any():
        layer, split = np.argwhere(first_null < n_components)[0]
        comp = first_null[layer, split]
        raise ValueError(
            f"n_components={n_components} is larger than the rank of the activations allows: "
            f"component {comp + 1} has numerically zero X scores (layer {layer}, split {split}); "
            f"use at most {comp} components"
        )
