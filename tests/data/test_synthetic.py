"""The synthetic suite: deterministic, readable by the real readers, and the planted answer
is recovered (generating layer wins per region; ceiling as planted; memorability layer wins;
decoded units agree across subjects)."""

import json

import numpy as np
import pytest

from jaxbrain.benchmarks import (
    BrainResponses,
    decode_features,
    load,
    score_layers_on,
    score_memorability,
)
from jaxbrain.data import (
    average_repetitions,
    read_assembly,
    read_lamem,
    read_stimulus_set,
    time_window,
)
from jaxbrain.data.synthetic import (
    REGION_LAYERS,
    SuiteConfig,
    hidden_activations,
    load_images,
    write_suite,
)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    truth = write_suite(root)
    ids, images = load_images(root)
    return root, truth, ids, hidden_activations(images, truth["config"]["seed"])


def test_deterministic_and_in_the_real_formats(suite, tmp_path):
    root, truth, ids, _ = suite
    again = write_suite(tmp_path)
    assert again == truth
    a, b = read_assembly(root / "neural.nc"), read_assembly(tmp_path / "neural.nc")
    np.testing.assert_array_equal(a.values, b.values)
    assert sorted(set(a["region"].values.tolist())) == ["IT", "V1", "V2", "V4"]
    stimuli = read_stimulus_set(root / "stimuli" / "stimuli.csv", root / "stimuli" / "images")
    assert stimuli["stimulus_id"].tolist() == ids.tolist()
    assert set(stimuli["category_name"]) == {"category0", "category1"}
    assert "category_name" in a.coords
    lamem = read_lamem(root / "lamem")
    assert lamem.image_names.size == SuiteConfig().n_images and len(lamem.splits) == 3
    assert json.loads((root / "truth.json").read_text()) == truth


@pytest.mark.slow
def test_generating_layer_wins_every_region_and_ceiling_is_planted(suite):
    root, truth, ids, acts = suite
    assembly = read_assembly(root / "neural.nc")
    for region, layer in REGION_LAYERS.items():
        result = score_layers_on(load(f"Synthetic.{region}-pls"), acts, ids, assembly)
        raws = {name: scores["raw"] for name, scores in result["layers"].items()}
        assert max(raws, key=raws.get) == layer, (region, raws)
        assert result["ceiling"]["ceiling"] == pytest.approx(truth["expected_ceiling"], abs=0.02)


def test_memorability_and_decoding_recover_their_layers(suite):
    root, truth, ids, acts = suite
    memorability = score_memorability(acts, [f"{i}.png" for i in ids], read_lamem(root / "lamem"))
    rhos = {name: scores["raw"] for name, scores in memorability["layers"].items()}
    assert max(rhos, key=rhos.get) == truth["memorability_layer"]
    subjects = {}
    for subject, path in truth["files"]["fmri"].items():
        trials = average_repetitions(time_window(read_assembly(root / path), 70, 170))
        subjects[subject] = BrainResponses(trials.values, trials["stimulus_id"].values)
    layers = {name: acts[name][:, :150] for name in (truth["decoded_layer"], "block1")}
    decoding = decode_features(subjects, layers, ids, ids[::5])["layers"]
    decoded = decoding[truth["decoded_layer"]]
    assert decoded["consistency"]["subject1~subject2"] > 0.6
    for subject in subjects:
        assert decoded["subjects"][subject]["mean_accuracy"] > (
            decoding["block1"]["subjects"][subject]["mean_accuracy"] + 0.1)
