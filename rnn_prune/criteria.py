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

A criterion with arguments can also be named in one string, ``name:key=value,key=value``
(:func:`rnn_prune.specs.parse_spec`), the form the CLI's and the study's ``--criterion`` take::

    criterion: clustered:mixing=0.25,blocks=4

*Structural* criteria (:class:`StructuralCriterion`: ``biregular``, ``clustered``, ``rewired``)
do not rank weights by importance: they draw each graph's final mask by its structure, once, at
the run's first pruning step, for the sparsity the schedule ends at (:meth:`Criterion.plan`).
Every step keeps that mask's edges and prunes the others largest-``|w|``-last, so under a gradual
schedule each step's mask holds the next one (pruned weights stay pruned) and the last step lands
exactly on the structural mask.
"""

from __future__ import annotations

import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from rnn_prune.expansion._inputs import check_fraction
from rnn_prune.pruning import keep_top, kept_count, mask_scores
from rnn_prune.registry import Graph, PrunableWeight
from rnn_prune.specs import parse_spec
from rnn_prune.structural import biregular_mask, check_clustered, clustered_mask, rewired_mask


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

    def plan(self, graphs: Sequence[Graph], sparsity: float, generator: torch.Generator) -> None:  # noqa: B027
        """Called once, at the run's first pruning step and before its :meth:`scores`, with the
        sparsity every graph reaches at the run's last step: a criterion that decides the final
        mask up front (:class:`StructuralCriterion`) draws it here. Does nothing by default."""

    def check(self, graphs: Sequence[Graph], sparsity: float) -> None:  # noqa: B027
        """Called before training with the graphs and the sparsity :meth:`plan` will get: raise a
        ``ValueError`` naming the graph when this criterion cannot reach it there, so a run that
        cannot work stops before its first epoch. Does nothing by default."""

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


def _draw_seed(generator: torch.Generator) -> int:
    """A numpy / igraph seed drawn from the step's generator (the same on every DDP rank)."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


class StructuralCriterion(Criterion):
    """Draws each graph's final mask by its structure; subclass and implement :meth:`build`.

    At the run's first pruning step (:meth:`plan`) every graph gets its mask for the run's final
    sparsity, exactly ``numel − pruned_count(numel, sparsity)`` edges, the count the pruning step
    keeps there. :meth:`scores` then ranks that mask's edges above every other weight and the
    others by ``|w|``: a gradual schedule prunes the other weights smallest first, each step's
    mask is a subset of the one before (pruned weights stay pruned), and the final step keeps
    exactly the planned mask. At initialisation (one step) the mask is the planned one at once.
    The planned masks are part of :meth:`state_dict`, so a resumed run keeps them.

    Notes:
        The callback refuses ``scope: global`` with these: each graph's edge count is the
        criterion's to set. A run that stops before its schedule's end, or a graph a guard froze,
        keeps a superset of the planned mask.
    """

    def __init__(self) -> None:
        self._final: dict[str, Tensor] = {}

    @abstractmethod
    def build(self, graph: Graph, keep: int, generator: torch.Generator) -> Tensor:
        """The graph's final boolean (out, in) mask with exactly ``keep`` edges (draw randomness from ``generator``)."""

    def plan(self, graphs: Sequence[Graph], sparsity: float, generator: torch.Generator) -> None:
        for graph in graphs:
            mask = graph.mask_block()
            if not bool(mask.all()):
                raise ValueError(
                    f"{type(self).__name__} draws the whole mask of {graph.name}, but it is already pruned before "
                    "the criterion's first step (a pruned checkpoint, or another pruning callback): start from a "
                    "dense model"
                )
            keep = kept_count(mask.numel(), sparsity)
            final = torch.as_tensor(self.build(graph, keep, generator), dtype=torch.bool).cpu()
            if final.shape != mask.shape or int(final.sum()) != keep:
                raise RuntimeError(
                    f"{type(self).__name__}.build gave {graph.name} a mask of shape {tuple(final.shape)} with "
                    f"{int(final.sum())} edges; it must be {tuple(mask.shape)} with {keep}"
                )
            self._final[graph.name] = final

    def final_mask(self, name: str) -> Tensor:
        """The planned final mask of graph ``name`` (raises a clear error when there is none)."""
        if name not in self._final:
            raise RuntimeError(
                f"{type(self).__name__} has no planned mask for {name}: it plans at the run's first pruning step, "
                "and this run was resumed from a checkpoint pruned with another criterion"
            )
        return self._final[name]

    def scores(self, graph: Graph, mask: Tensor, generator: torch.Generator) -> Tensor:
        final = self.final_mask(graph.name).to(mask.device)
        magnitude = torch.nan_to_num(graph.weight_block().detach().abs().float(), nan=0.0, posinf=0.0)
        rank = magnitude / (magnitude.max() + 1.0)  # in [0, 1): below every planned edge's score
        return torch.where(final, rank + 2.0, rank)

    def state_dict(self) -> dict[str, Any]:
        return {"final": {name: mask.clone() for name, mask in self._final.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._final = {name: mask.to(torch.bool).cpu() for name, mask in state_dict.get("final", {}).items()}


def _shape(graph: Graph) -> tuple[int, int]:
    rows, cols = graph.weight_block().shape  # a view: no all-ones mask built for a dense weight
    return int(rows), int(cols)


class BiregularCriterion(StructuralCriterion):
    """A random biregular mask: every output keeps as many inputs as every other, and every input
    feeds as many outputs (±1 where the counts do not divide), wired at random.

    Why: random biregular graphs are near-Ramanujan, the best expander a sparsity allows; with the
    degrees as even as they can be, nothing but the wiring is left to chance
    (:func:`rnn_prune.structural.biregular_mask`).
    """

    def build(self, graph: Graph, keep: int, generator: torch.Generator) -> Tensor:
        return torch.from_numpy(biregular_mask(_shape(graph), keep, seed=_draw_seed(generator)))


class ClusteredCriterion(StructuralCriterion):
    """``biregular``'s edge count and degrees, wired inside ``blocks`` groups but for a share ``mixing``.

    Why: with sparsity and degrees fixed, ``mixing`` dials expansion alone: 0 gives ``blocks``
    disconnected pieces (no expansion), 1 a random biregular graph
    (:func:`rnn_prune.structural.clustered_mask`, which says how the groups are drawn).

    Args:
        blocks: groups per side (capped at a side's node count); the mask must fit
            block-diagonally, so the density must stay below about ``1 / blocks``.
        mixing: share of the edges wired over the whole graph instead of inside their group.
    """

    def __init__(self, blocks: int = 2, mixing: float = 0.25) -> None:
        super().__init__()
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
            raise ValueError(f"blocks={blocks!r} must be a positive integer")
        self.blocks = blocks
        self.mixing = check_fraction(mixing, "mixing")

    def check(self, graphs: Sequence[Graph], sparsity: float) -> None:
        for graph in graphs:
            shape = _shape(graph)
            try:
                check_clustered(shape, kept_count(shape[0] * shape[1], sparsity), blocks=self.blocks)
            except ValueError as error:
                raise ValueError(f"clustered criterion on {graph.name} at sparsity {sparsity:g}: {error}") from error

    def build(self, graph: Graph, keep: int, generator: torch.Generator) -> Tensor:
        try:
            mask = clustered_mask(_shape(graph), keep, blocks=self.blocks, mixing=self.mixing,
                                  seed=_draw_seed(generator))  # fmt: skip
        except ValueError as error:
            raise ValueError(f"clustered criterion on {graph.name}: {error}") from error
        return torch.from_numpy(mask)


class RewiredCriterion(StructuralCriterion):
    """Another criterion's mask (default ``magnitude``) with a share ``swaps`` of its edges moved by
    degree-preserving double-edge swaps.

    Why: it keeps exactly the degrees the source criterion chose and randomises which neighbours
    they connect, so comparing it with its source separates "which degrees" from "which wiring"
    (:func:`rnn_prune.structural.rewired_mask`; python-igraph's ``rewire``).

    Args:
        source: the criterion whose mask is rewired: a name, ``name:key=value`` spec, class path
            or instance. It scores the dense graph at the run's first pruning step (magnitude at
            that step's weights).
        swaps: share of the edges that must end up elsewhere (1: as random as the degrees allow).
    """

    def __init__(self, source: Criterion | str = "magnitude", swaps: float = 1.0) -> None:
        super().__init__()
        self.swaps = check_fraction(swaps, "swaps")
        self.source = resolve_criterion(source)

    def check(self, graphs: Sequence[Graph], sparsity: float) -> None:
        self.source.check(graphs, sparsity)

    def plan(self, graphs: Sequence[Graph], sparsity: float, generator: torch.Generator) -> None:
        self.source.plan(graphs, sparsity, generator)
        super().plan(graphs, sparsity, generator)

    def build(self, graph: Graph, keep: int, generator: torch.Generator) -> Tensor:
        mask = graph.mask_block()
        chosen = keep_top(mask_scores(self.source.scores(graph, mask, generator), mask), keep).cpu()
        return torch.from_numpy(rewired_mask(chosen.numpy(), self.swaps, seed=_draw_seed(generator)))

    def observe(self, weights: Sequence[PrunableWeight]) -> None:
        self.source.observe(weights)

    def reset(self) -> None:
        self.source.reset()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "source": self.source.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.source.load_state_dict(state_dict.get("source", {}))


CRITERIA: dict[str, type[Criterion]] = {
    "magnitude": MagnitudeCriterion,
    "random": RandomCriterion,
    "gradient": GradientCriterion,
    "biregular": BiregularCriterion,
    "clustered": ClusteredCriterion,
    "rewired": RewiredCriterion,
}
"""Built-in criteria by the names a config may use instead of a ``class_path``."""


def resolve_criterion(spec: Criterion | str) -> Criterion:
    """A :class:`Criterion` from an instance, a built-in name or a class path (``my_module.MyCriterion``),
    each optionally with arguments (``clustered:mixing=0.5``, see :func:`rnn_prune.specs.parse_spec`).

    >>> resolve_criterion("magnitude")
    MagnitudeCriterion()
    >>> resolve_criterion("rnn_prune.criteria.RandomCriterion")
    RandomCriterion()
    >>> resolve_criterion("clustered:mixing=0.5,blocks=4")
    ClusteredCriterion(blocks=4, mixing=0.5)
    """
    return resolve_named("criterion", spec, Criterion, CRITERIA)


def resolve_named(argument: str, spec: Any, base: type, builtins: Mapping[str, Callable[..., Any]]) -> Any:
    """An instance of ``base`` from ``spec`` (an instance, a key of ``builtins``, or a class path),
    with the arguments of a ``name:key=value,...`` spec (:func:`~rnn_prune.specs.parse_spec`).

    Shared by criteria and guards so both accept the same spellings and fail with the same
    message: a ``ValueError`` that names ``argument``, the bad value and what is allowed.
    """
    if isinstance(spec, base):
        return spec
    allowed = f"one of {tuple(builtins)} or the class path of a {base.__module__}.{base.__name__} subclass"
    if not isinstance(spec, str):
        raise ValueError(f"{argument}={spec!r} is not {allowed}")
    try:
        name, args = parse_spec(spec)
    except ValueError as error:
        raise ValueError(f"{argument}={error}") from None
    if name in builtins:
        return _construct(argument, spec, builtins[name], args)
    if "." not in name:
        raise ValueError(f"{argument}={spec!r} is not {allowed}")
    try:
        found = pkgutil.resolve_name(name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"{argument}={spec!r} cannot be imported ({error}); it must be {allowed}") from error
    if isinstance(found, type) and issubclass(found, base):
        return _construct(argument, spec, found, args)
    if isinstance(found, base) and not args:
        return found
    raise ValueError(f"{argument}={spec!r} names {found!r}, which is not {allowed}")


def _construct(argument: str, spec: str, factory: Callable[..., Any], args: Mapping[str, Any]) -> Any:
    """``factory(**args)``, a wrong argument name reported as a ``ValueError`` naming ``argument``."""
    try:
        return factory(**args)
    except TypeError as error:
        raise ValueError(f"{argument}={spec!r}: {error}") from None
