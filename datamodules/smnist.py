"""Sequential MNIST and Fashion-MNIST: 70,000 28×28 greyscale images of 10 classes, as sequences.

``dataset`` picks the images: ``mnist`` (handwritten digits, the default) or ``fashion``
(Zalando's Fashion-MNIST: clothing in MNIST's format and sizes, and much harder). Three readings of
each image (``mode``):

- ``row``: 28 steps of 28 features, one image row per step (the default);
- ``pixel``: 784 steps of 1 feature, pixel by pixel in raster order ("sequential MNIST");
- ``permuted``: 784 steps of 1 feature in one fixed random order of the pixels ("psMNIST").

Files are read by torchvision's ``MNIST`` / ``FashionMNIST`` from ``<data_dir>/MNIST/raw/`` or
``<data_dir>/FashionMNIST/raw/``: the four *un-gzipped* IDX files ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, which
``prepare_data`` downloads. Debian's ``dataset-fashion-mnist`` package ships the gzipped files in
``/usr/share/datasets/fashion-mnist/``; this lays them out for ``download: false``::

    mkdir -p data/FashionMNIST/raw && cp /usr/share/datasets/fashion-mnist/*-ubyte.gz data/FashionMNIST/raw/ \
        && gunzip -f data/FashionMNIST/raw/*-ubyte.gz

torchvision trusts the files' headers (a truncated file fails with a bare reshape error, a wrong
magic number with a bare ``AssertionError``, an out-of-range label not at all), so ``setup`` checks
each IDX header, size and the labels first and names the file and what is wrong.
"""

from __future__ import annotations

import struct
from math import prod
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torchvision.datasets import MNIST, FashionMNIST

from datamodules._common import DataFileInvalid, check_choice
from datamodules._vision import TorchvisionSequenceDataModule, check_labels

Mode = Literal["row", "pixel", "permuted"]
DatasetName = Literal["mnist", "fashion"]
DATASETS: dict[str, type[MNIST]] = {"mnist": MNIST, "fashion": FashionMNIST}
#: Mean and standard deviation of all MNIST training pixels on the [0, 1] scale: the values
#: torchvision's and PyTorch's examples use.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
#: The same for Fashion-MNIST's 60,000 training images (computed from the files: 0.28604, 0.35302).
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
_STATS = {"mnist": (MNIST_MEAN, MNIST_STD), "fashion": (FASHION_MNIST_MEAN, FASHION_MNIST_STD)}
_NAMES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}
#: Debian's ``dataset-fashion-mnist`` package puts the four gzipped files here.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
_GZIP_MAGIC = b"\x1f\x8b"


def _files(train: bool) -> tuple[str, str]:
    prefix = "train" if train else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def check_idx_file(path: Path, *, shape: tuple[int, ...]) -> int:
    """Check an unsigned-byte IDX file's header against ``shape`` and its size; return its length.

    An IDX file is a big-endian magic number ``0x0000_08_<ndim>`` (``08``: unsigned bytes), ``ndim``
    big-endian uint32 sizes, then the bytes of the array. ``shape`` is the expected shape of one
    item (``(28, 28)`` for images, ``()`` for labels); the first size, the number of items, is
    returned.

    Raises:
        DataFileInvalid (a ValueError): naming ``path`` and what is wrong: gzip-compressed, a bad magic number, other
            item sizes than ``shape``, or a size that does not match the header (truncated or
            with trailing bytes).

    Notes:
        The pixel values and labels themselves are not checked here (see ``check_labels``).
    """
    ndim = 1 + len(shape)
    header_size = 4 + 4 * ndim
    with open(path, "rb") as f:
        header = f.read(header_size)
    size = path.stat().st_size
    if header[:2] == _GZIP_MAGIC:
        raise DataFileInvalid(
            f"{path} is gzip-compressed: torchvision reads the unpacked IDX file; unpack it with "
            f"`gunzip -c {path.name}.gz > {path.name}` (or gunzip it in place and drop the .gz name)"
        )
    if len(header) < header_size:
        raise DataFileInvalid(f"{path} is truncated: {size} bytes, shorter than an IDX header of {ndim} dimensions")
    magic = struct.unpack(">I", header[:4])[0]
    expected_magic = 0x0800 + ndim
    if magic != expected_magic:
        raise DataFileInvalid(
            f"{path} has magic number {magic:#010x}, not {expected_magic:#010x} (unsigned bytes, "
            f"{ndim} dimension{'s' if ndim > 1 else ''}): it is not an MNIST "
            f"{'image' if ndim > 1 else 'label'} file, or it is corrupt"
        )
    count, *item = struct.unpack(f">{ndim}I", header[4:])
    if tuple(item) != shape:
        raise DataFileInvalid(f"{path} holds items of shape {tuple(item)}, expected {shape}")
    expected_size = header_size + count * prod(shape)
    if size != expected_size:
        what = "truncated" if size < expected_size else "longer than its header says"
        raise DataFileInvalid(
            f"{path} is {what}: {size} bytes, but its header ({count} items of shape {shape}) needs {expected_size}"
        )
    return count


class SequentialMNISTDataModule(TorchvisionSequenceDataModule):
    """MNIST or Fashion-MNIST as ``(batch, seq_len, input_size)`` float32 sequences, int64 labels.

    Splits: the 60,000 training images are split by a ``seed``-ed shuffle into train and
    validation (``val_fraction`` held out); the 10,000 test images are the test split.
    Normalisation: ``(pixel / 255 - mean) / std`` with the mean and standard deviation of all
    training pixels of the chosen data set (MNIST 0.1307, 0.3081; Fashion-MNIST 0.2860, 0.3530:
    fixed constants, so identical in every mode and split).

    Args:
        data_dir: directory holding (or receiving) ``MNIST/raw/`` or ``FashionMNIST/raw/``.
        mode: ``"row"`` (28 × 28), ``"pixel"`` (784 × 1) or ``"permuted"`` (784 × 1, permuted).
        permutation_seed: seed of the pixel permutation of ``mode="permuted"``. The permutation is
            drawn from its own ``numpy.random.default_rng(permutation_seed)``, so it is the same
            in every run and process, whatever ``seed`` or the global RNGs are.
        dataset: ``"mnist"`` (torchvision's ``MNIST``) or ``"fashion"`` (``FashionMNIST``).
        **kwargs: ``batch_size`` (128), ``num_workers`` (0), ``download`` (true), ``val_fraction``
            (0.1), ``seed`` (0): see :class:`~datamodules.TorchvisionSequenceDataModule`.
    """

    modes = {"row": (28, 28), "pixel": (784, 1), "permuted": (784, 1)}

    def __init__(
        self,
        data_dir: str = "data",
        *,
        mode: Mode = "row",
        permutation_seed: int = 0,
        dataset: DatasetName = "mnist",
        **kwargs: Any,
    ) -> None:
        if permutation_seed < 0:
            raise ValueError(f"permutation_seed={permutation_seed!r} must be >= 0")
        check_choice("dataset", dataset, list(DATASETS))
        self.permutation_seed = permutation_seed
        self.dataset = dataset
        super().__init__(data_dir, mode=mode, **kwargs)

    @property
    def dataset_name(self) -> str:
        return _NAMES[self.dataset]

    @property
    def vision_class(self) -> type[MNIST]:
        return DATASETS[self.dataset]

    @property
    def raw_folder(self) -> Path:
        return Path(self.data_dir) / self.vision_class.__name__ / "raw"

    @property
    def source(self) -> str:
        where = f"the four *-ubyte.gz files from {self.vision_class.mirrors[0]}"
        if self.dataset == "fashion":
            where += f" or from Debian's dataset-fashion-mnist package ({DEBIAN_FASHION_MNIST}/)"
        return f"{where}, gunzipped (torchvision reads the unpacked files)"

    @property
    def mean(self) -> tuple[float]:
        return (_STATS[self.dataset][0],)

    @property
    def std(self) -> tuple[float]:
        return (_STATS[self.dataset][1],)

    @property
    def permutation(self) -> Tensor | None:
        """The pixel order of ``mode="permuted"`` (a permutation of ``range(784)``), else None."""
        if self.mode != "permuted":
            return None
        order = np.random.default_rng(self.permutation_seed).permutation(784)
        return torch.as_tensor(order, dtype=torch.long)

    def required_files(self) -> list[Path]:
        return [self.raw_folder / name for train in (True, False) for name in _files(train)]

    def load_split(self, *, train: bool) -> tuple[Tensor, Tensor]:
        image_file, label_file = (self.raw_folder / name for name in _files(train))
        n_images = check_idx_file(image_file, shape=(28, 28))
        n_labels = check_idx_file(label_file, shape=())
        if n_images != n_labels:
            raise DataFileInvalid(f"{image_file} holds {n_images} images but {label_file} holds {n_labels} labels")
        data = self.vision_class(self.data_dir, train=train, download=False)
        check_labels(data.targets, self.num_classes, source=str(label_file))
        return data.data.unsqueeze(-1), data.targets.long()  # (N, 28, 28, 1) uint8, (N,)
