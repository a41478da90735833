"""Reading runs: every log a training left in its directory, merged into one :class:`RunData`.

A run directory (``--trainer.default_root_dir``) holds the logs of one training, but often several
logged runs:

- a **resumed** training continues its W&B run (same run id, ``resume="allow"``), and W&B offline
  writes each session to its own ``offline-run-<time>-<id>`` folder: all folders with one run id are
  one training, and their histories are merged (see :meth:`RunData.from_rows`), oldest session first,
  so a later value of an epoch wins over the one the killed session logged;
- **evaluation** runs (``python -m rnn_prune test --ckpt_path …/last.ckpt`` in the same root, as the
  README shows) are told from training runs by W&B's ``job_type`` (``fit`` / ``validate`` /
  ``test``, set by the CLI). Older runs and CSV logs carry no job type: a log with any ``train/``
  key is a training, any other an evaluation. Their ``test/…`` results become
  :attr:`RunData.evaluation` (the summary's ``test acc``);
- **failed starts** leave a run with no history at all: skipped, and named on the
  ``rnn_prune.report`` logger.

A directory with evaluation runs only is read as their table (a study's separate test root).

When several trainings remain (several CSV versions, or W&B runs under different ids from before
resumes kept their id) the newest is read and a note names the others.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn_prune import keys
from rnn_prune.expansion import measures as m
from rnn_prune.expansion.verdict import RamanujanShare, ramanujan_share, ramanujan_verdict

__all__ = ["LoggedRun", "ReportError", "RunData", "find_logged_runs", "load_run"]

log = logging.getLogger("rnn_prune.report")

TRAINING_JOB_TYPES = frozenset({"fit"})
"""W&B ``job_type`` values of a training; any other non-empty job type is an evaluation."""


class ReportError(ValueError):
    """A run that cannot be reported on; the message is the one line the CLI prints."""


@dataclass
class RunData:
    """One training's metrics as a table with a row per epoch, plus its evaluation results.

    Attributes:
        name: label of the run in figures and the summary (by default its directory's name).
        source: the newest ``metrics.csv`` or ``.wandb`` file of the training.
        epochs: the logged epochs, sorted, shape (E,).
        columns: metric name -> float array of shape (E,), NaN where that epoch logged nothing
            (or logged NaN: :meth:`was_logged` tells the two apart).
        logged: metric name -> bool array of shape (E,), whether that epoch logged the key at all.
            Empty for a table built by hand: then a finite value counts as logged.
        sources: every file the training was read from, oldest first (several for a resumed run).
        evaluation: the final results of the evaluation runs beside the training (``test/acc``,
            ``test/acc@<snr>dB``, ...): the newest evaluation's value of each key.
        evaluation_sources: the files those results came from, oldest first.
    """

    name: str
    source: Path
    epochs: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    logged: dict[str, np.ndarray] = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)
    evaluation: dict[str, float] = field(default_factory=dict)
    evaluation_sources: list[Path] = field(default_factory=list)

    @classmethod
    def from_rows(cls, name: str, rows: Iterable[Mapping[str, Any]], *, source: Path | None = None) -> RunData:
        """Merge logged rows (one per logging call) into one row per ``epoch``.

        Empty cells (``""``, ``None``) and values that are not numbers are ignored; otherwise the
        last value logged for an epoch wins, so rows given in write order (a killed session's
        before its resumed one's) leave the latest value of every epoch. A row without an
        ``epoch`` belongs to the epoch of the row before it (rows before any epoch are dropped).

        >>> rows = [{"epoch": 0, "val/acc": 0.5}, {"epoch": "0", "val/acc": ""}, {"epoch": 1, "step": 9}]
        >>> run = RunData.from_rows("demo", rows)
        >>> run.epochs.tolist(), run.columns["val/acc"].tolist(), run.last("step")
        ([0, 1], [0.5, nan], 9.0)
        """
        merged: dict[int, dict[str, float]] = {}
        epoch = None
        for row in rows:
            epoch_value = _number(row.get(keys.EPOCH))
            if epoch_value is not None and math.isfinite(epoch_value):
                epoch = int(epoch_value)
            if epoch is None:
                continue
            target = merged.setdefault(epoch, {})
            for key, value in row.items():
                number = _number(value)
                if key != keys.EPOCH and number is not None:
                    target[key] = number
        epochs = np.array(sorted(merged), dtype=np.int64)
        names = sorted({key for values in merged.values() for key in values})
        columns = {k: np.array([merged[int(e)].get(k, math.nan) for e in epochs], dtype=np.float64) for k in names}
        logged = {k: np.array([k in merged[int(e)] for e in epochs], dtype=bool) for k in names}
        source = source if source is not None else Path(name)
        return cls(name, source, epochs, columns, logged, [source])

    def has(self, key: str) -> bool:
        """Whether ``key`` was logged with at least one finite value."""
        return key in self.columns and bool(np.isfinite(self.columns[key]).any())

    def was_logged(self, key: str) -> np.ndarray:
        """Per epoch, whether ``key`` was logged (NaN included); all False for an unknown key."""
        if key in self.logged:
            return self.logged[key]
        if key in self.columns:
            return np.isfinite(self.columns[key])
        return np.zeros(len(self.epochs), dtype=bool)

    def last(self, key: str) -> float | None:
        """The last finite value of ``key`` in the training's table, or None."""
        values = self.columns.get(key)
        finite = values[np.isfinite(values)] if values is not None else ()
        return float(finite[-1]) if len(finite) else None

    def final(self, key: str) -> float | None:
        """An evaluation run's value of ``key`` if one logged it, else :meth:`last`.

        The report's ``test acc``: a ``test`` run beside the training evaluates the saved model; a
        fit that tested in the same process logged it into its own table.
        """
        value = self.evaluation.get(key)
        return value if value is not None and math.isfinite(value) else self.last(key)

    @property
    def graphs(self) -> list[str]:
        """Names of the graphs with ``graph/<graph>/<measure>`` columns, sorted."""
        return sorted({parsed[0] for key in self.columns if (parsed := keys.parse_graph_key(key))})

    def measure(self, graph: str, measure: str) -> np.ndarray | None:
        """The column ``graph/<graph>/<measure>``, or None when it was not logged."""
        return self.columns.get(keys.graph(graph, measure))

    @property
    def guarded(self) -> bool:
        """Whether a Ramanujan guard ran: ``prune/guarded`` is 1, or a graph logged ``stopped_epoch``."""
        if self.has(keys.GUARDED):
            return bool(np.nanmax(self.columns[keys.GUARDED]) > 0)
        graphs = {key[len(keys.PRUNE_PREFIX) :].rpartition("/")[0] for key in self.columns
                  if key.startswith(keys.PRUNE_PREFIX)}  # fmt: skip
        return any(self.has(keys.stopped_epoch(graph)) for graph in graphs if graph)

    @property
    def never_pruned(self) -> bool:
        """A dense run: it logged no ``prune/sparsity``, or only zeros."""
        sparsity = self.sparsity()
        return sparsity is None or bool(np.nanmax(sparsity) == 0)

    def sparsity(self) -> np.ndarray | None:
        """``prune/sparsity`` per epoch, carried forward over epochs that did not log it."""
        if not self.has(keys.SPARSITY):
            return None
        values = self.columns[keys.SPARSITY].copy()
        for i in range(1, len(values)):
            if not np.isfinite(values[i]):
                values[i] = values[i - 1]
        return values

    @property
    def pruned_graphs(self) -> list[str]:
        """The graphs the pruning callback pruned: those with a logged ``prune/<graph>/sparsity``,
        or, for a run that pruned without logging them (``log_per_graph: false``), those whose
        measured mask sparsity (``graph/<graph>/sparsity``) rose above 0.

        Empty for a run without pruning. The metrics callback also measures graphs nobody prunes
        (the dense head); a study of pruning asks about these ones.
        """
        logged = [g for g in self.graphs if self.has(keys.graph_sparsity(g))]
        if logged or self.never_pruned:
            return logged
        measured = {g: self.measure(g, m.sparsity.name) for g in self.graphs}
        return [g for g, values in measured.items()
                if values is not None and bool(np.nanmax(values, initial=0.0) > 0)]  # fmt: skip

    @property
    def share_graphs(self) -> list[str]:
        """The graphs the Ramanujan share counts: :attr:`pruned_graphs`, or for a run that prunes
        nothing every weight graph (not the unfolded-in-time ones) -- as the metrics callback's
        ``graph/ramanujan_fraction`` and the study count them."""
        return self.pruned_graphs or [g for g in self.graphs if not g.endswith(keys.UNFOLDED_SUFFIX)]

    def _verdict_graphs(self, among: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Graph -> its per-epoch :meth:`verdicts`, for the graphs (among ``among``, default
        :attr:`share_graphs`) that have them."""
        wanted = set(self.share_graphs if among is None else among)
        return {g: v for g in self.graphs if g in wanted and (v := self.verdicts(g)) is not None}

    def ramanujan_shares(self, among: Iterable[str] | None = None) -> list[RamanujanShare | None]:
        """Per epoch, :func:`~rnn_prune.expansion.verdict.ramanujan_share` over the graphs'
        :meth:`verdicts` (the logged ``graph/<graph>/is_ramanujan``, or for older runs the one verdict
        of the logged Δr, degrees and components; NaN = no verdict, outside the denominator, counted
        as undefined); None for an epoch that measured no graph.

        Runs that logged neither fall back to the logged ``graph/ramanujan_fraction``
        (and ``graph/ramanujan_undefined`` where present, else 0 undefined; the defined count is then
        unknown and given as 0). The report never judges Δr itself: the verdict has one home.
        ``among`` names the graphs to count; by default :attr:`share_graphs` (the pruned graphs),
        as the metrics callback's ``graph/ramanujan_fraction`` and the study count them.
        """
        graphs = self._verdict_graphs(among)
        shares: list[RamanujanShare | None] = []
        if graphs:
            # an epoch counts a graph when it measured it: its verdict, or for older runs its Δr
            measured = {}
            for g in graphs:
                logged = m.is_ramanujan.name if self.measure(g, m.is_ramanujan.name) is not None else m.delta_r.name
                measured[g] = self.was_logged(keys.graph(g, logged))
            for i in range(len(self.epochs)):
                verdicts = [float(values[i]) for g, values in graphs.items() if measured[g][i]]
                shares.append(ramanujan_share(verdicts) if verdicts else None)
            return shares
        fraction = self.columns.get(keys.RAMANUJAN_FRACTION)
        if among is not None or fraction is None or not np.isfinite(fraction).any():
            return [None] * len(self.epochs)
        undefined = self.columns.get(keys.RAMANUJAN_UNDEFINED, np.zeros(len(self.epochs)))
        return [
            RamanujanShare(float(f), 0, int(u) if math.isfinite(u) else 0) if math.isfinite(f) else None
            for f, u in zip(fraction, undefined, strict=True)
        ]

    def ramanujan_fraction(self) -> np.ndarray | None:
        """Share of Ramanujan graphs per epoch (NaN where none was measured or none has a verdict);
        None when the run logged no verdicts at all. See :meth:`ramanujan_shares`."""
        shares = self.ramanujan_shares()
        if all(share is None for share in shares):
            return None
        return np.array([math.nan if s is None else s.fraction for s in shares], dtype=np.float64)

    def final_ramanujan_share(self, among: Iterable[str] | None = None) -> RamanujanShare | None:
        """The share (over ``among``, default :attr:`share_graphs`) at the last epoch that measured graphs, or None."""
        measured = [share for share in self.ramanujan_shares(among) if share is not None]
        return measured[-1] if measured else None

    def verdicts(self, graph: str) -> np.ndarray | None:
        """Per epoch, the graph's Ramanujan verdict: 1, 0, or NaN (no verdict, or not measured).

        The logged ``graph/<graph>/is_ramanujan``; for a graph that logged none (runs from before it
        was logged), :func:`~rnn_prune.expansion.verdict.ramanujan_verdict` of its logged Δr, average
        degrees and components besides isolated nodes (``num_nonisolated_components``, else
        ``num_components − num_isolated_left − num_isolated_right``). None when neither was logged:
        Δr alone does not make the verdict.

        >>> rows = [{"epoch": 0, "graph/g/delta_r": -0.5, "graph/g/avg_left_degree": 4, "graph/g/avg_right_degree": 4,
        ...          "graph/g/num_components": 3, "graph/g/num_isolated_left": 1, "graph/g/num_isolated_right": 1}]
        >>> run = RunData.from_rows("old", rows)
        >>> run.verdicts("g").tolist(), RunData.from_rows("o", [{"epoch": 0, "graph/g/delta_r": 1.0}]).verdicts("g")
        ([0.0], None)
        """
        logged = self.measure(graph, m.is_ramanujan.name)
        if logged is not None:
            return logged
        inputs = [self.measure(graph, x.name) for x in (m.delta_r, m.avg_left_degree, m.avg_right_degree)]
        components = self.measure(graph, m.num_nonisolated_components.name)
        if components is None:
            parts = [self.measure(graph, name) for name in (m.num_components.name, m.num_isolated_left.name,
                                                             m.num_isolated_right.name)]  # fmt: skip
            components = None if any(p is None for p in parts) else parts[0] - parts[1] - parts[2]
        if components is None or any(values is None for values in inputs):
            return None
        verdicts = np.full(len(self.epochs), math.nan)
        for i, (margin, left, right, parts) in enumerate(zip(*inputs, components, strict=True)):
            if math.isfinite(parts):
                judged = ramanujan_verdict(float(margin), float(left), float(right), int(parts)).is_ramanujan
                verdicts[i] = math.nan if judged is None else float(judged)
        return verdicts

    def ramanujan_losses(self) -> dict[str, int]:
        """Graph -> index (into ``epochs``) of the first epoch the graph is not Ramanujan after an
        epoch in which it was; graphs that never lost the property are left out.

        The verdict is :meth:`verdicts` (the logged ``graph/<graph>/is_ramanujan``, or for older runs
        the one verdict of the logged inputs); an epoch without a verdict (NaN: average degree below
        3) neither keeps nor loses the property.
        """
        losses = {}
        for graph in self.graphs:
            values = self.verdicts(graph)
            if values is None:
                continue
            was_ramanujan = False
            for i, value in enumerate(values):
                if not np.isfinite(value):
                    continue
                if value != 0:
                    was_ramanujan = True
                elif was_ramanujan:
                    losses[graph] = i
                    break
        return losses

    def first_loss(self) -> tuple[str, int, float | None] | None:
        """``(graph, epoch, sparsity)`` of the first graph to lose the Ramanujan property."""
        losses = self.ramanujan_losses()
        if not losses:
            return None
        graph, index = min(losses.items(), key=lambda item: (item[1], item[0]))
        sparsity = self.sparsity()
        at = float(sparsity[index]) if sparsity is not None and np.isfinite(sparsity[index]) else None
        return graph, int(self.epochs[index]), at

    def measures_verdicts(self) -> bool:
        """Whether any graph has :meth:`verdicts` (so "never lost the property" means something)."""
        return any(self.verdicts(g) is not None for g in self.graphs)


def _number(value: Any) -> float | None:
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return float(value)
        except ValueError:
            return None
    return None


@dataclass
class LoggedRun:
    """One logged run found in a run directory: a CSV log, or every W&B session of one run id.

    Attributes:
        files: its ``metrics.csv`` or ``.wandb`` files, oldest session first.
        rows: the logged rows of all files, in write order, W&B's own ``_…`` keys left out.
        job_type: W&B's ``job_type`` (``fit``, ``validate``, ``test``), ``""`` when not set.
        run_id: the W&B run id, ``""`` for a CSV log.
        complete: whether every W&B session wrote its exit record (CSV: always True).
    """

    files: list[Path]
    rows: list[dict[str, Any]]
    job_type: str = ""
    run_id: str = ""
    complete: bool = True

    @property
    def newest(self) -> Path:
        """The newest session's file: what messages name the run by."""
        return self.files[-1]

    @property
    def is_training(self) -> bool:
        """``job_type == "fit"``; without a job type (older runs, CSV), any ``train/`` key logged."""
        if self.job_type:
            return self.job_type in TRAINING_JOB_TYPES
        prefix = keys.TRAIN_LOSS.partition("/")[0] + "/"
        return any(key.startswith(prefix) for row in self.rows for key in row)

    def __str__(self) -> str:
        kind = self.job_type or ("fit" if self.is_training else "evaluation")
        return f"{self.newest} ({kind})"


def _read_csv(path: Path) -> LoggedRun:
    with path.open(newline="") as file:
        return LoggedRun([path], list(csv.DictReader(file)))


def _read_wandb(paths: list[Path]) -> LoggedRun:
    from rnn_prune import wandb_offline  # wandb's protobufs load only when a W&B run is read

    sessions = sorted((wandb_offline.read_run(p) for p in paths), key=lambda s: (s.start_time, s.path.stat().st_mtime))
    rows = [{k: v for k, v in row.items() if not k.startswith("_")} for s in sessions for row in s.history]
    job_type = next((s.job_type for s in reversed(sessions) if s.job_type), "")
    return LoggedRun([s.path for s in sessions], rows, job_type, sessions[-1].run_id,
                     all(s.complete for s in sessions))  # fmt: skip


def find_logged_runs(run_dir: str | os.PathLike) -> list[LoggedRun]:
    """Every logged run at or under ``run_dir`` (a directory, a ``metrics.csv`` or a ``.wandb``
    file), W&B sessions of one run id merged, oldest first (by their newest file's mtime).

    Raises:
        ReportError: ``run_dir`` does not exist, or a file cannot be read.
    """
    from rnn_prune import wandb_offline

    path = Path(run_dir)
    if path.is_file():
        csv_files, wandb_files = ([], [path]) if path.suffix == ".wandb" else ([path], [])
    elif path.is_dir():
        csv_files = sorted(Path(d) / "metrics.csv" for d, _, files in os.walk(path) if "metrics.csv" in files)
        wandb_files = [wandb_offline.run_file(d) for d in wandb_offline.find_offline_runs(path)]
    else:
        raise ReportError(f"{run_dir}: no such file or directory")
    found: list[LoggedRun] = []
    current: Path | None = None
    try:
        for current in csv_files:
            found.append(_read_csv(current))
        by_id: dict[str, list[Path]] = {}
        for current in wandb_files:
            by_id.setdefault(wandb_offline.run_id(current), []).append(current)
        for paths in by_id.values():
            current = paths[-1]
            found.append(_read_wandb(paths))
    except (OSError, ValueError, csv.Error) as err:
        raise ReportError(f"{run_dir}: cannot read {current}: {err}") from err
    return sorted(found, key=lambda r: (r.newest.stat().st_mtime, str(r.newest)))


def load_run(run_dir: str | os.PathLike, *, name: str | None = None,
             require: Sequence[str] = (keys.VAL_ACC,)) -> RunData:  # fmt: skip
    """Read one training from ``run_dir``: its (merged) history, and its evaluation runs' results.

    A directory that holds evaluation runs only (e.g. a separate ``test`` root) is read as one table
    of those runs, oldest first, so ``require=(keys.TEST_ACC,)`` reads a test result; the default
    ``require`` then fails, naming the evaluation runs found.

    Args:
        run_dir: a run's directory (e.g. ``runs/quickstart``), or a ``metrics.csv`` / ``.wandb``
            file or W&B run directory.
        name: label of the run; default the directory's name.
        require: columns the table must hold a finite value of.

    Raises:
        ReportError: nothing readable was found, or a required column (or ``epoch``) is missing.
    """
    path = Path(run_dir)
    found = find_logged_runs(run_dir)
    if not found:
        raise ReportError(f"{run_dir}: no metrics.csv or W&B offline run found")
    empty = [run for run in found if not run.rows]
    if len(empty) == len(found):
        raise ReportError(f"{run_dir}: no logged history in {', '.join(str(run.newest) for run in empty)}")
    for run in empty:
        log.info("%s: skipped %s: it logged no history (a failed start?)", run_dir, run.newest)
    trainings = [run for run in found if run.rows and run.is_training]
    evaluations = [run for run in found if run.rows and not run.is_training]
    if trainings:
        read = [trainings[-1]]
        if len(trainings) > 1:
            others = ", ".join(str(run.newest) for run in trainings[:-1])
            log.info("%s: %d training runs found, using the newest: %s (not read: %s)",
                     run_dir, len(trainings), read[0].newest, others)  # fmt: skip
    else:
        read, evaluations = evaluations, []
    what = "" if trainings else f"no training run, only evaluation runs ({', '.join(map(str, read))}): "
    for run in read:
        if not run.complete:
            log.info("%s: %s has no exit record (still running, or killed): reading what is there",
                     run_dir, run.newest)  # fmt: skip
    rows = [row for run in read for row in run.rows]
    source = read[-1].newest
    if not any(keys.EPOCH in row for row in rows):
        raise ReportError(f"{run_dir}: {what}{source} has no column {keys.EPOCH}")
    if name is None:
        name = (path.parent if path.is_file() else path).resolve().name
    data = RunData.from_rows(name, rows, source=source)
    data.sources = [file for run in read for file in run.files]
    test_prefix = keys.TEST_ACC.partition("/")[0] + "/"
    for evaluation in evaluations:  # oldest first: the newest evaluation's value wins
        table = RunData.from_rows(name, evaluation.rows)
        results = {key: value for key in table.columns
                   if key.startswith(test_prefix) and (value := table.last(key)) is not None}  # fmt: skip
        if results:
            data.evaluation.update(results)
            data.evaluation_sources.append(evaluation.newest)
    for key in require:
        if not data.has(key):
            raise ReportError(f"{run_dir}: {what}{source} has no column {key}")
    return data
