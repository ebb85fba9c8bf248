"""LaMem's five-split protocol: one run per split, the test rho of each and their mean."""

import json

import numpy as np
import pytest

from jaxbrain.data.synthetic import SuiteConfig, write_suite
from jaxbrain.train.configs import synthetic_config
from jaxbrain.train.protocols import SUMMARY_FILE, lamem_splits, read_summary


def test_one_run_per_split_and_their_mean(tmp_path):
    suite = tmp_path / "suite"
    write_suite(suite, SuiteConfig(n_objects=4, images_per_object=24))
    config = synthetic_config("memorability")
    config.arch, config.image_size, config.batch_size = "alexnet_tiny", 64, 16
    config.num_steps, config.warmup_steps = 3, 1
    config.checkpoint_every = config.eval_every = config.log_every = 3
    config.data.synthetic_dir = str(suite)
    summary = lamem_splits(config, tmp_path / "protocol", splits=["1", "2"])
    rhos = [summary["splits"][k]["memorability_rho"] for k in ("1", "2")]
    assert summary["memorability_rho_mean"] == pytest.approx(np.mean(rhos))
    assert summary["memorability_rho_sd"] == pytest.approx(np.std(rhos, ddof=1))
    assert read_summary(tmp_path / "protocol") == summary
    for k in (1, 2):  # each split's run is a run of its own, on its own split
        saved = json.loads((tmp_path / "protocol" / f"split_{k}" / "config.json").read_text())
        assert saved["data"]["lamem_split"] == k
    assert (tmp_path / "protocol" / SUMMARY_FILE).exists()
    with pytest.raises(ValueError, match=r"LaMem splits are \(1, 2, 3, 4, 5\)"):
        lamem_splits(config, tmp_path / "bad", splits=[6])
