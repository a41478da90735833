"""Pruning criteria: how important each weight of a graph is (higher = keep).

A criterion is one class with one method, :meth:`Criterion.scores`; the pruning callback keeps the
highest-scoring weights of each graph (or of all graphs, ``scope: global``). Pick one in YAML by
name or by ``class_path``::

    criterion: magnitude                          # a built-in, by name (see CRITERIA)
    criterion:
      class_path: my_criteria.TaylorCriterion     # your own class, in your own file
      init_args: {power: 2}

Why a base class and not a ``typing.Protocol``: jsonargparse 4.53 resolves a ``class_path`` for a
Protocol-typed argument only when the class repeats the protocol method's annotations exactly (an
unannotated ``scores`` silently turns the value into a plain string), and it cannot resolve short
class names for it. A subclass of :class:`Criterion` resolves with or without annotations, by full
path or by class name.

Scores need not care about weights already pruned: the callback sets those to ``-inf`` (pruned
weights never come back) and ranks NaN scores below every real one.
"""

from __future__ import annotations

import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from rnn_prune.registry import Graph, PrunableWeight


class Criterion(ABC):
    """Importance of every weight of one graph; subclass and implement :meth:`scores`.

    The hooks :meth:`observe`, :meth:`reset`, :meth:`state_dict` and :meth:`load_state_dict` do
    nothing by default; a criterion that learns from training (say from gradients) overrides them.
    """

    @abstractmethod
    def scores(self, graph: Graph, mask: Tensor, generator: torch.Generator) -> Tensor:
        """Scores of shape ``mask.shape`` (the graph's (out, in) block); higher = keep.

        Args:
            graph: the graph being pruned: ``graph.weight_block()`` is its (out, in) weight,
                ``graph.weight.parameter`` the whole parameter, ``graph.rows`` its rows there.
            mask: the graph's current 0/1 mask (pruned entries score ``-inf`` whatever you return).
            generator: a CPU generator seeded identically on every DDP rank for this step; draw
                any randomness from it so every rank chooses the same mask.
        """

    def observe(self, weights: Sequence[PrunableWeight]) -> None:  # noqa: B027 (optional hook)
        """Called after every backward pass (gradients in ``.grad``, pruned ones not yet zeroed)."""

    def reset(self) -> None:  # noqa: B027 (optional hook)
        """Called after every pruning step: forget what was observed for the step just taken."""

    def state_dict(self) -> dict[str, Any]:
        """Resumable state, saved in the pruning callback's checkpoint entry."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Restore what :meth:`state_dict` returned."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class MagnitudeCriterion(Criterion):
    """Keep the largest ``|w|`` (Han et al., 2015; Zhu & Gupta, 2017).

    >>> from torch import nn
    >>> from rnn_prune.registry import prunable_weights
    >>> layer = nn.Linear(2, 1)
    >>> _ = nn.init.constant_(layer.weight, -3.0)
    >>> graph = prunable_weights(layer)[0].graphs()[0]
    >>> MagnitudeCriterion().scores(graph, graph.mask_block(), torch.Generator()).tolist()
    [[3.0, 3.0]]
    """

    def scores(self, graph: Graph, mask: Tensor, generator: torch.Generator) -> Tensor:
        return graph.weight_block().abs().float()


class RandomCriterion(Criterion):
    """Uniform random scores: the baseline every criterion must beat.

    Drawn on the CPU from ``generator`` so every process that seeds it the same way draws the same
    scores, whatever its device.
    """

    def scores(self, graph: Graph, mask: Tensor, generator: torch.Generator) -> Tensor:
        return torch.rand(mask.shape, generator=generator).to(mask.device)


class GradientCriterion(Criterion):
    r"""Connection sensitivity ``|w · ∂L/∂w|``, summed over the training steps since the last prune.

    .. math:: s_{ij} = \sum_{t} |w_{ij}^{(t)} \, g_{ij}^{(t)}|

    The first-order Taylor estimate of how much the loss changes when a weight is removed: SNIP
    (Lee et al., ICLR 2019) scores it once on a batch at initialisation; here it is accumulated
    over every backward pass between two pruning steps, in the spirit of the accumulated Taylor
    scores of Molchanov et al. (CVPR 2019). SNIP is the usual data-driven baseline of RNN pruning
    (Zhang & Stadie, ICLR 2020, compare against it on LSTMs and GRUs). A weight with a large
    magnitude but no effect on the loss is pruned before a small one that matters.

    Notes:
        Pruning before any backward pass (a schedule whose first step is at epoch 0) raises: there
        is nothing to score yet. Under mixed precision the gradients are still loss-scaled when
        observed; the scale is the same for every weight of a step, so rankings within a step hold.
    """

    def __init__(self) -> None:
        self._sums: dict[str, Tensor] = {}

    def observe(self, weights: Sequence[PrunableWeight]) -> None:
        with torch.no_grad():
            for weight in weights:
                param = weight.parameter
                if param.grad is None:
                    continue
                term = (param.detach() * param.grad).abs().float()
                total = self._sums.get(weight.qualified_name)
                # (a checkpoint restores the sums on the CPU; they follow the weight's device)
                self._sums[weight.qualified_name] = term if total is None else total.to(term.device).add_(term)

    def scores(self, graph: Graph, mask: Tensor, generator: torch.Generator) -> Tensor:
        total = self._sums.get(graph.weight.qualified_name)
        if total is None:
            raise RuntimeError(
                f"GradientCriterion has seen no gradient of {graph.weight.name} before this pruning step: "
                "start the schedule after some training (start_epoch >= 1), or use criterion=magnitude"
            )
        return total[graph.rows].to(mask.device)

    def reset(self) -> None:
        self._sums.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"sums": {k: v.detach().cpu().clone() for k, v in self._sums.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._sums = {k: v.clone() for k, v in state_dict.get("sums", {}).items()}


CRITERIA: dict[str, type[Criterion]] = {
    "magnitude": MagnitudeCriterion,
    "random": RandomCriterion,
    "gradient": GradientCriterion,
}
"""Built-in criteria by the names a config may use instead of a ``class_path``."""


def resolve_criterion(spec: Criterion | str) -> Criterion:
    """A :class:`Criterion` from an instance, a built-in name or a class path (``my_module.MyCriterion``).

    A class path names a subclass of :class:`Criterion` (built with no arguments) or an instance
    of one; give ``init_args`` through YAML's ``class_path`` form instead.

    >>> resolve_criterion("magnitude")
    MagnitudeCriterion()
    >>> resolve_criterion("rnn_prune.criteria.RandomCriterion")
    RandomCriterion()
    """
    return resolve_named("criterion", spec, Criterion, CRITERIA)


def resolve_named(argument: str, spec: Any, base: type, builtins: Mapping[str, Callable[[], Any]]) -> Any:
    """An instance of ``base`` from ``spec`` (an instance, a key of ``builtins``, or a class path).

    Shared by criteria and guards so both accept the same spellings and fail with the same
    message: a ``ValueError`` that names ``argument``, the bad value and what is allowed.
    """
    if isinstance(spec, base):
        return spec
    allowed = f"one of {tuple(builtins)} or the class path of a {base.__module__}.{base.__name__} subclass"
    if not isinstance(spec, str):
        raise ValueError(f"{argument}={spec!r} is not {allowed}")
    if spec in builtins:
        return builtins[spec]()
    if "." not in spec:
        raise ValueError(f"{argument}={spec!r} is not {allowed}")
    try:
        found = pkgutil.resolve_name(spec)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"{argument}={spec!r} cannot be imported ({error}); it must be {allowed}") from error
    if isinstance(found, type) and issubclass(found, base):
        return found()
    if isinstance(found, base):
        return found
    raise ValueError(f"{argument}={spec!r} names {found!r}, which is not {allowed}")
