"""Generic Object Decoding on BData files written through bdpy in the published layout
(training / perception-test / imagery data types, ROI metadata, float stimulus ids, 35 test
repetitions), with planted decodable units."""

from __future__ import annotations

import numpy as np
import pytest

from jaxbrain.benchmarks.decoding import SELECTED_ALPHAS
from jaxbrain.benchmarks.registry import load
from jaxbrain.data.bdata import god_image_id, god_stimulus_value, read_god_subject

N_TRAIN, N_TEST, REPS, N_VOXELS, N_UNITS, N_PLANTED = 90, 30, 35, 120, 24, 8


def image_ids(n, start):
    return [f"n{1443537 + k % 7:08d}_{start + k}" for k in range(n)]


TRAIN_IDS, TEST_IDS = image_ids(N_TRAIN, 100), image_ids(N_TEST, 9000)


def planted_layer(seed=0):
    """Activations (train + test images, units): units 0..7 follow 8 latent image features,
    the others are noise no brain signal carries."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((N_TRAIN + N_TEST, N_PLANTED))
    units = rng.standard_normal((N_TRAIN + N_TEST, N_UNITS))
    units[:, :N_PLANTED] = latent + 0.1 * units[:, :N_PLANTED]
    return latent, units


def write_god_subject(path, latent, seed, drop=()):
    """A subject's BData: voxels carry the latent features (different mixing per subject),
    training images shown once, test images REPS times, 5 imagery samples; ROI_VC holds the
    first 100 voxels, ROI_V1 the first 40."""
    import bdpy

    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((N_PLANTED, N_VOXELS)) * (rng.random(N_VOXELS) < 0.3)
    train_signal, test_signal = latent[:N_TRAIN] @ mixing, latent[N_TRAIN:] @ mixing
    test_rows = np.repeat(np.arange(N_TEST), REPS)
    data = np.concatenate([
        train_signal + 0.5 * rng.standard_normal(train_signal.shape),
        test_signal[test_rows] + 2.0 * rng.standard_normal((test_rows.size, N_VOXELS)),
        rng.standard_normal((5, N_VOXELS))])
    types = np.r_[np.ones(N_TRAIN), np.full(test_rows.size, 2), np.full(5, 3)]
    ids = np.r_[[god_stimulus_value(i) for i in TRAIN_IDS],
                [god_stimulus_value(TEST_IDS[r]) for r in test_rows],
                np.full(5, 1443537.0)]
    order = rng.permutation(len(types))  # sessions interleave the data types
    bdata = bdpy.BData()
    bdata.add(data[order], "VoxelData")
    if "DataType" not in drop:
        bdata.add(types[order][:, None], "DataType")
    bdata.add(ids[order][:, None], "stimulus_id")
    if "ROI_VC" not in drop:
        bdata.add_metadata("ROI_VC", (np.arange(N_VOXELS) < 100).astype(float), "VC",
                           where="VoxelData")
    bdata.add_metadata("ROI_V1", (np.arange(N_VOXELS) < 40).astype(float), "V1",
                       where="VoxelData")
    bdata.save(str(path))
    return data[order], types[order], ids[order]


@pytest.fixture(scope="module")
def god(tmp_path_factory):
    folder = tmp_path_factory.mktemp("god")
    latent, units = planted_layer()
    for k in (1, 2, 3):
        write_god_subject(folder / f"Subject{k}.h5", latent, seed=k)
    return folder, units


def test_image_ids_round_trip():
    assert god_image_id(1443537.022563) == "n01443537_22563"
    assert god_image_id(god_stimulus_value("n04592741_9")) == "n04592741_9"
    with pytest.raises(ValueError, match="not an ImageNet image id"):
        god_stimulus_value("cat.jpg")


def test_reader_averages_repetitions_per_image(tmp_path):
    latent, _ = planted_layer()
    data, types, ids = write_god_subject(tmp_path / "Subject1.h5", latent, seed=1)
    responses = read_god_subject(tmp_path / "Subject1.h5", "ROI_V1")
    assert responses.train.shape == (N_TRAIN, 40) and responses.test.shape == (N_TEST, 40)
    assert list(responses.train_ids) == sorted(TRAIN_IDS)
    assert list(responses.test_ids) == sorted(TEST_IDS)
    assert set(responses.test_repetitions) == {REPS}
    first = responses.test_ids[0]
    rows = (types == 2) & (np.array([god_image_id(v) for v in ids]) == first)
    np.testing.assert_allclose(responses.test[0], data[rows][:, :40].mean(0))


@pytest.mark.parametrize("drop, message", [
    ("ROI_VC", r"no 'ROI_VC' in its metadata \(ROIs: ROI_V1"),
    ("DataType", r"no 'DataType' in its metadata"),
])
def test_a_file_without_what_the_protocol_needs_is_named(tmp_path, drop, message):
    latent, _ = planted_layer()
    write_god_subject(tmp_path / "Subject1.h5", latent, seed=1, drop=(drop,))
    with pytest.raises(ValueError, match=message):
        read_god_subject(tmp_path / "Subject1.h5")


def test_a_file_without_test_samples_is_named(tmp_path):
    import bdpy

    bdata = bdpy.BData()
    bdata.add(np.ones((4, 3)), "VoxelData")
    bdata.add(np.ones((4, 1)), "DataType")
    bdata.add(np.full((4, 1), 1443537.5), "stimulus_id")
    bdata.add_metadata("ROI_VC", np.ones(3), "VC", where="VoxelData")
    bdata.save(str(tmp_path / "Subject9.h5"))
    with pytest.raises(ValueError, match=r"Subject9.h5: no perception test samples "
                                         r"\(DataType 2\); DataType values present: \[1.0\]"):
        read_god_subject(tmp_path / "Subject9.h5")


def test_the_protocol_recovers_the_planted_units_and_their_consistency(god):
    folder, units = god
    benchmark = load("Horikawa2017.decoding").with_data(fmri=folder).with_overrides(
        n_voxels=20, units=N_UNITS)
    prepared = benchmark.prepare()
    assert sorted(prepared.test_ids) == sorted(TEST_IDS)
    ids = np.array(TRAIN_IDS + TEST_IDS)
    benchmark.check_stimuli(prepared, ids)
    result = benchmark.decode(prepared, {"fc7": units}, ids)
    assert result["n_train"] == N_TRAIN and result["n_test"] == N_TEST
    assert "20 voxels of largest |r|" in result["readout"]
    layer = result["layers"]["fc7"]
    for subject, res in layer["subjects"].items():
        accuracy = np.asarray(res["accuracy"])
        assert set(res["ranking"][:N_PLANTED]) == set(range(N_PLANTED)), subject
        assert accuracy[:N_PLANTED].min() > 0.7, (subject, accuracy[:N_PLANTED])
        assert np.abs(accuracy[N_PLANTED:]).mean() < 0.35
        assert res["identification"] > 0.9 and res["alpha"] in SELECTED_ALPHAS
        assert res["voxels_per_unit"] == 20
    matrix = np.asarray(layer["consistency_matrix"]["r"])
    assert layer["consistency_matrix"]["subjects"] == ["Subject1", "Subject2", "Subject3"]
    assert matrix.shape == (3, 3) and np.all(matrix[np.triu_indices(3, 1)] > 0.8)
    np.testing.assert_allclose(matrix, matrix.T)
    scored = benchmark.score(prepared, {"fc7": units}, ids)
    assert scored[0].fields["raw"] == pytest.approx(np.mean(
        [layer["subjects"][s]["mean_accuracy"] for s in layer["subjects"]]))
