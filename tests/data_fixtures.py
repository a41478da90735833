"""Writers of small data sets in each benchmark's real on-disk format, for the data module tests.

Each writer produces the very files the torchvision / torchaudio loaders read (MNIST's IDX files,
CIFAR-10's pickled batches, a Speech Commands tree of 16 kHz PCM wav files with its lists), only
with a few samples, and returns what it wrote so tests can compare against it.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile
from torchvision.datasets import CIFAR10

from datamodules.speech import KWS12_WORDS


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file: magic 0x0000_08_<ndim> (uint8 data), big-endian int32 dims, then the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist(
    root: Path, n_train: int = 60, n_test: int = 20, seed: int = 0, folder: str = "MNIST"
) -> dict[str, np.ndarray]:
    """``root/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (magic 2051 / 2049).

    ``folder`` is the torchvision class's name: ``MNIST``, ``FashionMNIST`` (same format), ...
    """
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    raw = root / folder / "raw"
    for prefix, split in (("train", "train"), ("t10k", "test")):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", arrays[f"{split}_images"])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", arrays[f"{split}_labels"])
    return arrays


def write_fashion_mnist(root: Path, n_train: int = 60, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Fashion-MNIST's files: MNIST's format under ``root/FashionMNIST/raw/``."""
    return write_mnist(root, n_train, n_test, seed, folder="FashionMNIST")


def forbid_downloads(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> None:
    """Make every download a torchvision data set module (``torchvision.datasets.mnist``, ``.cifar``)
    attempts fail the test with the URL, so "prepare_data fetches nothing" is checked, not assumed."""

    def fetch(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"prepare_data tried to fetch {url}")

    monkeypatch.setattr(module, "download_and_extract_archive", fetch)


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, per_batch: int = 10, n_test: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    """``root/cifar-10-batches-py/``: pickled dicts whose ``data`` rows are 1024 R, 1024 G, 1024 B.

    Returns the images in HWC order (``train_images`` is batches 1..5 concatenated) and labels.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = {"train": [], "test": []}, {"train": [], "test": []}
    names = [(f"data_batch_{i}", "train", per_batch) for i in range(1, 6)] + [("test_batch", "test", n_test)]
    for name, split, n in names:
        hwc = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, n).tolist()
        entry = {
            "batch_label": f"{name} of a test fixture",
            "labels": y,
            "data": hwc.transpose(0, 3, 1, 2).reshape(n, 3072),  # CHW rows, as the archive stores them
            "filenames": [f"{name}_{i}.png" for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        images[split].append(hwc)
        labels[split] += y
    meta = {"label_names": CIFAR10_CLASSES, "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {
        "train_images": np.concatenate(images["train"]),
        "train_labels": np.array(labels["train"]),
        "test_images": np.concatenate(images["test"]),
        "test_labels": np.array(labels["test"]),
    }


def accept_cifar10_files(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point torchvision's CIFAR10 checksum table at the MD5s of the files under ``root``.

    ``CIFAR10._check_integrity`` compares every batch file's MD5 with the official archive's, which
    small test files cannot match. Only the expected checksums change (undone after the test);
    torchvision's own integrity check and reading code run unchanged.
    """
    folder = root / CIFAR10.base_folder

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    monkeypatch.setattr(CIFAR10, "train_list", [[name, md5(name)] for name, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[name, md5(name)] for name, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(CIFAR10.meta["filename"])})


SPEECH_WORDS = ("yes", "no", "up", "bed")
#: Samples of the clips of each word: one second, shorter (padded), longer (cut).
SPEECH_LENGTHS = (16000, 12000, 20000, 16000, 8000)


def write_speech_commands(
    root: Path, words: tuple[str, ...] = SPEECH_WORDS, noise_seconds: float = 3.0, seed: int = 0
) -> dict[str, list[str]]:
    """``root/SpeechCommands/speech_commands_v0.02/``: 16 kHz 16-bit PCM wav clips per word,
    ``validation_list.txt`` (clip 0 of each word), ``testing_list.txt`` (clip 1) and two
    ``_background_noise_`` recordings. Returns the relative paths per split.
    """
    rng = np.random.default_rng(seed)
    base = root / "SpeechCommands" / "speech_commands_v0.02"
    splits: dict[str, list[str]] = {"val": [], "test": [], "train": []}
    t = np.arange(max(SPEECH_LENGTHS)) / 16000
    for w, word in enumerate(words):
        (base / word).mkdir(parents=True, exist_ok=True)
        for k, length in enumerate(SPEECH_LENGTHS):
            tone = 0.3 * np.sin(2 * np.pi * (300 + 150 * w + 20 * k) * t[:length])
            clip = tone + 0.02 * rng.standard_normal(length)
            rel = f"{word}/{0xA0B1C2 + 97 * k + w:08x}_nohash_{k % 2}.wav"
            soundfile.write(base / rel, clip, 16000, subtype="PCM_16")
            splits["val" if k == 0 else "test" if k == 1 else "train"].append(rel)
    _write_lists_and_noise(base, splits, noise_seconds, rng)
    return splits


def _write_lists_and_noise(
    base: Path, splits: dict[str, list[str]], noise_seconds: float, rng: np.random.Generator
) -> None:
    """The official list files and two ``_background_noise_`` recordings (white noise, a hum)."""
    (base / "validation_list.txt").write_text("".join(f"{p}\n" for p in splits["val"]))
    (base / "testing_list.txt").write_text("".join(f"{p}\n" for p in splits["test"]))
    noise = base / "_background_noise_"
    noise.mkdir()
    n = int(noise_seconds * 16000)
    soundfile.write(noise / "white_noise.wav", 0.1 * rng.standard_normal(n), 16000, subtype="PCM_16")
    hum = 0.2 * np.sin(2 * np.pi * 50 * np.arange(n) / 16000) + 0.05 * rng.standard_normal(n)
    soundfile.write(noise / "hum.wav", hum, 16000, subtype="PCM_16")
    (noise / "README.md").write_text("Background noise recordings (test fixture).\n")


KEYWORDS = KWS12_WORDS  # the ten command words of Speech Commands, as the data module names them


def _formant_track(word: str) -> np.ndarray:
    """A word's shape: two formants (Hz) at its start and at its end, fixed by the word's name."""
    rng = np.random.default_rng(list(word.encode()))
    f1 = rng.uniform(300, 900, 2)
    f2 = rng.uniform(1000, 2600, 2)
    return np.stack([f1, f2])  # (formant, start/end)


def speak(word: str, rng: np.random.Generator, seconds: float) -> np.ndarray:
    """One utterance of ``word``: a voiced, gliding two-formant sound of ``seconds`` at 16 kHz.

    A speaker's pitch (90–260 Hz) and vocal-tract length (formants × 0.88–1.12) vary per call, so
    a word is a class of sounds rather than one waveform; the formant glide is the word's own.
    """
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    f0 = rng.uniform(90, 260) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))  # intonation
    formants = _formant_track(word) * rng.uniform(0.88, 1.12)
    glide = np.linspace(0, 1, n)
    centre = formants[:, :1] + (formants[:, 1:] - formants[:, :1]) * glide  # (2, n)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    wave = np.zeros(n)
    for k in range(1, int(4000 / f0.max()) + 1):
        gain = np.exp(-0.5 * ((k * f0 - centre) / 120.0) ** 2).sum(axis=0)
        wave += gain * np.sin(k * phase)
    envelope = np.sin(np.pi * glide) ** 0.5
    return wave * envelope / (np.abs(wave).max() + 1e-9)


def write_speech_keywords(
    root: Path,
    words: tuple[str, ...] = KEYWORDS,
    speakers: int = 12,
    clips_per_speaker: int = 2,
    held_out_speakers: int = 2,
    noise_floor: float = 0.003,
    seed: int = 0,
) -> dict[str, list[str]]:
    """A learnable Speech Commands v0.02 tree: words are short sounds at random offsets in silence.

    As in the real data set, every file is a 1 s clip at 16 kHz named
    ``<word>/<speaker hash>_nohash_<n>.wav``, a word lasts 0.3–0.6 s and sits anywhere in its clip,
    the rest is a low noise floor (white noise of std ``noise_floor`` × full scale), and the
    validation and test lists name whole speakers (``held_out_speakers`` each), so the splits
    share no speaker. A classifier must find a short event anywhere in 101 frames, then keep it:
    the property that leaves a last-step LSTM at chance. Returns the relative paths per split.
    """
    rng = np.random.default_rng(seed)
    base = root / "SpeechCommands" / "speech_commands_v0.02"
    hashes = [f"{h:08x}" for h in rng.choice(2**32, speakers, replace=False)]
    split_of = {h: "val" if i < held_out_speakers else "test" if i < 2 * held_out_speakers else "train"
                for i, h in enumerate(hashes)}  # fmt: skip
    splits: dict[str, list[str]] = {"val": [], "test": [], "train": []}
    for word in words:
        (base / word).mkdir(parents=True, exist_ok=True)
        for speaker in hashes:
            for k in range(clips_per_speaker):
                seconds = rng.uniform(0.3, 0.6)
                start = rng.integers(0, int((1 - seconds) * 16000))
                clip = noise_floor * rng.standard_normal(16000)
                sound = speak(word, rng, seconds)
                clip[start : start + len(sound)] += rng.uniform(0.1, 0.5) * sound
                rel = f"{word}/{speaker}_nohash_{k}.wav"
                soundfile.write(base / rel, np.clip(clip, -1, 1), 16000, subtype="PCM_16")
                splits[split_of[speaker]].append(rel)
    _write_lists_and_noise(base, splits, 3.0, rng)
    return splits
