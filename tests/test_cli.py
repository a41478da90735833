"""The CLI end to end: every shipped config parses, the quickstart trains, resumes and evaluates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from callbacks import ScheduledPruning
from rnn_prune.cli import main
from rnn_prune.module import SequenceClassifier
from tests.conftest import CONFIGS, quickstart_args

ALL_CONFIGS = sorted(p for p in CONFIGS.rglob("*.yaml") if "sweeps" not in p.parts and "trainer" not in p.parts)


def _checkpoints(root: Path) -> list[Path]:
    return sorted(root.rglob("*.ckpt"))


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: p.name)
def test_every_config_parses_through_the_real_cli(config: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "class_path" in printed and "trainer:" in printed


def test_trainer_override_config_composes_with_a_run_config(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(CONFIGS / "quickstart.yaml"), "--config", str(CONFIGS / "trainer" / "ddp.yaml"),
              "--print_config"])  # fmt: skip
    printed = capsys.readouterr().out
    assert "strategy: ddp" in printed


def test_unknown_config_key_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(quickstart_args("fit", tmp_path, "--model.hiden_size", "8"))
    assert exit_info.value.code == 2
    assert "hiden_size" in capsys.readouterr().err


def test_bad_model_value_names_the_value(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(quickstart_args("fit", tmp_path, "--model.cell", "transformer"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "cell" in err and "transformer" in err


def test_nonpositive_hidden_size_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hidden_size=0 must be a positive integer"):
        main(quickstart_args("fit", tmp_path, "--model.hidden_size", "0"))


def test_quickstart_fit_validate_test_from_checkpoint(tmp_path: Path) -> None:
    cli = main(quickstart_args("fit", tmp_path, "--trainer.max_epochs", "2"))
    assert cli.trainer.current_epoch == 2
    assert cli.model.hparams.input_size == 8 and cli.model.hparams.num_classes == 10  # linked from data
    last = [p for p in _checkpoints(tmp_path) if p.name == "last.ckpt"]
    assert len(last) == 1 and last[0].is_relative_to(tmp_path)
    assert list(tmp_path.rglob("offline-run-*")), "the W&B offline run lives under default_root_dir"

    fit_acc = cli.trainer.callback_metrics["val/acc"].item()
    validated = main(quickstart_args("validate", tmp_path, "--ckpt_path", str(last[0])))
    # the pruned model is what gets evaluated: masks loaded, pruned weights zero, same accuracy
    weight, mask = validated.model.net.lstm.weight_hh_l0, validated.model.net.lstm.weight_hh_l0_mask
    assert 0.2 < 1 - mask.float().mean().item() < 0.9 and torch.all(weight[~mask] == 0)
    assert validated.trainer.callback_metrics["val/acc"].item() == pytest.approx(fit_acc)
    tested = main(quickstart_args("test", tmp_path, "--ckpt_path", str(last[0])))
    assert 0.0 < tested.trainer.callback_metrics["test/acc"].item() <= 1.0


def test_sparsity_flag_out_of_range_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--sparsity=1.5 must lie in \[0, 1\)"):
        main(quickstart_args("fit", tmp_path, "--sparsity", "1.5"))


def test_sparsity_and_guard_flags_reach_the_pruning_callback(tmp_path: Path) -> None:
    cli = main(quickstart_args("fit", tmp_path, "--sparsity", "0.5", "--guard", "ramanujan")[1:], run=False)
    pruning = next(c for c in cli.trainer.callbacks if isinstance(c, ScheduledPruning))
    assert pruning.schedule.final_sparsity == 0.5 and pruning.guard == "ramanujan"


def test_missing_api_key_logs_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with pytest.warns(UserWarning, match="No W&B API key found: logging offline"):
        cli = main(quickstart_args("fit", tmp_path, "--trainer.logger.init_args.offline", "false")[1:], run=False)
    assert cli.trainer.logger._offline


def test_non_finite_loss_stops_with_a_clear_error() -> None:
    module = SequenceClassifier(3, 2, hidden_size=4)
    batch = (torch.full((2, 5, 3), float("nan")), torch.tensor([0, 1]))
    with pytest.raises(FloatingPointError, match="train/loss is nan at epoch 0"):
        module.training_step(batch, 0)


@pytest.mark.slow
def test_quickstart_reaches_target_accuracy(tmp_path: Path) -> None:
    cli = main(quickstart_args("fit", tmp_path, "--trainer.logger", "false"))
    assert cli.trainer.callback_metrics["prune/sparsity"].item() == pytest.approx(0.9, abs=0.002)
    assert cli.trainer.callback_metrics["val/acc"].item() >= 0.90  # at 90 % sparsity
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
