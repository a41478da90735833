"""``ExpansionMetrics``: after every (N-th) epoch, how well does each pruned layer still expand?

Thin glue over :mod:`rnn_prune.expansion`: asks the registry for the graphs, computes their
measures once (on global rank 0), and records them through the trainer's loggers as
``graph/<graph>/<measure>`` scalars, so W&B shows sparsity, accuracy and Δr side by side. With a
``WandbLogger`` it also logs a per-epoch table (graph × measure) and degree histograms through the
logger's own experiment. Copy this file to add a metrics callback of your own.
"""

from __future__ import annotations

import math
import time
from dataclasses import fields

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from typing_extensions import override

from rnn_prune.expansion import LayerExpansion, degrees, model_expansion, unfolded_expansion
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


def summarize(expansions: dict[str, LayerExpansion]) -> dict[str, float]:
    """``graph/ramanujan_fraction`` (share of graphs with Δr ≥ 0) and ``graph/min_delta_r``.

    Graphs whose Δr is undefined (NaN: no edges, average degree < 1) count as not Ramanujan and
    are left out of the minimum.
    """
    if not expansions:
        return {}
    delta_r = [e.delta_r for e in expansions.values()]
    finite = [d for d in delta_r if math.isfinite(d)]
    return {
        "graph/ramanujan_fraction": sum(bool(e.is_ramanujan) for e in expansions.values()) / len(expansions),
        "graph/min_delta_r": min(finite) if finite else float("nan"),
    }


class ExpansionMetrics(Callback):
    """Log the expansion measures of every registry graph after every ``every_n_epochs`` epochs.

    Args:
        every_n_epochs: how often the per-graph measures run.
        per_gate: measure each LSTM/GRU gate block as its own graph.
        stacked: measure each stacked weight (all gates together) too.
        include: globs over graph names to measure (default: all, the head included).
        measures: names of :meth:`LayerExpansion.as_dict` fields to log (default: all).
        imdb_every_n_epochs: IMDB (iterative mean of Δr) is costlier; ``null`` switches it off.
        random_samples: random graphs with the same degrees behind ``random_delta_r`` (0 = off).
        random_every_n_epochs: how often the random baseline runs (when ``random_samples`` > 0).
        unfolded_steps: T of the recurrent layers unfolded in time.
        unfolded_every_n_epochs: how often the unfolded graph is measured; ``null`` = never.
        reach_lags: lags whose unfolded reachability is logged.
        log_table: with a WandbLogger, log a ``graph/table`` (graph × measure) every time.
        log_histograms: with a WandbLogger, log each graph's left/right degree histogram.
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
        if measures is not None:
            known = {f.name for f in fields(LayerExpansion) if f.name != "reason"}
            unknown = sorted(set(measures) - known)
            if unknown:
                raise ValueError(f"measures={unknown} are not measures; choose from {sorted(known)}")
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

    def _run_measures(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> dict[str, float]:
        started = time.perf_counter()
        random_samples = self.random_samples if _every(self.random_every_n_epochs, epoch) else 0
        expansions = model_expansion(
            pl_module,
            per_gate=self.per_gate,
            stacked=self.stacked,
            imdb=_every(self.imdb_every_n_epochs, epoch),
            random_samples=random_samples,
            seed=epoch,
            include=self.include,
        )
        skipped = set() if random_samples else {"random_delta_r"}  # no all-NaN series when off
        metrics: dict[str, float] = {}
        self._warn_degenerate(expansions, epoch)
        for name, expansion in expansions.items():
            for measure, value in expansion.as_dict().items():
                if (self.measures is None or measure in self.measures) and measure not in skipped:
                    metrics[f"graph/{name}/{measure}"] = float(value)
        metrics.update(summarize(expansions))
        if _every(self.unfolded_every_n_epochs, epoch):
            metrics.update(self._unfolded(pl_module))
        metrics["graph/seconds"] = time.perf_counter() - started
        # Straight to the loggers, not through self.log: Lightning's result collection does work
        # per logged key that grows with the keys already logged in the hook, and these are
        # hundreds (measured: 0.25 s an epoch for one LSTM layer's 360). The step is the one
        # Lightning gives the epoch's own metrics (the last optimizer step's), so they line up.
        step = max(trainer.global_step - 1, 0)
        for logger in trainer.loggers:
            logger.log_metrics({**metrics, "epoch": epoch}, step=step)
            if isinstance(logger, WandbLogger):
                self._log_wandb_extras(logger, pl_module, expansions, step)
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
                prefix = f"graph/{module_name}.{layer}.unfolded"
                for lag in self.reach_lags:
                    metrics[f"{prefix}/reach@lag{lag}"] = float(unfolded.reachability[lag])
                metrics[f"{prefix}/num_components"] = float(unfolded.num_components)
                metrics[f"{prefix}/lambda1"] = float(unfolded.lambda1)
                metrics[f"{prefix}/mu"] = float(unfolded.mu)
        return metrics

    def _log_wandb_extras(
        self, logger: WandbLogger, pl_module: L.LightningModule, expansions: dict[str, LayerExpansion], step: int
    ) -> None:
        """The per-epoch table and degree histograms: W&B-only views of the same measures."""
        if self.log_table and expansions:
            columns = list(next(iter(expansions.values())).as_dict())
            if self.measures is not None:
                columns = [c for c in columns if c in self.measures]
            rows = [
                [name, *(expansion.as_dict()[c] for c in columns), expansion.reason]
                for name, expansion in expansions.items()
            ]
            logger.log_table(key="graph/table", columns=["graph", *columns, "reason"], data=rows, step=step)
        if self.log_histograms:
            import wandb  # only reached with a WandbLogger, which already needs wandb

            histograms = {}
            for graph in graphs(pl_module, per_gate=self.per_gate, stacked=self.stacked):
                if graph.name not in expansions:
                    continue
                left, right = degrees(graph.mask_block())
                histograms[f"graph/{graph.name}/left_degree_hist"] = wandb.Histogram(left)
                histograms[f"graph/{graph.name}/right_degree_hist"] = wandb.Histogram(right)
            if histograms:
                logger.log_metrics(histograms, step=step)
