"""The studies' planted suite: the synthetic suite, a zoo of objective variants trained on it,
and IT recordings generated from two of those networks, so every analysis has a known answer.

IT's early window (70–100 ms) reads out mostly a memorability-trained network's layer and its
late window (180–210 ms) mostly a categorisation-trained one's (the same architecture and
layer), with known trial noise; V1, V2 and V4 read out the hidden network as in the base suite.
Every architecture is trained on categorisation, memorability and both (``-joint``) from one
seed, plus a categorisation replicate from another seed (``-categorization-seed<k>``): the
held-out control that tells objective effects from seed effects.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from jaxbrain.data import synthetic
from jaxbrain.data.synthetic import StudiesConfig
from jaxbrain.engine.inputs import resolve_model
from jaxbrain.features import NoReduction, extract, model_preprocessing, prepare_images
from jaxbrain.train.synthetic_zoo import OBJECTIVES, build

GENERATING_OBJECTIVES = {"early": "memorability", "late": "categorization"}


@dataclasses.dataclass(frozen=True)
class PlantedSpec:
    data_dir: str
    zoo_dir: str
    archs: tuple[tuple[str, int], ...] = (("resnet18_tiny", 32), ("alexnet_tiny", 64))
    num_steps: int = 400
    seed: int = 0
    control_seed: int = 1
    generator_arch: str = "resnet18_tiny"
    generator_layer: str = "layer4"
    studies: StudiesConfig = dataclasses.field(default_factory=StudiesConfig)

    def __post_init__(self):
        archs = [arch for arch, _ in self.archs]
        if self.generator_arch not in archs:
            raise ValueError(f"the generator architecture {self.generator_arch!r} is not among "
                             f"the study's architectures {archs}")
        if self.control_seed == self.seed:
            raise ValueError(f"the control must be trained from another seed than {self.seed}")

    def model(self, arch: str, objective: str) -> str:
        """Zoo name of ``arch`` trained on ``objective`` (``control``: the other seed)."""
        if objective == "control":
            return f"{arch}-categorization-seed{self.control_seed}"
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; expected one of "
                             f"{(*OBJECTIVES, 'control')}")
        return f"{arch}-{objective}"

    def models(self) -> list[str]:
        """Every trained model of the study, architecture by architecture."""
        return [self.model(arch, objective) for arch, _ in self.archs
                for objective in (*OBJECTIVES, "control")]

    def role(self, model: str) -> tuple[str, str]:
        """(architecture, training objective) of one of the study's models (the control
        counts as categorisation)."""
        for arch, _ in self.archs:
            for objective in (*OBJECTIVES, "control"):
                if self.model(arch, objective) == model:
                    return arch, "categorization" if objective == "control" else objective
        raise ValueError(f"{model!r} is not a model of this study")

    def objective_of(self, model: str) -> str:
        return self.role(model)[1]


def _features(model_name: str, layer: str, zoo_dir: str, images: np.ndarray, ids) -> np.ndarray:
    model = resolve_model(model_name, zoo_dir)
    if layer not in model.tap_names():
        raise ValueError(f"{model_name} has no layer {layer!r}; its layers: {model.tap_names()}")
    inputs = prepare_images(images, **model_preprocessing(model, 8.0))
    bank = extract(model, inputs, ids, taps=[layer], reduction=NoReduction())
    return np.asarray(bank.layers[layer], np.float64)


def build_planted(spec: PlantedSpec, log=print) -> dict:
    """Write what is missing (suite, zoo runs, studies recordings); returns the ground truth.

    Re-running resumes training and rewrites nothing already there with the same settings;
    recordings from other settings are an error rather than silently replaced."""
    data = Path(spec.data_dir)
    if not (data / "truth.json").exists():
        log(f"writing the synthetic suite to {data}")
        synthetic.write_suite(data)
    for arch, image_size in spec.archs:
        for seed, suffix, objectives in ((spec.seed, "", OBJECTIVES),
                                         (spec.control_seed, f"-seed{spec.control_seed}",
                                          ("categorization",))):
            log(f"training {arch} {', '.join(objectives)} (seed {seed}) into {spec.zoo_dir}")
            build(spec.zoo_dir, arch, data, objectives, num_steps=spec.num_steps,
                  image_size=image_size, seed=seed, suffix=suffix)
    generators = {window: {"model": spec.model(spec.generator_arch, objective),
                           "layer": spec.generator_layer}
                  for window, objective in GENERATING_OBJECTIVES.items()}
    truth_path = data / "studies" / "truth.json"
    if truth_path.exists():
        truth = json.loads(truth_path.read_text())
        wanted = {"config": dataclasses.asdict(spec.studies), "generators": generators}
        if {key: truth.get(key) for key in wanted} != wanted:
            raise ValueError(f"{truth_path.parent} holds studies recordings of other settings "
                             f"({ {k: truth.get(k) for k in wanted} }); delete it or use "
                             "another --data_dir")
        return truth
    log(f"writing the studies recordings to {truth_path.parent}")
    ids, images = synthetic.load_images(data)
    early, late = (_features(g["model"], g["layer"], spec.zoo_dir, images, ids)
                   for g in generators.values())
    return synthetic.write_studies_assembly(data, early, late, generators, spec.studies)
