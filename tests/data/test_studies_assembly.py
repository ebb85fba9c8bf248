"""The studies' IT recordings (``write_studies_assembly``): early and late windows with a
planted generator each, sustained V1-V4, the planted ceiling, input checks and truth.json."""

import json
import shutil

import numpy as np
import pytest

from jaxbrain.benchmarks.neural import prepare_neural, score_layers_on
from jaxbrain.benchmarks.registry import load
from jaxbrain.data import synthetic
from jaxbrain.data.assemblies import average_repetitions, select_region, time_window
from jaxbrain.data.brainscore_io import read_assembly
from jaxbrain.data.synthetic import (
    WINDOWS,
    StudiesConfig,
    SuiteConfig,
    split_half_ceiling,
    write_studies_assembly,
    write_suite,
)

SUITE = SuiteConfig(n_objects=4, images_per_object=12)
N_SITES = 60
GENERATORS = {"early": "memnet:fc7", "late": "resnet18:flatten"}


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("studies_suite")
    write_suite(root, SUITE)
    ids = synthetic.load_images(root)[0]
    rng = np.random.default_rng(0)
    early = rng.standard_normal((ids.size, 30))
    late = rng.standard_normal((ids.size, 30))
    truth = write_studies_assembly(root, early, late, GENERATORS, StudiesConfig(n_sites=N_SITES))
    return root, ids, early, late, truth


def _suite_copy(root, dest):
    """The parts of the suite write_studies_assembly reads, copied to ``dest``."""
    shutil.copy(root / "truth.json", dest / "truth.json")
    shutil.copytree(root / "stimuli", dest / "stimuli")
    return dest


def test_layout_regions_windows_and_rows(studies):
    root, ids, *_ = studies
    assembly = read_assembly(root / "studies" / "neural.nc")
    regions = np.asarray(assembly["region"].values).astype(str)
    names, counts = np.unique(regions, return_counts=True)
    per_region = SUITE.neuroids_per_region
    assert dict(zip(names.tolist(), counts.tolist(), strict=True)) == {
        "V1": per_region, "V2": per_region, "V4": per_region, "IT": N_SITES}
    assert assembly.sizes["time_bin"] == 2
    bins = list(zip(assembly["time_bin_start"].values.tolist(),
                    assembly["time_bin_end"].values.tolist(), strict=True))
    assert bins == [(70, 100), (180, 210)] == list(WINDOWS.values())
    reps = StudiesConfig().n_repetitions
    assert assembly.sizes["presentation"] == reps * ids.size
    stimulus_ids = np.asarray(assembly["stimulus_id"].values).astype(str)
    assert sorted(set(stimulus_ids.tolist())) == sorted(ids.tolist())
    assert np.isfinite(assembly.values).all()


def test_each_window_is_won_by_its_generator_and_the_ceiling_is_planted(studies):
    root, ids, early, late, _ = studies
    assembly = read_assembly(root / "studies" / "neural.nc")
    layers = {"early": early, "late": late}
    expected = StudiesConfig().expected_ceiling
    for window, other in (("early", "late"), ("late", "early")):
        result = score_layers_on(load(f"Synthetic.IT.{window}-pls"), layers, ids, assembly)
        scores = result["layers"]
        assert scores[window]["raw"] > 0.5, scores
        assert scores[window]["raw"] > scores[other]["raw"] + 0.3, scores
        assert scores[window]["n_neuroids"] == N_SITES
        assert result["ceiling"]["ceiling"] == pytest.approx(expected, abs=0.05)
        assert result["ceiling"]["repetitions"] == StudiesConfig().n_repetitions


def test_v1_is_sustained_the_same_signal_in_both_windows(studies):
    root, *_ = studies
    v1 = select_region(read_assembly(root / "studies" / "neural.nc"), "V1")
    windows = [average_repetitions(time_window(v1, *WINDOWS[w])).values
               for w in ("early", "late")]
    a, b = ((w - w.mean(0)) / w.std(0) for w in windows)
    per_neuroid = (a * b).mean(0)
    # same unit-variance signal, independent trial noise averaged over 6 repetitions:
    # expected r = 1 / (1 + 1/6) ≈ 0.86
    assert per_neuroid.mean() > 0.75
    assert per_neuroid.min() > 0.5


def test_feature_rows_must_match_the_suite(studies, tmp_path):
    root, ids, early, late, _ = studies
    dest = _suite_copy(root, tmp_path)
    with pytest.raises(ValueError, match="rows") as err:
        write_studies_assembly(dest, early[:-1], late, GENERATORS)
    assert f"{ids.size} stimuli" in str(err.value) and "early" in str(err.value)
    with pytest.raises(ValueError, match="late features have .* rows"):
        write_studies_assembly(dest, early, np.vstack([late, late[:1]]), GENERATORS)
    assert not (dest / "studies").exists()


@pytest.mark.parametrize("mix", [0.7, -0.1])
def test_mix_outside_zero_to_half_is_refused(studies, tmp_path, mix):
    root, _, early, late, _ = studies
    dest = _suite_copy(root, tmp_path)
    with pytest.raises(ValueError, match="mix"):
        write_studies_assembly(dest, early, late, GENERATORS, StudiesConfig(mix=mix))
    assert not (dest / "studies").exists()


def test_truth_json_records_generators_windows_and_ceiling(studies):
    root, _, _, _, truth = studies
    on_disk = json.loads((root / "studies" / "truth.json").read_text())
    assert on_disk == truth
    assert truth["generators"] == GENERATORS
    assert truth["windows"] == {name: list(window) for name, window in WINDOWS.items()}
    config = StudiesConfig(n_sites=N_SITES)
    assert truth["config"]["n_sites"] == N_SITES
    assert truth["expected_ceiling"] == split_half_ceiling(config.trial_noise,
                                                           config.n_repetitions)
    assert truth["expected_ceiling"] == pytest.approx(6 / 7)
    assert truth["files"] == {"neural": "studies/neural.nc"}


def test_noise_and_repetitions_set_trials_and_ceiling(studies, tmp_path):
    root, ids, early, late, _ = studies
    dest = _suite_copy(root, tmp_path)
    config = StudiesConfig(n_sites=N_SITES, trial_noise=2.0, n_repetitions=4)
    truth = write_studies_assembly(dest, early, late, {"early": "a", "late": "b"}, config)
    assert truth["expected_ceiling"] == split_half_ceiling(2.0, 4) == pytest.approx(0.5)
    assert truth["config"]["trial_noise"] == 2.0 and truth["config"]["n_repetitions"] == 4
    assembly = read_assembly(dest / "studies" / "neural.nc")
    assert assembly.sizes["presentation"] == 4 * ids.size
    prepared = prepare_neural(load("Synthetic.IT.early-pls"), assembly)
    assert prepared.ceiling["repetitions"] == 4
    assert prepared.ceiling["ceiling"] == pytest.approx(0.5, abs=0.12)
    # the same inputs and seed write the same recordings
    again = write_studies_assembly(dest, early, late, {"early": "a", "late": "b"}, config)
    assert again == truth
    np.testing.assert_array_equal(read_assembly(dest / "studies" / "neural.nc").values,
                                  assembly.values)
