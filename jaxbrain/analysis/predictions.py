"""Held-out predictions and the per-site statistics the studies are built from.

Brain-Score's predictivity reduces each split to a median over neuroids; the studies need
what comes before that reduction: the held-out predictions themselves (to compare two models
on the same test rows, e.g. partial correlations) and the Pearson r of every site on every
split (to noise-correct per site).  The fits are the kernels' own (``pls_cv_predict`` /
``ridge_cv_predict``), so these numbers are the ones ``neural_predictivity`` reduces.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from jaxbrain.kernels.pls import pls_cv_predict
from jaxbrain.kernels.predictivity import (
    DEFAULT_ALPHAS,
    check_alphas,
    check_inputs,
    check_pls_rank,
)
from jaxbrain.kernels.ridge import ridge_cv_predict
from jaxbrain.kernels.splits import Splits
from jaxbrain.kernels.stats import partial_correlation, pearson


@partial(jax.jit, static_argnames=("mapping", "n_components", "pls_weights"))
def _cv_predict(x, y, train_idx, test_idx, alphas, mapping, n_components, pls_weights):
    if mapping == "pls":
        return pls_cv_predict(x, y, train_idx, test_idx, n_components, pls_weights)
    return ridge_cv_predict(x, y, train_idx, test_idx, alphas)


def cv_predictions(
    x,
    y,
    splits: Splits,
    mapping: str = "pls",
    n_components: int = 25,
    alphas=None,
    pls_weights: str = "exact",
) -> jax.Array:
    """Held-out predictions (n_splits, n_test, m) of ``y`` (n, m) from one layer ``x`` (n, d).

    Same mappings, options and input checks as :func:`jaxbrain.kernels.neural_predictivity`
    (a ``ValueError`` names any problem, including PLS running past the rank of ``x``); the
    fit itself is one jit-compiled call.  Row k of the result predicts ``y[splits.test[k]]``.
    """
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"activations must be (stimuli, features), got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    y = jnp.asarray(y, dtype=x.dtype)
    y = y[:, None] if y.ndim == 1 else y
    train_idx, test_idx = check_inputs(x[None], y, splits, mapping, n_components, pls_weights)
    alphas = jnp.asarray(check_alphas(DEFAULT_ALPHAS if alphas is None else alphas), x.dtype)
    pred, info = _cv_predict(x, y, train_idx, test_idx, alphas, mapping, n_components,
                             pls_weights)
    if mapping == "pls":
        check_pls_rank(info[None], n_components)
    return pred


def _test_rows(y, splits):
    y = jnp.asarray(y)
    y = y[:, None] if y.ndim == 1 else y
    return y[jnp.asarray(splits.test)]  # (S, n_test, m)


def site_scores(pred, y, splits: Splits) -> jax.Array:
    """Pearson r (n_splits, m) of every site on every split: the values Brain-Score takes
    the median of.  NaN where a site or its prediction is constant on a split's test rows."""
    return jax.vmap(pearson)(jnp.asarray(pred), _test_rows(y, splits))


def percent_ev(r_per_split, ceiling_per_site) -> jax.Array:
    """Noise-corrected explained variance per site, mean over splits of r² / ceiling.

    A fraction (1 = all explainable variance; x100 for percent).  The ceiling is the site's
    own split-half reliability, so sites are comparable however noisy.  NaN where the ceiling
    is not positive (no reliable signal to explain) or r is NaN on any split (an undefined
    split is not averaged away).
    """
    r = jnp.asarray(r_per_split)
    ceiling = jnp.asarray(ceiling_per_site, r.dtype)
    ok = ceiling > 0
    return jnp.where(ok, jnp.mean(r**2, axis=0) / jnp.where(ok, ceiling, 1.0), jnp.nan)


def unique_r(pred_a, pred_b, y, splits: Splits) -> jax.Array:
    """Partial correlation r(y, a | b) (n_splits, m) on each split's test rows: how much of
    what model A predicts of each site model B does not predict."""
    return jax.vmap(partial_correlation)(
        _test_rows(y, splits), jnp.asarray(pred_a), jnp.asarray(pred_b)
    )
