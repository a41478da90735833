"""Run the study's cells as ordinary ``python -m rnn_prune`` commands, resumably and in parallel.

Each cell is two commands, both the package's own CLI on the study's config:

1. ``fit --config C --sparsity S --criterion X --guard G --seed_everything N
   --trainer.default_root_dir OUT/runs/<cell>/fit <overrides>`` (with ``--ckpt_path`` its own
   ``last.ckpt`` when an earlier, killed invocation left one that loads; one that does not -- the
   kill came mid-write -- is set aside with its folder, ``fit.broken<N>``, and the fit starts over);
2. ``test`` of the same config on that ``last.ckpt`` -- the final epoch at its final sparsity,
   not the best checkpoint -- logged with a CSVLogger under ``OUT/runs/<cell>/test``.

A cell is finished when ``OUT/runs/<cell>/result.json`` exists and reads as a result; it is
written atomically (a temporary file renamed over it) only after both processes succeeded, so a
killed cell never looks finished, and a corrupt one (hand-edited, a foreign file) is named in a
warning and run again. ``fit.done`` marks a fit that *finished*: its ``fit_outcome.json`` (written
by the CLI) says it reached its last epoch, or stopped for a recorded reason (early stopping, a
diverged run: exit code 3), which ``result.json`` keeps as ``stop_reason``. A fit stopped by a
signal (exit 143/130) or that ended without a recorded outcome is not done: the next invocation
resumes it from its ``last.ckpt``. So a cell killed during its test does not train again, and one
whose fit was cut short never reports the half-trained model.

The commands run in one long-lived worker per slot (:mod:`rnn_prune.study.worker`, started with
the slot's environment), which runs them in-process through the CLI's own console entry, so the
training stack is imported once per slot instead of twice per cell; exit codes and outcomes are
the CLI's, and each cell starts from the state the worker had before its first one (environment,
torch threads and flags, logging, warnings, registries; W&B torn down between cells). A worker
whose command ended badly (not 0 or 3) leaves, and the slot's next cell gets a fresh one.
``cell.log`` and ``result.json``'s ``rerun`` keep the ``python -m rnn_prune`` command lines, which
reproduce the cell in fresh processes; ``Study.run(fresh_processes=True)`` (``--fresh-processes``)
runs them so.

Cell processes (workers) die with the study: each is started with the parent-death signal SIGTERM
(``prctl(PR_SET_PDEATHSIG)``, Linux), so even a ``kill -9`` of the study stops its fits (which
then exit at the next batch, ``last.ckpt`` intact) instead of leaving them to race the rerun.

Cells write only their own folder, so invocations on other machines (SLURM array tasks,
``--cell-index``) merge by copying ``runs/`` folders together.

The schedule must reach its target inside the run: when the config's schedule ends at or after
``max_epochs`` (say ``--trainer.max_epochs 6`` on a config that ramps to epoch 10) the study moves
its end to ``max_epochs - 1`` -- pruning reaches the target at the start of the last epoch, which
then fine-tunes at it -- through a second ``--config`` overlay, and says so in ``summary.md``.

Every cell runs on a fixed number of torch threads (``--threads-per-cell``, default 1) and, where
there are GPUs, on one GPU that takes at most ``--cells-per-gpu`` cells at a time
(:func:`slot_environments`); its ``result.json`` records what it ran on
(:func:`~rnn_prune.study.provenance.cell_provenance`) and how to rerun it.

Every worker (or cell process) gets its own W&B service: ``WANDB_SERVICE`` is dropped from its environment, so
a study started from a process that runs one (a notebook, pytest) does not hand the cells that
service, where a killed fit's run would still be registered and its resume refused as "in use".
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import ctypes.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import Any

import yaml

from rnn_prune import outcome as outcomes
from rnn_prune.config_entries import pruning_entries, rewrite_schedules
from rnn_prune.study.grid import DENSE, Cell
from rnn_prune.study.provenance import cell_provenance
from rnn_prune.study.results import cell_result, read_result, refresh_result, write_json_atomic, write_text_atomic

__all__ = ["CellError", "Study", "StudyInterrupted", "cell_environment", "cell_status", "checkpoint_loads",
           "slot_environments"]  # fmt: skip

log = logging.getLogger(__name__)

RESULT = "result.json"
FIT_DONE = "fit.done"
CELL_LOG = "cell.log"
OVERLAY = "schedule_overlay.yaml"
BROKEN_FIT = "fit.broken"
"""A fit folder whose ``last.ckpt`` did not load is moved to ``<cell>/fit.broken<N>``."""
DROPPED_ENV = ("WANDB_SERVICE",)
"""Variables a cell process must not inherit: a parent's W&B service is not the cell's."""
SLOT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
"""What a slot sets in its cells' environment (:func:`slot_environments`)."""
LIGHTNING_DEFAULT_MAX_EPOCHS = 1000
"""``Trainer(max_epochs=None)`` trains this many epochs; a config without ``max_epochs`` gets it."""


class CellError(RuntimeError):
    """A cell's fit or test process failed; the message names the cell and its log."""


def _override_value(overrides: Sequence[str], flag: str) -> str | None:
    """The last value given for ``flag`` in ``overrides`` (``--flag V`` or ``--flag=V``)."""
    value = None
    for i, arg in enumerate(overrides):
        if arg == flag and i + 1 < len(overrides):
            value = overrides[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def plan_schedule(config: dict[str, Any], overrides: Sequence[str]) -> tuple[dict[str, Any] | None, str]:
    """The overlay that makes the schedule end before ``max_epochs``, and a sentence saying what was done.

    The schedule moves its own end (:meth:`~rnn_prune.schedules.Schedule.ending_by`); this knows
    none of its argument names. Returns ``(None, "")`` when the config's schedule already ends in
    time (or has no end).

    >>> cfg = {"trainer": {"max_epochs": 20, "callbacks": [{"class_path": "callbacks.ScheduledPruning",
    ...        "init_args": {"schedule": {"class_path": "rnn_prune.schedules.CubicSchedule",
    ...                                   "init_args": {"final_sparsity": 0.9, "end_epoch": 10}}}}]}}
    >>> plan_schedule(cfg, [])
    (None, '')
    >>> overlay, note = plan_schedule(cfg, ["--trainer.max_epochs", "6"])
    >>> overlay["trainer"]["callbacks"][0]["init_args"]["schedule"]["init_args"]["end_epoch"], note
    (5, 'CubicSchedule reaches its target at epoch 5, not 10: the last of max_epochs=6 epochs fine-tunes at it')

    Raises:
        ValueError: the schedule cannot end before ``max_epochs`` (it starts too late).
    """
    trainer = config.get("trainer") or {}
    given = _override_value(overrides, "--trainer.max_epochs")
    max_epochs = int(given) if given is not None else trainer.get("max_epochs") or LIGHTNING_DEFAULT_MAX_EPOCHS
    callbacks = copy.deepcopy(trainer.get("callbacks") or [])
    last = max_epochs - 1
    try:
        changed = rewrite_schedules(callbacks, lambda schedule: schedule.ending_by(last))
    except (ValueError, NotImplementedError) as error:
        raise ValueError(
            f"the schedule cannot end before max_epochs={max_epochs}: {error}; raise --trainer.max_epochs"
        ) from error
    notes = [
        f"{type(after).__name__} reaches its target at epoch {after.ends_at():g}, not {before.ends_at():g}: "
        f"the last of max_epochs={max_epochs} epochs fine-tunes at it"
        for before, after in changed
        if after is not before
    ]
    if not notes:
        return None, ""
    return {"trainer": {"callbacks": callbacks}}, "; ".join(notes)


def slot_environments(
    parallel: int, *, gpus: Sequence[str], threads: int = 1, cells_per_gpu: int = 1
) -> list[dict[str, str]]:
    """Environment of each of ``parallel`` worker slots: ``threads`` torch threads each, and a GPU each
    where there are GPUs, ``cells_per_gpu`` slots at most on one GPU.

    The thread count is a setting, never derived from how many cells run at once or remain: it
    changes a cell's numbers, so the same cell must get the same count alone or beside others.
    GPUs are dealt round-robin, so slots spread over the devices before any device takes a second.

    >>> slot_environments(3, gpus=["0", "3"], cells_per_gpu=2)[2]
    {'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': '0'}
    >>> slot_environments(2, gpus=[], threads=4)[1]
    {'OMP_NUM_THREADS': '4', 'MKL_NUM_THREADS': '4'}

    Raises:
        ValueError: a count below 1, or more slots than ``len(gpus) * cells_per_gpu``.
    """
    for flag, value in (("--parallel", parallel), ("--threads-per-cell", threads), ("--cells-per-gpu", cells_per_gpu)):
        if value < 1:
            raise ValueError(f"{flag} {value}: must be at least 1")
    if gpus and parallel > len(gpus) * cells_per_gpu:
        raise ValueError(f"--parallel {parallel}: {len(gpus)} GPU(s) × --cells-per-gpu {cells_per_gpu} hold "
                         f"{len(gpus) * cells_per_gpu} cells at a time; raise --cells-per-gpu or lower --parallel")
    cpu = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if gpus:
        return [{**cpu, "CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]} for i in range(parallel)]
    return [dict(cpu) for _ in range(parallel)]


def cell_environment(base: Mapping[str, str], slot: Mapping[str, str]) -> dict[str, str]:
    """A cell process's environment: ``base`` with the slot's variables, less :data:`DROPPED_ENV`.

    >>> cell_environment({"WANDB_SERVICE": "2-1-tcp-localhost-1", "PATH": "/bin"}, {"OMP_NUM_THREADS": "1"})
    {'PATH': '/bin', 'OMP_NUM_THREADS': '1'}
    """
    env = {**base, **slot}
    for name in DROPPED_ENV:
        env.pop(name, None)
    return env


def visible_gpus() -> list[str]:
    """The GPU ids this process may hand out: ``CUDA_VISIBLE_DEVICES`` if set, else all torch sees."""
    import torch

    count = torch.cuda.device_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip()][:count]
    return [str(i) for i in range(count)]


def cell_status(cell_dir: Path) -> str:
    """``done`` (a result that reads), ``partial`` (a run started; a corrupt result is warned about) or ``todo``."""
    if (cell_dir / RESULT).is_file() and read_result(cell_dir / RESULT) is not None:
        return "done"
    return "partial" if cell_dir.is_dir() else "todo"


def last_checkpoint(fit_dir: Path) -> Path | None:
    """The newest ``last*.ckpt`` under a cell's fit folder (ModelCheckpoint's ``save_last``)."""
    found = [p for p in fit_dir.rglob("last*.ckpt") if p.is_file()] if fit_dir.is_dir() else []
    return max(found, key=lambda p: (p.stat().st_mtime, str(p))) if found else None


def checkpoint_loads(path: Path) -> bool:
    """Whether ``path`` loads as a checkpoint: Lightning does not write one atomically, so a study
    killed mid-save leaves a truncated ``last.ckpt`` that resuming from would fail on.

    Read with ``weights_only=True`` (nothing in the file runs); a whole file holding objects that
    safe loader refuses (a user callback's state) still counts as loadable: the fit loads it.
    """
    import pickle

    import torch

    try:
        torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        return str(err).startswith("Weights only load failed")
    except Exception:  # noqa: BLE001 -- truncated zip, I/O error: not a usable checkpoint
        return False
    return True


def _set_aside(fit_dir: Path) -> Path:
    """Move a cell's fit folder to the first free ``fit.broken<N>`` beside it; return the new path."""
    n = 1
    while (fit_dir.parent / f"{BROKEN_FIT}{n}").exists():
        n += 1
    return fit_dir.rename(fit_dir.parent / f"{BROKEN_FIT}{n}")


@dataclass
class Study:
    """A study's fixed inputs: the config, the output folder, the fit overrides, the schedule fix."""

    config: Path
    out: Path
    overrides: list[str]
    overlay: Path | None = None
    schedule_note: str = ""

    @classmethod
    def prepare(cls, config: str | os.PathLike, out: str | os.PathLike, overrides: Sequence[str]) -> Study:
        """Read the config, write the schedule overlay if one is needed, and create ``out``."""
        config_path = Path(config)
        if not config_path.is_file():
            raise ValueError(f"--config {config}: no such file")
        with config_path.open() as file:
            parsed = yaml.safe_load(file) or {}
        if not any(pruning_entries((parsed.get("trainer") or {}).get("callbacks"))):
            raise ValueError(f"--config {config}: has no callbacks.ScheduledPruning in trainer.callbacks to sweep")
        overlay_config, note = plan_schedule(parsed, overrides)
        out_path = Path(out)
        (out_path / "runs").mkdir(parents=True, exist_ok=True)
        overlay = None
        if overlay_config is not None:  # SLURM array tasks write it at once: atomically, and only if it differs
            overlay = out_path / f"{config_path.stem}.{OVERLAY}"
            text = f"# written by rnn_prune.study: {note}\n" + yaml.safe_dump(overlay_config, sort_keys=False)
            if not (overlay.is_file() and overlay.read_text() == text):
                write_text_atomic(overlay, text)
        return cls(config_path, out_path, list(overrides), overlay, note)

    def cell_dir(self, cell: Cell) -> Path:
        return self.out / "runs" / cell.name

    def _base_args(self, cell: Cell) -> list[str]:
        args = ["--config", str(self.config)]
        if self.overlay is not None:
            args += ["--config", str(self.overlay)]
        args += ["--sparsity", f"{cell.sparsity:g}"]
        if cell.kind != DENSE:
            args += ["--criterion", str(cell.criterion), "--guard", str(cell.guard)]
        return [*args, "--seed_everything", str(cell.seed), "--trainer.enable_progress_bar", "false"]

    def fit_command(self, cell: Cell, ckpt: Path | None) -> list[str]:
        """``python -m rnn_prune fit ...`` of one cell, resuming from ``ckpt`` when given."""
        fit_dir = self.cell_dir(cell) / "fit"
        command = [sys.executable, "-m", "rnn_prune", "fit", *self._base_args(cell),
                   "--trainer.default_root_dir", str(fit_dir), *self.overrides]  # fmt: skip
        return [*command, "--ckpt_path", str(ckpt)] if ckpt is not None else command

    def test_command(self, cell: Cell, ckpt: Path) -> list[str]:
        """``python -m rnn_prune test ...`` of the final checkpoint, logged to ``<cell>/test/`` as CSV."""
        test_dir = self.cell_dir(cell) / "test"
        return [sys.executable, "-m", "rnn_prune", "test", *self._base_args(cell),
                "--trainer.default_root_dir", str(test_dir), *self.overrides,
                "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", str(test_dir),
                "--ckpt_path", str(ckpt)]  # fmt: skip

    def rerun(self, cell: Cell, env: Mapping[str, str], ckpt: Path) -> dict[str, Any]:
        """How to run this one cell again by hand: its fit from scratch, the test of its checkpoint
        ``ckpt``, and the variables its slot set (torch threads, GPU) -- run them with those set."""
        slot = {k: env[k] for k in SLOT_VARIABLES if k in env}
        return {"env": slot, "fit": self.fit_command(cell, None), "test": self.test_command(cell, ckpt)}

    def run_cell(self, cell: Cell, env: dict[str, str], processes: _Processes) -> dict[str, Any]:
        """Fit (or resume) and test one cell, then write its ``result.json``; return the result."""
        cell_dir = self.cell_dir(cell)
        cell_dir.mkdir(parents=True, exist_ok=True)
        fit_dir = cell_dir / "fit"
        fit_ran = not (cell_dir / FIT_DONE).is_file()
        ended: outcomes.FitOutcome | None = None
        if fit_ran:
            resume = last_checkpoint(fit_dir)
            if resume is not None and not checkpoint_loads(resume):
                moved = _set_aside(fit_dir)
                message = f"{resume} does not load (cut off mid-write?): moved {fit_dir} to {moved}, fitting anew"
                log.warning("%s: %s", cell.name, message)
                with (cell_dir / CELL_LOG).open("a") as cell_log:
                    cell_log.write(f"\n# study: {message}\n")
                resume = None
            log.info("%s: %s", cell.name, f"resuming from {resume}" if resume else "fit")
            (fit_dir / outcomes.OUTCOME_FILE).unlink(missing_ok=True)  # only this fit's outcome counts
            processes.run(self.fit_command(cell, resume), env, cell_dir / CELL_LOG, cell.name, "fit",
                          ok_codes=(outcomes.EXIT_OK, outcomes.EXIT_DIVERGED))  # fmt: skip
            ended = outcomes.read_outcome(fit_dir)
            if ended is None or not ended.finished:
                why = ended.reason if ended is not None and ended.reason else f"no {outcomes.OUTCOME_FILE} written"
                raise CellError(f"{cell.name}: the fit did not finish: {why}; rerun to resume it from its last.ckpt")
            (cell_dir / FIT_DONE).touch()
        ckpt = last_checkpoint(fit_dir)
        if ckpt is None:
            raise CellError(f"{cell.name}: the fit wrote no last.ckpt under {fit_dir} (ModelCheckpoint with save_last)")
        log.info("%s: test of %s", cell.name, ckpt)
        processes.run(self.test_command(cell, ckpt), env, cell_dir / CELL_LOG, cell.name, "test")
        found = cell_result(cell, fit_dir, cell_dir / "test", fit_just_ran=fit_ran)
        if ended is None:  # the fit finished in an earlier invocation (None: before outcomes were recorded)
            ended = outcomes.read_outcome(fit_dir)
        stop_reason = ended.reason if ended is not None and ended.status != outcomes.COMPLETED else None
        result = {**cell.to_dict(), **found, "checkpoint": str(ckpt), "schedule_note": self.schedule_note,
                  "stop_reason": stop_reason, "provenance": cell_provenance(env),
                  "rerun": self.rerun(cell, env, ckpt)}  # fmt: skip
        write_json_atomic(cell_dir / RESULT, result)
        return result

    def run(self, cells: Sequence[Cell], *, parallel: int = 1, slots: list[dict[str, str]] | None = None,
            threads: int = 1, cells_per_gpu: int = 1, fresh_processes: bool = False) -> list[str]:  # fmt: skip
        """Run every unfinished cell, ``parallel`` at a time (or one per given slot); return the error of
        each failed cell. Fewer cells left than slots use fewer slots, each with the same threads.

        Each slot runs its cells' commands in one long-lived worker (:mod:`rnn_prune.study.worker`),
        started with the slot's environment; ``fresh_processes`` runs every command as its own process."""
        todo = [c for c in cells if cell_status(self.cell_dir(c)) != "done"]
        if not todo:
            return []
        if slots is None:
            slots = slot_environments(parallel, gpus=visible_gpus(), threads=threads, cells_per_gpu=cells_per_gpu)
        slots = slots[: len(todo)]
        free: Queue[int] = Queue()
        for index in range(len(slots)):
            free.put(index)
        errors: list[str] = []
        processes: _Processes = _Processes() if fresh_processes else _Workers()

        def one(cell: Cell) -> None:
            index = free.get()
            try:
                self.run_cell(cell, cell_environment(os.environ, slots[index]), processes.for_slot(index))
            except Exception as err:  # noqa: BLE001 -- one broken cell must not stop the others
                message = str(err) if isinstance(err, CellError) else f"{cell.name}: {type(err).__name__}: {err}"
                errors.append(message)
                log.error("%s", message)
            finally:
                free.put(index)

        pool = ThreadPoolExecutor(max_workers=len(slots))
        try:
            with processes.stopped_on_exit():  # stop the children before waiting for the workers
                for future in [pool.submit(one, cell) for cell in todo]:
                    future.result()
                processes.close()  # while the threads that started the workers live (parent-death signal)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return errors


class _Processes:
    """Each command a fresh process; the live ones are kept so that a stopped study (Ctrl-C,
    SIGTERM) stops its cells too."""

    def __init__(self) -> None:
        self._live: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopping = False

    def for_slot(self, index: int) -> _Processes:
        """What runs slot ``index``'s commands (any slot: a fresh process each)."""
        return self

    def close(self) -> None:
        """Nothing outlives its command here."""

    def run(self, command: list[str], env: dict[str, str], log_path: Path, name: str, stage: str, *,
            ok_codes: Sequence[int] = (0,)) -> int:  # fmt: skip
        """Run ``command`` to its end, its output appended to ``log_path``; return its exit code.

        Raises:
            CellError: the study is stopping, or the exit code is not one of ``ok_codes``.
        """
        with _logged(command, log_path).open("a") as log_file:
            with self._lock:
                if self._stopping:
                    raise CellError(f"{name}: study stopped before {stage}")
                process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                           preexec_fn=_die_with_parent())  # fmt: skip
                self._live.add(process)
            try:
                code = process.wait()
            finally:
                with self._lock:
                    self._live.discard(process)
        return _checked(code, ok_codes, name, stage, log_path)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            live = list(self._live)
        _terminate(live)

    @contextlib.contextmanager
    def stopped_on_exit(self) -> Iterator[None]:
        """Stop the children when the study leaves early; SIGTERM leaves like Ctrl-C does."""
        previous: Callable | int | None = None
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            yield
        except BaseException:
            self.stop()
            raise
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)


def _logged(command: Sequence[str], log_path: Path) -> Path:
    """Append ``command`` to the cell log as the ``$ ...`` line a reader (and the resume test) looks for."""
    with log_path.open("a") as log_file:
        log_file.write(f"\n$ {' '.join(command)}\n")
    return log_path


def _checked(code: int, ok_codes: Sequence[int], name: str, stage: str, log_path: Path) -> int:
    """``code`` when it is one of ``ok_codes``; else the :class:`CellError` saying how the command ended."""
    if code not in ok_codes:
        how = f"was stopped by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        raise CellError(f"{name}: {stage} {how}; its output is in {log_path}")
    return code


def _terminate(processes: Sequence[subprocess.Popen], timeout: float = 30) -> None:
    """SIGTERM each process (a fit stops after its batch, ``last.ckpt`` kept), SIGKILL one that lingers."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


WORKER_COMMAND = (sys.executable, "-m", "rnn_prune.study.worker")
CLI_PREFIX = (sys.executable, "-m", "rnn_prune")
"""The commands the study gives a worker are ``python -m rnn_prune ...`` ones: recorded as such in
``cell.log`` and ``result.json``'s ``rerun``, so each still runs alone."""


class _Workers(_Processes):
    """One long-lived worker process per slot (:mod:`rnn_prune.study.worker`): the training stack is
    imported once per slot, not twice per cell.

    A slot's worker is started by its first command, with that command's environment (the slot's),
    and again after it left (a failed cell, a crash): a command never runs in a worker whose
    previous cell ended badly.
    """

    def __init__(self) -> None:
        super().__init__()
        self._workers: dict[int, tuple[subprocess.Popen, dict[str, str]]] = {}

    def for_slot(self, index: int) -> _SlotWorker:
        return _SlotWorker(self, index)

    def run_in_slot(self, index: int, command: list[str], env: dict[str, str], log_path: Path, name: str,
                    stage: str, ok_codes: Sequence[int]) -> int:  # fmt: skip
        if tuple(command[: len(CLI_PREFIX)]) != CLI_PREFIX:
            return self.run(command, env, log_path, name, stage, ok_codes=ok_codes)
        _logged(command, log_path)
        with self._lock:
            if self._stopping:
                raise CellError(f"{name}: study stopped before {stage}")
            worker, started_with = self._workers.get(index, (None, None))
            if worker is not None and (worker.poll() is not None or started_with != env):
                self._retire(index)
                worker = None
            if worker is None:
                worker = subprocess.Popen(WORKER_COMMAND, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          text=True, bufsize=1,
                                          preexec_fn=_die_with_parent())  # fmt: skip
                self._workers[index] = (worker, env)
                self._live.add(worker)
        job = {"args": command[len(CLI_PREFIX):], "log": str(log_path)}
        try:
            assert worker.stdin is not None and worker.stdout is not None
            worker.stdin.write(json.dumps(job) + "\n")
            worker.stdin.flush()
            line = worker.stdout.readline()
        except OSError:  # the worker died before it read the job (BrokenPipe)
            line = ""
        if line:
            reply = json.loads(line)
            code = int(reply["code"])
            if reply.get("exiting"):
                worker.wait()
        else:  # it died mid-job: a signal, the OOM killer, a crash of the interpreter
            code = worker.wait()
        if worker.poll() is not None:
            with self._lock:
                if self._workers.get(index, (None,))[0] is worker:
                    self._retire(index)
        return _checked(code, ok_codes, name, stage, log_path)

    def _retire(self, index: int) -> None:
        """Forget slot ``index``'s worker (under the lock), closing its pipes."""
        worker, _ = self._workers.pop(index)
        self._live.discard(worker)
        for stream in (worker.stdin, worker.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def close(self) -> None:
        """End every worker: stdin closed, each leaves after its last job (SIGTERM if it lingers)."""
        with self._lock:
            workers = [worker for worker, _ in self._workers.values()]
            for index in list(self._workers):
                self._retire(index)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _terminate([worker])


class _SlotWorker:
    """Slot ``index``'s view of :class:`_Workers`: the ``run`` that :meth:`Study.run_cell` calls."""

    def __init__(self, workers: _Workers, index: int) -> None:
        self._workers, self._index = workers, index

    def run(self, command: list[str], env: dict[str, str], log_path: Path, name: str, stage: str, *,
            ok_codes: Sequence[int] = (0,)) -> int:  # fmt: skip
        """As :meth:`_Processes.run`, in the slot's worker."""
        return self._workers.run_in_slot(self._index, command, env, log_path, name, stage, ok_codes)


class StudyInterrupted(KeyboardInterrupt):
    """The study got SIGTERM; ``signum`` gives its exit code (128 + signum), as Ctrl-C's is 130."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise StudyInterrupted(signum)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that gives the child SIGTERM when its parent dies (Linux ``prctl``); None elsewhere.

    libc is looked up here, in the parent: between ``fork`` and ``exec`` the child only makes the call.
    The signal goes when the *thread* that started the child ends; the study's worker threads live
    until their cells' processes have ended.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: stop now
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def load_results(out: Path) -> Iterator[dict[str, Any]]:
    """Every finished cell's result under ``out/runs``, in folder-name order.

    A corrupt ``result.json`` is skipped with a warning naming it (its cell counts as not done).
    A result whose log-derived fields predate :data:`~rnn_prune.study.results.DERIVED_VERSION` is
    re-derived from its ``fit`` folder (:func:`~rnn_prune.study.results.refresh_result`) and stored.
    """
    for path in sorted((out / "runs").glob(f"*/{RESULT}")):
        result = read_result(path)
        if result is None:  # corrupt: warned about by read_result; the cell runs again
            continue
        refreshed = refresh_result(result, path.parent / "fit")
        if refreshed is not None:
            write_json_atomic(path, refreshed)
            result = refreshed
        yield result
