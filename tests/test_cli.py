"""The CLI end to end: every shipped config parses, the quickstart trains, resumes and evaluates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

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

    validated = main(quickstart_args("validate", tmp_path, "--ckpt_path", str(last[0])))
    assert 0.0 <= validated.trainer.callback_metrics["val/acc"].item() <= 1.0
    tested = main(quickstart_args("test", tmp_path, "--ckpt_path", str(last[0])))
    assert "test/acc" in tested.trainer.callback_metrics


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
