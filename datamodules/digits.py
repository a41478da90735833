"""scikit-learn's bundled handwritten digits read as sequences: the quickstart's data set.

Real data (1,797 greyscale 8×8 images of the digits 0–9, UCI "Optical Recognition of Handwritten
Digits") that ships inside scikit-learn, so the quickstart runs where nothing can be downloaded.
Each image is read row by row: 8 time steps of 8 features.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from datamodules._common import SplitsDataModule, TensorBatches, check_fraction, seeded_partition


class DigitsDataModule(SplitsDataModule):
    """The digits as (batch, 8, 8) float sequences with integer labels.

    Split: a seeded shuffle into val / test / train by ``val_fraction`` and ``test_fraction``
    (``seeded_partition``, the split the other data modules use).
    Normalisation: every pixel position is standardised with the mean and standard deviation of
    the *training* split (pixels range 0–16; constant pixels get std 1), so no statistic leaks from
    validation or test.

    Args:
        data_dir: unused (the data ships with scikit-learn); accepted so every data module is
            configured alike.
        batch_size: samples per batch.
        num_workers: DataLoader workers (0 is fastest: a batch is one gather of in-memory tensors).
        val_fraction: share of the images held out for validation.
        test_fraction: share held out for testing.
        seed: seed of the split.
    """

    input_size = 8
    seq_len = 8
    num_classes = 10

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
    ) -> None:
        check_fraction("val_fraction", val_fraction)
        check_fraction("test_fraction", test_fraction)
        if val_fraction + test_fraction >= 1.0:
            raise ValueError(f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves no training data")
        super().__init__(data_dir=data_dir, batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.save_hyperparameters()
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images, labels = load_digits(return_X_y=True)
        parts = seeded_partition(
            len(labels), {"val": self.val_fraction, "test": self.test_fraction}, self.seed, pool="digits"
        )
        train = images[parts["train"]]
        mean, std = train.mean(axis=0), train.std(axis=0)
        std[std == 0] = 1.0
        for split, index in parts.items():
            x = ((images[index] - mean) / std).reshape(-1, self.seq_len, self.input_size)
            self.splits[split] = TensorBatches(
                torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(labels[index], dtype=torch.long)
            )
