"""Timings of the expansion measures. Plain script, from the repository root:
``python benchmarks/expansion.py`` with the package installed, else ``PYTHONPATH=. python …``.

1. A 4096×1024 biadjacency at 90 % sparsity: every measure but IMDB and the random baseline
   (``layer_expansion(mask, weight, imdb=False)``) against ``numpy.linalg.eigvalsh`` of the dense
   (in+out)² adjacency, measured side by side (with the default BLAS threads and with one; the
   faster is the baseline), with the agreement of ``λ1``/``μ``.
2. IMDB and one random-baseline sample of the same graph, separately.
3. ``model_expansion`` of a 2-layer LSTM (hidden 256, input 28) with 90 % random masks.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits  # installed with scikit-learn
from torch import nn

from rnn_prune.expansion import layer_expansion, model_expansion, unfolded_expansion
from rnn_prune.masks import set_mask
from rnn_prune.registry import prunable_weights


def best_of(repeats: int, fn: Callable[[], object]) -> tuple[float, object]:
    """Shortest wall time of ``repeats`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPU cores")
    rng = np.random.default_rng(0)
    out_features, in_features, sparsity = 4096, 1024, 0.9
    mask = rng.random((out_features, in_features)) >= sparsity
    weight = rng.standard_normal((out_features, in_features))
    print(f"\n[1] {out_features}x{in_features} biadjacency, sparsity {1 - mask.mean():.3f}, "
          f"{int(mask.sum())} edges")

    ours, e = best_of(3, lambda: layer_expansion(mask, weight, imdb=False))
    n = in_features + out_features
    adjacency = np.zeros((n, n))
    adjacency[in_features:, :in_features] = mask
    adjacency[:in_features, in_features:] = mask.T
    # OpenBLAS threads spin when the cores are shared, so the baseline gets both thread counts and
    # the faster one is compared against: the conservative ratio.
    dense_times = {}
    for threads in (None, 1):
        with threadpool_limits(limits=threads):
            dense_times[threads], eig = best_of(1, lambda: np.linalg.eigvalsh(adjacency))
    dense = min(dense_times.values())
    print(f"  layer_expansion, all but IMDB & random (best of 3): {ours:8.3f} s")
    print(f"  numpy.linalg.eigvalsh of the dense {n}x{n} adjacency: {dense_times[None]:8.3f} s "
          f"(default BLAS threads), {dense_times[1]:8.3f} s (1 thread)")
    print(f"  speed-up vs the faster: {dense / ours:.1f}x")
    print(f"  lambda1 {e.lambda1:.10f} vs {eig[-1]:.10f}, mu {e.mu:.10f} vs {eig[-2]:.10f}, "
          f"max abs diff {max(abs(e.lambda1 - eig[-1]), abs(e.mu - eig[-2])):.1e}")
    print(f"  delta_r {e.delta_r:.4f}, is_ramanujan {e.is_ramanujan}, normalized_gap "
          f"{e.normalized_gap:.4f}, components {e.num_components}")

    print("\n[2] the same graph")
    t_imdb, e_imdb = best_of(1, lambda: layer_expansion(mask, imdb=True))
    t_base, e_base = best_of(1, lambda: layer_expansion(mask, imdb=False))
    print(f"  IMDB: {t_imdb - t_base:8.3f} s on top of the rest (imdb = {e_imdb.imdb:.4f})")
    t_rand, e_rand = best_of(1, lambda: layer_expansion(mask, imdb=False, random_samples=1))
    print(f"  random baseline, 1 sample: {t_rand - t_base:8.3f} s on top of the rest "
          f"(random_delta_r = {e_rand.random_delta_r:.4f} vs delta_r = {e_rand.delta_r:.4f})")

    print("\n[3] 2-layer LSTM, hidden 256, input 28, 90 % random masks")
    torch.manual_seed(0)
    lstm = nn.LSTM(28, 256, num_layers=2)
    for w in prunable_weights(lstm):
        set_mask(w, torch.rand(w.shape) >= sparsity)
    t_model, result = best_of(1, lambda: model_expansion(lstm))
    print(f"  model_expansion (per gate + stacked, IMDB on): {len(result)} graphs in {t_model:.3f} s")
    for name in ("lstm.l0.ih", "lstm.l0.hh.forget_gate", "lstm.l1.hh"):
        g = result[name]
        print(f"    {name:24s} lambda1 {g.lambda1:7.3f}  mu {g.mu:6.3f}  delta_r {g.delta_r:7.3f}  "
              f"imdb {g.imdb:7.3f}  reason {g.reason!r}")
    t_unf, unfolded = best_of(1, lambda: unfolded_expansion(lstm, steps=8))
    reach = ", ".join(f"{r:.3f}" for r in unfolded["l0"].reachability)
    print(f"  unfolded_expansion (T=8, 2 layers) in {t_unf:.3f} s; l0 reach by lag: {reach}")


if __name__ == "__main__":
    main()
