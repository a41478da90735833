"""One LightningDataModule per benchmark; every one exposes ``input_size`` and ``num_classes``."""

from datamodules.digits import DigitsDataModule

__all__ = ["DigitsDataModule"]
