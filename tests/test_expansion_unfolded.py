"""The recurrent layer unfolded in time: reachability by lag, components, spectrum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse import csgraph
from torch import nn

from rnn_prune.expansion import UnfoldedExpansion, unfolded_expansion, unfolded_layer_expansion
from rnn_prune.masks import set_mask
from rnn_prune.registry import prunable_weights

TOL = 1e-6


def dense_unfolded_adjacency(ih: np.ndarray, hh: np.ndarray, steps: int) -> np.ndarray:
    """Symmetric adjacency of the unfolded graph, built node by node (independent of the code)."""
    hidden, inputs = ih.shape
    nodes = [("x", t, i) for t in range(steps) for i in range(inputs)]
    nodes += [("h", t, j) for t in range(steps) for j in range(hidden)]
    index = {node: k for k, node in enumerate(nodes)}
    a = np.zeros((len(nodes), len(nodes)))
    for t in range(steps):
        for j, i in zip(*np.nonzero(ih), strict=True):
            a[index["x", t, i], index["h", t, j]] = a[index["h", t, j], index["x", t, i]] = 1
        if t:
            for j, k in zip(*np.nonzero(hh), strict=True):
                a[index["h", t - 1, k], index["h", t, j]] = a[index["h", t, j], index["h", t - 1, k]] = 1
    return a


def test_identity_layers_reach_only_the_diagonal():
    e = unfolded_layer_expansion(np.eye(3), np.eye(3), steps=4)
    assert e.reachability == pytest.approx((1 / 3,) * 4)
    assert (e.num_components, e.largest_component) == (3, 8)  # one chain x_t — h_t — h_{t+1} per unit
    # each component is a caterpillar: path h_1 … h_4 with a leaf x_t on every h_t
    caterpillar = dense_unfolded_adjacency(np.eye(1), np.eye(1), 4)
    assert e.lambda1 == pytest.approx(np.linalg.eigvalsh(caterpillar)[-1], abs=TOL)
    assert e.mu == pytest.approx(e.lambda1, abs=TOL)  # three identical components


def test_reachability_by_hand():
    ih = np.zeros((4, 3), dtype=bool)
    ih[0, 0] = True  # only input 0 feeds anything, and only unit 0
    shift = np.roll(np.eye(4, dtype=bool), 1, axis=0)  # unit k feeds unit k + 1
    assert unfolded_layer_expansion(ih, shift, steps=3).reachability == pytest.approx((1 / 12,) * 3)
    full = unfolded_layer_expansion(ih, np.ones((4, 4)), steps=3)
    assert full.reachability == pytest.approx((1 / 12, 1 / 3, 1 / 3))  # input 0 reaches every unit
    empty = unfolded_layer_expansion(ih, np.zeros((4, 4)), steps=3)
    assert empty.reachability == pytest.approx((1 / 12, 0.0, 0.0))  # no memory
    loops = unfolded_layer_expansion(ih, np.zeros((4, 4)), steps=3, self_loops=True)
    assert loops.reachability == pytest.approx((1 / 12,) * 3)  # the cell state keeps it


def test_spectrum_and_components_agree_with_dense():
    rng = np.random.default_rng(0)
    for ih_density, hh_density, steps in [(0.3, 0.2, 5), (0.1, 0.05, 8), (0.5, 0.5, 1)]:
        ih, hh = rng.random((9, 6)) < ih_density, rng.random((9, 9)) < hh_density
        e = unfolded_layer_expansion(ih, hh, steps=steps)
        adjacency = dense_unfolded_adjacency(ih, hh, steps)
        eig = np.linalg.eigvalsh(adjacency)
        assert (e.lambda1, e.mu) == pytest.approx((eig[-1], eig[-2]), abs=TOL)
        num, labels = csgraph.connected_components(adjacency, directed=False)
        assert (e.num_components, e.largest_component) == (num, np.bincount(labels).max())
        reach = [np.linalg.matrix_power(hh.astype(int), k) @ ih.astype(int) > 0 for k in range(steps)]
        assert e.reachability == pytest.approx(tuple(r.mean() for r in reach))


def test_as_dict():
    e = UnfoldedExpansion(steps=2, reachability=(0.5, 0.25), num_components=3, largest_component=4,
                          lambda1=2.0, mu=1.0)
    assert e.as_dict() == {"reach@lag0": 0.5, "reach@lag1": 0.25, "num_components": 3.0,
                           "largest_component": 4.0, "lambda1": 2.0, "mu": 1.0}


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_unfolded_expansion_unites_gates(cls):
    module = cls(4, 5, num_layers=2, bidirectional=True)
    gates = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}[cls]
    for w in prunable_weights(module):
        mask = torch.zeros(w.shape, dtype=torch.bool)
        if w.kind == "ih":
            for g in range(gates):  # gate g only reads input g mod in: the union reads them all
                mask[5 * g : 5 * (g + 1), g % w.shape[1]] = True
        else:
            mask[:5] = torch.eye(5, dtype=torch.bool)  # only the first gate, and only its diagonal
        set_mask(w, mask)
    result = unfolded_expansion(module, steps=3)
    assert list(result) == ["l0", "l0_reverse", "l1", "l1_reverse"]
    inputs = 4
    expected = min(gates, inputs) / inputs
    assert result["l0"].reachability == pytest.approx((expected,) * 3)
    assert result["l1_reverse"].reachability == pytest.approx((min(gates, 10) / 10,) * 3)


def test_unfolded_expansion_on_a_dense_module():
    result = unfolded_expansion(nn.LSTM(3, 2), steps=4)
    assert result["l0"].reachability == (1.0, 1.0, 1.0, 1.0)
    assert result["l0"].num_components == 1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: unfolded_expansion(nn.Linear(2, 2)), "module must be an nn.RNN, nn.LSTM or nn.GRU, got Linear"),
        (lambda: unfolded_expansion(nn.LSTM(2, 3), steps=0), "steps must be >= 1, got 0"),
        (lambda: unfolded_expansion(nn.LSTM(2, 3), steps=2.0), "steps must be an integer"),
        (lambda: unfolded_expansion(nn.LSTM(2, 3, proj_size=2)), "proj_size=2"),
        (lambda: unfolded_layer_expansion(np.ones((3, 2)), np.ones((2, 2))), r"hh has shape \(2, 2\)"),
        (lambda: unfolded_layer_expansion([[1]], np.ones((1, 1))), "ih must be a torch.Tensor"),
        (lambda: unfolded_layer_expansion(np.ones((1, 1)), np.ones(1)), "hh must be 2-D"),
        (lambda: unfolded_layer_expansion(np.ones((1, 1)), np.ones((1, 1)), self_loops=1),
         "self_loops must be True or False"),
    ],
)
def test_rejects(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_as_dict_picks_lags_and_rejects_others():
    e = unfolded_layer_expansion(np.eye(3), np.eye(3), steps=4)
    assert [k for k in e.as_dict([0, 3]) if k.startswith("reach@")] == ["reach@lag0", "reach@lag3"]
    with pytest.raises(ValueError, match=r"lags \[4, -1\] lie outside \[0, steps=4\)"):
        e.as_dict([0, 4, -1])
