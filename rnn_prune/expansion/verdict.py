"""The one place that decides whether a graph is Ramanujan.

Everything that needs the verdict — the metrics callback's ``is_ramanujan`` and
``graph/ramanujan_fraction``, the pruning guard, the report and the study — calls
:func:`ramanujan_verdict` and :func:`ramanujan_share`; none spells the rule again.

The rule follows the reference implementation of Hoang et al. (ICLR 2023,
VITA-Group/ramanujan-on-pai, ``lib/graphs/scores.py``), which scores a graph only when both average
degrees are at least 3, plus one condition of ours: a graph whose non-isolated part falls apart into
several components has a normalised spectral gap of 0 and is no expander, whatever its Δr says.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

MIN_AVG_DEGREE = 3.0
"""Below this average degree on either side the reference computes no Ramanujan score."""
RAMANUJAN_TOL = 1e-9
"""A bound met exactly is not lost to rounding: Ramanujan is ``Δr >= margin − RAMANUJAN_TOL``."""


@dataclass(frozen=True)
class RamanujanVerdict:
    """``is_ramanujan`` is ``True``/``False``, or ``None`` when no verdict is defined; ``reason`` says why."""

    is_ramanujan: bool | None
    reason: str = ""


def ramanujan_verdict(
    delta_r: float,
    avg_left_degree: float,
    avg_right_degree: float,
    num_nonisolated_components: int,
    *,
    margin: float = 0.0,
) -> RamanujanVerdict:
    """Whether a bipartite graph is Ramanujan: ``Δr ≥ margin``, defined, connected.

    Args:
        delta_r: ``Δr = √(d̄L−1) + √(d̄R−1) − μ``.
        avg_left_degree, avg_right_degree: ``d̄L``, ``d̄R`` over non-isolated nodes.
        num_nonisolated_components: connected components once isolated nodes are dropped
            (0 for a graph with no edges).
        margin: the Δr a graph must keep (the guard's ``guard_margin``; 0 for the plain verdict).

    >>> ramanujan_verdict(0.5, 8.0, 4.0, 1)
    RamanujanVerdict(is_ramanujan=True, reason='')
    >>> ramanujan_verdict(0.5, 8.0, 1.3, 1).is_ramanujan is None
    True
    >>> ramanujan_verdict(0.9, 8.0, 4.0, 2)
    RamanujanVerdict(is_ramanujan=False, reason='disconnected: 2 components besides isolated nodes')
    """
    if not math.isfinite(delta_r):
        return RamanujanVerdict(None, "Δr undefined (no edges)")
    if not (avg_left_degree >= MIN_AVG_DEGREE and avg_right_degree >= MIN_AVG_DEGREE):
        return RamanujanVerdict(
            None,
            f"average degree below {MIN_AVG_DEGREE:g} (d̄L={avg_left_degree:.3g}, d̄R={avg_right_degree:.3g}): "
            "no Ramanujan verdict, as in Hoang et al.'s reference",
        )
    if num_nonisolated_components > 1:
        return RamanujanVerdict(False, f"disconnected: {num_nonisolated_components} components besides isolated nodes")
    return RamanujanVerdict(bool(delta_r >= margin - RAMANUJAN_TOL))


@dataclass(frozen=True)
class RamanujanShare:
    """Share of Ramanujan graphs among those with a defined verdict, and how many had none."""

    fraction: float
    num_defined: int
    num_undefined: int


def ramanujan_share(verdicts: Iterable[bool | float | None]) -> RamanujanShare:
    """Share of ``True`` among the defined verdicts; ``None`` or NaN (as logged) count as undefined.

    The denominator is the graphs *with* a verdict; the fraction is NaN when none has one.

    >>> ramanujan_share([True, False, None, float("nan"), 1.0])
    RamanujanShare(fraction=0.6666666666666666, num_defined=3, num_undefined=2)
    """
    defined = undefined = 0
    ramanujan = 0
    for verdict in verdicts:
        if verdict is None or (isinstance(verdict, float) and math.isnan(verdict)):
            undefined += 1
            continue
        defined += 1
        ramanujan += bool(verdict)
    return RamanujanShare(ramanujan / defined if defined else math.nan, defined, undefined)
