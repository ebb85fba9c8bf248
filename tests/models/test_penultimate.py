"""Every model names its penultimate tap (the features its heads read), and a model's spec
restores the input size it was trained at."""

import numpy as np
import pytest

from jaxbrain.models import ARCHITECTURES, create
from jaxbrain.models.hidden import hidden_network
from jaxbrain.train.checkpoints import create_from_spec

TINY = sorted(name for name in ARCHITECTURES if name.endswith("_tiny"))
# taps allowed between the penultimate features and the heads: dropouts (identity in eval)
CLASSIFIER_TAPS = {"alexnet_tiny": "classifier.6", "alexnet_caffe_tiny": "fc8",
                   "resnet18_tiny": "fc", "resnet50_tiny": "fc"}


def test_every_tiny_architecture_is_covered():
    assert TINY and set(TINY) == set(CLASSIFIER_TAPS)


@pytest.mark.parametrize("name", TINY)
def test_penultimate_tap_is_what_the_heads_read(name):
    model = create(name, num_classes=5, heads=("classification", "memorability"))
    taps = model.tap_names()
    assert model.penultimate_tap in taps
    after = taps[taps.index(model.penultimate_tap) + 1:]
    assert after[-1] == "memorability"
    assert CLASSIFIER_TAPS[name] in after
    heads = [t for t in after if t in (CLASSIFIER_TAPS[name], "memorability")]
    assert heads == [CLASSIFIER_TAPS[name], "memorability"]
    # anything else after the penultimate tap is a dropout, not a layer of its own
    assert all(t.startswith("drop") for t in after if t not in heads), after
    # behaviour: in eval mode the heads are functions of the penultimate tap's output
    model.eval()
    size = model.input_size
    images = np.random.default_rng(0).standard_normal((2, size, size, 3)).astype(np.float32)
    outputs, tapped = model(images, taps=[model.penultimate_tap])
    features = tapped[model.penultimate_tap]
    assert features.ndim == 2 and features.shape[0] == 2
    np.testing.assert_allclose(np.asarray(model.memorability(features)),
                               np.asarray(outputs["memorability"]), rtol=1e-5, atol=1e-6)
    assert outputs["logits"].shape == (2, 5)


def test_hidden_network_penultimate_is_its_last_tap():
    model = hidden_network(0)
    taps = model.tap_names()
    assert taps == ["block1", "block2", "block3", "block4"]
    assert model.penultimate_tap == taps[-1]


def _spec(**extra):
    return {"arch": "resnet18_tiny", "num_classes": 3, "heads": ["classification"], "seed": 0,
            "overrides": {}, **extra}


def test_create_from_spec_keeps_the_training_input_size():
    model = create_from_spec(_spec(input_size=32))
    assert model.input_size == 32
    assert model.arch == "resnet18_tiny" and model.heads == ("classification",)
    outputs, _ = model(np.zeros((1, 32, 32, 3), np.float32))
    assert outputs["logits"].shape == (1, 3)


def test_create_from_spec_without_input_size_keeps_the_default():
    assert create_from_spec(_spec()).input_size == 224
    assert create_from_spec(_spec(input_size="48")).input_size == 48
