"""LightningModule around :class:`~rnn_prune.model.RecurrentClassifier`: losses, metrics, optimizers.

Metric names follow the package's namespaces (``train/loss``, ``val/acc``, ``test/acc``). A data
module may evaluate ``test`` on several loaders (e.g. speech at several noise levels) by
implementing :class:`NamedTestLoaders` — ``test_suffixes``, one per test loader, e.g.
``["", "@20dB", "@0dB"]``; accuracy is then logged as ``test/acc@20dB`` and so on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from rnn_prune import keys
from rnn_prune.masks import register_masks_from_state_dict
from rnn_prune.model import RecurrentClassifier


@runtime_checkable
class NamedTestLoaders(Protocol):
    """A data module whose test loaders have names: the suffix of each one's ``test/…`` keys."""

    @property
    def test_suffixes(self) -> Sequence[str]:
        """One suffix per test loader, in loader order (``""`` for the plain one)."""
        ...


class SequenceClassifier(L.LightningModule):
    """Train a recurrent classifier; ``input_size``/``num_classes`` come from the data module.

    Args:
        input_size: features per step (linked from ``data.input_size`` by the CLI).
        num_classes: classes (linked from ``data.num_classes`` by the CLI).
        optimizer: optimizer factory; Adam unless the config names another ``class_path``.
        lr_scheduler: optional LR scheduler factory, stepped per epoch (monitoring ``val/loss``
            for ``ReduceLROnPlateau``).
        **network: the network's keyword arguments (``cell``, ``hidden_size``, ``num_layers``,
            ``bidirectional``, ``dropout``, ``readout``), defined once, by
            :class:`~rnn_prune.model.RecurrentClassifier`; the CLI reads them from there
            (``--model.cell``), and the hyperparameters record every one of them.
    """

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        **network: Any,
    ) -> None:
        super().__init__()
        self.net = RecurrentClassifier(input_size, num_classes, **network)
        # Every network argument, the defaults included, so a checkpoint fixes the architecture. The
        # optimizer factories are recorded by the CLI's saved config; pickling them into every
        # checkpoint would make checkpoints unloadable with torch.load(weights_only=True).
        self.save_hyperparameters({"input_size": input_size, "num_classes": num_classes, **self.net.arguments})
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        # Per step the training accuracy only accumulates (``update``; ``compute`` once per epoch),
        # unchecked: cross_entropy has already rejected an out-of-range label.
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_accs = nn.ModuleList([MulticlassAccuracy(num_classes, average="micro")])
        self._train_acc_logged = False

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def _loss(self, batch: tuple[Tensor, Tensor], stage: str) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        if stage == "train" and not torch.isfinite(loss):
            raise FloatingPointError(
                f"{keys.TRAIN_LOSS} is {loss.item()} at epoch {self.current_epoch}, step {self.global_step}: "
                "lower the learning rate, enable trainer.gradient_clip_val, or check the inputs for NaN"
            )
        return loss, logits, y

    def on_train_epoch_start(self) -> None:
        self._train_acc_logged = False

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, logits, y = self._loss(batch, "train")
        self.train_acc.update(logits.detach(), y)
        # Each self.log costs ~0.5-1 ms of Python (a tenth of a GPU step): log only what is used.
        if self._loss_is_read(batch_idx):
            self.log(keys.TRAIN_LOSS, loss, prog_bar=True)
        if not self._train_acc_logged:  # once per epoch: Lightning keeps the metric
            self.log(keys.TRAIN_ACC, self.train_acc, on_step=False, on_epoch=True)  # object, computes it at
            self._train_acc_logged = True  # the epoch's end over every update, and resets it
        return loss

    def _loss_is_read(self, batch_idx: int) -> bool:
        """Whether this step's ``train/loss`` is read: by the progress bar, by the loggers (Lightning
        writes step metrics every ``log_every_n_steps`` optimizer steps, counted as ``global_step``
        with one optimizer), or from ``callback_metrics`` after the epoch's last batch."""
        trainer = self.trainer
        every = trainer.log_every_n_steps
        return (
            trainer.progress_bar_callback is not None
            or bool(trainer.fast_dev_run)
            or (every > 0 and (self.global_step + 1) % every == 0)
            or batch_idx + 1 >= trainer.num_training_batches
            or trainer.should_stop
        )

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, logits, y = self._loss(batch, "val")
        self.val_acc(logits, y)
        self.log(keys.VAL_LOSS, loss, prog_bar=True, sync_dist=True)
        self.log(keys.VAL_ACC, self.val_acc, prog_bar=True)

    def on_test_start(self) -> None:
        suffixes = self._test_suffixes()
        while len(self.test_accs) < len(suffixes):
            self.test_accs.append(MulticlassAccuracy(self.hparams.num_classes, average="micro").to(self.device))

    def _test_suffixes(self) -> list[str]:
        datamodule = self.trainer.datamodule
        suffixes = datamodule.test_suffixes if isinstance(datamodule, NamedTestLoaders) else None
        loaders = self.trainer.test_dataloaders
        count = len(loaders) if isinstance(loaders, list | tuple) else 1
        if not suffixes:
            return [""] + [f"/dataloader{i}" for i in range(1, count)]  # unnamed extra test loaders
        if len(suffixes) != count:
            raise ValueError(f"the data module's test_suffixes={list(suffixes)} do not match its {count} test loaders")
        return list(suffixes)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        loss, logits, y = self._loss(batch, "test")
        suffix = self._test_suffixes()[dataloader_idx]
        metric = self.test_accs[dataloader_idx]
        metric(logits, y)
        self.log(keys.test_loss(suffix), loss, sync_dist=True, add_dataloader_idx=False)
        self.log(keys.test_acc(suffix), metric, add_dataloader_idx=False)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self(x).argmax(dim=-1)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": keys.VAL_LOSS}}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A pruned checkpoint holds `<weight>_mask` buffers that a freshly built (dense) model lacks;
        # create them so strict loading succeeds and validate/test evaluate the pruned model.
        register_masks_from_state_dict(self, checkpoint.get("state_dict", {}))
