"""``StudyFigures``: at the end of ``fit``, the study report's figures for this run, as W&B images.

Thin glue over :mod:`rnn_prune.report`: it records what the run logged each epoch (the trainer's
``callback_metrics``, which by the next epoch's start hold every epoch-level value, and what each
:class:`~callbacks.interfaces.EpochMetricsSource` — ``ExpansionMetrics`` — computed after it) and
hands the rows to :func:`rnn_prune.report.make_figures`. The PNGs
land in ``<default_root_dir>/figures``; with a ``WandbLogger`` they are also logged as images
``report/<figure>``.

The report (its figure code, and through its run reader wandb's protobufs) is imported inside the
hook that draws, so ``from callbacks import ScheduledPruning`` does not load it.

A run resumed from a checkpoint draws the epochs recorded before the checkpoint (they travel in
its ``state_dict``) and those after it, but not the epoch the checkpoint was written in: its
values are only complete once that epoch has ended, after the checkpoint was saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from typing_extensions import override

from callbacks.interfaces import EpochMetricsSource
from rnn_prune import keys


class StudyFigures(Callback):
    """Draw accuracy-vs-sparsity and Δr-vs-sparsity figures of this run when ``fit`` ends.

    Args:
        out_dir: where the PNGs go (default ``<default_root_dir>/figures``).
        name: the run's label in the figures (default: the W&B run name, else ``run``).
    """

    def __init__(self, out_dir: str | None = None, name: str | None = None) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.name = name
        self._rows: list[dict[str, Any]] = []
        self._last_epoch: int | None = None

    def _record(self, trainer: L.Trainer) -> None:
        if self._last_epoch is None:
            return
        sources = [c for c in trainer.callbacks if isinstance(c, EpochMetricsSource)]
        # callback_metrics keeps keys from earlier epochs: a source's keys come from the source itself
        row = {key: float(value) for key, value in trainer.callback_metrics.items()
               if not any(source.owns(key) for source in sources)}  # fmt: skip
        for source in sources:
            row.update(source.metrics_after(self._last_epoch))
        self._rows.append({**row, keys.EPOCH: self._last_epoch})
        self._last_epoch = None

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer)  # the previous epoch's values are all in callback_metrics by now

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_epoch = trainer.current_epoch

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer)
        if not trainer.is_global_zero or not self._rows:
            return
        wandb_loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        name = self.name or (wandb_loggers[0].experiment.name if wandb_loggers else None) or "run"
        from rnn_prune.report import RunData, make_figures  # application code: only when drawing

        out_dir = Path(self.out_dir or Path(trainer.default_root_dir) / "figures")
        figures = make_figures([RunData.from_rows(name, self._rows)], out_dir)
        for logger in wandb_loggers:
            for stem, path in figures.items():
                logger.log_image(key=keys.report_figure(stem), images=[str(path)])

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"rows": list(self._rows)}  # a resumed run still draws its earlier epochs

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._rows = list(state_dict.get("rows", []))
