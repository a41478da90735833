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
from rnn_prune.expansion import DEFAULT_MEASURES, MEASURES, register_measure
from rnn_prune.expansion.verdict import ramanujan_share
from rnn_prune.guards import RamanujanGuard
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

    # the callback: the logged fraction and the count of graphs without a verdict
    logged = measured[-1]
    fraction, undefined = float(logged[keys.RAMANUJAN_FRACTION]), float(logged[keys.RAMANUJAN_UNDEFINED])

    # the guard itself, asked about the final masks: the default guard accepts exactly the
    # Ramanujan graphs; the one that lets graphs without a verdict pass tells those from the rest
    strict, lenient = RamanujanGuard(), RamanujanGuard(stop_below_min_degree=False)
    verdicts: list[bool | None] = []
    for graph in graphs(model, per_gate=True, stacked=True):
        mask = graph.mask_block()
        if strict.accept(graph, mask):
            verdicts.append(True)
        else:
            verdicts.append(None if lenient.accept(graph, mask) else False)
    guard = ramanujan_share(verdicts)

    # the report, from the same logged rows
    report = [s for s in RunData.from_rows("run", rows).ramanujan_shares() if s is not None][-1]

    assert guard.num_undefined == undefined == report.num_undefined
    assert 0 < undefined < len(verdicts)  # some gates are below average degree 3, some are not
    for share in (guard.fraction, report.fraction):
        assert share == pytest.approx(fraction) or (math.isnan(share) and math.isnan(fraction))
