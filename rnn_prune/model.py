"""The recurrent sequence classifier: a stock ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` and a Linear head.

A plain ``nn.Module`` (no Lightning) so the graph math, the pruning code and users' notebooks can
use it alone. The recurrent module is registered under its cell name (``self.lstm``), so the
registry's readable graph names (``lstm.l0.ih.forget_gate``) match the state_dict keys.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

CellType = Literal["rnn", "lstm", "gru"]
ReadoutType = Literal["last", "mean", "max"]
_CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
READOUTS: tuple[str, ...] = get_args(ReadoutType)
ARCHITECTURE_KEYS = ("cell", "hidden_size", "num_layers", "bidirectional", "readout")
"""The keyword arguments below that fix the network's shape: a checkpoint decides them, overrides must agree."""


class RecurrentClassifier(nn.Module):
    """Classify a (batch, time, features) sequence from the recurrent layer's outputs.

    The head reads one vector per sequence, chosen by ``readout``:

    - ``"last"``: the hidden state after the last step (the classic sequence classifier). The state
      must carry the class across the whole sequence: fine for row-by-row images, but a spoken word
      followed by 40–70 frames of near-silence is forgotten by an LSTM before the last frame.
    - ``"mean"`` / ``"max"``: the outputs averaged / maximised over all time steps, so a short event
      anywhere in the sequence reaches the head through a short gradient path (the usual pooling of
      keyword-spotting RNNs).

    Args:
        input_size: features per time step.
        num_classes: number of output classes.
        cell: ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``.
        hidden_size: hidden units per direction.
        num_layers: stacked recurrent layers.
        bidirectional: also read the sequence backwards; the head then sees both directions: with
            ``"last"`` their final states (the forward one at the last step, the reverse one at the
            first), with ``"mean"`` / ``"max"`` each direction pooled over all steps.
        dropout: dropout between stacked recurrent layers and before the head.
        readout: ``"last"``, ``"mean"`` or ``"max"`` (above).
    """

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        *,
        cell: CellType = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        readout: ReadoutType = "last",
    ) -> None:
        super().__init__()
        given = locals()  # every keyword argument as given or defaulted: what a checkpoint records
        self.arguments: dict[str, Any] = {name: given[name] for name in _keyword_arguments()}
        if cell not in _CELLS:
            raise ValueError(f"cell={cell!r} is not one of {sorted(_CELLS)}")
        if readout not in READOUTS:
            raise ValueError(f"readout={readout!r} is not one of {list(READOUTS)}")
        for arg, value in (("input_size", input_size), ("num_classes", num_classes),
                           ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if int(value) <= 0:
                raise ValueError(f"{arg}={value!r} must be a positive integer")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout!r} must lie in [0, 1)")
        self.cell = cell
        self.readout = readout
        recurrent = _CELLS[cell](
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.add_module(cell, recurrent)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    @property
    def recurrent(self) -> nn.RNNBase:
        return getattr(self, self.cell)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of shape (batch, num_classes) for ``x`` of shape (batch, time, input_size)."""
        if x.dim() != 3:
            raise ValueError(f"expected input of shape (batch, time, features), got {tuple(x.shape)}")
        output, _ = self.recurrent(x)  # (batch, time, directions * hidden)
        if self.readout == "mean":
            features = output.mean(dim=1)
        elif self.readout == "max":
            features = output.amax(dim=1)
        else:
            hidden = self.recurrent.hidden_size
            features = output[:, -1, :hidden]
            if self.recurrent.bidirectional:
                features = torch.cat([features, output[:, 0, hidden:]], dim=1)
        return self.head(self.dropout(features))


def _keyword_arguments() -> list[str]:
    """The network's keyword arguments, read from :class:`RecurrentClassifier`'s signature (their one definition)."""
    parameters = inspect.signature(RecurrentClassifier.__init__).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
