"""Expansion measures of one weight read as a bipartite graph: :func:`layer_expansion`.

A weight ``W`` of shape (out, in) with mask ``M`` is the bipartite graph whose left side is the
``in`` units, right side the ``out`` units, with an edge ``j → i`` wherever ``M[i, j] != 0``: its
biadjacency is ``B = (M != 0)`` as 0/1. The weighted variants use ``|W| ⊙ B``. The measures
themselves live in :mod:`~rnn_prune.expansion.measures`, one function each; this module runs the
ones asked for over one :class:`~rnn_prune.expansion.graph.BipartiteGraph` and gathers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from rnn_prune.expansion._inputs import check_bool, check_int
from rnn_prune.expansion.graph import NAN, BipartiteGraph
from rnn_prune.expansion.measures import DEFAULT_MEASURES, MEASURES, check_measures

__all__ = ["LayerExpansion", "layer_expansion"]


@dataclass(frozen=True)
class LayerExpansion:
    """Expansion measures of one bipartite graph (left = ``in`` units, right = ``out`` units).

    Every field is one measure of :mod:`~rnn_prune.expansion.measures` (its docstring there has the
    detail); a measure that was not asked for is NaN (``None`` for ``is_ramanujan``). Sources of the
    conventions: [H] Hoang et al., "Revisiting pruning at initialization through the lens of
    Ramanujan graph", ICLR 2023, and its reference code (VITA-Group/ramanujan-on-pai,
    ``lib/graphs/scores.py``); [C] Chung, *Spectral Graph Theory*, 1997.

    Counts and degrees:
        num_left, num_right: nodes on each side (``in``, ``out``).
        num_edges: ``|E|``, nonzeros of the mask.
        density, sparsity: ``|E| / (in·out)`` and ``1 − density`` (NaN for a 0-size side).
        avg_left_degree, avg_right_degree: ``d̄L = |E| / #non-isolated left nodes``, ``d̄R``
            likewise — isolated nodes left out, as [H]'s ``filter_zero_degree`` does.
        min_left_degree, max_left_degree, min_right_degree, max_right_degree: over the
            non-isolated nodes of the side.
        num_isolated_left, num_isolated_right: nodes of degree 0.
        num_components: connected components, an isolated node one of its own.
        num_nonisolated_components: components with an edge; the verdict wants exactly 1.
        largest_component: node count of the largest component.

    Spectrum of ``B`` (``σ₁ ≥ σ₂`` its singular values, the nonnegative eigenvalues of the
    (in+out)² adjacency):
        lambda1, mu: ``λ1 = σ₁(B)``, ``μ = σ₂(B)`` ([H]'s ``t1_m``, ``t2_m``); ``spectral_gap = λ1 − μ``.
        ramanujan_bound: ``r = √(d̄L − 1) + √(d̄R − 1)``, the bound of an irregular bipartite
            Ramanujan graph [H] (``2√(d − 1)`` when both sides are ``d``-regular).
        delta_r: ``Δr = r − μ`` [H], reported at every average degree (a number, not a verdict).
        giant_delta_r: ``Δr`` of the largest component on its own (= ``delta_r`` when connected).
        delta_s: ``Δs = 2√(λ1 − 1) − μ`` [H].
        is_ramanujan: :func:`~rnn_prune.expansion.verdict.ramanujan_verdict`: ``None`` (undefined)
            unless ``d̄L ≥ 3`` and ``d̄R ≥ 3`` ([H]'s reference scores no other graph), ``False`` when
            the non-isolated part has more than one component (normalised gap 0: no expander; our
            rule), else ``Δr ≥ 0``. Why it is undefined or False goes to ``reason``.
        imdb: iterative mean of Δr [H] as the reference computes it: left nodes grouped by degree
            ``d``, groups of at least 3 nodes, each group with the right nodes it reaches scored only
            when ``d ≥ 3`` and its average right degree ``≥ 3``; the mean of the scores' ``Δr``,
            NaN with a reason when no group passes.

    Normalised spectrum (isolated nodes dropped): with ``N = D_R^{-1/2} B D_L^{-1/2}``,
        normalized_gap: ``1 − σ₂(N)`` (``σ₁(N) = 1``): ``λ₂`` of the normalised Laplacian
            ``I − D^{-1/2} A D^{-1/2}`` [C] (exactly, except for a lone edge, where ``λ₂ = 2``),
            0 when the graph is disconnected.
        cheeger_lower, cheeger_upper: the Cheeger inequality ``gap / 2 ≤ h ≤ √(2·gap)`` [C] for the
            conductance ``h = min |E(S, S̄)| / vol(S)`` over node sets with ``vol(S) ≤ vol(V) / 2``.
            Since ``h ≤ 1``, an upper bound above 1 says nothing.

    Weighted spectrum of ``|W| ⊙ B`` (NaN when no weight was given):
        weighted_lambda1, weighted_mu, weighted_gap.

    Random baseline (NaN unless ``random_samples > 0``):
        random_delta_r: ``r`` minus the mean ``μ`` of random bipartite graphs with the same left and
            right degree sequences; see :mod:`rnn_prune.expansion.baseline`.

    extra: measures registered outside the package (:func:`~rnn_prune.expansion.register_measure`)
        that were asked for, by name.
    reason: why some measures are NaN or the verdict is undefined (``"; "``-joined, ``""`` when
        none are).
    """

    num_left: int
    num_right: int
    num_edges: int
    density: float
    sparsity: float
    avg_left_degree: float
    avg_right_degree: float
    min_left_degree: float
    max_left_degree: float
    min_right_degree: float
    max_right_degree: float
    num_isolated_left: int
    num_isolated_right: int
    num_components: int
    num_nonisolated_components: int
    largest_component: int
    lambda1: float
    mu: float
    spectral_gap: float
    ramanujan_bound: float
    delta_r: float
    giant_delta_r: float
    delta_s: float
    is_ramanujan: bool | None
    imdb: float
    normalized_gap: float
    cheeger_lower: float
    cheeger_upper: float
    weighted_lambda1: float
    weighted_mu: float
    weighted_gap: float
    random_delta_r: float
    extra: Mapping[str, float] = field(default_factory=dict)
    reason: str = ""

    def as_dict(self, measures: list[str] | None = None) -> dict[str, float]:
        """Measures as floats for loggers: bools as 0/1, ``None`` as NaN, ``extra`` merged in.

        Args:
            measures: only these names, in this order (default: every field, then ``extra``).
        """
        out: dict[str, float] = {}
        for name in _FIELDS:
            value = getattr(self, name)
            out[name] = NAN if value is None else float(value)
        out.update((name, float(value)) for name, value in self.extra.items())
        return out if measures is None else {name: out[name] for name in measures if name in out}


_FIELDS = tuple(f.name for f in fields(LayerExpansion) if f.name not in ("extra", "reason"))


def layer_expansion(
    mask: object,
    weight: object = None,
    *,
    measures: list[str] | None = None,
    imdb: bool = True,
    random_samples: int = 0,
    seed: int = 0,
) -> LayerExpansion:
    """The expansion measures of one (out, in) mask read as a bipartite graph.

    .. math:: \\Delta r = \\sqrt{\\bar d_L - 1} + \\sqrt{\\bar d_R - 1} - \\sigma_2(B)

    Args:
        mask: (out, in) 0/1 or bool torch tensor or numpy array; edge where ``mask != 0``.
        weight: optional (out, in) weight; the weighted measures use ``|weight| ⊙ (mask != 0)``
            (values at pruned positions are ignored, NaN included).
        measures: names of :data:`~rnn_prune.expansion.MEASURES` to compute; only these are
            computed, the other fields are NaN. Default: :data:`~rnn_prune.expansion.DEFAULT_MEASURES`.
        imdb: with ``False``, IMDB is dropped from ``measures``.
        random_samples: random same-degree graphs for ``random_delta_r`` (expensive: about 3 s per
            sample for a 4096×1024 graph at 10 % density); ``> 0`` adds it to ``measures``.
        seed: seed of the random baseline.

    Returns:
        :class:`LayerExpansion`; see there for every field.

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
    >>> e = layer_expansion(np.array([[1, 1], [1, 0]]), imdb=False)
    >>> round(e.lambda1, 6), round(e.mu, 6), e.num_edges, e.avg_left_degree, e.avg_right_degree
    (1.618034, 0.618034, 3, 1.5, 1.5)
    >>> round(e.ramanujan_bound, 6), round(e.delta_r, 6), e.is_ramanujan, e.num_components
    (1.414214, 0.79618, None, 1)
    >>> round(e.normalized_gap, 6), e.reason.split(":")[0]
    (0.5, 'average degree below 3 (d̄L=1.5, d̄R=1.5)')

    Only the measures asked for are computed; the others are NaN:

    >>> only = layer_expansion(np.ones((4, 5)), measures=["num_edges", "is_ramanujan"])
    >>> only.as_dict(["num_edges", "is_ramanujan"]), only.lambda1
    ({'num_edges': 20.0, 'is_ramanujan': 1.0}, nan)
    """
    names = list(DEFAULT_MEASURES) if measures is None else check_measures(measures)
    if not check_bool(imdb, "imdb"):
        names = [n for n in names if n != "imdb"]
    if check_int(random_samples, "random_samples", minimum=0) and "random_delta_r" not in names:
        names.append("random_delta_r")
    graph = BipartiteGraph(mask, weight, random_samples=random_samples, seed=seed)
    values = {name: MEASURES[name](graph) for name in names}
    known = {name: values.pop(name, None if name == "is_ramanujan" else NAN) for name in _FIELDS}
    return LayerExpansion(**known, extra=values, reason="; ".join(graph.reasons))
