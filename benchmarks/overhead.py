"""What do the two callbacks cost per epoch?  ``python benchmarks/overhead.py [--quick]``

Times training epochs with and without ``ScheduledPruning`` + ``ExpansionMetrics`` (default
settings: every graph, the default measure set with IMDB and the unfolded graph after every epoch,
one BLAS thread) on

1. the quickstart (digits, LSTM 64, 8 steps): tiny epochs, so the fixed per-epoch cost shows;
2. seq-MNIST-sized layers (LSTM 128, 28 steps × 28 features, synthetic data of MNIST's shape):
   a fraction of an MNIST epoch is timed and the per-epoch callback cost is also set against a
   full 60,000-sample epoch.

So that a load on a shared machine cannot fake a result (an earlier version reported callbacks
making an epoch 0.68× as long):

* runs with and without the callbacks alternate (``--rounds`` pairs, the order flipped each
  round), and the medians over all their epochs are compared;
* torch runs on a fixed number of threads (``--torch-threads``, default 1) and the measures on
  one BLAS thread, the callback's default;
* both sides log to an offline ``WandbLogger``, so the callbacks' W&B table and degree
  histograms are paid for (logging of the epoch's own metrics is on both sides);
* ``graph/seconds`` — the measures' own time — is read after *every* measured epoch, not only
  the last, and reported as a median beside the epoch ratio.

Prints seconds per epoch and the ratio with / without. The goal is ≤ 1.05 on seq-MNIST-sized
layers at the default measuring frequency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from torch.utils.data import DataLoader, TensorDataset

from callbacks import ExpansionMetrics, ScheduledPruning
from datamodules import DigitsDataModule
from rnn_prune import keys
from rnn_prune.module import SequenceClassifier
from rnn_prune.schedules import CubicSchedule


class EpochTimer(Callback):
    """Wall time of every training epoch, and the measures' own ``graph/seconds`` of each."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.measure_seconds: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # registered last, so this runs after the metrics callback's epoch-end work
        self.seconds.append(time.perf_counter() - self._start)
        measured = trainer.callback_metrics.get(keys.GRAPH_SECONDS)
        if measured is not None:
            self.measure_seconds.append(float(measured))
            trainer.callback_metrics.pop(keys.GRAPH_SECONDS)  # so a skipped epoch is not counted twice


class SyntheticSequences(L.LightningDataModule):
    """Random data of seq-MNIST's shape (28 steps × 28 features, 10 classes)."""

    input_size, num_classes = 28, 10

    def __init__(self, num_samples: int, batch_size: int = 128) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(num_samples, 28, 28, generator=generator)
        y = torch.randint(0, 10, (num_samples,), generator=generator)
        self.train, self.val = TensorDataset(x, y), TensorDataset(x[:1000], y[:1000])
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=512)


def run_epochs(
    make_data: Callable[[], L.LightningDataModule], model_kwargs: dict, with_callbacks: bool, epochs: int, save_dir: str
) -> EpochTimer:
    """One short fit; the timer holds its epochs after the first (which includes warm-up)."""
    torch.manual_seed(0)
    data = make_data()
    model = SequenceClassifier(data.input_size, data.num_classes, **model_kwargs)
    timer = EpochTimer()
    callbacks = [ScheduledPruning(CubicSchedule(0.9, 0, epochs)), ExpansionMetrics()] if with_callbacks else []
    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=[*callbacks, timer],
        logger=WandbLogger(save_dir=save_dir, offline=True),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    trainer.fit(model, data)
    import wandb

    wandb.finish()
    timer.seconds, timer.measure_seconds = timer.seconds[1:], timer.measure_seconds[1:]
    return timer


def compare(
    name: str,
    make_data: Callable[[], L.LightningDataModule],
    model_kwargs: dict,
    epochs: int,
    rounds: int,
    full_epoch_scale: float | None = None,
) -> None:
    base: list[float] = []
    pruned: list[float] = []
    measures: list[float] = []
    with tempfile.TemporaryDirectory() as save_dir:
        for r in range(rounds):
            for with_callbacks in (False, True) if r % 2 == 0 else (True, False):
                timer = run_epochs(make_data, model_kwargs, with_callbacks, epochs, save_dir)
                (pruned if with_callbacks else base).extend(timer.seconds)
                measures.extend(timer.measure_seconds)
    base_s, pruned_s = statistics.median(base), statistics.median(pruned)
    print(f"{name}: {base_s:.3f} s/epoch without callbacks, {pruned_s:.3f} s/epoch with "
          f"(ratio {pruned_s / base_s:.3f}, medians of {len(base)} / {len(pruned)} epochs); "
          f"expansion measures {statistics.median(measures):.3f} s per epoch (median of {len(measures)})")
    if full_epoch_scale:
        full = base_s * full_epoch_scale
        print(f"{name}: against a full epoch (~{full:.0f} s): ratio {(full + pruned_s - base_s) / full:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, rounds and samples")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch's intra-op threads (fixed)")
    parser.add_argument("--rounds", type=int, default=None, help="with/without pairs (default 3, quick 1)")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    torch.set_num_threads(args.torch_threads)
    epochs = 3 if args.quick else 5
    rounds = args.rounds or (1 if args.quick else 3)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.2f}; {rounds} interleaved rounds of {epochs} epochs")
    compare(
        "quickstart (digits, LSTM 64)", lambda: DigitsDataModule(batch_size=64), {"hidden_size": 64}, epochs, rounds
    )
    samples = 2000 if args.quick else 6000
    compare(
        f"seq-MNIST-sized (LSTM 128, 28x28, {samples} samples/epoch)",
        lambda: SyntheticSequences(samples),
        {"hidden_size": 128},
        epochs,
        rounds,
        full_epoch_scale=60_000 / samples,
    )


if __name__ == "__main__":
    main()
