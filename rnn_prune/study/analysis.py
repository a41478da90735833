"""The study's pre-specified analysis: at equal sparsity and criterion, does more expansion mean a smaller drop?

Fixed before any new data are read (README, "The pre-specified analysis"); nothing here looks at
the data to choose how to test it.

- **Outcome.** A pruned cell's accuracy drop: the mean dense test accuracy minus its own (a
  fraction; 0.01 is one accuracy point). The reference cancels inside a stratum, so the effect
  does not depend on it.
- **Strata.** Pruning criterion × final sparsity level (× config, in a study of several configs:
  pruning at init and gradual pruning are analysed together, each setting its own strata, for one
  answer): the sparsity a model really has (a guard stops short of its target), on a grid of
  :data:`STRATUM_STEP` decades of density ``1 − s``.
  Inside a stratum cells differ by seed, by guard and (with structural criteria) by how well they
  expand; those differences are what the effect is estimated from. The criterion is its *name*
  with its non-numeric arguments: the numeric settings of one criterion (``clustered:mixing=0``
  and ``clustered:mixing=0.5``, ``rewired:swaps=0.5``) share a stratum, since they are dials that
  hold sparsity and degrees fixed and differ in expansion alone, while a named argument picks
  another family (``rewired:source=random`` keeps random's degrees, not magnitude's) and so
  another stratum. Strata with one cell carry no information and are left out; dense cells
  (nothing pruned) too.
- **Model.** Ordinary least squares ``drop ~ z + C(stratum) + C(seed)`` (``statsmodels`` OLS),
  where ``z`` is the expansion measure over its standard deviation across the study's pruned
  cells. Seeds are the replicates: a seed's initialisation and data order shift all its cells
  alike, so the seed enters as a fixed effect rather than as a cluster -- cluster-robust errors
  need many more seeds than a study affords (with 2 their t reference has one degree of freedom).
  Standard errors are heteroskedasticity-robust HC3 (the seed-to-seed spread grows with
  sparsity), with a t reference on the residual degrees of freedom. Cells with leverage 1 (fit
  exactly by a parameter of their own) are removed first: they change neither the estimate nor
  the residuals, and HC3 is undefined at them.
- **Effect.** The coefficient of ``z``: the change in the drop per standard deviation of the
  measure. The claim (a pruned layer keeps its accuracy *because* it stays an expander) predicts
  a **negative** effect. Its 95 % interval and two-sided p-value come from the fit; the minimum
  detectable effect at 80 % power is ``(t₀.₉₇₅ + t₀.₈₀) · SE`` on the same degrees of freedom.
- **Reading.** ``supports`` when the interval lies below 0, ``contradicts`` when above,
  ``no effect`` when it lies inside ``±`` :data:`MARGIN` (one accuracy point per standard
  deviation: the study's own accuracy break), else ``inconclusive`` (also when the effect cannot
  be estimated: no spread of the measure inside any stratum, no residual degrees of freedom).
- **Answer.** The reading of the primary measure, :data:`PRIMARY` (``min Δr / r``): the only one
  with the same meaning at every sparsity, which a slope common to all strata needs. The other
  measures are secondary, analysed the same way.
- **Missing values.** A cell without a value of a measure is left out of that measure's analysis
  and counted (``n_missing``). The Ramanujan share has no value exactly where no pruned graph has a
  verdict (average degree below 3); its sensitivity reading counts such a cell as share 0 (no graph
  is certified an expander there).

The raw and per-criterion Spearman correlations (:mod:`rnn_prune.study.stats`) stay as description.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from rnn_prune.specs import format_spec, parse_spec
from rnn_prune.study import stats
from rnn_prune.study.grid import DENSE

__all__ = ["ALPHA", "MARGIN", "MEASURES", "METHOD", "NO_VERDICT_SHARE", "POWER", "PRIMARY", "READINGS",
           "README_BLOCK", "STRATUM_STEP", "Effect", "analyse", "fit_effect", "main", "markdown", "reading",
           "load_analysis", "render_blocks", "rows_from_csv", "stratum_of"]  # fmt: skip

MARGIN = 0.01
"""Equivalence margin: an effect inside ±1 accuracy point per standard deviation of the measure is
no effect (the study calls accuracy broken 1 point below dense, :data:`stats.ACCURACY_BREAK`)."""
ALPHA = 0.05
"""Two-sided level: the 95 % interval."""
POWER = 0.8
"""Power at which the minimum detectable effect is given."""
PRIMARY = "min_delta_r_rel"
"""The measure whose reading is the answer."""
MEASURES = {
    "min_delta_r_rel": "min Δr / r",
    "min_delta_r": "min Δr",
    "ramanujan_share": "Ramanujan share",
}
"""The ``result.json`` fields analysed, with their labels; the first is :data:`PRIMARY`."""
NO_VERDICT_SHARE = 0.0
"""The sensitivity reading's share of a cell whose pruned graphs all lack a verdict."""
STRATUM_STEP = 0.02
"""Width of a sparsity level in decades of density ``1 − s`` (±2.3 % of the density)."""
READINGS = ("supports", "contradicts", "no effect", "inconclusive")
METHOD = ("OLS drop ~ z + C(stratum) + C(seed) (statsmodels), z = measure / its SD over the pruned cells, "
          "HC3 standard errors, t on the residual degrees of freedom")  # fmt: skip
SIGN = "negative = more expansion, smaller drop (the claim's direction); units: accuracy per SD of the measure"


@dataclass(frozen=True)
class Effect:
    """One measure's effect on the drop at equal stratum and seed; ``None`` numbers when not estimable."""

    estimate: float | None
    """Change of the drop (accuracy, 0.01 = 1 point) per standard deviation of the measure."""
    ci95: tuple[float, float] | None
    p: float | None
    n_cells: int
    """Cells in the fit (pruned, with a value, in a stratum of two or more, leverage below 1)."""
    n_seeds: int
    n_strata: int
    n_missing: int
    """Pruned cells left out for want of a value of the measure."""
    mde: float | None
    """Smallest |effect| the design detects at :data:`POWER` power, two-sided at :data:`ALPHA`."""
    sd: float | None
    """The measure's standard deviation across the pruned cells: the unit of ``estimate``."""
    reading: str
    note: str = ""
    """Why there is no estimate, when there is none."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ci95"] = list(self.ci95) if self.ci95 is not None else None
        return data


def reading(ci95: tuple[float, float] | None, margin: float = MARGIN) -> str:
    """The reading of a 95 % interval of the effect (negative = the claim's direction).

    >>> reading((-0.03, -0.01)), reading((0.002, 0.02)), reading((-0.004, 0.006)), reading((-0.03, 0.01))
    ('supports', 'contradicts', 'no effect', 'inconclusive')
    >>> reading(None)
    'inconclusive'
    """
    if ci95 is None:
        return "inconclusive"
    low, high = ci95
    if high < 0:
        return "supports"
    if low > 0:
        return "contradicts"
    if -margin <= low and high <= margin:
        return "no effect"
    return "inconclusive"


def stratum_criterion(spec: str) -> str:
    """The criterion part of a stratum: the name and its non-numeric arguments (numeric ones are
    the dials a stratum pools, see the module).

    >>> stratum_criterion("clustered:mixing=0.5,blocks=4"), stratum_criterion("rewired:source=random,swaps=0.5")
    ('clustered', 'rewired:source=random')
    """
    name, args = parse_spec(spec)
    named = {k: v for k, v in args.items() if isinstance(v, bool) or not isinstance(v, int | float)}
    return format_spec(name, named)


def stratum_of(row: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """A pruned cell's stratum: its criterion (:func:`stratum_criterion`) and the level of its final
    sparsity (None: dense or unknown), and, for a row that names it, its config: a study over
    several configs (pruning at init and gradual pruning) holds the setting fixed too.

    >>> stratum_of({"kind": "pruned", "criterion": "random", "final_sparsity": 0.8999, "target_sparsity": 0.9})
    ('random', -50)
    >>> stratum_of({"kind": "pruned", "criterion": "clustered:mixing=0.5", "final_sparsity": 0.9})
    ('clustered', -50)
    >>> stratum_of({"kind": "pruned", "criterion": "random", "final_sparsity": 0.9005}) == ('random', -50)
    True
    """
    if row.get("kind") == DENSE:
        return None
    sparsity = row.get("final_sparsity")
    if not stats.is_number(sparsity):
        sparsity = row.get("target_sparsity")
    if not stats.is_number(sparsity) or not 0 <= sparsity < 1:
        return None
    stratum = stratum_criterion(str(row.get("criterion"))), round(math.log10(1.0 - sparsity) / STRATUM_STEP)
    return stratum if row.get("config") is None else (str(row["config"]), *stratum)


def _not_estimable(note: str, *, n_missing: int, sd: float | None = None, n_cells: int = 0, n_seeds: int = 0,
                   n_strata: int = 0) -> Effect:  # fmt: skip
    return Effect(None, None, None, n_cells, n_seeds, n_strata, n_missing, None, sd, "inconclusive", note)


def _design(z: np.ndarray, strata: list[Any], seeds: list[Any]) -> np.ndarray:
    columns = [z]
    columns += [np.array([s == level for s in strata], dtype=float) for level in dict.fromkeys(strata)]
    columns += [np.array([s == seed for s in seeds], dtype=float) for seed in list(dict.fromkeys(seeds))[1:]]
    return np.column_stack(columns)


def _leverage(design: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ji->i", design, np.linalg.pinv(design))


def fit_effect(
    drops: Sequence[float | None],
    values: Sequence[float | None],
    strata: Sequence[Any],
    seeds: Sequence[Any],
    *,
    margin: float = MARGIN,
) -> Effect:
    """The effect of one measure on the drop at equal stratum, seeds as replicates (see the module).

    Args:
        drops: each pruned cell's accuracy drop (None: unknown).
        values: each cell's value of the measure (None: missing, counted in ``n_missing``).
        strata: each cell's stratum (:func:`stratum_of`; None: left out).
        seeds: each cell's seed.
        margin: the equivalence margin of the reading.

    >>> rng = np.random.default_rng(0)
    >>> strata, seeds = [s for s in range(6) for _ in range(3)], [0, 1, 2] * 6
    >>> x = rng.normal(size=18)
    >>> effect = fit_effect(list(0.1 * np.array(strata) - 0.02 * x + rng.normal(0, 0.002, 18)), list(x), strata, seeds)
    >>> effect.reading, effect.n_cells, effect.n_strata, effect.n_seeds, effect.estimate < 0
    ('supports', 18, 6, 3, True)
    """
    from statsmodels.regression.linear_model import OLS  # heavy (pandas): only where the analysis runs

    if not len(drops) == len(values) == len(strata) == len(seeds):
        raise ValueError("drops, values, strata and seeds must have one entry per cell")
    usable = [i for i in range(len(drops)) if stats.is_number(drops[i]) and strata[i] is not None]
    have = [i for i in usable if stats.is_number(values[i])]
    n_missing = len(usable) - len(have)
    if len(have) < 2:
        return _not_estimable("no cell has a value" if not have else "1 cell has a value", n_missing=n_missing)
    sd = float(np.std([values[i] for i in have], ddof=1))
    if not sd > 0:
        return _not_estimable("the measure has the same value in every cell", n_missing=n_missing)
    counts: dict[Any, int] = {}
    for i in have:
        counts[strata[i]] = counts.get(strata[i], 0) + 1
    keep = [i for i in have if counts[strata[i]] > 1]
    while True:  # drop cells fit exactly by a parameter of their own (their stratum's or seed's dummy)
        design = _design(np.array([values[i] / sd for i in keep]), [strata[i] for i in keep], [seeds[i] for i in keep])
        if not keep:
            break
        exact = _leverage(design) > 1 - 1e-9
        if not exact.any():
            break
        keep = [i for i, drop in zip(keep, exact, strict=True) if not drop]
    n_seeds, n_strata = len({seeds[i] for i in keep}), len({strata[i] for i in keep})
    counts_kw = {"n_missing": n_missing, "sd": sd, "n_cells": len(keep), "n_seeds": n_seeds, "n_strata": n_strata}
    if not keep:
        return _not_estimable("no stratum holds two cells with a value", **counts_kw)
    present = design.any(axis=0)  # levels no kept cell has drop out; the measure's column never does
    present[0] = True  # (a measure 0 in every kept cell must read "does not vary", not another column's effect)
    design = design[:, present]
    others = design[:, 1:]
    z = design[:, 0]
    residual = z - others @ np.linalg.lstsq(others, z, rcond=None)[0]
    if np.sum(residual**2) <= 1e-12 * max(np.sum(z**2), 1e-300):
        return _not_estimable("the measure varies inside too few strata to estimate its effect", **counts_kw)
    y = np.array([drops[i] for i in keep], dtype=float)
    fit = OLS(y, design).fit(cov_type="HC3", use_t=True)
    df = float(fit.df_resid)
    if df < 1:
        return _not_estimable("no residual degrees of freedom", **counts_kw)
    se = float(fit.bse[0])
    if not math.isfinite(se):
        return _not_estimable("no finite standard error", **counts_kw)
    low, high = (float(v) for v in fit.conf_int(ALPHA)[0])
    mde = se * float(scipy_stats.t.ppf(1 - ALPHA / 2, df) + scipy_stats.t.ppf(POWER, df))
    p = float(fit.pvalues[0]) if math.isfinite(fit.pvalues[0]) else (0.0 if fit.params[0] != 0 else 1.0)
    return Effect(float(fit.params[0]), (low, high), p, len(keep), n_seeds, n_strata, n_missing, mde, sd,
                  reading((low, high), margin))  # fmt: skip


def _correlation(corr: stats.Correlation | None) -> dict[str, float] | None:
    return None if corr is None else {"rho": corr.rho, "p": corr.p, "n": corr.n}


def _description(runs: Sequence[Mapping[str, Any]], drops: list[float | None], column: str) -> dict[str, Any]:
    """The Spearman correlations that describe, not decide: raw, final sparsity (and criterion) held fixed,
    and per criterion (final sparsity held fixed)."""
    values = [r.get(column) for r in runs]
    sparsity = [r["final_sparsity"] if stats.is_number(r.get("final_sparsity")) else r.get("target_sparsity")
                for r in runs]  # fmt: skip
    criteria = [str(r.get("criterion")) for r in runs]
    per_criterion = {}
    for criterion in sorted({c for c, r in zip(criteria, runs, strict=True) if r.get("kind") != DENSE}):
        at = [i for i, r in enumerate(runs) if r.get("kind") == DENSE or criteria[i] == criterion]
        per_criterion[criterion] = _correlation(stats.partial_spearman(
            [drops[i] for i in at], [values[i] for i in at], [sparsity[i] for i in at]))  # fmt: skip
    return {
        "raw": _correlation(stats.spearman(drops, values)),
        "sparsity_fixed": _correlation(stats.partial_spearman(drops, values, sparsity)),
        "sparsity_and_criterion_fixed": _correlation(stats.partial_spearman(drops, values, sparsity, criteria)),
        "per_criterion": per_criterion,
    }


def analyse(rows: Sequence[Mapping[str, Any]], *, margin: float = MARGIN) -> dict[str, Any]:
    """``analysis.json`` of one config's rows (``study.csv`` rows or ``result.json`` contents).

    Guarded cells whose guard never fired are counted once (:func:`stats.distinct_runs`).
    """
    runs = stats.distinct_runs(rows)
    reference, drops = stats.accuracy_drops(runs)
    if reference is None:  # the effect does not depend on the reference: measure from accuracy 1
        drops = [1.0 - r["test_acc"] if stats.is_number(r.get("test_acc")) else None for r in runs]
    pruned = [i for i, r in enumerate(runs) if r.get("kind") != DENSE]
    strata = [stratum_of(runs[i]) for i in pruned]
    seeds = [runs[i].get("seed") for i in pruned]
    pruned_drops = [drops[i] for i in pruned]

    def effect(column: str, fill: float | None = None) -> Effect:
        values = [runs[i].get(column) for i in pruned]
        if fill is not None:
            values = [fill if v is None else v for v in values]
        return fit_effect(pruned_drops, values, strata, seeds, margin=margin)

    measures = {column: effect(column) for column in MEASURES}
    no_verdict = sum(1 for i in pruned if runs[i].get("ramanujan_share") is None)
    sensitivity = effect("ramanujan_share", NO_VERDICT_SHARE)
    return {
        "answer": measures[PRIMARY].reading,
        "primary": PRIMARY,
        "margin": margin,
        "alpha": ALPHA,
        "power": POWER,
        "method": METHOD,
        "sign": SIGN,
        "dense_reference": reference,
        "n_pruned_cells": len(pruned),
        "twins_counted_once": len(rows) - len(runs),
        "measures": {column: effect.to_dict() for column, effect in measures.items()},
        "sensitivity": {"ramanujan_share_no_verdict_as_0": {**sensitivity.to_dict(), "n_no_verdict": no_verdict}},
        "description": {column: _description(runs, drops, column) for column in MEASURES},
    }


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.2f}"


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def _row(label: str, effect: Mapping[str, Any]) -> str:
    ci = effect["ci95"]
    interval = "n/a" if ci is None else f"[{_points(ci[0])}, {_points(ci[1])}]"
    mde = "n/a" if effect["mde"] is None else f"{100 * effect['mde']:.2f}"
    reading_ = effect["reading"] + (f" ({effect['note']})" if effect.get("note") else "")
    cells = f"{effect['n_cells']} ({effect['n_seeds']}, {effect['n_strata']})"
    return (f"| {label} | {_points(effect['estimate'])} | {interval} | {_p(effect['p'])} | {cells} | "
            f"{effect['n_missing']} | {mde} | {reading_} |")  # fmt: skip


def markdown(analysis: Mapping[str, Any]) -> list[str]:
    """The analysis as Markdown lines: the answer, then one table row per measure and the sensitivity row
    (where some cell has no verdict)."""
    labels = {column: label for column, label in MEASURES.items()}
    sensitivity = analysis["sensitivity"]["ramanujan_share_no_verdict_as_0"]
    lines = [f"**Answer (pre-specified, {labels[analysis['primary']]}): {analysis['answer']}.**", "",
             f"Effect on the accuracy drop, in accuracy points per standard deviation of the measure "
             f"(negative: more expansion, smaller drop, as the claim predicts); {analysis['method']}; "
             f"equivalence margin ±{100 * analysis['margin']:g} point; MDE: the smallest |effect| detected "
             f"with {analysis['power']:.0%} power at {1 - analysis['alpha']:.0%}.", "",
             "| measure | effect | 95 % CI | p | cells (seeds, strata) | left out (no value) | MDE | reading |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    lines += [_row(labels[column] + (" (primary)" if column == analysis["primary"] else ""), effect)
              for column, effect in analysis["measures"].items()]  # fmt: skip
    if sensitivity["n_no_verdict"]:  # with every cell's verdict, the sensitivity row would repeat the share's
        lines.append(_row(f"Ramanujan share, {sensitivity['n_no_verdict']} cell(s) without a verdict as 0 "
                          "(sensitivity)", sensitivity))  # fmt: skip
    return lines


def _cell_value(text: str) -> Any:
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def rows_from_csv(path: str | Path) -> list[dict[str, Any]]:
    """``study.csv``'s rows with their numbers parsed (empty = None): what :func:`analyse` reads.

    The published studies keep only ``study.csv``; its columns are ``result.json``'s fields."""
    with open(path, newline="") as file:
        return [{key: _cell_value(value) for key, value in row.items()} for row in csv.DictReader(file)]


README_BLOCK = re.compile(r"(<!-- analysis: (?P<source>\S+) -->\n)(?P<body>.*?)(<!-- /analysis -->)", re.S)
"""A Markdown block rendered from a committed study: ``<!-- analysis: PATH -->`` ... ``<!-- /analysis -->``,
PATH being a study's ``analysis.json`` (its values as written) or a ``study.csv`` (analysed afresh)."""


def load_analysis(path: str | Path) -> dict[str, Any]:
    """The analysis behind ``path``: an ``analysis.json`` as the study wrote it, or :func:`analyse` of a
    ``study.csv`` (the pilots kept only that). Reading the JSON rather than re-fitting is what makes a
    README block *the study's* numbers: the block can only go stale when the study itself changes."""
    path = Path(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return analyse(rows_from_csv(path))


def render_blocks(text: str, root: Path) -> str:
    """``text`` with every :data:`README_BLOCK` re-rendered from its source (paths relative to ``root``)."""

    def render(match: re.Match[str]) -> str:
        lines = markdown(load_analysis(root / match["source"]))
        return match.group(1) + "\n".join(lines) + "\n" + match.group(4)

    return README_BLOCK.sub(render, text)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rnn_prune.study.analysis STUDY.csv|analysis.json ...``: print each analysis (JSON with
    ``--json``); ``--update README.md`` re-renders that file's analysis blocks in place."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rnn_prune.study.analysis", description=main.__doc__)
    parser.add_argument(
        "source",
        nargs="*",
        type=Path,
        help="study.csv files (analysed afresh) or a study's analysis.json (read as written)",
    )
    parser.add_argument("--json", action="store_true", help="print analysis.json's values instead of Markdown")
    parser.add_argument("--update", type=Path, help="a Markdown file whose <!-- analysis: PATH --> blocks to render")
    args = parser.parse_args(argv)
    for path in args.source:
        if not path.is_file():
            parser.error(f"{path}: no such file")
        result = load_analysis(path)
        print(json.dumps(result, indent=2) if args.json else f"{path}:\n\n" + "\n".join(markdown(result)) + "\n")
    if args.update is not None:
        text = args.update.read_text()
        args.update.write_text(render_blocks(text, args.update.resolve().parent))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
