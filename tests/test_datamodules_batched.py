"""The batched in-memory data path: a batch is one gather of the sampler's indices, reproducible
for a seed, and Lightning's DDP sampler replacement shards it (checked without starting processes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
from lightning.pytorch.utilities.data import _update_dataloader
from torch.utils.data import BatchSampler

from datamodules import DigitsDataModule, SequentialCIFAR10DataModule, SequentialMNISTDataModule
from datamodules._common import GatherDataset, TensorBatches, keep_batch
from datamodules.smnist import MNIST_MEAN, MNIST_STD
from tests.data_fixtures import accept_cifar10_files, write_cifar10, write_mnist


def _no_single_samples(monkeypatch: pytest.MonkeyPatch, dataset: GatherDataset) -> None:
    def refuse(self: object, index: int) -> None:
        raise AssertionError("the loader fetched a single sample")

    monkeypatch.setattr(type(dataset), "__getitem__", refuse)


def test_a_training_batch_is_one_gather_of_the_sampler_indices(monkeypatch: pytest.MonkeyPatch) -> None:
    dm = DigitsDataModule(batch_size=50, seed=3)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert loader.collate_fn is keep_batch
    train = dm.splits["train"]
    _no_single_samples(monkeypatch, train)
    for epoch in (0, 1):
        loader.sampler.set_epoch(epoch)
        order = list(loader.sampler)
        batches = list(loader)
        assert len(batches) == len(loader) == -(-len(train) // 50)  # the last, short batch is kept
        for k, (x, y) in enumerate(batches):
            index = torch.tensor(order[k * 50 : (k + 1) * 50])
            assert torch.equal(x, train.tensors[0][index]) and torch.equal(y, train.tensors[1][index])


def test_image_batches_hold_the_normalised_file_images_in_sampler_order(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, n_train=60, n_test=20)
    dm = SequentialMNISTDataModule(str(tmp_path), batch_size=16, download=False, val_fraction=0.1, seed=1)
    dm.setup("fit")
    loader = dm.train_dataloader()
    order = list(loader.sampler)
    x, y = next(iter(loader))
    images = dm.splits["train"].images[torch.tensor(order[:16]), ..., 0].numpy()
    expected = (images.astype(np.float32) / 255 - MNIST_MEAN) / MNIST_STD
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert y.tolist() == dm.splits["train"].labels[torch.tensor(order[:16])].tolist()
    assert set(y.tolist()) <= set(arrays["train_labels"].tolist())


def test_a_sample_is_its_row_of_the_batch_bit_for_bit(tmp_path: Path) -> None:
    write_mnist(tmp_path, n_train=60, n_test=20)
    dm = SequentialMNISTDataModule(str(tmp_path), download=False, mode="permuted")
    dm.setup("test")
    test = dm.splits["test"]
    x, y = test.__getitems__([7, 2, 19])
    for row, index in enumerate([7, 2, 19]):
        sample, label = test[index]
        assert torch.equal(sample, x[row]) and int(label) == int(y[row])
    with pytest.raises(IndexError, match="index 20 is out of range for 20 samples"):
        test[20]


def test_cifar_batches_with_flips_are_reproducible_for_a_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar10(tmp_path, per_batch=10, n_test=10)
    accept_cifar10_files(tmp_path, monkeypatch)

    def epoch_batches(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        dm = SequentialCIFAR10DataModule(str(tmp_path), batch_size=8, download=False, hflip=True, val_fraction=0.2)
        dm.setup("fit")
        torch.manual_seed(seed)  # what seed_everything does; flips are drawn from torch's RNG
        return list(dm.train_dataloader())

    first, again, other = epoch_batches(0), epoch_batches(0), epoch_batches(1)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(first, other, strict=True))  # other flips
    assert all(torch.equal(a[1], b[1]) for a, b in zip(first, other, strict=True))  # the same shuffle


def test_flips_are_drawn_per_image_of_a_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar10(tmp_path, per_batch=10, n_test=10)
    accept_cifar10_files(tmp_path, monkeypatch)
    dm = SequentialCIFAR10DataModule(str(tmp_path), download=False, hflip=True, val_fraction=0.2)
    dm.setup("fit")
    train = dm.splits["train"]
    index = list(range(len(train)))
    torch.manual_seed(0)
    x, _ = train.__getitems__(index)
    plain = SequentialCIFAR10DataModule(str(tmp_path), download=False, val_fraction=0.2)
    plain.setup("fit")
    unflipped, _ = plain.splits["train"].__getitems__(index)
    flipped = unflipped.reshape(-1, 32, 32, 3).flip(2).reshape(-1, 32, 96)
    is_flipped = [torch.equal(x[i], flipped[i]) for i in index]
    assert all(f or torch.equal(x[i], unflipped[i]) for i, f in enumerate(is_flipped))
    assert 0 < sum(is_flipped) < len(index)


@pytest.mark.parametrize("shuffle", [True, False])
def test_ddp_sampler_replacement_shards_the_batches(monkeypatch: pytest.MonkeyPatch, shuffle: bool) -> None:
    """What Lightning does to a loader under DDP (``_update_dataloader`` with a distributed
    sampler), done by hand for two ranks: every sample is served once, in whole gathered batches."""
    dm = DigitsDataModule(batch_size=32, seed=0)
    dm.setup("fit")
    loader = dm.train_dataloader() if shuffle else dm.val_dataloader()
    split = dm.splits["train" if shuffle else "val"]
    _no_single_samples(monkeypatch, split)
    seen = []
    for rank in (0, 1):
        sampler = DistributedSamplerWrapper(loader.sampler, num_replicas=2, rank=rank, shuffle=shuffle, seed=0)
        sharded = _update_dataloader(loader, sampler)
        assert sharded.collate_fn is keep_batch and isinstance(sharded.batch_sampler, BatchSampler)
        sharded.sampler.set_epoch(1)
        order = list(sharded.sampler)
        for k, (x, y) in enumerate(sharded):
            index = torch.tensor(order[k * 32 : (k + 1) * 32])
            assert torch.equal(x, split.tensors[0][index]) and torch.equal(y, split.tensors[1][index])
        seen += order
    # DistributedSampler pads the shorter rank with repeats so both take as many steps
    assert sorted(set(seen)) == list(range(len(split))) and len(seen) - len(split) <= 1


def test_tensor_batches_need_rows_of_equal_number() -> None:
    with pytest.raises(ValueError, match=r"same, non-zero number of rows, got \[3, 2\]"):
        TensorBatches(torch.zeros(3), torch.zeros(2))


@pytest.mark.slow  # starts loader worker processes
def test_workers_serve_the_same_batches(tmp_path: Path) -> None:
    write_mnist(tmp_path, n_train=60, n_test=20)

    def batches(workers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        dm = SequentialMNISTDataModule(str(tmp_path), batch_size=16, download=False, num_workers=workers)
        dm.setup("fit")
        return list(dm.train_dataloader())

    for a, b in zip(batches(0), batches(2), strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
