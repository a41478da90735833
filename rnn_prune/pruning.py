"""Pure pruning math: which weights to keep for a cumulative target sparsity.

No Lightning here; :class:`callbacks.ScheduledPruning` decides *when*, a
:class:`~rnn_prune.criteria.Criterion` scores the weights, and these turn scores into masks.
Pruned weights never come back: they score ``-inf`` so a step only removes more.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


def pruned_count(numel: int, target: float) -> int:
    """Entries to prune for ``target`` sparsity: rounded to the nearest weight.

    A target below 1 always leaves at least one weight, so no graph is emptied by rounding.

    >>> pruned_count(10, 0.25), pruned_count(4, 0.9), pruned_count(4, 1.0)
    (2, 3, 4)
    """
    count = min(numel, round(target * numel))
    return min(count, numel - 1) if target < 1 and numel > 0 else count


def kept_count(numel: int, target: float) -> int:
    """Entries kept at ``target`` sparsity: what :func:`pruned_count` leaves.

    >>> kept_count(10, 0.25), kept_count(4, 0.9)
    (8, 1)
    """
    return numel - pruned_count(numel, target)


def mask_scores(score: Tensor, mask: Tensor) -> Tensor:
    """A criterion's raw scores made safe to rank: ``-inf`` where already pruned, NaN below the rest.

    Every criterion's output goes through here, so no criterion has to know that pruned weights
    never come back or guard against NaN weights.

    >>> mask_scores(torch.tensor([[-0.5, float("nan")], [2.0, 3.0]]), torch.tensor([[1, 1], [1, 0]])).tolist()
    [[-0.5, -3.4028234663852886e+38], [2.0, -inf]]
    """
    if score.shape != mask.shape:
        raise ValueError(f"scores have shape {tuple(score.shape)}, the mask has {tuple(mask.shape)}")
    lowest = torch.finfo(torch.float32).min  # a NaN score ranks below every real one, above pruned ones
    score = torch.nan_to_num(score.float(), nan=lowest, posinf=torch.finfo(torch.float32).max, neginf=lowest)
    return score.masked_fill(~mask.bool(), float("-inf"))


def keep_top(score: Tensor, keep: int) -> Tensor:
    """Boolean mask of the ``keep`` highest scores (never one that is ``-inf``).

    >>> keep_top(torch.tensor([[0.3, -1.0], [2.0, float("-inf")]]), 2).tolist()
    [[True, False], [True, False]]
    """
    flat = score.flatten()
    keep = min(keep, int(torch.isfinite(flat).sum()))
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if keep > 0:
        mask[torch.topk(flat, keep, sorted=False).indices] = True
    return mask.view_as(score)


def layerwise_masks(score_by_graph: Mapping[str, Tensor], target: float) -> dict[str, Tensor]:
    """Each unit separately reaches ``target`` (or keeps its sparsity if already beyond it)."""
    return {
        name: keep_top(score, kept_count(score.numel(), target))
        for name, score in score_by_graph.items()
    }


def global_masks(score_by_graph: Mapping[str, Tensor], target: float) -> dict[str, Tensor]:
    """One threshold across all units: the units together reach ``target``."""
    if not score_by_graph:
        return {}
    names = list(score_by_graph)
    flat = torch.cat([score_by_graph[n].flatten() for n in names])
    kept = keep_top(flat, kept_count(flat.numel(), target))
    out, start = {}, 0
    for name in names:
        shape = score_by_graph[name].shape
        out[name] = kept[start : start + score_by_graph[name].numel()].view(shape)
        start += score_by_graph[name].numel()
    return out


def mask_checksum(masks: list[Tensor]) -> Tensor:
    """A float64 fingerprint of a list of masks: equal masks give equal sums on every rank.

    Position-weighted (entry i counts i+1 times a per-mask prime-ish factor) so two different masks
    with the same number of ones differ.
    """
    total = torch.zeros((), dtype=torch.float64)
    for k, mask in enumerate(masks):
        flat = mask.detach().flatten().to("cpu", torch.float64)
        positions = torch.arange(1, flat.numel() + 1, dtype=torch.float64)
        total += (flat * positions).sum() * (k + 1.618033988749895)
    return total
