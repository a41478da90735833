"""Graph expansion of pruned layers: pure math on masks (torch / numpy / scipy / igraph only).

A weight of shape (out, in) with mask ``M`` is the bipartite graph left = ``in`` units,
right = ``out`` units, biadjacency ``B = (M != 0)``. This package measures how good an expander it
is — spectra (``λ1 = σ₁(B)``, ``μ = σ₂(B)``), the Ramanujan bound for irregular bipartite graphs
and its margin ``Δr``, Hoang et al.'s IMDB, the normalised spectral gap with its Cheeger bounds,
degrees and components — and how a recurrent layer unfolded in time connects past inputs to the
last hidden state.

Modules:
    :mod:`~rnn_prune.expansion.bipartite`: :func:`layer_expansion`, :class:`LayerExpansion`,
        :func:`degrees`, :func:`ramanujan_bound`.
    :mod:`~rnn_prune.expansion.spectral`: :func:`top_singular_values` (sparse, per component).
    :mod:`~rnn_prune.expansion.baseline`: :func:`random_bipartite` (same degree sequences).
    :mod:`~rnn_prune.expansion.network`: :func:`model_expansion` over the registry's graphs.
    :mod:`~rnn_prune.expansion.unfolded`: :func:`unfolded_expansion`, :class:`UnfoldedExpansion`.
"""

from rnn_prune.expansion.baseline import random_bipartite
from rnn_prune.expansion.bipartite import LayerExpansion, degrees, layer_expansion, ramanujan_bound
from rnn_prune.expansion.network import model_expansion
from rnn_prune.expansion.spectral import top_singular_values
from rnn_prune.expansion.unfolded import (
    UnfoldedExpansion,
    unfolded_expansion,
    unfolded_layer_expansion,
)

__all__ = [
    "LayerExpansion",
    "UnfoldedExpansion",
    "degrees",
    "layer_expansion",
    "model_expansion",
    "ramanujan_bound",
    "random_bipartite",
    "top_singular_values",
    "unfolded_expansion",
    "unfolded_layer_expansion",
]
