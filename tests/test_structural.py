"""Structural criteria: exact counts and degrees, clustering that dials Δr, rewiring that keeps degrees,
nested masks under a gradual schedule, and the ``name:key=value`` spelling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from callbacks.pruning import ScheduledPruning
from rnn_prune.criteria import (
    BiregularCriterion,
    ClusteredCriterion,
    RewiredCriterion,
    resolve_criterion,
)
from rnn_prune.expansion import layer_expansion
from rnn_prune.guards import RamanujanGuard, resolve_guard
from rnn_prune.masks import get_mask
from rnn_prune.module import SequenceClassifier
from rnn_prune.pruning import pruned_count
from rnn_prune.registry import prunable_weights
from rnn_prune.schedules import LinearSchedule, OneShotSchedule
from rnn_prune.specs import format_spec, parse_spec, spec_args, spec_label
from rnn_prune.structural import biregular_mask, clustered_mask, rewired_mask
from tests.conftest import fake_trainer

SHAPES = [(64, 64), (256, 64), (512, 128)]
SPARSITIES = [0.5, 0.7, 0.9, 0.95]


def _keep(shape: tuple[int, int], sparsity: float) -> int:
    numel = shape[0] * shape[1]
    return numel - pruned_count(numel, sparsity)


def _balanced(degrees: np.ndarray) -> bool:
    return int(degrees.max()) - int(degrees.min()) <= 1


def _delta_r(mask: np.ndarray) -> float:
    return layer_expansion(mask, measures=["delta_r"]).delta_r


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_biregular_and_clustered_keep_the_exact_count_and_balanced_degrees(
    shape: tuple[int, int], sparsity: float
) -> None:
    keep = _keep(shape, sparsity)
    biregular = biregular_mask(shape, keep, seed=3)
    clustered = clustered_mask(shape, keep, blocks=2, mixing=0.25, seed=3)
    for mask in (biregular, clustered):
        assert mask.shape == shape and int(mask.sum()) == keep
        assert _balanced(mask.sum(1)) and _balanced(mask.sum(0))
    # with the count fixed, "within one of each other" is one degree sequence: the two families share it
    assert sorted(clustered.sum(1)) == sorted(biregular.sum(1))
    assert sorted(clustered.sum(0)) == sorted(biregular.sum(0))


def test_uneven_shapes_put_the_spare_edges_on_random_nodes() -> None:
    mask = biregular_mask((7, 5), 12, seed=0)
    assert int(mask.sum()) == 12 and sorted(mask.sum(1)) == [1, 1, 2, 2, 2, 2, 2]
    assert sorted(mask.sum(0)) == [2, 2, 2, 3, 3]
    masks = [clustered_mask((9, 7), 20, blocks=3, mixing=0.5, seed=s) for s in range(5)]
    assert all(int(m.sum()) == 20 and _balanced(m.sum(0)) and _balanced(m.sum(1)) for m in masks)
    assert len({m.tobytes() for m in masks}) == 5


@pytest.mark.parametrize("blocks", [2, 4])
def test_clustered_at_mixing_zero_falls_into_its_blocks(blocks: int) -> None:
    shape = (256, 64)
    mask = clustered_mask(shape, _keep(shape, 0.9), blocks=blocks, mixing=0.0, seed=1)
    assert layer_expansion(mask, measures=["num_components"]).num_components == blocks
    connected = clustered_mask(shape, _keep(shape, 0.9), blocks=blocks, mixing=0.25, seed=1)
    assert layer_expansion(connected, measures=["num_components"]).num_components == 1


def test_clustered_mean_delta_r_rises_with_mixing() -> None:
    shape = (64, 64)
    keep = _keep(shape, 0.9)
    means = [np.mean([_delta_r(clustered_mask(shape, keep, blocks=2, mixing=mixing, seed=seed)) for seed in range(20)])
             for mixing in (0.0, 0.5, 1.0)]  # fmt: skip
    assert means[0] < means[1] < means[2], means


def test_biregular_is_ramanujan_on_nearly_every_seed() -> None:
    shape = (256, 64)
    keep = _keep(shape, 0.9)
    verdicts = [layer_expansion(biregular_mask(shape, keep, seed=seed), measures=["is_ramanujan"]).is_ramanujan
                for seed in range(20)]  # fmt: skip
    assert sum(v is True for v in verdicts) >= 19, verdicts


@pytest.mark.parametrize("swaps", [0.1, 0.5, 0.8])
def test_rewired_keeps_the_degrees_and_moves_at_least_the_share_asked(swaps: float) -> None:
    source = np.random.default_rng(0).random((128, 96)) < np.linspace(0.02, 0.2, 96)  # uneven column degrees
    rewired = rewired_mask(source, swaps, seed=4)
    assert np.array_equal(rewired.sum(0), source.sum(0)) and np.array_equal(rewired.sum(1), source.sum(1))
    assert int((rewired & ~source).sum()) >= np.ceil(swaps * source.sum())
    assert np.array_equal(rewired_mask(source, 0.0, seed=4), source)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: clustered_mask((64, 64), 2048, blocks=4, mixing=0.0, seed=0), "does not fit 4 diagonal blocks"),
        (lambda: clustered_mask((8, 8), 8, blocks=2, mixing=1.5, seed=0), r"mixing=1.5 must lie in \[0, 1\]"),
        (lambda: clustered_mask((8, 8), 8, blocks=0, mixing=0.5, seed=0), "blocks must be >= 1"),
        (lambda: biregular_mask((8, 8), 65, seed=0), "keep=65 exceeds the 8×8 = 64 entries"),
        (lambda: biregular_mask((0, 8), 0, seed=0), r"shape=\(0, 8\) must be two positive sizes"),
        (lambda: rewired_mask(np.eye(3), 2.0, seed=0), r"swaps=2.0 must lie in \[0, 1\]"),
        (lambda: ClusteredCriterion(blocks=1.5), "blocks=1.5 must be a positive integer"),
        (lambda: ClusteredCriterion(mixing=-0.1), r"mixing=-0.1 must lie in \[0, 1\]"),
        (lambda: RewiredCriterion(swaps=True), r"swaps=True must lie in \[0, 1\]"),
        (lambda: RewiredCriterion(source="l1"), "criterion='l1' is not one of"),
        (lambda: resolve_criterion("clustered:mix=0.1"), "unexpected keyword argument 'mix'"),
        (lambda: resolve_criterion("clustered:mixing"), "'mixing' is not key=value"),
        (lambda: resolve_criterion("clustered:blocks=2,blocks=3"), "blocks given twice"),
        (lambda: resolve_criterion("clustered:blocks=[2]"), "must be a single value"),
        (lambda: resolve_criterion("rnn_prune.criteria.CRITERIA:x=1"), "names .* which is not one of"),
        (lambda: ScheduledPruning(0.5, criterion="biregular", scope="global"), "use scope='layer'"),
    ],
)
def test_bad_arguments_name_the_value(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_specs_parse_format_and_resolve_with_their_arguments() -> None:
    assert parse_spec("clustered: mixing = 0.5 ,blocks=4") == ("clustered", {"mixing": 0.5, "blocks": 4})
    assert format_spec(*parse_spec("clustered:mixing=.5,blocks=4")) == "clustered:blocks=4,mixing=0.5"
    assert format_spec(*parse_spec("rewired:source=random,swaps=1")) == "rewired:source=random,swaps=1"
    assert spec_args("clustered:mixing=.5,blocks=4") == "blocks=4,mixing=0.5" and spec_args("random") is None
    assert spec_label("my.pkg.Clustered:mixing=0") == "Clustered_mixing=0"
    # one setting, one spelling: a whole float is its integer, YAML 1.1's "1e-1" a number
    assert format_spec(*parse_spec("clustered:mixing=1.0")) == format_spec(*parse_spec("clustered:mixing=1"))
    assert parse_spec("clustered:mixing=1e-1") == ("clustered", {"mixing": 0.1})
    assert ":" not in spec_label("rewired:source=clustered:mixing=0")
    clustered = resolve_criterion("clustered:mixing=0.5,blocks=4")
    assert isinstance(clustered, ClusteredCriterion) and (clustered.blocks, clustered.mixing) == (4, 0.5)
    by_path = resolve_criterion("rnn_prune.criteria.ClusteredCriterion:mixing=1")
    assert isinstance(by_path, ClusteredCriterion) and by_path.mixing == 1.0
    rewired = resolve_criterion("rewired:source=random,swaps=0.5")
    assert type(rewired.source).__name__ == "RandomCriterion" and rewired.swaps == 0.5
    guard = resolve_guard("ramanujan:margin=0.5", margin=0.1)
    assert isinstance(guard, RamanujanGuard) and guard.margin == 0.5


def _module() -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(8, 10, cell="lstm", hidden_size=32)


def _gate_masks(module: SequenceClassifier) -> dict[str, torch.Tensor]:
    return {g.name: g.mask_block().bool().clone() for w in prunable_weights(module) if w.name != "head"
            for g in w.graphs(per_gate=True, stacked=False)}  # fmt: skip


@pytest.mark.parametrize("criterion", ["biregular", "clustered:mixing=0.5", "rewired:swaps=0.5"])
def test_gradual_steps_nest_and_end_exactly_on_the_planned_mask(criterion: str) -> None:
    module = _module()
    pruning = ScheduledPruning(LinearSchedule(0.9, start_epoch=0, end_epoch=3), criterion=criterion)
    pruning.setup(None, module, "fit")
    history = []
    for epoch in range(5):
        pruning.prune(fake_trainer(epoch), module, float(epoch))
        history.append(_gate_masks(module))
    for name, final in history[-1].items():
        assert torch.equal(final, pruning.criterion.final_mask(name)), name
        assert int(final.sum()) == final.numel() - pruned_count(final.numel(), 0.9)
        for before, after in zip(history, history[1:], strict=False):
            assert not (after[name] & ~before[name]).any(), f"{name}: a pruned weight came back"
        assert history[1][name].sum() > final.sum(), "the ramp passed through a denser mask"
    if criterion == "biregular":
        assert all(_balanced(m.sum(0)) and _balanced(m.sum(1)) for m in history[-1].values())


def test_rewired_keeps_the_degrees_of_magnitude_at_the_same_step() -> None:
    module = _module()
    magnitude = ScheduledPruning(OneShotSchedule(0.8, epoch=0), criterion="magnitude")
    magnitude.setup(None, module, "fit")
    dense = {k: v.clone() for k, v in module.state_dict().items()}
    magnitude.prune(fake_trainer(0), module, 0.0)
    chosen = _gate_masks(module)
    other = _module()
    other.load_state_dict(dense)
    rewired = ScheduledPruning(OneShotSchedule(0.8, epoch=0), criterion="rewired:swaps=0.5")
    rewired.setup(None, other, "fit")
    rewired.prune(fake_trainer(0), other, 0.0)
    for name, mask in _gate_masks(other).items():
        assert torch.equal(mask.sum(0), chosen[name].sum(0)) and torch.equal(mask.sum(1), chosen[name].sum(1)), name
        assert (mask & ~chosen[name]).sum() >= 0.5 * chosen[name].sum(), name


def test_planned_masks_travel_in_the_state_and_a_missing_plan_is_a_clear_error() -> None:
    module = _module()
    pruning = ScheduledPruning(LinearSchedule(0.8, start_epoch=0, end_epoch=2), criterion="biregular")
    pruning.setup(None, module, "fit")
    pruning.prune(fake_trainer(1), module, 1.0)
    state = pruning.state_dict()
    resumed = ScheduledPruning(LinearSchedule(0.8, start_epoch=0, end_epoch=2), criterion="biregular")
    resumed.load_state_dict(state)
    name = next(iter(_gate_masks(module)))
    assert torch.equal(resumed.criterion.final_mask(name), pruning.criterion.final_mask(name))
    with pytest.raises(RuntimeError, match="has no planned mask for"):
        BiregularCriterion().final_mask(name)


def test_the_plan_is_for_the_sparsity_the_run_ends_at() -> None:
    module = _module()
    pruning = ScheduledPruning(LinearSchedule(0.9, start_epoch=0, end_epoch=10), criterion="biregular")
    pruning.setup(None, module, "fit")
    trainer = fake_trainer(1)
    trainer.max_epochs = 4  # the ramp is cut at the start of epoch 3: 0.27
    pruning.prune(trainer, module, 1.0)
    name, mask = next(iter(_gate_masks(module).items()))
    planned = pruning.criterion.final_mask(name)
    assert int(planned.sum()) == planned.numel() - pruned_count(planned.numel(), 0.27)
    assert not (planned & ~mask).any()


def test_a_structural_criterion_refuses_an_already_pruned_graph() -> None:
    module = _module()
    first = ScheduledPruning(0.5, criterion="magnitude")
    first.setup(None, module, "fit")
    first.prune(fake_trainer(0), module, 0.0)
    second = ScheduledPruning(0.8, criterion="biregular")
    second.setup(None, module, "fit")
    with pytest.raises(ValueError, match="already pruned before the criterion's first step"):
        second.prune(fake_trainer(0), module, 0.0)
    assert all(bool((~get_mask(w)).any()) for w in prunable_weights(module) if w.name != "head")
