"""The on-disk layer-bank cache: round trips, keys that see every change, atomic writes."""

import json
import subprocess
import sys

import numpy as np
import pytest

from jaxbrain.features import (
    PCA,
    RandomProjection,
    cache_key,
    extract,
    extract_cached,
    load,
    preprocessing_key,
    save,
    weights_hash,
)
from jaxbrain.features import cache as cache_module
from jaxbrain.features.extract import fingerprint
from jaxbrain.models import create

# the configuration of test_extract's random-projection test, so compiled functions are shared
TAPS = ["conv1", "layer1.0.relu", "layer2.1.add", "layer4", "fc", "memorability"]
REDUCTION = RandomProjection(d=32, seed=4)
PREP = preprocessing_key(stimulus_degrees=8, image_size=32)


@pytest.fixture(scope="module")
def model():
    return create("resnet18_tiny", num_classes=8, heads=("classification", "memorability"))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).normal(size=(10, 32, 32, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def ids():
    return np.array([f"im{i:02d}" for i in range(10)])


@pytest.fixture(scope="module")
def bank(model, images, ids):
    return extract(model, images, ids, taps=TAPS, reduction=REDUCTION, batch_size=4,
                   preprocessing=PREP)


def _key(prints, **changes):
    args = {"weights_hash": prints["weights_hash"], "stimuli_hash": prints["stimuli_hash"],
            "reference_hash": prints["reference_hash"], "model_class": prints["model_class"],
            "preprocessing": PREP, "reduction": REDUCTION, "taps": TAPS, **changes}
    return cache_key(**args)


def _assert_same_bank(cached, bank, cache_dir, key):
    np.testing.assert_array_equal(cached.stimulus_ids, bank.stimulus_ids)
    assert list(cached.layers) == list(bank.layers)
    for name in cached.layers:
        np.testing.assert_array_equal(cached.layers[name], bank.layers[name])
    assert cached.meta == {**bank.meta, "cache_key": key, "cache_dir": str(cache_dir)}


def test_round_trip(bank, tmp_path):
    key = "k" * 64
    path = save(bank, tmp_path, key)
    assert path == tmp_path / key and [p.name for p in tmp_path.iterdir()] == [key]
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["meta.json", "stimulus_ids.npy", *(f"layer{i:04d}.npy" for i in range(len(TAPS)))])
    loaded = load(tmp_path, key)
    _assert_same_bank(loaded, bank, tmp_path, key)
    assert not loaded.layers["conv1"].flags.writeable  # memory-mapped read-only
    assert load(tmp_path, "absent") is None
    assert save(bank, tmp_path, key) == path  # saving an existing key again is harmless
    assert [p.name for p in tmp_path.iterdir()] == [key]


def test_key_sees_every_input_and_option(model, images, ids):
    prints = fingerprint(model, images, ids, None)
    base = _key(prints)
    assert base == _key(fingerprint(model, images.copy(), list(ids), None))
    assert base == _key(prints, taps=TAPS[::-1])  # the bank is in forward order anyway
    other_weights = create("resnet18_tiny", num_classes=8,
                           heads=("classification", "memorability"), seed=1)
    changed_images = images.copy()
    changed_images[3, 0, 0, 0] += 1e-3
    reference = np.zeros((4, 32, 32, 3), np.float32)
    variants = [
        _key(fingerprint(other_weights, images, ids, None)),
        _key(fingerprint(model, changed_images, ids, None)),
        _key(fingerprint(model, images, [*ids[:-1], "other"], None)),
        _key(fingerprint(model, images, ids, reference), reduction=PCA()),
        _key(prints, reduction=RandomProjection(d=33, seed=4)),
        _key(prints, reduction=RandomProjection(d=32, seed=5)),
        _key(prints, reduction="none"),
        _key(prints, preprocessing=preprocessing_key(stimulus_degrees=4, image_size=32)),
        _key(prints, preprocessing=None),
        _key(prints, taps=TAPS[:-1]),
        _key(prints, taps="all"),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_weights_hash_depends_on_weights_only(model):
    same = create("resnet18_tiny", num_classes=8, heads=("classification", "memorability"))
    assert weights_hash(same) == weights_hash(model)
    other = create("resnet18_tiny", num_classes=8, heads=("classification", "memorability"),
                   seed=1)
    assert weights_hash(other) != weights_hash(model)
    same.bn1.mean[...] = same.bn1.mean[...] + 1  # batch statistics count too
    assert weights_hash(same) != weights_hash(model)


_IN_ANY_PROCESS = """
import jax.numpy as jnp, numpy as np
from flax import nnx
from jaxbrain.features import RandomProjection, stimuli_hash, weights_hash
r = RandomProjection(d=7, seed=5)
sketched = r.apply(r.prepare("layer3.1", 100), jnp.arange(100.0, dtype=jnp.float32)[None])
print(weights_hash(nnx.Linear(3, 4, rngs=nnx.Rngs(0))))
print(stimuli_hash(["a", "b"], np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3)))
print(np.asarray(sketched).tolist())
"""


def test_hashes_and_sketches_stable_across_processes(capsys):
    # the fresh process also runs without the jax_enable_x64 that conftest turns on here
    out = subprocess.run([sys.executable, "-c", _IN_ANY_PROCESS], capture_output=True, text=True,
                         check=True)
    exec(_IN_ANY_PROCESS, {})
    assert out.stdout == capsys.readouterr().out


def test_interrupted_save_is_never_loaded(bank, tmp_path, monkeypatch):
    key = "k" * 64
    debris = tmp_path / f".{key}.x1y2.tmp"  # what a killed save leaves
    debris.mkdir()
    (debris / "layer0000.npy").write_bytes(b"\x93NUMPY")
    assert load(tmp_path, key) is None

    calls = []
    real_save = np.save

    def failing_save(path, array):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        real_save(path, array)

    monkeypatch.setattr(cache_module.np, "save", failing_save)
    with pytest.raises(OSError, match=r"cannot write .*layer0001\.npy: .*disk full"):
        save(bank, tmp_path, key)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [debris.name]  # its own temp removed
    assert load(tmp_path, key) is None


def test_damaged_entry_is_reported_with_its_path(bank, tmp_path):
    key = "k" * 64
    path = save(bank, tmp_path, key)
    layer = path / "layer0002.npy"
    layer.write_bytes(layer.read_bytes()[:-40])
    with pytest.raises(ValueError, match=f"{path}.*corrupt or truncated"):
        load(tmp_path, key)
    (path / "meta.json").unlink()
    with pytest.raises(ValueError, match="meta.json"):
        load(tmp_path, key)


def test_extract_cached_runs_the_model_once(model, images, ids, bank, tmp_path, monkeypatch):
    runs = []
    real_extract = cache_module.extract_fingerprinted

    def counting_extract(*args, **kwargs):
        runs.append(kwargs["reduction"])
        return real_extract(*args, **kwargs)

    monkeypatch.setattr(cache_module, "extract_fingerprinted", counting_extract)
    kwargs = {"cache_dir": tmp_path, "taps": TAPS, "reduction": REDUCTION, "batch_size": 4,
              "preprocessing": PREP}
    first = extract_cached(model, images, ids, **kwargs)
    key = first.meta["cache_key"]
    _assert_same_bank(first, bank, tmp_path, key)
    second = extract_cached(model, images, ids, **kwargs)
    assert len(runs) == 1
    _assert_same_bank(second, bank, tmp_path, key)
    meta = json.loads((tmp_path / key / "meta.json").read_text())
    assert meta["meta"]["weights_hash"] == weights_hash(model)
    extract_cached(model, images, ids, **{**kwargs, "taps": TAPS[:2]})
    assert len(runs) == 2 and len(list(tmp_path.iterdir())) == 2


def test_short_write_names_the_file_and_the_full_disk(bank, tmp_path, monkeypatch):
    """numpy's short write ("N requested and M written", no errno) on a full disk becomes one
    message naming the file and the cause."""
    from jaxbrain.files import WriteError

    def short_write(path, array):
        raise OSError("320000 requested and 199648 written")

    import jaxbrain.files as files_module

    monkeypatch.setattr(cache_module.np, "save", short_write)
    monkeypatch.setattr(files_module.shutil, "disk_usage",
                        lambda _: type("U", (), {"free": 1 << 20})())
    with pytest.raises(WriteError, match=r"cannot write .*stimulus_ids\.npy: no space left on "
                                         r"device \(1 MiB free\): 320000 requested"):
        save(bank, tmp_path, "k" * 64)


def test_same_size_overwrite_is_caught_and_recomputed(model, images, ids, tmp_path):
    """A cached layer overwritten with other values of the same size fails its sha256; the
    cached extraction moves the entry aside and recomputes the original values."""
    from jaxbrain.features.cache import DamagedBank

    kwargs = {"cache_dir": tmp_path, "taps": TAPS, "reduction": REDUCTION, "batch_size": 4,
              "preprocessing": PREP}
    first = extract_cached(model, images, ids, **kwargs)
    key = first.meta["cache_key"]
    expected = {name: np.array(values) for name, values in first.layers.items()}
    del first
    target = tmp_path / key / "layer0001.npy"
    damaged = np.load(target)
    np.save(target, np.random.default_rng(1).standard_normal(damaged.shape).astype(np.float32))
    with pytest.raises(DamagedBank, match="does not match its stored sha256"):
        load(tmp_path, key)
    again = extract_cached(model, images, ids, **kwargs)
    for name, values in expected.items():
        np.testing.assert_array_equal(again.layers[name], values)
    assert [p.name for p in tmp_path.iterdir() if "damaged" in p.name] == [f".{key}.damaged-0"]
