"""Lightning callbacks: thin glue over the pure math in ``rnn_prune``. Add yours as a new file here."""

from callbacks.expansion import ExpansionMetrics
from callbacks.figures import StudyFigures
from callbacks.interfaces import EpochMetricsSource
from callbacks.pruning import ScheduledPruning

__all__ = ["EpochMetricsSource", "ExpansionMetrics", "ScheduledPruning", "StudyFigures"]
