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

import numpy as np
import pytest
import soundfile
from torchvision.datasets import CIFAR10


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file: magic 0x0000_08_<ndim> (uint8 data), big-endian int32 dims, then the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist(root: Path, n_train: int = 60, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (magic 2051 / 2049)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    raw = root / "MNIST" / "raw"
    for prefix, split in (("train", "train"), ("t10k", "test")):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", arrays[f"{split}_images"])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", arrays[f"{split}_labels"])
    return arrays


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
    (base / "validation_list.txt").write_text("".join(f"{p}\n" for p in splits["val"]))
    (base / "testing_list.txt").write_text("".join(f"{p}\n" for p in splits["test"]))
    noise = base / "_background_noise_"
    noise.mkdir()
    n = int(noise_seconds * 16000)
    soundfile.write(noise / "white_noise.wav", 0.1 * rng.standard_normal(n), 16000, subtype="PCM_16")
    hum = 0.2 * np.sin(2 * np.pi * 50 * np.arange(n) / 16000) + 0.05 * rng.standard_normal(n)
    soundfile.write(noise / "hum.wav", hum, 16000, subtype="PCM_16")
    (noise / "README.md").write_text("Background noise recordings (test fixture).\n")
    return splits
