"""Trained (and random-init) networks registered by name, so sweeps can ask for
``"resnet18_tiny-joint"`` instead of a checkpoint path.

A zoo is a folder with ``zoo.json``: name → either a training run's directory (its latest
checkpoint is loaded) or a model spec (architecture, classes, heads, seed) for an untrained
network.  Entries are written atomically; paths are stored relative to the zoo when inside it,
so a zoo folder can be moved or copied whole.
"""

from __future__ import annotations

import json
from pathlib import Path

from jaxbrain.files import atomic_write
from jaxbrain.models.taps import TappedModel

ZOO_FILE = "zoo.json"


def entries(zoo_dir) -> dict[str, dict]:
    path = Path(zoo_dir) / ZOO_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None


def register(zoo_dir, name: str, *, workdir=None, spec: dict | None = None,
             info: dict | None = None) -> dict:
    """Add or replace ``name``: a training run (``workdir``) or an untrained ``spec``."""
    if (workdir is None) == (spec is None):
        raise ValueError("register a model with exactly one of workdir= or spec=")
    zoo_dir = Path(zoo_dir)
    zoo_dir.mkdir(parents=True, exist_ok=True)
    entry: dict = {"info": info or {}}
    if workdir is not None:
        workdir = Path(workdir).absolute()
        try:
            entry["workdir"] = str(workdir.relative_to(zoo_dir.absolute()))
        except ValueError:
            entry["workdir"] = str(workdir)
    else:
        entry["spec"] = spec
    table = entries(zoo_dir) | {name: entry}
    atomic_write(zoo_dir / ZOO_FILE, json.dumps(table, indent=2, sort_keys=True).encode())
    return entry


def load(name: str, zoo_dir) -> TappedModel:
    """The registered network ``name``, in eval mode."""
    from jaxbrain.train import checkpoints  # the zoo reads training runs; import lazily

    table = entries(zoo_dir)
    if name not in table:
        raise KeyError(f"{Path(zoo_dir) / ZOO_FILE}: no model {name!r}; registered: "
                       f"{', '.join(sorted(table)) or 'none'}")
    entry = table[name]
    if "workdir" in entry:
        return checkpoints.restore_model(Path(zoo_dir) / entry["workdir"])
    model = checkpoints.create_from_spec(entry["spec"])
    model.eval()
    return model
