"""What does one more cell cost a study?  ``python benchmarks/study_startup.py``

Runs the quickstart study with 1 cell (``--sparsity 0``) and with 3 cells (``--sparsity 0 0.5 0.9``),
``--trainer.max_epochs 2``, each into a fresh temporary folder, as a user would (``python -m
rnn_prune.study``, ``OMP_NUM_THREADS=1``, W&B offline), in both modes -- cells in one long-lived
worker per slot (the default) and ``--fresh-processes`` (a fit and a test process per cell, as the
study ran before issue 21) -- interleaved over ``--rounds`` rounds so the machine's load hits both
alike. Prints each wall time, the per-added-cell cost ``(T3 - T1) / 2`` of each mode and the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = {"worker": [], "fresh": ["--fresh-processes"]}


def study_seconds(sparsities: list[str], extra: list[str], epochs: int) -> float:
    """Wall seconds of one study run (it must succeed)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "rnn_prune.study", "--config", str(ROOT / "configs/quickstart.yaml"),
                   "--sparsity", *sparsities, "--out", out, "--trainer.max_epochs", str(epochs), *extra]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"study failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    args = parser.parse_args()
    added: dict[str, list[float]] = {mode: [] for mode in args.modes}
    for round_ in range(args.rounds):
        for mode in args.modes:
            one = study_seconds(["0"], MODES[mode], args.epochs)
            three = study_seconds(["0", "0.5", "0.9"], MODES[mode], args.epochs)
            added[mode].append((three - one) / 2)
            print(f"round {round_}: {mode:6s} 1 cell {one:6.1f} s, 3 cells {three:6.1f} s, "
                  f"per added cell {added[mode][-1]:5.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    for mode, values in added.items():
        print(f"{mode}: per added quickstart cell, median of {len(values)} round(s): {statistics.median(values):.1f} s")


if __name__ == "__main__":
    main()
