"""Expansion measures of one weight read as a bipartite graph.

A weight ``W`` of shape (out, in) with mask ``M`` is the bipartite graph whose left side is the
``in`` units, right side the ``out`` units, with an edge ``j → i`` wherever ``M[i, j] != 0``: its
biadjacency is ``B = (M != 0)`` as 0/1. The weighted variants use ``|W| ⊙ B``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import igraph
import numpy as np

from rnn_prune.expansion._inputs import as_mask, as_weight, check_bool, check_int
from rnn_prune.expansion.baseline import same_degree_samples
from rnn_prune.expansion.spectral import top_singular_values_of_edges

NAN = float("nan")
IMDB_MIN_GROUP = 3
"""IMDB only averages over left-degree groups with at least this many nodes."""
RAMANUJAN_TOL = 1e-9
"""``is_ramanujan`` is ``Δr >= -RAMANUJAN_TOL``: a bound met exactly is not lost to rounding."""


@dataclass(frozen=True)
class LayerExpansion:
    """Expansion measures of one bipartite graph (left = ``in`` units, right = ``out`` units).

    Counts and degrees:
        num_left, num_right: nodes on each side (``in``, ``out``).
        num_edges: ``|E|``, nonzeros of the mask.
        density, sparsity: ``|E| / (in·out)`` and ``1 − density`` (NaN for a 0-size side).
        avg_left_degree, avg_right_degree: ``d̄L = |E| / #non-isolated left nodes``, ``d̄R`` likewise.
        min_left_degree, max_left_degree, min_right_degree, max_right_degree: over the
            non-isolated nodes of the side (isolated ones are counted apart).
        num_isolated_left, num_isolated_right: nodes of degree 0.
        num_components, largest_component: connected components (igraph) and the node count of
            the largest; an isolated node is a component of its own, as igraph counts it.

    Spectrum of ``B`` (``σ₁ ≥ σ₂`` its singular values, the nonnegative eigenvalues of the
    (in+out)² adjacency):
        lambda1, mu: ``λ1 = σ₁(B)``, ``μ = σ₂(B)``; ``spectral_gap = λ1 − μ``.
        ramanujan_bound: ``r = √(d̄L − 1) + √(d̄R − 1)``, the bound of an irregular bipartite
            Ramanujan graph (``2√(d − 1)`` when both sides are ``d``-regular).
        delta_r: ``Δr = r − μ``; ``is_ramanujan`` is ``Δr ≥ 0`` (``None`` when Δr is NaN).
        delta_s: ``Δs = 2√(λ1 − 1) − μ``.
        imdb: iterative mean of Δr (Hoang et al., ICLR 2023): left nodes are grouped by degree; the
            subgraph of each group of at least 3 nodes and all right nodes it reaches gets its own
            ``Δr``; ``imdb`` is their mean.

    Normalised spectrum (isolated nodes dropped): with ``N = D_R^{-1/2} B D_L^{-1/2}``,
        normalized_gap: ``1 − σ₂(N)`` (``σ₁(N) = 1``). It is ``λ₂`` of the normalised Laplacian
            ``I − D^{-1/2} A D^{-1/2}`` of the graph (exactly, except for a lone edge, where
            ``λ₂ = 2``) and 0 when the graph is disconnected.
        cheeger_lower, cheeger_upper: the Cheeger inequality for the normalised Laplacian,
            ``gap / 2 ≤ h ≤ √(2·gap)``, where ``h = min |E(S, S̄)| / vol(S)`` over node sets with
            ``vol(S) ≤ vol(V) / 2`` (``vol`` = sum of degrees) is the *conductance*, the edge
            expansion measured per edge end. Since ``h ≤ 1``, an upper bound above 1 says nothing.

    Weighted spectrum of ``|W| ⊙ B`` (NaN when no weight was given):
        weighted_lambda1, weighted_mu, weighted_gap.

    Random baseline (NaN unless ``random_samples > 0``):
        random_delta_r: mean ``Δr`` of random bipartite graphs with the same left and right degree
            sequences (same ``r``, their own ``μ``); see :mod:`rnn_prune.expansion.baseline`.

    reason: why some measures are NaN (``"; "``-joined, ``""`` when none are); NaN also marks
        measures that were not asked for (``imdb=False``, no weight, no random samples).
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
    largest_component: int
    lambda1: float
    mu: float
    spectral_gap: float
    ramanujan_bound: float
    delta_r: float
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
    reason: str = ""

    def as_dict(self) -> dict[str, float]:
        """Every numeric field as a float, for loggers: bools as 0/1, ``None`` as NaN, no ``reason``."""
        out: dict[str, float] = {}
        for key, value in asdict(self).items():
            if key != "reason":
                out[key] = NAN if value is None else float(value)
        return out


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

    Averages over non-isolated nodes are at least 1 whenever there is an edge, so the bound is
    real for every graph with an edge, a perfect matching (``d̄ = 1``, ``r = 0``) included.

    >>> ramanujan_bound(5.0, 2.0)
    3.0
    """
    return _sqrt(avg_left_degree - 1) + _sqrt(avg_right_degree - 1)


def _sqrt(value: float) -> float:
    return math.sqrt(value) if value >= 0 else NAN  # NaN >= 0 is False: NaN stays NaN


def layer_expansion(
    mask: object,
    weight: object = None,
    *,
    imdb: bool = True,
    random_samples: int = 0,
    seed: int = 0,
) -> LayerExpansion:
    """All expansion measures of one (out, in) mask read as a bipartite graph.

    .. math:: \\Delta r = \\sqrt{\\bar d_L - 1} + \\sqrt{\\bar d_R - 1} - \\sigma_2(B)

    Args:
        mask: (out, in) 0/1 or bool torch tensor or numpy array; edge where ``mask != 0``.
        weight: optional (out, in) weight; the weighted measures use ``|weight| ⊙ (mask != 0)``
            (values at pruned positions are ignored, NaN included).
        imdb: compute the iterative mean of Δr (one small SVD per left-degree group).
        random_samples: random same-degree graphs for ``random_delta_r`` (expensive: about 3 s per
            sample for a 4096×1024 graph at 10 % density); 0 skips it.
        seed: seed of the random baseline.

    Returns:
        :class:`LayerExpansion`; see there for every field.

    Notes:
        Degenerate graphs give defined values instead of errors: no edges gives ``λ1 = μ = 0`` and
        NaN averages / bounds with ``reason`` ``"no edges"``; a non-finite weight on a kept edge
        gives NaN weighted measures with a reason; IMDB is NaN when no left-degree group has 3
        nodes. The mask must not hold NaN (``ValueError``). Not checked: that the mask holds only
        0 and 1 (any nonzero is an edge).

    ``B = [[1, 1], [1, 0]]`` is the 4-node path 1 — 0' — 0 — 1' (left nodes 0, 1 are the columns,
    right nodes 0', 1' the rows); its singular values are the golden ratio φ and ``1/φ``, both
    average degrees are 1.5:

    >>> e = layer_expansion(np.array([[1, 1], [1, 0]]), imdb=False)
    >>> round(e.lambda1, 6), round(e.mu, 6), e.num_edges, e.avg_left_degree, e.avg_right_degree
    (1.618034, 0.618034, 3, 1.5, 1.5)
    >>> round(e.ramanujan_bound, 6), round(e.delta_r, 6), e.is_ramanujan, e.num_components
    (1.414214, 0.79618, True, 1)
    >>> round(e.normalized_gap, 6), e.reason
    (0.5, 'average degree < 2: the Ramanujan bound is degenerate')
    """
    edges = as_mask(mask)
    weights = None if weight is None else as_weight(weight, edges.shape)
    imdb = check_bool(imdb, "imdb")
    random_samples = check_int(random_samples, "random_samples", minimum=0)
    seed = check_int(seed, "seed", minimum=0)

    shape = edges.shape
    out_features, in_features = shape
    rows, cols = np.nonzero(edges)
    num_edges = len(rows)
    left_deg = np.bincount(cols, minlength=in_features)
    right_deg = np.bincount(rows, minlength=out_features)
    reasons: list[str] = []
    if num_edges == 0:
        reasons.append("no edges")

    num_components, largest, labels = _components(rows, cols, shape)
    ones = np.ones(num_edges)
    lambda1, mu = top_singular_values_of_edges(rows, cols, ones, shape, labels=labels)
    left, right = _side_stats(left_deg, num_edges), _side_stats(right_deg, num_edges)
    bound = ramanujan_bound(left[0], right[0])
    delta_r = bound - mu
    if num_edges and min(left[0], right[0]) < 2:
        # Defined (√(d̄ − 1) is real for d̄ ≥ 1) but degenerate: a side of average degree < 2 is
        # close to a matching, where r → 0 and "Ramanujan" says little about expansion.
        reasons.append("average degree < 2: the Ramanujan bound is degenerate")
    normalized_gap = _normalized_gap(rows, cols, left_deg, right_deg, shape, labels)

    weighted = (NAN, NAN)
    if weights is not None:
        kept = np.abs(weights[rows, cols])
        if np.isfinite(kept).all():
            same_pattern = labels if kept.all() else None  # a zero weight can split a component
            weighted = tuple(top_singular_values_of_edges(rows, cols, kept, shape, labels=same_pattern))
        else:
            reasons.append("weight has non-finite entries on kept edges")

    imdb_value = NAN
    if imdb and num_edges:
        imdb_value = _imdb(rows, cols, left_deg, shape)
        if math.isnan(imdb_value):
            reasons.append(f"imdb: no left-degree group has {IMDB_MIN_GROUP} nodes")

    random_delta_r = NAN
    if random_samples and num_edges:
        samples = same_degree_samples(rows, cols, shape, samples=random_samples, seed=seed)
        mus = [top_singular_values_of_edges(r, c, ones, shape)[1] for r, c in samples]
        random_delta_r = bound - float(np.mean(mus))

    size = in_features * out_features
    density = num_edges / size if size else NAN
    return LayerExpansion(
        num_left=in_features,
        num_right=out_features,
        num_edges=num_edges,
        density=density,
        sparsity=1.0 - density,
        avg_left_degree=left[0],
        avg_right_degree=right[0],
        min_left_degree=left[1],
        max_left_degree=left[2],
        min_right_degree=right[1],
        max_right_degree=right[2],
        num_isolated_left=int(in_features - np.count_nonzero(left_deg)),
        num_isolated_right=int(out_features - np.count_nonzero(right_deg)),
        num_components=num_components,
        largest_component=largest,
        lambda1=float(lambda1),
        mu=float(mu),
        spectral_gap=float(lambda1 - mu),
        ramanujan_bound=bound,
        delta_r=float(delta_r),
        delta_s=_sqrt(lambda1 - 1) * 2 - float(mu),
        is_ramanujan=None if math.isnan(delta_r) else bool(delta_r >= -RAMANUJAN_TOL),
        imdb=imdb_value,
        normalized_gap=normalized_gap,
        cheeger_lower=normalized_gap / 2,
        cheeger_upper=_sqrt(2 * normalized_gap),
        weighted_lambda1=float(weighted[0]),
        weighted_mu=float(weighted[1]),
        weighted_gap=float(weighted[0] - weighted[1]),
        random_delta_r=float(random_delta_r),
        reason="; ".join(reasons),
    )


def _side_stats(deg: np.ndarray, num_edges: int) -> tuple[float, float, float]:
    """(average, min, max) degree over the non-isolated nodes of one side; NaN when there are none."""
    active = deg[deg > 0]
    if len(active) == 0:
        return NAN, NAN, NAN
    return num_edges / len(active), float(active.min()), float(active.max())


def _components(
    rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
) -> tuple[int, int, np.ndarray]:
    """Number of connected components (isolated nodes included), node count of the largest, and
    the component label of every node (``out`` right nodes first, then ``in`` left nodes, the
    order :func:`~rnn_prune.expansion.spectral.top_singular_values_of_edges` takes)."""
    out_features, in_features = shape
    edges = list(zip(cols.tolist(), (rows + in_features).tolist(), strict=True))
    parts = igraph.Graph(n=in_features + out_features, edges=edges).connected_components()
    sizes = parts.sizes()
    membership = np.asarray(parts.membership, dtype=np.int64)
    labels = np.concatenate([membership[in_features:], membership[:in_features]])
    return len(sizes), max(sizes, default=0), labels


def _normalized_gap(
    rows: np.ndarray,
    cols: np.ndarray,
    left_deg: np.ndarray,
    right_deg: np.ndarray,
    shape: tuple[int, int],
    labels: np.ndarray,
) -> float:
    """``1 − σ₂(D_R^{-1/2} B D_L^{-1/2})``, clipped at 0 against rounding; NaN without edges."""
    if len(rows) == 0:
        return NAN
    vals = 1.0 / np.sqrt(left_deg[cols] * right_deg[rows].astype(np.float64))
    sigma2 = top_singular_values_of_edges(rows, cols, vals, shape, labels=labels)[1]
    return max(0.0, 1.0 - float(sigma2))


def _imdb(rows: np.ndarray, cols: np.ndarray, left_deg: np.ndarray, shape: tuple[int, int]) -> float:
    """Mean ``Δr`` over the subgraphs of left nodes of equal degree (groups of >= 3 nodes)."""
    values, counts = np.unique(left_deg[left_deg > 0], return_counts=True)
    edge_deg = left_deg[cols]
    deltas = []
    for degree in values[counts >= IMDB_MIN_GROUP]:
        keep = edge_deg == degree
        sub_rows, sub_cols = rows[keep], cols[keep]
        avg_right = len(sub_rows) / len(np.unique(sub_rows))
        mu = top_singular_values_of_edges(sub_rows, sub_cols, np.ones(len(sub_rows)), shape)[1]
        deltas.append(ramanujan_bound(float(degree), avg_right) - mu)
    return float(np.mean(deltas)) if deltas else NAN
