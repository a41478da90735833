"""Pieces the benchmark data modules share: argument checks, the seeded splits, the batched
in-memory data sets, the loaders and the error raised when a data set's files are missing.

Private to ``datamodules/``; a new benchmark file may use them but need not.

**Batches are gathers.** Every benchmark's splits fit in memory (or in a memory map), so a batch is
served as one tensor gather (:class:`GatherDataset`): the DataLoader's batch sampler yields a list of
indices, the DataLoader hands the whole list to ``__getitems__``, and the data set returns the
finished ``(x, y)`` batch, which :func:`keep_batch` passes through unchanged. Per-sample
``__getitem__`` plus ``default_collate`` cost 3.1 ms per batch of 128 seq-MNIST images against
0.34 ms for the gather (a tenth of a training step of ``sfmnist_lstm`` on one thread). Everything
else is the stock DataLoader: the sampler, ``len``, workers, pinning, and Lightning's DDP sampler
replacement, which re-creates the loader with a ``DistributedSamplerWrapper`` around our sampler
and keeps the ``collate_fn``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler


class DataError(Exception):
    """A data set that cannot be read as it is on disk, or fetched; the message names the file and the fix.

    A marker mixed into the built-in type each case raised before (so ``except FileNotFoundError``
    still catches a missing file): ``python -m rnn_prune`` prints any ``DataError`` as one line.
    """


class DataFileMissing(DataError, FileNotFoundError):
    """Files of a data set are not where the data module reads them."""


class DataFileInvalid(DataError, ValueError):
    """A data file is there but corrupt, truncated or of another format."""


class DataChecksumMismatch(DataError, RuntimeError):
    """Downloaded files whose checksums are not the official archive's (a partial download)."""


class DataDownloadFailed(DataError, RuntimeError):
    """``prepare_data`` could not download the data set (no network, a refused connection, ...)."""


def download_or_explain(fetch: Callable[[], object], *, dataset: str, root: Path, source: str,
                        expected: Sequence[Path]) -> None:  # fmt: skip
    """Run ``fetch`` (a torchvision/torchaudio download); a failure says where to put the files by hand.

    Raises:
        DataDownloadFailed: the download failed; the message names ``root``, the files expected
            there and ``download: false``.
    """
    try:
        fetch()
    except DataError:
        raise
    except (OSError, RuntimeError, ValueError) as error:  # URLError is an OSError; torchvision wraps some
        shown = ", ".join(str(p) for p in list(expected)[:3]) + (" ..." if len(expected) > 3 else "")
        first = " ".join(str(error).split())[:200] or type(error).__name__
        raise DataDownloadFailed(
            f"could not download {dataset} into {root} ({type(error).__name__}: {first}). Without network, fetch "
            f"{source} on another machine, unpack it so that {shown} exist, and set `download: false` "
            "(CLI: --data.init_args.download false)"
        ) from error


def check_loader_args(batch_size: int, num_workers: int) -> None:
    """Raise ``ValueError`` naming ``batch_size`` / ``num_workers`` when they are out of range."""
    if batch_size <= 0:
        raise ValueError(f"batch_size={batch_size!r} must be positive")
    if num_workers < 0:
        raise ValueError(f"num_workers={num_workers!r} must be >= 0")


def check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    """Raise ``ValueError`` naming ``name`` when ``value`` is not one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {list(allowed)}")


def check_fraction(name: str, value: float) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` lies strictly between 0 and 1."""
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name}={value!r} must lie in (0, 1)")


def check_val_fraction(val_fraction: float) -> None:
    check_fraction("val_fraction", val_fraction)


def check_seed(seed: int) -> None:
    """Raise ``ValueError`` naming ``seed`` when it is negative (numpy's and torch's seeds are not)."""
    if seed < 0:
        raise ValueError(f"seed={seed!r} must be >= 0")


def seeded_partition(
    n: int, fractions: Mapping[str, float], seed: int, *, pool: str = "samples"
) -> dict[str, np.ndarray]:
    """Cut a ``seed``-ed shuffle of ``range(n)`` into the named held-out parts and ``"train"``.

    One permutation of ``n`` is drawn from ``numpy.random.default_rng(seed)`` (PCG64 streams are
    stable across numpy versions, so every process and run gets the same parts); the parts named in
    ``fractions`` take ``round(fraction * n)`` indices each, in their order from the front, and
    ``"train"`` takes the rest. The indices keep the shuffled order, so a caller that wants them
    sorted sorts them (:func:`seeded_split` does).

    Args:
        n: number of samples.
        fractions: held-out part name → share of ``n``, e.g. ``{"val": 0.15, "test": 0.15}``.
        seed: seed of the shuffle.
        pool: what the ``n`` samples are, for the error message.

    Raises:
        ValueError: a part would be empty, or nothing would be left for training; the message names
            the ``<part>_fraction`` argument.

    >>> parts = seeded_partition(10, {"val": 0.2, "test": 0.3}, seed=0)
    >>> {name: len(index) for name, index in parts.items()}
    {'val': 2, 'test': 3, 'train': 5}
    """
    order = np.random.default_rng(seed).permutation(n)
    parts: dict[str, np.ndarray] = {}
    start = 0
    for name, fraction in fractions.items():
        size = round(fraction * n)
        if size == 0:
            raise ValueError(f"{name}_fraction={fraction!r} of {n} {pool} leaves an empty split")
        parts[name] = order[start : start + size]
        start += size
    if start >= n:
        shares = " + ".join(f"{name}_fraction" for name in fractions)
        raise ValueError(f"{shares} of {n} {pool} leaves no training samples")
    parts["train"] = order[start:]
    return parts


def seeded_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` of ``n`` training samples, ``val_fraction`` held out, both sorted.

    :func:`seeded_partition` with one held-out part; sorting keeps each split in the data set's
    own order (the training loader reshuffles it every epoch anyway).

    >>> train, val = seeded_split(10, 0.2, seed=0)
    >>> len(train), len(val), sorted(set(train) | set(val)) == list(range(10))
    (8, 2, True)
    """
    parts = seeded_partition(n, {"val": val_fraction}, seed, pool="training samples")
    return np.sort(parts["train"]), np.sort(parts["val"])


class GatherDataset(Dataset):
    """A map-style data set whose batch is one gather: ``__getitems__(indices)`` returns ``(x, y)``.

    Subclasses implement :meth:`gather` for an index tensor. ``__getitem__`` serves one sample
    through the same code (the batch of one, unbatched), so a sample and its row of a batch are
    computed alike. Served by :func:`make_loader`, which pairs it with :func:`keep_batch`.

    Notes:
        torch's ``Subset`` forwards ``__getitems__`` to the wrapped data set, so a ``Subset`` of a
        ``GatherDataset`` also returns whole batches and needs ``collate_fn=keep_batch``; index a
        ``GatherDataset`` by building a smaller one instead.
    """

    def gather(self, index: Tensor) -> tuple[Tensor, ...]:
        """The batch of the samples ``index`` (an int64 tensor), each tensor with ``len(index)`` rows."""
        raise NotImplementedError

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, ...]:
        return self.gather(torch.as_tensor(indices, dtype=torch.long))

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} samples")
        return tuple(t[0] for t in self.gather(torch.tensor([index])))

    def __len__(self) -> int:
        raise NotImplementedError


class TensorBatches(GatherDataset):
    """In-memory tensors with one row per sample, served as gathers (``TensorDataset``, batched).

    >>> data = TensorBatches(torch.arange(10.0).reshape(5, 2), torch.arange(5))
    >>> data.__getitems__([4, 0])
    (tensor([[8., 9.],
            [0., 1.]]), tensor([4, 0]))
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError(f"tensors need the same, non-zero number of rows, got {[len(t) for t in tensors]}")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def gather(self, index: Tensor) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)


def keep_batch(batch: Any) -> Any:
    """``collate_fn`` of a :class:`GatherDataset`: its ``__getitems__`` already built the batch.

    A module-level function, so loader workers can unpickle it.
    """
    return batch


class EpochShuffleSampler(Sampler[int]):
    """A shuffle that depends only on ``(seed, epoch)``: a resumed run sees the same batches.

    ``RandomSampler`` draws from the global RNG, whose state checkpoints do not carry, so a run
    resumed from a checkpoint would train on other batches than the uninterrupted one. Lightning
    calls ``set_epoch`` on a loader's sampler at the start of every epoch.
    """

    def __init__(self, num_samples: int, seed: int = 0) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.num_samples, generator=generator).tolist())


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    num_workers: int,
    shuffle_seed: int | None = None,
    collate_fn: Callable | None = None,
) -> DataLoader:
    """A DataLoader with the data modules' common settings.

    ``shuffle_seed``: shuffle every epoch with :class:`EpochShuffleSampler` seeded by it (training
    loaders); None keeps the order (validation and test). Workers persist across epochs. A
    :class:`GatherDataset` gets :func:`keep_batch` unless a ``collate_fn`` is given (which then
    receives the gathered ``(x, y)`` batch).
    """
    sampler = None if shuffle_seed is None else EpochShuffleSampler(len(dataset), shuffle_seed)
    if collate_fn is None and isinstance(dataset, GatherDataset):
        collate_fn = keep_batch
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        collate_fn=collate_fn,
    )


class SplitsDataModule(L.LightningDataModule):
    """Serves ``self.splits[name]`` with the loader settings above.

    Takes the arguments every data module has (checked here, so each benchmark does not repeat the
    checks); subclasses fill ``splits`` in ``setup`` (``"train"``, ``"val"`` and the names in
    ``test_splits``) and may give a split its own ``collate_fn`` in ``collate``. The training
    loader reshuffles per epoch from ``seed`` (resumable), the others keep their order; ``test``
    runs one loader per entry of ``test_splits`` and ``predict`` reads the first.

    Args:
        data_dir: directory the data set is read from (and downloaded to).
        batch_size: samples per batch.
        num_workers: DataLoader worker processes. The in-memory splits are served as gathers
            (:class:`GatherDataset`), which cost less than handing a batch back from a worker, so 0
            is fastest for them; workers help where a ``collate`` function computes (speech
            features of noisy training clips).
        seed: seed of the split and of the per-epoch training shuffle (which depends on
            ``(seed, epoch)`` only, so a resumed run sees the same batches).
    """

    def __init__(self, *, data_dir: str, batch_size: int, num_workers: int, seed: int) -> None:
        super().__init__()
        check_loader_args(batch_size, num_workers)
        check_seed(seed)
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.splits: dict[str, Dataset] = {}
        self.collate: dict[str, Callable] = {}

    @property
    def test_splits(self) -> list[str]:
        """Names of the splits ``test`` evaluates, one loader each (``["test"]`` here)."""
        return ["test"]

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return make_loader(
            self.splits[split],
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            shuffle_seed=self.seed if shuffle else None,
            collate_fn=self.collate.get(split),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        loaders = [self._loader(split) for split in self.test_splits]
        return loaders if len(loaders) > 1 else loaders[0]

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_splits[0])


def require_files(paths: Sequence[Path], *, dataset: str, root: Path, download: bool, source: str) -> None:
    """Raise ``FileNotFoundError`` saying which of ``paths`` are missing and how to get them.

    Called before a torchvision / torchaudio data set is built, so a missing file gives this
    message instead of a ``RuntimeError`` from deep inside the library.
    """
    missing = [str(p) for p in paths if not Path(p).exists()]
    if not missing:
        return
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    if download:
        how = (
            "download is true but prepare_data() has not fetched them: the Trainer calls "
            "prepare_data() before setup(); call dm.prepare_data() first when using the data "
            "module by hand"
        )
    else:
        how = "set `download: true` (CLI: --data.init_args.download true) to fetch them"
    raise DataFileMissing(
        f"{dataset} not found under {root}: missing {shown}. To get it, {how}; or fetch "
        f"{source} yourself and unpack it so that these paths exist."
    )
