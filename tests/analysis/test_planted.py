"""The studies' roles: model names, objectives and the checks on a study's definition."""

import pytest

from jaxbrain.analysis.planted import PlantedSpec


def test_models_roles_and_names():
    spec = PlantedSpec(data_dir="d", zoo_dir="z")
    assert spec.models() == [
        "resnet18_tiny-categorization", "resnet18_tiny-memorability", "resnet18_tiny-joint",
        "resnet18_tiny-categorization-seed1", "alexnet_tiny-categorization",
        "alexnet_tiny-memorability", "alexnet_tiny-joint", "alexnet_tiny-categorization-seed1"]
    assert spec.role("alexnet_tiny-categorization-seed1") == ("alexnet_tiny", "categorization")
    assert spec.objective_of("resnet18_tiny-joint") == "joint"
    with pytest.raises(ValueError, match="not a model of this study"):
        spec.role("resnet18_tiny-random")
    with pytest.raises(ValueError, match="unknown objective"):
        spec.model("resnet18_tiny", "segmentation")


@pytest.mark.parametrize("changes,message", [
    ({"generator_arch": "resnet50_tiny"}, "not among the study's architectures"),
    ({"control_seed": 0}, "another seed"),
])
def test_bad_study_definitions_name_the_problem(changes, message):
    with pytest.raises(ValueError, match=message):
        PlantedSpec(data_dir="d", zoo_dir="z", **changes)
