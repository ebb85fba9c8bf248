"""The joint objective: w_cls · cross-entropy + w_mem · memorability loss, with per-example
masks so one batch can mix class-labelled images (ImageNet) and scored images (LaMem).

Each term is a mean over the examples that carry its target; a batch with none of them
contributes 0 to that term, never NaN.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

MEMORABILITY_LOSSES = ("mse", "spearman")


@dataclasses.dataclass(frozen=True)
class Objective:
    """Loss weights; ``memorability_loss`` is "mse" or "spearman" (a soft-rank surrogate)."""

    classification: float = 1.0
    memorability: float = 1.0
    memorability_loss: str = "mse"
    rank_temperature: float = 0.05

    def __post_init__(self):
        if self.memorability_loss not in MEMORABILITY_LOSSES:
            raise ValueError(f"memorability_loss must be one of {MEMORABILITY_LOSSES}; "
                             f"got {self.memorability_loss!r}")
        if min(self.classification, self.memorability) < 0 or \
                self.classification + self.memorability == 0:
            raise ValueError("objective weights must be >= 0 and not both 0; got "
                             f"{self.classification}, {self.memorability}")

    @property
    def heads(self) -> tuple[str, ...]:
        """The heads this objective trains."""
        return tuple(h for h, w in (("classification", self.classification),
                                    ("memorability", self.memorability)) if w > 0)


OBJECTIVES = {
    "categorization": Objective(classification=1.0, memorability=0.0),
    "memorability": Objective(classification=0.0, memorability=1.0),
    "joint": Objective(classification=1.0, memorability=1.0),
}


def objective(name: str, **overrides) -> Objective:
    """A named objective (``categorization``, ``memorability``, ``joint``), optionally with
    changed weights or memorability loss."""
    if name not in OBJECTIVES:
        raise KeyError(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}")
    return dataclasses.replace(OBJECTIVES[name], **overrides)


def _masked_mean(values, mask):
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def soft_ranks(values, mask, temperature: float):
    """Differentiable ranks among the masked-in entries: Σ_j sigmoid((v_i − v_j) / τ)."""
    pairwise = jax.nn.sigmoid((values[:, None] - values[None, :]) / temperature)
    return jnp.sum(pairwise * mask[None, :], axis=1)


def _masked_pearson(a, b, mask):
    n = jnp.maximum(jnp.sum(mask), 1.0)
    a = (a - jnp.sum(a * mask) / n) * mask
    b = (b - jnp.sum(b * mask) / n) * mask
    # ranks spread as n³/12; the 1e-3 only matters when one side is (nearly) constant, e.g.
    # an untrained head, where it keeps the gradient bounded instead of ~1e8
    return jnp.sum(a * b) / (jnp.sqrt(jnp.sum(a * a) + 1e-3) * jnp.sqrt(jnp.sum(b * b) + 1e-3))


def memorability_loss(predicted, target, mask, objective: Objective):
    if objective.memorability_loss == "mse":
        return _masked_mean((predicted - target) ** 2, mask)
    hard = soft_ranks(target, mask, 1e-6)
    r = _masked_pearson(soft_ranks(predicted, mask, objective.rank_temperature), hard, mask)
    return jnp.where(jnp.sum(mask) >= 2, 1.0 - r, 0.0)  # no ranking without two scores


def joint_loss(outputs: dict, batch: dict, objective: Objective) -> tuple[jax.Array, dict]:
    """(total loss, per-term metrics) for head ``outputs`` on a batch of common records."""
    metrics = {}
    total = jnp.zeros((), jnp.float32)
    if objective.classification > 0:
        mask = batch["has_label"]
        labels = jnp.maximum(batch["label"], 0)  # -1 marks "no label"; masked out below
        ce = optax.softmax_cross_entropy_with_integer_labels(outputs["logits"], labels)
        metrics["classification_loss"] = _masked_mean(ce, mask)
        correct = jnp.argmax(outputs["logits"], -1) == labels
        metrics["top1"] = _masked_mean(correct.astype(jnp.float32), mask)
        total = total + objective.classification * metrics["classification_loss"]
    if objective.memorability > 0:
        metrics["memorability_loss"] = memorability_loss(
            outputs["memorability"], batch["memorability"], batch["has_memorability"], objective)
        total = total + objective.memorability * metrics["memorability_loss"]
    metrics["loss"] = total
    return total, metrics
