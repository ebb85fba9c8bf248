"""Layer taps: every intermediate output, named by its torchvision module path.

A model's forward pass hands each intermediate output to a ``Taps`` recorder under its stable
name (torchvision's FX graph-node names: ``features.3``, ``layer3.5.relu_1``, ``avgpool``...).
The recorder keeps only what was asked for, so asking costs nothing extra, and it sees every
name, so an unknown name is reported with the full list of valid ones.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import jax
import jax.numpy as jnp
from flax import nnx

ALL = "all"


class Taps:
    """Collects the requested intermediate outputs of one forward call."""

    def __init__(self, wanted: Iterable[str] | str = ()):
        if isinstance(wanted, str) and wanted != ALL:
            wanted = (wanted,)
        self.all = wanted == ALL
        self.wanted = frozenset(() if self.all else wanted)
        self.seen: list[str] = []
        self.values: dict = {}

    def __call__(self, name: str, value):
        self.seen.append(name)
        if self.all or name in self.wanted:
            self.values[name] = value
        return value

    def result(self) -> dict:
        """The requested outputs in forward order; an unknown name raises, listing valid ones."""
        missing = sorted(self.wanted.difference(self.seen))
        if missing:
            raise KeyError(f"unknown layer tap(s) {missing}; valid names (in forward order): "
                           f"{', '.join(self.seen)}")
        # an OrderedDict keeps forward order through jit (jax sorts plain dicts' keys)
        if self.all:
            return OrderedDict(self.values)
        return OrderedDict((name, self.values[name]) for name in self.seen
                           if name in self.wanted)


class TappedModel(nnx.Module):
    """Base of jaxbrain's networks: ``model(images, taps=(...))`` → (outputs, taps dict).

    ``outputs`` holds ``"logits"`` and/or ``"memorability"`` (whichever heads the model has);
    the taps dict maps each requested name to its output (NHWC maps, (n, d) vectors).
    """

    input_size: int = 224
    heads: tuple[str, ...] = ()
    # the features the output heads read (the "penultimate layer" studies compare)
    penultimate_tap: str = ""
    # the classifier's module path (its torchvision key prefix): what fine-tuning replaces for a
    # new class count and counts, with the memorability head, as a head rather than the trunk
    classifier_name: str = ""
    # Brain-Score's candidate layers for layer commitment (empty: see commitment_layers)
    commitment_taps: tuple[str, ...] = ()
    # what the network expects of its input (docs/design.md §4 "Images"): ImageNet statistics on the
    # [0, 1] pixel scale, and a visual field of 8 degrees
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    pixel_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    visual_degrees: float = 8.0

    def _forward(self, x, rec: Taps) -> dict:
        raise NotImplementedError

    def _heads(self, x, rec: Taps, classifier, classifier_tap: str) -> dict:
        """The head outputs on the penultimate features ``x``, each tapped."""
        outputs = {}
        if classifier is not None:
            outputs["logits"] = rec(classifier_tap, classifier(x))
        if getattr(self, "memorability", None) is not None:
            outputs["memorability"] = rec("memorability", self.memorability(x))
        return outputs

    def __call__(self, images, taps: Iterable[str] | str = ()):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError("expected NHWC images of shape (n, height, width, 3), "
                             f"ImageNet-normalised; got shape {tuple(images.shape)}")
        rec = Taps(taps)
        images = jnp.asarray(images)
        if not jnp.issubdtype(images.dtype, jnp.floating):
            images = images.astype(jnp.float32)  # a floating input keeps its dtype (bfloat16)
        outputs = self._forward(images, rec)
        return outputs, rec.result()

    def head_prefixes(self) -> tuple[str, ...]:
        """Torchvision key prefixes of the output heads' weights (the rest is the trunk)."""
        return tuple(f"{name}." for name in (self.classifier_name, "memorability") if name)

    def tap_shapes(self, image_size: int | None = None) -> dict[str, tuple[int, ...]]:
        """Every tap's per-image output shape, in forward order (traced, not computed)."""
        size = image_size or self.input_size
        graphdef, state = nnx.split(self)
        shapes: dict[str, tuple[int, ...]] = {}

        def trace(state, x):
            _, taps = nnx.merge(graphdef, state)(x, taps=ALL)
            shapes.update({name: tuple(v.shape[1:]) for name, v in taps.items()})

        jax.eval_shape(trace, state, jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))
        return shapes

    def tap_names(self) -> list[str]:
        """Every valid tap name, in forward order."""
        return list(self.tap_shapes())

    def commitment_layers(self) -> list[str]:
        """The candidate layers Brain-Score's layer commitment chooses among for this
        architecture (its model plugins' convention: block outputs, not every ReLU); default:
        every tap."""
        return list(self.commitment_taps) or self.tap_names()
