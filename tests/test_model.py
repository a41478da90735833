"""The recurrent classifier, the registry's names and the mask buffers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnn_prune.masks import apply_masks, get_mask, mask_gradients, register_masks_from_state_dict, set_mask, sparsity
from rnn_prune.model import RecurrentClassifier
from rnn_prune.module import SequenceClassifier
from rnn_prune.registry import graphs, prunable_weights, select


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_output_shape(cell: str, bidirectional: bool) -> None:
    model = RecurrentClassifier(5, 3, cell=cell, hidden_size=6, num_layers=2, bidirectional=bidirectional)
    assert model(torch.randn(4, 7, 5)).shape == (4, 3)


def test_bidirectional_head_sees_reverse_final_state() -> None:
    torch.manual_seed(0)
    model = RecurrentClassifier(2, 2, cell="gru", hidden_size=3, bidirectional=True).eval()
    x = torch.randn(1, 5, 2)
    output, _ = model.recurrent(x)
    expected = model.head(torch.cat([output[:, -1, :3], output[:, 0, 3:]], dim=1))
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cell": "transformer"}, "cell='transformer' is not one of"),
        ({"hidden_size": 0}, "hidden_size=0 must be a positive integer"),
        ({"num_layers": -1}, "num_layers=-1 must be a positive integer"),
        ({"dropout": 1.0}, r"dropout=1.0 must lie in \[0, 1\)"),
    ],
)
def test_classifier_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RecurrentClassifier(4, 2, **kwargs)


def test_classifier_rejects_unbatched_input() -> None:
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, time, features\)"):
        RecurrentClassifier(4, 2)(torch.randn(7, 4))


def test_registry_names_follow_the_wrapper_and_gates() -> None:
    module = SequenceClassifier(8, 10, cell="lstm", hidden_size=4, num_layers=2, bidirectional=True)
    names = [w.name for w in prunable_weights(module)]
    assert names == [
        "lstm.l0.ih", "lstm.l0.hh", "lstm.l0_reverse.ih", "lstm.l0_reverse.hh",
        "lstm.l1.ih", "lstm.l1.hh", "lstm.l1_reverse.ih", "lstm.l1_reverse.hh", "head",
    ]  # fmt: skip
    by_name = {w.name: w for w in prunable_weights(module)}
    assert by_name["lstm.l1_reverse.hh"].qualified_name == "net.lstm.weight_hh_l1_reverse"
    gate_graphs = {g.name: g for g in graphs(module)}
    forget = gate_graphs["lstm.l0.ih.forget_gate"]
    torch.testing.assert_close(forget.weight_block(), module.net.lstm.weight_ih_l0.detach()[4:8])
    assert "head" in gate_graphs and not gate_graphs["head"].is_gate
    assert [w.name for w in select(prunable_weights(module), ["*.hh"], ["*reverse*"])] == ["lstm.l0.hh", "lstm.l1.hh"]


def test_state_dict_keys_stay_stock_and_masks_are_the_only_additions() -> None:
    # The one check of the "stock keys" promise (it was tested twice, here and through the callback).
    model = RecurrentClassifier(3, 2, cell="lstm", hidden_size=4, num_layers=2)
    stock = set(model.state_dict())
    assert not any(k.endswith("_mask") for k in stock), "a dense model has no mask buffers"
    weights = [w for w in prunable_weights(model) if w.kind != "linear"]
    masks = {w.name: torch.rand(w.shape) > 0.5 for w in weights}
    for weight in weights:
        set_mask(weight, masks[weight.name])
    added = {f"lstm.weight_{kind}_l{layer}_mask" for layer in (0, 1) for kind in ("ih", "hh")}
    assert set(model.state_dict()) == stock | added
    assert not any(k.endswith("_orig") for k in model.state_dict()), "no torch.nn.utils.prune reparametrisation"
    first = weights[0]
    assert torch.all(first.parameter[~masks[first.name]] == 0)
    assert sparsity([first]) == pytest.approx(1 - masks[first.name].float().mean().item())


def test_registry_reads_only_public_torch_names() -> None:
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    expected = [w.param_name for w in prunable_weights(lstm)]
    del lstm._flat_weights_names  # private to nn.RNNBase: the registry must not need it
    names = [(w.name, w.param_name) for w in prunable_weights(lstm)]
    assert [p for _, p in names] == expected == [
        f"weight_{kind}_l{layer}{direction}"
        for layer in (0, 1) for direction in ("", "_reverse") for kind in ("ih", "hh")
    ]  # fmt: skip
    assert names[2] == ("lstm.l0_reverse.ih", "weight_ih_l0_reverse")


def test_masks_zero_gradients_and_reapply_after_steps() -> None:
    torch.manual_seed(0)
    model = RecurrentClassifier(3, 2, cell="gru", hidden_size=4)
    weights = prunable_weights(model)
    for w in weights:
        set_mask(w, torch.rand(w.shape) > 0.7)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(20):
        optimizer.zero_grad()
        model(torch.randn(8, 5, 3)).sum().backward()
        mask_gradients(weights)
        for w in weights:
            assert torch.all(w.parameter.grad[~get_mask(w)] == 0)
        optimizer.step()
        apply_masks(weights)
    for w in weights:
        assert torch.all(w.parameter[~get_mask(w)] == 0)


def test_pruned_checkpoint_loads_into_fresh_model() -> None:
    pruned = SequenceClassifier(3, 2, hidden_size=4)
    weight = prunable_weights(pruned)[1]
    set_mask(weight, torch.rand(weight.shape) > 0.5)
    state = pruned.state_dict()
    fresh = SequenceClassifier(3, 2, hidden_size=4)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        fresh.load_state_dict(state)
    assert register_masks_from_state_dict(fresh, state) == ["lstm.l0.hh"]
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.net.lstm.weight_hh_l0_mask, pruned.net.lstm.weight_hh_l0_mask)


def test_masks_change_lstm_weights_in_place() -> None:
    # cuDNN reads the weights through _flat_weights; replacing them (as torch.nn.utils.prune does)
    # is what triggers "weights are not part of single contiguous chunk of memory".
    lstm = nn.LSTM(3, 4, num_layers=2)
    pointers = [w.data_ptr() for w in lstm._flat_weights]
    for w in prunable_weights(lstm):
        set_mask(w, torch.rand(w.shape) > 0.5)
    assert [w.data_ptr() for w in lstm._flat_weights] == pointers
    params = [getattr(lstm, name) for name in lstm._flat_weights_names]
    assert all(a is b for a, b in zip(lstm._flat_weights, params, strict=True))
    lstm(torch.randn(5, 2, 3))
