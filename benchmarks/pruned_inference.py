"""What does 90 % unstructured pruning buy at inference on a CPU?  ``python benchmarks/pruned_inference.py``

Times one forward pass (no grad) of ``sfmnist_lstm``'s recurrent layer — LSTM 128 over 28 steps
of 28 features, batch 128 (``--batch``), one torch thread — in five forms:

1. ``nn.LSTM`` dense (what training runs);
2. ``nn.LSTM`` with 90 % of ``weight_ih`` / ``weight_hh`` zeroed (what a pruned model runs: the
   zeros are multiplied like any other number);
3. the same step written out by hand with dense matrices (the baseline of 4);
4. that hand-written step with the pruned matrices as ``torch.sparse_csr`` tensors (what a sparse
   kernel gives today);
5. ``nn.LSTM`` dense with 32 hidden units: about as many weights as the 90 %-pruned 128-unit layer
   (4·32·(28+32) = 7,680 against 0.1·4·128·(28+128) = 7,987), i.e. what *structured* pruning
   (removing whole units) to the same weight count would run.

Rounds are interleaved (every form once per round, ``--rounds`` rounds) and the medians printed
with each form's ratio to form 1 (or, for 4, to 3).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn


def pruned(lstm: nn.LSTM, sparsity: float, generator: torch.Generator) -> nn.LSTM:
    """A copy of ``lstm`` with a random ``sparsity`` share of each weight matrix set to zero."""
    copy = nn.LSTM(lstm.input_size, lstm.hidden_size, batch_first=True)
    copy.load_state_dict(lstm.state_dict())
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0"):
            weight = getattr(copy, name)
            weight.mul_(torch.rand(weight.shape, generator=generator) >= sparsity)
    return copy


def hand_step(w_ih: Tensor, w_hh: Tensor, bias: Tensor, matmul: Callable[[Tensor, Tensor], Tensor]) -> Callable:
    """An LSTM forward over ``x`` (B, T, F) with ``matmul(W, v)`` computing ``W @ v`` (v: features × B)."""

    def forward(x: Tensor) -> Tensor:
        batch = x.shape[0]
        hidden = w_hh.shape[1]
        h = torch.zeros(hidden, batch)
        c = torch.zeros(hidden, batch)
        inputs = x.permute(2, 1, 0)  # (F, T, B) → per step (F, B)
        for t in range(x.shape[1]):
            gates = matmul(w_ih, inputs[:, t].contiguous()) + matmul(w_hh, h) + bias
            i, f, g, o = gates.chunk(4, dim=0)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        return h

    return forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=20, help="forward passes per form per round")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--sparsity", type=float, default=0.9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    dense = nn.LSTM(28, 128, batch_first=True)
    sparse = pruned(dense, args.sparsity, generator)
    small = nn.LSTM(28, 32, batch_first=True)
    bias = (sparse.bias_ih_l0 + sparse.bias_hh_l0).detach().unsqueeze(1)
    w_ih, w_hh = sparse.weight_ih_l0.detach(), sparse.weight_hh_l0.detach()
    forms: dict[str, Callable[[Tensor], Tensor]] = {
        "nn.LSTM dense": lambda x: dense(x)[0],
        f"nn.LSTM {args.sparsity:.0%} zeros": lambda x: sparse(x)[0],
        "hand-written, dense matrices": hand_step(w_ih, w_hh, bias, torch.mm),
        "hand-written, CSR matrices": hand_step(w_ih.to_sparse_csr(), w_hh.to_sparse_csr(), bias, torch.mm),
        "nn.LSTM dense, 32 units": lambda x: small(x)[0],
    }
    x = torch.randn(args.batch, 28, 28, generator=generator)
    with torch.no_grad():
        reference = forms["hand-written, dense matrices"](x)
        assert torch.allclose(forms["hand-written, CSR matrices"](x), reference, atol=1e-5)
        torch.testing.assert_close(reference.T, sparse(x)[0][:, -1], atol=1e-5, rtol=1e-4)
        times: dict[str, list[float]] = {name: [] for name in forms}
        for r in range(args.rounds):
            names = list(forms) if r % 2 == 0 else list(reversed(forms))
            for name in names:
                forms[name](x)  # warm
                start = time.perf_counter()
                for _ in range(args.repeats):
                    forms[name](x)
                times[name].append((time.perf_counter() - start) / args.repeats * 1000)
    median = {name: statistics.median(values) for name, values in times.items()}
    base = {name: median["nn.LSTM dense"] for name in forms}
    base["hand-written, CSR matrices"] = median["hand-written, dense matrices"]
    print(f"torch {torch.__version__}, 1 thread, batch {args.batch} x 28 steps x 28 features, LSTM 128, "
          f"median of {args.rounds} interleaved rounds of {args.repeats} passes")  # fmt: skip
    for name in forms:
        print(f"{name:32s} {median[name]:7.2f} ms per batch   {median[name] / base[name]:.2f}x")


if __name__ == "__main__":
    main()
