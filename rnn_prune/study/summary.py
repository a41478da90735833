"""Rebuild ``study.csv``, the figures and ``summary.md`` from every finished cell under ``OUT/runs``.

Everything here is derived from the cells' ``result.json`` files, never from the invocation that
ran them, so studies run in pieces (two grids into one folder, SLURM array tasks, a resumed study)
report as one. A folder holding several configs gets one section and one set of figures per config.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rnn_prune.report.plots import save_figure
from rnn_prune.study import figures, stats
from rnn_prune.study.grid import DENSE
from rnn_prune.study.results import SPARSITY_TOLERANCE, atomic_write, study_rows, write_study_csv, write_text_atomic
from rnn_prune.study.runner import load_results

__all__ = ["build_outputs", "config_section"]

log = logging.getLogger(__name__)

Rows = Sequence[Mapping[str, Any]]


def _save_figure(figure: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: save_figure(figure, tmp), suffix=".png")


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


MIN_WITHIN = 5
"""Fewer cells than this at one sparsity and no within-sparsity correlation is given (scipy's p is
asymptotic: with 4 cells a perfect rank order reads p = 0)."""


def _statistics(rows: Rows) -> list[str]:
    runs = stats.distinct_runs(rows)  # keeps every dense row, so the reference is the same
    reference, drops = stats.accuracy_drops(runs)
    if reference is None:
        return ["No dense cell (sparsity 0) finished, so there is no accuracy drop to correlate: add `--sparsity 0`."]
    # "Equal sparsity" is the sparsity a model really has: a guard stops short of its target, and
    # its cells must not be compared with unguarded ones at the target they never reached. The
    # criterion drives both expansion and accuracy (random masks expand well and lose more), so the
    # reading holds it fixed too.
    sparsity = [r["final_sparsity"] if stats.is_number(r.get("final_sparsity")) else r["target_sparsity"] for r in runs]
    targets = [r["target_sparsity"] for r in runs]
    criteria = [str(r.get("criterion")) for r in runs]
    twins = len(rows) - len(runs)
    lines = [f"Dense test accuracy (mean over seeds): {reference:.4f}. The accuracy drop of a cell is the dense "
             "mean minus its test accuracy. Spearman rank correlations across cells (`scipy.stats.spearmanr`; "
             "the claim predicts a negative ρ)"
             + (f"; {twins} guarded cell(s) whose guard never fired are the same runs as their unguarded twins "
                "and are counted once" if twins else "") + ":", ""]  # fmt: skip
    readings = {}
    for column, label in (("ramanujan_share", "the share of Ramanujan graphs"), ("min_delta_r", "min Δr")):
        values = [r.get(column) for r in runs]
        raw = stats.spearman(drops, values)
        by_sparsity = stats.partial_spearman(drops, values, sparsity)
        partial = stats.partial_spearman(drops, values, sparsity, criteria)
        lines.append(f"- **Drop vs {label}**: raw {raw or 'undefined (fewer than 3 cells or no spread)'}; "
                     f"final sparsity held fixed {by_sparsity or 'undefined'}; final sparsity and pruning "
                     f"criterion held fixed (rank partial correlation) {partial or 'undefined'}.")  # fmt: skip
        per_criterion, strata = [], []
        for criterion in sorted({c for c, r in zip(criteria, runs, strict=True) if r.get("kind") != "dense"}):
            at = [i for i, r in enumerate(runs) if r.get("kind") == "dense" or criteria[i] == criterion]
            corr = stats.partial_spearman([drops[i] for i in at], [values[i] for i in at], [sparsity[i] for i in at])
            if corr is not None:
                per_criterion.append(f"{criterion}: {corr}")
                strata.append(corr)
        if per_criterion:
            lines.append(f"  Per criterion (final sparsity held fixed): {'; '.join(per_criterion)}.")
        within = []
        for level in sorted({s for s in targets if s > 0}):
            at = [i for i, (t, s) in enumerate(zip(targets, sparsity, strict=True))
                  if t == level and abs(s - level) <= stats.SPARSITY_SHORTFALL]  # fmt: skip
            corr = stats.spearman([drops[i] for i in at], [values[i] for i in at]) if len(at) >= MIN_WITHIN else None
            if corr is not None:
                within.append(f"{level:g}: {corr}")
        if within:
            lines.append("  Within each sparsity (cells that reached it, across criteria, guards, seeds): "
                         f"{'; '.join(within)}.")  # fmt: skip
        # Stratified by criterion when there are several: an additive model across criteria would
        # assume expansion and accuracy fall with sparsity at one rate for magnitude and random masks.
        readings[label] = stats.verdict(raw, strata if len(strata) > 1 else partial)
        lines.append(f"  Reading: {readings[label]}.")
    lines[:0] = [f"**Answer: {stats.answer(readings)}**", ""]
    lines += ["", "Break points (accuracy: first sparsity whose mean test accuracy is more than "
              f"{stats.ACCURACY_BREAK * 100:g} point below dense; expansion: first sparsity whose mean "
              "Ramanujan share is below 1):", ""]  # fmt: skip
    shares = {(line.criterion, line.guard): line for line in stats.lines(rows, "ramanujan_share")}
    for line in stats.lines(rows, "test_acc"):
        xs, mean, _ = line.summary()
        accuracy = stats.break_point(xs, mean, reference - stats.ACCURACY_BREAK)
        share = shares.get((line.criterion, line.guard))
        expansion = stats.break_point(*share.summary()[:2], 1.0) if share is not None else None
        lines.append(f"- {line.label}: {stats.compare_breaks(accuracy, expansion)}.")
    return lines


def _share(row: Mapping[str, Any]) -> str:
    """The share with how many graphs had a verdict: a share of 1 over 2 of 12 graphs says little."""
    defined, undefined = row.get("ramanujan_defined"), row.get("ramanujan_undefined")
    if defined is None or undefined is None:
        return _fmt(row.get("ramanujan_share"))
    return f"{_fmt(row.get('ramanujan_share'))} ({defined} of {defined + undefined})"


def _imdb(row: Mapping[str, Any]) -> str:
    """The mean IMDB with how many graphs had one at the final epoch (sparse graphs often have none)."""
    defined, undefined = row.get("imdb_defined"), row.get("imdb_undefined")
    if defined is None or undefined is None:
        return _fmt(row.get("mean_imdb"))
    return f"{_fmt(row.get('mean_imdb'))} ({defined} of {defined + undefined})"


def _table(rows: Rows) -> list[str]:
    header = ["cell", "target", "final sparsity", "val acc", "test acc", "Ramanujan share (graphs with a verdict)",
              "min Δr", "mean IMDB (graphs with one)", "first loss at sparsity (epoch)"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        first = "never" if r.get("first_loss_sparsity") is None else \
            f"{_fmt(r['first_loss_sparsity'])} ({r.get('first_loss_epoch')})"  # fmt: skip
        cells = [r["cell"], f"{r['target_sparsity']:g}", _fmt(r.get("final_sparsity")), _fmt(r.get("val_acc")),
                 _fmt(r.get("test_acc")), _share(r), _fmt(r.get("min_delta_r")),
                 _imdb(r), first]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def config_section(config: str, rows: Rows, images: Mapping[str, Path]) -> str:
    """The Markdown of one config: settings, the statistic in words, break points, table, figures."""
    notes = sorted({r["schedule_note"] for r in rows if r.get("schedule_note")})
    missed = [r["cell"] for r in rows if r.get("kind") != DENSE and r.get("guard") in (None, "none")
              and not r.get("reached_target")]  # fmt: skip
    seeds = sorted({r["seed"] for r in rows})
    lines = [f"## `{config}`", "",
             f"{len(rows)} finished cells, seeds {', '.join(map(str, seeds))}; every number is the final epoch's "
             "(test: the last checkpoint, not the best)."]  # fmt: skip
    lines += [f"Schedule: {note}." for note in notes]
    if missed:
        lines.append(f"**Missed the target sparsity by more than {SPARSITY_TOLERANCE:g} (unguarded):** "
                     f"{', '.join(missed)}.")  # fmt: skip
    lines += ["", "### The question: does accuracy follow expansion?", "", *_statistics(rows), "",
              "### Cells", "", *_table(rows), ""]  # fmt: skip
    lines += [f"![{name}]({path.name})" for name, path in images.items()]
    return "\n".join(lines) + "\n"


def build_outputs(out: Path) -> list[Path]:
    """Write ``study.csv``, one PNG per figure with data, and ``summary.md``; return their paths."""
    rows = study_rows(list(load_results(out)))
    if not rows:
        raise ValueError(f"{out}: no finished cell (runs/*/result.json) to report on")
    write_study_csv(out / "study.csv", rows)
    written = [out / "study.csv"]
    configs = sorted({r["config"] for r in rows})
    sections = []
    for config in configs:
        group = [r for r in rows if r["config"] == config]
        prefix = "" if len(configs) == 1 else f"{Path(config).stem}_"
        images = {}
        for name, draw in figures.FIGURES.items():
            try:
                figure = draw(group)
            except figures.SkipFigure as skip:
                log.info("skipped %s%s.png: %s", prefix, name, skip)
                continue
            images[name] = out / f"{prefix}{name}.png"
            _save_figure(figure, images[name])
        written += images.values()
        sections.append(config_section(config, group, images))
    write_text_atomic(out / "summary.md", "# Pruning study\n\n" + "\n".join(sections))
    return [*written, out / "summary.md"]
