"""What does serving a batch cost?  ``python benchmarks/data_path.py``

Times the training loader of ``SequentialMNISTDataModule``'s data set (60,000 uint8 images of
28 x 28, batch 128, shuffled, ``num_workers=0``, one torch thread) two ways, interleaved over
``--rounds`` rounds of ``--batches`` batches:

* per sample: ``DataLoader`` calling ``__getitem__`` 128 times and ``default_collate`` stacking
  the samples — the data path before the batched gathers, its ``__getitem__`` copied here;
* gather: the shipped path, one ``__getitems__`` call per batch (:class:`~datamodules._common.GatherDataset`).

Prints the median milliseconds per batch of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules._common import EpochShuffleSampler, make_loader  # noqa: E402
from datamodules._vision import ImageSequences  # noqa: E402


class PerSample(torch.utils.data.Dataset):
    """``ImageSequences`` as it was: one normalised sample per ``__getitem__`` (no flips, no permutation)."""

    def __init__(self, dataset: ImageSequences) -> None:
        self.images, self.labels, self.scale, self.shift = dataset.images, dataset.labels, dataset.scale, dataset.shift
        self.shape = dataset.shape

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = (self.images[index].float() * self.scale - self.shift).reshape(-1)
        return x.reshape(self.shape), self.labels[index]


def ms_per_batch(loader: DataLoader, batches: int) -> float:
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return (time.perf_counter() - start) / batches * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (60_000, 28, 28, 1), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (60_000,), generator=generator)
    dataset = ImageSequences(images, labels, mean=(0.2860,), std=(0.3530,), shape=(28, 28))
    gather = make_loader(dataset, batch_size=128, num_workers=0, shuffle_seed=0)
    per_sample = DataLoader(PerSample(dataset), batch_size=128, sampler=EpochShuffleSampler(60_000, 0))
    assert all(torch.equal(a, b) for a, b in zip(next(iter(gather)), next(iter(per_sample)), strict=True))
    times: dict[str, list[float]] = {"per sample + collate": [], "one gather": []}
    for r in range(args.rounds):
        pairs = [("per sample + collate", per_sample), ("one gather", gather)]
        for name, loader in pairs if r % 2 == 0 else reversed(pairs):
            times[name].append(ms_per_batch(loader, args.batches))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"torch {torch.__version__}, 1 thread, batch 128 of 28 x 28 uint8 images, {args.rounds} interleaved rounds")
    for name, value in median.items():
        print(f"{name:22s} {value:6.2f} ms per batch")
    print(f"gather / per sample: {median['one gather'] / median['per sample + collate']:.3f}")


if __name__ == "__main__":
    main()
