"""Google Speech Commands v0.02: one-second spoken words as sequences of MFCC or log-mel frames.

The data set (105,829 clips of 35 words by 2,618 speakers, 16 kHz) is found, split and downloaded
by ``torchaudio.datasets.SPEECHCOMMANDS`` under ``<data_dir>/SpeechCommands/speech_commands_v0.02/``
with its official ``validation_list.txt`` / ``testing_list.txt`` (training = every other clip).
The clips themselves are read with ``soundfile``: torchaudio 2.11 loads audio only through
TorchCodec (and FFmpeg), which this package does not require.

Labels (``labels``):

- ``"all"``: the 35 words, in alphabetical order (``backward`` = 0 … ``zero`` = 34);
- ``"kws12"``: ``yes, no, up, down, left, right, on, off, stop, go`` (0–9), ``_unknown_`` (10:
  every other word on disk) and ``_silence_`` (11: one-second cuts from the
  ``_background_noise_`` recordings, ``silence_fraction`` × the split's word clips, at seeded
  offsets). Unknown words are kept, not subsampled, so ``_unknown_`` is the largest class.

Features: each clip is zero-padded or cut to 1 s (16,000 samples), scaled to [-1, 1), and turned
into 40 (``n_features``) MFCCs (over ``max(40, n_features)`` mel bands, dB scale with an 80 dB floor
per clip) or log-mel energies (``log(mel + 1e-6)``) with 25 ms windows (``n_fft = win_length =
400``) every 10 ms (``hop_length = 160``), centred: 101 frames. Every coefficient is then
standardised with its mean and standard deviation over all frames of the *clean training* clips.

Noise: ``train_snr_db=(low, high)`` mixes a random one-second cut of a random
``_background_noise_`` recording into every training clip at an SNR drawn uniformly from
``[low, high]`` dB; ``test_snrs`` adds one test loader per SNR, whose noise cut is chosen by a
generator seeded with ``seed`` and the clip's path (the same cut at every SNR and in every run).
The SNR is the power ratio over the 1 s clip the model sees (after padding); a clip of zero power
stays silent. The noise recordings are shared by all splits, as in the TensorFlow recipe.

Cache (``<data_dir>/SpeechCommands/cache/``): reading 100k wav files and computing features takes
minutes on a few cores, so each split's clean waveforms (int16, 32 kB a clip) and its features
(float32) are written once as ``.npy`` files named by a hash of everything they depend on (the
clip list, including the silence cuts, and the feature settings; for noisy test sets also the SNR,
the seed and the noise files) and memory-mapped afterwards. Noisy *training* features cannot be
cached (fresh noise every epoch): the training loader then serves cached waveforms, and its
``collate_fn`` mixes noise and computes features batch by batch (in the DataLoader workers). A full
v0.02 cache takes about 3.4 GB of waveforms plus 1.7 GB of features per feature setting. Files
are matched by name, not content: delete the cache folder after changing wav files in place.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import soundfile
import torch
import torchaudio
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchaudio.datasets import SPEECHCOMMANDS

from datamodules._common import check_choice, check_loader_args, make_loader, require_files

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # every clip is padded or cut to one second
N_FFT = WIN_LENGTH = 400  # 25 ms
HOP_LENGTH = 160  # 10 ms
SEQ_LEN = 1 + CLIP_SAMPLES // HOP_LENGTH  # 101 centred frames
WORDS = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four",
    "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right",
    "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
)  # fmt: skip
KWS12_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
NOISE_FOLDER = "_background_noise_"
URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
LABEL_SETS = ("all", "kws12")
FEATURES = ("mfcc", "logmel")
_SUBSETS = {"train": "training", "val": "validation", "test": "testing"}
_CACHE_VERSION = 1
_CHUNK = 256  # clips per feature-extraction batch when filling the cache


def mix_at_snr(clean: Tensor, noise: Tensor, snr_db: float | Tensor) -> Tensor:
    r"""``clean + g * noise`` with the gain ``g`` set so the mix has exactly ``snr_db``.

    .. math:: 10 \log_{10} \frac{\operatorname{mean}(clean^2)}{\operatorname{mean}((g \cdot noise)^2)}
              = \mathrm{snr\_db}

    Args:
        clean: signals ``(..., L)``.
        noise: noise of the same shape.
        snr_db: one SNR in dB, or one per signal (shape ``clean.shape[:-1]``).

    Returns the mixes, shape ``(..., L)``. A signal or noise of zero power is returned unchanged.

    >>> clean = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    >>> noisy = mix_at_snr(clean, torch.tensor([[0.5, 0.5, -0.5, 0.1]]), 20.0)
    >>> round(10 * math.log10(clean.pow(2).sum() / (noisy - clean).pow(2).sum()), 4)
    20.0
    """
    snr = torch.as_tensor(snr_db, dtype=clean.dtype, device=clean.device)
    p_clean = clean.pow(2).mean(-1)
    p_noise = noise.pow(2).mean(-1)
    gain = torch.sqrt(p_clean / (p_noise * 10.0 ** (snr / 10.0)))
    gain = torch.where((p_clean > 0) & (p_noise > 0), gain, torch.zeros_like(gain))
    return clean + gain.unsqueeze(-1) * noise


def read_clip(path: str | Path) -> np.ndarray:
    """One Speech Commands wav file as 16,000 int16 samples (zero-padded or cut at the end)."""
    data, rate = soundfile.read(path, dtype="int16", always_2d=True)
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: sample rate {rate} Hz, expected {SAMPLE_RATE} Hz")
    clip = np.zeros(CLIP_SAMPLES, dtype=np.int16)
    n = min(len(data), CLIP_SAMPLES)
    clip[:n] = data[:n, 0]
    return clip


class SpeechFeatures(nn.Module):
    """Waveforms ``(B, 16000)`` in [-1, 1) → features ``(B, 101, n_features)`` (see the module doc).

    The transform sees ``(B, 1, 16000)``: with a 4-D spectrogram torchaudio's ``AmplitudeToDB``
    applies its 80 dB floor per clip; with 3-D input it would use one floor for the whole batch,
    making a clip's MFCCs depend on its batch-mates.
    """

    def __init__(self, kind: Literal["mfcc", "logmel"] = "mfcc", n_features: int = 40) -> None:
        super().__init__()
        check_choice("features", kind, FEATURES)
        if n_features <= 0:
            raise ValueError(f"n_features={n_features!r} must be positive")
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


class _Arrays(Dataset):
    """Rows of a (memory-mapped) array with int64 labels, optionally standardised."""

    def __init__(
        self, x: np.ndarray, labels: np.ndarray, mean: Tensor | None = None, std: Tensor | None = None
    ) -> None:
        self.x, self.labels, self.mean, self.std = x, torch.as_tensor(labels), mean, std

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x = torch.from_numpy(np.array(self.x[index]))
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x, self.labels[index]


class _NoisyFeatureBatches:
    """``collate_fn`` of the noisy training loader: int16 clips → mixed → standardised features.

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

    def __call__(self, batch: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        waves = torch.stack([w for w, _ in batch]).float() / 32768.0
        labels = torch.stack([y for _, y in batch])
        with torch.no_grad():
            x = self.features(self.mix(waves))
        return (x - self.mean) / self.std, labels


def _stable_int(text: str) -> int:
    """A 64-bit integer from ``text``, the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")


class SpeechCommandsDataModule(L.LightningDataModule):
    """Speech Commands v0.02 as ``(batch, 101, n_features)`` float32 frames with int64 labels.

    Splits, labels, features, normalisation, noise and the on-disk cache are described in the
    module docstring. ``test`` runs one loader per entry of ``test_suffixes``: ``""`` (clean), then
    ``"@<snr>dB"`` for each of ``test_snrs``, so the model logs ``test/acc``, ``test/acc@20dB``, …

    Args:
        data_dir: directory holding (or receiving) ``SpeechCommands/speech_commands_v0.02/``; the
            feature cache goes to ``SpeechCommands/cache/`` beside it.
        batch_size: samples per batch.
        num_workers: DataLoader workers (they also compute the noisy training features).
        download: let ``prepare_data`` download and unpack the 2.3 GB archive when the folder is
            missing (as torchaudio does).
        labels: ``"all"`` (35 words) or ``"kws12"`` (10 words + unknown + silence).
        features: ``"mfcc"`` or ``"logmel"``.
        n_features: MFCC coefficients or mel bands per frame.
        silence_fraction: with ``labels="kws12"``, ``_silence_`` clips per split as a share of its
            word clips (0.1, as in the TensorFlow speech-commands recipe).
        train_snr_db: ``(low, high)`` dB range of the noise mixed into every training clip; None
            trains on clean clips.
        test_snrs: SNRs in dB at which ``test`` is evaluated besides clean; None or ``[]``: clean
            only.
        seed: seed of the silence cuts, of the test noise and of the per-epoch training shuffle
            (which depends on ``(seed, epoch)`` only, so a resumed run sees the same batches).
    """

    seq_len = SEQ_LEN

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 256,
        num_workers: int = 0,
        download: bool = True,
        labels: Literal["all", "kws12"] = "all",
        features: Literal["mfcc", "logmel"] = "mfcc",
        n_features: int = 40,
        silence_fraction: float = 0.1,
        train_snr_db: tuple[float, float] | None = None,
        test_snrs: list[float] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_loader_args(batch_size, num_workers)
        check_choice("labels", labels, LABEL_SETS)
        check_choice("features", features, FEATURES)
        if n_features <= 0:
            raise ValueError(f"n_features={n_features!r} must be positive")
        if not (silence_fraction >= 0 and math.isfinite(silence_fraction)):
            raise ValueError(f"silence_fraction={silence_fraction!r} must be a finite number >= 0")
        if train_snr_db is not None:
            train_snr_db = tuple(float(s) for s in train_snr_db)
            if len(train_snr_db) != 2 or not all(map(math.isfinite, train_snr_db)):
                raise ValueError(f"train_snr_db={train_snr_db!r} must be two finite dB values")
            if train_snr_db[0] > train_snr_db[1]:
                raise ValueError(f"train_snr_db={train_snr_db!r} must be (low, high) with low <= high")
        test_snrs = [float(s) for s in test_snrs or []]
        if not all(map(math.isfinite, test_snrs)):
            raise ValueError(f"test_snrs={test_snrs!r} must be finite dB values")
        if len({f"{snr:g}" for snr in test_snrs}) != len(test_snrs):  # one metric suffix each
            raise ValueError(f"test_snrs={test_snrs!r} repeats an SNR")
        if seed < 0:
            raise ValueError(f"seed={seed!r} must be >= 0")
        self.save_hyperparameters()
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.download = download
        self.labels = labels
        self.features = features
        self.n_features = n_features
        self.silence_fraction = silence_fraction
        self.train_snr_db = train_snr_db
        self.test_snrs = test_snrs
        self.seed = seed
        self.extractor = SpeechFeatures(features, n_features)
        self.splits: dict[str, Dataset] = {}
        self.test_sets: list[Dataset] = []
        self.mean: Tensor | None = None
        self.std: Tensor | None = None
        self._noise: dict[str, np.ndarray] = {}
        self._collate: Callable | None = None

    # ---- what the model and the CLI read -------------------------------------------------------
    @property
    def input_size(self) -> int:
        return self.n_features

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def classes(self) -> list[str]:
        """Class names by label index."""
        return list(WORDS) if self.labels == "all" else [*KWS12_WORDS, UNKNOWN, SILENCE]

    @property
    def test_suffixes(self) -> list[str]:
        """One metric suffix per test loader: ``""`` (clean), then ``"@<snr>dB"`` per SNR."""
        return ["", *(f"@{snr:g}dB" for snr in self.test_snrs)]

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / "SpeechCommands" / "speech_commands_v0.02"

    @property
    def cache_dir(self) -> Path:
        return Path(self.data_dir) / "SpeechCommands" / "cache"

    # ---- Lightning hooks -----------------------------------------------------------------------
    def prepare_data(self) -> None:
        if self.download:  # subset="validation" reads one list instead of globbing 100k files
            SPEECHCOMMANDS(self.data_dir, download=True, subset="validation")

    def setup(self, stage: str | None = None) -> None:
        require_files(
            [self.root / "validation_list.txt", self.root / "testing_list.txt"],
            dataset="Speech Commands v0.02",
            root=Path(self.data_dir),
            download=self.download,
            source=URL,
        )
        if self.labels == "kws12" or self.train_snr_db is not None or self.test_snrs:
            self._load_noise()
        build_train = stage in (None, "fit") and "train" not in self.splits
        if self.mean is None or build_train:
            # Standardisation needs the clean training features whatever the stage.
            sources, labels = self._clips("train")
            waves, key = self._waveforms("train", sources)
            features, feature_key = self._features("train", sources, waves, key)
            self.mean, self.std = self._stats(features, feature_key)
        if build_train:
            if self.train_snr_db is None:
                self.splits["train"] = _Arrays(features, labels, self.mean, self.std)
            else:
                self.splits["train"] = _Arrays(waves, labels)
                noise = [torch.from_numpy(n / np.float32(32768)) for n in self._noise.values()]
                self._collate = _NoisyFeatureBatches(
                    noise, self.train_snr_db, self.extractor, self.mean, self.std
                )
        if stage in (None, "fit", "validate") and "val" not in self.splits:
            self.splits["val"] = self._clean_set("val")
        if stage in (None, "test", "predict") and not self.test_sets:
            sources, labels = self._clips("test")
            waves, key = self._waveforms("test", sources)
            for snr in [None, *self.test_snrs]:
                features, _ = self._features("test", sources, waves, key, snr=snr)
                self.test_sets.append(_Arrays(features, labels, self.mean, self.std))

    def train_dataloader(self) -> DataLoader:
        return make_loader(
            self.splits["train"],
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            shuffle_seed=self.seed,
            collate_fn=self._collate,
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.splits["val"])

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        loaders = [self._loader(dataset) for dataset in self.test_sets]
        return loaders if len(loaders) > 1 else loaders[0]

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_sets[0])

    def _loader(self, dataset: Dataset) -> DataLoader:
        return make_loader(dataset, batch_size=self.batch_size, num_workers=self.num_workers)

    # ---- clips, labels, noise ------------------------------------------------------------------
    def _label(self, word: str) -> int:
        classes = self.classes
        if word in classes:
            return classes.index(word)
        if self.labels == "all":
            raise ValueError(
                f"{self.root / word}: folder {word!r} is not one of the 35 Speech Commands v0.02 "
                f"words that labels='all' classifies; use labels='kws12' to map it to {UNKNOWN}"
            )
        return classes.index(UNKNOWN)

    def _clips(self, split: str) -> tuple[list[str], np.ndarray]:
        """The split's clips as paths relative to ``root`` (silence: ``<noise file>@<start>``)."""
        dataset = SPEECHCOMMANDS(self.data_dir, download=False, subset=_SUBSETS[split])
        sources, labels = [], []
        for n in range(len(dataset)):
            relpath, _, word, _, _ = dataset.get_metadata(n)
            sources.append(Path(*Path(relpath).parts[1:]).as_posix())  # drop speech_commands_v0.02
            labels.append(self._label(word))
        if self.labels == "kws12":
            rng = np.random.default_rng([self.seed, _stable_int(f"silence/{split}")])
            names = sorted(self._noise)
            for _ in range(round(self.silence_fraction * len(sources))):
                name = names[rng.integers(len(names))]
                start = int(rng.integers(len(self._noise[name]) - CLIP_SAMPLES + 1))
                sources.append(f"{NOISE_FOLDER}/{name}@{start}")
                labels.append(self.classes.index(SILENCE))
        if not sources:
            raise RuntimeError(f"the {split} split of {self.root} holds no clips")
        return sources, np.asarray(labels, dtype=np.int64)

    def _load_noise(self) -> None:
        if self._noise:
            return
        files = sorted((self.root / NOISE_FOLDER).glob("*.wav"))
        if not files:
            raise FileNotFoundError(
                f"no {NOISE_FOLDER}/*.wav under {self.root}: labels='kws12', train_snr_db and "
                f"test_snrs need Speech Commands' background noise recordings (in {URL})"
            )
        for path in files:
            data, rate = soundfile.read(path, dtype="int16", always_2d=True)
            if rate != SAMPLE_RATE:
                raise ValueError(f"{path}: sample rate {rate} Hz, expected {SAMPLE_RATE} Hz")
            noise = data[:, 0]
            if len(noise) < CLIP_SAMPLES:  # loop recordings shorter than a clip
                noise = np.resize(noise, CLIP_SAMPLES)
            self._noise[path.name] = noise

    def _read(self, source: str) -> np.ndarray:
        if source.startswith(NOISE_FOLDER + "/"):
            name, start = source[len(NOISE_FOLDER) + 1 :].rsplit("@", 1)
            return self._noise[name][int(start) : int(start) + CLIP_SAMPLES]
        return read_clip(self.root / source)

    def _test_noise(self, sources: Sequence[str]) -> Tensor:
        """One fixed noise cut per clip, from a generator seeded by ``seed`` and the clip's path."""
        names = sorted(self._noise)
        cuts = []
        for source in sources:
            rng = np.random.default_rng([self.seed, _stable_int(source)])
            noise = self._noise[names[rng.integers(len(names))]]
            start = int(rng.integers(len(noise) - CLIP_SAMPLES + 1))
            cuts.append(noise[start : start + CLIP_SAMPLES])
        return torch.from_numpy(np.stack(cuts).astype(np.float32) / 32768.0)

    # ---- the cache -----------------------------------------------------------------------------
    def _cached(
        self, name: str, key: dict, shape: tuple[int, ...], dtype: type, fill: Callable
    ) -> tuple[np.ndarray, str]:
        """Memory-map ``<cache_dir>/<name>-<hash of key>.npy``, running ``fill(array)`` on a miss.

        The file is written under a temporary name and renamed, so a crash or a second process
        (DDP ranks each run ``setup``) never leaves a half-written file under the final name.
        """
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        path = self.cache_dir / f"{name}-{digest}.npy"
        if not path.exists():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npy")
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            try:
                fill(out)
                out.flush()
            except BaseException:
                del out
                tmp.unlink(missing_ok=True)  # no multi-GB leftovers from an interrupted fill
                raise
            del out
            os.replace(tmp, path)
        return np.load(path, mmap_mode="r"), digest

    def _waveforms(self, split: str, sources: list[str]) -> tuple[np.ndarray, str]:
        def fill(out: np.ndarray) -> None:
            for i, source in enumerate(sources):
                out[i] = self._read(source)

        key = {"version": _CACHE_VERSION, "sources": sources}
        return self._cached(f"{split}-wave", key, (len(sources), CLIP_SAMPLES), np.int16, fill)

    def _features(
        self,
        split: str,
        sources: list[str],
        waves: np.ndarray,
        wave_key: str,
        snr: float | None = None,
    ) -> tuple[np.ndarray, str]:
        def fill(out: np.ndarray) -> None:
            with torch.no_grad():
                for start in range(0, len(waves), _CHUNK):
                    chunk = torch.from_numpy(waves[start : start + _CHUNK].astype(np.float32))
                    chunk /= 32768.0
                    if snr is not None:
                        noise = self._test_noise(sources[start : start + _CHUNK])
                        chunk = mix_at_snr(chunk, noise, snr)
                    out[start : start + len(chunk)] = self.extractor(chunk).numpy()

        key = {
            "waves": wave_key,
            "features": self.features,
            "n_features": self.n_features,
            "stft": [N_FFT, WIN_LENGTH, HOP_LENGTH],
            "snr": snr,
            "seed": None if snr is None else self.seed,
            "noise": None if snr is None else sorted(self._noise),
        }
        tag = f"{split}-{self.features}{self.n_features}" + ("" if snr is None else f"@{snr:g}dB")
        shape = (len(waves), SEQ_LEN, self.n_features)
        return self._cached(tag, key, shape, np.float32, fill)

    def _stats(self, features: np.ndarray, feature_key: str) -> tuple[Tensor, Tensor]:
        """Per-coefficient mean and std over all frames of the clean training features."""

        def fill(out: np.ndarray) -> None:
            total = np.zeros(self.n_features)
            squares = np.zeros(self.n_features)
            for start in range(0, len(features), 4096):
                chunk = features[start : start + 4096].astype(np.float64)
                total += chunk.sum(axis=(0, 1))
                squares += np.square(chunk).sum(axis=(0, 1))
            count = features.shape[0] * features.shape[1]
            mean = total / count
            out[0] = mean
            out[1] = np.sqrt(np.maximum(squares / count - mean**2, 0.0))

        shape = (2, self.n_features)
        stats, _ = self._cached("train-stats", {"features": feature_key}, shape, np.float64, fill)
        std = np.where(stats[1] > 0, stats[1], 1.0)
        return torch.tensor(stats[0], dtype=torch.float32), torch.tensor(std, dtype=torch.float32)

    def _clean_set(self, split: str) -> _Arrays:
        sources, labels = self._clips(split)
        waves, key = self._waveforms(split, sources)
        features, _ = self._features(split, sources, waves, key)
        return _Arrays(features, labels, self.mean, self.std)
