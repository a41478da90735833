"""The metric-name contract: every logged key is built here, and every reader imports it.

The pruning callback, the metrics callback, the LightningModule, the report, the study and the
figures all speak in these names; a renamed key is one edit in this file. Namespaces follow the
design card: ``train/…``, ``val/…``, ``test/…``, ``prune/…``, ``graph/<graph>/<measure>``.

>>> graph("lstm.l0.hh.forget_gate", "delta_r")
'graph/lstm.l0.hh.forget_gate/delta_r'
>>> parse_graph_key("graph/lstm.l0.hh/delta_r")
('lstm.l0.hh', 'delta_r')
>>> test_acc("@20dB")
'test/acc@20dB'
"""

from __future__ import annotations

import re

# Training and evaluation (rnn_prune.module).
TRAIN_LOSS = "train/loss"
TRAIN_ACC = "train/acc"
VAL_LOSS = "val/loss"
VAL_ACC = "val/acc"
TEST_LOSS = "test/loss"
TEST_ACC = "test/acc"
EPOCH = "epoch"

# Pruning (callbacks.pruning).
PRUNE_PREFIX = "prune/"
SPARSITY = "prune/sparsity"
TARGET = "prune/target"
GUARDED = "prune/guarded"
STEP_SPARSITY = "prune/step_sparsity"
STEP_TARGET = "prune/step_target"

# Graph measures (callbacks.expansion).
GRAPH_PREFIX = "graph/"
RAMANUJAN_FRACTION = "graph/ramanujan_fraction"
"""Share of the graphs the run prunes judged Ramanujan, among those with a defined verdict."""
RAMANUJAN_UNDEFINED = "graph/ramanujan_undefined"
"""Number of graphs with no verdict (average degree < 3, no edges), logged beside the fraction."""
UNPRUNED_PREFIX = "unpruned_"
"""``graph/unpruned_<summary>``: a summary over the graphs the run does not prune (see :func:`unpruned`)."""
MIN_DELTA_R = "graph/min_delta_r"
GRAPH_SECONDS = "graph/seconds"
GRAPH_TABLE = "graph/table"
UNFOLDED_SUFFIX = ".unfolded"
# The <measure> of graph/<graph>/<measure> is a measure's own name: readers import the measure
# (``from rnn_prune.expansion.measures import delta_r`` … ``delta_r.name``), no one re-spells it.
# Figures (callbacks.figures): W&B images of the report's figures.
REPORT_PREFIX = "report/"


def test_loss(suffix: str = "") -> str:
    """``test/loss`` of one test loader, e.g. ``test/loss@20dB`` for ``suffix="@20dB"``."""
    return f"{TEST_LOSS}{suffix}"


def test_acc(suffix: str = "") -> str:
    """``test/acc`` of one test loader, e.g. ``test/acc@20dB`` for ``suffix="@20dB"``."""
    return f"{TEST_ACC}{suffix}"


# Named like tests: pytest must not collect them where this file is named on its command line
# (``pytest rnn_prune/keys.py`` runs the doctests) or where a test module imports them by name.
test_loss.__test__ = test_acc.__test__ = False  # type: ignore[attr-defined]


def snr_suffix(snr_db: float) -> str:
    """The test-loader suffix of one noise level: ``@20dB`` for 20.0, ``@-5dB``, ``@2.5dB``.

    >>> test_acc(snr_suffix(20.0))
    'test/acc@20dB'
    """
    return f"@{snr_db:g}dB"


_SNR_KEY = re.compile("^" + re.escape(TEST_ACC) + r"@(?P<snr>[-+]?\d+(?:\.\d+)?)dB$")


def parse_snr_key(key: str) -> float | None:
    """The SNR in dB of a ``test/acc@<snr>dB`` key (what :func:`snr_suffix` builds); ``None`` for any other key.

    >>> parse_snr_key("test/acc@-5dB"), parse_snr_key(test_acc(snr_suffix(2.5))), parse_snr_key("test/acc")
    (-5.0, 2.5, None)
    """
    match = _SNR_KEY.match(key)
    return float(match["snr"]) if match else None


def report_figure(stem: str) -> str:
    """One report figure logged as a W&B image: ``report/<stem>``, e.g. ``report/accuracy_vs_sparsity``."""
    return f"{REPORT_PREFIX}{stem}"


def graph_sparsity(graph_name: str) -> str:
    """Sparsity of one pruned graph: ``prune/<graph>/sparsity``."""
    return f"{PRUNE_PREFIX}{graph_name}/sparsity"


def stopped_epoch(graph_name: str) -> str:
    """Epoch at which the guard froze a graph: ``prune/<graph>/stopped_epoch``."""
    return f"{PRUNE_PREFIX}{graph_name}/stopped_epoch"


def graph(graph_name: str, measure: str) -> str:
    """One measure of one graph: ``graph/<graph>/<measure>``."""
    return f"{GRAPH_PREFIX}{graph_name}/{measure}"


def unpruned(summary_key: str) -> str:
    """A ``graph/<summary>`` key taken over the graphs nobody prunes (the dense head) instead.

    ``graph/ramanujan_fraction`` counts the pruned graphs only; the others' share is logged apart.

    >>> unpruned(RAMANUJAN_FRACTION)
    'graph/unpruned_ramanujan_fraction'
    """
    if not summary_key.startswith(GRAPH_PREFIX) or "/" in summary_key[len(GRAPH_PREFIX):]:
        raise ValueError(f"{summary_key!r} is not a graph/<summary> key")
    return f"{GRAPH_PREFIX}{UNPRUNED_PREFIX}{summary_key[len(GRAPH_PREFIX):]}"


def degree_histogram(graph_name: str, side: str) -> str:
    """W&B histogram of one side's degrees: ``graph/<graph>/<side>_degree_hist`` (side: left | right)."""
    return graph(graph_name, f"{side}_degree_hist")


def unfolded(layer_name: str, measure: str) -> str:
    """One measure of a recurrent layer unfolded in time: ``graph/<layer>.unfolded/<measure>``."""
    return graph(f"{layer_name}{UNFOLDED_SUFFIX}", measure)


def parse_graph_key(key: str) -> tuple[str, str] | None:
    """``(graph, measure)`` of a ``graph/<graph>/<measure>`` key; ``None`` for any other key.

    Graph names hold dots, never slashes, so the measure is the part after the last slash.
    """
    if not key.startswith(GRAPH_PREFIX):
        return None
    rest = key[len(GRAPH_PREFIX):]
    graph_name, sep, measure = rest.rpartition("/")
    if not sep or not graph_name or not measure:
        return None
    return graph_name, measure
