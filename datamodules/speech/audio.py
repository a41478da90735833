"""Reading Speech Commands audio: one-second int16 clips, background-noise recordings, list files.

The clips are read with ``soundfile``: torchaudio 2.11 loads audio only through TorchCodec (and
FFmpeg), which this package does not require. Every file is checked for the data set's format
(16 kHz; mono, or several channels mixed down with a warning that names the file).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # every clip is padded or cut to one second
URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
NOISE_FOLDER = "_background_noise_"


def read_audio(path: str | Path) -> np.ndarray:
    """A 16 kHz wav file as one int16 channel.

    Speech Commands is mono; a file with several channels is mixed down (the channels' mean, so
    no channel is silently dropped) and a ``UserWarning`` names it.
    """
    try:
        data, rate = soundfile.read(path, dtype="int16", always_2d=True)
    except soundfile.LibsndfileError as error:  # its own message may say only "System error."
        raise OSError(f"{path}: cannot read this wav file ({error})") from error
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: sample rate {rate} Hz, expected {SAMPLE_RATE} Hz")
    if data.shape[1] == 1:
        return data[:, 0]
    warnings.warn(
        f"{path}: {data.shape[1]} channels, Speech Commands is mono; mixing them down (their mean)",
        stacklevel=2,
    )
    return np.round(data.astype(np.float64).mean(axis=1)).astype(np.int16)


def read_clip(path: str | Path) -> np.ndarray:
    """One Speech Commands wav file as 16,000 int16 samples (zero-padded or cut at the end)."""
    data = read_audio(path)
    clip = np.zeros(CLIP_SAMPLES, dtype=np.int16)
    n = min(len(data), CLIP_SAMPLES)
    clip[:n] = data[:n]
    return clip


def read_noise(folder: Path) -> dict[str, np.ndarray]:
    """The ``_background_noise_/*.wav`` recordings by file name, each at least one clip long.

    Recordings shorter than a clip are looped, so a one-second cut can be taken anywhere.
    """
    noise = {}
    for path in sorted(folder.glob("*.wav")):
        data = read_audio(path)
        if len(data) == 0:
            raise ValueError(f"{path}: empty recording")
        noise[path.name] = np.resize(data, CLIP_SAMPLES) if len(data) < CLIP_SAMPLES else data
    return noise


def check_listed_clips(root: Path, list_file: str, relpaths: Sequence[str]) -> None:
    """Raise ``FileNotFoundError`` naming the clips that ``list_file`` lists but ``root`` lacks.

    torchaudio builds the validation and test sets from the list files without looking at the
    disk, so without this check a missing clip fails later, inside libsndfile, as "System error."
    """
    missing = [rel for rel in relpaths if not (root / rel).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise FileNotFoundError(
            f"{root / list_file} lists {len(missing)} clip(s) missing under {root}: {shown}. "
            f"Restore them (from {URL}) or remove their lines from {list_file}."
        )
