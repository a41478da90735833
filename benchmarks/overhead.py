"""What do the two callbacks cost per epoch?  ``python benchmarks/overhead.py [--quick]``

Times training epochs with and without ``ScheduledPruning`` + ``ExpansionMetrics`` (default
settings: every graph, IMDB and the unfolded graph after every epoch) in one run, on

1. the quickstart (digits, LSTM 64, 8 steps): tiny epochs, so the fixed per-epoch cost shows;
2. seq-MNIST-sized layers (LSTM 128, 28 steps × 28 features, synthetic data of MNIST's shape):
   a tenth of an MNIST epoch is timed and the per-epoch callback cost is also set against a full
   60,000-sample epoch.

Prints seconds per epoch and the ratio with / without. The goal is ≤ 1.05 on seq-MNIST-sized
layers at the default measuring frequency.
"""

from __future__ import annotations

import argparse
import statistics
import time

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, TensorDataset

from callbacks import ExpansionMetrics, ScheduledPruning
from datamodules import DigitsDataModule
from rnn_prune.module import SequenceClassifier
from rnn_prune.schedules import CubicSchedule


class EpochTimer(Callback):
    """Wall time of every training epoch, validation included."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # registered last, so this runs after the metrics callback's epoch-end work
        self.seconds.append(time.perf_counter() - self._start)


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


def epoch_seconds(make_data, model_kwargs: dict, with_callbacks: bool, epochs: int) -> tuple[list[float], float]:
    torch.manual_seed(0)
    data = make_data()
    model = SequenceClassifier(data.input_size, data.num_classes, **model_kwargs)
    timer = EpochTimer()
    metrics = ExpansionMetrics()
    callbacks = [ScheduledPruning(CubicSchedule(0.9, 0, epochs)), metrics] if with_callbacks else []
    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=[*callbacks, timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    trainer.fit(model, data)
    measure_seconds = statistics.mean(
        [trainer.callback_metrics["graph/seconds"].item()] if with_callbacks else [0.0]
    )
    return timer.seconds[1:], measure_seconds  # the first epoch includes warm-up


def compare(name: str, make_data, model_kwargs: dict, epochs: int, full_epoch_scale: float | None = None) -> None:
    base, _ = epoch_seconds(make_data, model_kwargs, False, epochs)
    pruned, measure = epoch_seconds(make_data, model_kwargs, True, epochs)
    base_s, pruned_s = statistics.median(base), statistics.median(pruned)
    print(f"{name}: {base_s:.3f} s/epoch without callbacks, {pruned_s:.3f} s/epoch with "
          f"(ratio {pruned_s / base_s:.3f}); expansion measures {measure:.3f} s per epoch")
    if full_epoch_scale:
        full = base_s * full_epoch_scale
        print(f"{name}: against a full epoch (~{full:.0f} s): ratio {(full + pruned_s - base_s) / full:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and samples")
    args = parser.parse_args()
    epochs = 3 if args.quick else 5
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    compare("quickstart (digits, LSTM 64)", lambda: DigitsDataModule(batch_size=64), {"hidden_size": 64}, epochs)
    samples = 2000 if args.quick else 6000
    compare(
        f"seq-MNIST-sized (LSTM 128, 28x28, {samples} samples/epoch)",
        lambda: SyntheticSequences(samples),
        {"hidden_size": 128},
        epochs,
        full_epoch_scale=60_000 / samples,
    )


if __name__ == "__main__":
    main()
