"""Background noise: SNR mixing (torchaudio), the fresh training noise and the fixed test noise."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torchaudio
from torch import Tensor

from datamodules.speech.audio import CLIP_SAMPLES
from datamodules.speech.features import SpeechFeatures


def mix_at_snr(clean: Tensor, noise: Tensor, snr_db: float | Tensor) -> Tensor:
    r"""``clean + g * noise`` with the gain ``g`` set so the mix has exactly ``snr_db``.

    .. math:: 10 \log_{10} \frac{\operatorname{mean}(clean^2)}{\operatorname{mean}((g \cdot noise)^2)}
              = \mathrm{snr\_db}

    The mixing is ``torchaudio.functional.add_noise``; this wrapper only broadcasts one SNR to
    every signal and returns a signal of zero power, or one whose noise has zero power, unchanged
    (``add_noise`` gives NaN for a silent noise cut).

    Args:
        clean: signals ``(..., L)``.
        noise: noise of the same shape.
        snr_db: one SNR in dB, or one per signal (shape ``clean.shape[:-1]``).

    Returns the mixes, shape ``(..., L)``.

    >>> clean = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    >>> noisy = mix_at_snr(clean, torch.tensor([[0.5, 0.5, -0.5, 0.1]]), 20.0)
    >>> round(float(10 * torch.log10(clean.pow(2).sum() / (noisy - clean).pow(2).sum())), 4)
    20.0
    """
    snr = torch.as_tensor(snr_db, dtype=clean.dtype, device=clean.device).expand(clean.shape[:-1])
    audible = (clean.pow(2).sum(-1) > 0) & (noise.pow(2).sum(-1) > 0)
    mixed = torchaudio.functional.add_noise(clean, noise, snr)
    return torch.where(audible.unsqueeze(-1), mixed, clean)


def stable_int(text: str) -> int:
    """A 64-bit integer from ``text``, the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")


def fixed_noise_cuts(noise: Mapping[str, np.ndarray], sources: Sequence[str], seed: int) -> Tensor:
    """One noise cut per clip in [-1, 1), from a generator seeded by ``seed`` and the clip's path.

    A clip gets the same cut at every SNR, in every run and whatever its neighbours, so test sets
    at several SNRs differ only in the noise level.
    """
    names = sorted(noise)
    cuts = []
    for source in sources:
        rng = np.random.default_rng([seed, stable_int(source)])
        recording = noise[names[rng.integers(len(names))]]
        start = int(rng.integers(len(recording) - CLIP_SAMPLES + 1))
        cuts.append(recording[start : start + CLIP_SAMPLES])
    return torch.from_numpy(np.stack(cuts).astype(np.float32) / 32768.0)


class NoisyFeatureBatches:
    """``collate_fn`` of the noisy training loader: a gathered batch of int16 clips → mixed →
    standardised features.

    The noise cut, its recording and the SNR are drawn from torch's RNG (seeded by Lightning, and
    per worker by the DataLoader), so every epoch sees fresh noise.
    """

    def __init__(
        self,
        noise: Sequence[Tensor],
        snr_db: tuple[float, float],
        features: SpeechFeatures,
        mean: Tensor,
        std: Tensor,
    ) -> None:
        self.noise, self.snr_db, self.features = list(noise), snr_db, features
        self.mean, self.std = mean, std

    def mix(self, waves: Tensor) -> Tensor:
        cuts = []
        for i in torch.randint(len(self.noise), (len(waves),)).tolist():
            start = int(torch.randint(len(self.noise[i]) - CLIP_SAMPLES + 1, ()))
            cuts.append(self.noise[i][start : start + CLIP_SAMPLES])
        snr = torch.empty(len(waves)).uniform_(*self.snr_db)
        return mix_at_snr(waves, torch.stack(cuts), snr)

    def __call__(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """``batch``: the gathered int16 clips ``(B, 16000)`` and their labels ``(B,)``."""
        waves, labels = batch
        waves = waves.float() / 32768.0
        with torch.no_grad():
            x = self.features(self.mix(waves))
        return (x - self.mean) / self.std, labels
