"""Rebuild ``study.csv``, ``analysis.json``, the figures and ``summary.md`` from every finished cell under ``OUT/runs``.

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
from rnn_prune.study import analysis, figures, stats
from rnn_prune.study.grid import DENSE
from rnn_prune.study.results import (
    SPARSITY_TOLERANCE,
    atomic_write,
    study_rows,
    write_json_atomic,
    write_study_csv,
    write_text_atomic,
)
from rnn_prune.study.runner import load_results

__all__ = ["ANALYSIS", "build_outputs", "config_section"]

ANALYSIS = "analysis.json"
"""The machine-readable answer (:func:`rnn_prune.study.analysis.analyse`); ``summary.md`` renders it."""

log = logging.getLogger(__name__)

Rows = Sequence[Mapping[str, Any]]


def _save_figure(figure: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: save_figure(figure, tmp), suffix=".png")


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _correlation(corr: Mapping[str, float] | None) -> str:
    return "undefined" if corr is None else f"ρ = {corr['rho']:+.2f} (p = {corr['p']:.3g}, n = {corr['n']})"


def _statistics(result: Mapping[str, Any], rows: Rows) -> list[str]:
    """The analysis (values from ``analysis.json``) in words, then the descriptive correlations and breaks."""
    reference = result["dense_reference"]
    twins = result["twins_counted_once"]
    lines = [*analysis.markdown(result), ""]
    lines.append(f"Dense test accuracy (mean over seeds): {reference:.4f}; a cell's accuracy drop is that minus its "
                 "test accuracy." if reference is not None else
                 "No dense cell (sparsity 0) finished: drops are measured from accuracy 1 (add `--sparsity 0`); the "
                 "effects above do not depend on the reference.")  # fmt: skip
    if twins:
        lines.append(f"{twins} guarded cell(s) whose guard never fired are the same runs as their unguarded twins "
                     "and are counted once.")  # fmt: skip
    lines += ["", "Description, not the test: Spearman rank correlations of the drop with each measure across "
              "cells (`scipy.stats.spearmanr`; rank partial correlations with the final sparsity, and the "
              "criterion, held fixed):", ""]  # fmt: skip
    for column, label in analysis.MEASURES.items():
        described = result["description"][column]
        per_criterion = "; ".join(f"{c}: {_correlation(corr)}" for c, corr in described["per_criterion"].items())
        lines.append(f"- **Drop vs {label}**: raw {_correlation(described['raw'])}; final sparsity held fixed "
                     f"{_correlation(described['sparsity_fixed'])}; final sparsity and criterion held fixed "
                     f"{_correlation(described['sparsity_and_criterion_fixed'])}"
                     + (f"; per criterion (final sparsity held fixed) {per_criterion}" if per_criterion else "")
                     + ".")  # fmt: skip
    lines += ["", "Break points (accuracy: first sparsity whose mean test accuracy is more than "
              f"{stats.ACCURACY_BREAK * 100:g} point below dense; expansion: first sparsity whose mean "
              "Ramanujan share is below 1):", ""]  # fmt: skip
    if reference is None:
        return [*lines, "- no dense reference, no accuracy break."]
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
              "min Δr", "min Δr / r", "mean IMDB (graphs with one)", "first loss at sparsity (epoch)"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        first = "never" if r.get("first_loss_sparsity") is None else \
            f"{_fmt(r['first_loss_sparsity'])} ({r.get('first_loss_epoch')})"  # fmt: skip
        cells = [r["cell"], f"{r['target_sparsity']:g}", _fmt(r.get("final_sparsity")), _fmt(r.get("val_acc")),
                 _fmt(r.get("test_acc")), _share(r), _fmt(r.get("min_delta_r")), _fmt(r.get("min_delta_r_rel")),
                 _imdb(r), first]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _means(rows: Rows) -> list[str]:
    """Test accuracy per criterion, guard and target sparsity over the seeds, with 95 % t intervals,
    and the mean expansion: the comparison of families a reader looks for first (description, the
    test is the analysis above)."""
    groups: dict[tuple[str, str, float], list[Mapping[str, Any]]] = {}
    for r in rows:
        criterion = "dense" if r.get("kind") == DENSE else str(r.get("criterion"))
        groups.setdefault((criterion, str(r.get("guard") or "none"), float(r["target_sparsity"])), []).append(r)
    header = ["criterion", "guard", "target", "cells", "test acc, mean [95 % CI]", "min Δr / r, mean", "min Δr, mean"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (criterion, guard, sparsity), group in sorted(groups.items(), key=lambda item: (item[0][2], item[0][:2])):
        accuracy = stats.mean_interval([r.get("test_acc") for r in group])
        expansion = [stats.mean_interval([r.get(c) for r in group]) for c in ("min_delta_r_rel", "min_delta_r")]
        cells = [criterion, guard, f"{sparsity:g}", str(len(group)), "n/a" if accuracy is None else str(accuracy),
                 *("n/a" if e is None else f"{e.mean:+.3f}" for e in expansion)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def config_section(config: str, rows: Rows, images: Mapping[str, Path], result: Mapping[str, Any]) -> str:
    """The Markdown of one config: settings, the analysis ``result`` rendered, break points, table, figures."""
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
    stopped = [f"{r['cell']} ({r['stop_reason']})" for r in rows if r.get("stop_reason")]
    if stopped:
        lines.append(f"**Stopped before their last epoch:** {'; '.join(stopped)}.")
    lines += ["", "### The question: does accuracy follow expansion?", "", *_statistics(result, rows), "",
              "### By criterion and sparsity (mean over seeds)", "", *_means(rows), "",
              "### Cells", "", *_table(rows), ""]  # fmt: skip
    lines += [f"![{name}]({path.name})" for name, path in images.items()]
    return "\n".join(lines) + "\n"


def build_outputs(out: Path) -> list[Path]:
    """Write ``study.csv``, ``analysis.json``, one PNG per figure with data, and ``summary.md``; return their paths.

    With several configs in ``out`` each gets its own ``<config stem>_analysis.json`` (as its figures
    get their prefix) and ``analysis.json`` analyses them together, each config its own strata (the
    study's one answer); with one config, it is ``analysis.json``.
    """
    rows = study_rows(list(load_results(out)))
    if not rows:
        raise ValueError(f"{out}: no finished cell (runs/*/result.json) to report on")
    write_study_csv(out / "study.csv", rows)
    written = [out / "study.csv"]
    configs = sorted({r["config"] for r in rows})
    sections = []
    if len(configs) > 1:  # the study's one answer: every config, each its own strata
        pooled = {"configs": configs, **analysis.analyse(rows)}
        write_json_atomic(out / ANALYSIS, pooled)
        written.append(out / ANALYSIS)
        sections.append("\n".join(["## Every config together", "", *analysis.markdown(pooled), ""]))
    for config in configs:
        group = [r for r in rows if r["config"] == config]
        prefix = "" if len(configs) == 1 else f"{Path(config).stem}_"
        result = {"config": config, **analysis.analyse(group)}
        write_json_atomic(out / f"{prefix}{ANALYSIS}", result)
        written.append(out / f"{prefix}{ANALYSIS}")
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
        sections.append(config_section(config, group, images, result))
    write_text_atomic(out / "summary.md", "# Pruning study\n\n" + "\n".join(sections))
    return [*written, out / "summary.md"]
