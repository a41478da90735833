"""The figures of :mod:`rnn_prune.report`, one function per figure.

Each function takes the runs (:class:`rnn_prune.report.RunData`) and returns a matplotlib
``Figure``, or raises :class:`SkipFigure` saying which columns no run logged. Figures are built with
the object-oriented API (``matplotlib.figure.Figure``), never pyplot, so drawing them from inside a
training process neither needs nor changes a GUI backend; ``Figure.savefig`` renders with Agg.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

if TYPE_CHECKING:
    from rnn_prune.report import RunData

__all__ = ["FIGURES", "SkipFigure"]


SNR_COLUMN = re.compile(r"^test/acc@(?P<snr>[-+]?\d+(?:\.\d+)?)dB$")
"""``test/acc@<snr>dB`` columns, e.g. ``test/acc@10dB``, ``test/acc@-5dB``."""


class SkipFigure(Exception):
    """The figure cannot be drawn from the given runs; the message says why."""


def _points(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _grid(count: int, *, width: float = 5.0, height: float = 3.8, extra: float = 0.0) -> tuple[Figure, list]:
    ncols = min(count, 3)
    nrows = math.ceil(count / ncols)
    figure = Figure(figsize=(width * ncols + extra, height * nrows), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[count:]:
        ax.set_visible(False)
    return figure, axes[:count]


def accuracy_vs_sparsity(runs: Sequence[RunData]) -> Figure:
    """``val/acc`` against ``prune/sparsity``, one line per run."""
    usable = [run for run in runs if run.has("val/acc") and run.sparsity() is not None]
    if not usable:
        raise SkipFigure("no run logged both val/acc and prune/sparsity")
    figure = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = figure.subplots()
    for run in usable:
        x, y = _points(run.sparsity(), run.columns["val/acc"])
        ax.plot(x, y, marker="o", markersize=3, label=run.name)
    ax.set(xlabel="sparsity (prune/sparsity)", ylabel="validation accuracy (val/acc)")
    ax.set_title("Validation accuracy against sparsity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def _measure_vs_sparsity(runs: Sequence[RunData], measure: str, label: str) -> Figure:
    usable = [
        run for run in runs if run.sparsity() is not None and any(run.has(f"graph/{g}/{measure}") for g in run.graphs)
    ]
    if not usable:
        raise SkipFigure(f"no run logged both prune/sparsity and graph/<graph>/{measure}")
    graphs = sorted({g for run in usable for g in run.graphs if run.has(f"graph/{g}/{measure}")})
    cmap = colormaps["tab10" if len(graphs) <= 10 else "tab20"]
    colors = {g: cmap(i % cmap.N) for i, g in enumerate(graphs)}
    figure, axes = _grid(len(usable), extra=2.5)
    for ax, run in zip(axes, usable, strict=True):
        sparsity = run.sparsity()
        losses = run.ramanujan_losses()
        for graph in graphs:
            values = run.measure(graph, measure)
            if values is None:
                continue
            x, y = _points(sparsity, values)
            ax.plot(x, y, color=colors[graph], linewidth=1.2)
            if graph in losses and np.isfinite(values[losses[graph]]):
                i = losses[graph]
                ax.plot(
                    sparsity[i],
                    values[i],
                    marker="v",
                    markersize=9,
                    color=colors[graph],
                    markeredgecolor="black",
                    linestyle="none",
                )
        ax.axhline(0.0, color="black", linewidth=0.8, linestyle="--")
        ax.set(xlabel="sparsity (prune/sparsity)", ylabel=label, title=run.name)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[g], label=g) for g in graphs]
    handles.append(
        Line2D(
            [],
            [],
            marker="v",
            color="grey",
            markeredgecolor="black",
            linestyle="none",
            label="lost Ramanujan property",
        )
    )
    figure.legend(handles=handles, loc="outside right upper", fontsize="small")
    figure.suptitle(f"{label} of every graph against sparsity")
    return figure


def delta_r_vs_sparsity(runs: Sequence[RunData]) -> Figure:
    """Δr of every graph against sparsity, a panel per run."""
    return _measure_vs_sparsity(runs, "delta_r", "Δr (graph/<graph>/delta_r)")


def normalized_gap_vs_sparsity(runs: Sequence[RunData]) -> Figure:
    """Normalized spectral gap of every graph against sparsity, a panel per run."""
    return _measure_vs_sparsity(runs, "normalized_gap", "normalized gap")


def _never_pruned(run: RunData) -> bool:
    sparsity = run.sparsity()
    return sparsity is not None and bool(np.nanmax(sparsity) == 0)


def guarded_vs_unguarded(runs: Sequence[RunData]) -> Figure:
    """Accuracy and Ramanujan share against sparsity: guarded runs solid, unguarded dashed."""
    usable = [run for run in runs if run.has("val/acc") and run.sparsity() is not None]
    guarded = [run for run in usable if run.guarded]
    unguarded = [run for run in usable if not run.guarded]
    if not guarded or not unguarded:
        raise SkipFigure("needs a guarded run (logged prune/<graph>/stopped_epoch) and an unguarded one")
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    acc_ax, share_ax = figure.subplots(1, 2)
    for run in [*unguarded, *guarded]:
        style = {
            "linestyle": "-" if run.guarded else "--",
            "marker": "o" if run.guarded else "s",
            "markersize": 3,
            "label": f"{run.name} ({'guarded' if run.guarded else 'dense' if _never_pruned(run) else 'unguarded'})",
        }
        (line,) = acc_ax.plot(*_points(run.sparsity(), run.columns["val/acc"]), **style)
        fraction = run.ramanujan_fraction()
        if fraction is not None:
            share_ax.plot(*_points(run.sparsity(), fraction), color=line.get_color(), **style)
    acc_ax.set(xlabel="sparsity", ylabel="validation accuracy (val/acc)", title="Accuracy")
    share_ax.set(
        xlabel="sparsity",
        ylabel="share of Ramanujan graphs",
        title="Ramanujan share",
        ylim=(-0.05, 1.05),
    )
    for ax in (acc_ax, share_ax):
        ax.grid(alpha=0.3)
    acc_ax.legend(fontsize="small")
    figure.suptitle("Guarded against unguarded pruning")
    return figure


def accuracy_vs_snr(runs: Sequence[RunData]) -> Figure:
    """Final ``test/acc@<snr>dB`` against SNR per run; ``test/acc`` as a star at "clean"."""
    curves = []
    for run in runs:
        points = sorted(
            (float(match["snr"]), run.last(key))
            for key in run.columns
            if (match := SNR_COLUMN.match(key)) and run.last(key) is not None
        )
        if points:
            curves.append((run, points))
    if not curves:
        raise SkipFigure("no run logged test/acc@<snr>dB")
    snrs = sorted({snr for _, points in curves for snr, _ in points})
    step = (snrs[-1] - snrs[0]) / max(len(snrs) - 1, 1) if len(snrs) > 1 else 5.0
    clean_x = snrs[-1] + max(step, 1.0)
    figure = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = figure.subplots()
    for run, points in curves:
        sparsity = run.last("prune/sparsity")
        dense = sparsity is None or sparsity == 0
        label = f"{run.name} ({'dense' if dense else f'sparsity {sparsity:.2f}'})"
        x, y = zip(*points, strict=True)
        (line,) = ax.plot(x, y, marker="o", linestyle="--" if dense else "-", label=label)
        clean = run.last("test/acc")
        if clean is not None:
            ax.plot(
                [clean_x],
                [clean],
                marker="*",
                markersize=12,
                color=line.get_color(),
                linestyle="none",
            )
    ax.set_xticks([*snrs, clean_x], [f"{s:g}" for s in snrs] + ["clean"])
    ax.set(xlabel="SNR (dB)", ylabel="test accuracy", title="Test accuracy against noise")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure


FIGURES: dict[str, Callable[[Sequence[RunData]], Figure]] = {
    "accuracy_vs_sparsity": accuracy_vs_sparsity,
    "delta_r_vs_sparsity": delta_r_vs_sparsity,
    "normalized_gap_vs_sparsity": normalized_gap_vs_sparsity,
    "guarded_vs_unguarded": guarded_vs_unguarded,
    "accuracy_vs_snr": accuracy_vs_snr,
}
"""Figure name (the PNG's stem) -> the function that draws it, in the report's order."""
