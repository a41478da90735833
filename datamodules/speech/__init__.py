"""Google Speech Commands v0.02: one-second spoken words as sequences of MFCC or log-mel frames.

One file per concern: :mod:`~datamodules.speech.audio` (reading wav files and list files),
:mod:`~datamodules.speech.features` (MFCC / log-mel), :mod:`~datamodules.speech.noise` (SNR
mixing, training and test noise), :mod:`~datamodules.speech.cache` (the atomic ``.npy`` cache) and
:mod:`~datamodules.speech.datamodule` (the LightningDataModule, whose docstring describes splits,
labels, noise and cache).
"""

from datamodules.speech.audio import CLIP_SAMPLES, SAMPLE_RATE, read_audio, read_clip
from datamodules.speech.datamodule import KWS12_WORDS, WORDS, SpeechCommandsDataModule
from datamodules.speech.features import SEQ_LEN, SpeechFeatures
from datamodules.speech.noise import mix_at_snr

__all__ = [
    "CLIP_SAMPLES",
    "KWS12_WORDS",
    "SAMPLE_RATE",
    "SEQ_LEN",
    "WORDS",
    "SpeechCommandsDataModule",
    "SpeechFeatures",
    "mix_at_snr",
    "read_audio",
    "read_clip",
]
