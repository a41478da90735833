"""A callback the DDP test adds to the quickstart: every rank saves the masks it ended with."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from rnn_prune.masks import get_mask
from rnn_prune.registry import prunable_weights


class SaveMasksPerRank(Callback):
    """Write ``rank<global_rank>.pt`` ({weight name: mask}) into ``out_dir`` at the end of fit."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        masks = {w.name: get_mask(w).cpu() for w in prunable_weights(pl_module)}
        torch.save(masks, self.out_dir / f"rank{trainer.global_rank}.pt")
