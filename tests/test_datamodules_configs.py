"""Each benchmark config trains one batch (``fast_dev_run``) through the real CLI on small files
written in its data set's real format."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnn_prune import keys
from rnn_prune.cli import main
from tests.conftest import CONFIGS
from tests.data_fixtures import (
    accept_cifar10_files,
    write_cifar10,
    write_fashion_mnist,
    write_mnist,
    write_speech_commands,
)

BENCHMARKS = {
    "smnist": (write_mnist, 28, 10),
    "sfmnist": (write_fashion_mnist, 28, 10),
    "scifar10": (write_cifar10, 96, 10),
    "speech": (write_speech_commands, 40, 35),
}


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("benchmark", sorted(BENCHMARKS))
def test_config_fast_dev_run(benchmark: str, cell: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write, input_size, num_classes = BENCHMARKS[benchmark]
    data = tmp_path / "data"
    write(data)
    if benchmark == "scifar10":
        accept_cifar10_files(data, monkeypatch)
    cli = main(
        [
            "fit",
            "--config", str(CONFIGS / f"{benchmark}_{cell}.yaml"),
            "--trainer.fast_dev_run", "1",
            "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false",
            "--trainer.default_root_dir", str(tmp_path / "runs"),
            "--data.init_args.data_dir", str(data),
            "--data.init_args.download", "false",
            "--data.init_args.num_workers", "0",
        ]
    )  # fmt: skip
    assert cli.trainer.state.finished and cli.model.net.cell == cell
    assert (cli.model.hparams.input_size, cli.model.hparams.num_classes) == (input_size, num_classes)
    assert {keys.TRAIN_LOSS, keys.VAL_ACC} <= set(cli.trainer.callback_metrics)
    assert keys.RAMANUJAN_FRACTION in cli.trainer.callback_metrics  # the configs measure expansion
    if benchmark == "sfmnist":  # only FashionMNIST/raw/ was written: the fit read it, through FashionMNIST
        assert cli.datamodule.vision_class.__name__ == "FashionMNIST"


def test_speech_config_tests_clean_and_at_each_snr(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_speech_commands(data)
    cli = main(
        [
            "test",
            "--config", str(CONFIGS / "speech_lstm.yaml"),
            "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(tmp_path / "runs"),
            "--data.init_args.data_dir", str(data),
            "--data.init_args.download", "false",
            "--data.init_args.num_workers", "0",
        ]
    )  # fmt: skip
    assert cli.datamodule.test_suffixes == ["", "@20dB", "@10dB", "@0dB"]
    assert {keys.test_acc(s) for s in cli.datamodule.test_suffixes} <= set(cli.trainer.callback_metrics)
