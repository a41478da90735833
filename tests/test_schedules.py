"""Each schedule's cumulative targets and argument checks; the pure pruning math."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from rnn_prune.pruning import global_masks, keep_top, layerwise_masks, mask_checksum, mask_scores, pruned_count
from rnn_prune.schedules import (
    ConstantSchedule,
    CubicSchedule,
    IterativeSchedule,
    LinearSchedule,
    OneShotSchedule,
    Schedule,
    as_schedule,
)

ROOT = Path(__file__).resolve().parents[1]


def test_cubic_schedule_matches_zhu_gupta_formula() -> None:
    s_i, s_f, t0, end = 0.1, 0.9, 2, 12
    schedule = CubicSchedule(s_f, start_epoch=t0, end_epoch=end, initial_sparsity=s_i)
    for t in [2, 3, 4.5, 7, 11, 12]:
        expected = s_f + (s_i - s_f) * (1 - (t - t0) / (end - t0)) ** 3
        assert schedule.target(t) == pytest.approx(expected)
    assert schedule.target(1.99) == 0.0
    assert schedule.target(40) == pytest.approx(s_f)


def test_linear_one_shot_constant_and_iterative_targets() -> None:
    assert [LinearSchedule(0.6, 1, 4).target(e) for e in range(6)] == pytest.approx([0, 0, 0.2, 0.4, 0.6, 0.6])
    assert [OneShotSchedule(0.7, epoch=2).target(e) for e in range(4)] == [0, 0, 0.7, 0.7]
    assert ConstantSchedule(0.3).target(0) == 0.3
    rounds = IterativeSchedule(0.5, every=1, rounds=3)
    assert [rounds.target(e) for e in range(5)] == pytest.approx([0.5, 0.75, 0.875, 0.875, 0.875])
    capped = IterativeSchedule(0.5, final_sparsity=0.8)
    assert capped.target(10) == pytest.approx(0.8)


def test_targets_never_decrease() -> None:
    for schedule in [CubicSchedule(0.95, 0, 7), LinearSchedule(0.5, 3, 9), IterativeSchedule(0.2, 2)]:
        targets = [schedule.target(t / 4) for t in range(60)]
        assert targets == sorted(targets)


def test_a_float_means_constant() -> None:
    assert isinstance(as_schedule(0.4), ConstantSchedule) and as_schedule(0.4).target(0) == 0.4
    with pytest.raises(ValueError, match="schedule=True must be a Schedule"):
        as_schedule(True)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: ConstantSchedule(1.0), r"sparsity=1.0 must lie in \[0, 1\)"),
        (lambda: ConstantSchedule(-0.1), r"sparsity=-0.1 must lie in \[0, 1\)"),
        (lambda: CubicSchedule(0.9, start_epoch=5, end_epoch=3), "end_epoch=3 must be after start_epoch=5"),
        (lambda: LinearSchedule(0.5, initial_sparsity=0.6), "initial_sparsity=0.6 exceeds final_sparsity=0.5"),
        (lambda: LinearSchedule(0.5, start_epoch=-1), "start_epoch=-1 must be a non-negative epoch"),
        (lambda: IterativeSchedule(0.0), r"rate=0.0 must lie in \(0, 1\)"),
        (lambda: IterativeSchedule(0.2, every=0), "every=0 must be a positive number of epochs"),
        (lambda: IterativeSchedule(0.2, rounds=0), "rounds=0 must be a positive integer"),
        (lambda: IterativeSchedule(0.2, final_sparsity=1.5), r"final_sparsity=1.5 must lie in \[0, 1\)"),
    ],
)
def test_schedules_reject_bad_arguments(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_layerwise_reaches_exact_count_and_never_regrows() -> None:
    torch.manual_seed(0)
    weight = torch.randn(12, 7)
    mask = torch.ones_like(weight, dtype=torch.bool)
    for target in [0.3, 0.55, 0.9]:
        new = layerwise_masks({"w": mask_scores(weight.abs(), mask)}, target)["w"]
        assert int((~new).sum()) == pruned_count(weight.numel(), target)
        assert not torch.any(new & ~mask), "a pruned weight came back"
        mask = new
    kept = weight.abs()[mask]
    assert kept.min() >= weight.abs()[~mask].max()  # magnitude: the largest survive


def test_global_scope_uses_one_threshold() -> None:
    big, small = torch.full((4, 4), 10.0) + torch.rand(4, 4), torch.rand(4, 4)
    ones = torch.ones(4, 4, dtype=torch.bool)
    score = {"big": mask_scores(big, ones), "small": mask_scores(small, ones)}
    masks = global_masks(score, 0.5)
    assert masks["big"].all() and not masks["small"].any()
    layer = layerwise_masks(score, 0.5)
    assert int(layer["big"].sum()) == int(layer["small"].sum()) == 8


def test_nan_scores_rank_lowest_and_full_pruning_is_defined() -> None:
    score = torch.tensor([[float("nan"), -0.5], [2.0, -3.0]])  # a criterion may score below 0
    mask = keep_top(mask_scores(score, torch.ones(2, 2, dtype=torch.bool)), 3)
    assert mask.tolist() == [[False, True], [True, True]], "NaN ranks below every real score"
    # a criterion's own -inf is its lowest score, not "already pruned": the count stays exact
    assert int(keep_top(mask_scores(torch.full((2, 2), float("-inf")), torch.ones(2, 2)), 3).sum()) == 3
    assert not keep_top(torch.randn(3, 3), 0).any()


def test_pruned_entries_score_minus_infinity_and_shapes_must_agree() -> None:
    mask = torch.tensor([[True, False]])
    assert mask_scores(torch.tensor([[1.0, 9.0]]), mask).tolist() == [[1.0, float("-inf")]]
    with pytest.raises(ValueError, match=r"scores have shape \(3,\), the mask has \(1, 2\)"):
        mask_scores(torch.ones(3), mask)


def test_checksum_tells_masks_apart() -> None:
    a = torch.tensor([True, False, True])
    b = torch.tensor([False, True, True])
    assert mask_checksum([a]) != mask_checksum([b])
    assert mask_checksum([a, b]) == mask_checksum([a.clone(), b.clone()])


# --------------------------------------------------------------------------- a user's schedule and its knobs

USER_SCHEDULE = '''
from rnn_prune.schedules import Schedule


class StepTo(Schedule):
    """Prune to ``goal`` at epoch ``when``: argument names no caller of the package knows."""

    def __init__(self, goal: float = 0.5, when: float = 0) -> None:
        self.goal, self.when = goal, when

    def target(self, epoch):
        return self.goal if epoch >= self.when else 0.0

    def starts_at(self):
        return self.when

    def ends_at(self):
        return self.when

    def with_target(self, sparsity):
        return StepTo(goal=sparsity, when=self.when)

    def ending_by(self, epoch):
        return self if self.when <= epoch else StepTo(goal=self.goal, when=epoch)
'''


@pytest.fixture
def user_schedule(tmp_path, monkeypatch):
    (tmp_path / "my_schedules_h22.py").write_text(USER_SCHEDULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_schedules_h22.StepTo"
    sys.modules.pop("my_schedules_h22", None)


def _with_schedule(schedule: dict) -> str:
    """The quickstart config with its schedule block replaced by ``schedule`` (one JSON line)."""
    lines = (ROOT / "configs" / "quickstart.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("schedule:"))
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = next(i for i in range(start + 1, len(lines)) if len(lines[i]) - len(lines[i].lstrip()) <= indent)
    return "\n".join([*lines[:start], " " * indent + "schedule: " + json.dumps(schedule), *lines[end:]]) + "\n"


def test_a_user_schedule_with_its_own_argument_names_takes_sparsity_and_the_study_end(user_schedule, tmp_path):
    from callbacks import ScheduledPruning
    from rnn_prune.cli import main
    from rnn_prune.study.runner import plan_schedule

    config = tmp_path / "user.yaml"
    config.write_text(_with_schedule({"class_path": user_schedule, "init_args": {"goal": 0.3, "when": 12}}))

    # --sparsity: the schedule sets its own target
    cli = main(["--config", str(config), "--sparsity", "0.8", f"--trainer.default_root_dir={tmp_path}"], run=False)
    (pruning,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, ScheduledPruning)]
    assert type(pruning.schedule).__name__ == "StepTo"
    assert (pruning.schedule.goal, pruning.schedule.when) == (0.8, 12)

    # the study: the schedule moves its own end before max_epochs
    overlay, note = plan_schedule(yaml.safe_load(config.read_text()), ["--trainer.max_epochs", "6"])
    entry = overlay["trainer"]["callbacks"][0]["init_args"]["schedule"]
    assert entry == {"class_path": user_schedule, "init_args": {"goal": 0.3, "when": 5}}
    assert "StepTo reaches its target at epoch 5, not 12" in note


def test_a_schedule_without_the_knobs_says_so(tmp_path):
    from rnn_prune.cli import ConfigError, main

    class Bare(Schedule):
        def target(self, epoch):
            return 0.5

    with pytest.raises(NotImplementedError, match="Bare does not say how to change its target sparsity"):
        Bare().with_target(0.9)
    assert Bare().ending_by(3) is not None and Bare().ends_at() is None  # no end: nothing to move
    config = tmp_path / "iterative.yaml"
    iterative = {"class_path": "rnn_prune.schedules.IterativeSchedule", "init_args": {"rate": 0.2}}
    config.write_text(_with_schedule(iterative))
    cli = main(["--config", str(config), "--sparsity", "0.6", f"--trainer.default_root_dir={tmp_path}"], run=False)
    (pruning,) = [cb for cb in cli.trainer.callbacks if hasattr(cb, "schedule")]
    assert pruning.schedule.final_sparsity == 0.6 and pruning.schedule.target(100) == 0.6
    with pytest.raises(ConfigError, match=r"--sparsity=1.5 must lie in \[0, 1\)"):
        main(["--config", str(config), "--sparsity", "1.5", f"--trainer.default_root_dir={tmp_path}"], run=False)
