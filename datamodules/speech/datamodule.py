"""``SpeechCommandsDataModule``: Speech Commands v0.02 as sequences of MFCC or log-mel frames.

The data set (105,829 clips of 35 words by 2,618 speakers, 16 kHz) is found, split and downloaded
by ``torchaudio.datasets.SPEECHCOMMANDS`` under ``<data_dir>/SpeechCommands/speech_commands_v0.02/``
with its official ``validation_list.txt`` / ``testing_list.txt`` (training = every other clip).

Labels (``labels``):

- ``"all"``: the 35 words, in alphabetical order (``backward`` = 0 … ``zero`` = 34);
- ``"kws12"``: ``yes, no, up, down, left, right, on, off, stop, go`` (0–9), ``_unknown_`` (10:
  every other word on disk) and ``_silence_`` (11: one-second cuts from the
  ``_background_noise_`` recordings, ``silence_fraction`` × the split's word clips, at seeded
  offsets). Unknown words are kept, not subsampled, so ``_unknown_`` is the largest class.

Features: each clip is zero-padded or cut to 1 s (16,000 samples), scaled to [-1, 1), and turned
into ``n_features`` MFCCs or log-mel energies per 10 ms frame (101 frames, see
:mod:`datamodules.speech.features`). Every coefficient is then standardised with its mean and
standard deviation over all frames of the *clean training* clips.

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
the seed and the noise files) and memory-mapped afterwards. ``prepare_data`` (one process per
node under DDP) fills the whole cache; ``setup`` then only maps it (and fills what is missing when
the module is used by hand without ``prepare_data``). Noisy *training* features cannot be cached
(fresh noise every epoch): the training loader then serves cached waveforms, and its
``collate_fn`` mixes noise and computes features batch by batch (in the DataLoader workers, the one
place where workers pay off). Every split is served as batched gathers from its memory map
(:class:`~datamodules._common.GatherDataset`). A full
v0.02 cache takes about 3.4 GB of waveforms plus 1.7 GB of features per feature setting. Files
are matched by name, not content: delete the cache folder after changing wav files in place.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torchaudio.datasets import SPEECHCOMMANDS

from datamodules._common import GatherDataset, SplitsDataModule, check_choice, download_or_explain, require_files
from datamodules.speech.audio import CLIP_SAMPLES, NOISE_FOLDER, URL, check_listed_clips, read_clip, read_noise
from datamodules.speech.cache import cache_path, cached_array, remove_stale_temporaries
from datamodules.speech.features import (
    FEATURES,
    HOP_LENGTH,
    N_FFT,
    SEQ_LEN,
    WIN_LENGTH,
    SpeechFeatures,
    check_n_features,
)
from datamodules.speech.noise import NoisyFeatureBatches, fixed_noise_cuts, mix_at_snr, stable_int
from rnn_prune.keys import snr_suffix

WORDS = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four",
    "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right",
    "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
)  # fmt: skip
KWS12_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
LABEL_SETS = ("all", "kws12")
_SUBSETS = {"train": "training", "val": "validation", "test": "testing"}
_LIST_FILES = {"val": "validation_list.txt", "test": "testing_list.txt"}
_CACHE_VERSION = 1
_CHUNK = 256  # clips per feature-extraction batch when filling the cache


class _Arrays(GatherDataset):
    """Rows of a (memory-mapped) array with int64 labels, optionally standardised, gathered per batch."""

    def __init__(
        self, x: np.ndarray, labels: np.ndarray, mean: Tensor | None = None, std: Tensor | None = None
    ) -> None:
        self.x, self.labels, self.mean, self.std = x, torch.as_tensor(labels), mean, std

    def __len__(self) -> int:
        return len(self.labels)

    def gather(self, index: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.from_numpy(self.x[index.numpy()])  # numpy fancy indexing copies the rows out of the map
        if self.mean is not None and self.std is not None:
            x.sub_(self.mean).div_(self.std)  # in place on the gathered copy
        return x, self.labels[index]


class SpeechCommandsDataModule(SplitsDataModule):
    """Speech Commands v0.02 as ``(batch, 101, n_features)`` float32 frames with int64 labels.

    Splits, labels, features, normalisation, noise and the on-disk cache are described in the
    module docstring; the loaders are :class:`~datamodules._common.SplitsDataModule`'s, with one
    test split per SNR. ``test`` runs one loader per entry of ``test_suffixes``: ``""`` (clean), then
    ``"@<snr>dB"`` for each of ``test_snrs``, so the model logs ``test/acc``, ``test/acc@20dB``, …
    ``test_snrs_db`` gives the SNR of each of those loaders (``None`` for the clean one), for
    plots of accuracy against SNR.

    Args:
        data_dir: directory holding (or receiving) ``SpeechCommands/speech_commands_v0.02/``; the
            feature cache goes to ``SpeechCommands/cache/`` beside it.
        labels: ``"all"`` (35 words) or ``"kws12"`` (10 words + unknown + silence).
        batch_size: samples per batch.
        num_workers: DataLoader workers. Clean splits are gathers from memory maps (0 is fastest);
            with ``train_snr_db`` the workers compute the noisy training features.
        download: let ``prepare_data`` download and unpack the 2.3 GB archive when the folder is
            missing (as torchaudio does).
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
        *,
        labels: Literal["all", "kws12"] = "all",
        batch_size: int = 256,
        num_workers: int = 0,
        download: bool = True,
        features: Literal["mfcc", "logmel"] = "mfcc",
        n_features: int = 40,
        silence_fraction: float = 0.1,
        train_snr_db: tuple[float, float] | None = None,
        test_snrs: list[float] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(data_dir=data_dir, batch_size=batch_size, num_workers=num_workers, seed=seed)
        check_choice("labels", labels, LABEL_SETS)
        check_choice("features", features, FEATURES)
        check_n_features(n_features)
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
        if len({snr_suffix(snr) for snr in test_snrs}) != len(test_snrs):  # one metric suffix each
            raise ValueError(f"test_snrs={test_snrs!r} repeats an SNR")
        self.save_hyperparameters()
        self.download = download
        self.labels = labels
        self.features = features
        self.n_features = n_features
        self.silence_fraction = silence_fraction
        self.train_snr_db = train_snr_db
        self.test_snrs = test_snrs
        self.extractor = SpeechFeatures(features, n_features)
        self._clip_lists: dict[str, tuple[list[str], np.ndarray]] = {}
        self.mean: Tensor | None = None
        self.std: Tensor | None = None
        self._noise: dict[str, np.ndarray] = {}

    # ---- what the model, the CLI and the study read --------------------------------------------
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
        return ["", *(snr_suffix(snr) for snr in self.test_snrs)]

    @property
    def test_snrs_db(self) -> list[float | None]:
        """The SNR in dB of each test loader, in the order of ``test_suffixes``; None: clean.

        ``dict(zip(dm.test_suffixes, dm.test_snrs_db))`` maps each ``test/acc<suffix>`` key (built
        with ``rnn_prune.keys.test_acc``) to the SNR it was measured at.
        """
        return [None, *self.test_snrs]

    @property
    def test_splits(self) -> list[str]:
        """The test splits, one per entry of ``test_suffixes``: ``"test"``, ``"test@20dB"``, …"""
        return [f"test{suffix}" for suffix in self.test_suffixes]

    @property
    def test_sets(self) -> list[_Arrays]:
        """The test splits set up so far, in the order of ``test_splits``."""
        return [self.splits[name] for name in self.test_splits if name in self.splits]

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / "SpeechCommands" / "speech_commands_v0.02"

    @property
    def cache_dir(self) -> Path:
        return Path(self.data_dir) / "SpeechCommands" / "cache"

    # ---- Lightning hooks -----------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Download (if asked), then fill the whole cache once, in one process per node.

        Lightning calls this on local rank 0 only and makes the other ranks wait, so under DDP the
        wav files are read and the features computed once, not once per rank.
        """
        if self.download:  # subset="validation" reads one list instead of globbing 100k files
            download_or_explain(
                lambda: SPEECHCOMMANDS(self.data_dir, download=True, subset="validation"),
                dataset="Speech Commands v0.02", root=Path(self.data_dir), source=URL, expected=[self.root],
            )  # fmt: skip
        self._require_tree()
        for path in remove_stale_temporaries(self.cache_dir):
            rank_zero_info(f"removed {path}, left by an interrupted cache fill")
        self._load_noise()
        for split in ("train", "val", "test"):
            sources, _ = self._clips(split)
            waves, key = self._waveforms(split, sources)
            for snr in [None, *(self.test_snrs if split == "test" else [])]:
                features, feature_key = self._features(split, sources, waves, key, snr=snr)
                if split == "train":
                    self._stats(features, feature_key)

    def setup(self, stage: str | None = None) -> None:
        self._require_tree()
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
                self.collate["train"] = NoisyFeatureBatches(
                    noise, self.train_snr_db, self.extractor, self.mean, self.std
                )
        if stage in (None, "fit", "validate") and "val" not in self.splits:
            sources, labels = self._clips("val")
            waves, key = self._waveforms("val", sources)
            features, _ = self._features("val", sources, waves, key)
            self.splits["val"] = _Arrays(features, labels, self.mean, self.std)
        if stage in (None, "test", "predict") and not self.test_sets:
            sources, labels = self._clips("test")
            waves, key = self._waveforms("test", sources)
            for name, snr in zip(self.test_splits, self.test_snrs_db, strict=True):
                features, _ = self._features("test", sources, waves, key, snr=snr)
                self.splits[name] = _Arrays(features, labels, self.mean, self.std)

    # ---- clips, labels, noise ------------------------------------------------------------------
    def _require_tree(self) -> None:
        require_files(
            [self.root / name for name in _LIST_FILES.values()],
            dataset="Speech Commands v0.02",
            root=Path(self.data_dir),
            download=self.download,
            source=URL,
        )

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
        """The split's clips as paths relative to ``root`` (silence: ``<noise file>@<start>``).

        Listed once per data module: ``prepare_data`` and ``setup`` both need them, and the
        training split is a walk over ~100k files.
        """
        if split not in self._clip_lists:
            self._clip_lists[split] = self._list_clips(split)
        return self._clip_lists[split]

    def _list_clips(self, split: str) -> tuple[list[str], np.ndarray]:
        dataset = SPEECHCOMMANDS(self.data_dir, download=False, subset=_SUBSETS[split])
        sources, labels = [], []
        for n in range(len(dataset)):
            relpath, _, word, _, _ = dataset.get_metadata(n)
            sources.append(Path(*Path(relpath).parts[1:]).as_posix())  # drop speech_commands_v0.02
            labels.append(self._label(word))
        if split in _LIST_FILES:
            check_listed_clips(self.root, _LIST_FILES[split], sources)
        if self.labels == "kws12":
            rng = np.random.default_rng([self.seed, stable_int(f"silence/{split}")])
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
        """Read the background noise once, when the labels or the noise settings need it."""
        needed = self.labels == "kws12" or self.train_snr_db is not None or self.test_snrs
        if self._noise or not needed:
            return
        self._noise = read_noise(self.root / NOISE_FOLDER)
        if not self._noise:
            raise FileNotFoundError(
                f"no {NOISE_FOLDER}/*.wav under {self.root}: labels='kws12', train_snr_db and "
                f"test_snrs need Speech Commands' background noise recordings (in {URL})"
            )

    def _read(self, source: str) -> np.ndarray:
        if source.startswith(NOISE_FOLDER + "/"):
            name, start = source[len(NOISE_FOLDER) + 1 :].rsplit("@", 1)
            return self._noise[name][int(start) : int(start) + CLIP_SAMPLES]
        return read_clip(self.root / source)

    def _test_noise(self, sources: list[str]) -> Tensor:
        """One fixed noise cut per clip (see :func:`~datamodules.speech.noise.fixed_noise_cuts`)."""
        return fixed_noise_cuts(self._noise, sources, self.seed)

    # ---- the cache -----------------------------------------------------------------------------
    def _cached(
        self, name: str, key: dict, shape: tuple[int, ...], dtype: type, fill: Callable
    ) -> tuple[np.ndarray, str]:
        """Memory-map ``<cache_dir>/<name>-<hash of key>.npy``, running ``fill(array)`` on a miss."""
        path = cache_path(self.cache_dir, name, key)
        return cached_array(path, shape, dtype, fill), path.stem.rsplit("-", 1)[1]

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
        tag = f"{split}-{self.features}{self.n_features}" + ("" if snr is None else snr_suffix(snr))
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
