"""CIFAR-10 as sequences: 60,000 32×32 colour images of 10 classes, read as sequences.

Two readings of each image (``mode``):

- ``row``: 32 steps of 96 features; step ``h`` is image row ``h``, pixel by pixel, each pixel's
  red, green and blue value (``r0, g0, b0, r1, ...``) — the default;
- ``pixel``: 1024 steps of 3 features (one pixel's RGB per step), in raster order.

Files are read by ``torchvision.datasets.CIFAR10`` from ``<data_dir>/cifar-10-batches-py/``
(the pickled ``data_batch_1`` … ``data_batch_5``, ``test_batch`` and ``batches.meta`` of the
"python version" archive), which ``prepare_data`` downloads. torchvision checks each file's MD5
against the official archive's, so a truncated or altered file is reported as corrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torchvision.datasets import CIFAR10

from datamodules._common import (
    ImageSequences,
    SplitsDataModule,
    check_choice,
    check_loader_args,
    check_val_fraction,
    require_files,
    seeded_split,
)

Mode = Literal["row", "pixel"]
MODES = ("row", "pixel")
#: Per-channel (R, G, B) mean and standard deviation of the 50,000 training images on the
#: [0, 1] scale, over all pixels. (The also-circulating std (0.2023, 0.1994, 0.2010) is the std of
#: per-image means, not of pixels.)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class SequentialCIFAR10DataModule(SplitsDataModule):
    """CIFAR-10 as ``(batch, seq_len, input_size)`` float32 sequences with int64 labels.

    Splits: the 50,000 training images are split by a ``seed``-ed shuffle into train and
    validation (``val_fraction`` held out); the 10,000 test images are the test split.
    Normalisation: each channel ``c`` becomes ``(value / 255 - mean[c]) / std[c]`` with the
    training-set statistics ``mean = (0.4914, 0.4822, 0.4465)``, ``std = (0.2470, 0.2435,
    0.2616)`` (fixed constants, identical in every split).

    Args:
        data_dir: directory holding (or receiving) ``cifar-10-batches-py/``.
        batch_size: samples per batch.
        num_workers: DataLoader workers.
        download: let ``prepare_data`` download CIFAR-10 when it is missing (as torchvision does).
        mode: ``"row"`` (32 × 96) or ``"pixel"`` (1024 × 3).
        hflip: flip training images left-right with probability 1/2 (never validation or test).
        val_fraction: share of the training images held out for validation.
        seed: seed of the train/validation split and of the per-epoch training shuffle
            (which depends on ``(seed, epoch)`` only, so a resumed run sees the same batches).
    """

    num_classes = 10

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        download: bool = True,
        mode: Mode = "row",
        hflip: bool = False,
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_loader_args(batch_size, num_workers)
        check_choice("mode", mode, MODES)
        check_val_fraction(val_fraction)
        self.save_hyperparameters()
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.download = download
        self.mode = mode
        self.hflip = hflip
        self.val_fraction = val_fraction
        self.seed = seed

    @property
    def seq_len(self) -> int:
        return 32 if self.mode == "row" else 1024

    @property
    def input_size(self) -> int:
        return 96 if self.mode == "row" else 3

    @property
    def base_folder(self) -> Path:
        return Path(self.data_dir) / CIFAR10.base_folder

    def prepare_data(self) -> None:
        if self.download:
            CIFAR10(self.data_dir, train=False, download=True)  # fetches the whole archive

    def setup(self, stage: str | None = None) -> None:
        names = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list]
        require_files(
            [self.base_folder / name for name in [*names, CIFAR10.meta["filename"]]],
            dataset="CIFAR-10",
            root=Path(self.data_dir),
            download=self.download,
            source=CIFAR10.url,
        )
        if stage in (None, "fit", "validate") and "train" not in self.splits:
            data = self._load(train=True)
            train, val = seeded_split(len(data), self.val_fraction, self.seed)
            self.splits["train"] = self._sequences(data, train, hflip=self.hflip)
            self.splits["val"] = self._sequences(data, val)
        if stage in (None, "test", "predict") and "test" not in self.splits:
            data = self._load(train=False)
            self.splits["test"] = self._sequences(data, np.arange(len(data)))

    def _load(self, *, train: bool) -> CIFAR10:
        try:
            return CIFAR10(self.data_dir, train=train, download=False)
        except RuntimeError as err:  # torchvision's MD5 check failed
            raise RuntimeError(
                f"CIFAR-10 files under {self.base_folder} do not match the official archive's "
                f"MD5 checksums (a partial download or altered files): delete the folder and "
                f"download again (download: true), or unpack {CIFAR10.url} there"
            ) from err

    def _sequences(self, data: CIFAR10, index: np.ndarray, *, hflip: bool = False) -> ImageSequences:
        return ImageSequences(
            torch.from_numpy(np.ascontiguousarray(data.data[index])),  # (N, 32, 32, 3) uint8
            torch.as_tensor(np.asarray(data.targets)[index], dtype=torch.long),
            mean=CIFAR10_MEAN,
            std=CIFAR10_STD,
            shape=(self.seq_len, self.input_size),
            hflip=hflip,
        )
