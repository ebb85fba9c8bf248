"""The joint objective against closed forms and independent references (numpy, scipy): masked
cross-entropy / MSE / top-1, weighting, objective validation, and the soft-rank Spearman
surrogate. All in float64 (conftest enables x64) so the references can be matched tightly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from jaxbrain.train.objectives import (
    Objective,
    joint_loss,
    memorability_loss,
    objective,
    soft_ranks,
)

N, CLASSES = 12, 7


@pytest.fixture
def batch(rng):
    """Mixed batch: some rows labelled (label -1 elsewhere), some scored, some both."""
    has_label = np.array([1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0], np.float64)
    has_mem = np.array([0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1], np.float64)
    labels = np.where(has_label > 0, rng.integers(0, CLASSES, N), -1).astype(np.int32)
    return {"label": labels, "has_label": has_label,
            "memorability": np.where(has_mem > 0, rng.uniform(0.3, 1.0, N), 0.0),
            "has_memorability": has_mem}


@pytest.fixture
def outputs(rng):
    return {"logits": 3 * rng.standard_normal((N, CLASSES)),
            "memorability": rng.uniform(0.0, 1.0, N)}


def reference_ce(logits, batch):
    keep = batch["has_label"] > 0
    logp = special.log_softmax(logits[keep], axis=-1)
    return -np.mean(logp[np.arange(keep.sum()), batch["label"][keep]])


def reference_mse(predicted, batch):
    keep = batch["has_memorability"] > 0
    return np.mean((predicted[keep] - batch["memorability"][keep]) ** 2)


def test_joint_terms_match_masked_references(outputs, batch):
    _, metrics = joint_loss(outputs, batch, objective("joint"))
    keep = batch["has_label"] > 0
    top1 = np.mean(np.argmax(outputs["logits"][keep], -1) == batch["label"][keep])
    np.testing.assert_allclose(metrics["classification_loss"],
                               reference_ce(outputs["logits"], batch), rtol=1e-12)
    np.testing.assert_allclose(metrics["memorability_loss"],
                               reference_mse(outputs["memorability"], batch), rtol=1e-12)
    np.testing.assert_allclose(metrics["top1"], top1, rtol=1e-12)


def test_unlabelled_rows_do_not_matter(outputs, batch):
    """Logits and labels of rows without a label leave every term unchanged."""
    changed_out = {**outputs, "logits": outputs["logits"].copy()}
    changed_batch = dict(batch)
    unlabelled = batch["has_label"] == 0
    changed_out["logits"][unlabelled] = 50.0 * np.arange(CLASSES)
    changed_batch["label"] = np.where(unlabelled, 3, batch["label"]).astype(np.int32)
    _, before = joint_loss(outputs, batch, objective("joint"))
    _, after = joint_loss(changed_out, changed_batch, objective("joint"))
    for key in before:
        np.testing.assert_allclose(after[key], before[key], rtol=1e-12)


def test_weighted_total(outputs, batch):
    total, metrics = joint_loss(outputs, batch, objective("joint", classification=2.0,
                                                          memorability=0.5))
    expected = (2.0 * reference_ce(outputs["logits"], batch)
                + 0.5 * reference_mse(outputs["memorability"], batch))
    np.testing.assert_allclose(total, expected, rtol=1e-12)
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-12)


def test_batch_without_targets_gives_zero_terms_and_finite_gradients(outputs, batch):
    empty = {**batch, "label": np.full(N, -1, np.int32), "has_label": np.zeros(N),
             "has_memorability": np.zeros(N)}
    total, metrics = joint_loss(outputs, empty, objective("joint"))
    assert float(total) == 0.0
    assert float(metrics["classification_loss"]) == 0.0 and float(metrics["top1"]) == 0.0
    assert float(metrics["memorability_loss"]) == 0.0
    grads = jax.grad(lambda o: joint_loss(o, empty, objective("joint"))[0])(outputs)
    for g in jax.tree.leaves(grads):
        assert np.all(np.isfinite(g)) and not np.any(g)


def test_single_head_objectives_ignore_the_other_output(outputs, batch):
    """A categorization model has no memorability head (and vice versa): the absent or
    garbage output of the other head must not be read."""
    cat, mem = objective("categorization"), objective("memorability")
    assert cat.heads == ("classification",) and mem.heads == ("memorability",)
    assert objective("joint").heads == ("classification", "memorability")
    garbage = np.full(N, np.nan)
    total, metrics = joint_loss({"logits": outputs["logits"], "memorability": garbage}, batch, cat)
    assert set(metrics) == {"classification_loss", "top1", "loss"}
    np.testing.assert_allclose(total, reference_ce(outputs["logits"], batch), rtol=1e-12)
    total, metrics = joint_loss({"memorability": outputs["memorability"]}, batch, mem)
    assert set(metrics) == {"memorability_loss", "loss"}
    np.testing.assert_allclose(total, reference_mse(outputs["memorability"], batch), rtol=1e-12)


def test_invalid_objectives_raise_clear_errors():
    with pytest.raises(KeyError, match=r"unknown objective 'ranking'.*categorization"):
        objective("ranking")
    with pytest.raises(ValueError, match=r"weights must be >= 0"):
        objective("joint", classification=-1.0)
    with pytest.raises(ValueError, match=r"not both 0"):
        objective("joint", classification=0.0, memorability=0.0)
    with pytest.raises(ValueError, match=r"memorability_loss must be one of.*'huber'"):
        objective("memorability", memorability_loss="huber")
    with pytest.raises(ValueError, match=r"memorability_loss"):
        Objective(memorability_loss="l1")


def test_soft_ranks_with_tiny_temperature_are_ranks_minus_half(rng):
    """Σ_j sigmoid((v_i − v_j)/τ) counts each smaller value once and v_i itself as
    sigmoid(0) = 1/2, and a tie as 1/2: scipy's average ranks − 1/2."""
    values = rng.permutation(20) / 20.0  # distinct, gaps 0.05 ≫ τ
    ranks = soft_ranks(jnp.asarray(values), jnp.ones(20), 1e-4)
    np.testing.assert_allclose(ranks, stats.rankdata(values) - 0.5, atol=1e-12)
    tied = np.array([0.3, 0.1, 0.3, 0.7, 0.1, 0.3])
    ranks = soft_ranks(jnp.asarray(tied), jnp.ones(6), 1e-4)
    np.testing.assert_allclose(ranks, stats.rankdata(tied) - 0.5, atol=1e-12)


def test_masked_out_entries_do_not_affect_ranks(rng):
    values = rng.permutation(16) / 16.0
    mask = np.zeros(16)
    mask[rng.choice(16, 9, replace=False)] = 1.0
    keep = mask > 0
    ranks = np.asarray(soft_ranks(jnp.asarray(values), jnp.asarray(mask), 1e-4))
    np.testing.assert_allclose(ranks[keep], stats.rankdata(values[keep]) - 0.5, atol=1e-12)
    moved = np.where(keep, values, rng.uniform(-5, 5, 16))
    moved_ranks = np.asarray(soft_ranks(jnp.asarray(moved), jnp.asarray(mask), 1e-4))
    np.testing.assert_allclose(moved_ranks[keep], ranks[keep], atol=1e-12)


def spearman_loss(predicted, target, mask, temperature):
    obj = objective("memorability", memorability_loss="spearman", rank_temperature=temperature)
    return memorability_loss(jnp.asarray(predicted), jnp.asarray(target), jnp.asarray(mask), obj)


def test_spearman_surrogate_approaches_scipy_rho_as_temperature_shrinks(rng):
    """1 − loss → Spearman rho of the masked-in entries; with the smallest gap between
    predictions 1/40 = 0.025, τ = 2.5e-4 leaves each pairwise term within e^-100 of a step,
    so what remains is the 1e-3 guard in the Pearson normalisation (~2e-6 here; bar 1e-5).
    Masked-out entries (arbitrary values) are ignored."""
    n = 40
    predicted = rng.permutation(n) / n
    target = np.round(0.6 * predicted + 0.4 * rng.uniform(0, 1, n), 2)  # rounding makes ties
    mask = (rng.uniform(size=n) < 0.7).astype(np.float64)
    keep = mask > 0
    rho = stats.spearmanr(predicted[keep], target[keep]).statistic
    noisy_target = np.where(keep, target, rng.uniform(-10, 10, n))
    errors = [abs(1.0 - float(spearman_loss(predicted, noisy_target, mask, t)) - rho)
              for t in (0.05, 5e-3, 2.5e-4)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-5


def test_spearman_gradients_are_finite(rng):
    """Including constant predictions (an untrained head) and an empty mask."""
    target = rng.uniform(0, 1, 10)
    mask = np.ones(10)
    grad = jax.grad(spearman_loss)
    for predicted, m in ((rng.uniform(0, 1, 10), mask), (np.full(10, 0.5), mask),
                         (rng.uniform(0, 1, 10), np.zeros(10))):
        g = np.asarray(grad(jnp.asarray(predicted), target, m, 0.05))
        assert np.all(np.isfinite(g))
    assert np.any(np.asarray(grad(jnp.asarray(rng.uniform(0, 1, 10)), target, mask, 0.05)))


def test_spearman_term_without_scored_rows_is_zero(rng):
    assert float(spearman_loss(rng.uniform(0, 1, 8), rng.uniform(0, 1, 8), np.zeros(8), 0.05)) == 0
