"""The GOD decoding command end to end: BData subjects, the user's image table (a missing
image named), a model's layers decoded, the published comparison and the figures."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.io import savemat

from experiments import god_decoding
from tests.benchmarks.test_god_decoding import (
    TEST_IDS,
    TRAIN_IDS,
    planted_layer,
    write_god_subject,
)


@pytest.fixture(scope="module")
def god(tmp_path_factory):
    root = tmp_path_factory.mktemp("god_cli")
    latent, _ = planted_layer()
    for k in (1, 2):
        write_god_subject(root / f"Subject{k}.h5", latent, seed=k)
    rng = np.random.default_rng(0)
    (root / "images").mkdir()
    ids = TRAIN_IDS + TEST_IDS
    for sid in ids:
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), np.uint8)).save(
            root / "images" / f"{sid}.JPEG")
    pd.DataFrame({"stimulus_id": ids, "filename": [f"{s}.JPEG" for s in ids]}).to_csv(
        root / "images.csv", index=False)
    for layer in ("conv1", "fc8"):
        for k in (1, 2):
            savemat(root / f"accuracy-AlexNet-{layer}-S{k}.mat",
                    {"accuracy": rng.uniform(0, 0.5, (1, 16))})
    return root


def test_decodes_a_models_layers_and_compares_with_the_published(god, tmp_path):
    result = god_decoding.run(
        bdata_dir=god, stimuli_csv=god / "images.csv", images_dir=god / "images",
        model="alexnet_caffe_tiny", layers=["conv1", "fc8"], output_dir=tmp_path,
        n_voxels=20, units=16, published_dir=str(god))
    assert list(result["layers"]) == ["conv1", "fc8"]
    assert result["subjects"] == ["Subject1", "Subject2"]
    saved = json.loads((tmp_path / "decoding.json").read_text())
    assert saved["layers"]["fc8"]["subjects"]["Subject1"]["accuracy"] == \
        result["layers"]["fc8"]["subjects"]["Subject1"]["accuracy"]
    table = pd.read_csv(tmp_path / "accuracy.csv")
    assert len(table) == 4 and table["units"].eq(16).all()
    comparison = pd.read_csv(tmp_path / "published_comparison.csv")
    assert len(comparison) == 4 and comparison["r"].notna().all()  # the same 16 units
    assert np.allclose(comparison["mean_difference"],
                       comparison["mean"] - comparison["published_mean"])
    for name in ("accuracy_by_layer", "unit_ranks", "consistency", "published_comparison"):
        assert (tmp_path / f"{name}.png").exists(), name


def test_a_missing_image_is_named(god, tmp_path):
    import shutil

    shutil.copytree(god / "images", tmp_path / "images")
    (tmp_path / "images" / f"{TRAIN_IDS[3]}.JPEG").unlink()
    with pytest.raises(ValueError, match=f"no image for 1 of .*{TRAIN_IDS[3]}"):
        god_decoding.run(bdata_dir=god, stimuli_csv=god / "images.csv",
                         images_dir=tmp_path / "images", model="alexnet_caffe_tiny",
                         layers=["fc8"], output_dir=tmp_path / "out", n_voxels=20, units=16)
