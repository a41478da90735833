"""Masks as buffers next to the weights they prune.

Why buffers and not ``torch.nn.utils.prune``: ``prune`` replaces ``weight`` by a computed attribute and
adds ``weight_orig``, which breaks ``nn.LSTM``'s flattened cuDNN weights ("not part of single
contiguous chunk of memory") and renames state_dict keys. Here the parameter stays the very same
tensor; pruning multiplies it by its mask in place, and a ``<param>_mask`` buffer on the owning
module records the mask so checkpoints carry it. A dense model has no mask buffers at all, so its
state_dict keys are the stock ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from rnn_prune.registry import MASK_SUFFIX, PrunableWeight, prunable_weights


def get_mask(weight: PrunableWeight) -> Tensor:
    """The weight's 0/1 mask (all ones while it has never been pruned)."""
    mask = weight.mask
    return torch.ones_like(weight.parameter, dtype=torch.bool) if mask is None else mask


def set_mask(weight: PrunableWeight, mask: Tensor) -> None:
    """Store ``mask`` (bool, same shape as the weight) and zero the pruned weights now."""
    param = weight.parameter
    if mask.shape != param.shape:
        raise ValueError(f"mask for {weight.name} has shape {tuple(mask.shape)}, weight has {tuple(param.shape)}")
    mask = mask.to(device=param.device, dtype=torch.bool)
    existing = weight.mask
    if existing is None:
        weight.module.register_buffer(weight.mask_name, mask.clone())
    else:
        existing.copy_(mask)
    with torch.no_grad():
        param.mul_(mask)


def apply_masks(weights: Iterable[PrunableWeight]) -> None:
    """Zero every pruned weight again (call after an optimizer step: Adam moves zeros)."""
    with torch.no_grad():
        for weight in weights:
            mask = weight.mask
            if mask is not None:
                weight.parameter.mul_(mask)


def mask_gradients(weights: Iterable[PrunableWeight]) -> None:
    """Zero the gradients of pruned weights so optimizers see no signal to regrow them."""
    for weight in weights:
        mask, grad = weight.mask, weight.parameter.grad
        if mask is not None and grad is not None:
            grad.mul_(mask)


def sparsity(weights: Iterable[PrunableWeight]) -> float:
    """Share of pruned entries over ``weights``."""
    weights = list(weights)
    total = sum(w.parameter.numel() for w in weights)
    kept = sum(int(get_mask(w).sum()) for w in weights)
    return 1.0 - kept / total if total else 0.0


def register_masks_from_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor]) -> list[str]:
    """Create the mask buffers a pruned checkpoint holds, so a fresh model can load it strictly.

    A freshly built model is dense and has no ``*_mask`` buffers; ``load_state_dict`` would reject
    a pruned checkpoint's extra keys. Call this first (the LightningModule does, in
    ``on_load_checkpoint``). ``state_dict`` keys may carry a prefix (``model.``, ``net.``); returns
    the names of the weights that got a mask.
    """
    registered = []
    for weight in prunable_weights(model):
        suffix = weight.qualified_name + MASK_SUFFIX
        key = next((k for k in state_dict if k == suffix or k.endswith("." + suffix)), None)
        if key is not None and weight.mask is None:
            weight.module.register_buffer(weight.mask_name, torch.ones_like(state_dict[key], dtype=torch.bool))
            registered.append(weight.name)
    return registered
