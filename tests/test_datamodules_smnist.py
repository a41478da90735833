"""SequentialMNISTDataModule on small MNIST / Fashion-MNIST files in the real IDX format, read by
torchvision; corrupt files are reported by name before torchvision reads them."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision.datasets.mnist
from torchvision.datasets import KMNIST

from datamodules import SequentialMNISTDataModule, TorchvisionSequenceDataModule
from datamodules.smnist import FASHION_MNIST_MEAN, FASHION_MNIST_STD, MNIST_MEAN, MNIST_STD, check_idx_file
from tests.data_fixtures import forbid_downloads, write_fashion_mnist, write_idx, write_mnist

#: The first pixels of the psMNIST order for permutation_seed=0: numpy's PCG64 streams are
#: stable across versions and platforms, so this holds in every run and process.
PERMUTATION_SEED0_HEAD = [318, 2, 606, 446, 758, 13, 98, 539]


@pytest.fixture
def mnist(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    return tmp_path, write_mnist(tmp_path, n_train=60, n_test=20)


def _normalised(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / 255 - MNIST_MEAN) / MNIST_STD


def test_row_mode_batches_and_values(mnist: tuple[Path, dict]) -> None:
    root, arrays = mnist
    dm = SequentialMNISTDataModule(str(root), batch_size=8, download=False)
    assert (dm.seq_len, dm.input_size, dm.num_classes) == (28, 28, 10)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 28, 28) and x.dtype == torch.float32
    assert y.shape == (8,) and y.dtype == torch.int64
    dm.setup("test")
    x, y = next(iter(dm.test_dataloader()))
    np.testing.assert_allclose(x.numpy(), _normalised(arrays["test_images"][:8]), rtol=1e-5, atol=1e-5)
    assert y.tolist() == arrays["test_labels"][:8].tolist()


def test_pixel_mode_reads_in_raster_order(mnist: tuple[Path, dict]) -> None:
    root, arrays = mnist
    dm = SequentialMNISTDataModule(str(root), batch_size=4, download=False, mode="pixel")
    assert (dm.seq_len, dm.input_size) == (784, 1)
    dm.setup("test")
    x, _ = next(iter(dm.test_dataloader()))
    assert x.shape == (4, 784, 1) and x.dtype == torch.float32
    expected = _normalised(arrays["test_images"][:4]).reshape(4, 784, 1)
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_permuted_mode_uses_one_fixed_permutation(mnist: tuple[Path, dict]) -> None:
    root, arrays = mnist
    dm = SequentialMNISTDataModule(str(root), batch_size=4, download=False, mode="permuted", seed=3)
    permutation = dm.permutation
    assert sorted(permutation.tolist()) == list(range(784))
    assert permutation[:8].tolist() == PERMUTATION_SEED0_HEAD  # the same in every process and run
    torch.manual_seed(123)
    np.random.seed(123)  # the global RNGs do not matter ...
    again = SequentialMNISTDataModule(str(root), download=False, mode="permuted", seed=7).permutation
    assert torch.equal(permutation, again)  # ... nor does the split seed
    other = SequentialMNISTDataModule(str(root), download=False, mode="permuted", permutation_seed=1)
    assert not torch.equal(permutation, other.permutation)
    assert SequentialMNISTDataModule(str(root), download=False).permutation is None

    dm.setup("test")
    x, _ = next(iter(dm.test_dataloader()))
    assert x.shape == (4, 784, 1)
    raster = _normalised(arrays["test_images"][:4]).reshape(4, 784)
    np.testing.assert_allclose(x[..., 0].numpy(), raster[:, permutation.numpy()], rtol=1e-5, atol=1e-5)


def test_split_sizes_and_seeded_validation_split(mnist: tuple[Path, dict]) -> None:
    root, arrays = mnist

    def splits(seed: int) -> SequentialMNISTDataModule:
        dm = SequentialMNISTDataModule(str(root), download=False, val_fraction=0.1, seed=seed)
        dm.setup()
        return dm

    dm = splits(0)
    assert (len(dm.splits["train"]), len(dm.splits["val"]), len(dm.splits["test"])) == (54, 6, 20)
    val_images = dm.splits["val"].images[..., 0].numpy()
    train_images = dm.splits["train"].images[..., 0].numpy()
    written = {img.tobytes() for img in arrays["train_images"]}
    assert {img.tobytes() for img in np.concatenate([train_images, val_images])} == written
    assert torch.equal(splits(0).splits["val"].images, dm.splits["val"].images)
    assert not torch.equal(splits(1).splits["val"].images, dm.splits["val"].images)


def test_training_shuffle_depends_on_seed_and_epoch_only(mnist: tuple[Path, dict]) -> None:
    root, _ = mnist
    dm = SequentialMNISTDataModule(str(root), batch_size=54, download=False)
    dm.setup("fit")
    loader = dm.train_dataloader()
    first = next(iter(loader))[1]
    torch.manual_seed(99)
    assert torch.equal(next(iter(dm.train_dataloader()))[1], first)  # global RNG does not matter
    loader.sampler.set_epoch(1)
    assert not torch.equal(next(iter(loader))[1], first)


@pytest.mark.parametrize(("dataset", "write"), [("mnist", write_mnist), ("fashion", write_fashion_mnist)])
def test_prepare_data_with_download_finds_existing_files_offline(
    dataset: str, write: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path)
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    forbid_downloads(monkeypatch, torchvision.datasets.mnist)
    dm = SequentialMNISTDataModule(str(tmp_path), download=True, dataset=dataset)
    dm.prepare_data()  # torchvision sees the raw files: no fetch, and no file written or changed
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == files
    dm.setup("validate")
    assert len(dm.splits["val"]) == 6


def test_prepare_data_without_files_fetches_from_the_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The counter-check of the test above: with a file missing, prepare_data does fetch.
    forbid_downloads(monkeypatch, torchvision.datasets.mnist)
    with pytest.raises(AssertionError, match=r"tried to fetch .*fashion.*train-images-idx3-ubyte.gz"):
        SequentialMNISTDataModule(str(tmp_path), download=True, dataset="fashion").prepare_data()


def test_fashion_reads_its_own_folder_and_statistics(tmp_path: Path) -> None:
    digits = write_mnist(tmp_path, seed=0)
    fashion = write_fashion_mnist(tmp_path, n_train=40, n_test=10, seed=1)
    dm = SequentialMNISTDataModule(str(tmp_path), batch_size=10, download=False, dataset="fashion")
    assert (dm.seq_len, dm.input_size, dm.num_classes, dm.dataset_name) == (28, 28, 10, "Fashion-MNIST")
    dm.setup()
    assert (len(dm.splits["train"]), len(dm.splits["val"]), len(dm.splits["test"])) == (36, 4, 10)
    x, y = next(iter(dm.test_dataloader()))
    expected = (fashion["test_images"].astype(np.float32) / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert y.tolist() == fashion["test_labels"].tolist()
    plain = SequentialMNISTDataModule(str(tmp_path), batch_size=10, download=False)
    plain.setup("test")  # the MNIST files beside it are untouched by the choice
    np.testing.assert_allclose(
        next(iter(plain.test_dataloader()))[0].numpy(), _normalised(digits["test_images"][:10]), atol=1e-5
    )


def test_missing_fashion_files_point_to_debian_and_gunzip(tmp_path: Path) -> None:
    write_mnist(tmp_path)  # MNIST is there, Fashion-MNIST is not
    dm = SequentialMNISTDataModule(str(tmp_path), download=False, dataset="fashion")
    with pytest.raises(
        FileNotFoundError,
        match=r"Fashion-MNIST not found under .*FashionMNIST/raw/train-images-idx3-ubyte.*"
        r"dataset-fashion-mnist package \(/usr/share/datasets/fashion-mnist/\), gunzipped",
    ):
        dm.setup("fit")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _append(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\0")


def _magic(value: int) -> Callable[[Path], None]:
    def corrupt(path: Path) -> None:
        path.write_bytes(struct.pack(">I", value) + path.read_bytes()[4:])

    return corrupt


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _gzip(path: Path) -> None:
    path.write_bytes(gzip.compress(path.read_bytes()))


def _label(value: int) -> Callable[[Path], None]:
    def corrupt(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[8 + 5] = value  # sample 5, after the 8-byte header
        path.write_bytes(bytes(data))

    return corrupt


def _images_of(height: int, width: int) -> Callable[[Path], None]:
    def corrupt(path: Path) -> None:
        write_idx(path, np.zeros((60, height, width), np.uint8))

    return corrupt


def _fewer_labels(path: Path) -> None:
    write_idx(path, np.zeros(59, np.uint8))


@pytest.mark.parametrize(
    ("name", "corrupt", "message"),
    [
        ("train-images-idx3-ubyte", _truncate, r"train-images-idx3-ubyte is truncated: 46956 bytes, but its "
         r"header \(60 items of shape \(28, 28\)\) needs 47056"),
        ("train-labels-idx1-ubyte", _empty, r"train-labels-idx1-ubyte is truncated: 0 bytes, shorter than an IDX "
         r"header of 1 dimensions"),
        ("train-images-idx3-ubyte", _append, r"train-images-idx3-ubyte is longer than its header says: 47057 bytes"),
        ("train-images-idx3-ubyte", _magic(0x0801), r"train-images-idx3-ubyte has magic number 0x00000801, not "
         r"0x00000803 \(unsigned bytes, 3 dimensions\): it is not an MNIST image file"),
        ("train-labels-idx1-ubyte", _magic(0x0D01), r"train-labels-idx1-ubyte has magic number 0x00000d01, not "
         r"0x00000801 .*not an MNIST label file"),
        ("train-images-idx3-ubyte", _gzip, r"train-images-idx3-ubyte is gzip-compressed: torchvision reads the "
         r"unpacked IDX file"),
        ("train-images-idx3-ubyte", _images_of(32, 32), r"train-images-idx3-ubyte holds items of shape \(32, 32\), "
         r"expected \(28, 28\)"),
        ("train-labels-idx1-ubyte", _fewer_labels, r"train-images-idx3-ubyte holds 60 images but .*"
         r"train-labels-idx1-ubyte holds 59 labels"),
        ("train-labels-idx1-ubyte", _label(12), r"train-labels-idx1-ubyte: label 12 of sample 5 is not one of the "
         r"10 classes 0..9 \(1 such labels\)"),
    ],
)  # fmt: skip
def test_corrupt_files_are_named_with_what_is_wrong(
    name: str, corrupt: Callable[[Path], None], message: str, mnist: tuple[Path, dict]
) -> None:
    root, _ = mnist
    corrupt(root / "MNIST" / "raw" / name)
    dm = SequentialMNISTDataModule(str(root), download=False)
    dm.setup("test")  # the test files are intact
    with pytest.raises(ValueError, match=message):
        dm.setup("fit")


def test_check_idx_file_returns_the_number_of_items(tmp_path: Path) -> None:
    write_idx(tmp_path / "images", np.zeros((7, 28, 28), np.uint8))
    write_idx(tmp_path / "labels", np.zeros(7, np.uint8))
    assert check_idx_file(tmp_path / "images", shape=(28, 28)) == 7
    assert check_idx_file(tmp_path / "labels", shape=()) == 7


def test_a_new_torchvision_benchmark_is_a_subclass_with_hooks(tmp_path: Path) -> None:
    """The base's hooks are all a new data set needs: here Kuzushiji-MNIST, in a test's own code."""
    arrays = write_mnist(tmp_path, folder="KMNIST")

    class SequentialKMNIST(TorchvisionSequenceDataModule):
        modes = {"row": (28, 28)}
        dataset_name, vision_class, source, mean, std = "KMNIST", KMNIST, "codh.rois.ac.jp", (0.5,), (0.25,)

        def __init__(self, data_dir: str = "data", **kwargs: Any) -> None:  # the rest: the base's arguments
            super().__init__(data_dir, **kwargs)

        def required_files(self) -> list[Path]:
            return [Path(self.data_dir) / "KMNIST" / "raw" / "t10k-images-idx3-ubyte"]

        def load_split(self, *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
            data = KMNIST(self.data_dir, train=train)
            return data.data.unsqueeze(-1), data.targets

    dm = SequentialKMNIST(str(tmp_path), batch_size=5, download=False, val_fraction=0.5)
    assert dm.hparams["val_fraction"] == 0.5 and (dm.seq_len, dm.input_size) == (28, 28)
    dm.setup()
    assert (len(dm.splits["train"]), len(dm.splits["val"]), len(dm.splits["test"])) == (30, 30, 20)
    x, _ = next(iter(dm.test_dataloader()))
    np.testing.assert_allclose(x.numpy(), (arrays["test_images"][:5] / 255 - 0.5) / 0.25, atol=1e-5)

    class Incomplete(TorchvisionSequenceDataModule):
        modes = {"row": (28, 28)}

    with pytest.raises(TypeError, match=r"abstract .*load_split, required_files"):
        Incomplete(str(tmp_path))


def test_missing_files_say_where_and_how(tmp_path: Path) -> None:
    dm = SequentialMNISTDataModule(str(tmp_path), download=False)
    dm.prepare_data()  # download=False: nothing to do
    with pytest.raises(FileNotFoundError, match=r"MNIST not found under .*MNIST/raw/train-images-idx3-ubyte.*"
                       r"set `download: true` \(CLI: --data.init_args.download true\)"):  # fmt: skip
        dm.setup("fit")
    dm = SequentialMNISTDataModule(str(tmp_path), download=True)
    with pytest.raises(FileNotFoundError, match=r"call dm.prepare_data\(\) first"):
        dm.setup("fit")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, r"batch_size=0 must be positive"),
        ({"num_workers": -1}, r"num_workers=-1 must be >= 0"),
        ({"mode": "column"}, r"mode='column' is not one of \['row', 'pixel', 'permuted'\]"),
        ({"val_fraction": 0.0}, r"val_fraction=0.0 must lie in \(0, 1\)"),
        ({"val_fraction": 1.0}, r"val_fraction=1.0 must lie in \(0, 1\)"),
        ({"permutation_seed": -1}, r"permutation_seed=-1 must be >= 0"),
        ({"dataset": "kmnist"}, r"dataset='kmnist' is not one of \['mnist', 'fashion'\]"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SequentialMNISTDataModule(**kwargs)


def test_validation_split_too_small_for_the_data(mnist: tuple[Path, dict]) -> None:
    root, _ = mnist
    dm = SequentialMNISTDataModule(str(root), download=False, val_fraction=0.001)
    with pytest.raises(ValueError, match=r"val_fraction=0.001 of 60 training samples leaves an empty split"):
        dm.setup("fit")
