"""One mask read as a bipartite graph, built once and shared by every measure.

A weight ``W`` of shape (out, in) with mask ``M`` is the bipartite graph whose left side is the
``in`` units, right side the ``out`` units, with an edge ``j → i`` wherever ``M[i, j] != 0``: its
biadjacency is ``B = (M != 0)`` as 0/1, the weighted variants use ``|W| ⊙ B``.

:class:`BipartiteGraph` holds what every measure starts from — the edge arrays and the degrees,
built in the constructor — and computes the costly shared parts (connected components, the top
singular values of ``B``, of its normalised and of its weighted form, the edge order IMDB walks)
the first time a measure asks, once. A measure (:mod:`~rnn_prune.expansion.measures`) is a function
of this object, so a measure that nobody asks for costs nothing, and two that need the same
spectrum share it.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from rnn_prune.expansion._inputs import as_array, as_mask
from rnn_prune.expansion.components import Components, bipartite_components
from rnn_prune.expansion.spectral import connected_singular_values, top_singular_values_of_edges

NAN = float("nan")


def degrees(mask: object) -> tuple[np.ndarray, np.ndarray]:
    """Left (per input unit, column sums) and right (per output unit, row sums) degrees of ``mask``.

    Args:
        mask: (out, in) 0/1 tensor or array; edge where ``mask != 0``.

    Returns:
        ``(left, right)``: int64 arrays of shapes ``(in,)`` and ``(out,)``.

    >>> left, right = degrees(np.array([[1, 1, 0], [1, 0, 0]]))
    >>> left.tolist(), right.tolist()
    ([2, 1, 0], [2, 1])
    """
    edges = as_mask(mask)
    return edges.sum(axis=0, dtype=np.int64), edges.sum(axis=1, dtype=np.int64)


def ramanujan_bound(avg_left_degree: float, avg_right_degree: float) -> float:
    """``√(d̄L − 1) + √(d̄R − 1)``; NaN when an average degree is below 1 or NaN (no edges).

    The bound of an irregular bipartite Ramanujan graph (Hoang et al., ICLR 2023, after Marcus,
    Spielman & Srivastava); ``2√(d − 1)`` when both sides are ``d``-regular. Averages over
    non-isolated nodes are at least 1 whenever there is an edge, so it is real for every graph
    with an edge.

    >>> ramanujan_bound(5.0, 2.0)
    3.0
    """
    return sqrt_or_nan(avg_left_degree - 1) + sqrt_or_nan(avg_right_degree - 1)


def sqrt_or_nan(value: float) -> float:
    """``√value``, NaN for a negative or NaN value (``NaN >= 0`` is False: NaN stays NaN)."""
    return math.sqrt(value) if value >= 0 else NAN


def side_stats(deg: np.ndarray, num_edges: int) -> tuple[float, float, float]:
    """(average, min, max) degree over the non-isolated nodes of one side; NaN when there are none."""
    active = deg[deg > 0]
    if len(active) == 0:
        return NAN, NAN, NAN
    return num_edges / len(active), float(active.min()), float(active.max())


class BipartiteGraph:
    """The bipartite graph of one (out, in) mask, with optional edge weights.

    Args:
        mask: (out, in) 0/1 or bool torch tensor or numpy array; edge where ``mask != 0``.
        weight: optional (out, in) weight; only its values on edges are read (NaN elsewhere is fine).

    Attributes (built at once):
        shape: ``(out, in)``.
        rows, cols: the edges ``cols[e] → rows[e]`` in row-major order (int32 where it fits).
        num_edges: ``|E|``.
        left_deg, right_deg: int64 degrees of the ``in`` left and ``out`` right nodes.
        edge_weights: ``|W|`` on the edges as float64, or ``None`` without a weight.

    Shared parts (computed on first use, then cached): :attr:`components`, :attr:`spectrum`,
    :attr:`normalized_spectrum`, :attr:`weighted_spectrum`, :attr:`edges_by_left_degree`.

    ``reasons`` collects, in order and without repeats, why measures came out NaN or undefined;
    measures add to it with :meth:`note`.
    """

    def __init__(self, mask: object, weight: object = None) -> None:
        edges = as_mask(mask)
        self.shape: tuple[int, int] = (int(edges.shape[0]), int(edges.shape[1]))
        rows, cols = np.nonzero(edges)
        if max(self.shape) < np.iinfo(np.int32).max:  # half the memory of every edge array
            rows, cols = rows.astype(np.int32), cols.astype(np.int32)
        self.rows, self.cols = rows, cols
        self.num_edges = len(rows)
        out_features, in_features = self.shape
        self.left_deg = np.bincount(cols, minlength=in_features)
        self.right_deg = np.bincount(rows, minlength=out_features)
        self.edge_weights: np.ndarray | None = None
        if weight is not None:
            values = as_array(weight, "weight")
            if values.shape != self.shape:
                raise ValueError(f"weight has shape {tuple(values.shape)}, mask has {self.shape}")
            self.edge_weights = np.abs(values[rows, cols].astype(np.float64))
        self.reasons: dict[str, None] = {}
        if self.num_edges == 0:
            self.note("no edges")

    def note(self, reason: str) -> None:
        """Record why a measure is NaN or undefined (kept once, in order of first mention)."""
        self.reasons.setdefault(reason, None)

    @property
    def num_right(self) -> int:
        return self.shape[0]

    @property
    def num_left(self) -> int:
        return self.shape[1]

    @cached_property
    def left_stats(self) -> tuple[float, float, float]:
        """(average, min, max) left degree over non-isolated left nodes."""
        return side_stats(self.left_deg, self.num_edges)

    @cached_property
    def right_stats(self) -> tuple[float, float, float]:
        """(average, min, max) right degree over non-isolated right nodes."""
        return side_stats(self.right_deg, self.num_edges)

    @cached_property
    def components(self) -> Components:
        """Connected components, right (``out``) nodes first, then left (``in``) nodes."""
        return bipartite_components(self.rows, self.cols, self.shape)

    @cached_property
    def _single_component(self) -> tuple[np.ndarray, np.ndarray, tuple[int, int], np.ndarray] | None:
        """The edges renumbered without isolated nodes, their shape and column-major order, when
        the graph is one connected component (plus isolated nodes) and no star; else ``None``.

        This is the common case of a pruned layer; its three spectra then skip the per-component
        split and share one renumbering and one column order.
        """
        left, right = np.count_nonzero(self.left_deg), np.count_nonzero(self.right_deg)
        if self.components.num_nonisolated != 1 or min(left, right) < 2:
            return None
        rows, cols = self.rows, self.cols
        if right < self.num_right:
            rows = (np.cumsum(self.right_deg > 0) - 1)[rows]
        if left < self.num_left:
            cols = (np.cumsum(self.left_deg > 0) - 1)[cols]
        return rows, cols, (right, left), np.argsort(cols, kind="stable")

    def _top2(self, vals: np.ndarray, labels: np.ndarray | None) -> tuple[float, float]:
        """``(σ₁, σ₂)`` of the matrix with ``vals`` on the edges (``labels``: see spectral)."""
        single = self._single_component
        if single is None or not vals.all():  # a zero value can split the component
            values = top_singular_values_of_edges(self.rows, self.cols, vals, self.shape, labels=labels)
            return float(values[0]), float(values[1])
        rows, cols, shape, col_order = single
        values = np.sort(connected_singular_values(rows, cols, vals, 2, shape=shape, col_order=col_order))[::-1]
        return float(values[0]), float(values[1])

    @cached_property
    def spectrum(self) -> tuple[float, float]:
        """``(σ₁, σ₂)`` of ``B``."""
        if self.num_edges == 0:
            return 0.0, 0.0
        return self._top2(np.ones(self.num_edges), self.components.labels)

    @cached_property
    def normalized_spectrum(self) -> tuple[float, float]:
        """``(σ₁, σ₂)`` of ``D_R^{-1/2} B D_L^{-1/2}`` (``σ₁ = 1`` whenever there is an edge)."""
        if self.num_edges == 0:
            return 0.0, 0.0
        vals = 1.0 / np.sqrt(self.left_deg[self.cols] * self.right_deg[self.rows].astype(np.float64))
        return self._top2(vals, self.components.labels)

    @cached_property
    def weighted_spectrum(self) -> tuple[float, float] | None:
        """``(σ₁, σ₂)`` of ``|W| ⊙ B``; ``None`` without a weight or with a non-finite kept weight."""
        kept = self.edge_weights
        if kept is None:
            return None
        if not np.isfinite(kept).all():
            self.note("weight has non-finite entries on kept edges")
            return None
        if self.num_edges == 0:
            return 0.0, 0.0
        same_pattern = self.components.labels if kept.all() else None  # a zero weight can split one
        return self._top2(kept, same_pattern)

    @cached_property
    def edges_by_left_degree(self) -> np.ndarray:
        """Edge indices sorted by (degree of the left node, left node): each left-degree group's
        edges form one contiguous run, so IMDB visits every edge once instead of once per group."""
        key = self.left_deg[self.cols].astype(np.int64) * self.num_left + self.cols
        return np.argsort(key, kind="stable")

    def giant_edges(self) -> np.ndarray:
        """Indices of the edges in the largest connected component."""
        labels = self.components.labels
        return np.flatnonzero(labels[self.rows] == self.components.giant)
