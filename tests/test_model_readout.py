"""The classifier's readout: the last step's state, or the outputs pooled over time."""

from __future__ import annotations

import pytest
import torch
import yaml

from rnn_prune.model import RecurrentClassifier
from rnn_prune.module import SequenceClassifier
from tests.conftest import CONFIGS


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(("readout", "pool"), [("mean", lambda o: o.mean(1)), ("max", lambda o: o.amax(1))])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_pooled_readouts_pool_every_step_of_both_directions(cell: str, readout: str, pool, bidirectional: bool) -> None:
    torch.manual_seed(0)
    model = RecurrentClassifier(3, 4, cell=cell, hidden_size=5, bidirectional=bidirectional, readout=readout).eval()
    x = torch.randn(2, 7, 3)
    output, _ = model.recurrent(x)
    assert output.shape[-1] == 5 * (2 if bidirectional else 1)
    torch.testing.assert_close(model(x), model.head(pool(output)))


def test_last_readout_is_the_default_and_reads_the_final_states() -> None:
    torch.manual_seed(0)
    model = RecurrentClassifier(3, 4, cell="lstm", hidden_size=5).eval()
    assert model.readout == "last"
    x = torch.randn(2, 7, 3)
    output, _ = model.recurrent(x)
    torch.testing.assert_close(model(x), model.head(output[:, -1]))


def test_pooled_readout_sees_an_event_the_last_step_forgets() -> None:
    """A pulse at step 0: max over time keeps its imprint whatever follows; the last step need not."""
    model = RecurrentClassifier(1, 2, cell="rnn", hidden_size=1, readout="max").eval()
    with torch.no_grad():
        model.rnn.weight_ih_l0.fill_(5.0)
        model.rnn.weight_hh_l0.zero_()  # no memory at all
        model.rnn.bias_ih_l0.zero_()
        model.rnn.bias_hh_l0.zero_()
        model.head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model.head.bias.zero_()
    pulse = torch.zeros(1, 50, 1)
    pulse[0, 0, 0] = 1.0
    torch.testing.assert_close(model(pulse)[0, 0], torch.tanh(torch.tensor(5.0)))
    model.readout = "last"
    torch.testing.assert_close(model(pulse)[0, 0], torch.tensor(0.0))


def test_bad_readout_names_the_allowed_set() -> None:
    with pytest.raises(ValueError, match=r"readout='attention' is not one of \['last', 'mean', 'max'\]"):
        RecurrentClassifier(3, 2, readout="attention")


def test_lightning_module_passes_the_readout_on_and_records_it() -> None:
    module = SequenceClassifier(3, 2, hidden_size=4, readout="mean")
    assert module.net.readout == "mean" and module.hparams.readout == "mean"
    assert SequenceClassifier(3, 2, hidden_size=4).net.readout == "last"


def test_every_config_names_its_readout() -> None:
    readouts = {}
    for path in sorted(CONFIGS.glob("*.yaml")):
        readouts[path.stem] = yaml.safe_load(path.read_text())["model"]["readout"]
    assert set(readouts.values()) <= {"last", "mean", "max"}
    assert {name: r for name, r in readouts.items() if name.startswith("speech")} == {
        "speech_lstm": "max", "speech_rnn": "max", "speech_kws12_lstm": "max"
    }  # fmt: skip
