"""One run, one Ramanujan share: the metrics callback, the guard's verdict and the report agree."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.loggers import CSVLogger
from threadpoolctl import threadpool_info

from callbacks import ExpansionMetrics, ScheduledPruning
from datamodules import DigitsDataModule
from rnn_prune import keys
from rnn_prune.expansion import DEFAULT_MEASURES, MEASURES, layer_expansion, register_measure
from rnn_prune.expansion.verdict import ramanujan_share, ramanujan_verdict
from rnn_prune.guards import VERDICT_MEASURES
from rnn_prune.module import SequenceClassifier
from rnn_prune.registry import graphs
from rnn_prune.report.runs import RunData

PROBE = "blas_threads_probe"


@pytest.fixture
def thread_probe():
    """A measure that reports the most BLAS/OpenMP threads any loaded library may use right now."""
    register_measure(PROBE)(lambda graph: float(max(info["num_threads"] for info in threadpool_info())))
    yield
    del MEASURES[PROBE]


def test_callback_guard_and_report_give_one_share(tmp_path: Path, thread_probe) -> None:
    L.seed_everything(0)
    metrics = ExpansionMetrics(measures=[*DEFAULT_MEASURES, PROBE], unfolded_every_n_epochs=None)
    model = SequenceClassifier(8, 10, cell="gru", hidden_size=24)
    trainer = L.Trainer(
        max_epochs=2, callbacks=[ScheduledPruning(0.7), metrics], logger=CSVLogger(tmp_path, name="csv"),
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(model, DigitsDataModule(batch_size=128))
    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        rows = list(csv.DictReader(f))
    measured = [r for r in rows if r.get(keys.RAMANUJAN_FRACTION)]
    assert len(measured) == 2

    # the graph math ran under the callback's one-thread limit
    assert {float(v) for r in measured for k, v in r.items() if k.endswith("/" + PROBE) and v} == {1.0}

    # the callback: the logged fraction and the count of graphs without a verdict
    logged = measured[-1]
    fraction, undefined = float(logged[keys.RAMANUJAN_FRACTION]), float(logged[keys.RAMANUJAN_UNDEFINED])

    # the guard's verdict, taken the way RamanujanGuard takes it, on the final masks
    verdicts = []
    for graph in graphs(model, per_gate=True, stacked=True):
        e = layer_expansion(graph.mask_block(), measures=VERDICT_MEASURES)
        verdict = ramanujan_verdict(e.delta_r, e.avg_left_degree, e.avg_right_degree, e.num_nonisolated_components)
        verdicts.append(verdict.is_ramanujan)
    guard = ramanujan_share(verdicts)

    # the report, from the same logged rows
    report = [s for s in RunData.from_rows("run", rows).ramanujan_shares() if s is not None][-1]

    assert guard.num_undefined == undefined == report.num_undefined
    assert 0 < undefined < len(verdicts)  # some gates are below average degree 3, some are not
    for share in (guard.fraction, report.fraction):
        assert share == pytest.approx(fraction) or (math.isnan(share) and math.isnan(fraction))
