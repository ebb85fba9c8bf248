"""The Harada & Sakai experiment end to end on the synthetic suite: three imported
(torchvision-layout) networks fine-tuned on its LaMem split, their penultimate layers scored
on its IT benchmark, the table, correlation and figure written."""

import numpy as np
import pandas as pd
import pytest
import safetensors.numpy

from experiments import harada_sakai
from jaxbrain.data.synthetic import SuiteConfig, write_suite
from jaxbrain.models import create
from jaxbrain.models.torchvision_import import torch_state


@pytest.mark.slow
def test_fine_tunes_scores_and_relates_three_models(tmp_path):
    suite = tmp_path / "suite"
    write_suite(suite, SuiteConfig(n_objects=4, images_per_object=16))
    models = []
    for k, arch in enumerate(("resnet18_tiny", "alexnet_tiny", "resnet50_tiny")):
        path = tmp_path / f"{arch}.safetensors"
        wide = {"fc_width": 64} if arch == "alexnet_tiny" else {}  # 25 PLS components fit
        safetensors.numpy.save_file(torch_state(create(arch, num_classes=10, seed=k, **wide)),
                                    str(path))
        models.append(f"{arch}={path}")
    overrides = {"image_size": 64, "batch_size": 16, "num_epochs": 0, "num_steps": 4,
                 "warmup_steps": 1, "log_every": 4, "eval_every": 4, "checkpoint_every": 4,
                 "compute_dtype": "float32", "data.workers": 0}
    sweep = {"stimuli_csv": str(suite / "stimuli" / "stimuli.csv"),
             "stimuli_dir": str(suite / "stimuli" / "images"),
             "assembly": str(suite / "neural.nc"), "batch_size": 32}
    table = harada_sakai.run(models, workdir=tmp_path / "hs", lamem_dir=suite / "lamem",
                             benchmarks=["Synthetic.IT-pls"], config_overrides=overrides,
                             sweep_options=sweep)
    assert list(table["model"]) == models
    assert list(table["layer"]) == ["flatten", "classifier.5", "flatten"]
    assert (table["status"] == "ok").all(), table["status"]
    assert table["it_score"].notna().all() and table["memorability_rho"].between(-1, 1).all()
    correlation = pd.read_csv(tmp_path / "hs" / "correlation.csv")
    assert correlation["n_models"].tolist() == [3] and np.isfinite(correlation["r"]).all()
    assert (tmp_path / "hs" / "memorability_vs_it.png").stat().st_size > 1000
    for model in models:  # each network was fine-tuned from its file
        run = tmp_path / "hs" / "runs" / harada_sakai.safe_name(model)
        assert (run / "init.json").exists() and (run / "checkpoints" / "4").is_dir()
    with pytest.raises(ValueError, match="at least 3 models"):
        harada_sakai.run(models[:2], workdir=tmp_path / "x", lamem_dir=suite / "lamem",
                         benchmarks=["Synthetic.IT-pls"])
