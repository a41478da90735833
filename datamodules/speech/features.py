"""Speech features: MFCCs or log-mel energies of 25 ms windows every 10 ms (101 frames a clip)."""

from __future__ import annotations

from typing import Literal

import torch
import torchaudio
from torch import Tensor, nn

from datamodules._common import check_choice
from datamodules.speech.audio import CLIP_SAMPLES, SAMPLE_RATE

N_FFT = WIN_LENGTH = 400  # 25 ms
HOP_LENGTH = 160  # 10 ms
SEQ_LEN = 1 + CLIP_SAMPLES // HOP_LENGTH  # 101 centred frames
FEATURES = ("mfcc", "logmel")


def check_n_features(n_features: int) -> None:
    if n_features <= 0:
        raise ValueError(f"n_features={n_features!r} must be positive")


class SpeechFeatures(nn.Module):
    """Waveforms ``(B, 16000)`` in [-1, 1) → features ``(B, 101, n_features)``.

    ``"mfcc"``: ``n_features`` MFCCs over ``max(40, n_features)`` mel bands, dB scale with an
    80 dB floor per clip; ``"logmel"``: ``log(mel + 1e-6)`` of ``n_features`` mel bands.

    The transform sees ``(B, 1, 16000)``: with a 4-D spectrogram torchaudio's ``AmplitudeToDB``
    applies its 80 dB floor per clip; with 3-D input it would use one floor for the whole batch,
    making a clip's MFCCs depend on its batch-mates.
    """

    def __init__(self, kind: Literal["mfcc", "logmel"] = "mfcc", n_features: int = 40) -> None:
        super().__init__()
        check_choice("features", kind, FEATURES)
        check_n_features(n_features)
        self.kind = kind
        mel = {"n_fft": N_FFT, "win_length": WIN_LENGTH, "hop_length": HOP_LENGTH}
        if kind == "mfcc":
            self.transform = torchaudio.transforms.MFCC(
                SAMPLE_RATE, n_mfcc=n_features, melkwargs={**mel, "n_mels": max(40, n_features)}
            )
        else:
            self.transform = torchaudio.transforms.MelSpectrogram(
                SAMPLE_RATE, n_mels=n_features, **mel
            )

    def forward(self, waveform: Tensor) -> Tensor:
        spec = self.transform(waveform.unsqueeze(1))  # (B, 1, F, T)
        if self.kind == "logmel":
            spec = torch.log(spec + 1e-6)
        return spec.squeeze(1).transpose(1, 2).contiguous()
