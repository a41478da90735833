"""Pruning guards: veto a pruning step that would spoil a graph.

Before the pruning callback writes a proposed mask it asks its guard, graph by graph,
:meth:`Guard.accept`; a refused graph keeps its current mask and is frozen for the rest of the run
(the callback logs the epoch as ``prune/<graph>/stopped_epoch``). Pick one in YAML by name or by
``class_path``::

    guard: ramanujan                             # the built-in, by name (margin from guard_margin)
    guard:
      class_path: rnn_prune.guards.RamanujanGuard
      init_args: {margin: 0.1, stop_below_min_degree: false}
    guard:
      class_path: my_guards.MinDegreeGuard       # your own class, in your own file

For why guards (like criteria) subclass a base class rather than satisfy a ``typing.Protocol``, see
:mod:`rnn_prune.criteria`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from threadpoolctl import threadpool_limits
from torch import Tensor

from rnn_prune.criteria import resolve_named
from rnn_prune.expansion import BipartiteGraph
from rnn_prune.expansion.measures import delta_r, graph_verdict
from rnn_prune.registry import Graph


@dataclass(frozen=True)
class Decision:
    """A guard's answer: truthy when the step is accepted; ``reason`` goes to the log when refused."""

    accepted: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.accepted


class Guard(ABC):
    """Accept or refuse one graph's proposed mask; subclass and implement :meth:`accept`."""

    @abstractmethod
    def accept(self, graph: Graph, proposed_mask: Tensor) -> Decision | bool:
        """Whether ``graph`` may take ``proposed_mask`` (its (out, in) 0/1 block after the step).

        ``graph`` is a gate block or, for a gated weight, the whole stacked matrix (the callback
        asks for both); ``graph.mask_block()`` is still the mask before the step. Return a
        :class:`Decision` to say why a step is refused, or a plain bool.
        """

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class RamanujanGuard(Guard):
    """Keep every graph Ramanujan: refuse a step after which the one verdict is not ``True``.

    The verdict is :func:`rnn_prune.expansion.verdict.ramanujan_verdict` with ``margin``: ``Δr ≥
    margin``, connected apart from isolated nodes, and both average degrees at least
    ``MIN_AVG_DEGREE`` (3) — below that no verdict exists (Hoang et al.'s reference scores no such
    graph), so by default the guard stops a graph *before* it gets there.

    Args:
        margin: the smallest Δr a step may leave (the callback's ``guard_margin``).
        stop_below_min_degree: refuse steps that leave an average degree below 3 (no verdict).
            With ``False`` such steps pass, and only a defined, negative verdict stops a graph.

    >>> import torch
    >>> from torch import nn
    >>> from rnn_prune.registry import prunable_weights
    >>> graph = prunable_weights(nn.Linear(8, 8))[0].graphs()[0]
    >>> RamanujanGuard().accept(graph, torch.ones(8, 8)).accepted
    True
    >>> RamanujanGuard().accept(graph, torch.eye(8)).reason[:37]
    'average degree below 3 (d̄L=1, d̄R=1)'
    >>> RamanujanGuard(stop_below_min_degree=False).accept(graph, torch.eye(8)).accepted
    True
    """

    def __init__(self, margin: float = 0.0, stop_below_min_degree: bool = True) -> None:
        if not (isinstance(margin, int | float) and math.isfinite(margin)):
            raise ValueError(f"margin={margin!r} must be finite")
        if not isinstance(stop_below_min_degree, bool):
            raise ValueError(f"stop_below_min_degree={stop_below_min_degree!r} must be true or false")
        self.margin = float(margin)
        self.stop_below_min_degree = stop_below_min_degree

    def accept(self, graph: Graph, proposed_mask: Tensor) -> Decision:
        with threadpool_limits(limits=1, user_api="blas"):  # torch keeps the cores busy meanwhile
            proposed = BipartiteGraph(proposed_mask)
            decision = graph_verdict(proposed, margin=self.margin)
            if decision.is_ramanujan is None:
                if not self.stop_below_min_degree:
                    return Decision(True)
                return Decision(False, decision.reason)
            if decision.is_ramanujan:
                return Decision(True)
            return Decision(False, decision.reason or f"Δr={delta_r(proposed):.3f} < margin {self.margin:g}")


def resolve_guard(spec: Guard | str | None, *, margin: float = 0.0) -> Guard | None:
    """A :class:`Guard` (or ``None`` for ``"none"``) from an instance, a built-in name or a class path.

    ``margin`` is handed to the built-in ``ramanujan`` guard when it is named; a guard given as an
    instance or class path takes its own arguments.

    >>> resolve_guard("ramanujan", margin=0.5)
    RamanujanGuard(margin=0.5, stop_below_min_degree=True)
    >>> resolve_guard("none") is None
    True
    """
    if spec is None:
        return None
    def ramanujan(**args: Any) -> RamanujanGuard:  # ``ramanujan:margin=0.5`` overrides ``margin``
        return RamanujanGuard(**{"margin": margin, **args})

    builtins = {"none": lambda: None, "ramanujan": ramanujan}
    return resolve_named("guard", spec, Guard, builtins)
