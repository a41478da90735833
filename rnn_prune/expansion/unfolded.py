"""A recurrent layer unfolded in time, read as one graph.

Over ``T`` steps a recurrent layer with ``in`` input and ``hidden`` hidden units is the layered
graph with nodes ``x_t`` (``in`` units) and ``h_t`` (``hidden`` units) for ``t = 1 … T`` and edges

* ``x_t → h_t`` wherever the union (OR over gates) of the ``ih`` gate masks is nonzero, and
* ``h_{t−1} → h_t`` wherever the union of the ``hh`` gate masks is nonzero (``t ≥ 2``).

It is built from copies of the per-step bipartite layers: ``T`` copies of the ``ih`` graph (the
stacked ``weight_ih`` with its gates OR-ed into one ``hidden × in`` biadjacency ``X``) and ``T − 1``
copies of the ``hh`` graph (``H``, ``hidden × hidden``), glued along the ``h_t`` layers. A forward
path from ``x_{T−k}`` to ``h_T`` is one ``ih`` edge followed by ``k`` ``hh`` edges, so the pairs it
joins are the nonzeros of the boolean product ``H^k X``: reachability at lag ``k`` is how well the
composition of ``k + 1`` per-step bipartite graphs still connects every input to every output,
which is what good expansion of each layer buys.

Only the mask graph is read. An LSTM's cell state (``c_t = f ⊙ c_{t−1} + …``) and a GRU's
interpolation (``h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}``) also carry every unit to itself at the next
step whatever the masks say; ``self_loops=True`` adds those ``h_{t−1, j} → h_{t, j}`` edges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from torch import nn

from rnn_prune.expansion._inputs import as_mask, check_bool, check_int
from rnn_prune.expansion.components import connected_components
from rnn_prune.expansion.spectral import top_singular_values_of_edges
from rnn_prune.masks import get_mask
from rnn_prune.registry import prunable_weights

NAN = float("nan")
DENSE_HOP_DENSITY = 0.05
"""Above this density the ``hh`` union multiplies as a dense matrix (BLAS), below as sparse CSR."""


@dataclass(frozen=True)
class UnfoldedExpansion:
    """Measures of one recurrent layer (one direction) unfolded over ``steps`` time steps.

    Attributes:
        steps: ``T``.
        reachability: ``reachability[k]`` is the fraction of (input unit at step ``T − k``, hidden
            unit at step ``T``) pairs joined by a forward-in-time path, for lags ``k = 0 … T − 1``
            (lag 0 = the last step's own input, i.e. the density of the ``ih`` union).
        num_components: connected components of the undirected unfolded graph
            (:func:`~rnn_prune.expansion.components.connected_components`; every isolated node is a
            component of its own).
        largest_component: node count of the largest component.
        lambda1, mu: the two largest eigenvalues of the undirected unfolded graph's symmetric
            adjacency. The graph is bipartite (colour ``h_t`` by the parity of ``t`` and ``x_t``
            the other way), so these are ``σ₁, σ₂`` of the biadjacency between the two colours
            (``μ = 0`` for a lone edge, whose adjacency has eigenvalues ±1).
    """

    steps: int
    reachability: tuple[float, ...]
    num_components: int
    largest_component: int
    lambda1: float
    mu: float

    def as_dict(self, lags: Iterable[int] | None = None) -> dict[str, float]:
        """Scalars for loggers: ``reach@lag{k}``, components, ``lambda1``, ``mu``.

        Args:
            lags: the lags whose reachability is included (default: every lag ``0 … T − 1``); a
                ``ValueError`` names one outside that range.
        """
        lags = range(self.steps) if lags is None else list(lags)
        bad = [lag for lag in lags if not (isinstance(lag, int) and 0 <= lag < self.steps)]
        if bad:
            raise ValueError(f"lags {bad} lie outside [0, steps={self.steps})")
        out = {f"reach@lag{k}": self.reachability[k] for k in lags}
        out.update(
            num_components=float(self.num_components),
            largest_component=float(self.largest_component),
            lambda1=self.lambda1,
            mu=self.mu,
        )
        return out


def unfolded_layer_expansion(
    ih: object, hh: object, *, steps: int = 8, self_loops: bool = False
) -> UnfoldedExpansion:
    """Measures of the graph unfolded over ``steps`` steps from gate-united masks.

    Args:
        ih: (hidden, in) 0/1 mask, the union over gates of the input-to-hidden masks.
        hh: (hidden, hidden) 0/1 mask, the union over gates of the hidden-to-hidden masks.
        steps: ``T >= 1``.
        self_loops: add an ``h_{t−1, j} → h_{t, j}`` edge for every unit (cell state / gating).

    >>> ih, hh = np.eye(2), np.array([[0, 1], [1, 0]])  # each input feeds one unit; units swap
    >>> e = unfolded_layer_expansion(ih, hh, steps=3)
    >>> e.reachability, e.num_components, e.largest_component
    ((0.5, 0.5, 0.5), 2, 6)
    """
    x = as_mask(ih, "ih")
    h = as_mask(hh, "hh")
    steps = check_int(steps, "steps", minimum=1)
    self_loops = check_bool(self_loops, "self_loops")
    hidden, inputs = x.shape
    if h.shape != (hidden, hidden):
        raise ValueError(f"hh has shape {h.shape}, expected (hidden, hidden) = {(hidden, hidden)}")
    if self_loops:
        h = h | np.eye(hidden, dtype=bool)

    reach = _reachability(x, h, steps)
    src, dst = _unfolded_edges(np.nonzero(x), np.nonzero(h), inputs, hidden, steps)
    components = connected_components(src, dst, steps * (inputs + hidden))
    lambda1, mu = _bipartite_spectrum(src, dst, inputs, hidden, steps, components.labels)
    return UnfoldedExpansion(
        steps=steps,
        reachability=reach,
        num_components=components.num,
        largest_component=components.largest,
        lambda1=float(lambda1),
        mu=float(mu),
    )


def _reachability(x: np.ndarray, h: np.ndarray, steps: int) -> tuple[float, ...]:
    """Density of the boolean product ``H^k X`` for ``k = 0 … steps − 1``.

    ``H`` multiplies as a sparse CSR matrix while it is sparse and as a dense BLAS matrix once it
    holds more than :data:`DENSE_HOP_DENSITY` of its entries (where BLAS is the faster); the
    products are float32 counts of paths, exact below 2²⁴ units, and only ``> 0`` is kept.
    """
    if x.size == 0:
        return (NAN,) * steps
    hop: np.ndarray | sp.csr_matrix = h.astype(np.float32)
    if np.count_nonzero(h) <= DENSE_HOP_DENSITY * h.size:
        hop = sp.csr_matrix(hop)
    reached = x
    out = [float(np.count_nonzero(reached) / x.size)]
    for _ in range(1, steps):
        reached = np.asarray(hop @ reached.astype(np.float32)) > 0
        out.append(float(np.count_nonzero(reached) / x.size))
    return tuple(out)


Edges = tuple[np.ndarray, np.ndarray]  # (rows, cols) of a mask: (target unit, source unit)


def _unfolded_edges(ih: Edges, hh: Edges, inputs: int, hidden: int, steps: int) -> Edges:
    """Directed edges (source, target) of the unfolded graph.

    Node ``t·(in + hidden) + i`` is input unit ``i`` at step ``t`` (0-based), node
    ``t·(in + hidden) + in + j`` hidden unit ``j`` at step ``t``.
    """
    block = inputs + hidden
    t = np.arange(steps)[:, None] * block
    src_ih, dst_ih = (t + ih[1]).ravel(), (t + inputs + ih[0]).ravel()
    t = t[1:]
    src_hh, dst_hh = (t - block + inputs + hh[1]).ravel(), (t + inputs + hh[0]).ravel()
    return np.concatenate([src_ih, src_hh]), np.concatenate([dst_ih, dst_hh])


def _bipartite_spectrum(
    src: np.ndarray, dst: np.ndarray, inputs: int, hidden: int, steps: int, membership: np.ndarray
) -> np.ndarray:
    """σ₁, σ₂ of the biadjacency between the two colour classes of the unfolded graph."""
    block = inputs + hidden
    node = np.arange(steps * block)
    step, is_hidden = node // block, node % block >= inputs
    colour = (step + ~is_hidden) % 2  # h_t: parity of t; x_t: the other parity
    index = np.empty_like(node)
    for c in (0, 1):
        members = colour == c
        index[members] = np.arange(np.count_nonzero(members))
    first = colour[src] == 0  # every edge joins the two colours
    rows = np.where(first, index[src], index[dst])
    cols = np.where(first, index[dst], index[src])
    shape = (int(np.count_nonzero(colour == 0)), int(np.count_nonzero(colour == 1)))
    labels = np.concatenate([membership[colour == 0], membership[colour == 1]])
    return top_singular_values_of_edges(rows, cols, np.ones(len(rows)), shape, labels=labels)


def unfolded_expansion(
    module: nn.RNNBase, steps: int = 8, *, self_loops: bool = False
) -> dict[str, UnfoldedExpansion]:
    """:func:`unfolded_layer_expansion` of every layer and direction of a recurrent module.

    Masks are read through the registry (``prunable_weights`` and ``masks.get_mask``), so a bare,
    never pruned ``nn.LSTM`` works too (all ones). Each layer and direction is its own unfolded
    graph, built from its own ``weight_ih`` / ``weight_hh``; the graph of a stack of layers is not
    formed. A reverse direction reads time backwards, so its lag counts back from the first step
    (where it ends); the graph has the same shape and the same measures apply.

    Args:
        module: ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` (without ``proj_size``).
        steps: ``T >= 1``.
        self_loops: see :func:`unfolded_layer_expansion`.

    Returns:
        ``{"l0": …, "l0_reverse": …, "l1": …}`` in layer order.

    >>> result = unfolded_expansion(nn.GRU(3, 4, num_layers=2, bidirectional=True), steps=2)
    >>> list(result), result["l1"].reachability
    (['l0', 'l0_reverse', 'l1', 'l1_reverse'], (1.0, 1.0))
    """
    if not isinstance(module, nn.RNNBase):
        raise ValueError(f"module must be an nn.RNN, nn.LSTM or nn.GRU, got {type(module).__name__}")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"module has proj_size={module.proj_size}; projected LSTMs are not supported")
    steps = check_int(steps, "steps", minimum=1)
    self_loops = check_bool(self_loops, "self_loops")
    united: dict[str, dict[str, np.ndarray]] = {}
    for weight in prunable_weights(module):
        key = f"l{weight.layer}" + ("_reverse" if weight.reverse else "")
        mask = as_mask(get_mask(weight), weight.name)
        gates = max(len(weight.gates), 1)
        united.setdefault(key, {})[weight.kind] = mask.reshape(gates, -1, mask.shape[1]).any(axis=0)
    return {
        key: unfolded_layer_expansion(parts["ih"], parts["hh"], steps=steps, self_loops=self_loops)
        for key, parts in united.items()
    }
