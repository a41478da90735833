"""The report's outputs: the figures, the Markdown table, and the command line that writes both."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnn_prune import keys
from rnn_prune.report import plots
from rnn_prune.report.runs import ReportError, RunData, load_run

__all__ = ["main", "make_figures", "summary_table"]

log = logging.getLogger("rnn_prune.report")

HEADER = (
    "run",
    "guarded",
    "final sparsity",
    "final val acc",
    "best val acc",
    "Ramanujan share (end)",
    "graphs without verdict (end)",
    "first Ramanujan loss at sparsity",
    "test acc",
)
"""The summary table's columns, in order."""


def make_figures(runs: Sequence[RunData], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write every figure of :data:`~rnn_prune.report.plots.FIGURES` the runs have data for.

    Returns figure name -> PNG path. Figures no run has the columns for are skipped with a note on
    the ``rnn_prune.report`` logger.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for figure_name, plot in plots.FIGURES.items():
        try:
            figure = plot(runs)
        except plots.SkipFigure as skip:
            log.info("skipped %s.png: %s", figure_name, skip)
            continue
        written[figure_name] = plots.save_figure(figure, out / f"{figure_name}.png")
    return written


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _row(run: RunData) -> list[str]:
    best = float(np.nanmax(run.columns[keys.VAL_ACC])) if run.has(keys.VAL_ACC) else None
    share = run.final_ramanujan_share()
    if not run.measures_verdicts():
        loss = "n/a"
    elif (first := run.first_loss()) is None:
        loss = "never"
    else:
        graph, epoch, sparsity = first
        loss = f"{_fmt(sparsity)} ({graph}, epoch {epoch})"
    return [
        run.name,
        "yes" if run.guarded else "no",
        _fmt(run.last(keys.SPARSITY)),
        _fmt(run.last(keys.VAL_ACC)),
        _fmt(best),
        _fmt(share.fraction if share is not None else None),
        "n/a" if share is None else str(share.num_undefined),
        loss,
        _fmt(run.final(keys.TEST_ACC)),
    ]


def summary_table(runs: Sequence[RunData]) -> str:
    """A Markdown table with a row per run; numbers to 4 decimals, ``n/a`` where not logged.

    The Ramanujan share is over the graphs with a verdict at the last measured epoch; the graphs
    without one (average degree below 3) are counted beside it. ``test acc`` is an evaluation
    run's (``test --ckpt_path …``) where one sits beside the training, else the training's own.
    """
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for run in runs:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in _row(run)) + " |")
    return "\n".join(lines) + "\n"


def _unique_names(runs: list[RunData]) -> None:
    seen: dict[str, int] = {}
    for run in runs:
        count = seen.get(run.name, 0)
        seen[run.name] = count + 1
        if count:
            run.name = f"{run.name} ({count + 1})"


def _sources(run: RunData) -> str:
    read = ", ".join(f"`{path}`" for path in run.sources or [run.source])
    tests = ", ".join(f"`{path}`" for path in run.evaluation_sources)
    return f"- {run.name}: {read}" + (f"; test results from {tests}" if tests else "")


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
        sources = "\n".join(_sources(run) for run in runs)
        images = "\n".join(f"![{name}]({path.name})" for name, path in figures.items())
        summary = args.out / "summary.md"
        summary.write_text(f"# Pruning report\n\n{table}\nRuns read from:\n\n{sources}\n\n{images}\n")
        for path in [*figures.values(), summary]:
            print(path)
        return 0
    finally:
        log.removeHandler(handler)
        log.setLevel(previous_level)
