"""Random bipartite graphs with the degrees of a given one: the baseline a layer is compared with.

How they are drawn: the graph is stored as a *directed* igraph graph, every edge pointing from its
left (input) node to its right (output) node, and rewired with igraph's degree-preserving edge
switches (``Graph.rewire``: ``a→b, c→d`` becomes ``a→d, c→b``, no multi-edges). A directed switch
keeps every out- and in-degree; left nodes have in-degree 0 and right nodes out-degree 0, so no
switch can create a left–left or right–right edge and the result stays bipartite with exactly the
same left and right degree sequences. An undirected ``rewire`` would not (it may join two left
nodes), and ``Graph.Degree_Sequence`` knows nothing of the two sides. Each sample takes
:data:`SWITCHES_PER_EDGE` × |E| switch trials (igraph's own default) continuing the same chain,
which is many times the number usually needed to forget the start in practice; the chain is not
proven to have mixed.

Seeding: igraph draws from a Python ``random``-like object; for reproducible samples it is pointed
at ``random.Random(seed)`` for the duration of the call and then reset to igraph's default, the
``random`` module (a generator set earlier with ``igraph.set_random_number_generator`` is not
restored).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from contextlib import contextmanager

import igraph
import numpy as np

from rnn_prune.expansion._inputs import as_mask, check_int

SWITCHES_PER_EDGE = 10
"""Switch trials per edge per sample (igraph's default for ``Graph.rewire``)."""


@contextmanager
def _seeded_igraph(seed: int) -> Iterator[None]:
    igraph.set_random_number_generator(random.Random(seed))
    try:
        yield
    finally:
        igraph.set_random_number_generator(random)


def same_degree_samples(
    rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], *, samples: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``samples`` random edge lists ``(rows, cols)`` with the degrees of the given one.

    ``rows`` index the right (output) side, ``cols`` the left (input) side, of an (out, in) matrix.
    One :func:`switched_edges` chain, :data:`SWITCHES_PER_EDGE` × |E| trials between samples.
    """
    return itertools.islice(switched_edges(rows, cols, shape, trials=SWITCHES_PER_EDGE * len(rows), seed=seed),
                            samples)  # fmt: skip


def _bipartite_digraph(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> igraph.Graph:
    """The directed igraph graph of an (out, in) edge list: left (input) node ``j`` → right node ``in + i``."""
    out_features, in_features = shape
    edges = np.column_stack([cols, rows.astype(np.int64) + in_features]).astype(np.int64)
    return igraph.Graph(n=in_features + out_features, edges=edges, directed=True)


def _switch(graph: igraph.Graph, trials: int, seed: int) -> None:
    """``trials`` degree-preserving switch trials on ``graph``, in place, seeded."""
    if graph.ecount() >= 2 and trials > 0:
        with _seeded_igraph(seed):
            graph.rewire(n=trials, allowed_edge_types="simple")


def _edge_lists(graph: igraph.Graph, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    pairs = np.asarray(graph.get_edgelist(), dtype=np.int64).reshape(-1, 2)
    return pairs[:, 1] - shape[1], pairs[:, 0]


def switched_edges(
    rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], *, trials: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The edge list after each successive batch of ``trials`` switch trials on the same chain.

    For callers that stop the chain on a condition of their own (the ``rewired`` pruning criterion
    stops once enough edges have moved) instead of after :data:`SWITCHES_PER_EDGE` × |E| trials.
    Each batch is seeded ``seed``, ``seed + 1``, ...
    """
    graph = _bipartite_digraph(rows, cols, shape)
    while True:
        _switch(graph, trials, seed)
        seed += 1
        yield _edge_lists(graph, shape)


def random_bipartite(mask: object, *, seed: int = 0) -> np.ndarray:
    """A random bool mask of the same shape whose every row and column sum equals ``mask``'s.

    Args:
        mask: (out, in) 0/1 tensor or array; edge where ``mask != 0``.
        seed: seed of the switch chain (see the module docstring).

    >>> mask = np.eye(4, dtype=bool)
    >>> sample = random_bipartite(mask, seed=1)
    >>> sample.sum(0).tolist(), sample.sum(1).tolist()
    ([1, 1, 1, 1], [1, 1, 1, 1])
    """
    edges = as_mask(mask)
    seed = check_int(seed, "seed", minimum=0)
    rows, cols = np.nonzero(edges)
    new_rows, new_cols = next(same_degree_samples(rows, cols, edges.shape, samples=1, seed=seed))
    out = np.zeros(edges.shape, dtype=bool)
    out[new_rows, new_cols] = True
    return out
