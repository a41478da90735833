"""Runs that fail loudly and never lose a checkpoint (issue 19): signals and exit codes, atomic
checkpoints, the run-root lock, one Ramanujan share, one-line errors, quiet logs, no time limits."""

from __future__ import annotations

import ast
import csv
import errno
import io
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.error import URLError

import lightning as L
import pytest
import tomllib
import torch
import torchvision
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from callbacks import ExpansionMetrics, ScheduledPruning
from callbacks.expansion import summarize
from datamodules import DigitsDataModule, SequentialMNISTDataModule
from datamodules._common import DataDownloadFailed, DataError
from rnn_prune import keys, outcome
from rnn_prune.checkpoint_io import AtomicCheckpointIO, CheckpointWriteError, atomic_torch_save
from rnn_prune.cli import CHECKPOINT_DIR, ConfigError, FitStopped, console_main, main, one_line_parse_error
from rnn_prune.expansion import LayerExpansion
from rnn_prune.expansion.measures import MEASURES
from rnn_prune.module import SequenceClassifier
from rnn_prune.report.runs import RunData
from rnn_prune.run_lock import LOCK_FILE, RunRootLock
from rnn_prune.study import runner
from rnn_prune.study.grid import Cell
from rnn_prune.study.results import fit_summary
from rnn_prune.study.runner import FIT_DONE, RESULT, CellError, Study, cell_status, load_results
from rnn_prune.wandb_offline import find_offline_runs, wait_until_complete
from tests.conftest import CONFIGS, ROOT, quickstart_args
from tests.data_fixtures import write_mnist

QUICKSTART = CONFIGS / "quickstart.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 1-epoch quickstart fit (no W&B), shared: copy it before writing into it."""
    root = tmp_path_factory.mktemp("trained")
    main(quickstart_args("fit", root, "--trainer.max_epochs", "1", "--trainer.logger", "false"))
    return root


def _copy(trained: Path, tmp_path: Path) -> tuple[Path, Path]:
    root = Path(shutil.copytree(trained, tmp_path / "run"))
    return root, root / CHECKPOINT_DIR / "last.ckpt"


def _epoch(path: Path) -> int:
    return torch.load(path, weights_only=True, map_location="cpu")["epoch"]


# --- 1. signals and exit codes ------------------------------------------------------------------


class SignalMidEpoch(Callback):
    """Sends the test's own process a signal after the second batch of the epoch, as Ctrl-C or SLURM would."""

    signum = signal.SIGTERM

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: object) -> None:
        if args[-1] == 1:  # batch_idx
            os.kill(os.getpid(), self.signum)


class InterruptMidEpoch(SignalMidEpoch):
    signum = signal.SIGINT


SIGNALS = [("SignalMidEpoch", 143, "SIGTERM"), ("InterruptMidEpoch", 130, "SIGINT")]


def _fit_until_signalled(callback: str, root: Path, *extra: str) -> outcome.FitOutcome:
    # Ctrl-C as a terminal delivers it, also where pytest itself runs in the background (its shell then
    # starts it with SIGINT ignored); Lightning ignores Ctrl-C after the first one: restore it after.
    sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(FitStopped) as stopped:
            main(quickstart_args("fit", root, "--trainer.max_epochs", "3", "--trainer.logger", "false",
                                 f"--trainer.callbacks+=tests.test_reliability.{callback}", *extra))  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, sigint)
    assert outcome.read_outcome(root) == stopped.value.outcome  # recorded for the study
    return stopped.value.outcome


@pytest.mark.parametrize(("callback", "code", "name"), SIGNALS)
def test_a_signal_stops_the_fit_nonzero(callback: str, code: int, name: str, tmp_path: Path) -> None:
    ended = _fit_until_signalled(callback, tmp_path)
    assert ended.exit_code == code and ended.status == outcome.INTERRUPTED and not ended.finished
    assert ended.reason == f"fit stopped by {name} in epoch 0 of 3; before any checkpoint was written: start it again"
    assert not (tmp_path / CHECKPOINT_DIR / "last.ckpt").exists()


@pytest.mark.slow  # the trained epoch, then part of a second
@pytest.mark.parametrize(("callback", "code", "name"), SIGNALS)
def test_a_signal_after_an_epoch_leaves_last_ckpt_to_resume(callback: str, code: int, name: str, trained: Path,
                                                            tmp_path: Path) -> None:  # fmt: skip
    root, last = _copy(trained, tmp_path)
    ended = _fit_until_signalled(callback, root, "--ckpt_path", str(last))
    assert ended.exit_code == code and ended.checkpoint == str(last)
    assert ended.reason == (f"fit stopped by {name} in epoch 1 of 3; {last} holds epoch 0, the last whole one; "
                            f"resume with --ckpt_path {last}")  # fmt: skip
    assert _epoch(last) == 0  # the last whole epoch, loadable


def test_console_exit_code_and_one_line_for_a_sigterm(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        console_main(quickstart_args("fit", tmp_path, "--trainer.max_epochs", "2", "--trainer.logger", "false",
                                     "--trainer.callbacks+=tests.test_reliability.SignalMidEpoch"))  # fmt: skip
    assert exit_info.value.code == outcome.EXIT_SIGTERM
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == ("stopped: fit stopped by SIGTERM in epoch 0 of 2; before any checkpoint was written: "
                         "start it again")
    assert "Traceback" not in "\n".join(lines)


def test_a_completed_fit_records_its_outcome(trained: Path) -> None:
    ended = outcome.read_outcome(trained)
    assert ended is not None and ended.status == outcome.COMPLETED and ended.finished and ended.exit_code == 0
    assert ended.epoch == 0 and ended.max_epochs == 1 and ended.checkpoint.endswith("last.ckpt")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.optimizer.init_args.lr", "1e6"], r"val/loss = \S+ passed divergence_threshold=100.0"),
        (["--model.optimizer.init_args.lr", "1e38"], "training diverged in epoch 0"),
    ],
    ids=["lr-1e6", "lr-1e38-overflows"],
)
def test_a_diverged_fit_exits_with_its_own_code(args: list[str], message: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        console_main(quickstart_args("fit", tmp_path, "--trainer.max_epochs", "3", "--trainer.logger", "false", *args))
    assert exit_info.value.code == outcome.EXIT_DIVERGED == 3
    err = capsys.readouterr().err
    assert re.search(message, err.strip().splitlines()[-1]) and "Traceback" not in err
    recorded = outcome.read_outcome(tmp_path)
    assert recorded.status == outcome.DIVERGED and recorded.finished  # a study records it and moves on


def _study(tmp_path: Path) -> tuple[Study, Cell]:
    study = Study(QUICKSTART, tmp_path / "study", [])
    return study, Cell(str(QUICKSTART), 0.5, "magnitude", "none", 0)


class _FakeProcesses:
    """Stands in for the cell processes: the "fit" writes the given outcome (or none) and last.ckpt."""

    def __init__(self, study: Study, cell: Cell, ended: outcome.FitOutcome | None) -> None:
        self.fit_dir = study.cell_dir(cell) / "fit"
        self.ended = ended
        self.stages: list[str] = []

    def run(self, command, env, log_path, name, stage, ok_codes=(0,)) -> int:  # noqa: ANN001
        self.stages.append(stage)
        if stage == "fit":
            (self.fit_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            torch.save({"epoch": 0}, self.fit_dir / "checkpoints" / "last.ckpt")
            if self.ended is not None:
                outcome.write_outcome(self.fit_dir, self.ended)
        return 0


@pytest.mark.parametrize("ended", [None, outcome.FitOutcome(outcome.INTERRUPTED, 0, "cut short", 2, 20)],
                         ids=["no-outcome", "interrupted"])  # fmt: skip
def test_study_does_not_mark_an_unfinished_fit_done(ended: outcome.FitOutcome | None, tmp_path: Path) -> None:
    study, cell = _study(tmp_path)
    processes = _FakeProcesses(study, cell, ended)
    with pytest.raises(CellError, match="the fit did not finish.*rerun to resume it"):
        study.run_cell(cell, {}, processes)
    assert processes.stages == ["fit"] and not (study.cell_dir(cell) / FIT_DONE).exists()


def test_study_keeps_the_reason_a_fit_stopped_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    study, cell = _study(tmp_path)
    ended = outcome.FitOutcome(outcome.STOPPED, 0, "early stopping after epoch 4: patience", 4, 20)
    monkeypatch.setattr(runner, "cell_result", lambda *args, **kwargs: {"test_acc": 0.5})
    result = study.run_cell(cell, {}, _FakeProcesses(study, cell, ended))
    assert (study.cell_dir(cell) / FIT_DONE).is_file()
    assert result["stop_reason"] == ended.reason
    assert json.loads((study.cell_dir(cell) / RESULT).read_text())["stop_reason"] == ended.reason


@pytest.mark.slow
def test_cell_processes_die_with_the_study(tmp_path: Path) -> None:
    """kill -9 of the study's process: its cell process gets SIGTERM (PR_SET_PDEATHSIG), not orphaned."""
    fifo = tmp_path / "cell.fifo"  # the cell reports through it (the study closes inherited descriptors)
    os.mkfifo(fifo)
    cell = ("import os, signal, sys, time\n"
            f"out = os.open({str(fifo)!r}, os.O_WRONLY)\n"
            "def stop(*_): os.write(out, b'SIGTERM'); sys.exit(143)\n"
            "signal.signal(signal.SIGTERM, stop)\n"
            "os.write(out, b'started;')\n"
            "time.sleep(120); os.write(out, b'still running')\n")  # fmt: skip
    study = ("import sys, os\n"
             "from pathlib import Path\n"
             "from rnn_prune.study.runner import _Processes\n"
             f"_Processes().run([sys.executable, '-c', {cell!r}], dict(os.environ), Path({str(tmp_path / 'c.log')!r}),"
             " 'cell', 'fit')\n")  # fmt: skip
    parent = subprocess.Popen([sys.executable, "-c", study], env={**os.environ, "PYTHONPATH": str(ROOT)})
    with open(fifo, "rb") as pipe:  # opens once the cell opened its end
        assert pipe.read(len(b"started;")) == b"started;"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert pipe.read() == b"SIGTERM"


# --- 2. atomic checkpoints ----------------------------------------------------------------------


def _failing_save(real_save):  # noqa: ANN001, ANN202
    """torch.save that writes half of the checkpoint, then fails as a full disk does."""

    def save(obj, target, *args, **kwargs):  # noqa: ANN001, ANN202
        data = io.BytesIO()
        real_save(obj, data, *args, **kwargs)
        if hasattr(target, "write"):
            target.write(data.getvalue()[: len(data.getvalue()) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return save


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"epoch": 3, "w": torch.arange(1000)}, path)
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append((Path(src), Path(dst))),
                                                         real_replace(src, dst)))  # fmt: skip
    atomic_torch_save({"epoch": 4}, path)
    assert renamed[-1][0].parent == path.parent and renamed[-1][1] == path  # a temporary file beside the target
    monkeypatch.setattr(torch, "save", _failing_save(torch.save))
    with pytest.raises(CheckpointWriteError, match=f"could not write checkpoint {re.escape(str(path))}: No space left "
                                                   "on device; the previous checkpoint there is unchanged") as error:
        AtomicCheckpointIO().save_checkpoint({"epoch": 5}, path)
    assert error.value.errno == errno.ENOSPC
    assert _epoch(path) == 4 and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary left


def test_the_cli_writes_checkpoints_atomically_unless_told_otherwise(tmp_path: Path) -> None:
    cli = main(quickstart_args("fit", tmp_path, "--trainer.logger", "false")[1:], run=False)
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    own = main(quickstart_args("fit", tmp_path, "--trainer.logger", "false", "--trainer.plugins",
                               "lightning.pytorch.plugins.io.TorchCheckpointIO")[1:], run=False)  # fmt: skip
    assert type(own.trainer.strategy.checkpoint_io) is TorchCheckpointIO


def _full_disk_for_outcomes(root: Path, result: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("outcome_fits", [True, False], ids=["outcome-written", "outcome-refused-too"])
def test_a_full_disk_ends_the_fit_nonzero_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, outcome_fits: bool
) -> None:
    """On a real full disk the outcome file cannot be written either: the exit code and the
    checkpoint's line must survive that (a warning says the outcome was not recorded)."""
    monkeypatch.setattr(torch, "save", _failing_save(torch.save))
    if not outcome_fits:
        monkeypatch.setattr(outcome, "write_outcome", _full_disk_for_outcomes)
    with pytest.raises(SystemExit) as exit_info:
        console_main(quickstart_args("fit", tmp_path, "--trainer.max_epochs", "1", "--trainer.logger", "false"))
    assert exit_info.value.code == outcome.EXIT_CHECKPOINT_WRITE
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: could not write checkpoint {tmp_path / CHECKPOINT_DIR}") and "No space left" in line
    assert "Traceback" not in err and not list((tmp_path / CHECKPOINT_DIR).iterdir())  # nothing half-written


@pytest.mark.slow  # the trained epoch, then a resumed one
def test_a_full_disk_on_resume_keeps_last_ckpt(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    root, last = _copy(trained, tmp_path)
    monkeypatch.setattr(torch, "save", _failing_save(torch.save))
    with pytest.raises(SystemExit) as exit_info:
        console_main(quickstart_args("fit", root, "--trainer.max_epochs", "2", "--trainer.logger", "false",
                                     "--ckpt_path", str(last)))  # fmt: skip
    assert exit_info.value.code == outcome.EXIT_CHECKPOINT_WRITE
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: could not write checkpoint {root / CHECKPOINT_DIR}") and "No space left" in line
    assert _epoch(last) == 0


# --- 3. one live fit per run root ---------------------------------------------------------------


def test_a_second_fit_into_a_live_root_is_refused_before_it_writes(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    # another live fit: this very process, through another descriptor
    with RunRootLock(tmp_path), pytest.raises(SystemExit) as exit_info:
        console_main(quickstart_args("fit", tmp_path, "--trainer.logger", "false"))
    assert exit_info.value.code == outcome.EXIT_ROOT_BUSY
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: {tmp_path} is in use by a fit with PID {os.getpid()}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE]  # no config.yaml, no checkpoints


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process can have it
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": os.uname().nodename, "started": "then"}))
    with caplog.at_level(logging.WARNING), RunRootLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert f"took over the lock of PID {pid}" in caplog.text
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released


def test_a_missing_ckpt_path_leaves_the_config_untouched(trained: Path, tmp_path: Path) -> None:
    root, _ = _copy(trained, tmp_path)
    before = (root / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"--ckpt_path=\S+/nope\.ckpt: no such file"):
        main(quickstart_args("fit", root, "--sparsity", "0.5", "--ckpt_path", str(root / "nope.ckpt")))
    assert (root / "config.yaml").read_text() == before


def test_a_truncated_ckpt_path_is_refused_before_anything_is_written(trained: Path, tmp_path: Path) -> None:
    root, last = _copy(trained, tmp_path)
    last.write_bytes(last.read_bytes()[:1000])
    before = (root / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="does not load as a checkpoint"):
        main(quickstart_args("fit", root, "--ckpt_path", str(last)))
    assert (root / "config.yaml").read_text() == before


# --- 4. one Ramanujan share ---------------------------------------------------------------------


def _expansion(is_ramanujan: bool | None) -> LayerExpansion:
    return LayerExpansion({"is_ramanujan": is_ramanujan, "delta_r": 0.5 if is_ramanujan else -1.0})


def test_summaries_count_the_pruned_graphs_and_log_the_head_apart() -> None:
    expansions = {"lstm.l0.hh": _expansion(None), "lstm.l0.ih": _expansion(False), "head": _expansion(True)}
    out = summarize(expansions, MEASURES.select(["is_ramanujan", "delta_r"]), pruned={"lstm.l0.hh", "lstm.l0.ih"})
    assert out[keys.RAMANUJAN_FRACTION] == 0.0 and out[keys.RAMANUJAN_UNDEFINED] == 1.0
    assert out[keys.unpruned(keys.RAMANUJAN_FRACTION)] == 1.0 == out["graph/unpruned_ramanujan_fraction"]
    assert out[keys.MIN_DELTA_R] == -1.0 and out[keys.unpruned(keys.MIN_DELTA_R)] == 0.5
    assert keys.parse_graph_key(keys.unpruned(keys.RAMANUJAN_FRACTION)) is None  # not mistaken for a graph
    assert summarize(expansions, MEASURES.select(["is_ramanujan"]))[keys.RAMANUJAN_FRACTION] == 0.5  # no pruning


@pytest.mark.parametrize("log_per_graph", [True, False])
def test_callback_report_and_study_give_one_share_at_high_sparsity(tmp_path: Path, log_per_graph: bool) -> None:
    """At 99 % the pruned graphs have no verdict and only the dense head is Ramanujan: every reader
    says n/a -- also when the pruning callback logs no per-graph sparsity (the report then finds the
    pruned graphs by their measured mask sparsity)."""
    L.seed_everything(0)
    model = SequenceClassifier(8, 10, cell="gru", hidden_size=24)
    trainer = L.Trainer(
        max_epochs=1,
        callbacks=[ScheduledPruning(0.99, log_per_graph=log_per_graph),
                   ExpansionMetrics(unfolded_every_n_epochs=None, measure_every_n_epochs={"imdb": None})],
        logger=CSVLogger(tmp_path, name="csv"), enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, accelerator="cpu", limit_train_batches=2, limit_val_batches=1,
    )  # fmt: skip
    trainer.fit(model, DigitsDataModule(batch_size=128))
    with open(next(tmp_path.rglob("metrics.csv"))) as file:
        rows = list(csv.DictReader(file))
    (logged,) = [{k: float(v) for k, v in r.items() if v != ""} for r in rows if r.get(keys.RAMANUJAN_FRACTION)]
    assert math.isnan(logged[keys.RAMANUJAN_FRACTION])  # main: 1.0, the head alone
    assert logged[keys.unpruned(keys.RAMANUJAN_FRACTION)] == 1.0 == logged[keys.graph("head", "is_ramanujan")]
    run = RunData.from_rows("run", rows)
    assert run.final_ramanujan_share().num_defined == 0 and math.isnan(run.final_ramanujan_share().fraction)
    assert fit_summary(run)["ramanujan_share"] is None and run.share_graphs == run.pruned_graphs
    assert run.pruned_graphs and "head" not in run.pruned_graphs


# --- 5. one-line errors -------------------------------------------------------------------------


def test_a_type_error_is_one_line_naming_the_flag_and_type(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(quickstart_args("fit", tmp_path, "--sparsity", "abc"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --sparsity: expected a number or null, got 'abc'")
    assert "__main__.py" not in err[0]
    assert one_line_parse_error('Parser key "model.cell":\n  Expected a typing.Literal[\'rnn\', \'gru\']. '
                                "Got value: x") == "--model.cell: expected one of ['rnn', 'gru'], got 'x'"  # fmt: skip


def test_the_console_script_is_the_one_line_entry_point() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["rnn-prune"] == "rnn_prune.cli:console_main"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:9/last.ckpt", "s3://bucket/last.ckpt", "file:///tmp/last.ckpt",
                                 "registry:my-model"])  # fmt: skip
def test_any_scheme_checkpoint_path_is_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="remote checkpoints are refused"):
        main(quickstart_args("validate", tmp_path, "--ckpt_path", url))


def test_a_failed_download_names_the_folder_and_download_false(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, *args: object, **kwargs: object) -> None:
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    dm = SequentialMNISTDataModule(data_dir=str(tmp_path), download=True)
    with pytest.raises(DataDownloadFailed, match=rf"could not download MNIST into {re.escape(str(tmp_path))} .*"
                                                 r"unpack it so that .*train-images-idx3-ubyte.* exist, and set "
                                                 "`download: false`"):  # fmt: skip
        dm.prepare_data()


def test_a_corrupt_data_file_is_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_mnist(tmp_path)
    images = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])  # truncated
    with pytest.raises(SystemExit) as exit_info:
        console_main(["fit", "--config", str(CONFIGS / "smnist_rnn.yaml"), "--trainer.default_root_dir",
                      str(tmp_path / "run"), "--data.init_args.data_dir", str(tmp_path), "--data.init_args.download",
                      "false", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"error: {images} is truncated") and "Traceback" not in err
    assert issubclass(DataDownloadFailed, DataError) and issubclass(DataDownloadFailed, RuntimeError)


@pytest.mark.parametrize("text", ['{"name": "x", "test_acc": 0.9', "{}", "[]"], ids=["cut-off", "empty", "list"])
def test_a_corrupt_result_is_named_and_its_cell_runs_again(text: str, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    cell_dir = tmp_path / "runs" / "c-s0.5-magnitude-none-seed0"
    cell_dir.mkdir(parents=True)
    (cell_dir / RESULT).write_text(text)
    with caplog.at_level(logging.WARNING):
        assert cell_status(cell_dir) == "partial"
        assert list(load_results(tmp_path)) == []
    assert str(cell_dir / RESULT) in caplog.text and "runs again" in caplog.text


# --- 6. quiet -----------------------------------------------------------------------------------


def test_degenerate_graphs_are_one_line_per_epoch(caplog: pytest.LogCaptureFixture) -> None:
    metrics = ExpansionMetrics()
    expansions = {f"g{i}": SimpleNamespace(reason="average degree below 3 (d̄L=1.5, d̄R=2): no verdict; imdb: none")
                  for i in range(6)}  # fmt: skip
    with caplog.at_level(logging.DEBUG, logger="lightning.pytorch.utilities.rank_zero"):
        metrics._warn_degenerate(expansions, 3)
        metrics._warn_degenerate(expansions, 4)  # nothing new: nothing said
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and "ExpansionMetrics" in r.getMessage()]
    assert info == ["ExpansionMetrics: epoch 3: 6 graph(s) with undefined measures (average degree below 3: 6; "
                    "imdb: 6); per graph at log level DEBUG"]  # fmt: skip
    assert len(debug) == 12


def test_an_offline_wandb_run_prints_no_summary(tmp_path: Path) -> None:
    from rnn_prune.loggers import WandbLogger

    logger = WandbLogger(offline=True, save_dir=str(tmp_path), project="p")
    try:
        assert logger.experiment.settings.quiet
    finally:
        logger.experiment.finish()
    assert all(wait_until_complete(run) for run in find_offline_runs(tmp_path))


# --- 7. no wall-clock limits in tests -----------------------------------------------------------


def _wall_clock_limits(source: str) -> list[str]:
    """Calls with a ``timeout=`` and reads of the clock (``time.monotonic``/``time``/``perf_counter``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            if any(k.arg == "timeout" for k in node.keywords):
                found.append(f"line {node.lineno}: timeout=")
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("monotonic", "time", "perf_counter") and \
                    isinstance(func.value, ast.Name) and func.value.id == "time":  # fmt: skip
                found.append(f"line {node.lineno}: time.{func.attr}()")
    return found


def test_no_test_has_a_wall_clock_limit() -> None:
    assert _wall_clock_limits("subprocess.run(x, timeout=5)\nstart = time.monotonic()") == [
        "line 1: timeout=", "line 2: time.monotonic()"]  # fmt: skip
    allowed = {"test_wandb_offline.py"}  # wait_until_complete(timeout=0): a poll of a finished file, not a limit
    offending = {path.name: hits for path in sorted((ROOT / "tests").glob("*.py"))
                 if path.name not in allowed and (hits := _wall_clock_limits(path.read_text()))}  # fmt: skip
    assert not offending


def test_readme_test_timings_say_the_load_they_were_measured_at() -> None:
    section = (ROOT / "README.md").read_text().split("## Tests", 1)[1].split("\n## ", 1)[0]
    timings = [line for line in section.splitlines() if re.search(r"\d+ (min|s)\b", line) and "pytest" in line]
    assert timings and all(re.search(r"load \d", line) for line in timings), timings
