"""Reading Brain-Score's on-disk layouts from fixtures written the way brainio writes them."""

import zipfile

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from jaxbrain.data import read_assembly, read_stimulus_set, write_assembly

N_STIM, N_REPS, N_NEUROIDS = 12, 3, 5


def brainio_style_assembly(rng, stimulus_coord="stimulus_id"):
    """An assembly with MultiIndexes, as Brain-Score builds them in memory."""
    stim = np.repeat([f"im{i:03d}" for i in range(N_STIM)], N_REPS)
    presentation = pd.MultiIndex.from_arrays(
        [stim, np.tile(np.arange(N_REPS), N_STIM), np.repeat(np.arange(N_STIM) % 4, N_REPS)],
        names=[stimulus_coord, "repetition", "object_name"],
    )
    neuroid = pd.MultiIndex.from_arrays(
        [[f"n{i}" for i in range(N_NEUROIDS)], ["V4", "V4", "IT", "IT", "IT"]],
        names=["neuroid_id", "region"],
    )
    time_bin = pd.MultiIndex.from_arrays([[70, 120], [120, 170]],
                                         names=["time_bin_start", "time_bin_end"])
    coords = xr.Coordinates.from_pandas_multiindex(presentation, "presentation")
    coords = coords.merge(xr.Coordinates.from_pandas_multiindex(neuroid, "neuroid")).coords
    coords = coords.merge(xr.Coordinates.from_pandas_multiindex(time_bin, "time_bin")).coords
    data = rng.standard_normal((N_STIM * N_REPS, N_NEUROIDS, 2))
    return xr.DataArray(data, dims=("presentation", "neuroid", "time_bin"), coords=coords)


def write_like_brainio(assembly, path, compress=True, group=None, mode="w"):
    """What brainio.packaging.write_netcdf does (jaxbrain.data.write_assembly mirrors it)."""
    write_assembly(assembly, path, group=group, compress=compress, append=mode == "a")


@pytest.mark.parametrize("compress", [True, False])
def test_reads_brainio_layout(tmp_path, rng, compress):
    original = brainio_style_assembly(rng)
    path = tmp_path / "assy.nc"
    write_like_brainio(original, path, compress=compress)
    loaded = read_assembly(path)
    assert loaded.dims == ("presentation", "neuroid", "time_bin")
    np.testing.assert_array_equal(loaded.values, original.values)
    np.testing.assert_array_equal(loaded["stimulus_id"].values, original["stimulus_id"].values)
    np.testing.assert_array_equal(loaded["region"].values, original["region"].values)
    np.testing.assert_array_equal(loaded["time_bin_start"].values, [70, 120])


def test_reads_group_and_legacy_image_id(tmp_path, rng):
    path = tmp_path / "assy.nc"
    write_like_brainio(brainio_style_assembly(rng), path)
    legacy = brainio_style_assembly(rng, stimulus_coord="image_id")
    write_like_brainio(legacy, path, group="extra", mode="a")
    loaded = read_assembly(path, group="extra")
    np.testing.assert_array_equal(loaded["stimulus_id"].values, legacy["image_id"].values)


def test_empty_truncated_and_missing_files_are_clear_errors(tmp_path, rng):
    empty = tmp_path / "empty.nc"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        read_assembly(empty)
    good = tmp_path / "good.nc"
    write_like_brainio(brainio_style_assembly(rng), good)
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated.nc: cannot read as NetCDF"):
        read_assembly(truncated)
    with pytest.raises(ValueError, match="no such assembly file"):
        read_assembly(tmp_path / "absent.nc")


def test_missing_coordinate_is_named(tmp_path, rng):
    assembly = brainio_style_assembly(rng).reset_index(["presentation", "neuroid", "time_bin"])
    path = tmp_path / "assy.nc"
    assembly.drop_vars("neuroid_id").to_dataset(name="data").to_netcdf(path)
    with pytest.raises(ValueError, match="missing coordinate 'neuroid_id'"):
        read_assembly(path)


def write_stimulus_set(tmp_path, ids, with_filename, as_zip, legacy=False):
    table = pd.DataFrame({"image_id" if legacy else "stimulus_id": ids,
                          "object_name": [f"o{i % 2}" for i in range(len(ids))]})
    if with_filename:
        table["filename"] = [f"sub/{sid}.png" for sid in ids]
    csv = tmp_path / "stimuli.csv"
    table.to_csv(csv, index=False)
    names = [f"sub/{sid}.png" for sid in ids]
    if as_zip:
        images = tmp_path / "stimuli.zip"
        with zipfile.ZipFile(images, "w") as archive:
            for name in names:
                archive.writestr(name, b"\x89PNG fake")
    else:
        images = tmp_path / "images"
        for name in names:
            (images / name).parent.mkdir(parents=True, exist_ok=True)
            (images / name).write_bytes(b"\x89PNG fake")
    return csv, images


@pytest.mark.parametrize("with_filename,as_zip", [(True, True), (False, False), (False, True)])
def test_reads_stimulus_sets(tmp_path, with_filename, as_zip):
    csv, images = write_stimulus_set(tmp_path, ["a1", "b2", "c3"], with_filename, as_zip)
    table = read_stimulus_set(csv, images)
    assert table["stimulus_id"].tolist() == ["a1", "b2", "c3"]
    assert table["object_name"].tolist() == ["o0", "o1", "o0"]
    sep = "::" if as_zip else "/"
    assert table["stimulus_path"].tolist() == [f"{images}{sep}sub/{s}.png" for s in
                                               ["a1", "b2", "c3"]]


def test_stimulus_set_errors(tmp_path):
    csv, images = write_stimulus_set(tmp_path, ["a1", "b2"], True, True, legacy=True)
    assert read_stimulus_set(csv, images)["stimulus_id"].tolist() == ["a1", "b2"]
    table = pd.read_csv(csv)
    table.loc[len(table)] = ["zz9", "o0", "sub/zz9.png"]
    table.to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"no image for 1 of 3 stimuli, e.g. \['zz9'\]"):
        read_stimulus_set(csv, images)
    pd.DataFrame({"name": ["x"]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="no 'stimulus_id' column"):
        read_stimulus_set(csv, images)
