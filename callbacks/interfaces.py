"""What callbacks declare to one another: read a neighbour through these, never through ``getattr``.

A callback that computes metrics only after some epochs (``ExpansionMetrics``) implements
:class:`EpochMetricsSource`; a callback that wants a run's per-epoch rows (``StudyFigures``) asks
every source in ``trainer.callbacks`` through it, so a user's own metrics callback is drawn too
once it implements the one method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable


@runtime_checkable
class EpochMetricsSource(Protocol):
    """A callback that computes metrics after some epochs and logs them under its own keys."""

    def metrics_after(self, epoch: int) -> Mapping[str, float]:
        """What it computed after ``epoch``, by metric key; empty when it computed nothing then."""
        ...

    def owns(self, key: str) -> bool:
        """Whether ``key`` is one of its metric keys (a reader drops stale ones of other epochs)."""
        ...
