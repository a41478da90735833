"""Sequential MNIST: the 70,000 handwritten digits of MNIST read as sequences.

Three readings of each 28×28 image (``mode``):

- ``row``: 28 steps of 28 features, one image row per step (the default);
- ``pixel``: 784 steps of 1 feature, pixel by pixel in raster order ("sequential MNIST");
- ``permuted``: 784 steps of 1 feature in one fixed random order of the pixels ("psMNIST").

Files are read by ``torchvision.datasets.MNIST`` from ``<data_dir>/MNIST/raw/`` (the four
un-gzipped IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), which ``prepare_data`` downloads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torchvision.datasets import MNIST

from datamodules._common import (
    ImageSequences,
    SplitsDataModule,
    check_choice,
    check_loader_args,
    check_val_fraction,
    require_files,
    seeded_split,
)

Mode = Literal["row", "pixel", "permuted"]
MODES = ("row", "pixel", "permuted")
#: Mean and standard deviation of all MNIST training pixels on the [0, 1] scale: the values
#: torchvision's and PyTorch's examples use.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
_RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class SequentialMNISTDataModule(SplitsDataModule):
    """MNIST as ``(batch, seq_len, input_size)`` float32 sequences with int64 labels.

    Splits: MNIST's 60,000 training images are split by a ``seed``-ed shuffle into train and
    validation (``val_fraction`` held out); its 10,000 test images are the test split.
    Normalisation: ``(pixel / 255 - 0.1307) / 0.3081``, the mean and standard deviation of all
    training pixels (fixed constants, so identical in every mode and split).

    Args:
        data_dir: directory holding (or receiving) ``MNIST/raw/``.
        batch_size: samples per batch.
        num_workers: DataLoader workers.
        download: let ``prepare_data`` download MNIST when it is missing (as torchvision does).
        mode: ``"row"`` (28 × 28), ``"pixel"`` (784 × 1) or ``"permuted"`` (784 × 1, permuted).
        val_fraction: share of the training images held out for validation.
        seed: seed of the train/validation split and of the per-epoch training shuffle
            (which depends on ``(seed, epoch)`` only, so a resumed run sees the same batches).
        permutation_seed: seed of the pixel permutation of ``mode="permuted"``. The permutation is
            drawn from its own ``numpy.random.default_rng(permutation_seed)``, so it is the same
            in every run and process, whatever ``seed`` or the global RNGs are.
    """

    num_classes = 10

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        download: bool = True,
        mode: Mode = "row",
        val_fraction: float = 0.1,
        seed: int = 0,
        permutation_seed: int = 0,
    ) -> None:
        super().__init__()
        check_loader_args(batch_size, num_workers)
        check_choice("mode", mode, MODES)
        check_val_fraction(val_fraction)
        if permutation_seed < 0:
            raise ValueError(f"permutation_seed={permutation_seed!r} must be >= 0")
        self.save_hyperparameters()
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.download = download
        self.mode = mode
        self.val_fraction = val_fraction
        self.seed = seed
        self.permutation_seed = permutation_seed

    @property
    def seq_len(self) -> int:
        return 28 if self.mode == "row" else 784

    @property
    def input_size(self) -> int:
        return 28 if self.mode == "row" else 1

    @property
    def permutation(self) -> torch.Tensor | None:
        """The pixel order of ``mode="permuted"`` (a permutation of ``range(784)``), else None."""
        if self.mode != "permuted":
            return None
        order = np.random.default_rng(self.permutation_seed).permutation(784)
        return torch.as_tensor(order, dtype=torch.long)

    @property
    def raw_folder(self) -> Path:
        return Path(self.data_dir) / "MNIST" / "raw"

    def prepare_data(self) -> None:
        if self.download:
            MNIST(self.data_dir, train=False, download=True)  # fetches all four files

    def setup(self, stage: str | None = None) -> None:
        require_files(
            [self.raw_folder / name for name in _RAW_FILES],
            dataset="MNIST",
            root=Path(self.data_dir),
            download=self.download,
            source=f"the four *-ubyte.gz files from {MNIST.mirrors[0]} (gunzipped)",
        )
        if stage in (None, "fit", "validate") and "train" not in self.splits:
            data = MNIST(self.data_dir, train=True, download=False)
            train, val = seeded_split(len(data), self.val_fraction, self.seed)
            self.splits["train"] = self._sequences(data, train)
            self.splits["val"] = self._sequences(data, val)
        if stage in (None, "test", "predict") and "test" not in self.splits:
            data = MNIST(self.data_dir, train=False, download=False)
            self.splits["test"] = self._sequences(data, np.arange(len(data)))

    def _sequences(self, data: MNIST, index: np.ndarray) -> ImageSequences:
        index_t = torch.as_tensor(index, dtype=torch.long)
        return ImageSequences(
            data.data[index_t].unsqueeze(-1),  # (N, 28, 28, 1) uint8
            data.targets[index_t].long(),
            mean=[MNIST_MEAN],
            std=[MNIST_STD],
            shape=(self.seq_len, self.input_size),
            permutation=self.permutation,
        )
