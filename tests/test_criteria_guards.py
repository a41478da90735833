"""Criteria and guards: the built-ins, the gradient criterion, names and class paths, a user's own file."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from callbacks.pruning import ScheduledPruning
from rnn_prune import keys
from rnn_prune.cli import main
from rnn_prune.criteria import (
    Criterion,
    GradientCriterion,
    MagnitudeCriterion,
    RandomCriterion,
    resolve_criterion,
)
from rnn_prune.guards import Decision, Guard, RamanujanGuard, resolve_guard
from rnn_prune.masks import get_mask
from rnn_prune.registry import Graph, prunable_weights
from rnn_prune.schedules import OneShotSchedule
from tests.conftest import CONFIGS, fake_trainer, quickstart_args


class _Head(nn.Module):
    """A one-output Linear whose weights and gradients a test sets by hand."""

    def __init__(self, weight: list[float]) -> None:
        super().__init__()
        self.head = nn.Linear(len(weight), 1, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([weight]))


def _graph(module: nn.Module) -> Graph:
    return prunable_weights(module)[0].graphs()[0]


def test_magnitude_and_gradient_keep_different_weights_in_a_known_case() -> None:
    # w = (3, 0.1, -2, 0.5), dL/dw = (0, 4, 0.1, 1): |w| keeps 3 and -2; |w·g| = (0, 0.4, 0.2, 0.5)
    # keeps 0.1 and 0.5, the two weights the loss depends on most.
    kept = {}
    for criterion in ("magnitude", "gradient"):
        module = _Head([3.0, 0.1, -2.0, 0.5])
        pruning = ScheduledPruning(OneShotSchedule(0.5, epoch=0), criterion=criterion, include=["head"])
        pruning.setup(None, module, "fit")
        module.head.weight.grad = torch.tensor([[0.0, 4.0, 0.1, 1.0]])
        pruning.on_after_backward(None, module)  # the hook the gradient criterion observes through
        pruning.prune(fake_trainer(), module, 0.0)
        kept[criterion] = get_mask(pruning.weights[0]).flatten().tolist()
    assert kept["magnitude"] == [True, False, True, False]
    assert kept["gradient"] == [False, True, False, True]


def test_gradient_scores_sum_over_the_steps_since_the_last_prune() -> None:
    module = _Head([1.0, -2.0])
    weight = prunable_weights(module)[0]
    criterion = GradientCriterion()
    for grad in ([1.0, 0.0], [-3.0, 0.5]):
        module.head.weight.grad = torch.tensor([grad])
        criterion.observe([weight])
    scores = criterion.scores(_graph(module), torch.ones(1, 2), torch.Generator())
    assert scores.tolist() == [[4.0, 1.0]]  # |1·1| + |1·(−3)|, |−2·0| + |−2·0.5|
    restored = GradientCriterion()
    restored.load_state_dict(criterion.state_dict())
    assert restored.scores(_graph(module), torch.ones(1, 2), torch.Generator()).tolist() == [[4.0, 1.0]]
    criterion.reset()
    with pytest.raises(RuntimeError, match="GradientCriterion has seen no gradient of head before this pruning step"):
        criterion.scores(_graph(module), torch.ones(1, 2), torch.Generator())


def test_gradient_sums_reset_after_each_pruning_step_and_survive_a_checkpoint() -> None:
    module = _Head([1.0, 2.0, 3.0, 4.0])
    pruning = ScheduledPruning(OneShotSchedule(0.5, epoch=1), criterion="gradient", include=["head"])
    pruning.setup(None, module, "fit")
    module.head.weight.grad = torch.ones(1, 4)
    pruning.on_after_backward(None, module)
    saved = pruning.state_dict()
    assert torch.equal(saved["criterion"]["sums"]["head.weight"], torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    pruning.prune(fake_trainer(1), module, 1.0)
    assert pruning.state_dict()["criterion"] == {"sums": {}}, "a step's evidence is spent on that step"


def test_random_scores_are_reproducible_from_the_seed() -> None:
    graph = _graph(_Head([1.0] * 6))
    first = RandomCriterion().scores(graph, torch.ones(1, 6), torch.Generator().manual_seed(3))
    again = RandomCriterion().scores(graph, torch.ones(1, 6), torch.Generator().manual_seed(3))
    other = RandomCriterion().scores(graph, torch.ones(1, 6), torch.Generator().manual_seed(4))
    torch.testing.assert_close(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("magnitude", MagnitudeCriterion),
        ("random", RandomCriterion),
        ("gradient", GradientCriterion),
        ("rnn_prune.criteria.RandomCriterion", RandomCriterion),
        (MagnitudeCriterion(), MagnitudeCriterion),
    ],
)
def test_criteria_resolve_by_name_class_path_or_instance(spec: object, expected: type) -> None:
    assert type(resolve_criterion(spec)) is expected


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"criterion": "l2"}, r"criterion='l2' is not one of \('magnitude', 'random', 'gradient', 'biregular', "
                              r"'clustered', 'rewired'\) or the class path"),
        ({"criterion": "no_such_module.Crit"}, r"criterion='no_such_module.Crit' cannot be imported"),
        ({"criterion": "torch.nn.Linear"}, r"criterion='torch.nn.Linear' names .* which is not one of"),
        ({"criterion": 3}, r"criterion=3 is not one of"),
        ({"guard": "cheeger"}, r"guard='cheeger' is not one of \('none', 'ramanujan'\)"),
        ({"guard": "rnn_prune.criteria.MagnitudeCriterion"}, r"which is not one of .*rnn_prune.guards.Guard subclass"),
        ({"guard": RamanujanGuard(), "guard_margin": 0.5}, r"guard_margin=0.5 applies to guard='ramanujan' only"),
    ],
)
def test_bad_criteria_and_guards_name_the_value_and_what_is_allowed(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ScheduledPruning(0.5, **kwargs)


def test_guards_resolve_and_the_margin_reaches_the_named_one() -> None:
    assert resolve_guard("none") is None and resolve_guard(None) is None
    guard = resolve_guard("ramanujan", margin=0.25)
    assert isinstance(guard, RamanujanGuard) and guard.margin == 0.25 and guard.stop_below_min_degree
    assert ScheduledPruning(0.5, guard="ramanujan", guard_margin=0.25).guard.margin == 0.25
    with pytest.raises(ValueError, match="margin=nan must be finite"):
        RamanujanGuard(margin=float("nan"))
    with pytest.raises(ValueError, match="stop_below_min_degree='yes' must be true or false"):
        RamanujanGuard(stop_below_min_degree="yes")


def test_ramanujan_guard_follows_the_one_verdict() -> None:
    graph = _graph(nn.Linear(8, 8))
    guard = RamanujanGuard()
    assert guard.accept(graph, torch.ones(8, 8)), "K(8,8) is Ramanujan"
    two_blocks = torch.block_diag(torch.ones(4, 4), torch.ones(4, 4))  # degree 4, but two components
    refused = guard.accept(graph, two_blocks)
    assert not refused and refused.reason.startswith("disconnected: 2 components")
    sparse = torch.eye(8) + torch.roll(torch.eye(8), 1, dims=1)  # an 8-cycle, degree 2: no verdict
    assert "average degree below 3" in guard.accept(graph, sparse).reason
    assert RamanujanGuard(stop_below_min_degree=False).accept(graph, sparse)
    assert not RamanujanGuard(margin=100.0).accept(graph, torch.ones(8, 8))


USER_EXTENSIONS = '''
"""A user's own criterion and guard: one file, no edit to rnn_prune."""
import torch
from rnn_prune.criteria import Criterion
from rnn_prune.guards import Guard


class KeepSmallest(Criterion):
    """Anti-magnitude: keeps the smallest |w| (a deliberately odd rule a test can recognise)."""

    def __init__(self, offset: float = 0.0):
        self.offset = offset

    def scores(self, graph, mask, generator):
        return -graph.weight_block().abs() + self.offset


class FreezeForgetGates(Guard):
    """Refuses every step of the forget gates; accepts the rest."""

    def accept(self, graph, proposed_mask):
        return not graph.name.endswith("forget_gate")
'''


def _small_config(tmp_path: Path, pruning: dict) -> Path:
    """The quickstart, one short epoch, with only a pruning callback (``pruning``: its init_args)."""
    config = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())
    trainer = config["trainer"]
    trainer.update(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                   default_root_dir=str(tmp_path / "run"), enable_progress_bar=False)  # fmt: skip
    trainer["callbacks"] = [
        {"class_path": "callbacks.ScheduledPruning", "init_args": pruning},
        {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"filename": "last"}},
    ]
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's file on sys.path, and a YAML that names its classes by class_path."""
    (tmp_path / "user_ext").mkdir(exist_ok=True)
    (tmp_path / "user_ext" / "my_pruning.py").write_text(textwrap.dedent(USER_EXTENSIONS))
    monkeypatch.syspath_prepend(str(tmp_path / "user_ext"))
    return _small_config(tmp_path, {
        "schedule": 0.5,
        "criterion": {"class_path": "my_pruning.KeepSmallest", "init_args": {"offset": 1.0}},
        "guard": {"class_path": "my_pruning.FreezeForgetGates"},
    })  # fmt: skip


def test_a_users_criterion_and_guard_in_their_own_file_run_from_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _user_config(tmp_path, monkeypatch)
    before = {}
    original = ScheduledPruning.prune

    def spy(self: ScheduledPruning, trainer, pl_module, time: float) -> None:  # noqa: ANN001
        before.update({w.name: w.parameter.detach().abs().clone() for w in self.weights})
        original(self, trainer, pl_module, time)

    monkeypatch.setattr(ScheduledPruning, "prune", spy)
    cli = main(["fit", "--config", str(config)])
    pruning = next(c for c in cli.trainer.callbacks if isinstance(c, ScheduledPruning))
    assert type(pruning.criterion).__name__ == "KeepSmallest" and pruning.criterion.offset == 1.0
    assert type(pruning.guard).__name__ == "FreezeForgetGates"
    assert set(pruning.stopped) == {"lstm.l0.ih.forget_gate", "lstm.l0.hh.forget_gate"}
    for weight in pruning.weights:
        for graph in weight.graphs(per_gate=True, stacked=False):
            mask, magnitude = graph.mask_block(), before[weight.name][graph.rows]
            if graph.name.endswith("forget_gate"):
                assert mask.all(), graph.name  # the user's guard refused it
            else:  # the user's criterion kept the smallest weights
                assert magnitude[mask].max() <= magnitude[~mask].min(), graph.name


def test_criterion_and_guard_flags_take_names_and_class_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _user_config(tmp_path, monkeypatch)  # puts my_pruning on sys.path
    cli = main(quickstart_args("fit", tmp_path, "--criterion", "random", "--guard", "ramanujan",
                               "--guard_margin", "0.1")[1:], run=False)  # fmt: skip
    pruning = next(c for c in cli.trainer.callbacks if isinstance(c, ScheduledPruning))
    assert isinstance(pruning.criterion, RandomCriterion) and pruning.guard.margin == 0.1
    cli = main(quickstart_args("fit", tmp_path, "--criterion", "my_pruning.KeepSmallest",
                               "--guard", "my_pruning.FreezeForgetGates")[1:], run=False)  # fmt: skip
    pruning = next(c for c in cli.trainer.callbacks if isinstance(c, ScheduledPruning))
    assert type(pruning.criterion).__name__ == "KeepSmallest" and isinstance(pruning.guard, Guard)
    with pytest.raises(ValueError, match="criterion='l2' is not one of"):
        main(quickstart_args("fit", tmp_path, "--criterion", "l2")[1:], run=False)


def test_a_plain_bool_from_a_guard_is_a_decision() -> None:
    assert Decision(True) and not Decision(False, "why")

    class Refuse(Guard):
        def accept(self, graph: Graph, proposed_mask: torch.Tensor) -> bool:
            return False

    module = _Head([1.0, 2.0, 3.0, 4.0])
    pruning = ScheduledPruning(0.5, include=["head"], guard=Refuse())
    pruning.setup(None, module, "fit")
    pruning.prune(fake_trainer(), module, 0.0)
    assert pruning.stopped == {"head": 0} and get_mask(pruning.weights[0]).all()


def test_a_criterion_must_implement_scores() -> None:
    class Incomplete(Criterion):
        pass

    with pytest.raises(TypeError, match="abstract method"):
        Incomplete()


def test_test_and_validate_report_the_evaluated_models_sparsity(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _small_config(tmp_path, {"schedule": 0.6})
    fit = main(["fit", "--config", str(config)])
    fitted = fit.trainer.callback_metrics[keys.SPARSITY].item()
    assert fitted == pytest.approx(0.6, abs=0.01)
    last = next(tmp_path.rglob("last.ckpt"))
    with caplog.at_level(logging.INFO):
        tested = main(["test", "--config", str(config), "--ckpt_path", str(last)])
    assert tested.trainer.callback_metrics[keys.SPARSITY].item() == pytest.approx(fitted)
    assert f"evaluating a model at sparsity {fitted:.3f}" in caplog.text
    validated = main(["validate", "--config", str(config), "--ckpt_path", str(last)])
    assert validated.trainer.callback_metrics[keys.SPARSITY].item() == pytest.approx(fitted)
