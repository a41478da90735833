"""The CLI end to end: every shipped config parses, the quickstart trains, resumes and evaluates,
and its records can be trusted (last.ckpt, saved configs, one W&B run per training, clear refusals)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.cli import LightningCLI

from rnn_prune import keys
from rnn_prune.cli import CHECKPOINT_DIR, ConfigError, main
from rnn_prune.loggers import WANDB_RUN_ID_KEY
from rnn_prune.loggers import WandbLogger as PackageWandbLogger
from rnn_prune.module import SequenceClassifier
from rnn_prune.wandb_offline import find_offline_runs, read_config, read_run, wait_until_complete
from tests.conftest import CONFIGS, ROOT, quickstart_args

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
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "hiden_size" in err.splitlines()[0]  # the error first, not the usage
    assert len(err.splitlines()) < 10


def test_bad_model_value_names_the_value(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(quickstart_args("fit", tmp_path, "--model.cell", "transformer"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "cell" in err and "transformer" in err


def test_nonpositive_hidden_size_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hidden_size=0 must be a positive integer"):
        main(quickstart_args("fit", tmp_path, "--model.hidden_size", "0"))


def test_sparsity_flag_out_of_range_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--sparsity=1.5 must lie in \[0, 1\)"):
        main(quickstart_args("fit", tmp_path, "--sparsity", "1.5"))


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


# --- runs you can trust (issue 12) -------------------------------------------------------------


class RunLogger(PackageWandbLogger):
    """A user's W&B logger subclass under another name: the CLI must find it by type."""


class NaNValidationInputs(Callback):
    """Validation inputs turn NaN, training stays finite: only val/loss can tell."""

    def on_validation_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: tuple, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        batch[0].fill_(float("nan"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 1-epoch quickstart fit, shared: copy it (:func:`_copy`) before writing into it."""
    root = tmp_path_factory.mktemp("trained")
    main(quickstart_args("fit", root, "--trainer.max_epochs", "1"))
    assert all(wait_until_complete(run) for run in find_offline_runs(root)), "copy only a finished W&B run"
    return root


def _copy(trained: Path, tmp_path: Path) -> tuple[Path, Path]:
    root = Path(shutil.copytree(trained, tmp_path / "run"))
    return root, root / CHECKPOINT_DIR / "last.ckpt"


@pytest.fixture(scope="module")
def resumed(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LightningCLI]:
    """:func:`trained` continued by ``fit --ckpt_path`` for one more epoch, the first pruned one
    (the cubic schedule's target is 0 at epoch 0): the root and the fit's CLI, shared, read only.
    Two epochs with :func:`trained`: the tests that use it are slow (the epoch guard counts fixtures)."""
    root, last = _copy(trained, tmp_path_factory.mktemp("resumed"))
    cli = main(quickstart_args("fit", root, "--trainer.max_epochs", "2", "--ckpt_path", str(last)))
    assert all(wait_until_complete(run) for run in find_offline_runs(root))
    return root, cli


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: p.name)
def test_every_config_keeps_last_ckpt_the_latest_epoch_and_stops_bad_runs(config: Path, tmp_path: Path) -> None:
    cli = main(["--config", str(config), "--trainer.default_root_dir", str(tmp_path)], run=False)
    latest = [c for c in cli.trainer.checkpoint_callbacks if c.monitor is None and c.filename == "last"]
    assert len(latest) == 1, "a ModelCheckpoint without monitor rewrites last.ckpt every epoch"
    assert latest[0].save_top_k == 1 and Path(latest[0].dirpath) == (tmp_path / CHECKPOINT_DIR).resolve()
    (stop,) = cli.trainer.early_stopping_callbacks
    assert stop.monitor == keys.VAL_LOSS and stop.check_finite and stop.divergence_threshold is not None
    assert stop.patience > cli.trainer.max_epochs  # a plateau never cuts the pruning schedule short


@pytest.mark.slow
def test_last_checkpoint_is_the_final_epoch_at_the_final_sparsity(tmp_path: Path) -> None:
    # A monitored ModelCheckpoint(save_last=True) left last.ckpt at epoch 4 / sparsity 0.776 here.
    main(quickstart_args("fit", tmp_path, "--sparsity", "0.99", "--trainer.max_epochs", "14"))
    (best,) = (p for p in _checkpoints(tmp_path) if p.name != "last.ckpt")
    assert torch.load(best, weights_only=True)["epoch"] < 13, "the most accurate epoch is not the last one here"
    last = tmp_path / CHECKPOINT_DIR / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["epoch"] == 13
    masks = [v for k, v in checkpoint["state_dict"].items() if k.endswith("_mask")]
    pruned = sum(int((~m).sum()) for m in masks) / sum(m.numel() for m in masks)
    assert pruned == pytest.approx(0.99, abs=0.005)
    tested = main(quickstart_args("test", tmp_path, "--ckpt_path", str(last)))
    assert tested.trainer.callback_metrics[keys.SPARSITY].item() == pytest.approx(0.99, abs=0.005)


@pytest.mark.slow  # resumed: a second epoch
def test_quickstart_fit_validate_test_from_checkpoint(resumed: tuple[Path, LightningCLI], tmp_path: Path) -> None:
    root, cli = resumed
    assert cli.trainer.current_epoch == 2
    assert cli.model.hparams.input_size == 8 and cli.model.hparams.num_classes == 10  # linked from data
    last = [p for p in _checkpoints(root) if p.name == "last.ckpt"]
    assert last == [root / CHECKPOINT_DIR / "last.ckpt"]  # one predictable place
    assert list(root.rglob("offline-run-*")), "the W&B offline run lives under default_root_dir"

    fit_acc = cli.trainer.callback_metrics[keys.VAL_ACC].item()
    validated = main(quickstart_args("validate", tmp_path, "--ckpt_path", str(last[0])))
    # the pruned model is what gets evaluated: masks loaded, pruned weights zero, same accuracy
    weight, mask = validated.model.net.lstm.weight_hh_l0, validated.model.net.lstm.weight_hh_l0_mask
    assert 0.2 < 1 - mask.float().mean().item() < 0.9 and torch.all(weight[~mask] == 0)
    assert validated.trainer.callback_metrics[keys.VAL_ACC].item() == pytest.approx(fit_acc)
    tested = main(quickstart_args("test", tmp_path, "--ckpt_path", str(last[0])))
    assert 0.0 < tested.trainer.callback_metrics[keys.TEST_ACC].item() <= 1.0


def test_evaluation_saves_its_own_config_and_labels_its_wandb_run(trained: Path, tmp_path: Path) -> None:
    root, last = _copy(trained, tmp_path)
    fit_config = (root / "config.yaml").read_text()
    main(quickstart_args("test", root, "--ckpt_path", str(last)))
    assert (root / "config.yaml").read_text() == fit_config, "the training's record is never overwritten"
    assert yaml.safe_load((root / "config.test.yaml").read_text())["ckpt_path"] == str(last)

    runs = {read_run(run).job_type: run for run in find_offline_runs(root) if wait_until_complete(run)}
    assert set(runs) == {"fit", "test"}
    fit_run = read_config(runs["fit"])
    assert fit_run["config"]["trainer"]["max_epochs"] == 1  # the full resolved config, not only hparams
    assert fit_run["config"]["trainer"]["callbacks"][0]["init_args"]["schedule"]["init_args"]["final_sparsity"] == 0.9
    assert read_config(runs["test"])["checkpoint_run_id"] == read_run(runs["fit"]).run_id


@pytest.mark.slow  # resumed: a second epoch
def test_fit_from_a_checkpoint_continues_its_wandb_run(trained: Path, resumed: tuple[Path, LightningCLI]) -> None:
    (first,) = find_offline_runs(trained)
    run_id = read_run(first).run_id
    assert torch.load(trained / CHECKPOINT_DIR / "last.ckpt", weights_only=True)[WANDB_RUN_ID_KEY] == run_id

    root, _ = resumed  # trained, then fit --ckpt_path <its last.ckpt> --trainer.max_epochs 2
    sessions = [read_run(run) for run in find_offline_runs(root)]
    assert [s.run_id for s in sessions] == [run_id, run_id]  # one W&B run, two sessions
    epochs = sorted(int(row[keys.EPOCH]) for s in sessions for row in s.history if keys.VAL_ACC in row)
    assert epochs == [0, 1]
    assert torch.load(root / CHECKPOINT_DIR / "last.ckpt", weights_only=True)["epoch"] == 1


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/model.ckpt", "HTTPS://example.invalid/last.ckpt"])
def test_url_checkpoint_is_refused_before_anything_is_fetched(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="remote checkpoints are refused.*weights_only=True"):
        main(quickstart_args("validate", tmp_path, "--ckpt_path", url))


@pytest.mark.parametrize(
    ("flag", "value", "saved"),
    [
        ("hidden_size", "32", "64"),
        ("cell", "gru", "lstm"),
        ("num_layers", "2", "1"),
        ("bidirectional", "true", "False"),
        ("readout", "mean", "last"),
    ],
)
def test_architecture_override_contradicting_the_checkpoint_is_refused(
    flag: str, value: str, saved: str, trained: Path, tmp_path: Path
) -> None:
    last = trained / CHECKPOINT_DIR / "last.ckpt"
    with pytest.raises(ConfigError, match=rf"--model\.{flag}=\S+ does not match the checkpoint's {flag}={saved}"):
        main(quickstart_args("validate", tmp_path, "--ckpt_path", str(last), f"--model.{flag}", value))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trainer.callbacks+=tests.test_cli.NaNValidationInputs"], "val/loss = nan is not finite"),
        (["--model.optimizer.init_args.lr", "1e6"], r"val/loss = \S+ passed divergence_threshold=100.0"),
    ],
    ids=["nan-only-in-validation", "lr-1e6"],
)
def test_training_gone_bad_stops_with_a_message(args: list[str], message: str, tmp_path: Path) -> None:
    cli = main(quickstart_args("fit", tmp_path, "--trainer.max_epochs", "3", "--trainer.logger", "false", *args))
    assert cli.trainer.current_epoch == 1
    assert cli.outcome.status == "diverged" and cli.outcome.exit_code == 3  # python -m rnn_prune exits 3
    assert re.match(f"training went bad and was stopped after epoch 0: {message}", cli.outcome.reason)


def test_bad_schedule_value_is_one_sentence_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    text = (CONFIGS / "quickstart.yaml").read_text()
    config.write_text(text.replace("final_sparsity: 0.9 ", "final_sparsity: 1.5 ", 1))
    expected = "trainer.callbacks[0].init_args.schedule (CubicSchedule): final_sparsity=1.5 must lie in [0, 1)"
    with pytest.raises(ConfigError) as error:
        main(["fit", "--config", str(config), "--trainer.default_root_dir", str(tmp_path)])
    assert str(error.value) == expected


def test_loggers_and_checkpoints_are_found_by_type(tmp_path: Path) -> None:
    logger = '{"class_path": "tests.test_cli.RunLogger", "init_args": {"offline": true}}'
    cli = main(quickstart_args("fit", tmp_path, "--trainer.logger", logger)[1:], run=False)
    # (pytest imports this file under another module name than the CLI's class_path does)
    assert type(cli.trainer.logger).__name__ == "RunLogger" and cli.trainer.logger.save_dir == str(tmp_path)


@pytest.mark.slow
def test_console_prints_a_config_error_as_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="offline", WANDB_SILENT="true")
    args = quickstart_args("fit", tmp_path, "--sparsity", "1.5")
    done = subprocess.run([sys.executable, "-m", "rnn_prune", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: --sparsity=1.5 must lie in [0, 1)"] and "Traceback" not in done.stderr
