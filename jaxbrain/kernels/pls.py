"""PLS regression (NIPALS, regression deflation), the model of
``sklearn.cross_decomposition.PLSRegression(n_components, scale=False)``.

Formulation (why it is fast).  NIPALS deflates X by each score t and takes the next weight as
the leading left singular vector of the deflated cross-covariance XₖᵀY.  Because deflated X is
orthogonal to earlier scores, only the d×m matrix Sₖ = XₖᵀY needs deflating
(Sₖ₊₁ = Sₖ − ttₖ pₖ qₖᵀ, kept in factored form), plus its m×m Gram (rank-2 updates, rebuilt
exactly from Sₖ whenever it has shrunk 256-fold, which keeps float32 accurate); X
itself is only read to form t = Xc r and p = Xcᵀ t / tᵀt.  For cross-validation the splits
advance together: one product X @ [r₁ … r_S] serves every split (rows outside a split's
training set are masked), and the full-data XᵀY is computed once and down-dated by each
split's held-out rows.  Predictions are (x − x̄) R Qᵀ + ȳ with rotations R = W (PᵀW)⁻¹
built incrementally.

The leading singular vector is exact up to rounding (restarted Lanczos to a residual at the
dtype's precision, see :func:`jaxbrain.kernels.linalg.leading_eigenvector`), where
scikit-learn stops a power iteration at tol 1e-6: agreement with scikit-learn's defaults is
limited by that tolerance (1e-5 on well-separated spectra, up to ~2e-3 on near-degenerate
ones; to scikit-learn run to convergence it is ~1e-8).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxbrain.kernels.linalg import deflate_gram, leading_eigenvector, sklearn_power_iteration

_GRAM_REFRESH = 256.0  # rebuild the Gram exactly after it shrank this much (see component)
# How each component's weight vector is found: "exact" (the leading singular vector, to
# rounding) or "sklearn" (scikit-learn's power iteration, tol 1e-6, max_iter 500, replayed to
# reproduce its unconverged results, hence Brain-Score's numbers, on near-degenerate spectra).
WEIGHT_SOLVERS = ("exact", "sklearn")


class PLSFit(NamedTuple):
    """A fitted PLS mapping: prediction = (x - x_mean) @ coef + y_mean."""

    x_mean: jax.Array  # (d,)
    y_mean: jax.Array  # (m,)
    coef: jax.Array  # (d, m)
    score_sqnorms: jax.Array  # (n_components,) tᵀt per component; ~0 means X's rank ran out


class _SplitFits(NamedTuple):
    x_mean: jax.Array  # (S, d) training means of the globally centred X
    y_mean: jax.Array  # (S, m)
    rotations: jax.Array  # (S, A, d)
    y_loadings: jax.Array  # (S, A, m)
    score_sqnorms: jax.Array  # (S, A)


def _mv(mat, vec):
    """Per-split mat[s] @ vec[s]: (S, a, b), (S, b) -> (S, a)."""
    return jax.vmap(jnp.matmul)(mat, vec)


def _vm(vec, mat):
    """Per-split vec[s] @ mat[s]: (S, a), (S, a, b) -> (S, b)."""
    return jax.vmap(jnp.matmul)(vec, mat)


def _fit_splits(x0, y0, train_idx, n_components: int, weights: str = "exact") -> _SplitFits:
    """Fit one PLS per split on globally centred ``x0`` (n, d), ``y0`` (n, m).

    Layout: every per-split array keeps the feature axis last ((S, m, d), (S, A, d)); XLA's
    CPU dots are up to 3x faster with that orientation than with d first.
    """
    n, d = x0.shape
    m = y0.shape[1]
    n_splits, n_train = train_idx.shape
    dtype = x0.dtype
    mask = jnp.zeros((n_splits, n), dtype).at[jnp.arange(n_splits)[:, None], train_idx].set(1.0)
    # Rows outside each training set, as a static-size index array (stable sort: zeros first).
    heldout = jnp.argsort(mask, axis=1, stable=True)[:, : n - n_train]

    x_mean = mask @ x0 / n_train  # (S, d)
    y_mean = mask @ y0 / n_train  # (S, m)
    cross = (
        (y0.T @ x0)[None]
        - jnp.einsum("shm,shd->smd", y0[heldout], x0[heldout])
        - n_train * y_mean[:, :, None] * x_mean[:, None, :]
    )  # (S, m, d): (centred training XᵀY)ᵀ per split, down-dated from the full data

    right = m <= d  # take the singular vector from the smaller Gram
    if weights not in WEIGHT_SOLVERS:
        raise ValueError(f"unknown PLS weight solver {weights!r}; expected {WEIGHT_SOLVERS}")
    # Sums of squares of the centred training targets, deflated alongside (scikit-learn
    # starts its iteration from the first column of the deflated Y that is not zero).
    y_sq = mask @ (y0 * y0) - n_train * y_mean * y_mean
    y_sq_floor = n_train * jnp.finfo(dtype).eps ** 2

    def exact_gram(p_scaled, load_y):
        deflated = cross - jnp.einsum("sam,sad->smd", load_y, p_scaled)  # Sₖᵀ, (S, m, d)
        if right:
            return jnp.einsum("smd,skd->smk", deflated, deflated)
        return jnp.einsum("smd,sme->sde", deflated, deflated)

    # S₀ stays read-only; the deflated Sₖ = S₀ − P̃ₖ Qₖᵀ (P̃ = tt·p) is applied in factored
    # form, so no m×d matrix is rewritten per component.  Products are per-split matvecs
    # under vmap: 2-4x faster on XLA CPU than the equivalent batched einsums.
    def s_times(v, p_scaled, load_y):  # Sₖ v for v (S, m) -> (S, d)
        return _vm(v, cross) - _vm(_mv(load_y, v), p_scaled)

    def st_times(v, p_scaled, load_y):  # Sₖᵀ v for v (S, d) -> (S, m)
        return _mv(cross, v) - _vm(_mv(p_scaled, v), load_y)

    def weight_vector(gram, y_sq, p_scaled, load_y):
        if weights == "exact":
            if right:
                return s_times(jax.vmap(leading_eigenvector)(gram), p_scaled, load_y)
            return jax.vmap(leading_eigenvector)(gram)
        start = jax.nn.one_hot(jnp.argmax(y_sq > y_sq_floor, axis=1), m, dtype=dtype)
        if right:  # iterate u with x = Sₖ u / ‖Sₖ u‖: operator and metric are both SₖᵀSₖ
            u = jax.vmap(sklearn_power_iteration)(gram, start, gram)
            return s_times(u, p_scaled, load_y)
        return jax.vmap(sklearn_power_iteration)(gram, s_times(start, p_scaled, load_y))

    def component(carry, k):
        gram, gram_ref, y_sq, rot, load_x, p_scaled, load_y = carry
        w = weight_vector(gram, y_sq, p_scaled, load_y)
        w_norm = jnp.linalg.norm(w, axis=1, keepdims=True)
        w = w / jnp.where(w_norm > 0, w_norm, 1.0)  # zero when X's rank is exhausted
        r = w - _vm(_mv(load_x, w), rot)
        t = mask.T * (x0 @ r.T - jnp.sum(x_mean * r, axis=1))  # (n, S) training scores
        tt = jnp.sum(t * t, axis=0)
        tt_safe = jnp.where(tt > 0, tt, 1.0)
        # tᵀX rather than Xᵀt: XLA's CPU dot is ~3x faster in this orientation.
        p = (t.T @ x0) / tt_safe[:, None]  # (S, d) x-loadings
        # y-loadings Sₖᵀw/tᵀt = Yᵀt/tᵀt (t is centred on the training rows and zero elsewhere):
        # a read of Y (n × m) instead of the S × m × d cross-covariances.
        q = (t.T @ y0) / tt_safe[:, None]  # (S, m)
        if right:
            sp = st_times(p, p_scaled, load_y)
            gram = jax.vmap(deflate_gram)(gram, q, sp, jnp.sum(p * p, axis=1), tt)
        else:
            sq = s_times(q, p_scaled, load_y)
            gram = jax.vmap(deflate_gram)(gram, p, sq, jnp.sum(q * q, axis=1), tt)
        rot = rot.at[:, k].set(r)
        load_x = load_x.at[:, k].set(p)
        p_scaled = p_scaled.at[:, k].set(tt[:, None] * p)
        load_y = load_y.at[:, k].set(q)
        y_sq = y_sq - tt[:, None] * q * q
        # Rank-2 updates carry rounding error of order eps·‖G‖ of the last exact Gram; once
        # deflation has shrunk the Gram 256-fold, rebuild it from Sₖ so that the error stays
        # within 256 eps of the current Gram (float32 would otherwise drift on late components).
        trace = jnp.trace(gram, axis1=1, axis2=2)
        stale = jnp.any(trace * _GRAM_REFRESH < gram_ref)
        gram = jax.lax.cond(stale, exact_gram, lambda *_: gram, p_scaled, load_y)
        gram_ref = jnp.where(stale, jnp.trace(gram, axis1=1, axis2=2), gram_ref)
        return (gram, gram_ref, y_sq, rot, load_x, p_scaled, load_y), tt

    zeros_d = jnp.zeros((n_splits, n_components, d), dtype)
    zeros_m = jnp.zeros((n_splits, n_components, m), dtype)
    gram = exact_gram(zeros_d, zeros_m)
    init = (gram, jnp.trace(gram, axis1=1, axis2=2), y_sq, zeros_d, zeros_d, zeros_d, zeros_m)
    (_, _, _, rot, _, _, load_y), tts = jax.lax.scan(component, init, jnp.arange(n_components))
    return _SplitFits(x_mean, y_mean, rot, load_y, tts.T)


@partial(jax.jit, static_argnames=("n_components", "weights"))
def pls_fit(x: jax.Array, y: jax.Array, n_components: int = 25, weights: str = "exact") -> PLSFit:
    """Fit PLS on all rows of ``x`` (n, d) → ``y`` (n, m); centred, not scaled.

    ``weights``: "exact" leading singular vectors, or "sklearn" to reproduce scikit-learn's
    power iteration (see ``WEIGHT_SOLVERS``)."""
    n = x.shape[0]
    x_mean = jnp.mean(x, axis=0)
    y_mean = jnp.mean(y, axis=0)
    fits = _fit_splits(x - x_mean, y - y_mean, jnp.arange(n)[None, :], n_components, weights)
    coef = fits.rotations[0].T @ fits.y_loadings[0]
    return PLSFit(x_mean + fits.x_mean[0], y_mean + fits.y_mean[0], coef, fits.score_sqnorms[0])


@jax.jit
def pls_predict(fit: PLSFit, x: jax.Array) -> jax.Array:
    """Predictions (x - x̄) B + ȳ of a fitted PLS."""
    return (x - fit.x_mean) @ fit.coef + fit.y_mean


@partial(jax.jit, static_argnames=("n_components", "weights"))
def pls_cv_predict(
    x: jax.Array,
    y: jax.Array,
    train_idx: jax.Array,
    test_idx: jax.Array,
    n_components: int = 25,
    weights: str = "exact",
) -> tuple[jax.Array, jax.Array]:
    """Held-out predictions of one PLS fit per split.

    Args: ``x`` (n, d), ``y`` (n, m), ``train_idx`` (S, n_train), ``test_idx`` (S, n_test).
    Returns ``(predictions (S, n_test, m), score_sqnorms (S, n_components))``.
    """
    x_full_mean = jnp.mean(x, axis=0)
    y_full_mean = jnp.mean(y, axis=0)
    x0 = x - x_full_mean
    fits = _fit_splits(x0, y - y_full_mean, train_idx, n_components, weights)
    scores = jnp.einsum("snd,sad->sna", x0[test_idx] - fits.x_mean[:, None, :], fits.rotations)
    pred = jnp.einsum("sna,sam->snm", scores, fits.y_loadings)
    return pred + (fits.y_mean + y_full_mean)[:, None, :], fits.score_sqnorms


def pls_cv_flops(n: int, d: int, m: int, n_splits: int, n_train: int,
                 n_components: int) -> int:
    """Floating-point operations of :func:`pls_cv_predict` (dominant terms): the full XᵀY
    and its per-split down-dates, the m×m Grams, per component the two passes over X and the
    d×m products of the factored deflation, and the held-out predictions.  For achieved
    GFLOP/s figures; the per-component eigenvector (O(m²) per Lanczos step) is left out."""
    n_held = n - n_train
    setup = 2 * n * d * m + 2 * n_splits * n_held * d * m + 2 * n_splits * d * m * min(d, m)
    per_component = n_splits * (4 * n * d + 8 * d * m)
    predict = n_splits * (2 * n_held * d * n_components + 2 * n_held * n_components * m)
    return setup + n_components * per_component + predict


def _fit_split_gram(gram0, y0, train, test, n_components: int, weights: str):
    """One split's PLS from the Gram of globally centred features (the dual of
    :func:`_fit_splits`); returns (held-out predictions of centred y, tᵀt per component).

    With K the training-centred Gram and Yₖ the regression-deflated training targets,
    Sₖ = XₖᵀY = X₀ᵀYₖ, so SₖᵀSₖ = YₖᵀKYₖ (m × m) and every weight is w = X₀ᵀa for an
    n-vector a = Yₖu/‖Sₖu‖.  Rotations follow as r = X₀ᵀaᵣ (aᵣ = a − Σⱼ cⱼ aᵣⱼ with
    cⱼ = tⱼᵀKa/tⱼᵀtⱼ), scores as t = X₀r = Ka − Σⱼ cⱼtⱼ, and a test row's prediction
    (x − x̄)RQᵀ is K_test aᵣ Qᵀ: no feature is touched after the Gram.
    """
    dtype = gram0.dtype
    m = y0.shape[1]
    k_train = gram0[train][:, train]
    k_test = gram0[test][:, train]
    col_mean = jnp.mean(k_train, axis=0)
    total = jnp.mean(col_mean)
    k = k_train - col_mean[None, :] - col_mean[:, None] + total  # C K C, C = I − 11ᵀ/n
    k_test = k_test - jnp.mean(k_test, axis=1, keepdims=True) - col_mean[None, :] + total
    y_mean = jnp.mean(y0[train], axis=0)
    yc = y0[train] - y_mean
    n_train = yc.shape[0]
    y_sq_floor = n_train * jnp.finfo(dtype).eps ** 2

    def component(carry, j):
        yk, ts, ars, tts = carry
        kyk = k @ yk  # recomputed, not down-dated: exact for every component in float32
        gram = yk.T @ kyk
        gram = 0.5 * (gram + gram.T)
        if weights == "exact":
            u = leading_eigenvector(gram)
        else:  # scikit-learn's iteration from the first non-zero column of the deflated Y
            y_sq = jnp.sum(yk * yk, axis=0)
            start = jax.nn.one_hot(jnp.argmax(y_sq > y_sq_floor), m, dtype=dtype)
            u = sklearn_power_iteration(gram, start, gram)
        w_sq = u @ gram @ u
        a = (yk @ u) / jnp.where(w_sq > 0, jnp.sqrt(jnp.maximum(w_sq, 0.0)), 1.0)
        a = jnp.where(w_sq > 0, a, 0.0)  # X's rank is exhausted: a null component
        ka = k @ a
        c = (ts @ ka) / jnp.where(tts > 0, tts, 1.0)  # zero for components not yet fitted
        ar = a - c @ ars
        t = ka - c @ ts
        tt = t @ t
        q = (yc.T @ t) / jnp.where(tt > 0, tt, 1.0)
        yk = yk - jnp.outer(t, q)
        return (yk, ts.at[j].set(t), ars.at[j].set(ar), tts.at[j].set(tt)), q

    zeros = jnp.zeros((n_components, n_train), dtype)
    init = (yc, zeros, zeros, jnp.zeros((n_components,), dtype))
    (_, _, ars, tts), qs = jax.lax.scan(component, init, jnp.arange(n_components))
    return k_test @ (ars.T @ qs) + y_mean, tts


@partial(jax.jit, static_argnames=("n_components", "weights"))
def pls_cv_predict_gram(
    gram: jax.Array,
    y: jax.Array,
    train_idx: jax.Array,
    test_idx: jax.Array,
    n_components: int = 25,
    weights: str = "exact",
) -> tuple[jax.Array, jax.Array]:
    """:func:`pls_cv_predict` from the features' Gram ``gram`` (n, n) = X₀X₀ᵀ of the
    column-centred features (any column centring: each split re-centres on its training rows).

    The same model and predictions, for layers wider than the stimuli: memory and work per
    split are O(n²) whatever the number of features, which is what keeps the unreduced
    scoring of ~800k-feature layers exact and small."""
    if weights not in WEIGHT_SOLVERS:
        raise ValueError(f"unknown PLS weight solver {weights!r}; expected {WEIGHT_SOLVERS}")
    y_full_mean = jnp.mean(y, axis=0)
    pred, tts = jax.vmap(
        lambda tr, te: _fit_split_gram(gram, y - y_full_mean, tr, te, n_components, weights)
    )(train_idx, test_idx)
    return pred + y_full_mean, tts
