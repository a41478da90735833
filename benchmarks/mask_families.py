"""Δr each pruning criterion reaches on a config's graphs at init: masks only, no training.

Plain script, from the repository root::

    PYTHONPATH=. python benchmarks/mask_families.py [--hidden 128 --input 28] [--sparsity 0.9 0.97] [--seeds 0 1 2]

Builds the ``sfmnist_lstm`` model (an LSTM of ``--hidden`` units reading ``--input`` features; its
four gates of ``ih`` and ``hh`` are the eight pruned graphs), prunes a freshly initialised copy (seed
``s``) once with each criterion as ``configs/sfmnist_lstm_init.yaml`` does, and prints, per criterion
and sparsity, Δr of the ``ih`` and ``hh`` gate graphs (min and mean over gates and seeds), the min
over all eight (the study's ``min_delta_r``), and the share of the graphs that are Ramanujan.
Single-threaded, so the numbers do not depend on the machine's cores.
"""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from callbacks.pruning import ScheduledPruning
from rnn_prune.expansion import layer_expansion
from rnn_prune.module import SequenceClassifier
from rnn_prune.schedules import OneShotSchedule

FAMILIES = ["magnitude", "random", "biregular", "clustered:mixing=0", "clustered:mixing=0.25",
            "clustered:mixing=0.5", "rewired"]  # fmt: skip


def gate_expansion(criterion: str, sparsity: float, seed: int, hidden: int, inputs: int) -> dict[str, tuple]:
    """(Δr, is_ramanujan) of every pruned gate graph after one pruning step at init."""
    torch.manual_seed(seed)
    model = SequenceClassifier(inputs, 10, cell="lstm", hidden_size=hidden)
    pruning = ScheduledPruning(OneShotSchedule(sparsity, epoch=0), criterion=criterion, seed=seed)
    pruning.setup(None, model, "fit")
    pruning.prune(SimpleNamespace(current_epoch=0, world_size=1, max_epochs=1), model, 0.0)
    out = {}
    for graph in pruning.graphs:
        e = layer_expansion(graph.mask_block(), measures=["delta_r", "is_ramanujan"])
        out[graph.name] = (e.delta_r, e.is_ramanujan)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--input", type=int, default=28)
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.9, 0.97])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--criterion", nargs="+", default=FAMILIES)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"LSTM {args.hidden}, input {args.input}: Δr of the 4 gate graphs of ih ({args.hidden}×{args.input}) and "
          f"hh ({args.hidden}×{args.hidden}), seeds {args.seeds}")  # fmt: skip
    print(f"{'criterion':24} {'sparsity':>8} {'ih min':>8} {'ih mean':>8} {'hh min':>8} {'hh mean':>8} "
          f"{'min (all)':>9} {'Ramanujan':>9}")  # fmt: skip
    with threadpool_limits(1):
        for sparsity in args.sparsity:
            for criterion in args.criterion:
                found = [gate_expansion(criterion, sparsity, s, args.hidden, args.input) for s in args.seeds]
                ih = [v[0] for f in found for k, v in f.items() if ".ih." in k]
                hh = [v[0] for f in found for k, v in f.items() if ".hh." in k]
                mins = [min(v[0] for v in f.values()) for f in found]
                verdicts = [v[1] for f in found for v in f.values() if v[1] is not None]
                share = f"{sum(verdicts)}/{len(verdicts)}" if verdicts else "n/a"
                print(f"{criterion:24} {sparsity:8g} {min(ih):8.3f} {np.mean(ih):8.3f} {min(hh):8.3f} "
                      f"{np.mean(hh):8.3f} {np.mean(mins):9.3f} {share:>9}")  # fmt: skip


if __name__ == "__main__":
    main()
