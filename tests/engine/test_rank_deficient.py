"""Layers of lower rank than the PLS components: an error from the checked kernel entry
point, a count of usable components with ``check_rank=False``, and a skipped layer (not a
failed sweep) in the engine."""

import numpy as np
import pytest

from jaxbrain.benchmarks.neural import prepare_neural, score_layers_on
from jaxbrain.benchmarks.registry import load
from jaxbrain.data.brainscore_io import read_assembly
from jaxbrain.kernels import neural_predictivity, stratified_shuffle_splits
from jaxbrain.kernels.predictivity import pls_usable_components
from tests.benchmarks.test_neural import N_STIM, write_recordings

RANK = 10


def _layers(rng, n):
    full = rng.standard_normal((n, 30))
    lowrank = rng.standard_normal((n, RANK)) @ rng.standard_normal((RANK, 30))
    return full, lowrank


@pytest.fixture
def problem(rng):
    n = 60
    full, lowrank = _layers(rng, n)
    y = (full[:, :5] @ rng.standard_normal((5, 8)) + lowrank[:, :3] @ rng.standard_normal((3, 8))
         + 0.5 * rng.standard_normal((n, 8)))
    splits = stratified_shuffle_splits(np.repeat(np.arange(4), n // 4), 10, 0.9, 1)
    return np.stack([lowrank, full]), y, splits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pls_past_the_rank_raises_unless_asked_to_return(problem, dtype):
    stack, y, splits = problem
    stack = stack.astype(dtype)
    with pytest.raises(ValueError, match="larger than the rank") as err:
        neural_predictivity(stack, y, splits, "pls", n_components=25)
    assert "layer 0" in str(err.value) and f"at most {RANK} components" in str(err.value)
    result = neural_predictivity(stack, y, splits, "pls", n_components=25, check_rank=False)
    assert np.asarray(result.fit_info).shape == (2, splits.n_splits, 25)
    usable = pls_usable_components(result.fit_info)
    assert usable.tolist() == [RANK, 25]
    assert np.isfinite(np.asarray(result.score)[1])
    # within its rank the low-rank layer is fine: no error at n_components = rank
    within = neural_predictivity(stack[0], y, splits, "pls", n_components=RANK)
    assert np.isfinite(float(within.score))


def test_full_rank_layer_passes_the_rank_check_alone(problem):
    stack, y, splits = problem
    result = neural_predictivity(stack[1].astype(np.float32), y, splits, "pls", n_components=25)
    assert pls_usable_components(np.asarray(result.fit_info)[None]).tolist() == [25]


def test_usable_components_is_the_minimum_over_splits():
    info = np.ones((2, 3, 5))
    info[0, 1, 3:] = 0.0  # layer 0 runs out after 3 components on split 1
    info[1, 2, 4] = 1e-40  # layer 1: the last component is numerically null on split 2
    assert pls_usable_components(info).tolist() == [3, 4]
    assert pls_usable_components(np.ones((1, 4, 7))).tolist() == [7]


def test_engine_skips_a_rank_deficient_layer_and_scores_the_rest(tmp_path, rng):
    path, ids, driver = write_recordings(tmp_path, rng, 30)
    assembly = read_assembly(path)
    benchmark = load("MajajHong2015.IT-pls")
    assert benchmark.n_components == 25
    prepared = prepare_neural(benchmark, assembly)
    _, lowrank = _layers(rng, N_STIM)
    narrow = rng.standard_normal((N_STIM, 12))
    order = rng.permutation(N_STIM)
    layers = {"full": driver[order], "lowrank": lowrank[order], "narrow": narrow[order]}
    scored = benchmark.score(prepared, layers, ids[order])
    assert [s.layer for s in scored] == ["full", "lowrank", "narrow"]
    full, low, narrow_scored = scored
    assert full.fields["status"] == "ok"
    assert np.isfinite(full.fields["raw"]) and full.fields["n_neuroids"] == 6
    assert full.neuroid_values.shape == (6,)
    assert low.fields["status"].startswith("skipped: rank")
    assert "raw" not in low.fields and low.neuroid_values is None
    rank = int(low.fields["status"].split()[2])
    assert 1 <= rank <= RANK
    assert narrow_scored.fields["status"].startswith("skipped: 12 features")
    # the full layer's score is the benchmark's own, on its own
    alone = score_layers_on(benchmark, {"full": driver}, ids, assembly)["layers"]["full"]
    assert full.fields["raw"] == pytest.approx(alone["raw"], abs=1e-4)
    # outside a sweep too, the narrow layer is reported as skipped and the others scored
    result = score_layers_on(benchmark, layers, ids[order], assembly)["layers"]
    assert result["narrow"] == {"status": "skipped: 12 features, fewer than the 25 PLS "
                                          "components"}
    assert result["full"]["raw"] == pytest.approx(full.fields["raw"], abs=1e-6)
