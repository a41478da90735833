"""Expansion measures of every graph of a model, as the registry splits it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from rnn_prune import registry
from rnn_prune.expansion._inputs import check_bool
from rnn_prune.expansion.graph import BipartiteGraph
from rnn_prune.expansion.layer import LayerExpansion, measure_graph
from rnn_prune.expansion.measures import MEASURES, Selection


def model_expansion(
    model: nn.Module,
    *,
    per_gate: bool = True,
    stacked: bool = True,
    measures: list[str] | Selection | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    include: list[str] | None = None,
) -> dict[str, LayerExpansion]:
    """:func:`~rnn_prune.expansion.layer_expansion` of every graph of ``model``.

    The graphs are the registry's (``registry.graphs(model, per_gate=, stacked=)``): each gate of a
    recurrent weight (rows of the stacked matrix) and/or the stacked matrix itself, and every
    ``nn.Linear``. The mask is ``graph.mask_block()`` (all ones while unpruned) and the weighted
    measures use ``graph.weight_block()``.

    Args:
        model: any module; its ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` / ``nn.Linear`` are read.
        per_gate: one graph per gate (``lstm.l0.ih.forget_gate``).
        stacked: one graph per stacked weight (``lstm.l0.ih``); always on for gate-less weights.
        measures, options: as for ``layer_expansion``; or ``measures`` a
            :class:`~rnn_prune.expansion.measures.Selection` checked already (then no ``options``).
        include: ``fnmatch`` globs on graph names; only matching graphs are measured
            (default: all).

    Returns:
        ``{graph name: LayerExpansion}`` in the registry's order.

    >>> result = model_expansion(nn.LSTM(3, 4), include=["*.hh.*_gate"], measures=["lambda1"])
    >>> list(result)
    ['lstm.l0.hh.input_gate', 'lstm.l0.hh.forget_gate', 'lstm.l0.hh.cell_gate', 'lstm.l0.hh.output_gate']
    >>> round(result["lstm.l0.hh.forget_gate"].lambda1, 6)  # K(4,4): √16
    4.0
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    per_gate = check_bool(per_gate, "per_gate")
    stacked = check_bool(stacked, "stacked")
    if isinstance(measures, Selection):
        if options is not None:
            raise ValueError("options come with the Selection; pass measures as names to give options")
        selection = measures
    else:
        selection = MEASURES.select(measures, options, options_argument="options")
    if include is not None and (
        isinstance(include, str)
        or not isinstance(include, (list, tuple))
        or not all(isinstance(p, str) for p in include)
    ):
        raise ValueError(f"include must be None or a list of glob strings, got {include!r}")
    return {
        graph.name: measure_graph(BipartiteGraph(graph.mask_block(), graph.weight_block()), selection)
        for graph in registry.graphs(model, per_gate=per_gate, stacked=stacked, include=include)
    }
