"""The LightningModule logs only what is read: ``train/loss`` at the loggers' steps (and for the
progress bar and the epoch's end), ``train/acc`` once per epoch over every batch of it."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassAccuracy

from datamodules._common import TensorBatches, keep_batch
from rnn_prune import keys
from rnn_prune.module import SequenceClassifier


class EpochAccuracy(Callback):
    """The accuracy of every training batch's logits, recomputed independently, per epoch."""

    def __init__(self) -> None:
        self.metric = MulticlassAccuracy(4, average="micro")
        self.epochs: list[float] = []
        self.losses: list[float] = []  # every training step's loss

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.metric.update(pl_module.last_logits, batch[1])  # the step's own logits, before its update
        self.losses.append(float(outputs["loss"]))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epochs.append(float(self.metric.compute()))
        self.metric.reset()


class Recording(SequenceClassifier):
    """Keeps the logits of the latest training step for :class:`EpochAccuracy`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        if self.training:
            self.last_logits = logits.detach()
        return logits


def _fit(
    tmp_path: Path, *, epochs: int, log_every_n_steps: int, progress_bar: bool = False
) -> tuple[Path, EpochAccuracy]:
    generator = torch.Generator().manual_seed(0)
    data = TensorBatches(torch.randn(70, 3, 2, generator=generator), torch.randint(0, 4, (70,), generator=generator))
    loader = DataLoader(data, batch_size=10, collate_fn=keep_batch)
    torch.manual_seed(0)
    model = Recording(input_size=2, num_classes=4, hidden_size=4)
    recorder = EpochAccuracy()
    trainer = L.Trainer(
        max_epochs=epochs, logger=CSVLogger(tmp_path), log_every_n_steps=log_every_n_steps, callbacks=[recorder],
        enable_checkpointing=False, enable_progress_bar=progress_bar, enable_model_summary=False,
        accelerator="cpu", devices=1,
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=loader)
    assert keys.TRAIN_LOSS in trainer.callback_metrics  # kept for callbacks after the last batch
    return Path(trainer.logger.log_dir) / "metrics.csv", recorder


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def test_train_loss_rows_are_written_at_the_logging_steps(tmp_path: Path) -> None:
    metrics, recorder = _fit(tmp_path, epochs=1, log_every_n_steps=3)
    written = {int(row["step"]): float(row[keys.TRAIN_LOSS]) for row in _rows(metrics) if row.get(keys.TRAIN_LOSS)}
    assert list(written) == [2, 5]  # Lightning's rule: after optimizer steps 3 and 6 (of 7) ...
    assert list(written.values()) == pytest.approx([recorder.losses[2], recorder.losses[5]])  # ... their own losses


def test_train_accuracy_is_the_epoch_s_accuracy_over_every_batch(tmp_path: Path) -> None:
    metrics, recorder = _fit(tmp_path, epochs=1, log_every_n_steps=3)
    logged = [float(row[keys.TRAIN_ACC]) for row in _rows(metrics) if row.get(keys.TRAIN_ACC)]
    assert logged == pytest.approx(recorder.epochs)


@pytest.mark.slow  # trains three epochs
def test_train_accuracy_restarts_every_epoch(tmp_path: Path) -> None:
    metrics, recorder = _fit(tmp_path, epochs=3, log_every_n_steps=50, progress_bar=True)
    logged = [float(row[keys.TRAIN_ACC]) for row in _rows(metrics) if row.get(keys.TRAIN_ACC)]
    assert len(logged) == 3 and logged == pytest.approx(recorder.epochs)
