"""weights_io against files written by torch and safetensors, and against hostile/broken files."""

import io
import logging
import os
import pickle
import re
import subprocess
import sys
import zipfile

import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy

from jaxbrain.models import weights_io
from jaxbrain.models.weights_io import read_state_dict, strip_prefix

_DTYPES = [
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _save(torch, obj, path, **kwargs):
    torch.save(obj, path, **kwargs)
    return path


def _assert_same(got, want_tensors):
    assert list(got) == list(want_tensors)
    for key, t in want_tensors.items():
        want = t.detach().numpy()
        assert got[key].dtype == want.dtype, key
        np.testing.assert_array_equal(got[key], want, err_msg=key)


def _rewrite_zip(src, dst, edit):
    """Copy a zip member by member; `edit(name, data)` returns new data, or None to drop it."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = edit(name, zin.read(name))
            if data is not None:
                zout.writestr(name, data)
    return dst


def _conv_net(torch):
    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 5),
    )
    net.train()
    for _ in range(2):  # move BatchNorm's running stats and num_batches_tracked off their init
        net(torch.randn(2, 3, 6, 6))
    return net


def test_conv_net_round_trip(torch, tmp_path):
    sd = _conv_net(torch).state_dict()
    got = read_state_dict(_save(torch, sd, tmp_path / "net.pt"))
    _assert_same(got, sd)
    assert got["1.num_batches_tracked"].dtype == np.int64
    assert got["1.num_batches_tracked"] == 2


@pytest.mark.parametrize("name", _DTYPES)
def test_dtypes(torch, tmp_path, name):
    g = torch.Generator().manual_seed(0)
    dtype = getattr(torch, name)
    if dtype.is_floating_point:
        t = torch.randn(3, 4, generator=g).to(dtype)
    elif dtype == torch.bool:
        t = torch.rand(3, 4, generator=g) > 0.5
    else:
        info = torch.iinfo(dtype)
        t = torch.randint(info.min, info.max, (3, 4), generator=g, dtype=dtype)
    got = read_state_dict(_save(torch, {"x": t}, tmp_path / "x.pth"))["x"]
    if name == "bfloat16":
        assert got.dtype == ml_dtypes.bfloat16
        np.testing.assert_array_equal(got.astype(np.float32), t.float().numpy())
    else:
        _assert_same({"x": got}, {"x": t})


def test_views_and_odd_shapes(torch, tmp_path):
    torch.manual_seed(0)
    shared = torch.randn(6)
    tensors = {
        "transposed": torch.randn(4, 5).t(),
        "offset": torch.randn(10)[3:7],
        "strided": torch.randn(4, 6)[::2, 1::2],
        "expanded": torch.randn(3).expand(4, 3),
        "shared_a": shared[:3],
        "shared_b": shared.view(2, 3),
        "scalar": torch.tensor(2.5),
        "empty": torch.empty(0, 3),
    }
    assert not tensors["transposed"].is_contiguous()
    got = read_state_dict(_save(torch, tensors, tmp_path / "views.pt"))
    _assert_same(got, tensors)
    assert got["scalar"].shape == ()
    assert got["empty"].shape == (0, 3)
    assert all(a.flags.c_contiguous and a.flags.writeable for a in got.values())
    assert not np.shares_memory(got["shared_a"], got["shared_b"])


def test_parameters(torch, tmp_path):
    plain = torch.nn.Parameter(torch.randn(3))
    with_state = torch.nn.Parameter(torch.randn(2, 2))
    with_state.note = "pickled through _rebuild_parameter_with_state"
    tensors = {"plain": plain, "with_state": with_state}
    _assert_same(read_state_dict(_save(torch, tensors, tmp_path / "p.pt")), tensors)


@pytest.mark.parametrize("key", ["state_dict", "model_state_dict", "model"])
def test_wrapper_is_unwrapped(torch, tmp_path, key):
    sd = _conv_net(torch).state_dict()
    wrapped = {key: sd, "epoch": 3, "arch": "convnet", "metrics": {"top1": 0.5}}
    _assert_same(read_state_dict(_save(torch, wrapped, tmp_path / "ckpt.pt")), sd)


def test_non_tensor_entries_are_refused(torch, tmp_path):
    path = _save(torch, {"w": torch.zeros(2), "epoch": 3, "name": "net"}, tmp_path / "mixed.pt")
    with pytest.raises(ValueError, match=r"mixed\.pt: not a state dict.*'epoch', 'name'"):
        read_state_dict(path)


def test_two_wrapper_keys_are_ambiguous(torch, tmp_path):
    sd = {"w": torch.zeros(2)}
    path = _save(torch, {"model": sd, "state_dict": sd, "epoch": 1}, tmp_path / "two.pt")
    with pytest.raises(ValueError, match="ambiguous"):
        read_state_dict(path)


def test_bare_tensor_is_refused(torch, tmp_path):
    with pytest.raises(ValueError, match="not a dict of tensors"):
        read_state_dict(_save(torch, torch.zeros(2), tmp_path / "bare.pt"))


def test_prefix(torch, tmp_path, caplog):
    sd = _conv_net(torch).state_dict()
    path = _save(torch, {f"module.{k}": v for k, v in sd.items()}, tmp_path / "dp.pt")
    with caplog.at_level(logging.INFO, logger=weights_io.__name__):
        _assert_same(read_state_dict(path, prefix="module."), sd)
    assert not caplog.records  # nothing was left out

    path = _save(torch, {"module.a": torch.ones(1), "head.b": torch.zeros(1)}, tmp_path / "m.pt")
    with caplog.at_level(logging.INFO, logger=weights_io.__name__):
        got = read_state_dict(path, prefix="module.")
    assert list(got) == ["a"]
    np.testing.assert_array_equal(got["a"], np.ones(1, np.float32))
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        f"{path}: prefix 'module.' selects 1 of 2 keys; ignoring the 1 others: 'head.b'"
    )


def test_prefix_no_key_has_is_an_error(torch, tmp_path):
    sd = {"features.conv.weight": torch.zeros(1), "head.0.bias": torch.zeros(1), "n": torch.ones(1)}
    path = _save(torch, sd, tmp_path / "wrong.pt")
    message = (
        r"wrong\.pt: no key starts with prefix 'feature/'; the 3 keys start with 'features\.',"
        r" 'head\.', 'n' and include 'features\.conv\.weight', 'head\.0\.bias', 'n'$"
    )
    with pytest.raises(ValueError, match=message):
        read_state_dict(path, prefix="feature/")
    # An empty prefix keeps every key and logs nothing.
    assert sorted(read_state_dict(path)) == sorted(sd)


def test_strip_prefix_lists_at_most_ten_keys(caplog):
    state = {f"k{i}": i for i in range(12)} | {"p.x": 0}
    with caplog.at_level(logging.INFO, logger=weights_io.__name__):
        assert strip_prefix(state, "p.") == {"x": 0}
    [record] = caplog.records
    message = record.getMessage()
    assert message.startswith("prefix 'p.' selects 1 of 13 keys; ignoring the 12 others: 'k0', ")
    assert message.endswith("'k9', ... (12 in all)")
    assert "'k10'" not in message
    assert strip_prefix({"p.x": 1, "p.y.z": 2}, "p.") == {"x": 1, "y.z": 2}
    assert strip_prefix({"a": 1}, "") == {"a": 1}
    with pytest.raises(ValueError, match=r"prefix 'q\.'; the 13 keys start with 'k0', .*"
                                         r"'k9', \.\.\. \(13 in all\) and include 'k0', .*"
                                         r"'k4', \.\.\. \(13 in all\)$"):
        strip_prefix(state, "q.")
    with pytest.raises(ValueError, match=r"no key starts with prefix 'p\.'; the 0 keys$"):
        strip_prefix({}, "p.")


def _combined_checkpoint(torch, tmp_path, backbone):
    """A ResMem-style file: a backbone under `features.` beside another network's tensors."""
    tensors = {f"features.{k}": torch.from_numpy(np.array(v)) for k, v in backbone.items()}
    tensors |= {
        "head.0.weight": torch.randn(4, 64),
        "head.0.bias": torch.randn(4),
        "other.conv.weight": torch.randn(8, 3, 3, 3),
        "other.bn.running_mean": torch.randn(8),
        "features_extra.weight": torch.randn(2),  # shares the text but not the prefix
    }
    return _save(torch, tensors, tmp_path / "combined.pt")


def test_prefix_selects_a_resnet_beside_another_network(torch, tmp_path, caplog):
    from jaxbrain.models import create, from_torchvision, torch_state

    rng = np.random.default_rng(1)
    backbone = torch_state(create("resnet18_tiny", num_classes=10, seed=3))
    for key in backbone:  # non-trivial BatchNorm statistics, so eval mode is not the identity
        if key.endswith("running_mean"):
            backbone[key] = rng.normal(0.0, 0.1, backbone[key].shape).astype(np.float32)
        elif key.endswith("running_var"):
            backbone[key] = rng.uniform(0.5, 1.5, backbone[key].shape).astype(np.float32)
    plain = _save(torch, {k: torch.from_numpy(np.array(v)) for k, v in backbone.items()},
                  tmp_path / "plain.pt")
    combined = _combined_checkpoint(torch, tmp_path, backbone)
    images = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)

    want, _ = from_torchvision("resnet18_tiny", plain)(images)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=weights_io.__name__):
        model = from_torchvision("resnet18_tiny", combined, prefix="features.")
    got, _ = model(images)
    assert got["logits"].shape == (2, 10)
    np.testing.assert_array_equal(np.asarray(got["logits"]), np.asarray(want["logits"]))
    [record] = caplog.records
    message = record.getMessage()
    assert message.startswith(f"{combined}: prefix 'features.' selects {len(backbone)} of ")
    ignored = ["head.0.weight", "head.0.bias", "other.conv.weight", "other.bn.running_mean",
               "features_extra.weight"]
    assert message.endswith(f"ignoring the 5 others: {', '.join(map(repr, ignored))}")

    # Inside the prefix the check stays strict: a missing backbone tensor is an error.
    del backbone["layer1.0.bn1.running_var"]
    broken = _combined_checkpoint(torch, tmp_path, backbone)
    with pytest.raises(ValueError, match=r"combined\.pt: .*\n  missing \(1\): "
                                         r"layer1\.0\.bn1\.running_var$"):
        from_torchvision("resnet18_tiny", broken, prefix="features.")
    with pytest.raises(ValueError, match=r"no key starts with prefix 'backbone\.'"):
        from_torchvision("resnet18_tiny", broken, prefix="backbone.")


def test_safetensors_numpy(tmp_path, rng):
    arrays = {
        "enc.w": rng.standard_normal((3, 4)).astype(np.float32),
        "enc.h": rng.standard_normal(5).astype(np.float16),
        "enc.n": np.array(7, np.int64),
        "enc.m": rng.random(4) > 0.5,
        "enc.u": rng.integers(0, 256, 6, dtype=np.uint8),
    }
    path = tmp_path / "w.safetensors"
    safetensors.numpy.save_file(arrays, path)
    got = read_state_dict(path, prefix="enc.")
    assert sorted(got) == ["h", "m", "n", "u", "w"]
    for key, want in arrays.items():
        assert got[key[4:]].dtype == want.dtype
        np.testing.assert_array_equal(got[key[4:]], want)


def test_safetensors_torch_bfloat16(torch, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    tensors = {"w": torch.randn(3, 4).bfloat16(), "b": torch.randn(4)}
    path = tmp_path / "bf.safetensors"
    safetensors_torch.save_file(tensors, path)
    got = read_state_dict(path)
    assert got["w"].dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(got["w"].astype(np.float32), tensors["w"].float().numpy())
    np.testing.assert_array_equal(got["b"], tensors["b"].numpy())


class _Reduce:
    """Pickles as a call of `fn(*args)`, the classic pickle code-execution payload."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _malicious_pickles(marker):
    """(pickle bytes, refused global) pairs; each would create `marker` if it were executed."""
    touch = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    return [
        (f"cos\nsystem\n(Vtouch {marker}\ntR.".encode(), "os.system"),
        (f"cbuiltins\neval\n(V{touch}\ntR.".encode(), "builtins.eval"),
        (
            pickle.dumps({"w": _Reduce(os.system, f"touch {marker}")}, protocol=4),
            f"{os.system.__module__}.system",
        ),
        (
            pickle.dumps({"state_dict": {"w": _Reduce(subprocess.call, ["touch", str(marker)])}}),
            "subprocess.call",
        ),
    ]


@pytest.mark.parametrize("case", range(4))
def test_malicious_pickle_is_refused(tmp_path, case):
    marker = tmp_path / "pwned"
    payload, refused = _malicious_pickles(marker)[case]
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model/data.pkl", payload)
        zf.writestr("model/version", "3\n")
    message = f"model.pt: refuses to load '{refused}': only tensor state dicts can be read"
    with pytest.raises(ValueError, match=re.escape(message)):
        read_state_dict(path)
    assert not marker.exists()


def test_legacy_format_is_refused(torch, tmp_path):
    path = _save(
        torch, {"w": torch.zeros(2)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False
    )
    with pytest.raises(ValueError, match=r"old\.pt: not a torch zip checkpoint or safetensors"):
        read_state_dict(path)


def test_truncated_file(torch, tmp_path):
    data = (_save(torch, _conv_net(torch).state_dict(), tmp_path / "full.pt")).read_bytes()
    path = tmp_path / "half.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"half\.pt: corrupt or truncated"):
        read_state_dict(path)


def test_missing_and_short_storage(torch, tmp_path):
    src = _save(torch, {"w": torch.randn(8)}, tmp_path / "w.pt")
    dropped = _rewrite_zip(
        src, tmp_path / "dropped.pt", lambda n, d: None if n == "w/data/0" else d
    )
    with pytest.raises(ValueError, match=r"dropped\.pt: missing storage member 'w/data/0'"):
        read_state_dict(dropped)
    short = _rewrite_zip(src, tmp_path / "short.pt", lambda n, d: d[:12] if n == "w/data/0" else d)
    with pytest.raises(ValueError, match=r"short\.pt: storage member 'w/data/0' has 12 bytes"):
        read_state_dict(short)


def test_out_of_bounds_view_is_refused(torch, tmp_path):
    """A stride that points past the storage must not read neighbouring memory."""
    src = _save(torch, {"w": torch.randn(4, 2)}, tmp_path / "w.pt")
    # Stride (2, 1) -> (9, 1): row 3 would start at element 27 of an 8-element storage.
    bad = _rewrite_zip(
        src,
        tmp_path / "oob.pt",
        lambda n, d: d.replace(b"K\x02K\x01\x86", b"K\x09K\x01\x86") if n == "w/data.pkl" else d,
    )
    with pytest.raises(ValueError, match=r"oob\.pt: .*needs element 28 of a 8-element storage"):
        read_state_dict(bad)


def test_big_endian_storage(torch, tmp_path):
    tensors = {"f": torch.randn(3, 2), "b": torch.randn(4).bfloat16(), "i": torch.arange(5)}
    src = _save(torch, tensors, tmp_path / "le.pt")
    itemsizes = {"0": 4, "1": 2, "2": 8}

    def to_big(name, data):
        if name == "le/byteorder":
            return b"big"
        key = name.rpartition("/")[2]
        if name.startswith("le/data/") and key in itemsizes:
            return np.frombuffer(data, f"<u{itemsizes[key]}").byteswap().tobytes()
        return data

    got = read_state_dict(_rewrite_zip(src, tmp_path / "be.pt", to_big))
    np.testing.assert_array_equal(got["f"], tensors["f"].numpy())
    np.testing.assert_array_equal(got["b"].astype(np.float32), tensors["b"].float().numpy())
    np.testing.assert_array_equal(got["i"], tensors["i"].numpy())


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".bin"])
def test_random_bytes(tmp_path, rng, suffix):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(rng.bytes(256))
    with pytest.raises(ValueError, match=rf"noise\{suffix}: "):
        read_state_dict(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        read_state_dict(tmp_path / "nope.pt")


def test_does_not_import_torch():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('weights_io', {weights_io.__file__!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "assert 'torch' not in sys.modules, 'weights_io imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_in_memory_zip_name_is_found(torch, tmp_path):
    """torch names the archive folder after the file; a buffer save uses 'archive'."""
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf)
    path = tmp_path / "renamed.bin"
    path.write_bytes(buf.getvalue())
    np.testing.assert_array_equal(read_state_dict(path)["w"], np.ones(2, np.float32))
