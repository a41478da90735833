"""Bipartite expansion measures: hand-known spectra, an independent dense check, degenerate inputs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse import csgraph
from torch import nn

from rnn_prune.expansion import (
    DEFAULT_MEASURES,
    degrees,
    layer_expansion,
    model_expansion,
    ramanujan_bound,
    random_bipartite,
    top_singular_values,
)
from rnn_prune.expansion.baseline import same_degree_samples
from rnn_prune.expansion.spectral import DENSE_MAX_SIDE
from rnn_prune.masks import set_mask
from rnn_prune.registry import prunable_weights

NO_IMDB = [name for name in DEFAULT_MEASURES if name != "imdb"]

TOL = 1e-6


def dense_top2(matrix: np.ndarray) -> np.ndarray:
    """Two largest singular values by LAPACK on the whole dense matrix, zero-padded."""
    values = np.zeros(2)
    if matrix.size:
        s = np.linalg.svd(matrix, compute_uv=False)[:2]
        values[: len(s)] = s
    return values


def dense_normalized_sigma2(b: np.ndarray) -> float:
    """σ₂ of D_R^{-1/2} B D_L^{-1/2} with isolated nodes dropped, densely."""
    right, left = b.sum(1), b.sum(0)
    core = b[right > 0][:, left > 0]
    return dense_top2(core / np.sqrt(np.outer(right[right > 0], left[left > 0])))[1]


def random_mask(shape: tuple[int, int], density: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < density


def circulant(n: int, shifts: list[int]) -> np.ndarray:
    """``M[i, (i + s) mod n] = 1`` for each shift: a union of len(shifts) disjoint permutations."""
    mask = np.zeros((n, n), dtype=bool)
    for s in shifts:
        mask[np.arange(n), (np.arange(n) + s) % n] = True
    return mask


# --------------------------------------------------------------------------- hand-known spectra


@pytest.mark.parametrize("shape", [(3, 5), (1, 4), (150, 200)])
def test_complete_bipartite(shape):
    out_features, in_features = shape
    e = layer_expansion(np.ones(shape))
    assert e.lambda1 == pytest.approx(math.sqrt(out_features * in_features), abs=TOL)
    assert e.mu == pytest.approx(0.0, abs=TOL)
    assert e.avg_left_degree == out_features and e.avg_right_degree == in_features
    bound = math.sqrt(out_features - 1) + math.sqrt(in_features - 1)
    assert e.ramanujan_bound == pytest.approx(bound)
    assert e.delta_r == pytest.approx(bound, abs=TOL)
    assert e.is_ramanujan is (True if min(shape) >= 3 else None)  # no verdict below degree 3
    if min(shape) >= 3:  # one group: every left node has degree out, its right degree is in
        assert e.imdb == pytest.approx(bound, abs=TOL)
    else:
        assert math.isnan(e.imdb)
    assert e.num_components == 1 and e.largest_component == out_features + in_features
    assert e.normalized_gap == pytest.approx(1.0, abs=TOL)  # N = rank one: σ₂(N) = 0
    assert (e.density, e.sparsity, e.num_isolated_left, e.num_isolated_right) == (1.0, 0.0, 0, 0)
    assert e.reason == "" if min(shape) >= 3 else e.reason.startswith("average degree below 3")
    assert e.num_nonisolated_components == 1 and e.giant_delta_r == e.delta_r


@pytest.mark.parametrize("n", [5, 200])
def test_perfect_matching(n):
    mask = np.eye(n)[np.random.default_rng(0).permutation(n)]
    e = layer_expansion(mask)
    assert (e.lambda1, e.mu) == pytest.approx((1.0, 1.0), abs=TOL)
    assert e.spectral_gap == pytest.approx(0.0, abs=TOL)
    assert e.ramanujan_bound == 0.0  # d̄ = 1: √0 + √0
    assert e.delta_r == pytest.approx(-1.0, abs=TOL) and e.is_ramanujan is None  # d̄ = 1 < 3
    assert e.delta_s == pytest.approx(-1.0, abs=TOL)  # 2√(1 − 1) − 1
    assert e.num_components == n and e.largest_component == 2
    assert e.normalized_gap == pytest.approx(0.0, abs=TOL)  # disconnected
    assert (e.cheeger_lower, e.cheeger_upper) == pytest.approx((0.0, 0.0), abs=1e-6)
    assert (e.min_left_degree, e.max_left_degree, e.min_right_degree, e.max_right_degree) == (1, 1, 1, 1)
    assert math.isnan(e.imdb)  # degree 1: the reference scores no subgraph
    assert e.num_nonisolated_components == n
    assert e.giant_delta_r == pytest.approx(0.0, abs=TOL)  # one lone edge: r = 0, μ = 0


@pytest.mark.parametrize("n", [40, 150])
def test_regular_union_of_permutations(n):
    d = 4
    rng = np.random.default_rng(1)
    relabel = rng.permutation(n)
    mask = circulant(n, [0, 3, 7, 11])[:, relabel][rng.permutation(n)]  # still 4 disjoint permutations
    e = layer_expansion(mask)
    assert e.lambda1 == pytest.approx(d, abs=TOL)
    # a circulant's singular values are |Σ_s ω^{js}|; relabelling rows and columns keeps them
    omega = np.exp(2j * np.pi * np.arange(n) / n)
    expected = np.sort(np.abs(sum(omega ** s for s in [0, 3, 7, 11])))[::-1]
    assert e.mu == pytest.approx(expected[1], abs=TOL)
    assert e.avg_left_degree == e.avg_right_degree == d
    assert e.ramanujan_bound == pytest.approx(2 * math.sqrt(d - 1))


def test_disjoint_union_spectrum_is_union_of_parts():
    parts = [
        np.ones((3, 4)),
        np.eye(5),
        random_mask((150, 200), 0.1, seed=2).astype(float),
        random_mask((150, 200), 0.1, seed=2).astype(float),  # twice: σ₁ has multiplicity two
        random_mask((20, 9), 0.3, seed=3).astype(float),
    ]
    union = sp.block_diag(parts).toarray()
    values = np.sort(np.concatenate([np.linalg.svd(p, compute_uv=False) for p in parts]))[::-1]
    e = layer_expansion(union)
    assert (e.lambda1, e.mu) == pytest.approx(tuple(values[:2]), abs=TOL)
    assert e.mu == pytest.approx(e.lambda1, abs=TOL)


def test_disjoint_union_of_large_identical_components_hits_arpack():
    block = random_mask((DENSE_MAX_SIDE + 50, DENSE_MAX_SIDE + 70), 0.2, seed=4)
    top = top_singular_values(sp.block_diag([block, block]).toarray(), k=3)
    single = np.linalg.svd(block.astype(float), compute_uv=False)
    np.testing.assert_allclose(top, [single[0], single[0], single[1]], atol=TOL)


@pytest.mark.parametrize("shape", [(4, 6), (0, 3), (3, 0)])
def test_empty_graph(shape):
    e = layer_expansion(np.zeros(shape), np.ones(shape))
    assert (e.lambda1, e.mu, e.spectral_gap, e.num_edges) == (0.0, 0.0, 0.0, 0)
    assert (e.num_isolated_left, e.num_isolated_right) == (shape[1], shape[0])
    assert e.num_components == sum(shape)
    for field in ("avg_left_degree", "ramanujan_bound", "delta_r", "delta_s", "imdb",
                  "normalized_gap", "cheeger_lower", "cheeger_upper", "min_left_degree"):
        assert math.isnan(getattr(e, field)), field
    assert e.is_ramanujan is None
    assert e.reason == "no edges"
    assert (e.weighted_lambda1, e.weighted_mu) == (0.0, 0.0)


def test_single_edge():
    mask = np.zeros((3, 2))
    mask[1, 0] = 1
    e = layer_expansion(mask)
    assert (e.lambda1, e.mu, e.ramanujan_bound, e.delta_r, e.delta_s) == (1.0, 0.0, 0.0, 0.0, 0.0)
    assert e.is_ramanujan is None
    assert e.normalized_gap == 1.0
    assert (e.num_components, e.largest_component, e.num_isolated_left, e.num_isolated_right) == (4, 2, 1, 2)


def test_four_node_path_by_hand():
    e = layer_expansion(torch.tensor([[1.0, 1.0], [1.0, 0.0]]))
    phi = (1 + math.sqrt(5)) / 2
    assert (e.lambda1, e.mu) == pytest.approx((phi, 1 / phi), abs=1e-12)
    assert e.delta_s == pytest.approx(2 * math.sqrt(phi - 1) - 1 / phi)
    assert (e.normalized_gap, e.cheeger_lower, e.cheeger_upper) == pytest.approx((0.5, 0.25, 1.0))


# --------------------------------------------------------------------------- dense agreement


@pytest.mark.parametrize(
    ("shape", "density"),
    list(itertools.product([(3, 7), (64, 200), (300, 150), (129, 513), (1024, 256)], [0.5, 0.1, 0.01])),
)
def test_agrees_with_dense_numpy(shape, density):
    rng = np.random.default_rng(hash((shape, density)) % 2**32)
    mask = rng.random(shape) < density
    weight = rng.standard_normal(shape)
    weight[~mask] = np.nan  # pruned positions are ignored, whatever they hold
    e = layer_expansion(torch.from_numpy(mask), torch.from_numpy(weight), measures=NO_IMDB)
    b = mask.astype(float)
    assert (e.lambda1, e.mu) == pytest.approx(tuple(dense_top2(b)), abs=TOL)
    weighted = dense_top2(np.abs(np.where(mask, weight, 0.0)))
    assert (e.weighted_lambda1, e.weighted_mu) == pytest.approx(tuple(weighted), abs=TOL)
    assert e.weighted_gap == pytest.approx(weighted[0] - weighted[1], abs=2 * TOL)
    if mask.any():
        assert e.normalized_gap == pytest.approx(max(0.0, 1 - dense_normalized_sigma2(b)), abs=TOL)
    left, right = mask.sum(0), mask.sum(1)
    assert e.num_edges == mask.sum() and e.density == pytest.approx(mask.mean())
    assert (e.num_isolated_left, e.num_isolated_right) == ((left == 0).sum(), (right == 0).sum())
    if mask.any():
        assert e.avg_left_degree == pytest.approx(mask.sum() / (left > 0).sum())
        assert (e.min_right_degree, e.max_right_degree) == (right[right > 0].min(), right.max())
    adjacency = sp.bmat([[None, sp.csr_matrix(b)], [sp.csr_matrix(b.T), None]], format="csr")
    num, labels = csgraph.connected_components(adjacency, directed=False)
    assert e.num_components == num and e.largest_component == np.bincount(labels).max()


def test_arpack_spectra_are_exact_far_below_the_tolerance():
    """ARPACK_TOL = 1e-3 leaves the spectra exact to 1e-8 (the Rayleigh–Ritz step squares the residual)."""
    rng = np.random.default_rng(21)
    mask = rng.random((2048, 512)) < 0.05
    weight = rng.standard_normal(mask.shape)
    e = layer_expansion(mask, weight, measures=["lambda1", "mu", "normalized_gap", "weighted_lambda1", "weighted_mu"])
    b = mask.astype(float)
    assert (e.lambda1, e.mu) == pytest.approx(tuple(dense_top2(b)), abs=1e-8)
    assert e.normalized_gap == pytest.approx(1 - dense_normalized_sigma2(b), abs=1e-8)
    weighted = dense_top2(np.abs(np.where(mask, weight, 0.0)))
    assert (e.weighted_lambda1, e.weighted_mu) == pytest.approx(tuple(weighted), abs=1e-8)


def test_top_singular_values_inputs():
    mask = random_mask((140, 300), 0.05, seed=5).astype(float)
    expected = np.linalg.svd(mask, compute_uv=False)[:4]
    for matrix in (mask, sp.csr_matrix(mask), sp.coo_array(mask)):
        np.testing.assert_allclose(top_singular_values(matrix, k=4), expected, atol=TOL)
    np.testing.assert_array_equal(top_singular_values(np.zeros((3, 3)), k=3), np.zeros(3))


def test_normalized_gap_is_laplacian_lambda2_and_cheeger_bounds_hold():
    """Brute-force conductance h over every node set of small connected graphs."""
    rng = np.random.default_rng(6)
    checked = 0
    while checked < 5:
        mask = rng.random((4, 5)) < 0.5
        b = mask.astype(float)
        adjacency = np.block([[np.zeros((4, 4)), b], [b.T, np.zeros((5, 5))]])
        deg = adjacency.sum(1)
        if (deg == 0).any() or csgraph.connected_components(adjacency)[0] > 1:
            continue
        checked += 1
        laplacian = np.eye(9) - adjacency / np.sqrt(np.outer(deg, deg))
        e = layer_expansion(mask)
        assert e.normalized_gap == pytest.approx(np.linalg.eigvalsh(laplacian)[1], abs=TOL)
        h = min(
            adjacency[np.ix_(s, [v for v in range(9) if v not in s])].sum() / deg[list(s)].sum()
            for r in range(1, 9)
            for s in itertools.combinations(range(9), r)
            if deg[list(s)].sum() <= deg.sum() / 2
        )
        assert e.cheeger_lower - 1e-12 <= h <= e.cheeger_upper + 1e-12


# --------------------------------------------------------------------------- degrees, bounds, IMDB


def test_degrees():
    mask = torch.tensor([[1, 0, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    left, right = degrees(mask)
    assert left.tolist() == [3, 1, 1, 0] and right.tolist() == [2, 2, 1]
    e = layer_expansion(mask)
    assert e.avg_left_degree == 5 / 3 and e.avg_right_degree == 5 / 3
    assert (e.min_left_degree, e.max_left_degree, e.num_isolated_left) == (1, 3, 1)


def test_ramanujan_bound():
    assert ramanujan_bound(10.0, 5.0) == 5.0
    assert ramanujan_bound(1.0, 1.0) == 0.0
    assert math.isnan(ramanujan_bound(math.nan, 3.0))
    assert math.isnan(ramanujan_bound(0.5, 3.0))


def reference_imdb(mask: np.ndarray) -> float:
    """IMDB after VITA-Group/ramanujan-on-pai ``iterative_mean_spectral_gap``: dense, group by group.

    Groups of >= 3 left nodes of one degree d; each with the right nodes it reaches is scored only
    when d >= 3 and its average right degree is >= 3; σ₂ from LAPACK on the whole dense adjacency
    (the third largest |eigenvalue|, as the reference reads ``t2_m``); NaN when none is scored.
    """
    b = mask.astype(float)
    left = b.sum(0)
    scores = []
    for d in sorted(set(left[left > 0].tolist())):
        group = left == d
        if group.sum() < 3:
            continue
        sub = b[:, group]
        sub = sub[sub.sum(1) > 0]
        avg_right = sub.sum() / len(sub)
        if not (d >= 3 and avg_right >= 3):
            continue
        n_right, n_left = sub.shape
        adjacency = np.block([[np.zeros((n_left, n_left)), sub.T], [sub, np.zeros((n_right, n_right))]])
        t2 = np.sort(np.abs(np.linalg.eigvalsh(adjacency)))[::-1][2]
        scores.append(math.sqrt(d - 1) + math.sqrt(avg_right - 1) - t2)
    return float(np.mean(scores)) if scores else math.nan


@pytest.mark.parametrize(
    ("shape", "density"),
    [((30, 40), 0.2), ((300, 100), 0.05), ((200, 600), 0.3), ((256, 64), 0.5), ((64, 256), 0.5),
     ((128, 128), 0.5), ((256, 128), 0.03), ((512, 64), 0.2)],
)  # fmt: skip
def test_imdb_matches_gated_reference(shape, density):
    mask = random_mask(shape, density, seed=7)
    expected = reference_imdb(mask)
    got = layer_expansion(mask).imdb
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=TOL)


def test_imdb_drops_groups_the_reference_drops():
    # 50 % Bernoulli masks: most left-degree groups have < 3 nodes; the ungated mean differs.
    mask = random_mask((128, 64), 0.5, seed=11)
    left = mask.sum(0)
    values, counts = np.unique(left, return_counts=True)
    assert (counts < 3).any() and (counts >= 3).any()
    assert layer_expansion(mask).imdb == pytest.approx(reference_imdb(mask), abs=TOL)
    # at high sparsity groups of degree >= 3 reach right nodes only once or twice: no score
    sparse = random_mask((256, 64), 0.02, seed=12)
    assert math.isnan(reference_imdb(sparse))
    e = layer_expansion(sparse)
    assert math.isnan(e.imdb) and "imdb: no left-degree subgraph passes" in e.reason


def test_imdb_exact_on_degenerate_groups():
    # a complete bipartite group has σ₂ = 0 exactly: the Gram route must not lose it to rounding
    e = layer_expansion(np.ones((300, 200)))
    assert e.imdb == pytest.approx(math.sqrt(299) + math.sqrt(199), abs=TOL)


def test_average_degree_below_three_has_no_verdict():
    e = layer_expansion(np.eye(4))  # a perfect matching: d̄ = 1 on both sides, r = 0, μ = 1
    assert (e.ramanujan_bound, e.mu, e.delta_r) == pytest.approx((0.0, 1.0, -1.0))
    assert e.is_ramanujan is None and e.reason.startswith("average degree below 3 (d̄L=1, d̄R=1)")
    # the quickstart's input-to-hidden gate block: 64 × 8 at d̄R ≈ 1.3 is reported, not judged
    block = random_mask((64, 8), 0.16, seed=13)
    gate = layer_expansion(block)
    assert gate.avg_right_degree < 3 and math.isfinite(gate.delta_r) and gate.is_ramanujan is None


def test_disconnected_graph_is_not_ramanujan():
    big = random_mask((256, 64), 0.3, seed=14)
    union = sp.block_diag([big.astype(float), np.ones((2, 2))]).toarray()  # plus a separate K(2,2)
    alone, e = layer_expansion(big), layer_expansion(union)
    assert alone.is_ramanujan is True and alone.num_nonisolated_components == 1
    assert e.delta_r > 0 and e.normalized_gap == pytest.approx(0.0, abs=TOL)
    assert e.is_ramanujan is False and "disconnected: 2 components" in e.reason
    assert e.num_nonisolated_components == 2
    # the giant component's own Δr is the big graph's Δr
    assert e.giant_delta_r == pytest.approx(alone.delta_r, abs=TOL)


def test_imdb_needs_a_group_of_three():
    e = layer_expansion(np.tril(np.ones((3, 3))))  # left degrees 3, 2, 1
    assert math.isnan(e.imdb)
    assert "imdb: no left-degree subgraph passes" in e.reason
    assert not math.isnan(e.delta_r)
    off = layer_expansion(np.ones((3, 3)), measures=NO_IMDB)
    assert math.isnan(off.imdb) and off.reason == ""


# --------------------------------------------------------------------------- random baseline


def test_random_bipartite_keeps_degrees_and_is_seeded():
    mask = random_mask((20, 30), 0.3, seed=8)
    a, b, c = (random_bipartite(mask, seed=s) for s in (1, 1, 2))
    for sample in (a, c):
        assert sample.shape == mask.shape and sample.dtype == np.bool_
        np.testing.assert_array_equal(sample.sum(0), mask.sum(0))
        np.testing.assert_array_equal(sample.sum(1), mask.sum(1))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any() and (a != mask).any()


def test_random_delta_r():
    mask = random_mask((40, 60), 0.2, seed=9)
    baseline = {"random_delta_r": {"samples": 3, "seed": 5}}
    e = layer_expansion(mask, options=baseline)
    rows, cols = np.nonzero(mask)
    mus = [dense_top2(_to_dense(r, c, mask.shape))[1]
           for r, c in same_degree_samples(rows, cols, mask.shape, samples=3, seed=5)]
    assert e.random_delta_r == pytest.approx(e.ramanujan_bound - np.mean(mus), abs=TOL)
    assert e.random_delta_r == layer_expansion(mask, options=baseline).random_delta_r
    assert math.isnan(layer_expansion(mask).random_delta_r)
    assert math.isnan(layer_expansion(np.zeros((3, 3)), options=baseline).random_delta_r)
    one_edge = layer_expansion(np.eye(1), options=baseline)  # nothing to switch
    assert one_edge.random_delta_r == one_edge.delta_r


def _to_dense(rows, cols, shape):
    out = np.zeros(shape)
    out[rows, cols] = 1
    return out


# --------------------------------------------------------------------------- degenerate weights


def test_non_finite_weight_on_kept_edge():
    mask = np.ones((3, 4))
    weight = np.ones((3, 4))
    weight[1, 2] = np.inf
    e = layer_expansion(mask, weight)
    assert math.isnan(e.weighted_lambda1) and math.isnan(e.weighted_mu) and math.isnan(e.weighted_gap)
    assert e.reason == "weight has non-finite entries on kept edges"
    assert e.lambda1 == pytest.approx(math.sqrt(12))


def test_zero_weights_on_kept_edges_split_components():
    mask = np.ones((2, 2))
    weight = np.array([[2.0, 0.0], [0.0, 2.0]])  # |W| ⊙ M is two disjoint edges of weight 2
    e = layer_expansion(mask, weight)
    assert (e.weighted_lambda1, e.weighted_mu, e.weighted_gap) == pytest.approx((2.0, 2.0, 0.0))


def test_weight_dtypes_and_no_weight():
    mask = random_mask((8, 6), 0.5, seed=10)
    weight = torch.randn(8, 6)
    e16 = layer_expansion(mask, weight.to(torch.bfloat16))
    expected = dense_top2(np.abs(np.where(mask, weight.to(torch.bfloat16).float().numpy(), 0)))
    assert (e16.weighted_lambda1, e16.weighted_mu) == pytest.approx(tuple(expected), abs=TOL)
    plain = layer_expansion(mask.astype(np.int8))
    assert math.isnan(plain.weighted_lambda1) and "weight" not in plain.reason


def test_as_dict():
    e = layer_expansion(np.ones((3, 4)))
    d = e.as_dict()
    assert list(d) == list(DEFAULT_MEASURES)
    assert all(type(v) is float for v in d.values())
    assert d["is_ramanujan"] == 1.0 and d["num_edges"] == 12.0
    assert math.isnan(layer_expansion(np.zeros((2, 2))).as_dict()["is_ramanujan"])
    assert math.isnan(layer_expansion(np.eye(3)).as_dict()["is_ramanujan"])  # no verdict at d̄ = 1
    two_blocks = sp.block_diag([np.ones((4, 4))] * 2).toarray()
    assert layer_expansion(two_blocks).as_dict()["is_ramanujan"] == 0.0  # disconnected
    assert e.as_dict(["num_edges", "density"]) == {"num_edges": 12.0, "density": 1.0}


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize(("cls", "gates"), [(nn.LSTM, 4), (nn.GRU, 3)])
def test_model_expansion_splits_gates(cls, gates):
    torch.manual_seed(0)
    module = cls(5, 6, num_layers=2, bidirectional=True)
    for w in prunable_weights(module):
        set_mask(w, torch.rand(w.shape) < 0.6)
    target = next(w for w in prunable_weights(module) if w.name.endswith("l1_reverse.hh"))
    mask = target.mask.clone()
    mask[6:12] = False  # the second gate of l1_reverse.hh loses every edge
    set_mask(target, mask)

    result = model_expansion(module, measures=NO_IMDB)
    assert len(result) == 2 * 2 * 2 * (gates + 1)  # layers × directions × (ih, hh) × (gates + stacked)
    second_gate = {4: "forget_gate", 3: "update_gate"}[gates]
    name = f"{cls.__name__.lower()}.l1_reverse.hh"
    assert result[f"{name}.{second_gate}"].num_edges == 0
    assert result[f"{name}.{second_gate}"].reason == "no edges"
    for w in prunable_weights(module):
        for i, gate in enumerate(w.gates):
            rows = slice(6 * i, 6 * (i + 1))
            direct = layer_expansion(w.mask[rows], w.parameter.detach()[rows], measures=NO_IMDB)
            np.testing.assert_equal(result[f"{w.name}.{gate}"].as_dict(), direct.as_dict())
        stacked = layer_expansion(w.mask, w.parameter.detach(), measures=NO_IMDB)
        np.testing.assert_equal(result[w.name].as_dict(), stacked.as_dict())


class _Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.head = nn.LSTM(3, 4), nn.Linear(4, 2)


def test_model_expansion_options():
    model = _Classifier()
    names = list(model_expansion(model, per_gate=False))
    assert names == ["lstm.l0.ih", "lstm.l0.hh", "head"]
    assert list(model_expansion(model, include=["*.hh", "head"])) == ["lstm.l0.hh", "head"]
    assert list(model_expansion(model, include=[])) == []
    dense = model_expansion(model, stacked=False, include=["*.ih.cell_gate"])["lstm.l0.ih.cell_gate"]
    assert dense.lambda1 == pytest.approx(math.sqrt(12)) and dense.weighted_lambda1 > 0


# --------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mask": [[1, 0]]}, "mask must be a torch.Tensor or numpy.ndarray, got list"),
        ({"mask": np.ones(3)}, r"mask must be 2-D with shape \(out, in\), got shape \(3,\)"),
        ({"mask": np.array([["a"]])}, "mask must hold real numbers"),
        ({"mask": torch.ones(2, 2, dtype=torch.complex64)}, "mask must hold real numbers"),
        ({"mask": torch.eye(2).to_sparse()}, r"mask must be a dense \(strided\) tensor"),
        ({"mask": np.array([[1.0, np.nan]])}, "mask has NaN entries"),
        ({"weight": np.ones((3, 2))}, r"weight has shape \(3, 2\), mask has \(2, 2\)"),
        ({"weight": 1.0}, "weight must be a torch.Tensor or numpy.ndarray, got float"),
        ({"options": {"random_delta_r": {"samples": -1}}}, "random_delta_r.samples must be >= 0, got -1"),
        ({"options": {"random_delta_r": {"samples": 1.5}}}, "random_delta_r.samples must be an integer"),
        ({"options": {"random_delta_r": {"samples": True}}}, "random_delta_r.samples must be an integer"),
        ({"options": {"random_delta_r": {"seed": -2}}}, "random_delta_r.seed must be >= 0"),
        ({"options": {"random_delta_r": {"seed": "0"}}}, "random_delta_r.seed must be an integer"),
        ({"options": {"random_delta_r": {"sample": 3}}}, r"options: measure 'random_delta_r' has no option \['sample"),
        ({"options": {"delta_r": {"samples": 3}}}, r"measure 'delta_r' has no option \['samples'\]; it takes none"),
        ({"options": {"beauty": {}}}, r"options=\['beauty'\] are not measures"),
        ({"options": ["random_delta_r"]}, "options must map measure names to their options"),
    ],
)
def test_layer_expansion_rejects(kwargs, match):
    args = {"mask": np.ones((2, 2))} | kwargs
    with pytest.raises(ValueError, match=match):
        layer_expansion(args.pop("mask"), **args)


def test_helpers_reject():
    with pytest.raises(ValueError, match="mask must be a torch.Tensor"):
        degrees("mask")
    with pytest.raises(ValueError, match="seed must be an integer"):
        random_bipartite(np.eye(3), seed=None)
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_singular_values(np.eye(3), k=0)
    with pytest.raises(ValueError, match="matrix must be a numpy array or scipy sparse matrix, got list"):
        top_singular_values([[1.0]])
    with pytest.raises(ValueError, match="matrix must be 2-D"):
        top_singular_values(np.ones(3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "lstm"}, "model must be a torch.nn.Module, got str"),
        ({"include": "*.hh"}, "include must be None or a list of glob strings"),
        ({"include": ["*.hh", 3]}, "include must be None or a list of glob strings"),
        ({"per_gate": 1}, "per_gate must be True or False"),
        ({"stacked": None}, "stacked must be True or False"),
        ({"measures": ["beauty"]}, r"measures=\[.beauty.\] are not measures"),
        ({"options": {"random_delta_r": {"samples": -3}}}, "random_delta_r.samples must be >= 0"),
    ],
)
def test_model_expansion_rejects(kwargs, match):
    args = {"model": nn.LSTM(2, 3)} | kwargs
    with pytest.raises(ValueError, match=match):
        model_expansion(args.pop("model"), **args)
