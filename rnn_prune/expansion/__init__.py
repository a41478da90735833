"""Graph expansion of pruned layers: pure math on masks (torch / numpy / scipy / igraph only).

A weight of shape (out, in) with mask ``M`` is the bipartite graph left = ``in`` units,
right = ``out`` units, biadjacency ``B = (M != 0)``. This package measures how good an expander it
is — spectra (``λ1 = σ₁(B)``, ``μ = σ₂(B)``), the Ramanujan bound for irregular bipartite graphs
and its margin ``Δr``, Hoang et al.'s IMDB, the normalised spectral gap with its Cheeger bounds,
degrees and components — and how a recurrent layer unfolded in time connects past inputs to the
last hidden state.

Modules:
    :mod:`~rnn_prune.expansion.layer`: :func:`layer_expansion`, :class:`LayerExpansion` (values by name).
    :mod:`~rnn_prune.expansion.graph`: :class:`BipartiteGraph` (one mask, built once, shared parts
        cached), :func:`degrees`, :func:`ramanujan_bound`.
    :mod:`~rnn_prune.expansion.measures`: one :class:`Measure` per measure (name, doc, options,
        summary), :data:`MEASURES` by name, :func:`measure`, :func:`register_measure`,
        :data:`DEFAULT_MEASURES`.
    :mod:`~rnn_prune.expansion.verdict`: the one Ramanujan rule (:func:`ramanujan_verdict`,
        :func:`ramanujan_share`).
    :mod:`~rnn_prune.expansion.components`: :func:`connected_components`, the one implementation.
    :mod:`~rnn_prune.expansion.spectral`: :func:`top_singular_values` (sparse, per component).
    :mod:`~rnn_prune.expansion.baseline`: :func:`random_bipartite` (same degree sequences).
    :mod:`~rnn_prune.expansion.network`: :func:`model_expansion` over the registry's graphs.
    :mod:`~rnn_prune.expansion.unfolded`: :func:`unfolded_expansion`, :class:`UnfoldedExpansion`.
"""

from rnn_prune.expansion.baseline import random_bipartite
from rnn_prune.expansion.components import Components, connected_components
from rnn_prune.expansion.graph import BipartiteGraph, degrees, ramanujan_bound
from rnn_prune.expansion.layer import LayerExpansion, layer_expansion
from rnn_prune.expansion.measures import (
    DEFAULT_MEASURES,
    MEASURES,
    Measure,
    MeasureRegistry,
    Option,
    measure,
    register_measure,
)
from rnn_prune.expansion.spectral import top_singular_values

_LAZY = {"model_expansion": "network", "UnfoldedExpansion": "unfolded", "unfolded_expansion": "unfolded",
         "unfolded_layer_expansion": "unfolded"}  # fmt: skip
"""Names whose modules walk an ``nn.Module`` (they import torch): loaded on first use, so that reading
logged measures back (the report, the study's ``--report-only``) needs no torch."""


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DEFAULT_MEASURES",
    "MEASURES",
    "BipartiteGraph",
    "Components",
    "LayerExpansion",
    "Measure",
    "MeasureRegistry",
    "Option",
    "UnfoldedExpansion",
    "degrees",
    "layer_expansion",
    "measure",
    "model_expansion",
    "connected_components",
    "ramanujan_bound",
    "random_bipartite",
    "register_measure",
    "top_singular_values",
    "unfolded_expansion",
    "unfolded_layer_expansion",
]
