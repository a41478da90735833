"""Every criterion through the CLI and the study on the quickstart config, pruned at init and gradually."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Callback, LightningModule, Trainer

from rnn_prune.cli import main
from rnn_prune.expansion import layer_expansion
from rnn_prune.pruning import pruned_count
from rnn_prune.registry import prunable_weights
from tests.conftest import CONFIGS, offline_wandb_env, quickstart_args

SHORT = ("--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1")


def _init_config(tmp_path: Path) -> Path:
    """The quickstart with sfmnist_lstm_init.yaml's schedule: the final mask before the first step."""
    config = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())
    at_init = yaml.safe_load((CONFIGS / "sfmnist_lstm_init.yaml").read_text())
    schedule = at_init["trainer"]["callbacks"][0]["init_args"]["schedule"]
    assert schedule["init_args"]["epoch"] == 0
    config["trainer"]["callbacks"][0]["init_args"]["schedule"] = schedule
    path = tmp_path / "quickstart_init.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _gate_masks(module: LightningModule) -> dict[str, torch.Tensor]:
    return {g.name: g.mask_block().bool().clone() for w in prunable_weights(module) if w.name != "head"
            for g in w.graphs(per_gate=True, stacked=False)}  # fmt: skip


class _MaskRecorder(Callback):
    """The masks at the first training step and after every epoch."""

    def __init__(self) -> None:
        self.first_step: dict[str, torch.Tensor] | None = None
        self.epochs: list[dict[str, torch.Tensor]] = []

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: object, idx: int) -> None:
        if self.first_step is None:
            self.first_step = _gate_masks(pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.epochs.append(_gate_masks(pl_module))


def _fit(args: list[str]) -> tuple[LightningModule, _MaskRecorder]:
    cli = main([*args[1:], "--trainer.logger", "false"], run=False)  # no subcommand: built, not run
    recorder = _MaskRecorder()
    cli.trainer.callbacks.append(recorder)
    cli.trainer.fit(cli.model, cli.datamodule)
    return cli.model, recorder


def _check_structure(criterion: str, masks: dict[str, torch.Tensor]) -> None:
    for name, mask in masks.items():
        if criterion == "biregular":
            assert int(mask.sum(0).max() - mask.sum(0).min()) <= 1 and int(mask.sum(1).max() - mask.sum(1).min()) <= 1
        if criterion == "clustered:mixing=0" and ".hh." in name:
            assert layer_expansion(mask, measures=["num_components"]).num_components == 2, name


@pytest.mark.parametrize("criterion", ["magnitude", "random", "biregular", "clustered:mixing=0", "rewired"])
def test_every_criterion_prunes_at_init_through_the_cli(criterion: str, tmp_path: Path) -> None:
    args = quickstart_args("fit", tmp_path, "--criterion", criterion, "--sparsity", "0.8",
                           "--trainer.max_epochs", "1", *SHORT, config=str(_init_config(tmp_path)))  # fmt: skip
    module, recorder = _fit(args)
    assert recorder.first_step is not None
    for name, mask in recorder.first_step.items():  # the final mask, before the first training step
        assert int((~mask).sum()) == pruned_count(mask.numel(), 0.8), name
        assert torch.equal(recorder.epochs[-1][name], mask), f"{name}: the mask changed during training"
    _check_structure(criterion, recorder.first_step)


@pytest.mark.slow
@pytest.mark.parametrize("criterion", ["biregular", "clustered:mixing=0", "rewired:swaps=0.5"])
def test_every_structural_criterion_prunes_gradually_through_the_cli(criterion: str, tmp_path: Path) -> None:
    # quickstart's cubic ramp to 0.8 by epoch 2 (its end_epoch moved as the study would): dense epoch 0, then 2 steps
    args = quickstart_args("fit", tmp_path, "--criterion", criterion, "--sparsity", "0.8", "--trainer.max_epochs", "3",
                           *SHORT)  # fmt: skip
    args[args.index("--config") + 2 : args.index("--config") + 2] = ["--config", str(_ramp_to(tmp_path, 2))]
    module, recorder = _fit(args)
    first, middle, last = recorder.epochs
    assert all(m.all() for m in first.values()), "the cubic schedule prunes nothing at epoch 0"
    for name, mask in last.items():
        assert int((~mask).sum()) == pruned_count(mask.numel(), 0.8), name
        assert not (mask & ~middle[name]).any(), f"{name}: a pruned weight came back"
        assert middle[name].sum() > mask.sum(), f"{name}: the ramp skipped its middle step"
    _check_structure(criterion, last)


def _ramp_to(tmp_path: Path, end_epoch: int) -> Path:
    """An overlay config moving the quickstart's schedule end (as the study does for short runs)."""
    config = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())
    callbacks = config["trainer"]["callbacks"]
    callbacks[0]["init_args"]["schedule"]["init_args"]["end_epoch"] = end_epoch
    path = tmp_path / "ramp.yaml"
    path.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks}}))
    return path


def _study(config: Path, out: Path, env: dict[str, str]) -> list[dict[str, str]]:
    command = [sys.executable, "-m", "rnn_prune.study", "--config", str(config), "--sparsity", "0.8",
               "--criterion", "biregular", "clustered:mixing=0", "rewired", "--seeds", "0", "--out", str(out),
               "--parallel", "2", "--trainer.max_epochs", "2", "--trainer.enable_model_summary", "false",
               *SHORT]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "study.csv") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_the_study_runs_structural_criteria_at_init_and_gradually(tmp_path: Path) -> None:
    env = {**os.environ, **offline_wandb_env(tmp_path), "OMP_NUM_THREADS": "1"}
    for config, name in ((CONFIGS / "quickstart.yaml", "gradual"), (_init_config(tmp_path), "init")):
        rows = {r["criterion"]: r for r in _study(config, tmp_path / name, env)}
        assert set(rows) == {"biregular", "clustered:mixing=0", "rewired"}, name
        assert rows["clustered:mixing=0"]["criterion_args"] == "mixing=0" and rows["biregular"]["criterion_args"] == ""
        assert all(abs(float(r["final_sparsity"]) - 0.8) < 0.01 for r in rows.values()), name
        assert float(rows["clustered:mixing=0"]["min_delta_r"]) < float(rows["biregular"]["min_delta_r"]), name
        assert (tmp_path / name / "accuracy_vs_expansion.png").is_file()


def test_clustered_with_too_dense_a_target_for_its_blocks_is_one_line_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """At sparsity 0.3 (density 0.7) 4 blocks cannot hold the edges: the CLI says so in one line (exit 2)
    before anything is written, not with a traceback at the first pruning step; ``setup`` checks too."""
    from callbacks.pruning import ScheduledPruning
    from rnn_prune.cli import console_main

    root = tmp_path / "run"
    args = quickstart_args("fit", root, "--criterion", "clustered:blocks=4", "--sparsity", "0.3",
                           "--trainer.max_epochs", "2", *SHORT)  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        console_main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: trainer.callbacks[0] (ScheduledPruning): clustered criterion on")
    assert "use fewer blocks" in err[0] and not (root / "fit_outcome.json").exists()
    assert not (root / "checkpoints").exists()
    cli = main([*args[1:], "--trainer.logger", "false", "--sparsity", "0.9", "--trainer.max_epochs", "20"],
               run=False)  # 0.1 dense at the schedule's end (epoch 10): fits 4 blocks  # fmt: skip
    pruning = next(c for c in cli.trainer.callbacks if isinstance(c, ScheduledPruning))
    pruning.check_plan(cli.trainer, cli.model)
    pruning.schedule = pruning.schedule.with_target(0.3)
    with pytest.raises(ValueError, match="clustered criterion on lstm.*use fewer blocks"):
        pruning.setup(cli.trainer, cli.model, "fit")
