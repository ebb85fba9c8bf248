"""``experiments/configs/brainscore_public.flags`` end to end, with the loopback mirror standing
in for Brain-Score's S3 bucket and torchvision's download site.

Every file the flagfile makes jaxbrain fetch (the public FreemanZiemba2013 and MajajHong2015
recordings and stimulus sets, AlexNet's and ResNet-50's IMAGENET1K_V1 weights) is served at
its real URL's path on 127.0.0.1 by pytest-httpserver. The files are stand-ins (the synthetic
suite in Brain-Score's layout, random weights in torchvision's layout), so a user catalog
replaces the built-in entries with the same URLs and the stand-ins' checksums: the built-in
checksums would refuse them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest

from jaxbrain import models
from jaxbrain.data import load_catalog
from tests.engine.test_sweep_stimulus_sets import write_standins

ROOT = Path(__file__).resolve().parents[2]
FLAGFILE = ROOT / "experiments" / "configs" / "brainscore_public.flags"


def _weights(arch: str, path: Path) -> Path:
    torch = pytest.importorskip("torch")
    state = models.torch_state(models.create(arch, num_classes=1000, seed=1))
    torch.save({k: torch.from_numpy(v.copy()) for k, v in state.items()}, path)
    return path


@pytest.mark.slow
def test_brainscore_public_flagfile_fetches_everything_and_writes_the_cards(tmp_path,
                                                                            httpserver):
    builtin = load_catalog()
    standins = write_standins(tmp_path, per_object=5, private=False, n_classes=4)
    standins["alexnet.IMAGENET1K_V1"] = ("weights", {"weights": _weights(
        "alexnet", tmp_path / "alexnet.pth")})
    standins["resnet50.IMAGENET1K_V1"] = ("weights", {"weights": _weights(
        "resnet50", tmp_path / "resnet50.pth")})
    entries = []
    for name, (kind, files) in standins.items():
        entry = builtin.get(name)
        specs = {}
        for role, path in files.items():
            url = entry.file(role).urls[0]  # the real URL, versionId included
            parts = urlsplit(url)
            request = httpserver.expect_request(f"/{parts.netloc}{parts.path}",
                                                query_string=parts.query or None)
            request.respond_with_data(path.read_bytes())
            specs[role] = {"url": url, "name": entry.file(role).name,
                           "checksum": "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()}
        entries.append({"identifier": name, "kind": kind, "replaces": True, "files": specs,
                        **({"arch": entry.arch} if entry.arch else {})})
    catalog = tmp_path / "standins.json"
    catalog.write_text(json.dumps({"format": "jaxbrain-catalog/1", "entries": entries}))

    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAXBRAIN_CATALOG": str(catalog),
           "JAXBRAIN_MIRROR": httpserver.url_for("/").rstrip("/"),
           "JAXBRAIN_HOME": str(tmp_path / "home")}
    env.pop("XLA_FLAGS", None)
    command = [sys.executable, "-m", "experiments.sweep", f"--flagfile={FLAGFILE}",
               f"--output_dir={out}", "--pca_components=30"]  # 40 reference images here
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(httpserver.log) == 8  # each file once: 2 assemblies, 2 × (csv, zip), 2 weights

    for model in ("alexnet=IMAGENET1K_V1", "resnet50=IMAGENET1K_V1"):
        card = next(json.loads(p.read_text()) for p in (out / "cards").glob("*.json")
                    if json.loads(p.read_text())["model"] == model)
        assert card["protocol"]["name"] == "brainscore"
        assert card["protocol"]["reference_images"] == "hvm-public"
        assert {r["region"] for r in card["regions"]} == {"V1", "V2", "V4", "IT"}
        assert card["aggregates"]["neural_vision"] is not None
    commitments = pd.read_csv(out / "tables" / "commitments.csv")
    resnet = set(commitments[commitments["model"] == "resnet50=IMAGENET1K_V1"]
                 ["committed_layer"])
    assert resnet <= set(models.create("resnet50").commitment_layers())
    assert "Brain-Score's protocol" in (out / "report.md").read_text()
