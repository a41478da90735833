"""Pieces the benchmark data modules share: argument checks, the seeded validation split, the
loaders, the image-to-sequence dataset and the error raised when a data set's files are missing.

Private to ``datamodules/``; a new benchmark file may use them but need not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler


def check_loader_args(batch_size: int, num_workers: int) -> None:
    """Raise ``ValueError`` naming ``batch_size`` / ``num_workers`` when they are out of range."""
    if batch_size <= 0:
        raise ValueError(f"batch_size={batch_size!r} must be positive")
    if num_workers < 0:
        raise ValueError(f"num_workers={num_workers!r} must be >= 0")


def check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    """Raise ``ValueError`` naming ``name`` when ``value`` is not one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {list(allowed)}")


def check_fraction(name: str, value: float) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` lies strictly between 0 and 1."""
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name}={value!r} must lie in (0, 1)")


def check_val_fraction(val_fraction: float) -> None:
    check_fraction("val_fraction", val_fraction)


def seeded_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` of ``n`` samples: a ``seed``-ed shuffle, ``val_fraction`` held out.

    The same ``(n, val_fraction, seed)`` gives the same split in every process (numpy's PCG64
    streams are stable across numpy versions). Both index arrays are sorted.

    >>> train, val = seeded_split(10, 0.2, seed=0)
    >>> len(train), len(val), sorted(set(train) | set(val)) == list(range(10))
    (8, 2, True)
    """
    n_val = round(val_fraction * n)
    if not 0 < n_val < n:
        raise ValueError(
            f"val_fraction={val_fraction!r} of {n} training samples leaves an empty split"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class EpochShuffleSampler(Sampler[int]):
    """A shuffle that depends only on ``(seed, epoch)``: a resumed run sees the same batches.

    ``RandomSampler`` draws from the global RNG, whose state checkpoints do not carry, so a run
    resumed from a checkpoint would train on other batches than the uninterrupted one. Lightning
    calls ``set_epoch`` on a loader's sampler at the start of every epoch.
    """

    def __init__(self, num_samples: int, seed: int = 0) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.num_samples, generator=generator).tolist())


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    num_workers: int,
    shuffle_seed: int | None = None,
    collate_fn: Callable | None = None,
) -> DataLoader:
    """A DataLoader with the data modules' common settings.

    ``shuffle_seed``: shuffle every epoch with :class:`EpochShuffleSampler` seeded by it (training
    loaders); None keeps the order (validation and test). Workers persist across epochs.
    """
    sampler = None if shuffle_seed is None else EpochShuffleSampler(len(dataset), shuffle_seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        collate_fn=collate_fn,
    )


class SplitsDataModule(L.LightningDataModule):
    """Serves ``self.splits["train" | "val" | "test"]`` with the loader settings above.

    Subclasses set ``batch_size``, ``num_workers`` and ``seed`` and fill ``splits`` in ``setup``;
    the training loader reshuffles per epoch from ``seed`` (resumable), the others keep their order,
    and ``predict`` reads the test split.
    """

    batch_size: int
    num_workers: int
    seed: int

    def __init__(self) -> None:
        super().__init__()
        self.splits: dict[str, Dataset] = {}

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return make_loader(
            self.splits[split],
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            shuffle_seed=self.seed if shuffle else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")


def require_files(
    paths: Sequence[Path], *, dataset: str, root: Path, download: bool, source: str
) -> None:
    """Raise ``FileNotFoundError`` saying which of ``paths`` are missing and how to get them.

    Called before a torchvision / torchaudio data set is built, so a missing file gives this
    message instead of a ``RuntimeError`` from deep inside the library.
    """
    missing = [str(p) for p in paths if not Path(p).exists()]
    if not missing:
        return
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    if download:
        how = (
            "download is true but prepare_data() has not fetched them: the Trainer calls "
            "prepare_data() before setup(); call dm.prepare_data() first when using the data "
            "module by hand"
        )
    else:
        how = "set `download: true` (CLI: --data.init_args.download true) to fetch them"
    raise FileNotFoundError(
        f"{dataset} not found under {root}: missing {shown}. To get it, {how}; or fetch "
        f"{source} yourself and unpack it so that these paths exist."
    )


class ImageSequences(Dataset):
    """uint8 images ``(N, H, W, C)`` served as normalised float32 sequences of shape ``shape``.

    An image is read in HWC order, row by row and within a row pixel by pixel (so a row of an
    RGB image is ``r0, g0, b0, r1, g1, b1, ...``); each channel ``c`` becomes
    ``(value / 255 - mean[c]) / std[c]``.

    Args:
        images: uint8 tensor ``(N, H, W, C)``.
        labels: int64 tensor ``(N,)``.
        mean, std: per-channel statistics on the [0, 1] scale.
        shape: ``(T, F)`` with ``T * F == H * W * C``.
        permutation: optional index tensor of length ``H * W * C`` applied to the flattened image
            before it is cut into steps (for the permuted benchmarks).
        hflip: flip each image left-right with probability 1/2 (training augmentation; drawn from
            torch's RNG, which Lightning seeds and DataLoader seeds per worker).
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        shape: tuple[int, int],
        permutation: Tensor | None = None,
        hflip: bool = False,
    ) -> None:
        self.images = images
        self.labels = labels
        std_t = torch.tensor(std, dtype=torch.float32)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = torch.tensor(mean, dtype=torch.float32) / std_t
        self.shape = shape
        self.permutation = permutation
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = self.images[index]
        if self.hflip and torch.rand(()) < 0.5:
            image = image.flip(1)
        x = (image.float() * self.scale - self.shift).reshape(-1)
        if self.permutation is not None:
            x = x[self.permutation]
        return x.reshape(self.shape), self.labels[index]
