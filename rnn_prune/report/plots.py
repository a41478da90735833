"""The report's figures, one function per figure, and the drawing helpers they share with the study.

Each figure function takes the runs (:class:`~rnn_prune.report.runs.RunData`) and returns a
matplotlib ``Figure``, or raises :class:`SkipFigure` saying which columns no run logged. Figures are
built with the object-oriented API (``matplotlib.figure.Figure``), never pyplot, so drawing them from
inside a training process neither needs nor changes a GUI backend; ``Figure.savefig`` renders with Agg.

A run that was never pruned has nothing to plot *against* sparsity: it is drawn as a horizontal
reference line in the panels of the pruned runs, never as a panel of its own.

Helpers for other figures (``python -m rnn_prune.study`` draws with them):

- :func:`panel_grid`: a figure with ``count`` panels, no empty ones;
- :func:`set_density_axis` / :func:`plot_vs_density`: a metric against density ``1 − sparsity`` on a
  log scale, labelled in sparsity, so 0.9, 0.99 and 0.995 are spread apart instead of squeezed into
  the right edge;
- :func:`reference_line`, :func:`mark_sparsity`: a dense run's level, a break point;
- :func:`run_label`: a legend label that does not repeat itself (no "dense (dense)");
- :func:`save_figure`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator

from rnn_prune import keys
from rnn_prune.expansion.measures import delta_r
from rnn_prune.report.runs import RunData

__all__ = [
    "FIGURES",
    "SkipFigure",
    "accuracy_vs_snr",
    "accuracy_vs_sparsity",
    "delta_r_vs_sparsity",
    "density",
    "guarded_vs_unguarded",
    "mark_sparsity",
    "normalized_gap_vs_sparsity",
    "panel_grid",
    "plot_vs_density",
    "reference_line",
    "run_label",
    "save_figure",
    "set_density_axis",
]

MIN_DENSITY = 1e-4
"""Density at which a fully pruned point (sparsity 1) is drawn on the log axis."""


class SkipFigure(Exception):
    """The figure cannot be drawn from the given runs; the message says why."""


# --- helpers --------------------------------------------------------------------------------------


def run_label(name: str, kind: str | None = None) -> str:
    """``"<name> (<kind>)"``, or just ``name`` when it already says ``kind`` as a word.

    >>> run_label("dense", "dense"), run_label("run1", "guarded"), run_label("unguarded", "guarded")
    ('dense', 'run1 (guarded)', 'unguarded (guarded)')
    """
    if not kind or re.search(rf"(?<![\w]){re.escape(kind)}(?![\w])", name, flags=re.IGNORECASE):
        return name
    return f"{name} ({kind})"


def panel_grid(count: int, *, width: float = 5.0, height: float = 3.8, extra: float = 0.0,
               ncols: int = 3) -> tuple[Figure, list[Axes]]:  # fmt: skip
    """A constrained-layout figure with exactly ``count`` visible panels, at most ``ncols`` a row.

    Args:
        count: number of panels (>= 1).
        width, height: inches per panel; ``extra``: inches added to the width (e.g. for an outside legend).
    """
    if count < 1:
        raise ValueError(f"count={count} must be at least 1")
    ncols = min(count, ncols)
    nrows = math.ceil(count / ncols)
    figure = Figure(figsize=(width * ncols + extra, height * nrows), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[count:]:
        figure.delaxes(ax)
    return figure, axes[:count]


def density(sparsity: np.ndarray | Sequence[float] | float) -> np.ndarray:
    """``1 − sparsity``, clipped below at :data:`MIN_DENSITY` so a log axis can show it.

    >>> density([0.0, 0.9, 0.99, 1.0]).round(6).tolist()
    [1.0, 0.1, 0.01, 0.0001]
    """
    return np.clip(1.0 - np.asarray(sparsity, dtype=np.float64), MIN_DENSITY, None)


def set_density_axis(ax: Axes, sparsities: Sequence[float] | None = None, *,
                     label: str = "sparsity (log scale of density 1 − sparsity)") -> None:  # fmt: skip
    """Make ``ax``'s x-axis density ``1 − sparsity`` on a log scale, sparsity growing to the right.

    Ticks sit at ``sparsities`` (default: 0, 0.5, 0.9, 0.99, 0.999 within the data) and are
    labelled with the sparsity, so a reader reads sparsity while 0.9 → 0.99 → 0.999 get equal room.
    Draw with :func:`plot_vs_density` (or plot :func:`density` values yourself).
    """
    ax.set_xscale("log")
    left, right = ax.get_xlim()
    if not ax.xaxis_inverted():
        ax.invert_xaxis()
    if sparsities is None:
        lo, hi = sorted((left, right))
        sparsities = [s for s in (0.0, 0.5, 0.9, 0.99, 0.999, 0.9999) if lo * 0.999 <= 1 - s <= hi * 1.001]
    ticks = density(sparsities)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{s:g}" for s in sparsities])
    ax.set_xlabel(label)


def plot_vs_density(ax: Axes, sparsity: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, *,
                    spread: Sequence[float] | np.ndarray | None = None, **style) -> Line2D:  # fmt: skip
    """Plot ``values`` against :func:`density` of ``sparsity`` (NaN points dropped); with ``spread``
    (same shape, e.g. a standard deviation over seeds) a band ``values ± spread`` in the line's colour.

    ``style`` goes to ``Axes.plot`` (``label``, ``marker``, ``color``, ...). Call
    :func:`set_density_axis` once all lines are drawn. Returns the line.
    """
    x = density(sparsity)
    y = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    order = np.argsort(-x[keep])
    (line,) = ax.plot(x[keep][order], y[keep][order], **{"marker": "o", "markersize": 4, **style})
    if spread is not None:
        band = np.asarray(spread, dtype=np.float64)[keep][order]
        ok = np.isfinite(band)
        xs, ys = x[keep][order][ok], y[keep][order][ok]
        ax.fill_between(xs, ys - band[ok], ys + band[ok], color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def reference_line(ax: Axes, value: float, *, label: str | None = None, **style) -> Line2D:
    """A horizontal line at ``value`` (e.g. a dense run's accuracy), dotted grey unless styled."""
    return ax.axhline(value, **{"color": "grey", "linestyle": ":", "linewidth": 1.2, "label": label, **style})


def mark_sparsity(ax: Axes, sparsity: float, *, label: str | None = None, log_density: bool = True,
                  **style) -> Line2D:  # fmt: skip
    """A vertical line at ``sparsity`` (a break point): at its density on a density axis, else as is."""
    x = float(density(sparsity)) if log_density else sparsity
    return ax.axvline(x, **{"color": "black", "linestyle": "-.", "linewidth": 1.0, "label": label, **style})


def save_figure(figure: Figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Write ``figure`` as PNG (Agg, no pyplot) and return the path."""
    path = Path(path)
    figure.savefig(path, dpi=dpi)
    return path


def _points(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _kind(run: RunData) -> str:
    return "dense" if run.never_pruned else "guarded" if run.guarded else "unguarded"


# --- figures --------------------------------------------------------------------------------------


def accuracy_vs_sparsity(runs: Sequence[RunData]) -> Figure:
    """``val/acc`` against ``prune/sparsity``, one line per pruned run; dense runs as reference lines."""
    pruned = [run for run in runs if run.has(keys.VAL_ACC) and not run.never_pruned]
    if not pruned:
        raise SkipFigure(f"no run logged both {keys.VAL_ACC} and {keys.SPARSITY} (above 0)")
    figure = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = figure.subplots()
    for run in pruned:
        ax.plot(*_points(run.sparsity(), run.columns[keys.VAL_ACC]), marker="o", markersize=3, label=run.name)
    for run in runs:
        if run.never_pruned and run.has(keys.VAL_ACC):
            reference_line(ax, run.last(keys.VAL_ACC), label=f"{run_label(run.name, 'dense')}, final")
    ax.set(xlabel=f"sparsity ({keys.SPARSITY})", ylabel=f"validation accuracy ({keys.VAL_ACC})")
    ax.set_title("Validation accuracy against sparsity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def _measure_vs_sparsity(runs: Sequence[RunData], measure: str, label: str) -> Figure:
    def logged(run: RunData) -> list[str]:
        return [g for g in run.graphs if run.has(keys.graph(g, measure))]

    pruned = [run for run in runs if not run.never_pruned and logged(run)]
    if not pruned:
        raise SkipFigure(f"no run logged both {keys.SPARSITY} (above 0) and {keys.graph('<graph>', measure)}")
    dense = [run for run in runs if run.never_pruned and logged(run)]
    graphs = sorted({g for run in pruned for g in logged(run)})
    cmap = colormaps["tab10" if len(graphs) <= 10 else "tab20"]
    colors = {g: cmap(i % cmap.N) for i, g in enumerate(graphs)}
    figure, axes = panel_grid(len(pruned), extra=2.5)
    for ax, run in zip(axes, pruned, strict=True):
        sparsity = run.sparsity()
        losses = run.ramanujan_losses()
        for graph in graphs:
            values = run.measure(graph, measure)
            if values is None:
                continue
            ax.plot(*_points(sparsity, values), color=colors[graph], linewidth=1.2)
            if graph in losses and np.isfinite(values[losses[graph]]):
                i = losses[graph]
                ax.plot(sparsity[i], values[i], marker="v", markersize=9, color=colors[graph],
                        markeredgecolor="black", linestyle="none")  # fmt: skip
            for reference in dense:
                if (value := reference.last(keys.graph(graph, measure))) is not None:
                    reference_line(ax, value, color=colors[graph], linewidth=0.9, alpha=0.7)
        ax.axhline(0.0, color="black", linewidth=0.8, linestyle="--")
        ax.set(xlabel=f"sparsity ({keys.SPARSITY})", ylabel=label, title=run.name)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[g], label=g) for g in graphs]
    handles.append(Line2D([], [], marker="v", color="grey", markeredgecolor="black", linestyle="none",
                          label="lost Ramanujan property"))  # fmt: skip
    handles += [Line2D([], [], color="grey", linestyle=":", label=f"{run_label(r.name, 'dense')}, final")
                for r in dense]  # fmt: skip
    figure.legend(handles=handles, loc="outside right center", fontsize="small")
    figure.suptitle(f"{label} of every graph against sparsity")
    return figure


def delta_r_vs_sparsity(runs: Sequence[RunData]) -> Figure:
    """Δr of every graph against sparsity, a panel per pruned run, dense runs as dotted levels."""
    return _measure_vs_sparsity(runs, delta_r.name, f"Δr ({keys.graph('<graph>', delta_r.name)})")


def normalized_gap_vs_sparsity(runs: Sequence[RunData]) -> Figure:
    """Normalized spectral gap of every graph against sparsity, a panel per pruned run."""
    return _measure_vs_sparsity(runs, "normalized_gap", "normalized gap")


def guarded_vs_unguarded(runs: Sequence[RunData]) -> Figure:
    """Accuracy and Ramanujan share against sparsity: guarded runs solid, unguarded dashed, dense
    runs as dotted reference levels."""
    usable = [run for run in runs if run.has(keys.VAL_ACC) and run.sparsity() is not None]
    guarded = [run for run in usable if run.guarded]
    unguarded = [run for run in usable if not run.guarded]
    if not guarded or not unguarded:
        raise SkipFigure(f"needs a guarded run (logged {keys.stopped_epoch('<graph>')}) and an unguarded one")
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    acc_ax, share_ax = figure.subplots(1, 2)
    for run in [*unguarded, *guarded]:
        fraction = run.ramanujan_fraction()
        if run.never_pruned:
            label = f"{run_label(run.name, 'dense')}, final"
            line = reference_line(acc_ax, run.last(keys.VAL_ACC), label=label)
            if fraction is not None and np.isfinite(fraction).any():
                reference_line(share_ax, fraction[np.isfinite(fraction)][-1], color=line.get_color())
            continue
        style = {
            "linestyle": "-" if run.guarded else "--",
            "marker": "o" if run.guarded else "s",
            "markersize": 3,
            "label": run_label(run.name, _kind(run)),
        }
        (line,) = acc_ax.plot(*_points(run.sparsity(), run.columns[keys.VAL_ACC]), **style)
        if fraction is not None:
            share_ax.plot(*_points(run.sparsity(), fraction), color=line.get_color(), **style)
    acc_ax.set(xlabel="sparsity", ylabel=f"validation accuracy ({keys.VAL_ACC})", title="Accuracy")
    share_ax.set(xlabel="sparsity", ylabel="share of Ramanujan graphs (with a verdict)", title="Ramanujan share",
                 ylim=(-0.05, 1.05))  # fmt: skip
    for ax in (acc_ax, share_ax):
        ax.grid(alpha=0.3)
    acc_ax.legend(fontsize="small")
    figure.suptitle("Guarded against unguarded pruning")
    return figure


def accuracy_vs_snr(runs: Sequence[RunData]) -> Figure:
    """Final ``test/acc@<snr>dB`` against SNR per run; ``test/acc`` as a star at "clean".

    Values come from the evaluation runs beside a training where there are any
    (:meth:`RunData.final`).
    """
    curves = []
    for run in runs:
        columns = set(run.columns) | set(run.evaluation)
        points = sorted(
            (snr, value)
            for key in columns
            if (snr := keys.parse_snr_key(key)) is not None and (value := run.final(key)) is not None
        )
        if points:
            curves.append((run, points))
    if not curves:
        raise SkipFigure(f"no run logged {keys.test_acc('@<snr>dB')}")
    snrs = sorted({snr for _, points in curves for snr, _ in points})
    step = (snrs[-1] - snrs[0]) / max(len(snrs) - 1, 1) if len(snrs) > 1 else 5.0
    clean_x = snrs[-1] + max(step, 1.0)
    figure = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = figure.subplots()
    for run, points in curves:
        sparsity = run.last(keys.SPARSITY)
        dense = sparsity is None or sparsity == 0
        label = run_label(run.name, "dense" if dense else f"sparsity {sparsity:.2f}")
        x, y = zip(*points, strict=True)
        (line,) = ax.plot(x, y, marker="o", linestyle="--" if dense else "-", label=label)
        if (clean := run.final(keys.TEST_ACC)) is not None:
            ax.plot([clean_x], [clean], marker="*", markersize=12, color=line.get_color(), linestyle="none")
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
