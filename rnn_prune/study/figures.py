"""The study's figures: final results per cell on a sparsity axis, from ``study.csv``'s rows.

Every figure puts target sparsity on a log scale of density (1 − sparsity), so 0.9, 0.99 and
0.995 are spread out instead of crowded against 1, and labels the ticks with the sparsity. The
dense cells are a horizontal reference line (with their spread over seeds), never a panel of
their own. Each criterion × guard is one line: the mean over seeds, a band of ±1 standard deviation.
Built with ``matplotlib.figure.Figure`` (never pyplot), as the report's figures are; the speech
figure reuses the report's ``accuracy_vs_snr``, and the axes its density helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rnn_prune import keys
from rnn_prune.report import RunData
from rnn_prune.report.plots import (
    SkipFigure,
    density,
    plot_vs_density,
    reference_line,
    set_density_axis,
)
from rnn_prune.report.plots import accuracy_vs_snr as report_accuracy_vs_snr
from rnn_prune.study import stats
from rnn_prune.study.grid import DENSE
from rnn_prune.study.results import snr_columns

__all__ = ["FIGURES", "SkipFigure"]

Rows = Sequence[Mapping[str, Any]]


def _dense_reference(ax: Axes, rows: Rows, column: str, label: str) -> None:
    values = [r[column] for r in rows if r.get("kind") == DENSE and stats.is_number(r.get(column))]
    if not values:
        return
    reference_line(ax, float(np.mean(values)), label=label, color="black", linestyle="--")
    if len(values) > 1:
        ax.axhspan(min(values), max(values), color="black", alpha=0.08, linewidth=0)


def _plot_lines(ax: Axes, found: list[stats.Line], mark: Callable[[stats.Line], float | None], mark_label: str) -> None:
    """Each line's mean over seeds, a ±1 standard deviation band, and an ``X`` at its break point."""
    marks = []
    for line in found:
        xs, mean, std = line.summary()
        # A guard stops short of its target: draw its cells where they really are (their mean final
        # sparsity), not at a sparsity they never reached.
        reached = np.array([np.mean(line.finals.get(x) or [x]) for x in xs])
        order = np.argsort(reached, kind="stable")
        drawn = plot_vs_density(ax, reached[order], mean[order], spread=std[order] if (std > 0).any() else None,
                                label=line.label)  # fmt: skip
        if (at := mark(line)) is not None:
            index = list(xs).index(at)
            marks.append((reached[index], mean[index], drawn.get_color()))
    style = {"marker": "X", "markersize": 12, "markeredgecolor": "black", "linestyle": "none"}
    for at, y, color in marks:  # after the lines, so the legend lists the marker last
        ax.plot(density(at), y, color=color, **style)
    if marks:  # one grey legend entry for the markers of every colour
        ax.plot([], [], color="lightgrey", label=mark_label, **style)
    set_density_axis(ax, sorted({s for line in found for s in line.points}))
    ax.grid(alpha=0.3)


def accuracy_vs_sparsity(rows: Rows) -> Figure:
    """Test accuracy of every criterion × guard against sparsity, dense as reference, breaks marked."""
    found = stats.lines(rows, "test_acc")
    if not found:
        raise SkipFigure("no pruned cell has a test accuracy")
    reference, _ = stats.accuracy_drops(rows)
    figure = Figure(figsize=(7, 4.8), layout="constrained")
    ax = figure.subplots()
    _dense_reference(ax, rows, "test_acc", "dense (sparsity 0)")

    def accuracy_break(line: stats.Line) -> float | None:
        xs, mean, _ = line.summary()
        return None if reference is None else stats.break_point(xs, mean, reference - stats.ACCURACY_BREAK)

    _plot_lines(ax, found, accuracy_break, f"accuracy break (> {stats.ACCURACY_BREAK * 100:g} point below dense)")
    ax.set_ylabel("test accuracy of the final model")
    ax.set_title("Test accuracy of the final model against sparsity\n(mean over seeds, band: ±1 sd)")
    ax.legend(fontsize="small")
    return figure


def expansion_vs_sparsity(rows: Rows) -> Figure:
    """Ramanujan share and min Δr at the final epoch against sparsity, the expansion break marked."""
    panels = [(column, found) for column in ("ramanujan_share", "min_delta_r") if (found := stats.lines(rows, column))]
    if not panels:
        raise SkipFigure("no pruned cell has a Ramanujan share or a min Δr")
    figure = Figure(figsize=(7, 3.6 * len(panels)), layout="constrained")
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False).ravel()
    titles = {"ramanujan_share": "share of Ramanujan graphs\n(among graphs with a verdict)",
              "min_delta_r": "min Δr over graphs"}  # fmt: skip
    for ax, (column, found) in zip(axes, panels, strict=True):
        _dense_reference(ax, rows, column, "dense (sparsity 0)")

        def expansion_break(line: stats.Line, column: str = column) -> float | None:
            if column != "ramanujan_share":
                return None
            xs, mean, _ = line.summary()
            return stats.break_point(xs, mean, 1.0)

        _plot_lines(ax, found, expansion_break, "expansion break (share < 1)")
        if column == "min_delta_r":
            ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel(titles[column])
        ax.legend(fontsize="small")
    for ax in axes[:-1]:  # one shared x-axis label, under the last panel
        ax.set_xlabel("")
    figure.suptitle("Expansion of the final model against sparsity\n(mean over seeds, band: ±1 sd)")
    return figure


def _mean_at(rows: Rows, criterion: str, guard: str) -> dict[float, float]:
    found = [line for line in stats.lines(rows, "test_acc") if (line.criterion, line.guard) == (criterion, guard)]
    return {s: float(np.mean(v)) for s, v in found[0].points.items()} if found else {}


def pairwise_differences(rows: Rows) -> Figure:
    """Magnitude minus random, and guarded minus unguarded, test accuracy at equal sparsity."""
    criteria = sorted({str(r["criterion"]) for r in rows if r.get("kind") != DENSE})
    guards = sorted({str(r["guard"]) for r in rows if r.get("kind") != DENSE})
    panels = []
    if {"magnitude", "random"} <= set(criteria):
        pairs = [(f"guard {g}", _mean_at(rows, "magnitude", g), _mean_at(rows, "random", g)) for g in guards]
        panels.append(("magnitude − random", pairs))
    if {"none", "ramanujan"} <= set(guards):
        pairs = [(c, _mean_at(rows, c, "ramanujan"), _mean_at(rows, c, "none")) for c in criteria]
        panels.append(("guarded − unguarded\n(a guarded run stops below its target: see the table)", pairs))
    drawn = []
    for title, pairs in panels:
        series = []
        for label, first, second in pairs:
            common = sorted(set(first) & set(second))
            if common:
                series.append((label, np.array(common), np.array([first[s] - second[s] for s in common])))
        if series:
            drawn.append((title, series))
    if not drawn:
        raise SkipFigure("needs both magnitude and random, or both guard none and ramanujan, at a shared sparsity")
    figure = Figure(figsize=(6 * len(drawn), 4.5), layout="constrained")
    axes = figure.subplots(1, len(drawn), squeeze=False).ravel()
    for ax, (title, series) in zip(axes, drawn, strict=True):
        for label, xs, diff in series:
            plot_vs_density(ax, xs, diff, label=label)
        ax.axhline(0.0, color="black", linewidth=0.8)
        set_density_axis(ax, sorted({float(s) for _, xs, _ in series for s in xs}))
        ax.grid(alpha=0.3)
        ax.set(ylabel="difference in mean test accuracy", title=title)
        ax.legend(fontsize="small")
    figure.suptitle("Pruning choices at equal target sparsity (above 0: the first is more accurate)")
    return figure


EXPANSION_COLUMNS: dict[str, str] = {
    "min_delta_r": "min Δr over the pruned graphs",
    "min_delta_r_rel": "min Δr / r (the analysis' primary measure)",
}
"""``study.csv`` columns of expansion that :func:`accuracy_vs_expansion` plots accuracy against, with
their axis labels (a column no cell has is skipped)."""
GUARD_MARKERS = ("o", "s", "^", "D", "v")
"""Markers of the guards of a study, in sorted order (``none`` sorts first: circles)."""


def accuracy_vs_expansion(rows: Rows) -> Figure:
    """Test accuracy against expansion at each target sparsity: one point per cell, coloured by criterion.

    At one sparsity, cells differ only in their criterion (and seed): where the structural
    criteria dial expansion with the degrees fixed, a slope here is accuracy following expansion
    when nothing else changes. One panel per sparsity (columns) and expansion measure (rows), the
    dense cells' mean accuracy as a reference; markers tell guards apart.
    """
    pruned = [r for r in rows if r.get("kind") != DENSE and stats.is_number(r.get("test_acc"))]
    measures = [(c, label) for c, label in EXPANSION_COLUMNS.items() if any(stats.is_number(r.get(c)) for r in pruned)]
    if not measures:
        raise SkipFigure("no pruned cell has both a test accuracy and an expansion measure")
    sparsities = sorted({float(r["target_sparsity"]) for r in pruned})
    criteria = sorted({str(r.get("criterion")) for r in pruned})
    guards = sorted({str(r.get("guard")) for r in pruned})
    figure = Figure(figsize=(2.5 + 3.6 * len(sparsities), 1.0 + 3.2 * len(measures)), layout="constrained")
    axes = figure.subplots(len(measures), len(sparsities), squeeze=False, sharey=True)
    for (column, label), row_axes in zip(measures, axes, strict=True):
        for sparsity, ax in zip(sparsities, row_axes, strict=True):
            _dense_reference(ax, rows, "test_acc", "dense (sparsity 0)")
            for c, criterion in enumerate(criteria):
                for g, guard in enumerate(guards):
                    at = [r for r in pruned if float(r["target_sparsity"]) == sparsity
                          and str(r.get("criterion")) == criterion and str(r.get("guard")) == guard
                          and stats.is_number(r.get(column))]  # fmt: skip
                    if at:
                        name = criterion if len(guards) == 1 else f"{criterion}, guard {guard}"
                        ax.scatter([r[column] for r in at], [r["test_acc"] for r in at], color=f"C{c % 10}",
                                   marker=GUARD_MARKERS[g % len(GUARD_MARKERS)], label=name, alpha=0.8)  # fmt: skip
            if column.startswith("min_delta_r"):  # Δr = 0 is the Ramanujan bound, for Δr / r too
                ax.axvline(0.0, color="grey", linewidth=0.8)
            ax.set(title=f"sparsity {sparsity:g}", xlabel=label)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # long tick labels such as −1.75 must not touch
            ax.grid(alpha=0.3)
        row_axes[0].set_ylabel("test accuracy of the final model")
    handles, labels = {}, []
    for ax in axes.ravel():
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            if text not in handles:
                handles[text] = handle
                labels.append(text)
    figure.legend([handles[t] for t in labels], labels, loc="outside right upper", fontsize="small")
    figure.suptitle("Test accuracy against expansion\nat equal sparsity (one point per cell)")
    return figure


def accuracy_vs_snr(rows: Rows) -> Figure:
    """Speech: test accuracy against SNR, a line per sparsity (mean over the cells there)."""
    columns = snr_columns(rows)
    if not columns:
        raise SkipFigure("no cell logged test/acc@<snr>dB")
    by_sparsity: dict[float, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_sparsity.setdefault(float(row["target_sparsity"]), []).append(row)
    runs = []
    for sparsity, group in sorted(by_sparsity.items()):
        means = {}
        for key, column in [(keys.TEST_ACC, "test_acc"), *((c, c) for c in columns)]:  # test_acc: "clean"
            values = [r[column] for r in group if stats.is_number(r.get(column))]
            if values:
                means[key] = float(np.mean(values))
        means[keys.SPARSITY] = sparsity
        name = "reference" if sparsity == 0 else f"mean of {len(group)} cells"
        runs.append(RunData.from_rows(name, [{keys.EPOCH: 0, **means}]))
    return report_accuracy_vs_snr(runs)


FIGURES: dict[str, Callable[[Rows], Figure]] = {
    "accuracy_vs_sparsity": accuracy_vs_sparsity,
    "expansion_vs_sparsity": expansion_vs_sparsity,
    "pruning_choices": pairwise_differences,
    "accuracy_vs_expansion": accuracy_vs_expansion,
    "accuracy_vs_snr": accuracy_vs_snr,
}
"""Figure name (the PNG's stem) -> the function that draws it from the study's rows."""
