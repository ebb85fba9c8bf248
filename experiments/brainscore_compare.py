"""One-off comparison of `python -m jaxbrain score` with Brain-Score vision itself.

Brain-Score pins numpy < 2 and an old xarray, so it lives in its own virtual environment and
is never imported by jaxbrain or its tests.  Three steps, in one folder:

    .venv/bin/python -m experiments.brainscore_compare make DIR [uneven]  # fixture
    python3 -m venv bsenv && BS_INSTALL_DEPENDENCIES=no bsenv/bin/pip install \\
        torch==2.13.0 brainscore-vision                                # once
    RESULTCACHING_DISABLE=1 bsenv/bin/python experiments/brainscore_compare.py brainscore DIR
    .venv/bin/python -m experiments.brainscore_compare compare DIR     # jaxbrain + differences

The fixture is an IT assembly in brainio's NetCDF layout (640 stimuli of 64 objects,
4 repetitions, 168 neuroids driven by the second of three random layers plus unit noise) and
an activations .npz (``uneven``: every 7th trial dropped, so stimuli have 2-4 repetitions);
Brain-Score scores it with its registered ``pls`` metric and
``internal_consistency`` ceiling and its ``explained_variance`` ceiled score, and with its
``cka_cv`` and ``rdm_cv`` metrics (compared with the ``-cka`` / ``-rdm`` benchmarks).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

N_STIMULI, N_OBJECTS, N_REPETITIONS, N_NEUROIDS = 640, 64, 4, 168
LAYER_WIDTHS = (512, 2048, 4096)


def make(folder: Path, uneven: bool = False) -> None:
    import numpy as np
    import pandas as pd
    import xarray as xr

    from jaxbrain.data import write_assembly

    rng = np.random.default_rng(0)
    ids = np.array([f"img{i:04d}" for i in range(N_STIMULI)])
    objects = np.repeat([f"o{i}" for i in range(N_OBJECTS)], N_STIMULI // N_OBJECTS)
    layers = {f"layer{k}": rng.standard_normal((N_STIMULI, d)).astype(np.float32)
              for k, d in enumerate(LAYER_WIDTHS)}
    signal = layers["layer1"] @ rng.standard_normal((LAYER_WIDTHS[1], N_NEUROIDS)) / 45
    trials = signal[None] + rng.standard_normal((N_REPETITIONS, N_STIMULI, N_NEUROIDS))
    index = pd.MultiIndex.from_arrays
    coords = xr.Coordinates.from_pandas_multiindex(index(
        [np.tile(ids, N_REPETITIONS), np.repeat(np.arange(N_REPETITIONS), N_STIMULI),
         np.tile(objects, N_REPETITIONS)], names=["stimulus_id", "repetition", "object_name"]),
        "presentation")
    for dim, arrays, names in (
        ("neuroid", [[f"n{i}" for i in range(N_NEUROIDS)], ["IT"] * N_NEUROIDS],
         ["neuroid_id", "region"]),
        ("time_bin", [[70], [170]], ["time_bin_start", "time_bin_end"]),
    ):
        coords = coords.merge(xr.Coordinates.from_pandas_multiindex(index(arrays, names=names),
                                                                    dim)).coords
    data = trials.reshape(N_REPETITIONS * N_STIMULI, N_NEUROIDS)[:, :, None]
    assembly = xr.DataArray(data, dims=("presentation", "neuroid", "time_bin"), coords=coords)
    if uneven:  # drop every 7th trial: stimuli end up with 2 to 4 repetitions
        assembly = assembly.isel(presentation=np.arange(assembly.sizes["presentation"]) % 7 != 3)
    folder.mkdir(parents=True, exist_ok=True)
    write_assembly(assembly, folder / "data.nc")
    np.savez(folder / "acts.npz", stimulus_id=ids, **layers)
    print(f"wrote {folder / 'data.nc'} and {folder / 'acts.npz'}")


def brainscore(folder: Path) -> None:
    """Runs inside Brain-Score's environment."""
    import numpy as np
    import xarray as xr
    from brainscore_core.supported_data_standards.brainio.assemblies import (
        NeuroidAssembly,
        NeuronRecordingAssembly,
    )
    from brainscore_vision import load_ceiling, load_metric
    from brainscore_vision.benchmark_helpers.neural_common import (
        average_repetition,
        explained_variance,
    )

    assembly = NeuronRecordingAssembly(xr.open_dataset(folder / "data.nc")["data"])
    assembly = assembly.squeeze("time_bin")
    target = average_repetition(assembly)
    objects = dict(zip(assembly["stimulus_id"].values, assembly["object_name"].values,
                       strict=True))
    ceiling = load_ceiling("internal_consistency")(assembly)
    metric = load_metric("pls")
    acts = np.load(folder / "acts.npz")
    ids = acts["stimulus_id"]
    result = {"ceiling": float(ceiling.values), "layers": {}}
    for name in (k for k in acts.files if k != "stimulus_id"):
        x = acts[name].reshape(len(ids), -1)
        source = NeuroidAssembly(x, dims=["presentation", "neuroid"], coords={
            "stimulus_id": ("presentation", ids),
            "object_name": ("presentation", [objects[i] for i in ids]),
            "neuroid_id": ("neuroid", np.arange(x.shape[1])),
            "neuroid_num": ("neuroid", np.arange(x.shape[1])),
        })
        start = time.perf_counter()
        score = metric(source, target)
        seconds = time.perf_counter() - start
        similarities = {kind: float(load_metric(f"{kind}_cv")(source, target).values)
                        for kind in ("cka", "rdm")}
        raw = score.attrs["raw"].transpose("split", "neuroid")
        result["layers"][name] = {
            "raw": float(score.values), "error": float(score.attrs["error"]),
            "per_split": raw.median("neuroid").values.tolist(),
            "ceiled": float(explained_variance(score, ceiling).values),
            "per_neuroid": dict(zip(raw["neuroid_id"].values.tolist(),
                                    raw.mean("split").values.tolist(), strict=True)),
            "seconds": seconds,
            **similarities,
        }
        print(f"{name}: raw {float(score.values):.6f} ({seconds:.1f} s)")
    (folder / "brainscore.json").write_text(json.dumps(result))


def _jaxbrain_score(folder: Path, benchmark: str) -> tuple[dict, float]:
    out = folder / f"jaxbrain-{benchmark}.json"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jaxbrain", "score", "--activations",
                    str(folder / "acts.npz"), "--assembly", str(folder / "data.nc"),
                    "--benchmark", benchmark, "--out", str(out)], check=True)
    return json.loads(out.read_text()), time.perf_counter() - start


def compare(folder: Path) -> None:
    import numpy as np

    ours, seconds = _jaxbrain_score(folder, "MajajHong2015.IT-pls")
    theirs = json.loads((folder / "brainscore.json").read_text())
    print(f"jaxbrain CLI: {seconds:.1f} s for {len(ours['layers'])} layers, start-up included")
    print(f"ceiling |diff| {abs(ours['ceiling']['ceiling'] - theirs['ceiling']):.1e}")
    ids = [f"n{i}" for i in range(N_NEUROIDS)]
    for name, mine in ours["layers"].items():
        ref = theirs["layers"][name]
        neuroid_ref = np.array([ref["per_neuroid"][i] for i in ids])
        neuroid_mine = np.array([mine["per_neuroid"][i] for i in ids])
        print(f"{name}: raw |diff| {abs(mine['raw'] - ref['raw']):.1e}  ceiled "
              f"{abs(mine['ceiled'] - ref['ceiled']):.1e}  per-split max "
              f"{np.abs(np.subtract(mine['per_split'], ref['per_split'])).max():.1e}  "
              f"per-neuroid max {np.abs(neuroid_mine - neuroid_ref).max():.1e}"
              f"  (Brain-Score {ref['seconds']:.1f} s)")
    for kind in ("cka", "rdm"):
        similarity, _ = _jaxbrain_score(folder, f"MajajHong2015.IT-{kind}")
        diffs = [abs(similarity["layers"][name]["raw"] - theirs["layers"][name][kind])
                 for name in similarity["layers"]]
        print(f"{kind}_cv: largest |diff| over layers {max(diffs):.1e}")


if __name__ == "__main__":
    step, folder, *options = sys.argv[1:]
    if step == "make":
        make(Path(folder), uneven="uneven" in options)
    else:
        {"brainscore": brainscore, "compare": compare}[step](Path(folder))
