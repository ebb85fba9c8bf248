"""Read Brain-Score's files as they are on disk, without Brain-Score installed.

Assemblies: NetCDF4 written by brainio's ``write_netcdf`` — MultiIndexes reset so that every
coordinate is a plain variable along its dim; compressed files hold a Dataset whose one data
variable is ``data``, uncompressed ones a bare DataArray; extra assemblies may sit in groups.
Older packages name the stimulus coordinate ``image_id``; it is read as ``stimulus_id``.

Stimulus sets: a CSV with ``stimulus_id`` (legacy ``image_id``) and metadata columns, plus
the images in a folder or a zip; the CSV's ``filename`` column names each image inside it
(default: the stimulus id followed by any image extension).

Wherever a path is taken, a catalog name is too (``read_assembly("MajajHong2015.public")``,
``read_stimulus_set("hvm-public")``): the files are fetched, verified and cached by
:mod:`jaxbrain.data.fetch`. An existing path always wins over a name.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from jaxbrain.data.assemblies import validate
from jaxbrain.data.fetch import fetch, names_entry

_LEGACY_IDS = {"image_id": "stimulus_id"}
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")


def assembly_file(source, catalog=None) -> Path:
    """The local NetCDF file of ``source``: a path, or a catalog assembly fetched by name."""
    entry = names_entry(source, "assembly", catalog)
    if entry is not None:
        return fetch(entry.identifier, catalog, kind="assembly")["assembly"]
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"{path}: no such assembly file, and no catalog assembly of that name "
                         "(python -m jaxbrain fetch --list)")
    return path


def read_assembly(source, group: str | None = None, catalog=None) -> xr.DataArray:
    """Load a Brain-Score assembly (a .nc path or a catalog name, e.g.
    ``"MajajHong2015.public"``) into memory as a validated DataArray."""
    path = assembly_file(source, catalog)
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file, not a NetCDF assembly")
    try:
        with xr.open_dataset(path, group=group, engine="netcdf4") as dataset:
            dataset = dataset.load()
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        where = f" (group {group!r})" if group else ""
        raise ValueError(
            f"{path}{where}: cannot read as NetCDF (corrupt or truncated?): {err}"
        ) from err
    variables = list(dataset.data_vars)
    if "data" in variables:
        name = "data"
    elif len(variables) == 1:
        name = variables[0]
    else:
        raise ValueError(
            f"{path}: expected one data variable (brainio writes 'data'), found {variables}"
        )
    assembly = dataset[name]
    assembly = assembly.rename({k: v for k, v in _LEGACY_IDS.items() if k in assembly.coords
                                and v not in assembly.coords})
    return validate(assembly, source=str(path))


def write_assembly(assembly: xr.DataArray, path, group: str | None = None,
                   compress: bool = True, append: bool = False) -> None:
    """Write an assembly the way brainio's ``write_netcdf`` does, so Brain-Score (and
    :func:`read_assembly`) can load it: MultiIndexes reset to plain coordinates; compressed
    files hold a Dataset whose variable is ``data`` (zlib level 1)."""
    assembly = assembly.reset_index(list(assembly.indexes))
    mode = "a" if append else "w"
    if compress:
        dataset = assembly.to_dataset(name="data")
        encoding = {name: {"zlib": True, "complevel": 1} for name in dataset.variables}
        dataset.to_netcdf(path, mode=mode, group=group, encoding=encoding)
    else:
        assembly.to_netcdf(path, mode=mode, group=group)


def stimulus_set_files(source, images=None, catalog=None) -> tuple[Path, Path]:
    """(CSV, images folder or zip) of ``source``: a CSV path with ``images``, or a catalog
    stimulus set fetched by name (``images`` then overrides where the images are read from)."""
    entry = names_entry(source, "stimulus_set", catalog) if images is None else None
    if entry is not None:
        paths = fetch(entry.identifier, catalog, kind="stimulus_set")
        return paths["csv"], paths["images"]
    if images is None:
        raise ValueError(f"{source}: not a catalog stimulus set (python -m jaxbrain fetch "
                         "--list); a CSV path needs the images' folder or zip too")
    return Path(source), Path(images)


def read_stimulus_set(source, images=None, catalog=None) -> pd.DataFrame:
    """Read a stimulus set: a CSV path and its images (a folder or a .zip), or a catalog name
    (``read_stimulus_set("hvm-public")``).

    Returns the metadata with a ``stimulus_path`` column: a file path, or
    ``zip_path::member`` for images inside a zip.  Missing images are an error naming them.
    """
    csv_path, images = stimulus_set_files(source, images, catalog)
    try:
        table = pd.read_csv(csv_path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{csv_path}: cannot read stimulus-set CSV: {err}") from err
    table = table.rename(columns={k: v for k, v in _LEGACY_IDS.items()
                                  if k in table.columns and v not in table.columns})
    if "stimulus_id" not in table.columns:
        raise ValueError(f"{csv_path}: no 'stimulus_id' column (columns: {list(table.columns)})")
    table["stimulus_id"] = table["stimulus_id"].astype(str)
    if table["stimulus_id"].duplicated().any():
        dup = table.loc[table["stimulus_id"].duplicated(), "stimulus_id"].head(5).tolist()
        raise ValueError(f"{csv_path}: repeated stimulus_id values, e.g. {dup}")

    if images.suffix == ".zip":
        try:
            with zipfile.ZipFile(images) as archive:
                available = archive.namelist()
        except (OSError, zipfile.BadZipFile) as err:
            raise ValueError(f"{images}: cannot read image zip: {err}") from err
        prefix = f"{images}::"
    elif images.is_dir():
        available = [str(p.relative_to(images)) for p in images.rglob("*") if p.is_file()]
        prefix = f"{images}/"
    else:
        raise ValueError(f"{images}: expected a folder or a .zip of images")

    by_stem = {}
    for member in available:
        if member.lower().endswith(_IMAGE_EXTENSIONS):
            by_stem.setdefault(Path(member).stem, member)
    listed = set(available)
    paths, missing = [], []
    filenames = table["filename"] if "filename" in table.columns else [None] * len(table)
    for sid, filename in zip(table["stimulus_id"], filenames, strict=True):
        member = filename if isinstance(filename, str) and filename in listed else by_stem.get(sid)
        if member is None:
            missing.append(sid)
        paths.append(None if member is None else prefix + member)
    if missing:
        raise ValueError(
            f"{images}: no image for {len(missing)} of {len(table)} stimuli, "
            f"e.g. {missing[:5]}"
        )
    table["stimulus_path"] = np.asarray(paths, dtype=object)
    return table


def image_folder(folder) -> pd.DataFrame:
    """Every image under ``folder`` as a stimulus table (``stimulus_id`` = the path relative to
    the folder, sorted; ``stimulus_path``), for image sets without metadata such as a PCA
    reference set."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such image folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and p.suffix.lower() in _IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"{folder}: no images ({', '.join(_IMAGE_EXTENSIONS)})")
    return pd.DataFrame({"stimulus_id": [str(p.relative_to(folder)) for p in files],
                         "stimulus_path": np.asarray([str(p) for p in files], dtype=object)})
