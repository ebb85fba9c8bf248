"""Evaluation protocols that span several training runs.

LaMem (Khosla et al. 2015) publishes five random train/test splits; a method's memorability
score is the Spearman rho between predicted and measured memorability on each split's test
images after training on that split's training images, reported per split and as the mean.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from jaxbrain.files import atomic_write, json_bytes

LAMEM_SPLITS = (1, 2, 3, 4, 5)
SUMMARY_FILE = "lamem_splits.json"


def lamem_splits(config, workdir, splits=LAMEM_SPLITS) -> dict:
    """Train ``config`` once per LaMem split (``workdir/split_K``, each resumable as any run)
    and write ``workdir/lamem_splits.json``: test rho per split, their mean and SD."""
    from jaxbrain.train.loop import train  # the loop imports the data modules; keep this light

    if not config.data.get("lamem_dir") and config.data.kind != "synthetic":
        raise ValueError("the LaMem protocol needs config.data.lamem_dir")
    splits = tuple(int(k) for k in splits)
    if not splits or any(k not in LAMEM_SPLITS for k in splits):
        raise ValueError(f"LaMem splits are {LAMEM_SPLITS}; got {splits}")
    workdir = Path(workdir)
    per_split = {}
    for k in splits:
        run = copy.deepcopy(config)
        run.data.lamem_split = k
        metrics = train(run, workdir / f"split_{k}")
        if "memorability_rho" not in metrics:
            raise ValueError(f"{workdir / f'split_{k}'}: no memorability rho (does the "
                             f"objective {config.objective!r} train the memorability head?)")
        per_split[k] = metrics
    rhos = np.array([per_split[k]["memorability_rho"] for k in splits])
    summary = {"splits": {str(k): per_split[k] for k in splits},
               "memorability_rho_mean": float(rhos.mean()),
               "memorability_rho_sd": float(rhos.std(ddof=1)) if len(rhos) > 1 else None}
    workdir.mkdir(parents=True, exist_ok=True)
    atomic_write(workdir / SUMMARY_FILE, json_bytes(summary, indent=2))
    return summary


def read_summary(workdir) -> dict:
    path = Path(workdir) / SUMMARY_FILE
    if not path.exists():
        raise FileNotFoundError(f"{workdir}: no {SUMMARY_FILE} (the LaMem protocol has not run)")
    return json.loads(path.read_text())
