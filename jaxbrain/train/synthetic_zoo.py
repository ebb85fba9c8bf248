"""The synthetic-suite model zoo: the objective variants of one small architecture, trained
on the suite's images, plus its untrained twin, registered by name for sweeps."""

from __future__ import annotations

from pathlib import Path

from jaxbrain.models import zoo
from jaxbrain.train.checkpoints import model_spec
from jaxbrain.train.configs import synthetic_config
from jaxbrain.train.loop import train

OBJECTIVES = ("categorization", "memorability", "joint")


def build(zoo_dir, arch: str, synthetic_dir, objectives, *, num_steps: int, image_size: int,
          seed: int, suffix: str = "") -> dict[str, dict]:
    """Train every objective (resuming) and register all variants as
    ``<arch>-<objective><suffix>`` (a suffix such as ``-seed1`` names a replicate trained from
    another seed: the studies' held-out controls); returns their metrics."""
    zoo_dir = Path(zoo_dir)
    results = {}
    spec = None
    for name in objectives:
        config = synthetic_config(name)
        config.arch, config.seed = arch, seed
        config.num_steps, config.image_size = num_steps, image_size
        config.warmup_steps = min(config.warmup_steps, num_steps // 2)
        config.data.synthetic_dir = str(synthetic_dir)
        entry = f"{arch}-{name}{suffix}"
        workdir = zoo_dir / "runs" / entry
        metrics = train(config, workdir)
        zoo.register(zoo_dir, entry, workdir=workdir,
                     info={"objective": name, "data": "synthetic", "steps": num_steps,
                           "seed": seed, "validation": metrics})
        results[entry] = metrics
        spec = spec or model_spec(workdir)
    if spec is not None:
        random_spec = spec | {"heads": ["classification", "memorability"]}
        zoo.register(zoo_dir, f"{arch}-random{suffix}", spec=random_spec,
                     info={"objective": "none (random initialisation)", "seed": seed})
    return results
