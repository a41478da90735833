"""Callbacks read one another through declared interfaces (``callbacks.interfaces``), not attributes."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from callbacks import EpochMetricsSource, ExpansionMetrics, StudyFigures


class GraphSource:
    """A user's metrics callback: it implements the two methods and nothing else of ExpansionMetrics."""

    def metrics_after(self, epoch: int) -> dict[str, float]:
        return {"graph/g/delta_r": 1.0} if epoch == 0 else {}

    def owns(self, key: str) -> bool:
        return key.startswith("graph/")


def test_figures_take_a_sources_metrics_for_the_epoch_it_measured_only() -> None:
    figures = StudyFigures()
    stale = {"val/acc": torch.tensor(0.5), "graph/g/delta_r": torch.tensor(1.0)}  # callback_metrics keeps old keys
    trainer = SimpleNamespace(callbacks=[GraphSource(), figures], callback_metrics=stale, current_epoch=0)
    for epoch in (0, 1):
        trainer.current_epoch = epoch
        figures.on_train_epoch_end(trainer, None)
        figures.on_train_epoch_start(trainer, None)  # the epoch's values are recorded at the next start
    assert figures.state_dict()["rows"] == [{"val/acc": 0.5, "graph/g/delta_r": 1.0, "epoch": 0},
                                            {"val/acc": 0.5, "epoch": 1}]  # fmt: skip


def test_expansion_metrics_is_an_epoch_metrics_source() -> None:
    metrics = ExpansionMetrics()
    assert isinstance(metrics, EpochMetricsSource) and isinstance(GraphSource(), EpochMetricsSource)
    assert metrics.metrics_after(0) == {} and metrics.owns("graph/head/mu") and not metrics.owns("val/acc")
