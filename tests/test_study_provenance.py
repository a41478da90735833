"""Cells that reproduce: fixed threads, provenance in result.json, the recorded command in study.json."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rnn_prune.study import command, provenance
from rnn_prune.study.command import main
from rnn_prune.study.grid import build_grid
from rnn_prune.study.runner import RESULT, Study
from tests.conftest import CONFIGS, offline_wandb_env
from tests.test_study_command import _FakeProcesses  # its fit records a finished outcome, as a real one does

QUICKSTART = str(CONFIGS / "quickstart.yaml")


def test_versions_and_commit_are_read_without_importing_the_stack(tmp_path: Path) -> None:
    found = provenance.versions()
    assert set(found) == {"python", "torch", "lightning", "rnn_prune"} and found["torch"] and found["lightning"]
    commit, dirty = provenance.git_state()
    assert commit is None or re.fullmatch("[0-9a-f]{40}", commit)  # None where the package is not a checkout
    assert provenance.git_state(tmp_path) == (None, None)  # not a git checkout


def test_cell_provenance_records_threads_and_device() -> None:
    record = provenance.cell_provenance({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    assert record["threads"] == 1 and record["gpu"] is None and record["cpu"] == provenance.cpu_name()
    assert record["torch"] == provenance.versions()["torch"] and "git_commit" in record
    assert provenance.cell_provenance({"CUDA_VISIBLE_DEVICES": "no-such-gpu"})["gpu"] is None


def test_result_json_records_provenance_and_how_to_rerun_the_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   ) -> None:  # fmt: skip
    study = Study.prepare(QUICKSTART, tmp_path, ["--trainer.max_epochs", "2"])
    cell = build_grid(QUICKSTART, [0.9], ["magnitude"], ["none"], [3])[0]
    monkeypatch.setattr("rnn_prune.study.runner.cell_result", lambda cell, fit_dir, test_dir, fit_just_ran: {})
    processes = _FakeProcesses()
    study.run_cell(cell, {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "PATH": "/bin"}, processes)
    result = json.loads((study.cell_dir(cell) / RESULT).read_text())
    assert result["provenance"]["threads"] == 2 and result["provenance"]["torch"] == provenance.versions()["torch"]
    rerun = result["rerun"]
    assert rerun["env"] == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    assert rerun["fit"] == processes.commands[0] and rerun["test"] == processes.commands[1]
    assert "--ckpt_path" not in rerun["fit"] and rerun["fit"][rerun["fit"].index("--seed_everything") + 1] == "3"


def test_study_json_records_each_invocation_once_and_warns_on_changed_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = Path(QUICKSTART)
    kwargs: dict[str, Any] = {"config": config, "overrides": ["--trainer.max_epochs", "2"], "threads_per_cell": 1,
                              "cells_per_gpu": 1, "devices": ["cpu"]}  # fmt: skip
    argv = ["--config", QUICKSTART, "--sparsity", "0", "--out", str(tmp_path)]
    with caplog.at_level(logging.WARNING, logger="rnn_prune.study"):
        provenance.record_invocation(tmp_path, [*argv, "--cell-index", "0"], **kwargs)
        provenance.record_invocation(tmp_path, [*argv, "--cell-index=1"], **kwargs)  # another task of the array
        assert not caplog.records
        provenance.record_invocation(tmp_path, argv, **{**kwargs, "threads_per_cell": 2})
    recorded = json.loads((tmp_path / provenance.STUDY_JSON).read_text())["invocations"]
    assert len(recorded) == 2 and recorded[0]["argv"] == argv and recorded[1]["threads_per_cell"] == 2
    assert recorded[0]["overrides"] == ["--trainer.max_epochs", "2"] and recorded[0]["config_sha256"]
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path} was run before with other settings (threads_per_cell: 1 -> 2): cells finished then and now "
        "may differ"]  # fmt: skip


def test_a_study_without_config_needs_report_only(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "--config and --sparsity are required" in capsys.readouterr().err
    assert main(["--report-only", "--out", str(tmp_path)]) == 1  # nothing finished there: a clear error


def test_more_cells_than_the_gpus_hold_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    monkeypatch.setattr(command, "visible_gpus", lambda: ["0", "1"])
    args = ["--config", QUICKSTART, "--sparsity", "0", "--out", str(tmp_path), "--parallel", "5"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--cells-per-gpu", "2"])
    assert exit_info.value.code == 2
    assert "--parallel 5: 2 GPU(s) × --cells-per-gpu 2 hold 4 cells at a time" in capsys.readouterr().err
    assert not (tmp_path / provenance.STUDY_JSON).exists()


def _study(out: Path, sparsities: list[str], parallel: int, env: dict[str, str]) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "rnn_prune.study", "--config", QUICKSTART, "--sparsity", *sparsities,
            "--seeds", "0", "--out", str(out), "--parallel", str(parallel), "--trainer.max_epochs", "2",
            "--trainer.enable_model_summary", "false"]  # fmt: skip
    return subprocess.run(argv, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_a_cell_alone_and_beside_another_gives_bit_identical_accuracy(tmp_path: Path) -> None:
    """The old runner gave a lone cell all the cores and each of two parallel cells half: the same
    cell then trained on a different number of threads and tested differently."""
    env = {**os.environ, **offline_wandb_env(tmp_path)}
    env.pop("OMP_NUM_THREADS", None)
    alone = _study(tmp_path / "alone", ["0.9"], 1, env)
    assert alone.returncode == 0, alone.stderr[-3000:]
    beside = _study(tmp_path / "beside", ["0", "0.9"], 2, env)
    assert beside.returncode == 0, beside.stderr[-3000:]
    name = "quickstart-s0.9-magnitude-none-seed0"
    first, second = (json.loads((tmp_path / d / "runs" / name / RESULT).read_text()) for d in ("alone", "beside"))
    assert first["test_acc"] == second["test_acc"] and first["val_acc"] == second["val_acc"]
    assert first["provenance"]["threads"] == second["provenance"]["threads"] == 1
    assert json.loads((tmp_path / "beside" / "study.json").read_text())["invocations"][0]["threads_per_cell"] == 1
