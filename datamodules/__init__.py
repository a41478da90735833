"""One LightningDataModule per benchmark; every one exposes ``input_size`` and ``num_classes``."""

from datamodules._vision import TorchvisionSequenceDataModule
from datamodules.digits import DigitsDataModule
from datamodules.scifar10 import SequentialCIFAR10DataModule
from datamodules.smnist import SequentialMNISTDataModule
from datamodules.speech import SpeechCommandsDataModule

__all__ = ["DigitsDataModule", "SequentialCIFAR10DataModule", "SequentialMNISTDataModule", "SpeechCommandsDataModule",
           "TorchvisionSequenceDataModule"]
