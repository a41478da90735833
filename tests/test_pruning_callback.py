"""ScheduledPruning: exact sparsity, masks that stick, scopes, the guard, rewind, resume, bad input."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from callbacks.pruning import ScheduledPruning
from datamodules.digits import DigitsDataModule
from rnn_prune import keys
from rnn_prune.expansion import layer_expansion
from rnn_prune.expansion.verdict import ramanujan_verdict
from rnn_prune.guards import RamanujanGuard
from rnn_prune.masks import get_mask
from rnn_prune.module import SequenceClassifier
from rnn_prune.pruning import mask_checksum, pruned_count
from rnn_prune.registry import prunable_weights
from rnn_prune.schedules import LinearSchedule, OneShotSchedule
from tests.conftest import fake_trainer


def _module(cell: str = "lstm", **kwargs) -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(8, 10, cell=cell, hidden_size=kwargs.pop("hidden_size", 16), **kwargs)


def _trainer(tmp_path: Path, callbacks: list, max_epochs: int, **kwargs) -> L.Trainer:
    return L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=max_epochs,
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=kwargs.pop("enable_checkpointing", False),
        accelerator="cpu",
        deterministic=True,
        **kwargs,
    )


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_every_graph_reaches_the_exact_target_and_stays_pruned(tmp_path: Path, cell: str) -> None:
    module = _module(cell, num_layers=2)
    pruning = ScheduledPruning(OneShotSchedule(0.7, epoch=0))
    _trainer(tmp_path, [pruning], max_epochs=1).fit(module, DigitsDataModule(batch_size=32))  # an epoch of Adam
    for weight in prunable_weights(module):
        mask = get_mask(weight)
        if weight.name == "head":
            assert mask.all(), "the head is not pruned by default"
            continue
        for graph in weight.graphs(per_gate=True, stacked=False):
            block = graph.mask_block()
            assert int((~block).sum()) == pruned_count(block.numel(), 0.7), graph.name
        assert torch.all(weight.parameter[~mask] == 0), f"{weight.name}: pruned weights came back after training"


def test_global_scope_reaches_the_target_overall_not_per_graph(tmp_path: Path) -> None:
    module = _module("lstm")
    pruning = ScheduledPruning(0.6, scope="global", include=["*"])
    _trainer(tmp_path, [pruning], max_epochs=1).fit(module, DigitsDataModule(batch_size=32))
    weights = prunable_weights(module)
    total = sum(w.parameter.numel() for w in weights)
    pruned = sum(int((~get_mask(w)).sum()) for w in weights)
    assert abs(pruned - round(0.6 * total)) <= 1
    per_weight = {w.name: 1 - get_mask(w).float().mean().item() for w in weights}
    assert max(per_weight.values()) - min(per_weight.values()) > 0.05, per_weight


def test_pruning_every_n_steps_follows_the_schedule_within_an_epoch(tmp_path: Path) -> None:
    module = _module("gru")
    pruning = ScheduledPruning(LinearSchedule(0.5, start_epoch=0, end_epoch=1), every_n_steps=5)
    _trainer(tmp_path, [pruning], max_epochs=1, limit_train_batches=20, limit_val_batches=1).fit(
        module, DigitsDataModule(batch_size=32)
    )
    # prunings at steps 5, 10, 15 of 20 (step 0 has target 0): the last at t = 0.75 epochs
    assert pruning.state_dict()["target"] == pytest.approx(0.375)
    assert pruning.state_dict()["steps_taken"] == 3
    assert module.trainer.logged_metrics[keys.STEP_TARGET].item() == pytest.approx(0.375)


def test_step_pruning_with_gradient_accumulation_prunes_once_per_optimizer_step(tmp_path: Path) -> None:
    pruning = ScheduledPruning(LinearSchedule(0.9, start_epoch=0, end_epoch=1), every_n_steps=1)
    _trainer(tmp_path, [pruning], max_epochs=1, limit_train_batches=12, limit_val_batches=1,
             accumulate_grad_batches=3).fit(_module("gru"), DigitsDataModule(batch_size=32))  # fmt: skip
    assert pruning.state_dict()["steps_taken"] == 3  # optimizer steps 1, 2, 3 (step 0 has target 0)


def test_two_pruning_callbacks_keep_separate_state(tmp_path: Path) -> None:
    ih = ScheduledPruning(0.3, include=["*.ih"])
    hh = ScheduledPruning(OneShotSchedule(0.6, epoch=0), include=["*.hh"])
    assert ih.state_key != hh.state_key
    module = _module("lstm")
    _trainer(tmp_path, [ih, hh], max_epochs=1).fit(module, DigitsDataModule(batch_size=64))
    by_name = {w.name: 1 - get_mask(w).float().mean().item() for w in prunable_weights(module)}
    assert by_name["lstm.l0.ih"] == pytest.approx(0.3, abs=0.01)
    assert by_name["lstm.l0.hh"] == pytest.approx(0.6, abs=0.01)


def _verdict(mask: torch.Tensor, margin: float) -> bool | None:
    e = layer_expansion(mask)
    components = e.num_components - e.num_isolated_left - e.num_isolated_right
    return ramanujan_verdict(e.delta_r, e.avg_left_degree, e.avg_right_degree, components, margin=margin).is_ramanujan


def test_guard_freezes_a_graph_exactly_when_delta_r_would_fall_below_the_margin() -> None:
    module = _module("rnn", hidden_size=12)
    schedule = LinearSchedule(0.95, start_epoch=0, end_epoch=10)
    # Unguarded trajectory of one graph's Δr, computed with the same masks the callback would take.
    free = ScheduledPruning(schedule, include=["rnn.l0.hh"])
    free.setup(None, module, "fit")
    trajectory, masks = [], []
    for epoch in range(11):
        free.prune(fake_trainer(epoch), module, float(epoch))
        masks.append(get_mask(free.weights[0]).clone())
        trajectory.append(layer_expansion(masks[-1]).delta_r)
    # The first step (after a couple of epochs) that takes Δr below every earlier value; put the
    # margin between that value and the earlier minimum.
    first_bad = next(j for j in range(2, 10) if trajectory[j + 1] < min(trajectory[: j + 1]))
    margin = (min(trajectory[: first_bad + 1]) + trajectory[first_bad + 1]) / 2
    # The one verdict (margin, connectivity; degree < 3 switched off here) on the unguarded masks
    # says where the guard must stop: at the first epoch whose step it would refuse.
    refused = next(j for j, m in enumerate(masks) if _verdict(m, margin) is False)
    assert 0 < refused <= first_bad + 1

    module = _module("rnn", hidden_size=12)
    guard = RamanujanGuard(margin=margin, stop_below_min_degree=False)
    guarded = ScheduledPruning(schedule, include=["rnn.l0.hh"], guard=guard)
    guarded.setup(None, module, "fit")
    kept = []
    for epoch in range(11):
        guarded.prune(fake_trainer(epoch), module, float(epoch))
        kept.append(get_mask(guarded.weights[0]).clone())
    assert guarded.stopped == {"rnn.l0.hh": refused}
    assert torch.equal(kept[refused - 1], masks[refused - 1]), "until the refusal it prunes as unguarded"
    assert _verdict(kept[-1], margin) is True
    assert torch.equal(kept[refused - 1], kept[-1]), "the frozen graph keeps its last expander mask"


def test_ramanujan_guard_stops_a_graph_before_its_average_degree_falls_below_three() -> None:
    # LSTM input gates are 16 x 8: d̄R = 8 (1 - s) falls below 3 once s > 0.625
    schedule = LinearSchedule(0.9, start_epoch=0, end_epoch=9)
    free = ScheduledPruning(schedule, include=["lstm.l0.ih"])
    guarded = ScheduledPruning(schedule, include=["lstm.l0.ih"], guard="ramanujan")
    for pruning in (free, guarded):
        module = _module("lstm")
        pruning.setup(None, module, "fit")
        for epoch in range(10):
            pruning.prune(fake_trainer(epoch), module, float(epoch))
    degree = ["avg_right_degree"]
    below = [g.name for g in free.graphs if layer_expansion(g.mask_block(), measures=degree).avg_right_degree < 3]
    assert below, "unguarded, the schedule takes the gates below degree 3"
    for graph in guarded.weights[0].graphs(per_gate=True, stacked=True):
        assert layer_expansion(graph.mask_block(), measures=degree).avg_right_degree >= 3, graph.name
    assert set(guarded.stopped) >= set(below)


def test_rewind_resets_surviving_weights_to_init() -> None:
    module = _module("lstm")
    initial = {k: v.detach().clone() for k, v in module.named_parameters()}
    pruning = ScheduledPruning(OneShotSchedule(0.5, epoch=1), rewind_to_epoch=0)
    pruning.setup(None, module, "fit")
    pruning.on_train_epoch_start(fake_trainer(0), module)
    with torch.no_grad():  # stands for an epoch of training
        for param in module.parameters():
            param.add_(1.0)
    pruning.on_train_epoch_start(fake_trainer(1), module)
    weight = module.net.lstm.weight_hh_l0
    mask = module.net.lstm.weight_hh_l0_mask
    torch.testing.assert_close(weight[mask], initial["net.lstm.weight_hh_l0"][mask])
    torch.testing.assert_close(module.net.head.bias, initial["net.head.bias"])
    assert torch.all(weight[~mask] == 0)


def _resume_run(
    tmp_path: Path, ckpt: str | None, max_epochs: int, criterion: str = "random"
) -> tuple[SequenceClassifier, ScheduledPruning]:
    L.seed_everything(0)
    module = _module("lstm")
    pruning = ScheduledPruning(LinearSchedule(0.8, start_epoch=0, end_epoch=4), criterion=criterion, seed=7)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, filename="{epoch}")
    trainer = _trainer(tmp_path, [pruning, checkpoint], max_epochs=max_epochs, enable_checkpointing=True)
    trainer.fit(module, DigitsDataModule(batch_size=64), ckpt_path=ckpt)
    return module, pruning


@pytest.mark.slow
@pytest.mark.parametrize("criterion", ["random", "gradient"])  # gradient: its sums travel in the checkpoint
def test_resume_from_mid_run_checkpoint_gives_identical_masks(tmp_path: Path, criterion: str) -> None:
    full, full_pruning = _resume_run(tmp_path / "full", None, 4, criterion)
    _resume_run(tmp_path / "killed", None, 2, criterion)  # "killed" after epoch 1
    checkpoint = str(tmp_path / "killed/ckpt/epoch=1.ckpt")
    resumed, resumed_pruning = _resume_run(tmp_path / "killed", checkpoint, 4, criterion)
    assert resumed_pruning.state_dict()["target"] == full_pruning.state_dict()["target"]
    for a, b in zip(prunable_weights(full), prunable_weights(resumed), strict=True):
        assert torch.equal(get_mask(a), get_mask(b)), a.name
        torch.testing.assert_close(a.parameter, b.parameter)


def _second_rank(pruning: ScheduledPruning, *, moved: bool) -> SimpleNamespace:
    """A strategy whose ``all_gather`` adds a second rank's checksum, of this rank's masks after the
    step with (``moved``) one kept entry moved elsewhere: as many ones, at another position."""

    def all_gather(checksum: torch.Tensor) -> torch.Tensor:
        masks = [get_mask(w).clone() for w in pruning.weights]
        if moved:
            flat = masks[0].view(-1)
            kept, pruned = int(flat.nonzero()[0]), int((flat == 0).nonzero()[0])
            flat[kept], flat[pruned] = 0, 1
        return torch.stack([checksum, mask_checksum(masks).to(checksum)])

    return SimpleNamespace(root_device=torch.device("cpu"), all_gather=all_gather)


@pytest.mark.parametrize("moved", [True, False])
def test_masks_that_differ_across_ranks_fail_loudly(moved: bool) -> None:
    module = _module("gru")
    pruning = ScheduledPruning(0.5)
    pruning.setup(None, module, "fit")
    trainer = SimpleNamespace(current_epoch=0, world_size=2, strategy=_second_rank(pruning, moved=moved))
    if moved:
        with pytest.raises(RuntimeError, match="ranks hold different masks"):
            pruning.prune(trainer, module, 0.0)
    else:
        pruning.prune(trainer, module, 0.0)  # the same masks on both ranks: no error
        assert get_mask(pruning.weights[0]).float().mean().item() == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schedule": 1.0}, r"sparsity=1.0 must lie in \[0, 1\)"),
        ({"schedule": -0.2}, r"sparsity=-0.2 must lie in \[0, 1\)"),
        ({"criterion": "l2"}, "criterion='l2' is not one of"),
        ({"scope": "model"}, "scope='model' is not one of"),
        ({"guard": "cheeger"}, "guard='cheeger' is not one of"),
        ({"every_n_steps": 0}, "every_n_steps=0 must be a positive integer"),
        ({"rewind_to_epoch": -1}, "rewind_to_epoch=-1 must be a non-negative epoch"),
        ({"guard_margin": float("nan")}, "guard_margin=nan must be finite"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ScheduledPruning(**kwargs)


def test_pattern_matching_no_weight_fails_at_setup() -> None:
    with pytest.raises(ValueError, match=r"patterns \['gru.\*'\] .* match no prunable weight; the model has"):
        ScheduledPruning(0.5, include=["gru.*"]).setup(None, _module("lstm"), "fit")
    with pytest.raises(ValueError, match=r"patterns \['lstm.l9.\*'\]"):  # a typo in exclude is caught too
        ScheduledPruning(0.5, exclude=["lstm.l9.*"]).setup(None, _module("lstm"), "fit")
    with pytest.raises(ValueError, match="leave no weight to prune"):
        ScheduledPruning(0.5, include=["*.hh"], exclude=["*"]).setup(None, _module("lstm"), "fit")


def test_rewind_after_the_first_pruning_step_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"rewind_to_epoch=3 comes after the schedule's start \(1\)"):
        ScheduledPruning(LinearSchedule(0.5, start_epoch=1, end_epoch=4), rewind_to_epoch=3)


def test_guard_also_keeps_the_stacked_matrix_an_expander() -> None:
    module = _module("lstm", hidden_size=12)
    guarded = ScheduledPruning(LinearSchedule(0.95, 0, 10), include=["lstm.l0.ih"], guard="ramanujan")
    guarded.setup(None, module, "fit")
    for epoch in range(11):
        guarded.prune(fake_trainer(epoch), module, float(epoch))
        for graph in guarded.weights[0].graphs(per_gate=True, stacked=True):
            assert layer_expansion(graph.mask_block()).delta_r >= 0, (epoch, graph.name)
    assert guarded.stopped, "at 95 % the guard must have stopped something"


def test_a_subclass_changes_what_is_pruned_through_the_public_steps() -> None:
    class HiddenOnlyHalfTarget(ScheduledPruning):
        def filter_parameters_to_prune(self, weights: list) -> list:
            return [w for w in weights if w.kind == "hh"]

        def compute_masks(self, scores: dict, target: float) -> dict:
            return super().compute_masks(scores, target / 2)

    module = _module("gru")
    pruning = HiddenOnlyHalfTarget(0.8)
    pruning.setup(None, module, "fit")
    pruning.prune(fake_trainer(0), module, 0.0)
    assert [w.name for w in pruning.weights] == ["gru.l0.hh"]
    by_name = {w.name: 1 - get_mask(w).float().mean().item() for w in prunable_weights(module)}
    assert by_name == {"gru.l0.ih": 0.0, "gru.l0.hh": pytest.approx(0.4, abs=0.01), "head": 0.0}


def _random_masks(tmp_path: Path, global_seed: int, **kwargs) -> list[torch.Tensor]:
    L.seed_everything(global_seed)  # sets PL_GLOBAL_SEED; the test restores it (monkeypatch)
    module = _module()
    pruning = ScheduledPruning(OneShotSchedule(0.5, epoch=0), criterion="random", **kwargs)
    _trainer(tmp_path, [pruning], max_epochs=1, limit_train_batches=1, limit_val_batches=1).fit(
        module, DigitsDataModule(batch_size=32)
    )
    return [get_mask(weight).clone() for weight in pruning.weights]


@pytest.mark.slow
def test_random_masks_follow_the_runs_seed_unless_the_callback_fixes_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A study's seeds must give different random masks; an explicit seed pins them.
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")  # restored after the test: later tests see no leak
    first, second = _random_masks(tmp_path / "a", 0), _random_masks(tmp_path / "b", 1)
    assert any(not torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(first, _random_masks(tmp_path / "c", 0), strict=True))
    pinned = [_random_masks(tmp_path / f"p{s}", s, seed=5) for s in (0, 1)]
    assert all(torch.equal(a, b) for a, b in zip(*pinned, strict=True))
    with pytest.raises(ValueError, match="seed=-1 must be a non-negative integer"):
        ScheduledPruning(0.5, seed=-1)


def test_a_resumed_run_keeps_the_seed_its_masks_were_drawn_with(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    saved = ScheduledPruning(0.5, criterion="random").state_dict()
    assert saved["generator_seed"] == 3
    monkeypatch.setenv("PL_GLOBAL_SEED", "8")  # resumed under another --seed_everything
    resumed = ScheduledPruning(0.5, criterion="random")
    with pytest.warns(UserWarning, match="drew its masks with seed 3, this run would use 8; keeping 3"):
        resumed.load_state_dict(saved)
    assert resumed.generator_seed == 3
