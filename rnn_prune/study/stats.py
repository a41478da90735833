"""Descriptive statistics of the study, from ``study.csv``'s rows: correlations, drops, break points.

Accuracy and expansion both fall with sparsity, so a raw rank correlation between the accuracy
drop and the Ramanujan share across cells mostly says that both follow sparsity; the rank partial
correlation given the final sparsity (and criterion) describes what is left. The claim -- a
network keeps its accuracy while its graphs stay expanders -- predicts a *negative* correlation.
These describe; the answer comes from the pre-specified test in :mod:`rnn_prune.study.analysis`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from rnn_prune.study.grid import DENSE

__all__ = ["ACCURACY_BREAK", "Correlation", "Line", "MeanInterval", "accuracy_drops", "break_point", "compare_breaks",
           "distinct_runs", "is_number", "lines", "mean_interval", "partial_spearman", "spearman"]  # fmt: skip

ACCURACY_BREAK = 0.01
"""The accuracy break: the first sparsity whose mean test accuracy is more than 1 point below dense."""
NEGLIGIBLE_RESIDUAL = 0.02
"""A rank order whose variance the controlled variables explain to all but this share carries no
information of its own for a partial correlation."""
SPARSITY_SHORTFALL = 0.01
"""A cell whose final sparsity lies this far below its target stopped short (a guard froze graphs)."""


@dataclass(frozen=True)
class Correlation:
    """A rank correlation, its two-sided p-value and the number of cells it used."""

    rho: float
    p: float
    n: int

    def __str__(self) -> str:
        return f"ρ = {self.rho:+.2f} (p = {self.p:.3g}, n = {self.n})"


def is_number(value: Any) -> bool:
    """A finite int or float (not None, not NaN): what a cell may count with."""
    return isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True)
class MeanInterval:
    """A mean over seeds with its 95 % t interval (``None`` bounds from a single value)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    def __str__(self) -> str:
        if self.low is None or self.high is None:
            return f"{self.mean:.4f}"
        return f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}]"


def mean_interval(values: Sequence[float | None]) -> MeanInterval | None:
    """The mean of the finite ``values`` and its 95 % t interval (seeds as independent replicates).

    Why a t interval: a study has a handful of seeds per cell (5 in the published one), where the
    normal interval would be about 30 % too narrow.

    >>> print(mean_interval([0.85, 0.86, 0.87]))
    0.8600 [0.8352, 0.8848]
    >>> print(mean_interval([0.85, None]))
    0.8500
    >>> mean_interval([None]) is None
    True
    >>> print(mean_interval([0.85, 0.85]))
    0.8500 [0.8500, 0.8500]
    >>> print(mean_interval([0.85, float("nan"), 0.87]))
    0.8600 [0.7329, 0.9871]
    """
    finite = np.array([v for v in values if is_number(v) and not isinstance(v, bool)], dtype=float)
    if finite.size == 0:
        return None
    mean = float(finite.mean())
    if finite.size == 1:
        return MeanInterval(mean, None, None, 1)
    sem = float(stats.sem(finite))
    if sem == 0.0:  # identical values (twins): scipy's t is undefined at scale 0, the interval is a point
        return MeanInterval(mean, mean, mean, int(finite.size))
    low, high = stats.t.interval(0.95, finite.size - 1, loc=mean, scale=sem)
    return MeanInterval(mean, float(low), float(high), int(finite.size))


def _pairs(*columns: Sequence[float | None]) -> list[np.ndarray]:
    arrays = [np.array([np.nan if v is None else v for v in c], dtype=float) for c in columns]
    keep = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    return [a[keep] for a in arrays]


def spearman(x: Sequence[float | None], y: Sequence[float | None]) -> Correlation | None:
    """``scipy.stats.spearmanr`` over the pairs where both are finite; None below 3 pairs or for a constant.

    >>> spearman([1, 2, 3, 4], [8, 6, 4, None])
    Correlation(rho=-1.0, p=0.0, n=3)
    >>> spearman([1, 1, 1], [1, 2, 3]) is None
    True
    """
    x_, y_ = _pairs(x, y)
    if len(x_) < 3 or np.ptp(x_) == 0 or np.ptp(y_) == 0:
        return None
    result = stats.spearmanr(x_, y_)
    return Correlation(float(result.statistic), float(result.pvalue), len(x_))


def partial_spearman(
    x: Sequence[float | None],
    y: Sequence[float | None],
    z: Sequence[float | None],
    groups: Sequence[Any] | None = None,
) -> Correlation | None:
    """Rank partial correlation of ``x`` and ``y`` given ``z`` (and ``groups``): Pearson of the rank residuals.

    Ranks (``scipy.stats.rankdata``) of x and y are each regressed on the ranks of z and, when
    ``groups`` is given, on one indicator per group but the first (e.g. the pruning criterion, which
    drives both expansion and accuracy); the correlation of the residuals is tested with
    ``n − 2 − #covariates`` degrees of freedom. None when too few cells are left for that, or when
    a residual is constant.

    >>> z = [1, 1, 2, 2, 3, 3]
    >>> partial_spearman([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5], z).rho < 0  # within each z, x and y disagree
    True
    >>> x, y = [1, 2, 3, 4, 5, 6, 7, 8], [5, 6, 7, 8, 1, 2, 3, 4]
    >>> g = ["a"] * 4 + ["b"] * 4
    >>> round(partial_spearman(x, y, [0] * 8, g).rho, 6)  # within each group x and y rise together
    1.0
    """
    labels = list(groups) if groups is not None else [None] * len(x)
    codes = {label: i for i, label in enumerate(dict.fromkeys(labels))}
    x_, y_, z_, g_ = _pairs(x, y, z, [codes[label] for label in labels])
    n = len(x_)
    if n < 3:
        return None
    columns = [np.ones(n)]
    if np.ptp(z_) > 0:
        columns.append(stats.rankdata(z_))
    columns += [(g_ == code).astype(float) for code in sorted(set(g_.tolist()))[1:]]
    design = np.column_stack(columns)
    dof = n - 2 - (design.shape[1] - 1)
    if dof < 1:
        return None
    residuals = []
    for values in (x_, y_):
        ranks = stats.rankdata(values)
        coef, *_ = np.linalg.lstsq(design, ranks, rcond=None)
        residuals.append(ranks - design @ coef)
        # What is left of a rank order that the covariates (almost) fix is the curvature of the
        # fit, the same for x and y: correlating it would read pure artefact as ρ = ±1.
        if np.sum(residuals[-1] ** 2) < NEGLIGIBLE_RESIDUAL * np.sum((ranks - ranks.mean()) ** 2):
            return None
    if any(np.ptp(r) < 1e-12 for r in residuals):
        return None
    rho = float(np.clip(np.corrcoef(*residuals)[0, 1], -1.0, 1.0))
    t = rho * math.sqrt(dof / max(1.0 - rho**2, 1e-300))
    return Correlation(rho, float(2 * stats.t.sf(abs(t), dof)), n)


def distinct_runs(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows without guarded cells whose guard never fired: such a cell is the same run as its
    unguarded twin (same target, criterion and seed; same final sparsity and test accuracy), and
    counting it twice would inflate ``n`` and shrink p-values.

    >>> a = {"target_sparsity": 0.8, "criterion": "random", "seed": 0, "guard": "none", "final_sparsity": 0.8,
    ...      "test_acc": 0.84}
    >>> len(distinct_runs([a, {**a, "guard": "ramanujan"}, {**a, "guard": "ramanujan", "final_sparsity": 0.7}]))
    2
    >>> len(distinct_runs([{**a, "config": "A"}, {**a, "config": "B", "guard": "ramanujan"}]))  # not twins
    2
    """
    def cell(r: Mapping[str, Any]) -> tuple[Any, ...]:  # a twin is of the same config (pooled studies)
        return r.get("config"), r.get("target_sparsity"), r.get("criterion"), r.get("seed")

    unguarded = {cell(r): r for r in rows if r.get("guard") in (None, "none")}
    kept = []
    for row in rows:
        twin = unguarded.get(cell(row))
        if (row.get("guard") not in (None, "none") and twin is not None
                and row.get("final_sparsity") == twin.get("final_sparsity")
                and row.get("test_acc") == twin.get("test_acc")):  # fmt: skip
            continue
        kept.append(row)
    return kept


def accuracy_drops(rows: Sequence[Mapping[str, Any]]) -> tuple[float | None, list[float | None]]:
    """Mean dense test accuracy, and each row's drop from it (None where either is missing)."""
    dense = [r["test_acc"] for r in rows if r.get("kind") == DENSE and r.get("test_acc") is not None]
    if not dense:
        return None, [None] * len(rows)
    reference = float(np.mean(dense))
    return reference, [reference - r["test_acc"] if r.get("test_acc") is not None else None for r in rows]


@dataclass
class Line:
    """One criterion × guard: per target sparsity, the cells' values of a column."""

    criterion: str
    guard: str
    points: dict[float, list[float]]
    finals: dict[float, list[float]] = field(default_factory=dict)
    """Per target sparsity, the cells' final sparsities (a guard stops below the target)."""

    @property
    def label(self) -> str:
        """``criterion, guard G``, plus the final sparsities when the cells stopped short of their targets.

        >>> Line("magnitude", "ramanujan", {0.9: [0.8]}, {0.9: [0.74], 0.99: [0.66]}).label
        'magnitude, guard ramanujan (stopped at sparsity 0.66–0.74)'
        """
        label = f"{self.criterion}, guard {self.guard}"
        short = [f for target, finals in self.finals.items() for f in finals if target - f > SPARSITY_SHORTFALL]
        if short:
            label += f" (stopped at sparsity {min(short):.2f}–{max(short):.2f})"
        return label

    def summary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparsities, and the mean and sample standard deviation (0 for one cell) over seeds at each."""
        xs = sorted(s for s, v in self.points.items() if v)
        values = [np.array(self.points[s]) for s in xs]
        return np.array(xs), np.array([v.mean() for v in values]), np.array(
            [v.std(ddof=1) if len(v) > 1 else 0.0 for v in values]
        )


def lines(rows: Sequence[Mapping[str, Any]], column: str) -> list[Line]:
    """The pruned cells' ``column`` grouped by criterion × guard (dense cells are the reference)."""
    grouped: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    finals: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        value = row.get(column)
        if row.get("kind") == DENSE or value is None or not math.isfinite(value):
            continue
        group = (str(row["criterion"]), str(row["guard"]))
        grouped[group][float(row["target_sparsity"])].append(float(value))
        if row.get("final_sparsity") is not None and math.isfinite(row["final_sparsity"]):
            finals[group][float(row["target_sparsity"])].append(float(row["final_sparsity"]))
    return [Line(c, g, dict(points), dict(finals[(c, g)])) for (c, g), points in sorted(grouped.items())]


def break_point(sparsities: Sequence[float], values: Sequence[float], threshold: float) -> float | None:
    """The first sparsity (ascending) whose value lies below ``threshold``; None if none does.

    >>> break_point([0.5, 0.9, 0.99], [0.95, 0.93, 0.6], 0.94)
    0.9
    """
    for sparsity, value in sorted(zip(sparsities, values, strict=True)):
        if value < threshold:
            return float(sparsity)
    return None


def compare_breaks(accuracy: float | None, expansion: float | None) -> str:
    """Whether the accuracy break comes at, before or after the expansion break, in words."""
    if accuracy is None and expansion is None:
        return "neither accuracy nor expansion breaks in the grid"
    if accuracy is None:
        return f"expansion breaks at sparsity {expansion:g}, accuracy never does in the grid (after, if at all)"
    if expansion is None:
        return f"accuracy breaks at sparsity {accuracy:g} while every graph stays Ramanujan (before)"
    if accuracy == expansion:
        return f"accuracy and expansion break at the same sparsity {accuracy:g} (at)"
    order = "before" if accuracy < expansion else "after"
    return f"accuracy breaks at {accuracy:g}, expansion at {expansion:g} ({order})"
