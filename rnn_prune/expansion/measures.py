"""The expansion measures: one registered function of a :class:`BipartiteGraph` per measure.

A measure is a function decorated with :func:`measure`, which makes it a :class:`Measure`: the
function with its name, its one-line doc, its declared keyword options (each with a default and a
check), whether it is in the default set, whether its value is a flag (``True``/``False``/``None``)
and an optional summary over all graphs of a model. Everything else derives from that one object:
:class:`~rnn_prune.expansion.layer.LayerExpansion` holds values by measure name, the metric keys are
``graph/<graph>/<measure.name>``, and ``ExpansionMetrics`` computes, schedules and summarises
measures without knowing any by name.

:data:`MEASURES` is the :class:`MeasureRegistry` of the built-ins, built explicitly at the bottom
of this module. A user adds one with :func:`register_measure` (scoped in tests by
:meth:`MeasureRegistry.scoped`) or simply names ``module.function`` in ``measures`` (imported,
never registered). The costly parts (components, the three spectra, IMDB's edge order) are cached
on the graph, so a measure costs nothing unless asked for and two measures that share a spectrum
compute it once.

Each convention is stated in the function's docstring with its source: [H] Hoang et al.,
"Revisiting pruning at initialization through the lens of Ramanujan graph", ICLR 2023, and its
reference code (VITA-Group/ramanujan-on-pai, ``lib/graphs/scores.py``); [C] Chung, *Spectral Graph
Theory*, 1997.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from rnn_prune import keys
from rnn_prune.expansion._inputs import check_int
from rnn_prune.expansion.baseline import same_degree_samples
from rnn_prune.expansion.graph import NAN, BipartiteGraph, ramanujan_bound, sqrt_or_nan
from rnn_prune.expansion.spectral import top_singular_values_of_edges
from rnn_prune.expansion.verdict import MIN_AVG_DEGREE, RamanujanVerdict, ramanujan_share, ramanujan_verdict

Value = float | int | bool | None
"""What a measure returns: a number (NaN when undefined), or for a flag ``True``/``False``/``None``."""

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


# ----------------------------------------------------------------------------- the measure object


@dataclass(frozen=True)
class Option:
    """A keyword option a measure declares: its default, what it means, and the check of a value.

    ``check(value, name)`` returns the value to use or raises a ``ValueError`` naming ``name``
    (``<measure>.<option>``); it runs once, where the option enters (``layer_expansion``,
    ``model_expansion``, ``ExpansionMetrics``), never per graph.
    """

    default: Any
    doc: str
    check: Callable[[object, str], Any] = lambda value, name: value


def nonnegative_int(value: object, name: str) -> int:
    """Option check: an integer ``>= 0`` (not a bool)."""
    return check_int(value, name, minimum=0)


Summary = Callable[[Sequence[Value]], dict[str, float]]
"""A measure's summary over the graphs of one model: their values in, ``{metric key: value}`` out."""


@dataclass(frozen=True, eq=False)
class Measure:
    """One measure: ``fn(graph, **options) -> value`` and everything the package needs to know about it.

    Attributes:
        fn: the function; its keyword-only parameters are exactly the declared ``options``.
        name: the ``<measure>`` of ``graph/<graph>/<measure>``; letters, digits, ``_ @ . -``.
        doc: the first paragraph of ``fn``'s docstring (for tables and ``--help`` texts).
        options: declared keyword options by name.
        default: whether it is computed when no ``measures`` are named.
        flag: its value is ``True``/``False``/``None`` (undefined), logged as 1/0/NaN; a measure
            that was not computed reads ``None`` instead of NaN.
        summary: optional reduction over the graphs of a model, logged once per epoch.
    """

    fn: Callable[..., Value]
    name: str
    doc: str = ""
    options: Mapping[str, Option] = field(default_factory=dict)
    default: bool = True
    flag: bool = False
    summary: Summary | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"measure name {self.name!r} must be a string of letters, digits and _ @ . - (no '/')")
        if not callable(self.fn):
            raise ValueError(f"measure {self.name!r} must be a callable of the graph, got {self.fn!r}")
        keyword = _keyword_parameters(self.fn)
        if keyword is not None and set(keyword) != set(self.options):
            raise ValueError(
                f"measure {self.name!r}: its keyword-only parameters {sorted(keyword)} must be its declared "
                f"options {sorted(self.options)}"
            )
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def __call__(self, graph: BipartiteGraph, **options: Any) -> Value:
        """The value on ``graph``; ``options`` are taken as checked (see :meth:`check_options`)."""
        if not self.options:
            return self.fn(graph)
        return self.fn(graph, **({name: option.default for name, option in self.options.items()} | options))

    @property
    def missing(self) -> Value:
        """What a result reads for this measure when it was not computed: NaN, ``None`` for a flag."""
        return None if self.flag else NAN

    def check_options(self, options: object, argument: str) -> dict[str, Any]:
        """``options`` (a mapping of declared option names) checked; the one check of a measure's options."""
        if not isinstance(options, Mapping):
            raise ValueError(f"{argument}: options of measure {self.name!r} must be a mapping, got {options!r}")
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(
                f"{argument}: measure {self.name!r} has no option {unknown}; it takes {sorted(self.options) or 'none'}"
            )
        return {key: self.options[key].check(value, f"{self.name}.{key}") for key, value in options.items()}

    def __repr__(self) -> str:
        return f"Measure({self.name!r})"


def _keyword_parameters(fn: Callable[..., Any]) -> list[str] | None:
    """Names of ``fn``'s keyword-only parameters (``None`` where the signature cannot be read)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


def measure(
    fn: Callable[..., Value] | None = None,
    *,
    name: str | None = None,
    options: Mapping[str, Option] | None = None,
    default: bool = True,
    flag: bool = False,
    summary: Summary | None = None,
) -> Any:
    """Decorator: make ``fn(graph, *, **options) -> value`` a :class:`Measure` named ``name``
    (default: the function's name). It registers nothing; see :func:`register_measure`.

    >>> @measure
    ... def edges_per_right_node(graph: BipartiteGraph) -> float:
    ...     '''|E| / out.'''
    ...     return graph.num_edges / graph.num_right
    >>> edges_per_right_node.name, edges_per_right_node.doc, edges_per_right_node(BipartiteGraph(np.ones((2, 3))))
    ('edges_per_right_node', '|E| / out.', 3.0)
    """

    def decorator(function: Callable[..., Value]) -> Measure:
        doc = inspect.cleandoc(function.__doc__ or "").split("\n\n")[0].replace("\n", " ")
        measure_name = name if name is not None else getattr(function, "__name__", None)
        return Measure(function, measure_name, doc, dict(options or {}), default, flag, summary)

    return decorator if fn is None else decorator(fn)


@dataclass(frozen=True)
class Selection:
    """Measures to compute, in order, and their checked options (what the public entries validate)."""

    measures: tuple[Measure, ...]
    options: Mapping[str, dict[str, Any]]

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.measures]


class MeasureRegistry(Mapping[str, Measure]):
    """Measures by name, in registration order: :data:`MEASURES` holds the built-ins.

    Read-only as a mapping; :meth:`add` / :func:`register_measure` add a user's measure, and
    :meth:`scoped` undoes additions made inside it (for tests and notebooks).
    """

    def __init__(self, measures: Iterable[Measure] = ()) -> None:
        self._measures: dict[str, Measure] = {}
        for item in measures:
            self.add(item)

    def __getitem__(self, name: str) -> Measure:
        return self._measures[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._measures)

    def __len__(self) -> int:
        return len(self._measures)

    def add(self, item: Measure, *, replace: bool = False) -> Measure:
        """Register ``item`` under its name; an existing name needs ``replace=True``."""
        if not isinstance(item, Measure):
            raise ValueError(f"only a Measure can be registered (decorate it with @measure), got {item!r}")
        if item.name in self._measures and not replace:
            raise ValueError(f"measure {item.name!r} is already registered; pass replace=True to redefine it")
        self._measures[item.name] = item
        return item

    def register(self, name: str | None = None, *, replace: bool = False, **kwargs: Any) -> Callable[..., Measure]:
        """Decorator: :func:`measure` (``name`` and ``kwargs`` passed on), then :meth:`add`.

        A registered measure is computed where it is named, not by default (``default=True`` to
        make it part of :meth:`defaults`)."""
        kwargs.setdefault("default", False)
        return lambda fn: self.add(measure(fn, name=name, **kwargs), replace=replace)

    @contextmanager
    def scoped(self) -> Iterator[MeasureRegistry]:
        """Within the block, registrations (and replacements) are undone on exit."""
        before = dict(self._measures)
        try:
            yield self
        finally:
            self._measures = before

    def defaults(self) -> tuple[str, ...]:
        """Names of the measures computed when none are named."""
        return tuple(name for name, item in self._measures.items() if item.default)

    def resolve(self, names: object, argument: str = "measures") -> list[Measure]:
        """``names`` as measures, repeats dropped; a ``ValueError`` naming every unknown one.

        An entry is a registered name, a :class:`Measure`, or ``module.function``: the module is
        imported and the function used under its own name (a plain function is wrapped by
        :func:`measure`), so a YAML config can name a measure from the user's own file,
        ``measures: [delta_r, my_measures.edges_per_right_node]``.
        """
        if isinstance(names, str) or not isinstance(names, Iterable):
            raise ValueError(f"{argument} must be a list of measure names, got {names!r}")
        resolved: dict[str, Measure] = {}
        bad = []
        for entry in names:
            item = entry if isinstance(entry, Measure) else self._lookup(entry, argument)
            if item is None:
                bad.append(entry)
            else:
                resolved.setdefault(item.name, item)
        if bad:
            raise ValueError(
                f"{argument}={bad} are not measures; choose from {list(self)} or name one as module.function"
            )
        return list(resolved.values())

    def _lookup(self, entry: object, argument: str) -> Measure | None:
        if not isinstance(entry, str):
            return None
        if entry in self._measures:
            return self._measures[entry]
        if "." not in entry:
            return None
        module_name, _, attr = entry.rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"{argument}: cannot import measure {entry!r}: {error}") from error
        item = found if isinstance(found, Measure) else measure(found, name=attr)
        registered = self._measures.get(item.name)
        if registered is not None and registered.fn is not item.fn:
            raise ValueError(f"{argument}: {entry!r} is named {item.name!r}, which is another registered measure")
        return registered or item

    def select(
        self,
        measures: object = None,
        options: object = None,
        *,
        argument: str = "measures",
        options_argument: str = "measure_options",
    ) -> Selection:
        """The one check of a measure list and its options, done where they enter the package.

        Args:
            measures: names as for :meth:`resolve`; ``None``: :meth:`defaults`.
            options: ``{measure: {option: value}}``; a measure given options is computed even when
                ``measures`` leaves it out (that is how the random baseline, off by default, is
                switched on: ``{random_delta_r: {samples: 8}}``).
        """
        chosen = self.resolve(self.defaults() if measures is None else measures, argument)
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise ValueError(f"{options_argument} must map measure names to their options, got {options!r}")
        checked: dict[str, dict[str, Any]] = {}
        for key, values in options.items():
            named = {m.name: m for m in chosen}
            item = named[key] if isinstance(key, str) and key in named else self.resolve([key], options_argument)[0]
            if item.name not in named:
                chosen.append(item)
            checked[item.name] = item.check_options(values, options_argument)
        return Selection(tuple(chosen), MappingProxyType(checked))


# ----------------------------------------------------------------------------- summaries over graphs


def _smallest_finite_delta_r(values: Sequence[Value]) -> dict[str, float]:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return {keys.MIN_DELTA_R: min(finite) if finite else NAN}


def _ramanujan_share(values: Sequence[Value]) -> dict[str, float]:
    share = ramanujan_share(values)
    return {keys.RAMANUJAN_FRACTION: share.fraction, keys.RAMANUJAN_UNDEFINED: float(share.num_undefined)}


# ----------------------------------------------------------------------------- counts and degrees


@measure
def num_left(graph: BipartiteGraph) -> int:
    """Left nodes: the ``in`` units."""
    return graph.num_left


@measure
def num_right(graph: BipartiteGraph) -> int:
    """Right nodes: the ``out`` units."""
    return graph.num_right


@measure
def num_edges(graph: BipartiteGraph) -> int:
    """``|E|``: nonzeros of the mask."""
    return graph.num_edges


@measure
def density(graph: BipartiteGraph) -> float:
    """``|E| / (in·out)``; NaN for a side of size 0."""
    size = graph.num_left * graph.num_right
    return graph.num_edges / size if size else NAN


@measure
def sparsity(graph: BipartiteGraph) -> float:
    """``1 − density``."""
    return 1.0 - density(graph)


@measure
def avg_left_degree(graph: BipartiteGraph) -> float:
    """``d̄L = |E| / #non-isolated left nodes``: isolated nodes left out, as the reference's
    ``filter_zero_degree`` does before averaging."""
    return graph.left_stats[0]


@measure
def avg_right_degree(graph: BipartiteGraph) -> float:
    """``d̄R``, over the non-isolated right nodes."""
    return graph.right_stats[0]


@measure
def min_left_degree(graph: BipartiteGraph) -> float:
    """Smallest degree of a non-isolated left node."""
    return graph.left_stats[1]


@measure
def max_left_degree(graph: BipartiteGraph) -> float:
    """Largest left degree."""
    return graph.left_stats[2]


@measure
def min_right_degree(graph: BipartiteGraph) -> float:
    """Smallest degree of a non-isolated right node."""
    return graph.right_stats[1]


@measure
def max_right_degree(graph: BipartiteGraph) -> float:
    """Largest right degree."""
    return graph.right_stats[2]


@measure
def num_isolated_left(graph: BipartiteGraph) -> int:
    """Left nodes of degree 0."""
    return int(graph.num_left - np.count_nonzero(graph.left_deg))


@measure
def num_isolated_right(graph: BipartiteGraph) -> int:
    """Right nodes of degree 0."""
    return int(graph.num_right - np.count_nonzero(graph.right_deg))


# ----------------------------------------------------------------------------- components


@measure
def num_components(graph: BipartiteGraph) -> int:
    """Connected components, every isolated node one of its own (as igraph and scipy count)."""
    return graph.components.num


@measure
def num_nonisolated_components(graph: BipartiteGraph) -> int:
    """Components with an edge: what the Ramanujan verdict asks to be 1 (0 without edges)."""
    return graph.components.num_nonisolated


@measure
def largest_component(graph: BipartiteGraph) -> int:
    """Node count of the largest component."""
    return graph.components.largest


# ----------------------------------------------------------------------------- spectrum of B


@measure
def lambda1(graph: BipartiteGraph) -> float:
    """``λ1 = σ₁(B)``, the largest eigenvalue of the (in+out)² adjacency (0 without edges)."""
    return graph.spectrum[0]


@measure
def mu(graph: BipartiteGraph) -> float:
    """``μ = σ₂(B)``, the second largest nonnegative adjacency eigenvalue — the reference's ``t2_m``,
    the third largest ``|eigenvalue|`` of the adjacency, since ``±σ₁`` come first."""
    return graph.spectrum[1]


@measure
def spectral_gap(graph: BipartiteGraph) -> float:
    """``λ1 − μ``."""
    return graph.spectrum[0] - graph.spectrum[1]


@measure(name="ramanujan_bound")
def ramanujan_bound_measure(graph: BipartiteGraph) -> float:
    """``r = √(d̄L − 1) + √(d̄R − 1)`` (the reference's ``delta_r`` upper bound ``rm_ub``)."""
    return ramanujan_bound(graph.left_stats[0], graph.right_stats[0])


@measure(summary=_smallest_finite_delta_r)
def delta_r(graph: BipartiteGraph) -> float:
    """``Δr = r − μ`` (the reference's ``rm``), reported at every average degree; the reference
    computes it only where ``d̄L, d̄R ≥ 3``, which is where ``is_ramanujan`` is defined.

    Summary: ``graph/min_delta_r``, the smallest finite Δr over the graphs (NaN when none is)."""
    return ramanujan_bound_measure(graph) - graph.spectrum[1]


@measure
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


@measure
def delta_s(graph: BipartiteGraph) -> float:
    """``Δs = 2√(λ1 − 1) − μ`` (the reference's ``sm``)."""
    return 2 * sqrt_or_nan(graph.spectrum[0] - 1) - graph.spectrum[1]


def graph_verdict(graph: BipartiteGraph, *, margin: float = 0.0) -> RamanujanVerdict:
    """:func:`~rnn_prune.expansion.verdict.ramanujan_verdict` of ``graph``'s Δr, average degrees and
    non-isolated components: the one place that feeds the rule, for the ``is_ramanujan`` measure
    and the pruning guard (which asks with its ``margin``)."""
    return ramanujan_verdict(
        delta_r(graph), graph.left_stats[0], graph.right_stats[0], graph.components.num_nonisolated, margin=margin
    )


@measure(flag=True, summary=_ramanujan_share)
def is_ramanujan(graph: BipartiteGraph) -> bool | None:
    """The Ramanujan verdict (:func:`graph_verdict`): ``None`` below average degree 3 (the reference's
    gate), ``False`` when disconnected, else ``Δr ≥ 0``. Its reason goes to ``reason``.

    Summary: ``graph/ramanujan_fraction``, the share of Ramanujan graphs among those with a defined
    verdict (NaN when none has one), and ``graph/ramanujan_undefined``, how many had none."""
    decision = graph_verdict(graph)
    if decision.reason and graph.num_edges:
        graph.note(decision.reason)
    return decision.is_ramanujan


# ----------------------------------------------------------------------------- IMDB


@measure
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


@measure
def normalized_gap(graph: BipartiteGraph) -> float:
    """``1 − σ₂(D_R^{-1/2} B D_L^{-1/2})`` (isolated nodes dropped, ``σ₁ = 1``), clipped at 0.

    It is ``λ₂`` of the normalised Laplacian ``I − D^{-1/2} A D^{-1/2}`` (Chung, *Spectral Graph
    Theory*, 1997), exactly except for a lone edge (``λ₂ = 2``), and 0 when disconnected.
    """
    if graph.num_edges == 0:
        return NAN
    return max(0.0, 1.0 - graph.normalized_spectrum[1])


@measure
def cheeger_lower(graph: BipartiteGraph) -> float:
    """``gap / 2``: the lower Cheeger bound on the conductance ``h`` (Chung 1997, ``gap/2 ≤ h``)."""
    return normalized_gap(graph) / 2


@measure
def cheeger_upper(graph: BipartiteGraph) -> float:
    """``√(2·gap)``: the upper Cheeger bound on ``h`` (``h ≤ 1``, so above 1 it says nothing)."""
    return sqrt_or_nan(2 * normalized_gap(graph))


# ----------------------------------------------------------------------------- weighted spectrum


@measure
def weighted_lambda1(graph: BipartiteGraph) -> float:
    """``σ₁(|W| ⊙ B)``; NaN without a weight or with a non-finite weight on an edge."""
    spectrum = graph.weighted_spectrum
    return NAN if spectrum is None else spectrum[0]


@measure
def weighted_mu(graph: BipartiteGraph) -> float:
    """``σ₂(|W| ⊙ B)``."""
    spectrum = graph.weighted_spectrum
    return NAN if spectrum is None else spectrum[1]


@measure
def weighted_gap(graph: BipartiteGraph) -> float:
    """``σ₁ − σ₂`` of ``|W| ⊙ B``."""
    spectrum = graph.weighted_spectrum
    return NAN if spectrum is None else spectrum[0] - spectrum[1]


# ----------------------------------------------------------------------------- random baseline


@measure(
    default=False,
    options={
        "samples": Option(8, "random same-degree graphs (about 3 s each for 4096×1024 at 10 % density)",
                          nonnegative_int),
        "seed": Option(0, "seed of the samples", nonnegative_int),
    },
)  # fmt: skip
def random_delta_r(graph: BipartiteGraph, *, samples: int, seed: int) -> float:
    """``r − mean μ`` over ``samples`` random graphs with the same degree sequences (same ``r``);
    NaN with no samples. Off by default: it costs a spectrum per sample. See
    :mod:`~rnn_prune.expansion.baseline`."""
    if not samples or graph.num_edges == 0:
        return NAN
    pairs = same_degree_samples(graph.rows, graph.cols, graph.shape, samples=samples, seed=seed)
    mus = [top_singular_values_of_edges(r, c, np.ones(len(r)), graph.shape)[1] for r, c in pairs]
    return ramanujan_bound_measure(graph) - float(np.mean(mus))


# ----------------------------------------------------------------------------- the registry

MEASURES = MeasureRegistry(
    [
        num_left, num_right, num_edges, density, sparsity,
        avg_left_degree, avg_right_degree, min_left_degree, max_left_degree, min_right_degree, max_right_degree,
        num_isolated_left, num_isolated_right,
        num_components, num_nonisolated_components, largest_component,
        lambda1, mu, spectral_gap, ramanujan_bound_measure, delta_r, giant_delta_r, delta_s, is_ramanujan,
        imdb,
        normalized_gap, cheeger_lower, cheeger_upper,
        weighted_lambda1, weighted_mu, weighted_gap,
        random_delta_r,
    ]
)  # fmt: skip
"""The built-in measures by name, in this order; :func:`register_measure` adds a user's."""

DEFAULT_MEASURES: tuple[str, ...] = MEASURES.defaults()
"""What ``layer_expansion`` and ``ExpansionMetrics`` compute unless told otherwise: every built-in
measure but the random baseline (switched on by giving it options)."""

register_measure = MEASURES.register
"""Decorator: ``@register_measure("name")`` makes a function a measure and adds it to :data:`MEASURES`.

>>> with MEASURES.scoped():
...     @register_measure("edges_per_right_node")
...     def edges_per_right_node(graph: BipartiteGraph) -> float:
...         return graph.num_edges / graph.num_right
...     "edges_per_right_node" in MEASURES
True
>>> "edges_per_right_node" in MEASURES
False
"""
