"""CIFAR-10 as sequences: 60,000 32×32 colour images of 10 classes, read as sequences.

Two readings of each image (``mode``):

- ``row``: 32 steps of 96 features; step ``h`` is image row ``h``, pixel by pixel, each pixel's
  red, green and blue value (``r0, g0, b0, r1, ...``) — the default;
- ``pixel``: 1024 steps of 3 features (one pixel's RGB per step), in raster order.

Files are read by ``torchvision.datasets.CIFAR10`` from ``<data_dir>/cifar-10-batches-py/``
(the pickled ``data_batch_1`` … ``data_batch_5``, ``test_batch`` and ``batches.meta`` of the
"python version" archive), which ``prepare_data`` downloads. torchvision checks each file's MD5
against the official archive's; when one fails, ``setup`` names the files that do, and it checks
the labels' range (cheap) before training on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_integrity

from datamodules._common import DataChecksumMismatch
from datamodules._vision import TorchvisionSequenceDataModule, check_labels

Mode = Literal["row", "pixel"]
#: Per-channel (R, G, B) mean and standard deviation of the 50,000 training images on the
#: [0, 1] scale, over all pixels. (The also-circulating std (0.2023, 0.1994, 0.2010) is the std of
#: per-image means, not of pixels.)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class SequentialCIFAR10DataModule(TorchvisionSequenceDataModule):
    """CIFAR-10 as ``(batch, seq_len, input_size)`` float32 sequences with int64 labels.

    Splits: the 50,000 training images are split by a ``seed``-ed shuffle into train and
    validation (``val_fraction`` held out); the 10,000 test images are the test split.
    Normalisation: each channel ``c`` becomes ``(value / 255 - mean[c]) / std[c]`` with the
    training-set statistics ``mean = (0.4914, 0.4822, 0.4465)``, ``std = (0.2470, 0.2435,
    0.2616)`` (fixed constants, identical in every split).

    Args:
        data_dir: directory holding (or receiving) ``cifar-10-batches-py/``.
        mode: ``"row"`` (32 × 96) or ``"pixel"`` (1024 × 3).
        hflip: flip training images left-right with probability 1/2 (never validation or test).
        **kwargs: ``batch_size`` (128), ``num_workers`` (0), ``download`` (true), ``val_fraction``
            (0.1), ``seed`` (0): see :class:`~datamodules.TorchvisionSequenceDataModule`.
    """

    modes = {"row": (32, 96), "pixel": (1024, 3)}
    dataset_name = "CIFAR-10"
    vision_class = CIFAR10
    source = CIFAR10.url
    mean = CIFAR10_MEAN
    std = CIFAR10_STD

    def __init__(self, data_dir: str = "data", *, mode: Mode = "row", hflip: bool = False, **kwargs: Any) -> None:
        self.hflip = hflip
        super().__init__(data_dir, mode=mode, **kwargs)

    @property
    def base_folder(self) -> Path:
        return Path(self.data_dir) / CIFAR10.base_folder

    @staticmethod
    def _checksums() -> list[tuple[str, str]]:
        """``(file name, MD5)`` of every file torchvision checks, read from its class at call time."""
        return [(name, md5) for name, md5 in CIFAR10.train_list + CIFAR10.test_list] + [
            (CIFAR10.meta["filename"], CIFAR10.meta["md5"])
        ]

    def required_files(self) -> list[Path]:
        return [self.base_folder / name for name, _ in self._checksums()]

    def load_split(self, *, train: bool) -> tuple[Tensor, Tensor]:
        try:
            data = CIFAR10(self.data_dir, train=train, download=False)
        except RuntimeError as err:  # torchvision's MD5 check failed; say which files failed it
            bad = [name for name, md5 in self._checksums() if not check_integrity(str(self.base_folder / name), md5)]
            raise DataChecksumMismatch(
                f"CIFAR-10 files under {self.base_folder} do not match the official archive's "
                f"MD5 checksums (a partial download or altered files): {', '.join(bad) or 'none now'}; "
                f"delete the folder and download again (download: true), or unpack {CIFAR10.url} there"
            ) from err
        labels = torch.as_tensor(data.targets, dtype=torch.long)
        batches = [name for name, _ in (CIFAR10.train_list if train else CIFAR10.test_list)]
        check_labels(labels, self.num_classes, source=f"{self.base_folder}/{{{','.join(batches)}}}")
        return torch.from_numpy(np.asarray(data.data)), labels  # (N, 32, 32, 3) uint8, a strided view
