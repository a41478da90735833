"""The embedded digits: splits, standardisation from the training split only, shuffling, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from datamodules import DigitsDataModule
from datamodules._common import seeded_partition, seeded_split


def test_splits_shapes_and_training_statistics() -> None:
    data = DigitsDataModule(batch_size=32, val_fraction=0.2, test_fraction=0.1, seed=3)
    data.setup("fit")
    sizes = {k: len(v) for k, v in data.splits.items()}
    assert sizes == {"val": 359, "test": 180, "train": 1258} and sum(sizes.values()) == 1797
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (32, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    train_x = data.splits["train"].tensors[0].reshape(-1, 64)
    varying = train_x.std(dim=0) > 0
    torch.testing.assert_close(train_x.mean(dim=0), torch.zeros(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(train_x.std(dim=0, unbiased=False)[varying], torch.ones(int(varying.sum())))
    assert set(data.splits["test"].tensors[1].tolist()) == set(range(10))


def test_same_seed_same_split_and_epoch_seeded_shuffle() -> None:
    a, b = DigitsDataModule(seed=1), DigitsDataModule(seed=1)
    a.setup(), b.setup()
    torch.testing.assert_close(a.splits["val"].tensors[0], b.splits["val"].tensors[0])
    sampler = a.train_dataloader().sampler
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_split_is_the_one_the_published_quickstart_used() -> None:
    """The shared ``seeded_partition`` gives the digits the split (and training order) they had
    before it existed: val = the first 15 % of one PCG64 shuffle, test the next 15 %, train the rest."""
    data = DigitsDataModule(seed=0)
    data.setup()
    _, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(labels))
    for split, index in {"val": order[:270], "test": order[270:540], "train": order[540:]}.items():
        assert data.splits[split].tensors[1].tolist() == labels[index].tolist()


def test_seeded_partition_and_split_agree_and_name_the_fraction() -> None:
    parts = seeded_partition(50, {"val": 0.2}, seed=4)
    train, val = seeded_split(50, 0.2, seed=4)
    assert np.array_equal(np.sort(parts["val"]), val) and np.array_equal(np.sort(parts["train"]), train)
    with pytest.raises(ValueError, match=r"test_fraction=0.001 of 50 samples leaves an empty split"):
        seeded_partition(50, {"val": 0.2, "test": 0.001}, seed=0)
    with pytest.raises(ValueError, match=r"val_fraction \+ test_fraction of 50 digits leaves no training samples"):
        seeded_partition(50, {"val": 0.5, "test": 0.5}, seed=0, pool="digits")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch_size=0 must be positive"),
        ({"num_workers": -1}, "num_workers=-1 must be >= 0"),
        ({"val_fraction": 0.0}, r"val_fraction=0.0 must lie in \(0, 1\)"),
        ({"test_fraction": 1.2}, r"test_fraction=1.2 must lie in \(0, 1\)"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "leaves no training data"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DigitsDataModule(**kwargs)
