"""What a pruned quickstart writes to W&B (read back from the offline run), alone and under DDP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnn_prune.cli import main
from rnn_prune.loggers import INIT_TIMEOUT_S, WandbLogger
from rnn_prune.registry import graphs
from rnn_prune.wandb_offline import find_offline_runs, read_history, wait_until_complete
from tests.conftest import ROOT, quickstart_args

EPOCHS = 3


def _rows_by_epoch(history: list[dict], key: str) -> dict[int, list[dict]]:
    rows: dict[int, list[dict]] = {}
    for row in history:
        if key in row:
            rows.setdefault(int(row["epoch"]), []).append(row)
    return rows


@pytest.mark.slow  # three epochs: the dense one, then two pruning steps
def test_offline_run_holds_every_measure_for_every_epoch(tmp_path: Path) -> None:
    cli = main(quickstart_args("fit", tmp_path, "--trainer.max_epochs", str(EPOCHS)))
    runs = find_offline_runs(tmp_path)
    assert len(runs) == 1
    assert wait_until_complete(runs[0]), "the CLI finishes its W&B run"
    history = read_history(runs[0])

    val_acc = _rows_by_epoch(history, "val/acc")
    assert sorted(val_acc) == list(range(EPOCHS))
    for epoch, rows in val_acc.items():
        logged = rows[-1]["val/acc"]
        assert 0.0 <= logged <= 1.0, (epoch, logged)
    assert val_acc[EPOCHS - 1][-1]["val/acc"] == pytest.approx(cli.trainer.callback_metrics["val/acc"].item())

    graph_names = [g.name for g in graphs(cli.model)]
    assert "lstm.l0.hh.forget_gate" in graph_names and "head" in graph_names
    measured = _rows_by_epoch(history, "graph/ramanujan_fraction")
    assert sorted(measured) == list(range(EPOCHS))
    for epoch, rows in measured.items():
        assert len(rows) == 1, f"epoch {epoch} measured {len(rows)} times"
        row = rows[0]
        missing = [name for name in graph_names if f"graph/{name}/delta_r" not in row]
        assert not missing, f"epoch {epoch} lacks delta_r of {missing}"
        assert "graph/lstm.l0.unfolded/reach@lag0" in row
    tables = [row["graph/table.nrows"] for row in history if "graph/table.nrows" in row]
    assert tables == [len(graph_names)] * EPOCHS  # a wandb.Table (graph x measure) per epoch
    histograms = [row for row in history if "graph/lstm.l0.hh.forget_gate/left_degree_hist._type" in row]
    assert len(histograms) == EPOCHS
    figures = {key.split(".")[0] for row in history for key in row if key.startswith("report/")}
    assert figures == {"report/accuracy_vs_sparsity", "report/delta_r_vs_sparsity", "report/normalized_gap_vs_sparsity"}
    pruned = _rows_by_epoch(history, "prune/sparsity")
    assert sorted(pruned) == list(range(EPOCHS)) and all(len(rows) == 1 for rows in pruned.values())
    sparsity = [pruned[e][0]["prune/sparsity"] for e in range(EPOCHS)]
    assert sparsity[0] == 0.0 < sparsity[1] < sparsity[2] < 0.9  # cubic schedule: dense epoch 0, then pruning


@pytest.mark.slow
def test_ddp_on_cpu_logs_one_run_once_per_epoch_with_identical_masks(tmp_path: Path) -> None:
    masks_dir = tmp_path / "masks"
    args = quickstart_args(
        "fit", tmp_path / "run",
        "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu",
        "--trainer.max_epochs", str(EPOCHS),
        "--trainer.callbacks+=tests.ddp_helpers.SaveMasksPerRank", "--trainer.callbacks.out_dir", str(masks_dir),
        # every rank must see rank 0's graph measures to monitor them
        "--trainer.callbacks+=lightning.pytorch.callbacks.EarlyStopping", "--trainer.callbacks.monitor",
        "graph/min_delta_r", "--trainer.callbacks.mode", "max", "--trainer.callbacks.patience", "100",
        "--trainer.callbacks.check_on_train_epoch_end", "true",
    )  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="offline", WANDB_SILENT="true")
    done = subprocess.run(
        [sys.executable, "-m", "rnn_prune", *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]

    runs = find_offline_runs(tmp_path)
    assert len(runs) == 1, f"expected one W&B run, found {runs}"
    assert wait_until_complete(runs[0])
    history = read_history(runs[0])
    for key in ("val/acc", "graph/ramanujan_fraction", "prune/sparsity"):
        rows = _rows_by_epoch(history, key)
        assert sorted(rows) == list(range(EPOCHS)), key
        assert all(len(r) == 1 for r in rows.values()), f"{key} logged more than once in an epoch"

    rank0, rank1 = (torch.load(masks_dir / f"rank{r}.pt") for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    assert any(not m.all() for m in rank0.values()), "the run pruned something"


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without W&B's or XDG's folder choices, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "XDG_"))}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_an_online_run_waits_the_loggers_own_shorter_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_INIT_TIMEOUT", raising=False)
    logger = WandbLogger(offline=False, project="rnn-prune")  # no run starts until .experiment
    assert logger._shorten_init_timeout() == INIT_TIMEOUT_S < 90  # W&B's own default is 90 s
    assert logger._wandb_init["settings"].init_timeout == INIT_TIMEOUT_S


@pytest.mark.slow
def test_unreachable_wandb_server_falls_back_to_offline(tmp_path: Path) -> None:
    # An API key but no server (a closed loopback port): the online run cannot start. A fresh
    # process, since wandb keeps its settings (and Lightning its WANDB_MODE) process-wide. No
    # WANDB_INIT_TIMEOUT: the logger's own shorter wait applies, announced before it starts; the
    # child shortens that constant to WAIT_S, so the test waits 3 s instead of INIT_TIMEOUT_S. (No
    # clock is read: the announced wait is the one set, see the test above; W&B's is 90 s.)
    wait_s = 3.0
    env = _clean_env(WANDB_API_KEY="0" * 40, WANDB_BASE_URL="http://127.0.0.1:9", WANDB_SILENT="true")
    args = quickstart_args("fit", tmp_path, "--trainer.max_epochs", "1", "--trainer.logger.init_args.offline", "false")
    child = (
        f"import runpy, rnn_prune.loggers; rnn_prune.loggers.INIT_TIMEOUT_S = {wait_s}; "
        "runpy.run_module('rnn_prune', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", child, *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    notice = done.stderr.find(f"within {wait_s:.0f} s")
    assert 0 <= notice < done.stderr.find("logging offline instead"), "warned before the wait, not after"
    runs = [run for run in find_offline_runs(tmp_path) if run.name.startswith("offline-run-")]
    assert len(runs) == 1  # (beside the failed online attempt's own directory)
    assert wait_until_complete(runs[0])
    assert any("val/acc" in row for row in read_history(runs[0]))


@pytest.mark.slow
def test_wandb_leaves_nothing_outside_the_root(tmp_path: Path) -> None:
    """The README's promise: every output lands under default_root_dir. W&B's staging area
    (~/.local/share/wandb), cache (~/.cache/wandb) and temporary media folders included."""
    home, tmp, root = tmp_path / "home", tmp_path / "tmp", tmp_path / "root"
    home.mkdir()
    tmp.mkdir()
    env = _clean_env(HOME=str(home), TMPDIR=str(tmp), WANDB_MODE="offline", WANDB_SILENT="true")
    args = quickstart_args("fit", root, "--trainer.max_epochs", "1")
    done = subprocess.run(
        [sys.executable, "-m", "rnn_prune", *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert find_offline_runs(root)
    outside = [str(p) for base in (home, tmp) for p in base.rglob("*") if "wandb" in str(p.relative_to(base))]
    assert not outside, f"W&B wrote outside default_root_dir: {outside}"
