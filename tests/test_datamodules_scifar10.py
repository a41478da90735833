"""SequentialCIFAR10DataModule on small CIFAR-10 files in the real pickled-batch format.

torchvision's ``CIFAR10`` reads them unchanged; only its table of expected MD5s is pointed at the
small files (``accept_cifar10_files``), since they cannot match the official archive's checksums.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar

from datamodules import SequentialCIFAR10DataModule
from datamodules.scifar10 import CIFAR10_MEAN, CIFAR10_STD
from tests.data_fixtures import accept_cifar10_files, forbid_downloads, write_cifar10


@pytest.fixture
def cifar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, np.ndarray]]:
    arrays = write_cifar10(tmp_path, per_batch=10, n_test=10)
    accept_cifar10_files(tmp_path, monkeypatch)
    return tmp_path, arrays


def _normalised(hwc: np.ndarray) -> np.ndarray:
    return (hwc.astype(np.float32) / 255 - np.array(CIFAR10_MEAN, np.float32)) / np.array(CIFAR10_STD, np.float32)


def test_row_mode_batches_and_values(cifar: tuple[Path, dict]) -> None:
    root, arrays = cifar
    dm = SequentialCIFAR10DataModule(str(root), batch_size=8, download=False)
    assert (dm.seq_len, dm.input_size, dm.num_classes) == (32, 96, 10)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 32, 96) and x.dtype == torch.float32
    assert y.shape == (8,) and y.dtype == torch.int64
    dm.setup("test")
    x, y = next(iter(dm.test_dataloader()))
    expected = _normalised(arrays["test_images"][:8]).reshape(8, 32, 96)  # row h: r0 g0 b0 r1 ...
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert y.tolist() == arrays["test_labels"][:8].tolist()


def test_pixel_mode(cifar: tuple[Path, dict]) -> None:
    root, arrays = cifar
    dm = SequentialCIFAR10DataModule(str(root), batch_size=4, download=False, mode="pixel")
    assert (dm.seq_len, dm.input_size) == (1024, 3)
    dm.setup("test")
    x, _ = next(iter(dm.test_dataloader()))
    assert x.shape == (4, 1024, 3)
    np.testing.assert_allclose(x.numpy(), _normalised(arrays["test_images"][:4]).reshape(4, 1024, 3), atol=1e-5)


def test_split_sizes_and_seeded_validation_split(cifar: tuple[Path, dict]) -> None:
    root, arrays = cifar
    dm = SequentialCIFAR10DataModule(str(root), download=False, val_fraction=0.2, seed=0)
    dm.setup()
    assert (len(dm.splits["train"]), len(dm.splits["val"]), len(dm.splits["test"])) == (40, 10, 10)
    seen = np.concatenate([dm.splits["train"].images.numpy(), dm.splits["val"].images.numpy()])
    assert sorted(i.tobytes() for i in seen) == sorted(i.tobytes() for i in arrays["train_images"])
    other = SequentialCIFAR10DataModule(str(root), download=False, val_fraction=0.2, seed=1)
    other.setup("validate")
    assert not torch.equal(other.splits["val"].images, dm.splits["val"].images)


def test_hflip_flips_training_images_only(cifar: tuple[Path, dict]) -> None:
    root, _ = cifar
    dm = SequentialCIFAR10DataModule(str(root), download=False, hflip=True)
    dm.setup("fit")
    train = dm.splits["train"]
    plain = _normalised(train.images[0].numpy()).reshape(32, 96)
    mirrored = _normalised(train.images[0].numpy()[:, ::-1]).reshape(32, 96)
    torch.manual_seed(0)
    draws = [train[0][0].numpy() for _ in range(20)]
    flipped = [np.allclose(d, mirrored, atol=1e-5) for d in draws]
    assert all(f or np.allclose(d, plain, atol=1e-5) for f, d in zip(flipped, draws, strict=True))
    assert 0 < sum(flipped) < 20
    val = dm.splits["val"]
    val_plain = _normalised(val.images[0].numpy()).reshape(32, 96)
    assert all(np.allclose(val[0][0].numpy(), val_plain, atol=1e-5) for _ in range(10))


def test_prepare_data_with_download_finds_existing_files_offline(
    cifar: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = cifar
    files = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    forbid_downloads(monkeypatch, torchvision.datasets.cifar)
    dm = SequentialCIFAR10DataModule(str(root), download=True)
    dm.prepare_data()  # torchvision's integrity check passes: no fetch, no file written or changed
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == files
    dm.setup("test")
    assert len(dm.splits["test"]) == 10
    (root / "cifar-10-batches-py" / "test_batch").unlink()  # the counter-check: a missing file is fetched
    with pytest.raises(AssertionError, match=r"tried to fetch .*cifar-10-python.tar.gz"):
        dm.prepare_data()


def test_files_that_fail_the_checksum_are_reported(tmp_path: Path) -> None:
    write_cifar10(tmp_path)  # torchvision's real MD5 table: the small files do not match it
    dm = SequentialCIFAR10DataModule(str(tmp_path), download=False)
    with pytest.raises(RuntimeError, match=r"do not match the official archive's MD5 checksums"):
        dm.setup("fit")


def test_the_files_that_fail_the_checksum_are_named(cifar: tuple[Path, dict]) -> None:
    root, _ = cifar
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-10])  # a partial download
    dm = SequentialCIFAR10DataModule(str(root), download=False)
    with pytest.raises(RuntimeError, match=r"MD5 checksums \(a partial download or altered files\): data_batch_3; "):
        dm.setup("fit")


def test_labels_outside_the_ten_classes_are_reported(cifar: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = cifar
    batch = root / "cifar-10-batches-py" / "data_batch_2"
    entry = pickle.loads(batch.read_bytes())
    entry["labels"][4] = 12
    batch.write_bytes(pickle.dumps(entry, protocol=2))
    accept_cifar10_files(root, monkeypatch)  # a consistent archive, only with a bad label
    dm = SequentialCIFAR10DataModule(str(root), download=False)
    dm.setup("test")  # the test batch is fine
    with pytest.raises(
        ValueError,
        match=r"cifar-10-batches-py/\{data_batch_1,.*,data_batch_5\}: label 12 of sample 14 is not one of the "
        r"10 classes 0..9",
    ):
        dm.setup("fit")


def test_missing_files_say_where_and_how(tmp_path: Path) -> None:
    dm = SequentialCIFAR10DataModule(str(tmp_path), download=False)
    with pytest.raises(
        FileNotFoundError,
        match=r"CIFAR-10 not found under .*cifar-10-batches-py/data_batch_1.* and \d+ more.*download: true.*"
        r"cifar-10-python.tar.gz",
    ):
        dm.setup("fit")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": -2}, r"batch_size=-2 must be positive"),
        ({"num_workers": -1}, r"num_workers=-1 must be >= 0"),
        ({"mode": "permuted"}, r"mode='permuted' is not one of \['row', 'pixel'\]"),
        ({"val_fraction": 1.5}, r"val_fraction=1.5 must lie in \(0, 1\)"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SequentialCIFAR10DataModule(**kwargs)
