"""Largest singular values of a sparse biadjacency, exact to rounding and fast.

The singular values of a biadjacency ``B`` (out, in) are the nonnegative eigenvalues of the
bipartite adjacency ``[[0, Bᵀ], [B, 0]]``, so the top of that (in+out)² spectrum is read off ``B``
without ever forming the adjacency. Three choices keep this both fast and exact:

* **one connected component at a time.** The singular values of a disjoint union are those of its
  parts together, and a connected component's largest singular value is simple
  (Perron–Frobenius). A Krylov solver started from one vector can miss the second copy of a repeated
  eigenvalue; splitting first means the repeats between components (two identical components,
  a union of single edges) are never asked of it.
* **stars in closed form.** A component with one node on a side is a star; its only nonzero
  singular value is the Euclidean norm of its edge weights (``√d`` for a 0/1 star).
* **LAPACK for small, ARPACK for large.** A component whose smaller side has at most
  :data:`DENSE_MAX_SIDE` nodes goes to LAPACK (``numpy.linalg.svd``); a larger one to
  ``scipy.sparse.linalg.svds`` (ARPACK on the Gram matrix of the smaller side to
  :data:`ARPACK_TOL`, a fixed random start vector so results are reproducible). ``svds`` returns the
  singular values of ``B·V`` for the converged ``V``, which keeps even a zero σ₂ exact to rounding;
  if ARPACK does not converge the component falls back to LAPACK.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, svds

from rnn_prune.expansion._inputs import check_int
from rnn_prune.expansion.components import bipartite_components

DENSE_MAX_SIDE = 128
"""Components whose smaller side has at most this many nodes use dense LAPACK, not ARPACK."""

ARPACK_TOL = 1e-3
"""``svds`` tolerance. ARPACK stops once the residual of each Ritz value ``θ ≈ σ²`` of the Gram
matrix is below ``ARPACK_TOL² · θ`` (a relative 1e-6); ``svds`` then takes the singular values of
``B·V`` for the converged ``V`` (a Rayleigh–Ritz step), whose error is of the order of the
*squared* residual: on random 0/1, normalised and weighted matrices up to 4096×1024 the largest
error against LAPACK was 6e-11 at this tolerance (2e-13 at 1e-5), for 30–40 % fewer matrix
products than 1e-5. The worst-case (first-order) bound is ``ARPACK_TOL² · σ / 2`` = ``5e-7 σ``:
exact to 1e-6 for the normalised spectrum (``σ ≤ 1``) by the bound, for the others in practice;
``tests/test_expansion.py`` checks every spectrum against LAPACK to 1e-6."""

_START_SEED = 0  # seed of the fixed ARPACK start vector: same input, same output


def top_singular_values(matrix: np.ndarray | sp.sparray | sp.spmatrix, k: int = 2) -> np.ndarray:
    """The ``k`` largest singular values of ``matrix``, in decreasing order, padded with zeros.

    .. math:: \\sigma_1 \\ge \\sigma_2 \\ge \\dots \\ge \\sigma_k \\ge 0

    Args:
        matrix: a real (out, in) matrix, dense numpy or scipy sparse; its nonzero pattern is the
            graph that is split into connected components.
        k: how many values. A matrix with fewer than ``k`` nonzero singular values is padded with
            zeros (so a single edge has ``σ₂ = 0``).

    Returns:
        float64 array of shape ``(k,)``.

    Notes:
        Entries must be finite; this is not checked (the callers check). ``k <= 2`` is exact by
        construction (see the module docstring); for ``k > 2`` a value repeated *inside* one
        component wider than :data:`DENSE_MAX_SIDE` relies on ARPACK finding every copy, which it
        usually but not provably does.

    >>> top_singular_values(np.ones((2, 3))).round(6).tolist()  # K(3,2): √6, 0
    [2.44949, 0.0]
    """
    k = check_int(k, "k", minimum=1)
    if isinstance(matrix, np.ndarray):
        if matrix.ndim != 2:
            raise ValueError(f"matrix must be 2-D, got shape {matrix.shape}")
        rows, cols = np.nonzero(matrix)
        vals = matrix[rows, cols].astype(np.float64)
    elif sp.issparse(matrix):
        coo = sp.coo_matrix(matrix, dtype=np.float64)
        coo.sum_duplicates()
        keep = coo.data != 0
        rows, cols, vals = coo.row[keep], coo.col[keep], coo.data[keep]
    else:
        raise ValueError(f"matrix must be a numpy array or scipy sparse matrix, got {type(matrix).__name__}")
    return top_singular_values_of_edges(rows, cols, vals, matrix.shape, k)


def top_singular_values_of_edges(
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    shape: tuple[int, int],
    k: int = 2,
    *,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`top_singular_values` of the matrix with ``vals`` at ``(rows, cols)`` (no duplicates).

    Zero values are dropped first, so they do not join components. ``labels``, when the caller
    already knows them, are the connected-component labels of the ``out`` row nodes followed by
    the ``in`` column nodes, for the nonzero pattern of ``vals``; they are not checked.
    """
    vals = np.asarray(vals, dtype=np.float64)
    if not vals.all():
        keep = vals != 0
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    out = np.zeros(k)
    if len(vals) == 0:
        return out
    values = np.sort(_component_singular_values(rows, cols, vals, shape, k, labels))[::-1][:k]
    out[: len(values)] = values
    return out


def _component_singular_values(
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    shape: tuple[int, int],
    k: int,
    labels: np.ndarray | None,
) -> np.ndarray:
    """Up to ``k`` largest singular values of every connected component, concatenated."""
    m, n = shape
    if labels is None:
        labels = bipartite_components(rows, cols, shape).labels
    num = int(labels.max()) + 1
    edge_label = labels[rows]
    rows_per = np.bincount(labels[:m][_present(rows, m)], minlength=num)
    cols_per = np.bincount(labels[m:][_present(cols, n)], minlength=num)
    with_edges = rows_per > 0
    star = with_edges & (np.minimum(rows_per, cols_per) == 1)
    found = [np.sqrt(np.bincount(edge_label, weights=vals**2, minlength=num)[star])]

    general = np.flatnonzero(with_edges & ~star)
    if len(general) == 1:  # the common case: one big component (plus isolated nodes, stars)
        idx = np.flatnonzero(edge_label == general[0]) if star.any() else slice(None)
        found.append(connected_singular_values(rows[idx], cols[idx], vals[idx], k))
    elif len(general) > 1:
        order = np.argsort(edge_label, kind="stable")
        starts = np.searchsorted(edge_label[order], general, side="left")
        ends = np.searchsorted(edge_label[order], general, side="right")
        for start, end in zip(starts, ends, strict=True):
            idx = order[start:end]
            found.append(connected_singular_values(rows[idx], cols[idx], vals[idx], k))
    return np.concatenate(found)



def connected_singular_values(
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    k: int = 2,
    *,
    shape: tuple[int, int] | None = None,
    col_order: np.ndarray | None = None,
) -> np.ndarray:
    """Up to ``k`` largest singular values of a matrix whose nonzero pattern is connected.

    Args:
        rows, cols, vals: the nonzeros (no duplicates, no zeros).
        shape: when given, ``rows``/``cols`` already number ``0 … shape − 1`` with no empty row
            or column and come in row-major order; otherwise they are renumbered here.
        col_order: with ``shape``, the stable permutation that puts the edges in column-major
            order. Then both CSR matrices (``B`` and ``Bᵀ``) are assembled without a sort, and a
            caller that takes several spectra of one pattern (a graph's plain, normalised and
            weighted spectra) computes the permutation once.
    """
    if shape is None:
        rows, num_rows = _compact(rows)
        cols, num_cols = _compact(cols)
        shape, col_order = (num_rows, num_cols), None
    if min(shape) <= max(DENSE_MAX_SIDE, k + 1):
        return _dense_singular_values(rows, cols, vals, shape, k)
    if col_order is None:
        block = sp.csr_matrix((vals, (rows, cols)), shape=shape)
        transposed = block.T.tocsr()  # row-major both ways: csr products are faster than csc ones
    else:
        block = sp.csr_matrix((vals, cols, _indptr(rows, shape[0])), shape=shape)
        transposed = sp.csr_matrix(
            (vals[col_order], rows[col_order], _indptr(cols, shape[1])), shape=(shape[1], shape[0])
        )
    operator = LinearOperator(
        shape,
        matvec=block.__matmul__,
        rmatvec=transposed.__matmul__,
        matmat=block.__matmul__,
        rmatmat=transposed.__matmul__,
        dtype=np.float64,
    )
    start = np.random.default_rng(_START_SEED).standard_normal(min(shape))
    try:
        return svds(operator, k=k, tol=ARPACK_TOL, v0=start, return_singular_vectors=False)
    except (ArpackNoConvergence, ArpackError):
        return _dense_singular_values(rows, cols, vals, shape, k)


def _indptr(index: np.ndarray, size: int) -> np.ndarray:
    """CSR row pointers of edges sorted by ``index``."""
    indptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.bincount(index, minlength=size), out=indptr[1:])
    return indptr


def _present(index: np.ndarray, size: int) -> np.ndarray:
    """Boolean mask of the ``size`` nodes that occur in ``index`` (O(E), no sort)."""
    present = np.zeros(size, dtype=bool)
    present[index] = True
    return present


def _compact(index: np.ndarray) -> tuple[np.ndarray, int]:
    """``index`` renumbered 0 … n−1 in increasing order of the nodes that occur, and n."""
    present = _present(index, int(index.max()) + 1)
    position = np.cumsum(present) - 1
    return position[index], int(position[-1]) + 1


def _dense_singular_values(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int], k: int
) -> np.ndarray:
    dense = np.zeros(shape)
    dense[rows, cols] = vals
    return np.linalg.svd(dense, compute_uv=False)[:k]
