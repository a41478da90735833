"""The shared half of the image benchmarks: a torchvision data set read as sequences.

Sequential MNIST / Fashion-MNIST (``smnist.py``) and sequential CIFAR-10 (``scifar10.py``) differ
only in which torchvision class reads which files, how those files are checked, the per-channel
statistics and the readings (``mode``) of an image. Everything else — the argument checks, the
missing-file message, the seeded validation split, the normalised sequences, the loaders — lives
here once, so a new torchvision benchmark is a subclass that fills in the hooks of
:class:`TorchvisionSequenceDataModule`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor
from torchvision.datasets import VisionDataset

from datamodules._common import (
    GatherDataset,
    SplitsDataModule,
    check_choice,
    check_val_fraction,
    download_or_explain,
    require_files,
    seeded_split,
)


def check_labels(labels: Tensor, num_classes: int, *, source: str) -> None:
    """Raise ``ValueError`` naming ``source`` when a label lies outside ``0 … num_classes - 1``.

    torchvision reads whatever byte a label file holds, so a corrupt file would otherwise train
    on a class the model has no output for (and fail deep inside the loss, or not at all).
    """
    bad = ((labels < 0) | (labels >= num_classes)).nonzero()
    if len(bad):
        index = int(bad[0, 0])
        raise ValueError(
            f"{source}: label {int(labels[index])} of sample {index} is not one of the {num_classes} "
            f"classes 0..{num_classes - 1} ({len(bad)} such labels); the file is corrupt or not "
            f"this data set's"
        )


class ImageSequences(GatherDataset):
    """uint8 images ``(N, H, W, C)`` served as normalised float32 sequences of shape ``shape``.

    A batch is one gather of the uint8 images, normalised as a whole (the split stays uint8 in
    memory: a quarter of its float32 size). An image is read in HWC order, row by row and within a
    row pixel by pixel (so a row of an RGB image is ``r0, g0, b0, r1, g1, b1, ...``); each channel
    ``c`` becomes ``(value / 255 - mean[c]) / std[c]``.

    Args:
        images: uint8 tensor ``(N, H, W, C)``.
        labels: int64 tensor ``(N,)``.
        mean, std: per-channel statistics on the [0, 1] scale.
        shape: ``(T, F)`` with ``T * F == H * W * C``.
        permutation: optional index tensor of length ``H * W * C`` applied to the flattened image
            before it is cut into steps (for the permuted benchmarks).
        hflip: flip each image left-right with probability 1/2 (training augmentation; one draw per
            image of the batch from torch's RNG, which Lightning seeds and DataLoader seeds per
            worker).
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

    def gather(self, index: Tensor) -> tuple[Tensor, Tensor]:
        images = self.images[index]  # (n, H, W, C) uint8
        if self.hflip:
            flip = (torch.rand(len(index)) < 0.5).view(-1, 1, 1, 1)
            images = torch.where(flip, images.flip(2), images)
        x = images.float().mul_(self.scale).sub_(self.shift).reshape(len(index), -1)  # in place: one buffer
        if self.permutation is not None:
            x = x[:, self.permutation]
        return x.reshape(len(index), *self.shape), self.labels[index]


class TorchvisionSequenceDataModule(SplitsDataModule, ABC):
    """Base of the data modules that read an image data set with torchvision and serve it as
    ``(batch, seq_len, input_size)`` float32 sequences with int64 labels.

    Splits: the data set's training images are split by a ``seed``-ed shuffle into train and
    validation (``val_fraction`` held out); its test images are the test split. ``prepare_data``
    lets torchvision download the data set when ``download`` is true; ``setup`` first checks that
    every file is there (:func:`~datamodules._common.require_files`), then reads each split once.

    A subclass's ``__init__`` takes its own arguments (with ``mode`` as a ``Literal`` of its
    readings, so the CLI checks it) and passes the rest on by ``**kwargs``; LightningCLI
    (jsonargparse) follows ``**kwargs`` into this signature, so every argument is still a config
    key. It sets these attributes (plain class attributes, or properties where they depend on an
    argument):

    - ``modes``: reading name → ``(seq_len, input_size)``;
    - ``dataset_name``: the data set's name in messages, e.g. ``"Fashion-MNIST"``;
    - ``vision_class``: the torchvision class; ``prepare_data`` calls
      ``vision_class(data_dir, train=False, download=True)``;
    - ``source``: where to fetch the files by hand, for the missing-file message;
    - ``mean`` / ``std``: per-channel statistics of the training pixels on the [0, 1] scale;
    - optionally ``permutation`` (a fixed order of the flattened image) and ``hflip`` (training
      flips);

    and implements the two abstract methods below.

    Args:
        data_dir: directory the data set is read from (and downloaded to).
        batch_size: samples per batch.
        num_workers: DataLoader workers.
        download: let ``prepare_data`` download the data set when it is missing (as torchvision does).
        mode: how an image is read as a sequence: one of the subclass's ``modes``.
        val_fraction: share of the training images held out for validation.
        seed: seed of the train/validation split and of the per-epoch training shuffle
            (which depends on ``(seed, epoch)`` only, so a resumed run sees the same batches).
    """

    num_classes: ClassVar[int] = 10
    modes: ClassVar[Mapping[str, tuple[int, int]]]
    dataset_name: str
    vision_class: type[VisionDataset]
    source: str
    mean: Sequence[float]
    std: Sequence[float]
    permutation: Tensor | None = None
    hflip: bool = False

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        download: bool = True,
        mode: str = "row",
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        check_choice("mode", mode, list(self.modes))
        check_val_fraction(val_fraction)
        super().__init__(data_dir=data_dir, batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters()  # with the subclass's own arguments: Lightning walks the __init__ chain
        self.download = download
        self.mode = mode
        self.val_fraction = val_fraction

    # -- what a subclass implements ------------------------------------------------------------
    @abstractmethod
    def required_files(self) -> list[Path]:
        """Every file ``setup`` reads; checked for existence before torchvision opens any."""

    @abstractmethod
    def load_split(self, *, train: bool) -> tuple[Tensor, Tensor]:
        """``(images, labels)`` of the training or test set: uint8 ``(N, H, W, C)``, int64 ``(N,)``.

        Raise an error naming the file when a cheap check finds it corrupt.
        """

    # -- shared --------------------------------------------------------------------------------
    @property
    def seq_len(self) -> int:
        return self.modes[self.mode][0]

    @property
    def input_size(self) -> int:
        return self.modes[self.mode][1]

    def prepare_data(self) -> None:
        if self.download:  # torchvision fetches (and checks) the whole data set, both splits
            download_or_explain(
                lambda: self.vision_class(self.data_dir, train=False, download=True), dataset=self.dataset_name,
                root=Path(self.data_dir), source=self.source, expected=self.required_files(),
            )  # fmt: skip

    def setup(self, stage: str | None = None) -> None:
        require_files(
            self.required_files(),
            dataset=self.dataset_name,
            root=Path(self.data_dir),
            download=self.download,
            source=self.source,
        )
        if stage in (None, "fit", "validate") and "train" not in self.splits:
            images, labels = self.load_split(train=True)
            train, val = seeded_split(len(labels), self.val_fraction, self.seed)
            self.splits["train"] = self._sequences(images, labels, train, hflip=self.hflip)
            self.splits["val"] = self._sequences(images, labels, val)
        if stage in (None, "test", "predict") and "test" not in self.splits:
            images, labels = self.load_split(train=False)
            self.splits["test"] = self._sequences(images, labels, np.arange(len(labels)))

    def _sequences(self, images: Tensor, labels: Tensor, index: np.ndarray, *, hflip: bool = False) -> ImageSequences:
        index_t = torch.as_tensor(index, dtype=torch.long)
        return ImageSequences(
            images[index_t],  # a contiguous (n, H, W, C) copy of the split
            labels[index_t],
            mean=self.mean,
            std=self.std,
            shape=(self.seq_len, self.input_size),
            permutation=self.permutation,
            hflip=hflip,
        )
