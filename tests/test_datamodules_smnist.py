"""SequentialMNISTDataModule on small MNIST files in the real IDX format, read by torchvision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules import SequentialMNISTDataModule
from datamodules.smnist import MNIST_MEAN, MNIST_STD
from tests.data_fixtures import write_mnist

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


def test_prepare_data_with_download_finds_existing_files_offline(mnist: tuple[Path, dict]) -> None:
    root, _ = mnist
    dm = SequentialMNISTDataModule(str(root), download=True)
    dm.prepare_data()  # torchvision sees the raw files and fetches nothing
    dm.setup("validate")
    assert len(dm.splits["val"]) == 6


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
