"""The study report: read what runs logged, write figures and a Markdown summary.

    python -m rnn_prune.report runs/quickstart runs/quickstart_guarded --out report/

Each ``RUN_DIR`` is one training run. Its metrics come from Lightning's CSVLogger (a
``metrics.csv`` anywhere under the directory) or from a W&B offline run directory under it (read
with :mod:`rnn_prune.wandb_offline`, no server needed). When a directory holds several logged runs
(a run started twice, or logged to both loggers) the newest file is used and a note says which.

Both loggers write one row per logging call; rows are merged per ``epoch``, keeping the last
logged value of each column, so every run becomes one table with a row per epoch (``RunData``).
The figures (PNG, drawn without pyplot so the caller's backend is untouched) and the summary:

- ``accuracy_vs_sparsity.png``: ``val/acc`` against ``prune/sparsity``, a line per run;
- ``delta_r_vs_sparsity.png`` / ``normalized_gap_vs_sparsity.png``: ``graph/<graph>/delta_r`` /
  ``normalized_gap`` of every graph against sparsity, a panel per run, a line at 0 and a marker
  where a graph lost the Ramanujan property (``delta_r`` < 0 after having been >= 0);
- ``guarded_vs_unguarded.png``: accuracy and Ramanujan share, guarded runs (those that logged a
  ``prune/<graph>/stopped_epoch``) beside unguarded ones, only when both kinds are given;
- ``accuracy_vs_snr.png``: final ``test/acc@<snr>dB`` against SNR, ``test/acc`` as "clean";
- ``summary.md``: :func:`summary_table` and links to the figures.

A figure whose columns no run logged is skipped with a note (logger ``rnn_prune.report``, printed
by the CLI); a run without metrics or without ``val/acc`` is an error (exit code 2).
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn_prune import report_plots, wandb_offline

__all__ = ["ReportError", "RunData", "load_run", "main", "make_figures", "summary_table"]

log = logging.getLogger(__name__)


class ReportError(ValueError):
    """A run that cannot be reported on; the message is the one line the CLI prints."""


@dataclass
class RunData:
    """One run's metrics as a table with a row per epoch.

    Attributes:
        name: label of the run in figures and the summary (by default its directory's name).
        source: the ``metrics.csv`` or ``.wandb`` file the metrics were read from.
        epochs: the logged epochs, sorted, shape (E,).
        columns: metric name -> float array of shape (E,), NaN where that epoch logged nothing.
    """

    name: str
    source: Path
    epochs: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, name: str, rows: Iterable[Mapping[str, Any]], *, source: Path | None = None) -> RunData:
        """Merge logged rows (one per logging call) into one row per ``epoch``.

        Empty cells (``""``, ``None``) and values that are not numbers are ignored; otherwise the
        last value logged for an epoch wins. A row without an ``epoch`` belongs to the epoch of the
        row before it (rows before any epoch are dropped).

        >>> rows = [{"epoch": 0, "val/acc": 0.5}, {"epoch": "0", "val/acc": ""}, {"epoch": 1, "step": 9}]
        >>> run = RunData.from_rows("demo", rows)
        >>> run.epochs.tolist(), run.columns["val/acc"].tolist(), run.last("step")
        ([0, 1], [0.5, nan], 9.0)
        """
        merged: dict[int, dict[str, float]] = {}
        epoch = None
        for row in rows:
            epoch_value = _number(row.get("epoch"))
            if epoch_value is not None and math.isfinite(epoch_value):
                epoch = int(epoch_value)
            if epoch is None:
                continue
            target = merged.setdefault(epoch, {})
            for key, value in row.items():
                number = _number(value)
                if key != "epoch" and number is not None:
                    target[key] = number
        epochs = np.array(sorted(merged), dtype=np.int64)
        keys = sorted({key for values in merged.values() for key in values})
        columns = {key: np.array([merged[int(e)].get(key, math.nan) for e in epochs], dtype=np.float64) for key in keys}
        return cls(name, source if source is not None else Path(name), epochs, columns)

    def has(self, key: str) -> bool:
        """Whether ``key`` was logged with at least one finite value."""
        return key in self.columns and bool(np.isfinite(self.columns[key]).any())

    def last(self, key: str) -> float | None:
        """The last finite value of ``key``, or None."""
        values = self.columns.get(key)
        finite = values[np.isfinite(values)] if values is not None else ()
        return float(finite[-1]) if len(finite) else None

    @property
    def graphs(self) -> list[str]:
        """Names of the graphs with ``graph/<graph>/<measure>`` columns, sorted."""
        names = set()
        for key in self.columns:
            prefix, _, _ = key.rpartition("/")
            if prefix.startswith("graph/") and len(prefix) > len("graph/"):
                names.add(prefix[len("graph/") :])
        return sorted(names)

    def measure(self, graph: str, measure: str) -> np.ndarray | None:
        """The column ``graph/<graph>/<measure>``, or None when it was not logged."""
        return self.columns.get(f"graph/{graph}/{measure}")

    @property
    def guarded(self) -> bool:
        """Whether a Ramanujan guard ran: ``prune/guarded`` is 1, or a graph logged ``stopped_epoch``."""
        if self.has("prune/guarded"):
            return bool(np.nanmax(self.columns["prune/guarded"]) > 0)
        return any(
            key.startswith("prune/") and key.endswith("/stopped_epoch") and self.has(key) for key in self.columns
        )

    def sparsity(self) -> np.ndarray | None:
        """``prune/sparsity`` per epoch, carried forward over epochs that did not log it."""
        if not self.has("prune/sparsity"):
            return None
        values = self.columns["prune/sparsity"].copy()
        for i in range(1, len(values)):
            if not np.isfinite(values[i]):
                values[i] = values[i - 1]
        return values

    def ramanujan_fraction(self) -> np.ndarray | None:
        """Share of Ramanujan graphs per epoch: ``graph/ramanujan_fraction`` if logged, else the
        share of graphs with ``delta_r >= 0`` among those that logged ``delta_r`` that epoch."""
        if self.has("graph/ramanujan_fraction"):
            return self.columns["graph/ramanujan_fraction"]
        delta_r = [d for g in self.graphs if (d := self.measure(g, "delta_r")) is not None]
        if not delta_r:
            return None
        stacked = np.vstack(delta_r)
        logged = np.isfinite(stacked).sum(axis=0)
        ramanujan = (stacked >= 0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(logged > 0, ramanujan / np.maximum(logged, 1), np.nan)

    def ramanujan_losses(self) -> dict[str, int]:
        """Graph -> index (into ``epochs``) of the first epoch with ``delta_r < 0`` after an epoch
        with ``delta_r >= 0``; graphs that never lost the property are left out."""
        losses = {}
        for graph in self.graphs:
            delta_r = self.measure(graph, "delta_r")
            if delta_r is None:
                continue
            was_ramanujan = False
            for i, value in enumerate(delta_r):
                if not np.isfinite(value):
                    continue
                if value >= 0:
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


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _walk_files(root: Path, name: str) -> list[Path]:
    return [Path(d) / name for d, _, files in os.walk(root) if name in files]


def load_run(run_dir: str | os.PathLike, *, name: str | None = None, require: Sequence[str] = ("val/acc",)) -> RunData:
    """Read one run: the newest ``metrics.csv`` or W&B run file at or under ``run_dir``.

    Args:
        run_dir: a run's directory (e.g. ``runs/quickstart``), or a ``metrics.csv`` / ``.wandb``
            file or W&B run directory.
        name: label of the run; default the directory's name.
        require: columns the run must have logged.

    Raises:
        ReportError: nothing readable was found, or a required column is missing.
    """
    path = Path(run_dir)
    if path.is_file():
        candidates = [path]
    elif path.is_dir():
        candidates = _walk_files(path, "metrics.csv")
        candidates += [wandb_offline.run_file(d) for d in wandb_offline.find_offline_runs(path)]
    else:
        raise ReportError(f"{run_dir}: no such file or directory")
    if not candidates:
        raise ReportError(f"{run_dir}: no metrics.csv or W&B offline run found")
    source = max(candidates, key=lambda p: (p.stat().st_mtime, str(p)))
    if len(candidates) > 1:
        log.info("%s: %d logged runs found, using the newest: %s", run_dir, len(candidates), source)
    if name is None:
        name = (path.parent if path.is_file() else path).resolve().name
    try:
        if source.suffix == ".wandb":
            if not wandb_offline.is_complete(source):
                log.info("%s: %s has no exit record (still running, or killed): reading what is there", run_dir, source)
            rows = [
                {k: v for k, v in row.items() if not k.startswith("_")} for row in wandb_offline.read_history(source)
            ]
        else:
            with source.open(newline="") as file:
                rows = list(csv.DictReader(file))
    except (OSError, ValueError, csv.Error) as err:
        raise ReportError(f"{run_dir}: cannot read {source}: {err}") from err
    if rows and not any("epoch" in row for row in rows):
        raise ReportError(f"{run_dir}: {source} has no column epoch")
    run = RunData.from_rows(name, rows, source=source)
    for key in require:
        if not run.has(key):
            raise ReportError(f"{run_dir}: {source} has no column {key}")
    return run


def make_figures(runs: Sequence[RunData], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write every figure the runs have data for; return figure name -> PNG path.

    Figures no run has the columns for are skipped with a note on the ``rnn_prune.report`` logger.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for figure_name, plot in report_plots.FIGURES.items():
        try:
            figure = plot(runs)
        except report_plots.SkipFigure as skip:
            log.info("skipped %s.png: %s", figure_name, skip)
            continue
        path = out / f"{figure_name}.png"
        figure.savefig(path, dpi=120)
        written[figure_name] = path
    return written


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def summary_table(runs: Sequence[RunData]) -> str:
    """A Markdown table with a row per run; numbers to 4 decimals, ``n/a`` where not logged."""
    header = [
        "run",
        "guarded",
        "final sparsity",
        "final val acc",
        "best val acc",
        "Ramanujan share (end)",
        "first Ramanujan loss at sparsity",
        "test acc",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        val_acc = run.columns.get("val/acc")
        best = float(np.nanmax(val_acc)) if run.has("val/acc") else None
        fraction = run.ramanujan_fraction()
        share = None
        if fraction is not None and np.isfinite(fraction).any():
            share = float(fraction[np.isfinite(fraction)][-1])
        if not any(run.measure(g, "delta_r") is not None for g in run.graphs):
            loss = "n/a"
        elif (first := run.first_loss()) is None:
            loss = "never"
        else:
            graph, epoch, sparsity = first
            loss = f"{_fmt(sparsity)} ({graph}, epoch {epoch})"
        cells = [
            run.name,
            "yes" if run.guarded else "no",
            _fmt(run.last("prune/sparsity")),
            _fmt(run.last("val/acc")),
            _fmt(best),
            _fmt(share),
            loss,
            _fmt(run.last("test/acc")),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _unique_names(runs: list[RunData]) -> None:
    seen: dict[str, int] = {}
    for run in runs:
        count = seen.get(run.name, 0)
        seen[run.name] = count + 1
        if count:
            run.name = f"{run.name} ({count + 1})"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m rnn_prune.report RUN_DIR [RUN_DIR ...] --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m rnn_prune.report",
        description="Figures and a Markdown summary of pruning runs (CSVLogger or W&B offline).",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="a run's output directory")
    parser.add_argument("--out", type=Path, default=Path("report"), help="where to write (default: report)")
    args = parser.parse_args(argv)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("report: %(message)s"))
    log.addHandler(handler)
    previous_level = log.level
    log.setLevel(logging.INFO)
    try:
        try:
            runs = [load_run(run_dir) for run_dir in args.run_dirs]
        except ReportError as err:
            print(f"report: {err}", file=sys.stderr)
            return 2
        _unique_names(runs)
        figures = make_figures(runs, args.out)
        table = summary_table(runs)
        sources = "\n".join(f"- {run.name}: `{run.source}`" for run in runs)
        images = "\n".join(f"![{name}]({path.name})" for name, path in figures.items())
        summary = args.out / "summary.md"
        summary.write_text(f"# Pruning report\n\n{table}\nRuns read from:\n\n{sources}\n\n{images}\n")
        for path in [*figures.values(), summary]:
            print(path)
        return 0
    finally:
        log.removeHandler(handler)
        log.setLevel(previous_level)


if __name__ == "__main__":
    raise SystemExit(main())
