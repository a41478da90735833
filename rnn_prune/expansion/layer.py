"""The measures of one layer's graph: :func:`layer_expansion` and its result, :class:`LayerExpansion`.

A weight ``W`` of shape (out, in) with mask ``M`` is the bipartite graph whose left side is the
``in`` units, right side the ``out`` units, with an edge ``j → i`` wherever ``M[i, j] != 0``: its
biadjacency is ``B = (M != 0)`` as 0/1. The weighted variants use ``|W| ⊙ B``. The measures
themselves live in :mod:`~rnn_prune.expansion.measures`, one registered function each; this module
runs the ones asked for over one :class:`~rnn_prune.expansion.graph.BipartiteGraph` and holds
their values by name — no field per measure, so a new measure changes nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rnn_prune.expansion.graph import NAN, BipartiteGraph
from rnn_prune.expansion.measures import MEASURES, Selection, Value

__all__ = ["LayerExpansion", "layer_expansion", "measure_graph"]


@dataclass(frozen=True)
class LayerExpansion:
    """The measures of one bipartite graph, by name (see :mod:`~rnn_prune.expansion.measures`).

    ``e["delta_r"]`` and ``e.delta_r`` read a computed value; a registered measure that was not
    computed reads its :attr:`~rnn_prune.expansion.measures.Measure.missing` value (NaN, ``None``
    for a flag such as ``is_ramanujan``).

    Attributes:
        values: ``{measure name: value}`` of the measures computed, in the order asked.
        reason: why some measures are NaN or the verdict is undefined (``"; "``-joined, ``""``
            when none are).
    """

    values: Mapping[str, Value] = field(default_factory=dict)
    reason: str = ""

    def __getitem__(self, name: str) -> Value:
        if name in self.values:
            return self.values[name]
        if name in MEASURES:
            return MEASURES[name].missing
        raise KeyError(f"{name!r} is neither computed here nor a registered measure")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("values", "reason"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(str(error)) from None

    def as_dict(self, measures: list[str] | None = None) -> dict[str, float]:
        """Values as floats for loggers: bools as 0/1, ``None`` as NaN.

        Args:
            measures: these names, in this order, NaN for one not computed (default: the computed).
        """
        names = list(self.values) if measures is None else measures
        return {name: _as_float(self.values.get(name)) for name in names}


def _as_float(value: Value) -> float:
    return NAN if value is None else float(value)


def measure_graph(graph: BipartiteGraph, selection: Selection) -> LayerExpansion:
    """The selected measures of ``graph`` (the selection checked already, by ``MEASURES.select``)."""
    values = {m.name: m(graph, **selection.options.get(m.name, {})) for m in selection.measures}
    return LayerExpansion(values, "; ".join(graph.reasons))


def layer_expansion(
    mask: object,
    weight: object = None,
    *,
    measures: list[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> LayerExpansion:
    """The expansion measures of one (out, in) mask read as a bipartite graph.

    .. math:: \\Delta r = \\sqrt{\\bar d_L - 1} + \\sqrt{\\bar d_R - 1} - \\sigma_2(B)

    Args:
        mask: (out, in) 0/1 or bool torch tensor or numpy array; edge where ``mask != 0``.
        weight: optional (out, in) weight; the weighted measures use ``|weight| ⊙ (mask != 0)``
            (values at pruned positions are ignored, NaN included).
        measures: names of :data:`~rnn_prune.expansion.MEASURES` (or ``module.function``) to
            compute; only these are computed. Default: :data:`~rnn_prune.expansion.DEFAULT_MEASURES`.
        options: ``{measure: {option: value}}`` for measures that declare options; a measure named
            here is computed too, e.g. ``{"random_delta_r": {"samples": 4, "seed": 1}}``.

    Returns:
        :class:`LayerExpansion`.

    Notes:
        Degenerate graphs give defined values instead of errors: no edges gives ``λ1 = μ = 0`` and
        NaN averages / bounds with ``reason`` ``"no edges"``; a non-finite weight on a kept edge
        gives NaN weighted measures with a reason; IMDB is NaN when no subgraph passes the
        reference's gate. The mask must not hold NaN (``ValueError``). Not checked: that the mask
        holds only 0 and 1 (any nonzero is an edge).

    ``B = [[1, 1], [1, 0]]`` is the 4-node path 1 — 0' — 0 — 1' (left nodes 0, 1 are the columns,
    right nodes 0', 1' the rows); its singular values are the golden ratio φ and ``1/φ``, both
    average degrees are 1.5 — below 3, so there is no Ramanujan verdict:

    >>> import numpy as np
    >>> e = layer_expansion(np.array([[1, 1], [1, 0]]))
    >>> round(e.lambda1, 6), round(e.mu, 6), e.num_edges, e.avg_left_degree, e.avg_right_degree
    (1.618034, 0.618034, 3, 1.5, 1.5)
    >>> round(e.ramanujan_bound, 6), round(e.delta_r, 6), e.is_ramanujan, e.num_components
    (1.414214, 0.79618, None, 1)
    >>> round(e.normalized_gap, 6), e.reason.split(":")[0]
    (0.5, 'average degree below 3 (d̄L=1.5, d̄R=1.5)')

    Only the measures asked for are computed; the others read NaN (``None`` for a flag):

    >>> only = layer_expansion(np.ones((4, 5)), measures=["num_edges", "is_ramanujan"])
    >>> only.as_dict(), only.lambda1
    ({'num_edges': 20.0, 'is_ramanujan': 1.0}, nan)
    """
    selection = MEASURES.select(measures, options, options_argument="options")
    return measure_graph(BipartiteGraph(mask, weight), selection)


