"""Timings of the expansion measures. Plain script, from the repository root:
``python benchmarks/expansion.py [--repeats N]`` with the package installed, else ``PYTHONPATH=. python …``.

Everything runs single-threaded (``threadpool_limits(1)``) unless said otherwise, every timing is
the median of ``--repeats`` runs, and a timing compared with another is interleaved with it run by
run, so a load that comes and goes on a shared machine hits both alike.

1. The default measure set (``layer_expansion(mask, weight)``, IMDB included) of a 4096×1024 graph
   at 90 % sparsity against its floor, ``scipy.sparse.linalg.svds(k=2)`` of the same biadjacency
   (targets: ≤ 0.25 s and ≤ 3× svds), and where the time goes (graph build, components, the three
   spectra, IMDB).
2. Peak memory of that call at 50 % sparsity (``tracemalloc``; numpy and scipy allocate through
   it; target ≤ 150 MB).
3. The thread limit with a busy torch in the same process: a background thread multiplies torch
   matrices on all of torch's threads while the default set runs with one BLAS thread
   (``ExpansionMetrics``' default) and with the BLAS default.
4. ``model_expansion`` of a 2-layer LSTM (hidden 256, input 28) at 90 % sparsity.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import scipy
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import svds
from threadpoolctl import threadpool_limits
from torch import nn

from rnn_prune.expansion import BipartiteGraph, layer_expansion, model_expansion
from rnn_prune.expansion.measures import imdb
from rnn_prune.masks import set_mask
from rnn_prune.registry import prunable_weights


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(repeats: int, **fns: Callable[[], object]) -> dict[str, float]:
    """Median wall time of each function, the functions run in turn ``repeats`` times."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():  # warm-up: imports, first-call caches
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn))
    return {name: statistics.median(t) for name, t in times.items()}


def random_graph(
    sparsity: float, shape: tuple[int, int] = (4096, 1024), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random(shape) >= sparsity, rng.standard_normal(shape).astype(np.float32)


def parts(mask: np.ndarray, weight: np.ndarray) -> dict[str, Callable[[], object]]:
    """One callable per costly shared part, each on a freshly built graph."""
    def fresh() -> BipartiteGraph:
        return BipartiteGraph(mask, weight)
    return {
        "graph build": fresh,
        "components": lambda: fresh().components,
        "spectrum of B": lambda: fresh().spectrum,
        "normalised spectrum": lambda: fresh().normalized_spectrum,
        "weighted spectrum": lambda: fresh().weighted_spectrum,
        "IMDB": lambda: imdb(fresh()),
    }


def busy_torch(stop: threading.Event) -> None:
    a = torch.randn(1024, 1024)
    while not stop.is_set():
        a = torch.tanh(a @ a / 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.2f}")

    mask, weight = random_graph(0.9)
    rows, cols = np.nonzero(mask)
    biadjacency = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=mask.shape)
    print(f"\n[1] 4096x1024 at sparsity {1 - mask.mean():.3f} ({len(rows)} edges), 1 thread, "
          f"median of {args.repeats} interleaved runs")
    with threadpool_limits(limits=1):
        t = interleaved(
            args.repeats,
            default_set=lambda: layer_expansion(mask, weight),
            svds=lambda: svds(biadjacency, k=2, return_singular_vectors=False),
        )
        print(f"  default measure set: {t['default_set']:.3f} s (target <= 0.25 s)")
        print(f"  svds(k=2):           {t['svds']:.3f} s; ratio {t['default_set'] / t['svds']:.2f} (target <= 3)")
        for name, seconds in interleaved(max(3, args.repeats // 2), **parts(mask, weight)).items():
            print(f"    {name:20s} {seconds:.3f} s")

    print("\n[2] peak memory of the default set, 4096x1024 at 50 % sparsity")
    dense_mask, dense_weight = random_graph(0.5)
    with threadpool_limits(limits=1):
        tracemalloc.start()
        layer_expansion(dense_mask, dense_weight)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"  peak {peak / 2**20:.0f} MiB above the inputs (target <= 150 MB)")

    print(f"\n[3] with torch busy on {torch.get_num_threads()} threads in the same process "
          f"(median of {args.repeats})")
    stop = threading.Event()
    worker = threading.Thread(target=busy_torch, args=(stop,), daemon=True)
    worker.start()
    try:
        with threadpool_limits(limits=1):
            one = statistics.median(timed(lambda: layer_expansion(mask, weight)) for _ in range(args.repeats))
        default = statistics.median(timed(lambda: layer_expansion(mask, weight)) for _ in range(args.repeats))
    finally:
        stop.set()
        worker.join()
    print(f"  1 BLAS thread (ExpansionMetrics' default): {one:.3f} s; BLAS default threads: {default:.3f} s")

    print("\n[4] 2-layer LSTM, hidden 256, input 28, 90 % random masks, 1 thread")
    torch.manual_seed(0)
    lstm = nn.LSTM(28, 256, num_layers=2)
    for w in prunable_weights(lstm):
        set_mask(w, torch.rand(w.shape) >= 0.9)
    with threadpool_limits(limits=1):
        t_model = statistics.median(timed(lambda: model_expansion(lstm)) for _ in range(3))
    result = model_expansion(lstm)
    print(f"  model_expansion (per gate + stacked, default set): {len(result)} graphs in {t_model:.3f} s")
    for name in ("lstm.l0.ih", "lstm.l0.hh.forget_gate", "lstm.l1.hh"):
        g = result[name]
        print(f"    {name:24s} delta_r {g.delta_r:7.3f}  is_ramanujan {g.is_ramanujan!s:5s}  "
              f"imdb {g.imdb:7.3f}  {g.reason[:60]!r}")


if __name__ == "__main__":
    main()
