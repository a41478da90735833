"""The one place that decides which parameters are prunable and how they split into graphs.

Every other part of the package — pruning, expansion measures, logging — asks this module instead
of walking ``named_parameters`` itself, so a new layer type is taught to the whole package here.

A *prunable weight* is one matrix parameter: ``weight_ih_l{k}[_reverse]`` / ``weight_hh_l{k}[_reverse]``
of ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` and the ``weight`` of every ``nn.Linear``. Biases never are.
A *graph* is a block of rows of such a weight read as a bipartite graph (left = input units,
right = output units): PyTorch stacks the gates of an LSTM (input, forget, cell, output) and a GRU
(reset, update, new) along dim 0, so each gate is its own graph, and the stacked matrix is one more.

Names are meant to be read back by a person: ``lstm.l0.ih.forget_gate``, ``lstm.l1_reverse.hh``,
``head``. The module part is the shortest dotted suffix of the module's path that is unique among
prunable modules (so a wrapper's ``net.lstm`` reads ``lstm``); a bare recurrent module is named by
its cell type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase

from torch import Tensor, nn

GATES: dict[str, tuple[str, ...]] = {
    "LSTM": ("input_gate", "forget_gate", "cell_gate", "output_gate"),
    "GRU": ("reset_gate", "update_gate", "new_gate"),
    "RNN_TANH": (),
    "RNN_RELU": (),
}
"""Gate names per ``nn.RNNBase.mode``, in PyTorch's stacking order along dim 0."""

_RECURRENT_PARAM = re.compile(r"^weight_(ih|hh)_l(\d+)(_reverse)?$")
MASK_SUFFIX = "_mask"


@dataclass(frozen=True)
class PrunableWeight:
    """One prunable weight matrix of shape (out, in) and where it lives.

    Attributes:
        name: readable name, e.g. ``lstm.l0.ih`` or ``head``.
        module: the module that owns the parameter (the mask buffer is registered on it too).
        param_name: attribute name of the parameter on ``module``, e.g. ``weight_ih_l0``.
        qualified_name: the parameter's key in the root module's ``state_dict``.
        kind: ``"ih"``, ``"hh"`` or ``"linear"``.
        gates: gate names stacked along dim 0 (empty for a plain RNN or a Linear).
        layer: layer index of a recurrent weight (0 for a Linear).
        reverse: whether it is the reverse direction of a bidirectional layer.
    """

    name: str
    module: nn.Module
    param_name: str
    qualified_name: str
    kind: str
    gates: tuple[str, ...] = ()
    layer: int = 0
    reverse: bool = False

    @property
    def parameter(self) -> nn.Parameter:
        return getattr(self.module, self.param_name)

    @property
    def mask_name(self) -> str:
        """Name of the mask buffer on ``module`` (present only once the weight has been pruned)."""
        return self.param_name + MASK_SUFFIX

    @property
    def mask(self) -> Tensor | None:
        """The 0/1 mask buffer, or ``None`` while the weight is dense."""
        return getattr(self.module, self.mask_name, None)

    @property
    def shape(self) -> tuple[int, int]:
        out_features, in_features = self.parameter.shape
        return int(out_features), int(in_features)

    def graphs(self, *, per_gate: bool = True, stacked: bool = True) -> list[Graph]:
        """The graphs this weight splits into: one per gate and/or the stacked matrix."""
        out: list[Graph] = []
        rows_per_gate = self.shape[0] // max(len(self.gates), 1)
        if per_gate and self.gates:
            for i, gate in enumerate(self.gates):
                rows = slice(i * rows_per_gate, (i + 1) * rows_per_gate)
                out.append(Graph(f"{self.name}.{gate}", self, rows))
        if stacked or not self.gates:
            out.append(Graph(self.name, self, slice(0, self.shape[0])))
        return out


@dataclass(frozen=True)
class Graph:
    """A bipartite graph: rows ``rows`` of a prunable weight (right side) × all its columns (left)."""

    name: str
    weight: PrunableWeight
    rows: slice

    @property
    def is_gate(self) -> bool:
        return self.name != self.weight.name

    def weight_block(self) -> Tensor:
        """The (out, in) block of the weight, detached."""
        return self.weight.parameter.detach()[self.rows]

    def mask_block(self) -> Tensor:
        """The (out, in) 0/1 block of the mask; all ones while the weight is dense."""
        mask = self.weight.mask
        if mask is None:
            return self.weight.parameter.new_ones(self.weight.shape)[self.rows]
        return mask[self.rows]


def _readable_module_names(paths: list[str], cells: list[str]) -> list[str]:
    """Shortest dotted suffix of each module path that is unique among ``paths``."""
    parts = [p.split(".") if p else [c] for p, c in zip(paths, cells, strict=True)]
    names = []
    for i, split in enumerate(parts):
        for k in range(1, len(split) + 1):
            candidate = ".".join(split[-k:])
            clashes = [j for j, other in enumerate(parts) if j != i and ".".join(other[-k:]) == candidate]
            if not clashes:
                break
        names.append(candidate)
    return names


def prunable_weights(model: nn.Module) -> list[PrunableWeight]:
    """Every prunable weight of ``model``, recurrent ones in layer/direction order, then Linears.

    >>> from torch import nn
    >>> [w.name for w in prunable_weights(nn.LSTM(3, 4, num_layers=2))]
    ['lstm.l0.ih', 'lstm.l0.hh', 'lstm.l1.ih', 'lstm.l1.hh']
    """
    found: list[tuple[str, nn.Module, str]] = []
    for path, module in model.named_modules():
        if isinstance(module, nn.RNNBase):
            found.append((path, module, module.mode.split("_")[0].lower()))
        elif isinstance(module, nn.Linear):
            found.append((path, module, "linear"))
    names = _readable_module_names([p for p, _, _ in found], [c for _, _, c in found])

    weights: list[PrunableWeight] = []
    for (path, module, _), module_name in zip(found, names, strict=True):
        prefix = f"{path}." if path else ""
        if isinstance(module, nn.RNNBase):
            # PyTorch's documented names, in registration order: layer by layer, direction by
            # direction, weight_ih before weight_hh (biases and projections weight_hr are no graphs)
            for param_name, _ in module.named_parameters(recurse=False):
                match = _RECURRENT_PARAM.match(param_name)
                if match is None:
                    continue
                kind, layer, reverse = match.group(1), int(match.group(2)), bool(match.group(3))
                direction = "_reverse" if reverse else ""
                weights.append(
                    PrunableWeight(
                        name=f"{module_name}.l{layer}{direction}.{kind}",
                        module=module,
                        param_name=param_name,
                        qualified_name=prefix + param_name,
                        kind=kind,
                        gates=GATES[module.mode],
                        layer=layer,
                        reverse=reverse,
                    )
                )
        else:
            weights.append(
                PrunableWeight(
                    name=module_name,
                    module=module,
                    param_name="weight",
                    qualified_name=prefix + "weight",
                    kind="linear",
                )
            )
    return weights


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` matches any of the ``fnmatch`` globs ``patterns`` (the package's one rule)."""
    return any(fnmatchcase(name, p) for p in patterns)


def graphs(
    model: nn.Module, *, per_gate: bool = True, stacked: bool = True, include: Iterable[str] | None = None
) -> list[Graph]:
    """Every graph of every prunable weight of ``model`` (only those matching ``include``, if given).

    >>> from torch import nn
    >>> [g.name for g in graphs(nn.GRU(3, 4), stacked=False)]
    ['gru.l0.ih.reset_gate', 'gru.l0.ih.update_gate', 'gru.l0.ih.new_gate', 'gru.l0.hh.reset_gate', 'gru.l0.hh.update_gate', 'gru.l0.hh.new_gate']
    """  # noqa: E501
    found = [g for w in prunable_weights(model) for g in w.graphs(per_gate=per_gate, stacked=stacked)]
    return found if include is None else [g for g in found if matches(g.name, include)]


def select(weights: list[PrunableWeight], include: list[str], exclude: list[str] = ()) -> list[PrunableWeight]:  # noqa: E501
    """Weights whose name matches any ``include`` glob and no ``exclude`` glob (``fnmatch`` rules)."""
    return [w for w in weights if matches(w.name, include) and not matches(w.name, exclude)]


def recurrent_modules(model: nn.Module) -> Iterator[tuple[str, nn.RNNBase]]:
    """(readable name, module) of every recurrent module, named as in :func:`prunable_weights`."""
    seen: set[int] = set()
    for w in prunable_weights(model):
        if isinstance(w.module, nn.RNNBase) and id(w.module) not in seen:
            seen.add(id(w.module))
            yield w.name.rsplit(".", 2)[0], w.module  # drop ".l{k}[_reverse].{ih|hh}"
