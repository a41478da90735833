"""``ExpansionMetrics``: after every (N-th) epoch, how well does each pruned layer still expand?

Thin glue over :mod:`rnn_prune.expansion`: asks the registry for the graphs, computes their
measures once (on global rank 0), and logs them to the trainer's loggers as
``graph/<graph>/<measure>`` scalars (the few summaries also through Lightning's ``log``, for
monitors), so W&B shows sparsity, accuracy and Δr side by side. With a ``WandbLogger`` it also
logs a per-epoch table (graph × measure) and degree histograms through the logger's own experiment.
Copy this file to add a metrics callback of your own.

The graph math runs under ``threadpoolctl.threadpool_limits`` (one BLAS/OpenMP thread by default):
during training torch's threads keep the cores busy, and BLAS threads that spin for a core make
the measures 10–30× slower than single-threaded.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Collection
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.rank_zero import rank_zero_debug
from threadpoolctl import threadpool_limits
from typing_extensions import override

from rnn_prune import keys
from rnn_prune.expansion import LayerExpansion, degrees, model_expansion, unfolded_expansion
from rnn_prune.expansion.measures import MEASURES, Selection
from rnn_prune.registry import graphs, matches, prunable_weights, recurrent_modules


def _every(n: int | None, epoch: int) -> bool:
    """Whether a measure set to run every ``n`` epochs (``None`` = never) runs after ``epoch``."""
    return n is not None and (epoch + 1) % n == 0


def _check_every(name: str, value: int | None, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        allowed = "a positive integer or null" if allow_none else "a positive integer"
        raise ValueError(f"{name}={value!r} must be {allowed}")


def summarize(
    expansions: dict[str, LayerExpansion], selection: Selection, *, pruned: Collection[str] | None = None
) -> dict[str, float]:
    """Each selected measure's own summary over the graphs (``graph/min_delta_r``,
    ``graph/ramanujan_fraction`` …): the measure declares it, this only feeds it the values.

    The summaries are over the graphs the run prunes (``pruned``; every graph when None), as the
    report and the study read them; the graphs nobody prunes (the dense head), which would
    otherwise decide ``graph/ramanujan_fraction`` once every pruned graph has lost its verdict, get
    their own summaries under :func:`rnn_prune.keys.unpruned` keys (``graph/unpruned_ramanujan_fraction``).
    """
    out: dict[str, float] = {}
    if not expansions:
        return out
    counted = list(expansions.values()) if pruned is None else [e for n, e in expansions.items() if n in pruned]
    others = [] if pruned is None else [e for n, e in expansions.items() if n not in pruned]
    for measure in selection.measures:
        if measure.summary is not None:
            out.update(measure.summary([e[measure.name] for e in counted]))
            if others:
                out.update({keys.unpruned(key): value
                            for key, value in measure.summary([e[measure.name] for e in others]).items()})  # fmt: skip
    return out


class ExpansionMetrics(Callback):
    """Log the expansion measures of every registry graph after every ``every_n_epochs`` epochs.

    The callback knows no measure by name: what to compute, how often, with which options and how
    to summarise it over the graphs all come from :data:`rnn_prune.expansion.MEASURES` and these
    arguments. It implements :class:`~callbacks.interfaces.EpochMetricsSource`.

    Args:
        every_n_epochs: how often the per-graph measures run.
        per_gate: measure each LSTM/GRU gate block as its own graph.
        stacked: measure each stacked weight (all gates together) too.
        include: globs over graph names to measure (default: all, the head included).
        measures: names of :data:`rnn_prune.expansion.MEASURES` (or ``module.function``) to
            compute and log; only these are computed (default:
            :data:`rnn_prune.expansion.DEFAULT_MEASURES`, every built-in but the random baseline).
            A measure's summary (``graph/ramanujan_fraction``, ``graph/min_delta_r``) is logged
            when the measure is.
        measure_options: ``{measure: {option: value}}`` for measures that declare options; a
            measure named here is computed too (``{random_delta_r: {samples: 8}}`` switches the
            random baseline on).
        measure_every_n_epochs: ``{measure: n}`` for measures that run every ``n``-th measured
            epoch only (costly ones such as ``imdb``); ``null`` switches one off. A measure that is
            not due is logged as NaN, so its series keeps one row per measured epoch.
        unfolded_steps: T of the recurrent layers unfolded in time.
        unfolded_every_n_epochs: how often the unfolded graph is measured; ``null`` = never.
        reach_lags: lags whose unfolded reachability is logged.
        log_table: with a WandbLogger, log a ``graph/table`` (graph × measure) every time.
        log_histograms: with a WandbLogger, log each graph's left/right degree histogram.
        blas_threads: BLAS/OpenMP threads the graph math may use (``threadpoolctl``); ``null``
            leaves the process's setting alone.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        per_gate: bool = True,
        stacked: bool = True,
        include: list[str] | None = None,
        measures: list[str] | None = None,
        measure_options: dict[str, dict[str, Any]] | None = None,
        measure_every_n_epochs: dict[str, int | None] | None = None,
        unfolded_steps: int = 8,
        unfolded_every_n_epochs: int | None = 1,
        reach_lags: list[int] | None = None,
        log_table: bool = True,
        log_histograms: bool = True,
        blas_threads: int | None = 1,
    ) -> None:
        super().__init__()
        _check_every("every_n_epochs", every_n_epochs, allow_none=False)
        _check_every("unfolded_every_n_epochs", unfolded_every_n_epochs)
        if not isinstance(unfolded_steps, int) or unfolded_steps < 1:
            raise ValueError(f"unfolded_steps={unfolded_steps!r} must be a positive integer")
        reach_lags = [0, 1, 2, 4] if reach_lags is None else list(reach_lags)
        bad_lags = [lag for lag in reach_lags if not 0 <= lag < unfolded_steps]
        if bad_lags:
            raise ValueError(
                f"reach_lags={reach_lags!r}: lags {bad_lags} lie outside [0, unfolded_steps={unfolded_steps})"
            )
        if not (per_gate or stacked):
            raise ValueError("per_gate=False and stacked=False leave no graph to measure")
        selection = MEASURES.select(measures, measure_options)
        rhythm = {} if measure_every_n_epochs is None else measure_every_n_epochs
        if not isinstance(rhythm, dict):
            raise ValueError(f"measure_every_n_epochs={rhythm!r} must map measure names to a number of epochs")
        for measure in MEASURES.resolve(list(rhythm), "measure_every_n_epochs"):
            _check_every(f"measure_every_n_epochs[{measure.name}]", rhythm[measure.name])
        _check_every("blas_threads", blas_threads)
        self.every_n_epochs = every_n_epochs
        self.per_gate = per_gate
        self.stacked = stacked
        self.include = include
        self.selection = selection
        self.measure_every_n_epochs = dict(rhythm)
        self.unfolded_steps = unfolded_steps
        self.unfolded_every_n_epochs = unfolded_every_n_epochs
        self.reach_lags = reach_lags
        self.log_table = log_table
        self.log_histograms = log_histograms
        self.blas_threads = blas_threads
        self.last_metrics: dict[str, float] = {}
        self.last_epoch: int | None = None
        self._warned: set[tuple[str, str]] = set()

    @property
    def measures(self) -> list[str]:
        """Names of the measures logged (every measured epoch; NaN where one is not due)."""
        return self.selection.names

    def metrics_after(self, epoch: int) -> dict[str, float]:
        """:class:`~callbacks.interfaces.EpochMetricsSource`: the metrics logged after ``epoch``."""
        return dict(self.last_metrics) if epoch == self.last_epoch else {}

    def owns(self, key: str) -> bool:
        """:class:`~callbacks.interfaces.EpochMetricsSource`: every ``graph/…`` key is this callback's."""
        return key.startswith(keys.GRAPH_PREFIX)

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        names = [g.name for g in graphs(pl_module, per_gate=self.per_gate, stacked=self.stacked)]
        if self.include is not None and not any(matches(name, self.include) for name in names):
            raise ValueError(f"include={self.include} matches no graph; the model has {names}")

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if not _every(self.every_n_epochs, epoch):
            return
        # Computed once, on global rank 0. Masks agree across ranks (ScheduledPruning checks it),
        # so rank 0's graphs are everyone's. The other ranks receive the scalars so a monitor
        # (EarlyStopping on graph/min_delta_r) sees them everywhere; that costs them no extra
        # wait, since their next step's gradient all-reduce waits for rank 0 anyway.
        metrics, summaries = self._run_measures(trainer, pl_module, epoch) if trainer.is_global_zero else (None, None)
        if trainer.world_size > 1:
            metrics, summaries = trainer.strategy.broadcast((metrics, summaries), src=0)
        # The few summaries reach monitors (EarlyStopping on graph/min_delta_r) through Lightning's
        # own log, callback_metrics only (the loggers got them with the rest). Every rank logs the
        # same broadcast values; under DDP they are "synced" (a mean of equal numbers), as
        # Lightning asks of epoch metrics.
        pl_module.log_dict(summaries, on_step=False, on_epoch=True, logger=False, sync_dist=trainer.world_size > 1)
        self.last_metrics, self.last_epoch = metrics, epoch

    def _selection_now(self, epoch: int) -> Selection:
        """The measures due after ``epoch`` (each at its ``measure_every_n_epochs``, default every time)."""
        due = tuple(m for m in self.selection.measures if _every(self.measure_every_n_epochs.get(m.name, 1), epoch))
        return Selection(due, self.selection.options)

    def _run_measures(
        self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Compute and log the due measures; returns (every metric, the summaries among them)."""
        started = time.perf_counter()
        due = self._selection_now(epoch)
        with threadpool_limits(limits=self.blas_threads):
            expansions = model_expansion(
                pl_module, per_gate=self.per_gate, stacked=self.stacked, measures=due, include=self.include
            )
            unfolded = self._unfolded(pl_module) if _every(self.unfolded_every_n_epochs, epoch) else {}
        metrics: dict[str, float] = {}
        self._warn_degenerate(expansions, epoch)
        for name, expansion in expansions.items():
            for measure, value in expansion.as_dict(self.measures).items():
                metrics[keys.graph(name, measure)] = value
        summaries = summarize(expansions, due, pruned=self._pruned_graphs(trainer, pl_module))
        summaries[keys.GRAPH_SECONDS] = time.perf_counter() - started
        metrics.update(unfolded)
        metrics.update(summaries)
        # Hundreds of keys go straight to the loggers, in one row with the epoch (readers merge rows
        # by epoch): through Lightning's log they cost 0.3-0.4 s an epoch for a one-layer LSTM's 650
        # (measured), against 0.02-0.04 s for the measures themselves.
        for logger in trainer.loggers:
            logger.log_metrics({**metrics, keys.EPOCH: epoch}, step=trainer.global_step)
            if isinstance(logger, WandbLogger):
                self._log_wandb_extras(logger, pl_module, expansions, self.measures, metrics, trainer.global_step)
        return metrics, summaries

    def _pruned_graphs(self, trainer: L.Trainer, pl_module: L.LightningModule) -> set[str] | None:
        """Names of the graphs the run prunes: the weights of its ScheduledPruning callbacks (or, without
        one, the weights that carry a mask); None when it prunes nothing (then every graph counts)."""
        from callbacks.pruning import ScheduledPruning

        weights = {w.name for c in trainer.callbacks if isinstance(c, ScheduledPruning) for w in c.weights}
        if not weights:
            weights = {w.name for w in prunable_weights(pl_module) if w.mask is not None}
        if not weights:
            return None
        return {g.name for g in graphs(pl_module, per_gate=self.per_gate, stacked=self.stacked)
                if g.weight.name in weights}  # fmt: skip

    def _warn_degenerate(self, expansions: dict[str, LayerExpansion], epoch: int) -> None:
        """Say in one line per epoch how many graphs newly have NaN or degenerate measures, and why;
        each graph and reason once, at debug level (the W&B table has them all, every epoch)."""
        new = []
        for name, expansion in expansions.items():
            for reason in filter(None, expansion.reason.split("; ")):
                if (name, reason) not in self._warned:
                    self._warned.add((name, reason))
                    new.append((name, reason))
                    rank_zero_debug(f"ExpansionMetrics: graph {name} at epoch {epoch}: {reason}")
        if new:
            kinds = Counter(reason.split(" (")[0].split(":")[0] for _, reason in new)
            listed = "; ".join(f"{kind}: {count}" for kind, count in kinds.most_common())
            rank_zero_info(f"ExpansionMetrics: epoch {epoch}: {len({n for n, _ in new})} graph(s) with undefined "
                           f"measures ({listed}); per graph at log level DEBUG")  # fmt: skip

    def _unfolded(self, pl_module: L.LightningModule) -> dict[str, float]:
        metrics = {}
        for module_name, module in recurrent_modules(pl_module):
            for layer, unfolded in unfolded_expansion(module, self.unfolded_steps).items():
                for measure, value in unfolded.as_dict(self.reach_lags).items():
                    metrics[keys.unfolded(f"{module_name}.{layer}", measure)] = float(value)
        return metrics

    def _log_wandb_extras(
        self,
        logger: WandbLogger,
        pl_module: L.LightningModule,
        expansions: dict[str, LayerExpansion],
        columns: list[str],
        metrics: dict[str, float],
        step: int,
    ) -> None:
        """The per-epoch table and degree histograms: W&B-only views of the measures in ``metrics``."""
        if self.log_table and expansions:
            rows = [
                [name, *(metrics.get(keys.graph(name, c), math.nan) for c in columns), expansion.reason]
                for name, expansion in expansions.items()
            ]
            logger.log_table(key=keys.GRAPH_TABLE, columns=["graph", *columns, "reason"], data=rows, step=step)
        if self.log_histograms:
            import wandb  # only reached with a WandbLogger, which already needs wandb

            histograms = {}
            for graph in graphs(pl_module, per_gate=self.per_gate, stacked=self.stacked):
                if graph.name not in expansions:
                    continue
                left, right = degrees(graph.mask_block())
                histograms[keys.degree_histogram(graph.name, "left")] = wandb.Histogram(left)
                histograms[keys.degree_histogram(graph.name, "right")] = wandb.Histogram(right)
            if histograms:
                logger.log_metrics(histograms, step=step)
