"""One cell's result from its logs, and ``study.csv`` with a row per finished cell.

A cell's numbers are read with the report's reader (:func:`rnn_prune.report.load_run`): the fit's
log gives the final epoch's sparsity, validation accuracy and graph measures; the test run's
``metrics.csv`` gives ``test/acc`` (and ``test/acc@<snr>dB`` for speech). The final epoch is the last
one that logged ``val/acc``. The Ramanujan share is :func:`rnn_prune.expansion.verdict.ramanujan_share`
over the per-graph ``is_ramanujan`` verdicts of the last measured epoch (graphs with no verdict --
NaN -- are counted apart), as :meth:`rnn_prune.report.RunData.final_ramanujan_share` reads it.

The fields derived from the fit's logged history carry :data:`DERIVED_VERSION`: when the way they
are derived changes, :func:`refresh_result` re-reads them from the cell's run folder, so cells
finished before the change report like new ones (each once: the refreshed result is stored).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnn_prune import keys, wandb_offline
from rnn_prune.atomic import atomic_write
from rnn_prune.expansion import measures as m
from rnn_prune.report import RunData, load_run
from rnn_prune.study.grid import DENSE, Cell

__all__ = ["COLUMNS", "DERIVED_VERSION", "SPARSITY_TOLERANCE", "atomic_write", "cell_result", "fit_fields",
           "fit_summary", "read_result", "refresh_result", "snr_columns", "study_rows", "write_json_atomic",
           "write_study_csv", "write_text_atomic"]  # fmt: skip

log = logging.getLogger(__name__)

SPARSITY_TOLERANCE = 0.01
"""An unguarded cell must end within this of its target sparsity (a guard may stop it earlier)."""

COLUMNS = [
    "config", "cell", "kind", "target_sparsity", "criterion", "criterion_args", "guard", "seed",
    "final_sparsity", "reached_target", "final_epoch", "val_acc", "test_acc",
    "ramanujan_share", "ramanujan_defined", "ramanujan_undefined", "min_delta_r", "min_delta_r_rel", "mean_imdb",
    "first_loss_sparsity", "first_loss_epoch", "first_loss_graph", "schedule_note", "imdb_defined", "imdb_undefined",
    "stop_reason",
]  # fmt: skip
"""``study.csv``'s columns in order; ``test/acc@<snr>dB`` columns follow ``test_acc`` when logged.
``criterion`` is the cell's ``--criterion`` spec as the grid wrote it (``clustered:mixing=0.25``),
``criterion_args`` its arguments alone (``mixing=0.25``; empty without). ``stop_reason`` is empty
for a fit that ran its last epoch, else why it stopped before (early stopping, divergence), from
the fit's ``fit_outcome.json``."""

RESULT_KEYS = ("config", "name", "kind", "sparsity", "seed")
"""Keys every ``result.json`` has (the cell's own fields): one without them is not a result."""

DERIVED_VERSION = 6
"""Version of the fields :func:`fit_fields` derives from a fit's log (1: IMDB was the last finite
value, from an earlier epoch where the final one had none; 2: the final epoch's; 3: with how many
graphs had an IMDB there; 4: share, min Δr and IMDB over the pruned graphs only; 5: no min Δr
of the head when no pruned graph has one; 6: ``min_delta_r_rel``, min Δr / r). Raise it
whenever :func:`fit_summary` changes, and every finished cell
is re-derived once at the next rebuild."""


def _is_snr_key(key: str) -> bool:
    return keys.parse_snr_key(key) is not None


def write_text_atomic(path: Path, text: str) -> None:
    """:func:`atomic_write` of a text."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """:func:`atomic_write` of JSON."""
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=True) + "\n")


def read_result(path: Path) -> dict[str, Any] | None:
    """A cell's ``result.json``; None (with a warning naming the file) when it is missing a key, is not
    JSON, or cannot be read: that cell is not done and runs again."""
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("%s is corrupt (%s): its cell counts as not done and runs again", path, error)
        return None
    missing = [key for key in RESULT_KEYS if key not in result] if isinstance(result, dict) else list(RESULT_KEYS)
    if missing:
        log.warning("%s is not a cell result (no %s): its cell counts as not done and runs again",
                    path, ", ".join(missing))  # fmt: skip
        return None
    return result


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _relative_delta_r(run: RunData, graph: str, index: int) -> float | None:
    """``Δr / r`` of one graph at one epoch: its Ramanujan margin in units of its own bound ``r``
    (None where either is not logged or ``r`` is 0, a perfect matching)."""
    delta_r, bound = run.measure(graph, m.delta_r.name), run.measure(graph, m.ramanujan_bound_measure.name)
    if delta_r is None or bound is None:
        return None
    d, r = _finite(delta_r[index]), _finite(bound[index])
    return d / r if d is not None and r is not None and r > 0 else None


def fit_summary(run: RunData) -> dict[str, Any]:
    """The final epoch's numbers of a fit: sparsity, val acc, Ramanujan share, min Δr, IMDB, first loss.

    ``min_delta_r_rel`` is the smallest ``Δr / r`` of the pruned graphs, ``r = √(d̄L−1) + √(d̄R−1)``
    their Ramanujan bound: ``1 − μ/r``, 0 for a graph exactly at the bound at any degree, so it
    means the same at every sparsity, where raw Δr shrinks with the degrees (the bound does).

    The Ramanujan share, min Δr and IMDB are over the *pruned* graphs (those with a logged
    ``prune/<graph>/sparsity``; every weight graph in a dense run): the unpruned head stays a dense
    expander and would otherwise decide the share once every pruned graph has lost its verdict.
    The unfolded-in-time graphs are another object and are left out. All are at the final epoch:
    the mean IMDB is over the graphs whose IMDB is defined there, and
    None when none is (a sparse graph with no IMDB says nothing about an earlier, denser one's).

    >>> rows = [{"epoch": 0, "val/acc": 0.9, "prune/sparsity": 0.0, "graph/a/delta_r": 1.0, "graph/a/is_ramanujan": 1},
    ...         {"epoch": 1, "val/acc": 0.8, "prune/sparsity": 0.5, "graph/a/delta_r": -1.0, "graph/a/is_ramanujan": 0,
    ...          "graph/b/delta_r": 0.5, "graph/b/is_ramanujan": float("nan")}]
    >>> s = fit_summary(RunData.from_rows("demo", rows))
    >>> s["final_sparsity"], s["ramanujan_share"], s["ramanujan_undefined"], s["min_delta_r"], s["first_loss_sparsity"]
    (0.5, 0.0, 1, -1.0, 0.5)
    """
    if not run.has(keys.VAL_ACC):
        raise ValueError(f"{run.source}: no {keys.VAL_ACC} logged")
    val_acc = run.columns[keys.VAL_ACC]
    final = int(np.flatnonzero(np.isfinite(val_acc))[-1])
    sparsity = run.sparsity()

    def at_final(key: str) -> float | None:
        values = run.columns.get(key)
        return _finite(values[final]) if values is not None else None

    graphs = run.share_graphs
    share = run.final_ramanujan_share(graphs)
    finals = [v[final] for g in graphs if (v := run.measure(g, m.delta_r.name)) is not None and np.isfinite(v[final])]
    min_delta_r = float(min(finals)) if finals else None  # (the logged graph/min_delta_r covers the head too)
    relative = [ratio for g in graphs if (ratio := _relative_delta_r(run, g, final)) is not None]
    imdb_logged = [v for g in graphs if (v := run.measure(g, m.imdb.name)) is not None]
    imdb = [value for v in imdb_logged if (value := _finite(v[final])) is not None]
    first = run.first_loss()
    return {
        "final_epoch": int(run.epochs[final]),
        "final_sparsity": _finite(sparsity[final]) if sparsity is not None else None,
        "val_acc": float(val_acc[final]),
        "ramanujan_share": _finite(share.fraction) if share is not None else None,
        "ramanujan_defined": share.num_defined if share is not None else None,
        "ramanujan_undefined": share.num_undefined if share is not None else None,
        "min_delta_r": min_delta_r,
        "min_delta_r_rel": float(min(relative)) if relative else None,
        "mean_imdb": float(np.mean(imdb)) if imdb else None,
        "imdb_defined": len(imdb) if imdb_logged else None,
        "imdb_undefined": len(imdb_logged) - len(imdb) if imdb_logged else None,
        "first_loss_sparsity": first[2] if first else None,
        "first_loss_epoch": first[1] if first else None,
        "first_loss_graph": first[0] if first else None,
    }


WANDB_WAIT_SECONDS = 30.0
"""How long to wait for the exit record of the session a fit process just wrote."""


def _wait_for_wandb(fit_dir: Path) -> None:
    """wandb's core process may still be writing a run after its fit process exited: wait for the
    newest session's exit record. Older sessions are not waited for: their writer is gone (a killed
    session never writes an exit record, so waiting on it would only stall)."""
    sessions = wandb_offline.find_offline_runs(fit_dir)
    if sessions:
        newest = max(sessions, key=lambda run: run.name)  # offline-run-<YYYYmmdd_HHMMSS>-<id>: by start time
        if not wandb_offline.wait_until_complete(newest, timeout=WANDB_WAIT_SECONDS):
            log.warning("%s: no W&B exit record after %g s; reading what was written", newest, WANDB_WAIT_SECONDS)


def fit_fields(target_sparsity: float, fit_dir: Path) -> dict[str, Any]:
    """The fields of ``result.json`` derived from a fit's logs: :func:`fit_summary`, whether the fit
    reached ``target_sparsity``, and :data:`DERIVED_VERSION`."""
    fit = fit_summary(load_run(fit_dir, require=(keys.VAL_ACC,)))
    final = fit["final_sparsity"]
    reached = final is not None and abs(final - target_sparsity) <= SPARSITY_TOLERANCE
    return {**fit, "reached_target": reached, "derived_version": DERIVED_VERSION}


def cell_result(cell: Cell, fit_dir: Path, test_dir: Path, *, fit_just_ran: bool = False) -> dict[str, Any]:
    """Everything ``study.csv`` needs about one cell, read from its fit and test logs.

    ``fit_just_ran``: the fit process exited moments ago, so its W&B writer may still be flushing
    the newest session -- wait for that session's exit record (only then).
    """
    if fit_just_ran:
        _wait_for_wandb(fit_dir)
    fit = fit_fields(cell.sparsity, fit_dir)
    test = load_run(test_dir, require=(keys.TEST_ACC,))
    tests = {key: test.last(key) for key in sorted(test.columns) if key == keys.TEST_ACC or _is_snr_key(key)}
    return {**fit, "test_acc": tests.pop(keys.TEST_ACC), **tests}


def refresh_result(result: Mapping[str, Any], fit_dir: Path) -> dict[str, Any] | None:
    """``result`` with its log-derived fields re-read from ``fit_dir`` when they predate
    :data:`DERIVED_VERSION`; None when nothing changed (current already, or no readable fit there:
    then the stored values stand, and a warning says why)."""
    if result.get("derived_version") == DERIVED_VERSION or not fit_dir.is_dir():
        return None
    try:
        fields = fit_fields(float(result["sparsity"]), fit_dir)
    except Exception as err:  # noqa: BLE001 -- one unreadable folder must not stop the study's report
        log.warning("%s: kept the stored result, its fit log could not be re-read: %s", fit_dir, err)
        return None
    return {**result, **fields}


def snr_columns(results: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ``test/acc@<snr>dB`` columns any result has, by SNR."""
    found = {key for result in results for key in result if _is_snr_key(key)}
    return sorted(found, key=keys.parse_snr_key)


def study_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One ``study.csv`` row per result, sorted by config, sparsity, criterion, guard, seed."""
    rows = []
    for result in results:
        row = {column: result.get(column) for column in COLUMNS}
        row.update(config=result["config"], cell=result["name"], target_sparsity=result["sparsity"])
        if result.get("kind") == DENSE:
            row.update(criterion=None, criterion_args=None, guard=None)
        row.update({key: result[key] for key in snr_columns([result])})
        rows.append(row)
    return sorted(rows, key=lambda r: (r["config"], r["target_sparsity"], str(r["criterion"]), str(r["guard"]),
                                       r["seed"]))  # fmt: skip


def write_study_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """``study.csv``: :data:`COLUMNS` with the SNR columns after ``test_acc``; empty cell = not logged."""
    columns = list(COLUMNS)
    position = columns.index("test_acc") + 1
    columns[position:position] = snr_columns(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None or (isinstance(v, float) and math.isnan(v)) else v for k, v in row.items()})
    write_text_atomic(path, buffer.getvalue())
