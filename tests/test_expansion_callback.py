"""ExpansionMetrics through a non-W&B logger (CSV), its settings and its argument checks."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.loggers import CSVLogger

from callbacks import ExpansionMetrics, ScheduledPruning
from datamodules import DigitsDataModule
from rnn_prune import keys
from rnn_prune.expansion import MEASURES, measure, model_expansion
from rnn_prune.module import SequenceClassifier


def _fit(tmp_path: Path, metrics: ExpansionMetrics, epochs: int = 1, sparsity: float = 0.8) -> list[dict[str, str]]:
    L.seed_everything(0)
    trainer = L.Trainer(
        max_epochs=epochs, callbacks=[ScheduledPruning(sparsity), metrics], logger=CSVLogger(tmp_path, name="csv"),
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(SequenceClassifier(8, 10, cell="gru", hidden_size=12), DigitsDataModule(batch_size=128))
    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # two epochs: IMDB's every-second-epoch cadence
def test_scalars_reach_a_csv_logger_every_epoch(tmp_path: Path) -> None:
    metrics = ExpansionMetrics(measure_every_n_epochs={"imdb": 2}, unfolded_steps=4, reach_lags=[0, 3])
    rows = _fit(tmp_path, metrics, epochs=2, sparsity=0.3)
    measured = [r for r in rows if r.get("graph/ramanujan_fraction")]
    assert [int(r["epoch"]) for r in measured] == [0, 1]
    for row in measured:
        for key in ("graph/gru.l0.hh.update_gate/delta_r", "graph/gru.l0.ih/lambda1", "graph/head/mu",
                    "graph/gru.l0.unfolded/reach@lag3", "graph/min_delta_r"):  # fmt: skip
            assert row[key] != "", key
    assert [int(r["epoch"]) for r in rows if r.get("prune/sparsity")] == [0, 1]
    imdb = [r["graph/head/imdb"] for r in measured]
    assert imdb[0] == "nan" and imdb[1] != "nan"  # IMDB only every second epoch


def test_measures_and_include_narrow_what_is_logged(tmp_path: Path) -> None:
    metrics = ExpansionMetrics(include=["gru.l0.hh*"], measures=["delta_r"], unfolded_every_n_epochs=None)
    rows = _fit(tmp_path, metrics)
    logged = {k for r in rows for k, v in r.items() if k.startswith("graph/") and v != ""}
    graphs = ["gru.l0.hh", "gru.l0.hh.reset_gate", "gru.l0.hh.update_gate", "gru.l0.hh.new_gate"]
    # no is_ramanujan asked for: no Ramanujan share either
    assert logged == {keys.graph(g, "delta_r") for g in graphs} | {keys.MIN_DELTA_R, keys.GRAPH_SECONDS}


def test_only_the_asked_measures_are_computed() -> None:
    calls: list[str] = []
    with MEASURES.scoped():
        for name in ("delta_r", "imdb", "weighted_mu"):
            original = MEASURES[name]
            counting = measure(lambda g, _f=original, _n=name: calls.append(_n) or _f(g), name=name)
            MEASURES.add(counting, replace=True)
        model = SequenceClassifier(8, 10, cell="gru", hidden_size=12)
        result = model_expansion(model, measures=["num_edges", "delta_r"], include=["head"])
    assert calls == ["delta_r"] and math.isnan(result["head"].imdb)


def test_ramanujan_share_counts_only_defined_verdicts(tmp_path: Path) -> None:
    metrics = ExpansionMetrics(unfolded_every_n_epochs=None, measure_every_n_epochs={"imdb": None})
    rows = _fit(tmp_path, metrics, sparsity=0.7)
    (row,) = [r for r in rows if r.get(keys.RAMANUJAN_FRACTION)]
    logged = {k for r in rows for k, v in r.items() if v != ""}
    pruned = {g for g in {keys.parse_graph_key(k)[0] for k in logged if keys.parse_graph_key(k)}
              if keys.graph_sparsity(g) in logged}  # fmt: skip
    assert pruned and "head" not in pruned  # the share counts the graphs the run prunes, not the dense head
    verdicts = [float(v) for k, v in row.items() if k.endswith("/is_ramanujan") and v != ""
                and keys.parse_graph_key(k)[0] in pruned]  # fmt: skip
    # counted here by hand: 1 = Ramanujan, 0 = not, NaN = no verdict (outside the denominator)
    ramanujan, not_ramanujan = verdicts.count(1.0), verdicts.count(0.0)
    undefined = sum(math.isnan(v) for v in verdicts)
    assert undefined > 0 and ramanujan + not_ramanujan > 0  # at 70 % the 8-input gates have d̄R < 3: no verdict
    assert ramanujan + not_ramanujan + undefined == len(verdicts)
    assert float(row[keys.RAMANUJAN_UNDEFINED]) == undefined
    assert float(row[keys.RAMANUJAN_FRACTION]) == pytest.approx(ramanujan / (ramanujan + not_ramanujan))
    assert metrics.last_metrics[keys.RAMANUJAN_UNDEFINED] == undefined
    assert metrics.metrics_after(0) == metrics.last_metrics and metrics.metrics_after(1) == {}
    head = float(row["graph/head/is_ramanujan"])  # the head's verdict: its own key, not in the share
    assert float(row[keys.unpruned(keys.RAMANUJAN_FRACTION)]) == head


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"every_n_epochs": 0}, "every_n_epochs=0 must be a positive integer"),
        ({"every_n_epochs": None}, "every_n_epochs=None must be a positive integer"),
        ({"measure_every_n_epochs": {"imdb": -1}}, r"measure_every_n_epochs\[imdb\]=-1 must be a positive integer"),
        ({"measure_every_n_epochs": {"beauty": 1}}, r"measure_every_n_epochs=\['beauty'\] are not measures"),
        ({"measure_options": {"random_delta_r": {"samples": -2}}}, "random_delta_r.samples must be >= 0, got -2"),
        ({"measure_options": {"delta_r": {"k": 1}}}, r"measure_options: measure 'delta_r' has no option \['k'\]"),
        ({"unfolded_steps": 0}, "unfolded_steps=0 must be a positive integer"),
        ({"reach_lags": [0, 9]}, r"lags \[9\] lie outside \[0, unfolded_steps=8\)"),
        ({"per_gate": False, "stacked": False}, "leave no graph to measure"),
        ({"measures": ["delta_r", "beauty"]}, r"measures=\['beauty'\] are not measures"),
        ({"measures": "delta_r"}, "measures must be a list of measure names"),
        ({"blas_threads": 0}, "blas_threads=0 must be a positive integer or null"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ExpansionMetrics(**kwargs)


def test_include_matching_no_graph_fails_at_setup() -> None:
    with pytest.raises(ValueError, match=r"include=\['lstm.\*'\] matches no graph"):
        ExpansionMetrics(include=["lstm.*"]).setup(None, SequenceClassifier(8, 10, cell="gru"), "fit")
