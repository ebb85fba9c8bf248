"""Catalog entries fetched by name from a loopback mirror, without the internet: verified
downloads, the shared cache, Brain-Score's and torch hub's caches, and every failure.

Files are served by pytest-httpserver on 127.0.0.1 (and, for a connection dropped halfway, by
a raw ``http.server`` in a thread); ``$JAXBRAIN_MIRROR`` maps each catalog URL onto it.
"""

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.numpy
from PIL import Image

from jaxbrain import data, models
from jaxbrain.cli import main
from jaxbrain.data import CatalogError, FetchError, fetch, load_catalog
from jaxbrain.data.fetch import slot
from jaxbrain.engine.inputs import resolve_model
from tests.data.test_brainscore_io import N_STIM, brainio_style_assembly, write_like_brainio

LAB = "https://lab.example.org/data"  # served as <mirror>/lab.example.org/data/...
ROOT = Path(__file__).resolve().parents[2]


def digest(blob: bytes, algorithm="sha1") -> str:
    return hashlib.new(algorithm, blob).hexdigest()


def mirror_path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("?")[0]


def zip_bytes(members: dict[str, bytes], links=()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, blob in members.items():
            archive.writestr(name, blob)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def lab_files(tmp_path_factory):
    """Bytes of a Brain-Score-layout assembly, stimulus set (legacy ``image_id`` CSV + flat
    zip) and a torchvision-layout weight file."""
    folder = tmp_path_factory.mktemp("lab")
    write_like_brainio(brainio_style_assembly(np.random.default_rng(0)), folder / "assy.nc")
    ids = [f"im{i:03d}" for i in range(N_STIM)]
    csv = pd.DataFrame({"image_id": ids, "filename": [f"{i}.png" for i in ids],
                        "object_name": [f"o{i % 4}" for i in range(N_STIM)]})
    net = models.create("resnet18_tiny", num_classes=10)
    safetensors.numpy.save_file(models.torch_state(net), folder / "net.safetensors")
    return {"assembly": (folder / "assy.nc").read_bytes(),
            "csv": csv.to_csv(index=False).encode(),
            "images": zip_bytes({f"{i}.png": png(k) for k, i in enumerate(ids)}),
            "weights": (folder / "net.safetensors").read_bytes()}


def lab_entries(files, **overrides):
    def spec(role, name, algorithm="sha1"):
        return {"url": f"{LAB}/{name}", "checksum": f"{algorithm}:{digest(files[role], algorithm)}"}
    entries = [
        {"identifier": "lab.assy", "kind": "assembly", "files": {"assembly": spec(
            "assembly", "assy_lab.nc")}, "stimulus_set": "lab-stimuli", "citation": "our lab"},
        {"identifier": "lab-stimuli", "kind": "stimulus_set",
         "files": {"csv": spec("csv", "stimulus_lab.csv"),
                   "images": {**spec("images", "stimulus_lab.zip"), "members": N_STIM}}},
        {"identifier": "lab-net", "kind": "weights", "arch": "resnet18_tiny",
         "files": {"weights": spec("weights", "net-lab.safetensors", "sha256")}},
    ]
    for entry in entries:
        entry.update(overrides.get(entry["identifier"], {}))
    return entries


def write_catalog(path, entries) -> Path:
    path.write_text(json.dumps({"format": "jaxbrain-catalog/1", "entries": entries}))
    return path


@pytest.fixture
def caches(tmp_path, monkeypatch, httpserver):
    """A fresh $JAXBRAIN_HOME, empty Brain-Score and torch caches, the mirror on 127.0.0.1."""
    for name in ("JAXBRAIN_HOME", "BRAINIO_HOME", "TORCH_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("JAXBRAIN_MIRROR", httpserver.url_for("/").rstrip("/"))
    return tmp_path


@pytest.fixture
def lab(caches, lab_files, httpserver):
    """The lab's catalog file, with its three entries served by the mirror."""
    names = {"assembly": "assy_lab.nc", "csv": "stimulus_lab.csv", "images": "stimulus_lab.zip",
             "weights": "net-lab.safetensors"}
    for role, name in names.items():
        httpserver.expect_request(f"/lab.example.org/data/{name}").respond_with_data(
            lab_files[role])
    return write_catalog(caches / "catalog.json", lab_entries(lab_files))


def test_builtin_catalog_lists_design_entries_with_access():
    catalog = load_catalog()
    public = {"MajajHong2015.public", "hvm-public", "FreemanZiemba2013.public",
              "FreemanZiemba2013.aperture-public"}
    private = {"MajajHong2015.private", "hvm-private", "FreemanZiemba2013.private",
               "FreemanZiemba2013.aperture-private"}
    weights = {f"{a}.IMAGENET1K_V1" for a in ("alexnet", "resnet18", "resnet34", "resnet50",
                                              "resnet101", "resnet152")}
    weights |= {f"resnet{d}.IMAGENET1K_V2" for d in (50, 101, 152)}
    assert set(catalog.identifiers()) == public | private | weights
    for name in public | private:
        entry = catalog.get(name)
        assert entry.access == ("public" if name in public else "credentials")
        assert all(f.checksum.algorithm == "sha1" for f in entry.files) and entry.citation
        assert all(u.startswith("https://brainscore-storage.s3.amazonaws.com/brainio-brainscore/")
                   for f in entry.files for u in f.urls)
    assert catalog.get("dicarlo.MajajHong2015.public").identifier == "MajajHong2015.public"
    assert catalog.get("MajajHong2015.public").stimulus_set == "hvm-public"
    fz = catalog.get("FreemanZiemba2013.aperture-private")
    assert fz.file("images").urls[0].endswith("?versionId=nZES.el0vF3KXuRrB2ELQOqzCcxumFMY")
    resnet = catalog.get("resnet50.IMAGENET1K_V1").file("weights")
    assert (resnet.urls, str(resnet.checksum)) == (
        ("https://download.pytorch.org/models/resnet50-0676ba61.pth",), "sha256-prefix:0676ba61")


def test_fetch_list_shows_every_entry_with_access(capsys):
    assert main(["fetch", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["identifier", "kind", "size", "access", "cached"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == set(load_catalog().identifiers())
    assert rows["MajajHong2015.private"][3] == "credentials"
    assert rows["hvm-public"][1:] == ["stimulus_set", "?", "public", "no"]


def test_names_load_from_mirror_and_then_make_no_request(lab, httpserver, lab_files):
    assembly = data.read_assembly("lab.assy", catalog=lab)
    assert assembly.sizes["neuroid"] == 5
    stimuli = data.read_stimulus_set("lab-stimuli", catalog=lab)
    assert list(stimuli["stimulus_id"]) == [f"im{i:03d}" for i in range(N_STIM)]  # image_id
    assert all(Path(p).is_file() for p in stimuli["stimulus_path"])
    model = models.from_torchvision("resnet18_tiny", "lab-net", catalog=lab)
    assert len(httpserver.log) == 4
    # The cache: under the checksum, nothing else left behind.
    assert slot(load_catalog(lab).get("lab.assy").files[0]).read_bytes() == lab_files["assembly"]
    home = Path(os.environ["JAXBRAIN_HOME"])
    assert not [p for p in home.rglob(".download-*")] + [p for p in home.rglob(".unpack-*")]

    again = data.read_assembly("lab.assy", catalog=lab)
    data.read_stimulus_set("lab-stimuli", catalog=lab)
    reloaded = models.from_torchvision("resnet18_tiny", "lab-net", catalog=lab)
    assert len(httpserver.log) == 4
    np.testing.assert_array_equal(again.values, assembly.values)
    images = np.zeros((2, 32, 32, 3), np.float32)
    np.testing.assert_array_equal(model(images)[0]["logits"], reloaded(images)[0]["logits"])


def test_catalog_from_environment_and_sweep_model_reference(lab, monkeypatch, httpserver):
    monkeypatch.setenv("JAXBRAIN_CATALOG", str(lab))
    assert data.read_assembly("lab.assy").sizes["presentation"] > 0
    model = resolve_model("resnet18_tiny=lab-net")
    assert model.arch == "resnet18_tiny"
    with pytest.raises(CatalogError, match="for resnet18_tiny, not resnet18"):
        models.from_torchvision("resnet18", "lab-net")


def test_builtin_entry_from_mirror_is_refused_on_its_checksum(caches, httpserver):
    entry = load_catalog().get("FreemanZiemba2013.public")
    url = entry.files[0].urls[0]
    httpserver.expect_request(mirror_path(url), query_string=url.split("?")[1]) \
        .respond_with_data(b"a stand-in, not the real recordings")
    with pytest.raises(FetchError) as err:
        data.read_assembly("FreemanZiemba2013.public")
    message = str(err.value)
    for part in ("'FreemanZiemba2013.public'", "versionId=W2vx7jdh9utZdVumHHarXa4L1zOrA8Fd",
                 "checksum mismatch", "sha1:761c08f796db4e342555cdb60eef23a4f19ead43",
                 str(slot(entry.files[0]))):
        assert part in message
    assert len(httpserver.log) == 1 and not slot(entry.files[0]).exists()


def test_torchvision_name_is_fetched_from_its_url_and_checked(caches, httpserver):
    httpserver.expect_request("/download.pytorch.org/models/resnet18-f37072fd.pth") \
        .respond_with_data(b"not resnet18")
    with pytest.raises(FetchError, match="sha256-prefix:f37072fd"):
        models.from_torchvision("resnet18", "IMAGENET1K_V1")


def test_corrupted_cache_is_refetched_or_reported_offline(lab, httpserver, monkeypatch,
                                                          lab_files):
    path = data.fetch("lab.assy", lab)["assembly"]
    good = path.read_bytes()
    path.write_bytes(good[:-8] + b"tampered")  # same size, other content
    assert data.fetch("lab.assy", lab)["assembly"].read_bytes() == good
    assert len(httpserver.log) == 2
    assert path.with_name(path.name + ".corrupt").exists()  # kept for inspection, never used

    path.write_bytes(b"garbage")
    monkeypatch.setenv("JAXBRAIN_MIRROR", "http://127.0.0.1:1")  # nothing listens: offline
    with pytest.raises(FetchError) as err:
        data.read_assembly("lab.assy", catalog=lab)
    assert "failed its checksum" in str(err.value) and "cannot connect" in str(err.value)
    assert not path.exists()


def test_brainscore_and_torch_caches_are_reused_when_they_verify(lab, httpserver, lab_files,
                                                                 caches):
    catalog = load_catalog(lab)
    assembly = catalog.get("lab.assy").files[0]
    brainio = caches / "brainio_home" / assembly.checksum.digest / assembly.name
    brainio.parent.mkdir(parents=True)
    brainio.write_bytes(lab_files["assembly"])
    assert fetch("lab.assy", lab)["assembly"] == brainio

    # torch hub's cache, for a torchvision-style entry that publishes a sha256 prefix only
    blob = lab_files["weights"]
    torch_file = caches / "torch_home" / "hub" / "checkpoints" / "net-abc.safetensors"
    torch_file.parent.mkdir(parents=True)
    torch_file.write_bytes(blob)
    entry = {"identifier": "tv-net", "kind": "weights", "arch": "resnet18_tiny",
             "files": {"weights": {"url": f"{LAB}/net-abc.safetensors",
                                   "checksum": f"sha256-prefix:{digest(blob, 'sha256')[:8]}"}}}
    tv = write_catalog(caches / "tv.json", [entry])
    assert fetch("tv-net", tv)["weights"] == torch_file
    record = slot(load_catalog(tv).get("tv-net").files[0])
    record = record.with_name(record.name + ".sha256")
    assert record.read_text().strip() == digest(blob, "sha256")  # full sha256 kept from now on
    assert len(httpserver.log) == 0

    # a copy in another cache that does not verify is ignored (and left alone)
    brainio.write_bytes(b"damaged")
    assert fetch("lab.assy", lab)["assembly"] == slot(assembly)
    assert brainio.read_bytes() == b"damaged" and len(httpserver.log) == 1
    # once recorded, the full sha256 decides: a copy matching only the prefix is refused
    record.write_text("0" * 64 + "\n")
    httpserver.expect_request("/lab.example.org/data/net-abc.safetensors") \
        .respond_with_data(blob)
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch("tv-net", tv)


@pytest.mark.parametrize("status, words", [(403, ["HTTP 403", "access denied", "credentials"]),
                                           (404, ["HTTP 404"])])
def test_http_errors_name_identifier_url_checksum_and_place(caches, httpserver, status, words):
    entry = {"identifier": "priv.assy", "kind": "assembly", "access": "credentials",
             "access_reason": "needs credentials from the lab",
             "files": {"assembly": {"url": f"{LAB}/priv.nc?versionId=v1",
                                    "checksum": "sha1:" + "a" * 40}}}
    catalog = write_catalog(caches / "c.json", [entry])
    httpserver.expect_request("/lab.example.org/data/priv.nc").respond_with_data(
        b"denied", status=status)
    with pytest.raises(FetchError) as err:
        fetch("priv.assy", catalog)
    message = str(err.value)
    place = Path(os.environ["JAXBRAIN_HOME"]) / "sha1" / ("a" * 40) / "priv.nc"
    for part in ["'priv.assy'", f"{httpserver.url_for('/')}lab.example.org/data/priv.nc"
                 "?versionId=v1", "sha1:" + "a" * 40, str(place), *words]:
        assert part in message
    assert main(["fetch", "--catalog", str(catalog), "priv.assy"]) == 2


class _DropHalfway(BaseHTTPRequestHandler):
    payload = b"x" * 200_000

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload[: len(self.payload) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_connection_dropped_halfway_leaves_nothing_trusted(caches, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DropHalfway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("JAXBRAIN_MIRROR", f"http://127.0.0.1:{server.server_port}")
        entry = {"identifier": "big", "kind": "assembly", "files": {"assembly": {
            "url": f"{LAB}/big.nc", "checksum": "sha1:" + digest(_DropHalfway.payload)}}}
        catalog = write_catalog(caches / "c.json", [entry])
        with pytest.raises(FetchError, match="download interrupted"):
            fetch("big", catalog)
    finally:
        server.shutdown()
    folder = Path(os.environ["JAXBRAIN_HOME"]) / "sha1" / digest(_DropHalfway.payload)
    assert [p.name for p in folder.iterdir()] == [".lock"]


def test_concurrent_processes_end_with_one_verified_copy(lab, httpserver, lab_files):
    httpserver.clear()
    def slow(request):
        time.sleep(1.5)
        from werkzeug import Response
        return Response(lab_files["assembly"])
    httpserver.expect_request("/lab.example.org/data/assy_lab.nc").respond_with_handler(slow)
    code = ("import sys; from jaxbrain.data import fetch; "
            "print(fetch('lab.assy', sys.argv[1])['assembly'])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(lab)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1 and Path(paths.pop()).read_bytes() == lab_files["assembly"]
    assert len(httpserver.log) == 1


@pytest.mark.parametrize("members, links, problem", [
    ({"../escape.png": b"x"}, (), "outside the target folder"),
    ({"/abs.png": b"x"}, (), "outside the target folder"),
    ({"ok.png": b"x"}, ("link.png",), "symbolic link"),
    ({f"{i}.png": b"x" for i in range(N_STIM * 3)}, (), "far beyond"),
    ({"zeros.png": bytes(20_000_000)}, (), "decompression bomb"),
])
def test_unsafe_archives_are_refused(caches, httpserver, lab_files, members, links, problem):
    blob = zip_bytes(members, links)
    entries = lab_entries(lab_files, **{"lab-stimuli": {"files": {
        "csv": {"url": f"{LAB}/s.csv", "checksum": "sha1:" + digest(lab_files["csv"])},
        "images": {"url": f"{LAB}/s.zip", "checksum": "sha1:" + digest(blob),
                   "members": N_STIM}}}})
    catalog = write_catalog(caches / "c.json", entries)
    httpserver.expect_request("/lab.example.org/data/s.csv").respond_with_data(lab_files["csv"])
    httpserver.expect_request("/lab.example.org/data/s.zip").respond_with_data(blob)
    with pytest.raises(FetchError, match=problem):
        data.read_stimulus_set("lab-stimuli", catalog=catalog)
    home = Path(os.environ["JAXBRAIN_HOME"])
    assert not (home / "sha1" / "escape.png").exists() and not list(home.rglob("*.png"))


def test_tar_archive_entry_unpacks_to_a_folder(caches, httpserver):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, blob in {"lamem/splits/train_1.txt": b"a.jpg 0.5\n",
                           "lamem/images/a.jpg": b"jpeg"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    blob = buffer.getvalue()
    entry = {"identifier": "lamem", "kind": "archive", "files": {"archive": {
        "url": f"{LAB}/lamem.tar.gz", "checksum": "sha256:" + digest(blob, "sha256")}}}
    catalog = write_catalog(caches / "c.json", [entry])
    httpserver.expect_request("/lab.example.org/data/lamem.tar.gz").respond_with_data(blob)
    folder = fetch("lamem", catalog)["archive"]
    assert folder.name == "lamem" and (folder / "lamem/splits/train_1.txt").read_bytes() == \
        b"a.jpg 0.5\n"
    (folder / "lamem/images/a.jpg").unlink()  # a damaged unpack is made again, not trusted
    assert (fetch("lamem", catalog)["archive"] / "lamem/images/a.jpg").is_file()
    assert len(httpserver.log) == 1


def test_local_path_entry_is_used_in_place_and_verified(tmp_path, caches, lab_files):
    local = tmp_path / "assy_local.nc"
    local.write_bytes(lab_files["assembly"])
    entry = {"identifier": "local.assy", "kind": "assembly", "files": {"assembly": {
        "path": "assy_local.nc", "checksum": "sha1:" + digest(lab_files["assembly"])}}}
    catalog = write_catalog(tmp_path / "c.json", [entry])  # relative to the catalog file
    assert fetch("local.assy", catalog)["assembly"] == local
    local.write_bytes(b"changed")
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch("local.assy", catalog)


def test_catalog_prefix_selects_a_network_inside_a_checkpoint(caches, httpserver):
    net = models.create("resnet18_tiny", num_classes=10)
    state = {f"features.{k}": v for k, v in models.torch_state(net).items()}
    state["head.weight"] = np.ones((1, 3), np.float32)
    buffer = io.BytesIO(safetensors.numpy.save(state))
    blob = buffer.getvalue()
    entry = {"identifier": "wrapped", "kind": "weights", "arch": "resnet18_tiny",
             "prefix": "features.", "files": {"weights": {
                 "url": f"{LAB}/wrapped.safetensors", "checksum": "md5:" + digest(blob, "md5")}}}
    catalog = write_catalog(caches / "c.json", [entry])
    httpserver.expect_request("/lab.example.org/data/wrapped.safetensors").respond_with_data(blob)
    loaded = models.from_torchvision("resnet18_tiny", "wrapped", catalog=catalog)
    images = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
    net.eval()
    np.testing.assert_allclose(loaded(images)[0]["logits"], net(images)[0]["logits"], rtol=1e-6)


@pytest.mark.parametrize("change, problem", [
    ({"files": {"assembly": {"url": f"{LAB}/a.nc"}}}, "missing 'checksum'"),
    ({"kind": "recording"}, "unknown kind 'recording'"),
    ({"files": {"assembly": {"url": f"{LAB}/a.nc", "checksum": "sha1:abc"}}}, "40 hex digits"),
    ({"files": {"assembly": {"url": f"{LAB}/a.nc", "checksum": "crc:abc"}}}, "unknown algorithm"),
    ({"files": {"assembly": {"checksum": "sha1:" + "a" * 40}}}, "needs 'url', 'urls' or 'path'"),
    ({"files": {"csv": {"url": f"{LAB}/a.csv", "checksum": "sha1:" + "a" * 40}}},
     "must name exactly \\['assembly'\\]"),
    ({"identifier": "MajajHong2015.public"}, "clashes with 'MajajHong2015.public'"),
    ({"aliases": ["hvm-public"]}, "clashes with 'hvm-public'"),
    ({"replaces": True}, "replaces no entry"),
    ({"colour": "red"}, "unknown fields \\['colour'\\]"),
])
def test_bad_catalog_entries_name_the_file_and_the_entry(tmp_path, change, problem):
    entry = {"identifier": "mine", "kind": "assembly",
             "files": {"assembly": {"url": f"{LAB}/a.nc", "checksum": "sha1:" + "a" * 40}}}
    entry.update(change)
    path = write_catalog(tmp_path / "bad.json", [entry])
    with pytest.raises(CatalogError, match=problem) as err:
        load_catalog(path)
    assert str(path) in str(err.value) and f"entry {entry['identifier']!r}" in str(err.value)


def test_user_entry_replaces_a_builtin_one_when_it_says_so(tmp_path, caches, lab_files):
    local = tmp_path / "assy_private_copy.nc"
    local.write_bytes(lab_files["assembly"])
    entry = {"identifier": "MajajHong2015.public", "kind": "assembly", "replaces": True,
             "files": {"assembly": {"path": str(local),
                                    "checksum": "sha1:" + digest(lab_files["assembly"])}}}
    catalog = write_catalog(tmp_path / "c.json", [entry])
    assert fetch("MajajHong2015.public", catalog)["assembly"] == local
    assert "dicarlo.MajajHong2015.public" not in load_catalog(catalog)  # the old aliases go too
    with pytest.raises(CatalogError, match="is assembly, not weights"):
        fetch("MajajHong2015.public", catalog, kind="weights")


def test_fetch_cli_fetches_and_lists_cached(lab, capsys):
    assert main(["fetch", "--catalog", str(lab), "lab.assy", "lab-stimuli"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in out] == [
        ["lab.assy", "assembly"], ["lab-stimuli", "csv"], ["lab-stimuli", "images"]]
    assert Path(out[2].split("\t")[2]).is_dir()
    assert main(["fetch", "--catalog", str(lab), "--list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert rows["lab.assy"][-1] == "jaxbrain" and rows["lab-net"][-1] == "no"
    size = Path(out[0].split("\t")[2]).stat().st_size
    assert rows["lab.assy"][2:4] == [f"{size / 1000:.1f}", "kB"]
    assert main(["fetch", "--catalog", str(lab), "no-such-entry"]) == 2
    assert "no catalog entry 'no-such-entry'" in capsys.readouterr().err


def test_cli_score_takes_an_assembly_name(lab, tmp_path, capsys):
    ids = np.array([f"im{i:03d}" for i in range(N_STIM)])
    acts = tmp_path / "acts.npz"
    np.savez(acts, stimulus_id=ids, layer=np.random.default_rng(1).standard_normal((N_STIM, 4)))
    code = main(["score", "--activations", str(acts), "--assembly", "lab.assy", "--catalog",
                 str(lab), "--benchmark", "MajajHong2015.IT-pls", "--components", "2",
                 "--splits", "2", "--train-fraction", "0.6", "--stratification", "none",
                 "--out", str(tmp_path / "s.json")])
    assert code == 0, capsys.readouterr().err
    assert "layer" in json.loads((tmp_path / "s.json").read_text())["layers"]


@pytest.mark.network
def test_real_torchvision_weights_download(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXBRAIN_HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("JAXBRAIN_MIRROR", raising=False)
    model = models.from_torchvision("resnet18", "IMAGENET1K_V1")
    assert model(np.zeros((1, 224, 224, 3), np.float32))[0]["logits"].shape == (1, 1000)
    assert fetch("MajajHong2015.public")["assembly"].stat().st_size > 0


def test_sweep_inputs_take_catalog_names(lab, monkeypatch, tmp_path, rng):
    from jaxbrain.engine.inputs import load_benchmarks, load_stimuli
    from jaxbrain.files import file_digest
    from tests.benchmarks.test_neural import write_recordings

    path, _, _ = write_recordings(tmp_path, rng, 12)  # enough stimuli for the IT splits
    big = {"identifier": "lab.big", "kind": "assembly", "files": {"assembly": {
        "path": str(path), "checksum": "sha1:" + digest(path.read_bytes())}}}
    catalog = json.loads(lab.read_text())
    catalog["entries"].append(big)
    monkeypatch.setenv("JAXBRAIN_CATALOG", str(write_catalog(lab, catalog["entries"])))
    stimuli = load_stimuli("lab-stimuli", "", degrees=8.0)
    assert list(stimuli.ids) == [f"im{i:03d}" for i in range(N_STIM)]
    assert stimuli.images[0].shape == (8, 8, 3)
    (loaded,) = load_benchmarks(["MajajHong2015.IT-pls"], assembly_path="lab.big")
    assert loaded.digest == file_digest(path)
    assert loaded.prepared.source == "lab.big" and loaded.prepared.y.shape[1] == 6  # IT


def test_real_benchmarks_name_their_data_and_the_cli_fetches_it(lab, tmp_path, lab_files,
                                                                 monkeypatch, capsys):
    from jaxbrain import benchmarks

    it = benchmarks.load("MajajHong2015public.IT-pls")
    assert (it.assembly, it.stimulus_set, it.visual_degrees) == (
        "MajajHong2015.public", "hvm-public", 8.0)
    v1 = benchmarks.load("FreemanZiemba2013.V1-pls")
    assert (v1.assembly, v1.stimulus_set, v1.visual_degrees) == (
        "FreemanZiemba2013.private", "FreemanZiemba2013.aperture-private", 4.0)
    assert benchmarks.load("Synthetic.IT-pls").assembly is None  # the caller supplies it

    # The user's copy stands in for Brain-Score's public file; --assembly is then not needed.
    served = {"identifier": "MajajHong2015.public", "kind": "assembly", "replaces": True,
              "files": {"assembly": {"url": f"{LAB}/assy_lab.nc",
                                     "checksum": "sha1:" + digest(lab_files["assembly"])}}}
    monkeypatch.setenv("JAXBRAIN_CATALOG", str(write_catalog(tmp_path / "mine.json", [served])))
    ids = np.array([f"im{i:03d}" for i in range(N_STIM)])
    acts = tmp_path / "acts.npz"
    np.savez(acts, stimulus_id=ids, layer=np.random.default_rng(1).standard_normal((N_STIM, 4)))
    out = tmp_path / "s.json"
    code = main(["score", "--activations", str(acts), "--benchmark", "MajajHong2015public.IT-pls",
                 "--components", "2", "--splits", "2", "--train-fraction", "0.6",
                 "--stratification", "none", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["inputs"]["data"] == result["data"] == "MajajHong2015.public"
    assert result["benchmark"]["stimulus_set"] == "hvm-public"
    code = main(["score", "--activations", str(acts), "--benchmark", "Synthetic.IT-pls",
                 "--out", str(out)])
    assert code == 2 and "Synthetic.IT-pls names no recordings" in capsys.readouterr().err
