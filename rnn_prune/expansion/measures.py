"""The expansion measures by name: one function of a :class:`BipartiteGraph` per measure.

:data:`MEASURES` maps a name to its function; :func:`register_measure` adds one (that is all a new
measure takes — see the README's "Extending"). :func:`~rnn_prune.expansion.layer_expansion` and the
``ExpansionMetrics`` callback compute exactly the names they are given, over one graph built once:
the costly parts (components, the three spectra, IMDB's edge order) are cached on the graph, so a
measure costs nothing unless asked for and two measures that share a spectrum compute it once.

Each convention is stated in the function's docstring with its source; :class:`LayerExpansion`
lists them together.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Iterable

import numpy as np

from rnn_prune.expansion.baseline import same_degree_samples
from rnn_prune.expansion.graph import NAN, BipartiteGraph, ramanujan_bound, sqrt_or_nan
from rnn_prune.expansion.spectral import top_singular_values_of_edges
from rnn_prune.expansion.verdict import MIN_AVG_DEGREE, RamanujanVerdict, ramanujan_verdict

Measure = Callable[[BipartiteGraph], "float | int | bool | None"]
"""A measure: the graph in, one number out (``bool``/``None`` for a verdict, NaN when undefined)."""

MEASURES: dict[str, Measure] = {}
"""Every known measure by name, in registration order (the built-ins first)."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_@.\-]*\Z")

IMDB_MIN_GROUP = 3
"""IMDB keeps a left-degree group only with at least this many left nodes (the reference's
``find_d_left_regular(mindegree=3)``)."""
IMDB_GRAM_MAX = 1024
"""A group of at most this many left nodes gets σ₂ from its dense Gram matrix (``S`` takes
``4 · count · out`` bytes: 16 MB at 4096 outputs); larger groups go through the sparse solver."""
_GRAM_RELATIVE_FLOOR = 1e-6
"""Below ``λ₂ < 1e-6 · λ₁`` of the Gram matrix, ``√λ₂`` loses digits to rounding (an error of
``ε·λ₁`` in ``λ₂`` is ``ε·λ₁ / 2σ₂`` in σ₂); such a group's σ₂ is taken by a dense SVD instead."""


def register_measure(name: str, *, replace: bool = False) -> Callable[[Measure], Measure]:
    """Decorator: register ``fn(graph) -> value`` as the measure ``name``.

    Args:
        name: the ``<measure>`` of ``graph/<graph>/<measure>``; letters, digits, ``_ @ . -``.
        replace: allow redefining an existing name (otherwise a ``ValueError``).

    >>> @register_measure("edges_per_right_node")
    ... def edges_per_right_node(graph: BipartiteGraph) -> float:
    ...     return graph.num_edges / graph.num_right
    >>> "edges_per_right_node" in MEASURES
    True
    >>> del MEASURES["edges_per_right_node"]
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"measure name {name!r} must be a string of letters, digits and _ @ . - (no '/')")
    if name in MEASURES and not replace:
        raise ValueError(f"measure {name!r} is already registered; pass replace=True to redefine it")

    def decorator(fn: Measure) -> Measure:
        if not callable(fn):
            raise ValueError(f"measure {name!r} must be a callable of the graph, got {fn!r}")
        MEASURES[name] = fn
        return fn

    return decorator


def check_measures(names: object, argument: str = "measures") -> list[str]:
    """``names`` as a list of registered measure names, repeats dropped.

    A name the registry does not know that holds a dot is read as ``module.function``: the module is
    imported (its ``@register_measure`` decorators run) and the function is used under its own
    name — so a YAML config can name a measure from the user's own file,
    ``measures: [delta_r, my_measures.edges_per_right_node]``, logged as
    ``graph/<graph>/edges_per_right_node``. Anything else unknown is a ``ValueError`` naming it.
    """
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise ValueError(f"{argument} must be a list of measure names, got {names!r}")
    resolved, bad = [], []
    for name in names:
        if isinstance(name, str) and name not in MEASURES and "." in name:
            name = _import_measure(name, argument)
        if not isinstance(name, str) or name not in MEASURES:
            bad.append(name)
        resolved.append(name)
    if bad:
        raise ValueError(
            f"{argument}={bad} are not measures; choose from {sorted(MEASURES)} or name one as module.function"
        )
    return list(dict.fromkeys(resolved))


def _import_measure(path: str, argument: str) -> str:
    """Import ``module.function`` and return the name it is registered under."""
    module_name, _, attr = path.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{argument}: cannot import measure {path!r}: {error}") from error
    for name, known in MEASURES.items():
        if known is fn:
            return name
    register_measure(attr)(fn)
    return attr


# ----------------------------------------------------------------------------- counts and degrees


@register_measure("num_left")
def num_left(graph: BipartiteGraph) -> int:
    """Left nodes: the ``in`` units."""
    return graph.num_left


@register_measure("num_right")
def num_right(graph: BipartiteGraph) -> int:
    """Right nodes: the ``out`` units."""
    return graph.num_right


@register_measure("num_edges")
def num_edges(graph: BipartiteGraph) -> int:
    """``|E|``: nonzeros of the mask."""
    return graph.num_edges


@register_measure("density")
def density(graph: BipartiteGraph) -> float:
    """``|E| / (in·out)``; NaN for a side of size 0."""
    size = graph.num_left * graph.num_right
    return graph.num_edges / size if size else NAN


@register_measure("sparsity")
def sparsity(graph: BipartiteGraph) -> float:
    """``1 − density``."""
    return 1.0 - density(graph)


@register_measure("avg_left_degree")
def avg_left_degree(graph: BipartiteGraph) -> float:
    """``d̄L = |E| / #non-isolated left nodes``: isolated nodes left out, as the reference's
    ``filter_zero_degree`` does before averaging."""
    return graph.left_stats[0]


@register_measure("avg_right_degree")
def avg_right_degree(graph: BipartiteGraph) -> float:
    """``d̄R``, over the non-isolated right nodes."""
    return graph.right_stats[0]


@register_measure("min_left_degree")
def min_left_degree(graph: BipartiteGraph) -> float:
    """Smallest degree of a non-isolated left node."""
    return graph.left_stats[1]


@register_measure("max_left_degree")
def max_left_degree(graph: BipartiteGraph) -> float:
    """Largest left degree."""
    return graph.left_stats[2]


@register_measure("min_right_degree")
def min_right_degree(graph: BipartiteGraph) -> float:
    """Smallest degree of a non-isolated right node."""
    return graph.right_stats[1]


@register_measure("max_right_degree")
def max_right_degree(graph: BipartiteGraph) -> float:
    """Largest right degree."""
    return graph.right_stats[2]


@register_measure("num_isolated_left")
def num_isolated_left(graph: BipartiteGraph) -> int:
    """Left nodes of degree 0."""
    return int(graph.num_left - np.count_nonzero(graph.left_deg))


@register_measure("num_isolated_right")
def num_isolated_right(graph: BipartiteGraph) -> int:
    """Right nodes of degree 0."""
    return int(graph.num_right - np.count_nonzero(graph.right_deg))


# ----------------------------------------------------------------------------- components


@register_measure("num_components")
def num_components(graph: BipartiteGraph) -> int:
    """Connected components, every isolated node one of its own (as igraph and scipy count)."""
    return graph.components.num


@register_measure("num_nonisolated_components")
def num_nonisolated_components(graph: BipartiteGraph) -> int:
    """Components with an edge: what the Ramanujan verdict asks to be 1 (0 without edges)."""
    return graph.components.num_nonisolated


@register_measure("largest_component")
def largest_component(graph: BipartiteGraph) -> int:
    """Node count of the largest component."""
    return graph.components.largest


# ----------------------------------------------------------------------------- spectrum of B


@register_measure("lambda1")
def lambda1(graph: BipartiteGraph) -> float:
    """``λ1 = σ₁(B)``, the largest eigenvalue of the (in+out)² adjacency (0 without edges)."""
    return graph.spectrum[0]


@register_measure("mu")
def mu(graph: BipartiteGraph) -> float:
    """``μ = σ₂(B)``, the second largest nonnegative adjacency eigenvalue — the reference's ``t2_m``,
    the third largest ``|eigenvalue|`` of the adjacency, since ``±σ₁`` come first."""
    return graph.spectrum[1]


@register_measure("spectral_gap")
def spectral_gap(graph: BipartiteGraph) -> float:
    """``λ1 − μ``."""
    return graph.spectrum[0] - graph.spectrum[1]


@register_measure("ramanujan_bound")
def ramanujan_bound_measure(graph: BipartiteGraph) -> float:
    """``r = √(d̄L − 1) + √(d̄R − 1)`` (the reference's ``delta_r`` upper bound ``rm_ub``)."""
    return ramanujan_bound(graph.left_stats[0], graph.right_stats[0])


@register_measure("delta_r")
def delta_r(graph: BipartiteGraph) -> float:
    """``Δr = r − μ`` (the reference's ``rm``), reported at every average degree; the reference
    computes it only where ``d̄L, d̄R ≥ 3``, which is where ``is_ramanujan`` is defined."""
    return ramanujan_bound_measure(graph) - graph.spectrum[1]


@register_measure("giant_delta_r")
def giant_delta_r(graph: BipartiteGraph) -> float:
    """``Δr`` of the largest connected component on its own (its own ``d̄L``, ``d̄R``, ``μ``).

    Equal to ``delta_r`` for a connected graph; for a disconnected one it tells a good expander with
    a stray small component (whose ``Δr`` is misleadingly high) from one that falls apart.
    """
    if graph.num_edges == 0:
        return NAN
    if graph.components.num_nonisolated == 1:
        return delta_r(graph)
    idx = graph.giant_edges()
    rows, cols = graph.rows[idx], graph.cols[idx]
    left = len(idx) / len(np.unique(cols))
    right = len(idx) / len(np.unique(rows))
    sigma = top_singular_values_of_edges(rows, cols, np.ones(len(idx)), graph.shape, labels=graph.components.labels)
    return ramanujan_bound(left, right) - float(sigma[1])


@register_measure("delta_s")
def delta_s(graph: BipartiteGraph) -> float:
    """``Δs = 2√(λ1 − 1) − μ`` (the reference's ``sm``)."""
    return 2 * sqrt_or_nan(graph.spectrum[0] - 1) - graph.spectrum[1]


def verdict(graph: BipartiteGraph, *, margin: float = 0.0) -> RamanujanVerdict:
    """:func:`~rnn_prune.expansion.verdict.ramanujan_verdict` of ``graph``'s Δr, average degrees and
    non-isolated components: the one place that feeds the rule, for the ``is_ramanujan`` measure
    and the pruning guard (which asks with its ``margin``)."""
    return ramanujan_verdict(
        delta_r(graph), graph.left_stats[0], graph.right_stats[0], graph.components.num_nonisolated, margin=margin
    )


@register_measure("is_ramanujan")
def is_ramanujan(graph: BipartiteGraph) -> bool | None:
    """:func:`verdict`: ``None`` below average degree 3 (the reference's gate), ``False`` when
    disconnected, else ``Δr ≥ 0``. Its reason goes to ``reason``."""
    verdict_ = verdict(graph)
    if verdict_.reason and graph.num_edges:
        graph.note(verdict_.reason)
    return verdict_.is_ramanujan


# ----------------------------------------------------------------------------- IMDB


@register_measure("imdb")
def imdb(graph: BipartiteGraph) -> float:
    """Hoang et al.'s iterative mean of Δr, as the reference computes it.

    Reference: VITA-Group/ramanujan-on-pai, ``lib/graphs/scores.py``: ``find_d_left_regular``
    groups the left nodes by degree ``d`` and keeps groups of at least :data:`IMDB_MIN_GROUP` nodes;
    each group with the right nodes it reaches is a ``d``-left-regular subgraph, which
    ``ramanujan_score`` scores only when ``d ≥ 3`` and its average right degree is ``≥ 3``
    (:data:`~rnn_prune.expansion.verdict.MIN_AVG_DEGREE`); ``iterative_mean_spectral_gap`` averages
    the scores ``Δr = √(d − 1) + √(d̄R − 1) − σ₂``. NaN (with a reason) when no subgraph passes.

    Cost: the edges are sorted by left degree once (:attr:`BipartiteGraph.edges_by_left_degree`),
    so each group is one contiguous run of edges, and σ₂ comes from the group's small
    ``count × count`` Gram matrix ``SᵀS`` (``S`` the group's biadjacency).
    """
    if graph.num_edges == 0:
        return NAN
    order = graph.edges_by_left_degree
    edge_degree = graph.left_deg[graph.cols[order]]
    degrees, counts = np.unique(graph.left_deg[graph.left_deg > 0], return_counts=True)
    starts = np.searchsorted(edge_degree, degrees, side="left")
    deltas = []
    for degree, count, start in zip(degrees.tolist(), counts.tolist(), starts.tolist(), strict=True):
        if count < IMDB_MIN_GROUP or degree < MIN_AVG_DEGREE:
            continue
        sub_rows = graph.rows[order[start : start + degree * count]]
        reached = np.count_nonzero(np.bincount(sub_rows, minlength=graph.num_right))
        avg_right = degree * count / reached
        if avg_right < MIN_AVG_DEGREE:
            continue
        deltas.append(ramanujan_bound(degree, avg_right) - _group_sigma2(sub_rows, degree, count, graph.num_right))
    if not deltas:
        graph.note(
            f"imdb: no left-degree subgraph passes the reference's gate (a group of >= {IMDB_MIN_GROUP} "
            f"left nodes of degree d >= {MIN_AVG_DEGREE:g} whose average right degree is >= {MIN_AVG_DEGREE:g})"
        )
        return NAN
    return float(np.mean(deltas))


def _group_sigma2(sub_rows: np.ndarray, degree: int, count: int, num_right: int) -> float:
    """σ₂ of a ``degree``-left-regular group: ``count`` left nodes, their edges consecutive by node.

    ``σ₂ = √λ₂(SᵀS)`` from the group's ``count × count`` Gram matrix, ``S`` its (num_right × count)
    biadjacency. ``S`` is small (a group holds a few dozen left nodes), so it is filled densely and
    ``SᵀS`` is one BLAS product; its entries are integer counts of shared right nodes, exact in
    float32 below 2²⁴, so the eigenvalues are those of the exact matrix.
    """
    if count > IMDB_GRAM_MAX:
        cols = np.repeat(np.arange(count), degree)
        return float(top_singular_values_of_edges(sub_rows, cols, np.ones(len(cols)), (num_right, count))[1])
    block = np.zeros((count, num_right), dtype=np.float32)  # Sᵀ, row-major: one left node per row
    block[np.repeat(np.arange(count), degree), sub_rows] = 1.0
    gram = (block @ block.T).astype(np.float64)
    eigenvalues = np.linalg.eigvalsh(gram)
    if eigenvalues[-2] >= _GRAM_RELATIVE_FLOOR * eigenvalues[-1]:
        return math.sqrt(eigenvalues[-2])
    return float(np.linalg.svd(block.astype(np.float64), compute_uv=False)[1])


# ----------------------------------------------------------------------------- normalised spectrum


@register_measure("normalized_gap")
def normalized_gap(graph: BipartiteGraph) -> float:
    """``1 − σ₂(D_R^{-1/2} B D_L^{-1/2})`` (isolated nodes dropped, ``σ₁ = 1``), clipped at 0.

    It is ``λ₂`` of the normalised Laplacian ``I − D^{-1/2} A D^{-1/2}`` (Chung, *Spectral Graph
    Theory*, 1997), exactly except for a lone edge (``λ₂ = 2``), and 0 when disconnected.
    """
    if graph.num_edges == 0:
        return NAN
    return max(0.0, 1.0 - graph.normalized_spectrum[1])


@register_measure("cheeger_lower")
def cheeger_lower(graph: BipartiteGraph) -> float:
    """``gap / 2``: the lower Cheeger bound on the conductance ``h`` (Chung 1997, ``gap/2 ≤ h``)."""
    return normalized_gap(graph) / 2


@register_measure("cheeger_upper")
def cheeger_upper(graph: BipartiteGraph) -> float:
    """``√(2·gap)``: the upper Cheeger bound on ``h`` (``h ≤ 1``, so above 1 it says nothing)."""
    return sqrt_or_nan(2 * normalized_gap(graph))


# ----------------------------------------------------------------------------- weighted spectrum


@register_measure("weighted_lambda1")
def weighted_lambda1(graph: BipartiteGraph) -> float:
    """``σ₁(|W| ⊙ B)``; NaN without a weight or with a non-finite weight on an edge."""
    spectrum = graph.weighted_spectrum
    return NAN if spectrum is None else spectrum[0]


@register_measure("weighted_mu")
def weighted_mu(graph: BipartiteGraph) -> float:
    """``σ₂(|W| ⊙ B)``."""
    spectrum = graph.weighted_spectrum
    return NAN if spectrum is None else spectrum[1]


@register_measure("weighted_gap")
def weighted_gap(graph: BipartiteGraph) -> float:
    """``σ₁ − σ₂`` of ``|W| ⊙ B``."""
    spectrum = graph.weighted_spectrum
    return NAN if spectrum is None else spectrum[0] - spectrum[1]


# ----------------------------------------------------------------------------- random baseline


@register_measure("random_delta_r")
def random_delta_r(graph: BipartiteGraph) -> float:
    """``r − mean μ`` over ``graph.random_samples`` random graphs with the same degree sequences
    (same ``r``); NaN with no samples. See :mod:`~rnn_prune.expansion.baseline`."""
    if not graph.random_samples or graph.num_edges == 0:
        return NAN
    samples = same_degree_samples(graph.rows, graph.cols, graph.shape, samples=graph.random_samples, seed=graph.seed)
    mus = [top_singular_values_of_edges(r, c, np.ones(len(r)), graph.shape)[1] for r, c in samples]
    return ramanujan_bound_measure(graph) - float(np.mean(mus))


DEFAULT_MEASURES: tuple[str, ...] = tuple(name for name in MEASURES if name != "random_delta_r")
"""What ``layer_expansion`` and ``ExpansionMetrics`` compute unless told otherwise: every built-in
measure but the random baseline (which runs when ``random_samples > 0``)."""
