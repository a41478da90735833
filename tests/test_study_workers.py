"""The study's long-lived workers (:mod:`rnn_prune.study.worker`): one per slot runs cell after cell
in-process with the results of fresh processes, and ``--list`` / ``--report-only`` need no torch."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnn_prune import criteria
from rnn_prune.expansion import measures
from rnn_prune.study.command import main
from rnn_prune.study.runner import RESULT, checkpoint_loads, last_checkpoint
from rnn_prune.study.worker import WORKER_LINE, ProcessState
from tests.conftest import CONFIGS, offline_wandb_env
from tests.test_study_command import _synthetic_study

QUICKSTART = str(CONFIGS / "quickstart.yaml")
DENSE, PRUNED = "quickstart-dense-seed0", "quickstart-s0.9-magnitude-none-seed0"
NOT_COMPARED = ("provenance", "rerun", "checkpoint")
"""result.json fields that name the run's folder or machine, not its numbers."""


def test_process_state_puts_back_what_a_cell_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads, deterministic algorithms, cuDNN flags, environment and logging a cell changed are
    back as they were for the next one (warnings filters: the worker's catch_warnings). What a
    cell's modules registered stays: the module stays imported and would not register again."""
    state = ProcessState()
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    handlers = list(logging.getLogger("lightning.pytorch").handlers)
    cwd = os.getcwd()
    try:
        torch.set_num_threads(threads + 1)
        torch.use_deterministic_algorithms(not deterministic)  # (an earlier test's Trainer may have set it)
        torch.backends.cudnn.benchmark = not torch.backends.cudnn.benchmark
        os.environ["PL_GLOBAL_SEED"] = "12345"
        os.chdir("/")
        logging.getLogger("lightning.pytorch").addHandler(logging.NullHandler())
        logging.getLogger("a.cell.logger").addHandler(logging.NullHandler())
        measures.MEASURES._measures["cell_measure"] = measures.MEASURES["delta_r"]
        criteria.CRITERIA["cell_criterion"] = criteria.CRITERIA["magnitude"]
    finally:
        state.restore()
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.backends.cudnn.benchmark == state.backend_flags["benchmark"]
    assert os.environ.get("PL_GLOBAL_SEED") == state.environ.get("PL_GLOBAL_SEED") and os.getcwd() == cwd
    assert logging.getLogger("lightning.pytorch").handlers == handlers
    assert logging.getLogger("a.cell.logger").handlers == []
    try:
        assert "cell_measure" in measures.MEASURES and "cell_criterion" in criteria.CRITERIA
    finally:
        del measures.MEASURES._measures["cell_measure"], criteria.CRITERIA["cell_criterion"]


def _study(out: Path, *extra: str) -> int:
    return main(["--config", QUICKSTART, "--sparsity", "0", "0.9", "--criterion", "magnitude", "--seeds", "0",
                 "--out", str(out), "--trainer.max_epochs", "2", "--trainer.enable_model_summary", "false",
                 *extra])  # fmt: skip


def _worker_lines(cell_dir: Path) -> list[tuple[int, int]]:
    """(PID, command number) of every command a worker ran for the cell, from its cell.log."""
    pattern = re.compile(rf"^{re.escape(WORKER_LINE)} (\d+), command (\d+) in this process$", re.MULTILINE)
    return [(int(pid), int(n)) for pid, n in pattern.findall((cell_dir / "cell.log").read_text())]


@pytest.mark.slow
def test_two_cells_in_one_worker_match_fresh_processes_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in offline_wandb_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    assert _study(tmp_path / "fresh", "--fresh-processes") == 0
    assert _study(tmp_path / "worker") == 0
    fresh, worker = tmp_path / "fresh" / "runs", tmp_path / "worker" / "runs"
    assert _worker_lines(fresh / DENSE) == [] == _worker_lines(fresh / PRUNED)
    (pid, *others) = {p for cell in (DENSE, PRUNED) for p, _ in _worker_lines(worker / cell)}
    assert not others, "one worker ran both cells"
    assert [n for _, n in _worker_lines(worker / DENSE)] == [1, 2]  # its fit and test ...
    assert [n for _, n in _worker_lines(worker / PRUNED)] == [3, 4]  # ... then the next cell's
    for cell in (DENSE, PRUNED):
        a, b = (json.loads((root / cell / RESULT).read_text()) for root in (fresh, worker))
        assert {k: v for k, v in a.items() if k not in NOT_COMPARED} == {
            k: v for k, v in b.items() if k not in NOT_COMPARED
        }, cell
        assert a["rerun"]["fit"][1:4] == ["-m", "rnn_prune", "fit"] == b["rerun"]["fit"][1:4]
        weights = [torch.load(root / cell / "fit/checkpoints/last.ckpt", weights_only=False)["state_dict"]
                   for root in (fresh, worker)]  # fmt: skip
        assert weights[0].keys() == weights[1].keys()
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0]), cell
    assert 0.89 <= b["final_sparsity"] <= 0.91 and b["test_acc"] > 0.1


_STDIN_READER = """
import sys, types
sys.modules["rnn_prune.cli"] = types.ModuleType("rnn_prune.cli")  # no training stack: jobs are stand-ins
from rnn_prune.study import worker
worker.ProcessState = lambda: None
def run_job(args, state):
    print("stdin gave", repr(sys.stdin.read()), file=sys.stderr)  # a cell that reads its stdin
    return 0
worker.run_job = run_job
raise SystemExit(worker.main())
"""


@pytest.mark.slow  # starts a process
def test_a_cell_reading_stdin_gets_end_of_file_not_the_next_job(tmp_path: Path) -> None:
    """The job pipe is the worker's: a cell that reads stdin (a prompt, ``breakpoint()``) must not
    swallow the next job's line and hang the study."""
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    jobs = "".join(json.dumps({"args": [], "log": str(log)}) + "\n" for log in logs)
    done = subprocess.run([sys.executable, "-c", _STDIN_READER], input=jobs, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "PYTHONPATH": str(
                              Path(__file__).resolve().parent.parent)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["code"] for line in done.stdout.splitlines()] == [0, 0]
    assert all("stdin gave ''" in log.read_text() for log in logs)


@pytest.mark.slow
def test_list_and_report_only_import_no_training_stack(tmp_path: Path) -> None:
    """Run in a fresh interpreter: ``--list`` and ``--report-only`` (on a finished cell's result) leave
    torch and Lightning unimported."""
    out = tmp_path / "study"
    _synthetic_study(out)
    script = (
        "import sys\n"
        "from rnn_prune.study.command import main\n"
        f"codes = [main(['--config', {QUICKSTART!r}, '--sparsity', '0', '--out', {str(tmp_path / 'l')!r},\n"
        "                '--list']),\n"
        f"         main(['--out', {str(out)!r}, '--report-only'])]\n"
        "print(codes, sorted(m for m in ('torch', 'lightning', 'lightning.pytorch') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "[0, 0] []", done.stdout + done.stderr[-2000:]
    assert (out / "study.csv").is_file() and (out / "summary.md").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_study_takes_its_worker_with_it_and_resumes(signum: int, tmp_path: Path) -> None:
    """SIGTERM: the study stops its worker and exits 143; SIGKILL: the worker gets the parent-death
    SIGTERM. Either way its fit stops after the batch with last.ckpt and its outcome written, the
    worker exits, and the rerun resumes that fit from its checkpoint."""
    out = tmp_path / "study"
    env = {**os.environ, **offline_wandb_env(tmp_path)}
    command = [sys.executable, "-m", "rnn_prune.study", "--config", QUICKSTART, "--sparsity", "0.9", "--out",
               str(out), "--trainer.max_epochs", "6", "--trainer.enable_model_summary", "false"]  # fmt: skip
    cell = out / "runs" / PRUNED
    with open(tmp_path / "first.log", "w") as log:
        study = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while not ((ckpt := last_checkpoint(cell / "fit")) is not None and checkpoint_loads(ckpt)):
                assert study.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
                time.sleep(0.1)
        finally:
            study.send_signal(signum)  # the study alone (SIGKILL: its worker is left to the parent-death signal)
            code = study.wait()
    assert code == (143 if signum == signal.SIGTERM else -signal.SIGKILL), (tmp_path / "first.log").read_text()[-3000:]
    ((pid, _),) = _worker_lines(cell)
    for _ in range(1200):  # the fit finishes its batch, saves, and the worker leaves
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"worker {pid} outlived its study")
    # Known, open: now and then the worker aborts in glibc ("corrupted size vs. prev_size while
    # consolidating") as SIGTERM lands at the end of an epoch (1 run in 4 to 8 under a parallel CI
    # run; 1 stop in ~125 on a loaded 2-core machine). In the abort caught with timestamps it died
    # within 0.2 s of the signal, before Lightning's handler logged "Received SIGTERM" and before
    # fit_outcome.json: not in the interpreter's teardown (os._exit would not avoid it). 27,000
    # SIGUSR2 deliveries to a no-op Python handler during fits caused none.
    # The cell must still resume; the test then reports it as xfail.
    # With SIGKILL the study is gone and cannot log its worker's SIGABRT: glibc's own message in the
    # cell's log (the worker's stderr) tells the abort apart there.
    aborted = "SIGABRT" in (tmp_path / "first.log").read_text() or bool(
        re.search(r"corrupted|double free|malloc\(\)|free\(\)", (cell / "cell.log").read_text()))
    if not aborted:
        outcome = json.loads((cell / "fit" / "fit_outcome.json").read_text())
        assert outcome["status"] == "interrupted" and outcome["exit_code"] == 143, outcome
        assert "stopped: fit stopped by SIGTERM" in (cell / "cell.log").read_text()
    resumed = subprocess.run(command, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    fits = [line for line in (cell / "cell.log").read_text().splitlines() if line.startswith("$ ") and " fit " in line]
    assert len(fits) == 2 and "--ckpt_path" in fits[1]
    assert json.loads((cell / RESULT).read_text())["final_epoch"] == 5
    if aborted:
        pytest.xfail("the worker aborted in glibc as SIGTERM landed mid-fit (known, open); the cell resumed")
