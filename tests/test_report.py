"""The study report: logged runs in, figures and a Markdown summary out.

No training: the runs are written the way Lightning writes them, by calling the real loggers
(``CSVLogger.log_metrics`` / ``WandbLogger.log_metrics`` with epoch-keyed dicts, one call per
logging event, epoch-level metrics at different steps), with values chosen so that every number in
the summary is known by hand.
"""

from __future__ import annotations

import logging
import math
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from matplotlib.image import imread

from rnn_prune import keys
from rnn_prune.expansion.verdict import RamanujanShare
from rnn_prune.report import ReportError, RunData, load_run, main, make_figures, plots, summary_table
from rnn_prune.wandb_offline import find_offline_runs, run_file, wait_until_complete
from tests.conftest import offline_wandb_env

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {
    "accuracy_vs_sparsity",
    "delta_r_vs_sparsity",
    "normalized_gap_vs_sparsity",
    "guarded_vs_unguarded",
    "accuracy_vs_snr",
}

# --- a hand-made study -------------------------------------------------------------------------
# delta_r of a graph is OFFSET[graph] - sparsity, so a graph is Ramanujan while sparsity <= offset.
# Unguarded, sparsity reaches 0.9: lstm.l0.hh loses the property first (epoch 4, sparsity 0.75),
# the forget gate next (epoch 5), head never; the input gate never had it (so it never "loses" it).
# The unguarded run logs each graph's verdict (is_ramanujan) as today's runs do; the guarded one
# logs only graph/ramanujan_fraction and the verdict's inputs, as runs from before the per-graph
# verdict did (the report makes the verdict from those).
GRAPHS = ("head", "lstm.l0.hh", "lstm.l0.ih.forget_gate", "lstm.l0.ih.input_gate")
OFFSET = {"head": 0.95, "lstm.l0.hh": 0.65, "lstm.l0.ih.forget_gate": 0.8, "lstm.l0.ih.input_gate": -0.1}
SPARSITY = {
    "unguarded": [0.0, 0.3, 0.5, 0.65, 0.75, 0.82, 0.87, 0.9],
    "guarded": [0.0, 0.3, 0.5, 0.55, 0.6, 0.62, 0.63, 0.63],  # the guard stops lstm.l0.hh at epoch 5
}
VAL_ACC = {
    "unguarded": [0.5, 0.8, 0.9, 0.93, 0.92, 0.9, 0.85, 0.8],
    "guarded": [0.5, 0.8, 0.9, 0.93, 0.94, 0.94, 0.95, 0.95],
}
TEST_ACC = {"unguarded": 0.81, "guarded": 0.94, "dense": 0.97}
SNR_ACC = {"dense": {20: 0.95, 10: 0.9, 0: 0.6, -5: 0.4}, "unguarded": {20: 0.78, 10: 0.7, 0: 0.45, -5: 0.3}}
EPOCHS = len(VAL_ACC["unguarded"])
STEPS_PER_EPOCH = 5
E = keys.EPOCH


def study_rows(kind: str, *, snr: bool = False) -> list[tuple[dict[str, float], int]]:
    """(metrics, step) per logging call, in the order a Lightning fit + test logs them."""
    rows = []
    for epoch in range(EPOCHS):
        last_step = (epoch + 1) * STEPS_PER_EPOCH - 1
        for step in range(epoch * STEPS_PER_EPOCH, last_step + 1, 2):
            rows.append(({keys.TRAIN_LOSS: 1.0 / (step + 1), E: epoch}, step))
        if kind == "dense":
            rows.append(({keys.VAL_ACC: 0.9 + epoch / 100, keys.VAL_LOSS: 0.3, E: epoch}, last_step))
            continue
        rows.append(({keys.VAL_ACC: VAL_ACC[kind][epoch], keys.VAL_LOSS: 0.3, E: epoch}, last_step))
        sparsity = SPARSITY[kind][epoch]
        prune = {keys.SPARSITY: sparsity, E: epoch}
        prune.update({keys.graph_sparsity(g): sparsity for g in GRAPHS})
        if kind == "guarded" and epoch >= 5:
            prune[keys.stopped_epoch("lstm.l0.hh")] = 5
        rows.append((prune, last_step + 1))
        graph = {E: epoch}
        for g in GRAPHS:
            graph[keys.graph(g, "delta_r")] = OFFSET[g] - sparsity
            graph[keys.graph(g, "normalized_gap")] = 0.5 * (1 - sparsity) + OFFSET[g] / 10
            if kind == "unguarded":
                graph[keys.graph(g, "is_ramanujan")] = float(OFFSET[g] >= sparsity)
            else:
                inputs = {"avg_left_degree": 8.0, "avg_right_degree": 8.0, "num_nonisolated_components": 1.0}
                graph.update({keys.graph(g, measure): value for measure, value in inputs.items()})
        graph[keys.MIN_DELTA_R] = min(OFFSET[g] - sparsity for g in GRAPHS)
        if kind == "guarded":
            graph[keys.RAMANUJAN_FRACTION] = sum(OFFSET[g] >= sparsity for g in GRAPHS) / 4
        rows.append((graph, last_step + 1))
    test = {keys.TEST_ACC: TEST_ACC[kind], E: EPOCHS}
    if snr:
        test.update({keys.test_acc(keys.snr_suffix(db)): acc for db, acc in SNR_ACC[kind].items()})
    rows.append((test, EPOCHS * STEPS_PER_EPOCH))
    return rows


def write_csv_run(run_dir: Path, rows: list[tuple[dict[str, float], int]]) -> Path:
    logger = CSVLogger(save_dir=run_dir, name="lightning_logs")
    for metrics, step in rows:
        logger.log_metrics(metrics, step)
    logger.save()
    return Path(logger.log_dir) / "metrics.csv"


def write_wandb_run(run_dir: Path, rows: list[tuple[dict[str, float], int]], name: str) -> None:
    logger = WandbLogger(offline=True, save_dir=str(run_dir), project="rnn-prune", name=name)
    logger.log_hyperparams({"model": {"cell": "lstm"}})
    for metrics, step in rows:
        logger.log_metrics(metrics, step)
    logger.experiment.finish()
    (run,) = find_offline_runs(run_dir)
    assert wait_until_complete(run)  # finish() can return before wandb-core flushed the file


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four runs: unguarded and guarded (CSV), the unguarded one again with SNR tests (W&B
    offline, no CSV), and a dense run with SNR tests and no pruning metrics (CSV)."""
    root = tmp_path_factory.mktemp("study")
    runs = {name: root / name for name in ("unguarded", "guarded", "wandb_pruned", "dense")}
    write_csv_run(runs["unguarded"], study_rows("unguarded"))
    write_csv_run(runs["guarded"], study_rows("guarded"))
    write_csv_run(runs["dense"], study_rows("dense", snr=True))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in offline_wandb_env(root).items():
            mp.setenv(key, value)
        write_wandb_run(runs["wandb_pruned"], study_rows("unguarded", snr=True), "wandb_pruned")
    return runs


def table_rows(table: str) -> dict[str, dict[str, str]]:
    lines = [line.strip().strip("|").split(" | ") for line in table.strip().splitlines()]
    header = [cell.strip() for cell in lines[0]]
    return {cells[0].strip(): dict(zip(header, (c.strip() for c in cells), strict=True)) for cells in lines[2:]}


def assert_not_blank(path: Path) -> None:
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0
    colours = np.unique(image.reshape(-1, image.shape[-1]).round(2), axis=0)
    assert len(colours) > 10


# --- loading ------------------------------------------------------------------------------------


def test_load_run_merges_rows_per_epoch(study: dict[str, Path]) -> None:
    run = load_run(study["unguarded"])
    assert run.name == "unguarded"
    assert run.source == study["unguarded"] / "lightning_logs" / "version_0" / "metrics.csv"
    assert run.epochs.tolist() == list(range(EPOCHS + 1))  # the test row is logged at epoch 8
    assert run.columns["val/acc"][:EPOCHS].tolist() == VAL_ACC["unguarded"]
    assert run.columns["prune/sparsity"][:EPOCHS].tolist() == SPARSITY["unguarded"]
    assert math.isnan(run.columns["val/acc"][EPOCHS])
    # the last training step of each epoch wins over the earlier ones
    assert run.columns["train/loss"][0] == 1.0 / 5
    assert run.last("test/acc") == TEST_ACC["unguarded"]
    assert run.graphs == sorted(GRAPHS)
    assert not run.guarded and load_run(study["guarded"]).guarded


def test_wandb_run_reads_like_the_csv_run(study: dict[str, Path]) -> None:
    csv_run, wandb_run = load_run(study["unguarded"]), load_run(study["wandb_pruned"])
    assert wandb_run.source.suffix == ".wandb"
    assert wandb_run.epochs.tolist() == csv_run.epochs.tolist()
    shared = [k for k in csv_run.columns if k != "step"]
    assert set(shared) <= set(wandb_run.columns)
    for key in shared:
        np.testing.assert_array_equal(wandb_run.columns[key], csv_run.columns[key], err_msg=key)
    assert wandb_run.last("test/acc@-5dB") == SNR_ACC["unguarded"][-5]


def test_from_rows_keeps_last_non_empty_value() -> None:
    rows = [
        {"epoch": "0", "val/acc": "0.5", "train/loss": ""},
        {"epoch": "0", "val/acc": "", "train/loss": "2.0"},
        {"val/acc": "0.6"},  # no epoch: belongs to the epoch of the row before
        {"epoch": "2", "val/acc": "nan", "note": "text"},
    ]
    run = RunData.from_rows("r", rows)
    assert run.epochs.tolist() == [0, 2]
    assert run.columns["val/acc"][0] == 0.6 and math.isnan(run.columns["val/acc"][1])
    assert run.columns["train/loss"].tolist()[0] == 2.0
    assert "note" not in run.columns
    assert run.last("val/acc") == 0.6


def test_ramanujan_share_and_first_loss(study: dict[str, Path]) -> None:
    unguarded, guarded = load_run(study["unguarded"]), load_run(study["guarded"])
    # from the logged verdicts: at sparsity 0.9 only head (offset 0.95) is Ramanujan
    assert unguarded.ramanujan_fraction()[EPOCHS - 1] == 0.25
    assert unguarded.final_ramanujan_share() == RamanujanShare(0.25, 4, 0)
    assert unguarded.ramanujan_losses() == {"lstm.l0.hh": 4, "lstm.l0.ih.forget_gate": 5}
    assert unguarded.first_loss() == ("lstm.l0.hh", 4, 0.75)
    assert guarded.ramanujan_fraction()[EPOCHS - 1] == 0.75  # an older run: as logged
    assert guarded.first_loss() is None


def _verdict_rows(verdicts: dict[str, list[float]], delta_r: dict[str, list[float]]) -> list[dict[str, float]]:
    rows = []
    for epoch in range(len(next(iter(verdicts.values())))):
        row = {E: epoch, keys.SPARSITY: 0.1 * (epoch + 1)}
        row.update({keys.graph(g, "is_ramanujan"): v[epoch] for g, v in verdicts.items() if v[epoch] is not None})
        row.update({keys.graph(g, "delta_r"): d[epoch] for g, d in delta_r.items()})
        rows.append(row)
    return rows


def test_verdicts_not_delta_r_decide_share_and_loss() -> None:
    """The logged is_ramanujan decides: NaN (average degree < 3) is no verdict and stays out of the
    denominator; a disconnected graph is not Ramanujan although its Δr >= 0."""
    rows = _verdict_rows(
        verdicts={"ok": [1.0, 0.0, 0.0], "sparse": [math.nan, math.nan, 1.0], "split": [0.0, 0.0, 0.0],
                  "late": [None, 1.0, 1.0]},  # fmt: skip  (late: not measured in epoch 0)
        delta_r={"ok": [0.5, 0.3, -0.1], "sparse": [0.2, 0.2, 0.2], "split": [0.1, 0.1, 0.1], "late": [1, 1, 1]},
    )
    run = RunData.from_rows("r", rows)
    assert run.ramanujan_shares() == [RamanujanShare(0.5, 2, 1), RamanujanShare(1 / 3, 3, 1),
                                      RamanujanShare(0.5, 4, 0)]  # fmt: skip
    assert run.ramanujan_fraction().tolist() == [0.5, 1 / 3, 0.5]
    assert run.ramanujan_losses() == {"ok": 1}  # Δr >= 0 at epoch 1, but the verdict is 0
    assert run.first_loss() == ("ok", 1, 0.2)
    table = table_rows(summary_table([run]))["r"]
    assert (table["Ramanujan share (end)"], table["graphs without verdict (end)"]) == ("0.5000", "0")


def test_runs_without_verdicts_get_the_one_verdict_for_share_and_loss() -> None:
    """Old runs logged no is_ramanujan: the loss is ramanujan_verdict of the logged Δr, degrees and
    components besides isolated nodes -- a disconnected graph loses the property at Δr >= 0, a graph
    below average degree 3 has no verdict, and Δr alone decides nothing."""
    def g(graph: str, measure: str) -> str:
        return keys.graph(graph, measure)

    # epoch 0: both graphs connected, Δr >= 0; epoch 1: "split" has 2 components besides the 2
    # isolated nodes (Δr still >= 0), "thin" falls below degree 3 (no verdict) with Δr < 0
    rows = [{E: e, g("split", "delta_r"): 0.2, g("split", "avg_left_degree"): 4,
             g("split", "avg_right_degree"): 4, g("split", "num_components"): c,
             g("split", "num_isolated_left"): 1, g("split", "num_isolated_right"): 1,
             g("thin", "delta_r"): d, g("thin", "avg_left_degree"): deg, g("thin", "avg_right_degree"): 4,
             g("thin", "num_nonisolated_components"): 1,
             keys.RAMANUJAN_FRACTION: f, keys.RAMANUJAN_UNDEFINED: 1}
            for e, (c, d, deg, f) in enumerate([(3, 0.2, 4, 1.0), (4, -0.1, 2.5, 0.5)])]  # fmt: skip
    run = RunData.from_rows("old", rows)
    assert run.verdicts("split").tolist() == [1.0, 0.0] and np.isnan(run.verdicts("thin")[1])
    assert run.ramanujan_losses() == {"split": 1}
    # the share comes from the same verdicts (not the logged 0.5 of an older rule): share and loss agree
    assert run.final_ramanujan_share() == RamanujanShare(0.0, 1, 1)
    delta_r_only = RunData.from_rows("older", [{E: e, g("g", "delta_r"): d} for e, d in enumerate([0.2, -0.1])])
    assert delta_r_only.ramanujan_losses() == {} and not delta_r_only.measures_verdicts()
    assert RunData.from_rows("none", [{E: 0, keys.VAL_ACC: 0.5}]).ramanujan_fraction() is None


def test_load_run_uses_the_newest_of_several_trainings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old = write_csv_run(tmp_path / "run", [({keys.TRAIN_LOSS: 1.0, keys.VAL_ACC: 0.1, E: 0}, 0)])
    new = write_csv_run(tmp_path / "run", [({keys.TRAIN_LOSS: 1.0, keys.VAL_ACC: 0.2, E: 0}, 0)])
    os.utime(old, (1, 1))
    with caplog.at_level(logging.INFO, logger="rnn_prune.report"):
        run = load_run(tmp_path / "run")
    assert run.source == new and run.last(keys.VAL_ACC) == 0.2
    assert f"2 training runs found, using the newest: {new} (not read: {old})" in caplog.text


def _not_a_wandb_file(run_dir: Path) -> None:
    (run_dir / "wandb" / "offline-run-x").mkdir(parents=True)
    (run_dir / "wandb" / "offline-run-x" / "run-x.wandb").write_bytes(b"not a run file")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d.mkdir(), "{d}: no metrics.csv or W&B offline run found"),
        (lambda d: None, "{d}: no such file or directory"),
        (
            lambda d: write_csv_run(d, [({keys.TRAIN_LOSS: 1.0, E: 0}, 0)]),
            "{d}: {d}/lightning_logs/version_0/metrics.csv has no column val/acc",
        ),
        (
            lambda d: write_csv_run(d, [({keys.TRAIN_LOSS: 1.0, keys.VAL_ACC: 0.5}, 0)]),
            "{d}: {d}/lightning_logs/version_0/metrics.csv has no column epoch",
        ),
        (_not_a_wandb_file, "{d}: cannot read {d}/wandb/offline-run-x/run-x.wandb: "),
        (
            lambda d: write_csv_run(d, [({keys.TEST_ACC: 0.5, E: 3}, 0)]),
            "{d}: no training run, only evaluation runs ({d}/lightning_logs/version_0/metrics.csv (evaluation)): "
            "{d}/lightning_logs/version_0/metrics.csv has no column val/acc",
        ),
        (
            lambda d: (d / "lightning_logs" / "version_0").mkdir(parents=True)
            or (d / "lightning_logs" / "version_0" / "metrics.csv").write_text(""),
            "{d}: no logged history in {d}/lightning_logs/version_0/metrics.csv",
        ),
    ],
    ids=["empty", "missing", "no-val-acc", "no-epoch", "not-wandb", "evaluation-only", "no-history"],
)
def test_unusable_run_dir_is_a_one_line_error(tmp_path, capsys, make, message) -> None:
    run_dir = tmp_path / "bad"
    make(run_dir)
    with pytest.raises(ReportError, match=re.escape(message.format(d=run_dir))):
        load_run(run_dir)
    assert main([str(run_dir), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("report: " + message.format(d=run_dir))
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "summary.md").exists()


# --- several logged runs in one directory: resumed sessions, evaluations, failed starts -------------


def _wandb_session(root: Path, rows: list[dict[str, float]], *, job_type: str, run_id: str | None = None) -> Path:
    """One W&B offline session under ``root`` (``resume="allow"`` continues ``run_id``), flushed."""
    import wandb

    before = set(find_offline_runs(root))
    run = wandb.init(dir=root, project="rnn-prune", id=run_id, resume="allow" if run_id else None, job_type=job_type)
    for row in rows:
        run.log(row)
    run.finish()
    (new,) = set(find_offline_runs(root)) - before
    assert wait_until_complete(new)
    return new


def _epoch_rows(epochs: range, acc: float) -> list[dict[str, float]]:
    return [{keys.TRAIN_LOSS: 1.0, keys.VAL_ACC: acc + e / 100, keys.SPARSITY: e / 10, E: e} for e in epochs]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A training killed after epoch 4 and resumed from epoch 3 (same run id, a second session
    folder), a failed start (no history), and a test run, in one root: the order the README's flow
    and a crash leave them in."""
    root = tmp_path_factory.mktemp("resumed")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in offline_wandb_env(root).items():
            mp.setenv(key, value)
        return {
            "first": _wandb_session(root, _epoch_rows(range(5), 0.5), job_type="fit", run_id="train01"),
            "second": _wandb_session(root, _epoch_rows(range(3, 8), 0.7), job_type="fit", run_id="train01"),
            "failed": _wandb_session(root, [], job_type="fit"),
            "test": _wandb_session(root, [{keys.TEST_ACC: 0.625, keys.SPARSITY: 0.7, E: 7}], job_type="test"),
            "root": root,
        }


def test_resumed_sessions_merge_into_one_history(resumed: dict[str, Path], caplog) -> None:
    with caplog.at_level(logging.INFO, logger="rnn_prune.report"):
        run = load_run(resumed["root"])
    assert run.epochs.tolist() == list(range(8))
    # epochs 0-2 from the killed session; 3-4 logged by both, the resumed session's values win
    assert run.columns[keys.VAL_ACC].tolist() == pytest.approx([0.5, 0.51, 0.52, 0.73, 0.74, 0.75, 0.76, 0.77])
    assert run.sources == [run_file(resumed["first"]), run_file(resumed["second"])]
    assert run.evaluation == {keys.TEST_ACC: 0.625} and run.evaluation_sources == [run_file(resumed["test"])]
    assert run.final(keys.TEST_ACC) == 0.625 and run.last(keys.TEST_ACC) is None
    assert f"skipped {run_file(resumed['failed'])}: it logged no history" in caplog.text


def test_summary_reads_test_acc_from_the_evaluation_run(resumed: dict[str, Path], tmp_path: Path, capsys) -> None:
    assert main([str(resumed["root"]), "--out", str(tmp_path)]) == 0
    summary = (tmp_path / "summary.md").read_text()
    row = table_rows(summary[summary.index("| run") : summary.index("\n\n", summary.index("| run"))])
    assert row[resumed["root"].name]["test acc"] == "0.6250"
    assert f"test results from `{run_file(resumed['test'])}`" in summary
    assert "it logged no history" in capsys.readouterr().err


def test_evaluation_csv_beside_a_training_csv(tmp_path: Path) -> None:
    """Without a W&B job type, a log with no train/ key is an evaluation (here a CSV test run)."""
    write_csv_run(tmp_path, [({keys.TRAIN_LOSS: 1.0, keys.VAL_ACC: 0.5, E: 0}, 0)])
    test_csv = write_csv_run(tmp_path, [({keys.TEST_ACC: 0.75, E: 0}, 0)])
    run = load_run(tmp_path)
    assert run.final(keys.TEST_ACC) == 0.75 and run.evaluation_sources == [test_csv]
    assert table_rows(summary_table([run]))[run.name]["test acc"] == "0.7500"
    tests_only = load_run(test_csv.parent, require=(keys.TEST_ACC,))  # e.g. a study's separate test root
    assert tests_only.last(keys.TEST_ACC) == 0.75


# --- figures and summary ------------------------------------------------------------------------


def test_main_writes_every_figure_and_the_summary(study: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert (
        main([str(study[name]) for name in ("unguarded", "guarded", "wandb_pruned", "dense")] + ["--out", str(out)])
        == 0
    )
    assert {p.stem for p in out.glob("*.png")} == FIGURES
    for png in out.glob("*.png"):
        assert_not_blank(png)
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(p) for p in [*out.glob("*.png"), out / "summary.md"])
    summary = (out / "summary.md").read_text()
    assert "![accuracy_vs_snr](accuracy_vs_snr.png)" in summary

    rows = table_rows(summary[summary.index("| run") : summary.index("\n\n", summary.index("| run"))])
    assert rows["unguarded"] == {
        "run": "unguarded",
        "guarded": "no",
        "final sparsity": "0.9000",
        "final val acc": "0.8000",
        "best val acc": "0.9300",
        "Ramanujan share (end)": "0.2500",
        "graphs without verdict (end)": "0",
        "first Ramanujan loss at sparsity": "0.7500 (lstm.l0.hh, epoch 4)",
        "test acc": "0.8100",
    }
    assert rows["wandb_pruned"] | {"run": "unguarded"} == rows["unguarded"]
    guarded = rows["guarded"]
    assert (guarded["guarded"], guarded["final sparsity"], guarded["best val acc"]) == ("yes", "0.6300", "0.9500")
    assert (guarded["Ramanujan share (end)"], guarded["first Ramanujan loss at sparsity"]) == ("0.7500", "never")
    dense = rows["dense"]
    assert (dense["final sparsity"], dense["final val acc"], dense["best val acc"]) == ("n/a", "0.9700", "0.9700")
    assert (dense["first Ramanujan loss at sparsity"], dense["test acc"]) == ("n/a", "0.9700")


def test_guarded_figure_needs_both_kinds(study: dict[str, Path], tmp_path: Path, capsys) -> None:
    unguarded_only = make_figures([load_run(study["unguarded"]), load_run(study["wandb_pruned"])], tmp_path / "a")
    assert "guarded_vs_unguarded" not in unguarded_only
    assert set(unguarded_only) == FIGURES - {"guarded_vs_unguarded"}
    both = make_figures([load_run(study["guarded"]), load_run(study["unguarded"])], tmp_path / "b")
    assert both["guarded_vs_unguarded"] == tmp_path / "b" / "guarded_vs_unguarded.png"
    assert main([str(study["guarded"]), "--out", str(tmp_path / "c")]) == 0
    assert "skipped guarded_vs_unguarded.png: needs a guarded run" in capsys.readouterr().err


def test_figures_without_columns_are_skipped_with_a_note(study: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "dense_only"
    assert main([str(study["dense"]), "--out", str(out)]) == 0
    assert [p.name for p in out.glob("*.png")] == ["accuracy_vs_snr.png"]
    err = capsys.readouterr().err
    assert "skipped accuracy_vs_sparsity.png: no run logged both val/acc and prune/sparsity" in err
    assert "skipped delta_r_vs_sparsity.png" in err and "skipped normalized_gap_vs_sparsity.png" in err
    assert "| dense | no | n/a | 0.9700 |" in (out / "summary.md").read_text()


def test_summary_table_shape(study: dict[str, Path]) -> None:
    table = summary_table([load_run(study["unguarded"])])
    lines = table.splitlines()
    assert len(lines) == 3 and lines[1] == "|---|---|---|---|---|---|---|---|---|"
    assert all(line.count("|") == 10 for line in lines)


def _dense_and_pruned() -> list[RunData]:
    def rows(final: float) -> list[dict[str, float]]:
        return [{E: e, keys.VAL_ACC: 0.9 - e * final / 10, keys.SPARSITY: e * final / 3,
                 keys.graph("g", "delta_r"): 1 - e * final, keys.graph("g", "normalized_gap"): 0.5,
                 keys.graph("g", "is_ramanujan"): float(1 - e * final >= 0)} for e in range(4)]  # fmt: skip

    return [RunData.from_rows("dense", rows(0.0)), RunData.from_rows("pruned", rows(0.9))]


@pytest.mark.parametrize("figure", ["delta_r_vs_sparsity", "normalized_gap_vs_sparsity", "accuracy_vs_sparsity"])
def test_a_dense_run_is_a_reference_line_not_a_panel(figure: str) -> None:
    dense, pruned = _dense_and_pruned()
    drawn = plots.FIGURES[figure]([dense, pruned])
    (ax,) = [ax for ax in drawn.axes if ax.get_visible()]  # one panel: the pruned run's
    assert ax.get_xlim()[1] > 0.5  # pruned to 0.9, not a dense x-range around 0
    levels = [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]
    expected = dense.last(keys.VAL_ACC) if figure == "accuracy_vs_sparsity" else dense.columns[
        keys.graph("g", "delta_r" if figure == "delta_r_vs_sparsity" else "normalized_gap")][-1]
    assert levels == [expected]
    with pytest.raises(plots.SkipFigure, match="above 0"):
        plots.FIGURES[figure]([dense])


def test_legend_labels_say_the_kind_once(study: dict[str, Path]) -> None:
    runs = [load_run(study[name]) for name in ("unguarded", "guarded", "dense", "wandb_pruned")]
    dense, pruned = _dense_and_pruned()
    labels = []
    for figure in (plots.guarded_vs_unguarded([*runs[:2], dense]), plots.accuracy_vs_snr(runs)):
        labels += [text.get_text() for ax in figure.axes if (legend := ax.get_legend()) for text in legend.get_texts()]
    assert "dense (dense)" not in labels and "guarded (guarded)" not in labels
    assert {"dense, final", "guarded", "unguarded", "dense", "wandb_pruned (sparsity 0.90)"} <= set(labels)


def test_density_axis_helpers_spread_the_high_sparsities() -> None:
    figure, axes = plots.panel_grid(4)
    assert len(figure.axes) == 4 and axes == figure.axes  # a 2 x 3 grid without two empty panels
    ax = axes[0]
    line = plots.plot_vs_density(ax, [0.99, 0.0, 0.9, 0.5], [0.5, 0.9, math.nan, 0.8], spread=[0.1, 0, 0, 0.05])
    assert line.get_xdata().tolist() == pytest.approx([1.0, 0.5, 0.01])  # NaN dropped, densest first
    plots.reference_line(ax, 0.9, label="dense")
    plots.mark_sparsity(ax, 0.99, label="break")
    plots.set_density_axis(ax)
    assert ax.get_xscale() == "log" and ax.xaxis_inverted()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.5", "0.9", "0.99"]
    assert ax.get_lines()[-1].get_xdata()[0] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="count=0 must be at least 1"):
        plots.panel_grid(0)


def test_module_entry_point(study: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m rnn_prune.report`` runs the package's ``__main__`` (in-process, as runpy does)."""
    monkeypatch.setattr(sys, "argv", ["rnn_prune.report", str(study["guarded"]), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("rnn_prune.report", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 0
    assert "| guarded | yes | 0.6300 |" in (tmp_path / "o" / "summary.md").read_text()


@pytest.mark.slow  # starts a Python process
def test_callbacks_import_neither_the_report_nor_wandb_protobufs() -> None:
    """The figure callback imports the report only when it draws: ``from callbacks import ...``
    loads neither the report nor wandb's protobufs (checked in a fresh interpreter). matplotlib
    itself is not checked: Lightning's torchmetrics imports it whenever it is installed."""
    code = (
        "import sys; from callbacks import ScheduledPruning, StudyFigures; "
        "print(sorted(m for m in sys.modules if m.startswith(('rnn_prune.report', 'wandb.proto'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert result.stdout.strip() == "[]"


# --- W&B sweep files ----------------------------------------------------------------------------

SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))


def test_every_benchmark_has_a_sweep() -> None:
    assert {p.stem for p in SWEEPS} >= {"quickstart", "smnist", "scifar10", "speech"}


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_file_is_a_valid_sweep(path: Path) -> None:
    sweep = yaml.safe_load(path.read_text())
    assert sweep["method"] in {"grid", "random", "bayes"}
    assert sweep["metric"] == {"name": "val/acc", "goal": "maximize"}
    assert sweep["program"]  # the agent reads it even when `command` does not use ${program}
    command = sweep["command"]
    assert command[:5] == ["${env}", "${interpreter}", "-m", "rnn_prune", "fit"]
    assert "${args}" in command
    parameters = sweep["parameters"]
    # ${args} passes --config=... first only if it is the first parameter (also alphabetically)
    assert next(iter(parameters)) == "config" and min(parameters) == "config"
    assert {"config", "sparsity"} <= set(parameters)
    for name, spec in parameters.items():
        assert isinstance(spec.get("values"), list) and spec["values"], name
    assert all(0 < s < 1 for s in parameters["sparsity"]["values"])
    for config in parameters["config"]["values"]:
        assert config.startswith("configs/") and config.endswith(".yaml")
    # every key carries a comment
    for line in path.read_text().splitlines():
        if ":" in line and not line.lstrip().startswith(("#", "-")):
            assert "#" in line, f"{path.name}: uncommented key: {line}"


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_configs_exist(path: Path) -> None:
    missing = [
        c for c in yaml.safe_load(path.read_text())["parameters"]["config"]["values"] if not (ROOT / c).is_file()
    ]
    assert not missing, f"{path.name} names configs that do not exist: {', '.join(missing)}"


def _agent_argv(sweep: dict, values: dict) -> list[str]:
    """The argv the W&B agent would run for one grid point, minus ``python -m rnn_prune``: the
    ``${...}`` macros are expanded by wandb's own helper, as ``wandb agent`` does."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    macros = create_sweep_command_args({"args": {name: {"value": value} for name, value in values.items()}})
    argv = []
    for part in sweep["command"]:
        if part.startswith("${"):
            argv += macros.get(part[2:-1], [])  # ${env} / ${interpreter} are the agent's own
        else:
            argv.append(part)
    assert argv[:3] == ["-m", "rnn_prune", "fit"]
    return argv[2:]


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_runs_parse_through_the_real_cli(path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Every config of a sweep, with the last value of every other parameter, parses; the
    overrides land after the config file (so they win)."""
    from rnn_prune.cli import main as cli_main

    monkeypatch.chdir(ROOT)  # the agent runs from the repository root; config paths are relative
    sweep = yaml.safe_load(path.read_text())
    parameters = sweep["parameters"]
    for config in parameters["config"]["values"]:
        values = {name: spec["values"][-1] for name, spec in parameters.items()} | {"config": config}
        with pytest.raises(SystemExit) as exit_info:
            cli_main([*_agent_argv(sweep, values), "--print_config"])
        assert exit_info.value.code in (0, None)
        printed = yaml.safe_load(capsys.readouterr().out)
        assert printed["sparsity"] == values["sparsity"]
        assert printed["seed_everything"] == values["seed_everything"]
        if "guard" in values:
            assert printed["guard"] == values["guard"]
        if "model.cell" in values:
            assert printed["model"]["cell"] == values["model.cell"]


def test_quickstart_sweep_sets_the_pruning_callback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from callbacks import ScheduledPruning
    from rnn_prune.cli import main as cli_main
    from rnn_prune.guards import RamanujanGuard

    monkeypatch.chdir(ROOT)
    sweep = yaml.safe_load((ROOT / "configs" / "sweeps" / "quickstart.yaml").read_text())
    # the unguarded config with --guard (the CLI's sweep flags; merged from tests/test_cli.py)
    values = {"config": "configs/quickstart.yaml", "model.cell": "gru", "seed_everything": 1, "sparsity": 0.7,
              "guard": "ramanujan"}  # fmt: skip
    argv = [*_agent_argv(sweep, values), f"--trainer.default_root_dir={tmp_path}"]
    cli = cli_main(argv[1:], run=False)  # without a subcommand: instantiate, do not fit
    (pruning,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, ScheduledPruning)]
    assert pruning.schedule.final_sparsity == 0.7 and isinstance(pruning.guard, RamanujanGuard)
    assert cli.model.hparams.cell == "gru"
