"""``ExpansionMetrics``: after every (N-th) epoch, how well does each pruned layer still expand?

Thin glue over :mod:`rnn_prune.expansion`: asks the registry for the graphs, computes their
measures once (on global rank 0), and records them through the trainer's loggers as
``graph/<graph>/<measure>`` scalars, so W&B shows sparsity, accuracy and Δr side by side. With a
``WandbLogger`` it also logs a per-epoch table (graph × measure) and degree histograms through the
logger's own experiment. Copy this file to add a metrics callback of your own.

The graph math runs under ``threadpoolctl.threadpool_limits`` (one BLAS/OpenMP thread by default):
during training torch's threads keep the cores busy, and BLAS threads that spin for a core make
the measures 10–30× slower than single-threaded.
"""

from __future__ import annotations

import math
import time

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from threadpoolctl import threadpool_limits
from typing_extensions import override

from rnn_prune import keys
from rnn_prune.expansion import DEFAULT_MEASURES, LayerExpansion, degrees, model_expansion, unfolded_expansion
from rnn_prune.expansion.measures import check_measures
from rnn_prune.expansion.verdict import ramanujan_share
from rnn_prune.registry import graphs, matches, recurrent_modules


def _every(n: int | None, epoch: int) -> bool:
    """Whether a measure set to run every ``n`` epochs (``None`` = never) runs after ``epoch``."""
    return n is not None and (epoch + 1) % n == 0


def _check_every(name: str, value: int | None, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or value < 1:
        allowed = "a positive integer or null" if allow_none else "a positive integer"
        raise ValueError(f"{name}={value!r} must be {allowed}")


def summarize(
    expansions: dict[str, LayerExpansion], measures: list[str] | tuple[str, ...] = DEFAULT_MEASURES
) -> dict[str, float]:
    """The summaries over all graphs whose inputs were measured.

    * ``graph/ramanujan_fraction``: :func:`~rnn_prune.expansion.verdict.ramanujan_share` of the
      graphs' ``is_ramanujan`` — the share of Ramanujan graphs among those with a defined verdict
      (NaN when none has one) — and ``graph/ramanujan_undefined``, how many had none (average
      degree below 3, no edges). Logged when ``is_ramanujan`` is measured.
    * ``graph/min_delta_r``: the smallest finite Δr (NaN when none is). Logged when ``delta_r`` is.
    """
    out: dict[str, float] = {}
    if not expansions:
        return out
    if "is_ramanujan" in measures:
        share = ramanujan_share(e.is_ramanujan for e in expansions.values())
        out[keys.RAMANUJAN_FRACTION] = share.fraction
        out[keys.RAMANUJAN_UNDEFINED] = float(share.num_undefined)
    if "delta_r" in measures:
        finite = [e.delta_r for e in expansions.values() if math.isfinite(e.delta_r)]
        out[keys.MIN_DELTA_R] = min(finite) if finite else float("nan")
    return out


class ExpansionMetrics(Callback):
    """Log the expansion measures of every registry graph after every ``every_n_epochs`` epochs.

    Args:
        every_n_epochs: how often the per-graph measures run.
        per_gate: measure each LSTM/GRU gate block as its own graph.
        stacked: measure each stacked weight (all gates together) too.
        include: globs over graph names to measure (default: all, the head included).
        measures: names of :data:`rnn_prune.expansion.MEASURES` to compute and log; only these are
            computed (default: :data:`rnn_prune.expansion.DEFAULT_MEASURES`, every built-in but the
            random baseline). ``graph/ramanujan_fraction`` needs ``is_ramanujan``,
            ``graph/min_delta_r`` needs ``delta_r``.
        imdb_every_n_epochs: IMDB (iterative mean of Δr) is costlier; ``null`` switches it off.
        random_samples: random graphs with the same degrees behind ``random_delta_r`` (0 = off).
        random_every_n_epochs: how often the random baseline runs (when ``random_samples`` > 0).
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
        imdb_every_n_epochs: int | None = 1,
        random_samples: int = 0,
        random_every_n_epochs: int | None = 5,
        unfolded_steps: int = 8,
        unfolded_every_n_epochs: int | None = 1,
        reach_lags: list[int] | None = None,
        log_table: bool = True,
        log_histograms: bool = True,
        blas_threads: int | None = 1,
    ) -> None:
        super().__init__()
        _check_every("every_n_epochs", every_n_epochs, allow_none=False)
        _check_every("imdb_every_n_epochs", imdb_every_n_epochs)
        _check_every("random_every_n_epochs", random_every_n_epochs)
        _check_every("unfolded_every_n_epochs", unfolded_every_n_epochs)
        if not isinstance(random_samples, int) or random_samples < 0:
            raise ValueError(f"random_samples={random_samples!r} must be a non-negative integer")
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
        measures = list(DEFAULT_MEASURES) if measures is None else check_measures(measures)
        _check_every("blas_threads", blas_threads)
        self.every_n_epochs = every_n_epochs
        self.per_gate = per_gate
        self.stacked = stacked
        self.include = include
        self.measures = measures
        self.imdb_every_n_epochs = imdb_every_n_epochs
        self.random_samples = random_samples
        self.random_every_n_epochs = random_every_n_epochs
        self.unfolded_steps = unfolded_steps
        self.unfolded_every_n_epochs = unfolded_every_n_epochs
        self.reach_lags = reach_lags
        self.log_table = log_table
        self.log_histograms = log_histograms
        self.blas_threads = blas_threads
        self.last_metrics: dict[str, float] = {}
        self.last_epoch: int | None = None
        self._warned: set[tuple[str, str]] = set()

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
        # Computed and logged once, on global rank 0. Masks agree across ranks (ScheduledPruning
        # checks it), so rank 0's graphs are everyone's. The other ranks receive the scalars so a
        # monitor (EarlyStopping on graph/min_delta_r) sees them everywhere; that costs them no
        # extra wait, since their next step's gradient all-reduce waits for rank 0 anyway.
        metrics = self._run_measures(trainer, pl_module, epoch) if trainer.is_global_zero else None
        if trainer.world_size > 1:
            metrics = trainer.strategy.broadcast(metrics, src=0)
        # callback_metrics too, so other callbacks (EarlyStopping, StudyFigures) can read them.
        trainer.callback_metrics.update({key: torch.tensor(value) for key, value in metrics.items()})
        self.last_metrics, self.last_epoch = metrics, epoch

    def _measures_now(self, epoch: int) -> list[str]:
        """The measures due after ``epoch``: IMDB and the random baseline have their own rhythm.

        An IMDB skipped this epoch is still logged (as NaN), so its series keeps one row per
        measured epoch; a random baseline that is off is not logged at all.
        """
        imdb_due = _every(self.imdb_every_n_epochs, epoch)
        random_due = bool(self.random_samples) and _every(self.random_every_n_epochs, epoch)
        names = [
            n for n in self.measures if (n != "imdb" or imdb_due) and (n != "random_delta_r" or random_due)
        ]
        if random_due and "random_delta_r" not in names:
            names.append("random_delta_r")
        return names

    def _run_measures(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> dict[str, float]:
        started = time.perf_counter()
        measured = self._measures_now(epoch)
        logged = [*self.measures, *(n for n in measured if n not in self.measures)]
        with threadpool_limits(limits=self.blas_threads):
            expansions = model_expansion(
                pl_module,
                per_gate=self.per_gate,
                stacked=self.stacked,
                measures=measured,
                random_samples=self.random_samples if "random_delta_r" in measured else 0,
                seed=epoch,
                include=self.include,
            )
            unfolded = self._unfolded(pl_module) if _every(self.unfolded_every_n_epochs, epoch) else {}
        metrics: dict[str, float] = {}
        self._warn_degenerate(expansions, epoch)
        for name, expansion in expansions.items():
            for measure, value in expansion.as_dict(logged).items():
                metrics[keys.graph(name, measure)] = value
        metrics.update(summarize(expansions, measured))
        metrics.update(unfolded)
        metrics[keys.GRAPH_SECONDS] = time.perf_counter() - started
        # Straight to the loggers, not through self.log: Lightning's result collection does work
        # per logged key that grows with the keys already logged in the hook, and these are
        # hundreds (measured: 0.25 s an epoch for one LSTM layer's 360). The step is the one
        # Lightning gives the epoch's own metrics (the last optimizer step's), so they line up.
        step = max(trainer.global_step - 1, 0)
        for logger in trainer.loggers:
            logger.log_metrics({**metrics, keys.EPOCH: epoch}, step=step)
            if isinstance(logger, WandbLogger):
                self._log_wandb_extras(logger, pl_module, expansions, logged, metrics, step)
        return metrics

    def _warn_degenerate(self, expansions: dict[str, LayerExpansion], epoch: int) -> None:
        """Say once per graph and reason why some of its measures are NaN or degenerate."""
        for name, expansion in expansions.items():
            for reason in filter(None, expansion.reason.split("; ")):
                if (name, reason) not in self._warned:
                    self._warned.add((name, reason))
                    rank_zero_info(f"ExpansionMetrics: graph {name} at epoch {epoch}: {reason}")

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
