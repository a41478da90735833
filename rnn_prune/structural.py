"""Masks built by their *structure*: exact edge count and degrees, with expansion as the one dial.

Magnitude and random masks at equal sparsity differ both in expansion and in *which* weights
survive, so a study of them cannot tell the two apart. These builders hold the edge count and the
degree sequences fixed and vary only how the edges are wired:

- :func:`biregular_mask`: every output keeps the same number of inputs and every input feeds the
  same number of outputs (±1 where the counts do not divide), wired at random. Random biregular
  graphs are near-Ramanujan: the best expander the sparsity allows.
- :func:`clustered_mask`: the same degree sequences, each side split into ``blocks`` groups; a
  share ``1 − mixing`` of the edges stays inside its group, the rest is wired at random. ``mixing``
  0 is ``blocks`` disconnected pieces, 1 is a random biregular graph.
- :func:`rewired_mask`: any mask after degree-preserving double-edge swaps: the same degrees,
  other neighbours.

A mask is an (out, in) boolean array (rows = outputs, columns = inputs), as everywhere in the
package. Pure numpy / igraph: no torch, no Lightning. Every builder takes an integer ``seed``.
"""

from __future__ import annotations

import math

import numpy as np

from rnn_prune.expansion._inputs import as_mask, check_fraction, check_int
from rnn_prune.expansion.baseline import SWITCHES_PER_EDGE, same_degree_samples, switched_edges

__all__ = ["balanced_degrees", "biregular_mask", "clustered_mask", "rewired_mask"]


def _check_shape_keep(shape: tuple[int, int], keep: int) -> tuple[int, int, int]:
    if len(shape) != 2 or any(not isinstance(s, int | np.integer) or s < 1 for s in shape):
        raise ValueError(f"shape={shape!r} must be two positive sizes (out, in)")
    out_features, in_features = int(shape[0]), int(shape[1])
    keep = check_int(keep, "keep", minimum=0)
    if keep > out_features * in_features:
        raise ValueError(f"keep={keep} exceeds the {out_features}×{in_features} = {out_features * in_features} entries")
    return out_features, in_features, keep


def balanced_degrees(total: int, nodes: int, rng: np.random.Generator) -> np.ndarray:
    """``total`` edge ends spread over ``nodes`` nodes as evenly as possible, the +1s on random nodes.

    >>> balanced_degrees(10, 4, np.random.default_rng(0)).tolist() in ([3, 3, 2, 2], [3, 2, 3, 2], [2, 3, 3, 2],
    ...     [3, 2, 2, 3], [2, 3, 2, 3], [2, 2, 3, 3])
    True
    """
    degrees = np.full(nodes, total // nodes, dtype=np.int64)
    degrees[rng.permutation(nodes)[: total % nodes]] += 1
    return degrees


def _stair(row_degrees: np.ndarray, in_features: int) -> tuple[np.ndarray, np.ndarray]:
    """A simple bipartite edge list with the given row degrees and columns as even as they can be.

    Edge ``k`` (rows in order, each taking ``row_degrees[i]`` consecutive edges) goes to column
    ``k mod in``: a row's edges hit distinct columns as long as its degree is at most ``in``, and
    column ``j`` gets ``⌈(E − j) / in⌉`` edges, so column degrees differ by at most one.
    """
    rows = np.repeat(np.arange(len(row_degrees)), row_degrees)
    return rows, np.arange(len(rows)) % in_features


def _as_matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    out[rows, cols] = True
    return out


def biregular_mask(shape: tuple[int, int], keep: int, *, seed: int) -> np.ndarray:
    """A random (out, in) mask with ``keep`` edges and every row and column degree within one of the others.

    Built as a deterministic graph with those degrees (rows and columns shuffled), then randomised
    by the degree-preserving switch chain of :mod:`rnn_prune.expansion.baseline`
    (:data:`~rnn_prune.expansion.baseline.SWITCHES_PER_EDGE` × ``keep`` trials).

    >>> m = biregular_mask((6, 4), 9, seed=0)
    >>> int(m.sum()), sorted(m.sum(1).tolist()), sorted(m.sum(0).tolist())
    (9, [1, 1, 1, 2, 2, 2], [2, 2, 2, 3])
    """
    out_features, in_features, keep = _check_shape_keep(shape, keep)
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    rows, cols = _stair(balanced_degrees(keep, out_features, rng), in_features)
    cols = rng.permutation(in_features)[cols]  # which columns carry the +1 is random too
    rows, cols = next(same_degree_samples(rows, cols, (out_features, in_features), samples=1, seed=seed))
    return _as_matrix(rows, cols, (out_features, in_features))


def _group_sizes(nodes: int, blocks: int) -> np.ndarray:
    return np.array([nodes // blocks + (g < nodes % blocks) for g in range(blocks)], dtype=np.int64)


def _block_edge_counts(keep: int, row_sizes: np.ndarray, col_sizes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Edges of each diagonal block such that every row and column degree stays within one of the others.

    Block ``g`` may hold between ``max(a·R_g, b·C_g)`` and ``min((a+1)·R_g, (b+1)·C_g, R_g·C_g)``
    edges (``a = ⌊keep/out⌋``, ``b = ⌊keep/in⌋``); the counts start at the lower ends and are
    raised in turn until they sum to ``keep``.
    """
    a, b = keep // shape[0], keep // shape[1]
    low = np.maximum(a * row_sizes, b * col_sizes)
    high = np.minimum(np.minimum((a + 1) * row_sizes, (b + 1) * col_sizes), row_sizes * col_sizes)
    spare = keep - int(low.sum())
    if spare < 0 or spare > int((high - low).clip(min=0).sum()) or (low > high).any():
        raise ValueError(
            f"a {shape[0]}×{shape[1]} mask with {keep} edges ({keep / (shape[0] * shape[1]):.3g} dense) does not fit "
            f"{len(row_sizes)} diagonal blocks of {row_sizes.min()}–{row_sizes.max()} × "
            f"{col_sizes.min()}–{col_sizes.max()} nodes with balanced degrees: use fewer blocks "
            f"(at most about 1/density)"
        )
    counts = low.copy()
    while spare:
        for g in range(len(counts)):
            if spare and counts[g] < high[g]:
                counts[g] += 1
                spare -= 1
    return counts


def _swap_chain(
    adjacency: np.ndarray, rows: np.ndarray, cols: np.ndarray, rounds: int, rng: np.random.Generator
) -> None:
    """Degree-preserving double-edge swaps among the edges ``(rows, cols)``, in place.

    Only the listed edges move; the other edges of ``adjacency`` stay and are never duplicated.
    igraph's ``rewire`` cannot hold part of a graph fixed, hence this vectorised chain: each round
    pairs the movable edges at random and proposes ``(i1, j1), (i2, j2) → (i1, j2), (i2, j1)`` for
    every pair, accepting the swaps whose new edges exist nowhere yet and are proposed once.
    """
    half = len(rows) // 2
    if half == 0:
        return
    in_features = adjacency.shape[1]
    for _ in range(rounds):
        order = rng.permutation(len(rows))
        a, b = order[:half], order[half : 2 * half]
        i1, j1, i2, j2 = rows[a], cols[a], rows[b], cols[b]
        ok = (i1 != i2) & (j1 != j2) & ~adjacency[i1, j2] & ~adjacency[i2, j1]
        new = np.concatenate([i1 * in_features + j2, i2 * in_features + j1])
        values, counts = np.unique(new[np.concatenate([ok, ok])], return_counts=True)
        clashing = values[counts > 1]
        ok &= ~np.isin(new[:half], clashing) & ~np.isin(new[half:], clashing)
        a, b, i1, j1, i2, j2 = a[ok], b[ok], i1[ok], j1[ok], i2[ok], j2[ok]
        adjacency[i1, j1] = adjacency[i2, j2] = False
        adjacency[i1, j2] = adjacency[i2, j1] = True
        cols[a], cols[b] = j2, j1


def check_clustered(shape: tuple[int, int], keep: int, *, blocks: int) -> None:
    """Raise :func:`clustered_mask`'s ``ValueError`` when ``keep`` edges of a ``shape`` mask do not fit
    ``blocks`` diagonal blocks, without drawing anything: a run checks its target before it trains.

    >>> check_clustered((8, 8), 16, blocks=2)
    >>> check_clustered((8, 8), 48, blocks=2)
    Traceback (most recent call last):
    ...
    ValueError: a 8×8 mask with 48 edges (0.75 dense) does not fit 2 diagonal blocks of 4–4 × 4–4 nodes with balanced degrees: use fewer blocks (at most about 1/density)
    """  # noqa: E501
    _block_plan(shape, keep, check_int(blocks, "blocks", minimum=1))


def _block_plan(shape: tuple[int, int], keep: int, blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The group sizes of each side and the edges of each diagonal block (``blocks`` capped by the
    sides); :func:`_block_edge_counts`' ``ValueError`` when they do not fit."""
    out_features, in_features = shape
    blocks = min(blocks, out_features, in_features)
    row_sizes, col_sizes = _group_sizes(out_features, blocks), _group_sizes(in_features, blocks)
    return row_sizes, col_sizes, _block_edge_counts(keep, row_sizes, col_sizes, shape)


def clustered_mask(shape: tuple[int, int], keep: int, *, blocks: int, mixing: float, seed: int) -> np.ndarray:
    """A mask with :func:`biregular_mask`'s edge count and degrees, clustered into ``blocks`` groups.

    Each side's nodes are split at random into ``blocks`` groups of equal size (±1), group ``g`` of
    the outputs paired with group ``g`` of the inputs. All ``keep`` edges are first wired at random
    inside the pairs (a block-diagonal graph, each block a random biregular graph); then a random
    share ``mixing`` of the edges is rewired by degree-preserving swaps over the whole graph, the
    others held fixed. So ``mixing`` 0 gives ``blocks`` disconnected pieces and 1 a random biregular
    graph; in between, about ``mixing · (1 − 1/blocks)`` of every node's edges cross groups. With the
    edge count and degrees fixed, ``mixing`` dials the expansion alone.

    A side with fewer nodes than ``blocks`` gets one node per group (``blocks`` is capped there).

    Raises:
        ValueError: the degrees do not fit block-diagonally (density above about ``1 / blocks``),
            naming the sizes; or a bad ``blocks`` / ``mixing``.

    >>> m = clustered_mask((8, 8), 16, blocks=2, mixing=0.0, seed=0)
    >>> int(m.sum()), sorted(set(m.sum(1).tolist())), sorted(set(m.sum(0).tolist()))
    (16, [2], [2])
    """
    out_features, in_features, keep = _check_shape_keep(shape, keep)
    blocks = check_int(blocks, "blocks", minimum=1)
    check_fraction(mixing, "mixing")
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    row_sizes, col_sizes, counts = _block_plan((out_features, in_features), keep, blocks)
    blocks = len(row_sizes)
    row_of, col_of = rng.permutation(out_features), rng.permutation(in_features)  # node of each position
    row_start, col_start = np.cumsum(row_sizes) - row_sizes, np.cumsum(col_sizes) - col_sizes
    all_rows, all_cols = [], []
    for g in range(blocks):
        size = (int(row_sizes[g]), int(col_sizes[g]))
        rows, cols = _stair(balanced_degrees(int(counts[g]), size[0], rng), size[1])
        cols = rng.permutation(size[1])[cols]
        rows, cols = next(same_degree_samples(rows, cols, size, samples=1, seed=seed + 1 + g))
        all_rows.append(row_of[row_start[g] + rows])
        all_cols.append(col_of[col_start[g] + cols])
    rows, cols = np.concatenate(all_rows), np.concatenate(all_cols)
    adjacency = _as_matrix(rows, cols, (out_features, in_features))
    moving = rng.permutation(keep)[: round(mixing * keep)]
    moving_rows, moving_cols = rows[moving], cols[moving].copy()
    _swap_chain(adjacency, moving_rows, moving_cols, 2 * SWITCHES_PER_EDGE, rng)
    return adjacency


def rewired_mask(mask: object, swaps: float, *, seed: int) -> np.ndarray:
    """``mask`` after degree-preserving double-edge swaps that moved at least a share ``swaps`` of its edges.

    Every row and column keeps exactly its degree; only which neighbours the edges connect changes.
    The switch chain of :mod:`rnn_prune.expansion.baseline` (igraph's ``rewire``) runs in batches
    of ``⌈swaps·|E|/2⌉`` trials until at least ``⌈swaps·|E|⌉`` edges are no longer in ``mask``, or
    until it has run :data:`~rnn_prune.expansion.baseline.SWITCHES_PER_EDGE` × |E| trials, the
    package's budget for a fully random same-degree graph: a random graph overlaps a dense mask by
    about its density, so ``swaps`` near 1 cannot always be met, and the result is then as random
    as the degrees allow.

    >>> m = np.eye(6, dtype=bool) | np.eye(6, k=1, dtype=bool)
    >>> r = rewired_mask(m, 0.5, seed=0)
    >>> bool((r.sum(0) == m.sum(0)).all() and (r.sum(1) == m.sum(1)).all()), int((r & ~m).sum()) >= 6
    (True, True)
    """
    edges = as_mask(mask)
    check_fraction(swaps, "swaps")
    seed = check_int(seed, "seed", minimum=0)
    rows, cols = np.nonzero(edges)
    total = len(rows)
    wanted = math.ceil(swaps * total)
    if wanted == 0 or total < 2:
        return edges.copy()
    batch = max(1, math.ceil(swaps * total / 2))
    out = edges
    for done, (new_rows, new_cols) in enumerate(switched_edges(rows, cols, edges.shape, trials=batch, seed=seed), 1):
        out = _as_matrix(new_rows, new_cols, edges.shape)
        if int((out & ~edges).sum()) >= wanted or done * batch >= SWITCHES_PER_EDGE * total:
            break
    return out
