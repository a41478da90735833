"""One run, one Ramanujan share: the metrics callback, the guard and the report agree with the rule.

All three ask the one rule (:func:`rnn_prune.expansion.verdict.ramanujan_verdict`); agreeing with
one another would hold for a broken rule too, so each is checked against the rule computed here
independently, with dense numpy and scipy on the final masks.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from scipy.sparse import csgraph
from threadpoolctl import threadpool_info

from callbacks import ExpansionMetrics, ScheduledPruning
from datamodules import DigitsDataModule
from rnn_prune import keys
from rnn_prune.expansion import DEFAULT_MEASURES, measure
from rnn_prune.guards import RamanujanGuard
from rnn_prune.module import SequenceClassifier
from rnn_prune.registry import graphs
from rnn_prune.report.runs import RunData

PROBE = "blas_threads_probe"
thread_probe = measure(
    lambda graph: float(max(info["num_threads"] for info in threadpool_info())), name=PROBE
)  # the most BLAS/OpenMP threads any loaded library may use right now


def _rule_by_hand(mask: torch.Tensor) -> bool | None:
    """The Ramanujan rule, spelled out here: defined when d̄L, d̄R ≥ 3 over non-isolated nodes,
    False when the non-isolated part is disconnected, else Δr = √(d̄L−1) + √(d̄R−1) − σ₂ ≥ 0."""
    b = mask.numpy().astype(np.float64)
    left, right, edges = b.sum(0), b.sum(1), b.sum()
    if edges == 0:
        return None
    d_left, d_right = edges / np.count_nonzero(left), edges / np.count_nonzero(right)
    if d_left < 3 or d_right < 3:
        return None
    core = b[right > 0][:, left > 0]
    adjacency = np.block([[np.zeros((core.shape[0],) * 2), core], [core.T, np.zeros((core.shape[1],) * 2)]])
    if csgraph.connected_components(adjacency, directed=False)[0] > 1:
        return False
    sigma = np.linalg.svd(b, compute_uv=False)
    return bool(math.sqrt(d_left - 1) + math.sqrt(d_right - 1) - sigma[1] >= -1e-9)


def test_callback_guard_and_report_follow_the_rule(tmp_path: Path) -> None:
    L.seed_everything(0)
    metrics = ExpansionMetrics(measures=[*DEFAULT_MEASURES, thread_probe], unfolded_every_n_epochs=None)
    model = SequenceClassifier(8, 10, cell="gru", hidden_size=24)
    trainer = L.Trainer(
        max_epochs=1, callbacks=[ScheduledPruning(0.7), metrics], logger=CSVLogger(tmp_path, name="csv"),
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(model, DigitsDataModule(batch_size=128))
    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        rows = list(csv.DictReader(f))
    measured = [r for r in rows if r.get(keys.RAMANUJAN_FRACTION)]
    assert len(measured) == 1  # one epoch, pruned to 0.7 at its start

    # the graph math ran under the callback's one-thread limit
    assert {float(v) for r in measured for k, v in r.items() if k.endswith("/" + PROBE) and v} == {1.0}

    # the rule by hand, on the final masks
    expected = {g.name: _rule_by_hand(g.mask_block()) for g in graphs(model, per_gate=True, stacked=True)}
    defined = [v for v in expected.values() if v is not None]
    undefined = len(expected) - len(defined)
    assert 0 < undefined < len(expected) and any(defined)  # some gates below average degree 3, some Ramanujan
    fraction = sum(defined) / len(defined)

    # the callback: each graph's logged verdict, the logged fraction and count without a verdict
    logged = measured[-1]
    for name, verdict in expected.items():
        value = float(logged[keys.graph(name, "is_ramanujan")])
        assert (math.isnan(value) if verdict is None else value == float(verdict)), name
    assert float(logged[keys.RAMANUJAN_FRACTION]) == pytest.approx(fraction)
    assert float(logged[keys.RAMANUJAN_UNDEFINED]) == undefined

    # the guard, asked about the final masks: the default guard accepts exactly the Ramanujan
    # graphs; the one that lets graphs without a verdict pass tells those from the rest
    strict, lenient = RamanujanGuard(), RamanujanGuard(stop_below_min_degree=False)
    for graph in graphs(model, per_gate=True, stacked=True):
        mask = graph.mask_block()
        guarded = True if strict.accept(graph, mask) else None if lenient.accept(graph, mask) else False
        assert guarded == expected[graph.name], graph.name

    # the report, from the same logged rows
    report = [s for s in RunData.from_rows("run", rows).ramanujan_shares() if s is not None][-1]
    assert (report.fraction, report.num_undefined) == (pytest.approx(fraction), undefined)
