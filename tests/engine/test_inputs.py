"""Model references a sweep accepts, and the error for one it does not."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from jaxbrain.data.synthetic import SuiteConfig, write_suite
from jaxbrain.engine.inputs import resolve_model
from jaxbrain.models import create, torch_state, zoo
from jaxbrain.train.configs import synthetic_config
from jaxbrain.train.loop import train


def _logits(model, size=64):
    return np.asarray(model(np.ones((1, size, size, 3), np.float32))[0]["logits"])


def test_every_kind_of_model_reference_resolves(tmp_path):
    assert resolve_model("synthetic_hidden").tap_names() == ["block1", "block2", "block3",
                                                             "block4"]
    random = resolve_model("alexnet_tiny")
    assert set(random.heads) == {"classification", "memorability"}

    source = create("alexnet_tiny", num_classes=5, seed=3)
    source.eval()
    save_file({k: np.ascontiguousarray(v) for k, v in torch_state(source).items()},
              tmp_path / "w.safetensors")
    imported = resolve_model(f"alexnet_tiny={tmp_path / 'w.safetensors'}")
    np.testing.assert_array_equal(_logits(imported), _logits(source))

    suite = tmp_path / "suite"
    write_suite(suite, SuiteConfig(n_objects=2, images_per_object=16))
    config = synthetic_config("categorization")
    config.arch, config.image_size, config.batch_size = "alexnet_tiny", 64, 8
    config.num_steps, config.warmup_steps, config.checkpoint_every = 2, 0, 2
    config.data.synthetic_dir = str(suite)
    train(config, tmp_path / "run")
    from_run = resolve_model(str(tmp_path / "run"))
    zoo.register(tmp_path / "zoo", "tiny-cat", workdir=tmp_path / "run")
    from_zoo = resolve_model("tiny-cat", tmp_path / "zoo")
    np.testing.assert_array_equal(_logits(from_run), _logits(from_zoo))

    with pytest.raises(ValueError, match=r"unknown model .vgg..*zoo .* \(tiny-cat\)"):
        resolve_model("vgg", tmp_path / "zoo")
