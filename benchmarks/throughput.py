"""Training throughput of the shipped ``sfmnist_lstm`` fit against a plain PyTorch loop.

    python benchmarks/throughput.py [--rounds 5] [--batches 100] [--warmup 10] [--num-workers N]

Both sides train the same LSTM (128 units on 28 x 28 Fashion-MNIST rows, Adam 1e-3, batch 128) on
the same images, on the CPU with one torch thread:

* **fit**: ``configs/sfmnist_lstm.yaml`` built by the package's own CLI with the study's
  settings (progress bar off; the config's W&B logger offline, pruning and expansion callbacks,
  checkpoints), ``trainer.fit`` for one epoch of ``--batches`` batches and one validation batch;
* **plain**: the loop a person would write — the whole training split as one normalised float
  tensor, one seeded shuffle, ``x[idx]`` per batch, forward, ``cross_entropy``,
  ``zero_grad``, ``backward``, ``step``.

The two are interleaved step by step: after every training batch of the fit, a callback runs
one step of the plain loop and times it apart, so a load on a shared machine that comes and goes
hits both sides alike. Only training steps are timed: from the start of batch ``--warmup`` to the
end of the last one, data fetching included, less the plain steps run in between; set-up and
epoch-end work (one validation batch, the expansion measures, checkpoints) are excluded —
``benchmarks/overhead.py`` measures those. Each of ``--rounds`` rounds is a fresh fit; prints
samples/s of each round, the medians and their ratio (fit / plain).

Data: Debian's Fashion-MNIST (``/usr/share/datasets/fashion-mnist``) unpacked into a temporary
folder, or ``--data-dir`` holding ``FashionMNIST/raw/``; when neither exists, random images in
the real IDX format (throughput does not depend on the pixels).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported (loader workers too)
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import argparse  # noqa: E402
import gzip  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import lightning as L  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402

from datamodules.smnist import DEBIAN_FASHION_MNIST, FASHION_MNIST_MEAN, FASHION_MNIST_STD  # noqa: E402
from rnn_prune.cli import main as cli_main  # noqa: E402
from rnn_prune.model import RecurrentClassifier  # noqa: E402

CONFIG = REPO / "configs" / "sfmnist_lstm.yaml"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def lay_out_data(data_dir: Path | None, scratch: Path) -> tuple[Path, str]:
    """A ``data_dir`` with ``FashionMNIST/raw/`` and a note saying which images it holds."""
    if data_dir is not None:
        return data_dir, f"Fashion-MNIST from {data_dir}"
    raw = scratch / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    if all((Path(DEBIAN_FASHION_MNIST) / f"{name}.gz").is_file() for name in FILES):
        for name in FILES:
            with gzip.open(Path(DEBIAN_FASHION_MNIST) / f"{name}.gz") as source, (raw / name).open("wb") as target:
                shutil.copyfileobj(source, target)
        return scratch, f"Debian's Fashion-MNIST ({DEBIAN_FASHION_MNIST})"
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60_000), ("t10k", 10_000)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x0803, n, 28, 28) + images.tobytes())
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x0801, n) + labels.tobytes())
    return scratch, "random images in Fashion-MNIST's IDX format (no data set found)"


class PlainLoop:
    """The plain PyTorch loop: the split as one float tensor, a fixed shuffle, ``x[idx]`` per batch."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, seed: int) -> None:
        with torch.random.fork_rng():  # leave the fit's RNG alone
            torch.manual_seed(seed)
            self.model = RecurrentClassifier(28, 10, cell="lstm", hidden_size=128)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.images, self.labels = images, labels
        self.order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        self.batch = 0

    def step(self) -> int:
        """One training step; returns its number of samples."""
        start = self.batch * 128 % (len(self.labels) - 128)
        self.batch += 1
        index = self.order[start : start + 128]
        x, y = self.images[index], self.labels[index]
        loss = F.cross_entropy(self.model(x), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return len(y)


class Interleaved(Callback):
    """After every training batch of the fit, one step of the plain loop, timed apart.

    The fit's time is the wall time from the start of batch ``warmup`` to the end, less the plain
    steps run inside it; both sides thus share every moment of the machine's load.
    """

    def __init__(self, plain: PlainLoop, warmup: int) -> None:
        self.plain, self.warmup = plain, warmup
        self.fit_samples = self.plain_samples = 0
        self.plain_seconds = self.start = self.end = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        timed = batch_idx >= self.warmup
        start = time.perf_counter()
        samples = self.plain.step()
        self.end = time.perf_counter()
        if timed:
            self.fit_samples += len(batch[1])
            self.plain_samples += samples
            self.plain_seconds += self.end - start

    @property
    def rates(self) -> tuple[float, float]:
        """samples/s of the fit and of the plain loop."""
        fit_seconds = self.end - self.start - self.plain_seconds
        return self.fit_samples / fit_seconds, self.plain_samples / self.plain_seconds


def one_round(data_dir: Path, root: Path, plain: PlainLoop, args: argparse.Namespace) -> tuple[float, float]:
    """samples/s of the shipped config's fit, as the study runs it, and of the plain loop beside it."""
    cli_args = [
        "--config", str(CONFIG), "--seed_everything", "0",
        "--data.init_args.data_dir", str(data_dir),
        "--trainer.default_root_dir", str(root),
        "--trainer.accelerator", "cpu",  # the plain loop runs on the CPU too (no GPU timing here)
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", str(args.batches),
        "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
    ]  # fmt: skip
    if args.num_workers is not None:
        cli_args += ["--data.init_args.num_workers", str(args.num_workers)]
    cli = cli_main(cli_args, run=False)
    timer = Interleaved(plain, args.warmup)
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return timer.rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh fits, each with its plain loop beside it")
    parser.add_argument("--batches", type=int, default=100, help="training batches per fit")
    parser.add_argument("--warmup", type=int, default=10, help="batches run before the clock starts")
    parser.add_argument("--num-workers", type=int, default=None, help="override the config's num_workers")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding FashionMNIST/raw/")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # Lightning's hints about workers and the tiny limit_train_batches
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        data_dir, note = lay_out_data(args.data_dir, scratch / "data")
        raw = data_dir / "FashionMNIST" / "raw"
        pixels = np.frombuffer((raw / FILES[0]).read_bytes()[16:], dtype=np.uint8).reshape(-1, 28, 28)
        images = (torch.from_numpy(pixels.astype(np.float32)) / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
        labels = torch.from_numpy(np.frombuffer((raw / FILES[1]).read_bytes()[8:], dtype=np.uint8).astype(np.int64))
        print(f"data: {note}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
              f"{args.batches - args.warmup} timed batches of 128 per run")  # fmt: skip
        fit, plain = [], []
        for r in range(args.rounds):
            fit_rate, plain_rate = one_round(data_dir, scratch / f"fit{r}", PlainLoop(images, labels, seed=r), args)
            fit.append(fit_rate)
            plain.append(plain_rate)
            print(f"round {r}: fit {fit_rate:7.0f} samples/s, plain {plain_rate:7.0f} samples/s, "
                  f"ratio {fit_rate / plain_rate:.3f}", flush=True)  # fmt: skip
    ratios = [f / p for f, p in zip(fit, plain, strict=True)]
    print(f"median: fit {statistics.median(fit):.0f} samples/s, plain {statistics.median(plain):.0f} samples/s; "
          f"ratio of medians {statistics.median(fit) / statistics.median(plain):.3f}, median of round ratios "
          f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
