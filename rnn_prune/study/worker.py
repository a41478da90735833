"""A study slot's long-lived worker: runs cell commands one after another in one process.

Why: a cell's fit and test as fresh ``python -m rnn_prune`` processes each pay the training
stack's import (Lightning pulls torchmetrics, torchvision, ``torch._dynamo``, sympy: ~20 s on a
loaded 2-core machine) for seconds of work. A worker pays it once per ``--parallel`` slot.

Protocol (``python -m rnn_prune.study.worker``, started by :mod:`rnn_prune.study.runner` with the
slot's environment): each line on stdin is a job, ``{"args": [...], "log": PATH}`` -- the
arguments of ``python -m rnn_prune`` -- run through the package's own console entry
(:func:`rnn_prune.cli.console_main`, so exit codes, ``fit_outcome.json``, the run lock and the
one-line errors are those of the CLI) with fd 1 and 2 appended to ``PATH``. Each job is answered on
the worker's stdout (kept for replies; stray prints go to stderr) by one line
``{"code": EXIT_CODE, "exiting": BOOL}``. The worker leaves after a job that did not end with a
clean exit code (:data:`CONTINUE_CODES`), after a signal, and at the end of stdin.

Isolation between the cells of one worker (:class:`ProcessState`): every job starts from the state
the process had before the first one -- environment variables, ``sys.argv`` / ``sys.path``, the
working directory, signal handlers, torch's thread count and backend flags (deterministic
algorithms, cuDNN, TF32, matmul precision, default dtype, grad and anomaly modes), the logging
configuration, warnings filters and matplotlib's rcParams; a job's ``sys.stdin`` is ``/dev/null``
(the job pipe is not the cell's to read). After each job the W&B run is finished and W&B torn
down (the next cell sets it up from its own environment), figures are closed and
``torch._dynamo`` is reset. Seeds are the CLI's: every cell passes ``--seed_everything``. What
stays: imported modules, their globals and what they registered at import (a user's
``register_measure`` or criterion stays registered, as its module stays imported -- rolling the
registries back would lose it for good, since the module is not imported again) and the W&B/CUDA
caches of libraries. A user extension that keeps state in a module global sees it across cells;
run the study with ``--fresh-processes`` for such code.

SIGTERM: while Lightning runs a fit it owns the signal (the fit stops after the batch, writes
``last.ckpt`` and its outcome, and the job ends with 143); at any other time the job, or the idle
worker, stops at once with 143, as a fresh process would die.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

__all__ = ["CONTINUE_CODES", "WORKER_LINE", "ProcessState", "main", "run_job", "serve"]

CONTINUE_CODES = (0, 3)
"""Exit codes after which the worker takes the next job: finished, or a recorded divergence."""
ENTRY = str(Path(__file__).resolve().parent.parent / "__main__.py")
"""``sys.argv[0]`` of a job, as ``python -m rnn_prune`` has it (messages name ``python -m rnn_prune``)."""

WORKER_LINE = "# rnn_prune.study.worker"
"""Starts the line a worker writes into the cell log before each command: its PID and the command's number."""

_terminated = False
_unclean = False
"""Set when a job's clean-up failed: the worker answers that job, then leaves."""


def _on_sigterm(signum: int, frame: Any) -> None:
    """Remember the signal; stop now unless Lightning's own handler (which chains this one) runs a fit."""
    global _terminated
    _terminated = True
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        raise SystemExit(128 + signum)


class ProcessState:
    """What a cell can change in its process that the next cell must not see; :meth:`restore` puts it back.

    Taken after the training stack was imported (import-time state, such as Lightning's log
    handler, belongs to every cell). Only libraries already imported are captured: torch, and
    matplotlib when it is.
    """

    def __init__(self) -> None:
        import torch

        self.environ = dict(os.environ)
        self.argv, self.path, self.cwd = list(sys.argv), list(sys.path), os.getcwd()
        self.signals = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        self.threads = torch.get_num_threads()
        self.torch_flags = {
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "matmul_precision": torch.get_float32_matmul_precision(),
            "dtype": torch.get_default_dtype(),
            "grad": torch.is_grad_enabled(),
            "anomaly": torch.is_anomaly_enabled(),
        }
        self.backend_flags = {name: getattr(obj, name) for obj, name in _backend_flags()}
        manager = logging.Logger.manager
        self.loggers = {
            name: (list(lg.handlers), lg.level, lg.propagate, lg.disabled)
            for name, lg in [("", logging.getLogger()), *manager.loggerDict.items()]
            if isinstance(lg, logging.Logger)
        }
        self.logging_disable = logging.root.manager.disable
        self.rc = dict(sys.modules["matplotlib"].rcParams) if "matplotlib" in sys.modules else None

    def restore(self) -> None:
        import torch

        os.environ.clear()
        os.environ.update(self.environ)
        sys.argv[:], sys.path[:] = self.argv, self.path
        os.chdir(self.cwd)
        for signum, handler in self.signals.items():
            if handler is not None:
                signal.signal(signum, handler)
        torch.set_num_threads(self.threads)
        flags = self.torch_flags
        torch.use_deterministic_algorithms(flags["deterministic"], warn_only=flags["deterministic_warn_only"])
        torch.set_float32_matmul_precision(flags["matmul_precision"])
        torch.set_default_dtype(flags["dtype"])
        torch.set_grad_enabled(flags["grad"])
        torch.set_anomaly_enabled(flags["anomaly"])
        for obj, name in _backend_flags():
            setattr(obj, name, self.backend_flags[name])
        manager = logging.Logger.manager
        for name, lg in [("", logging.getLogger()), *manager.loggerDict.items()]:
            if not isinstance(lg, logging.Logger):
                continue
            handlers, level, propagate, disabled = self.loggers.get(name, ([], logging.NOTSET, True, False))
            for handler in lg.handlers:
                if handler not in handlers:
                    handler.close()
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled
        logging.disable(self.logging_disable)
        if self.rc is not None:
            import matplotlib

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # deprecated rcParams warn when set back
                dict.update(matplotlib.rcParams, self.rc)


def _backend_flags() -> list[tuple[Any, str]]:
    """``torch.backends`` switches a Trainer or a user's code sets process-wide."""
    import torch

    return [(torch.backends.cudnn, "benchmark"), (torch.backends.cudnn, "deterministic"),
            (torch.backends.cudnn, "enabled"), (torch.backends.cudnn, "allow_tf32"),
            (torch.backends.cuda.matmul, "allow_tf32")]  # fmt: skip


def _clean_up() -> None:
    """Close what a cell left open: its W&B run and service, figures, compiled graphs, memory."""
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()
        wandb.teardown()  # the next cell's W&B reads its settings from its own environment
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    if "torch._dynamo" in sys.modules:
        sys.modules["torch._dynamo"].reset()
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def _output_to(log_path: Path) -> Iterator[None]:
    """Point fd 1 and 2 (and so Python's, Lightning's and C libraries' output) at ``log_path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _exit_code(error: SystemExit) -> int:
    """The code a process would exit with for ``error`` (``sys.exit("text")`` prints the text, exits 1)."""
    if error.code is None:
        return 0
    if isinstance(error.code, int):
        return error.code
    print(error.code, file=sys.stderr)
    return 1


def run_job(args: list[str], state: ProcessState) -> int:
    """Run ``python -m rnn_prune ARGS`` in this process from ``state``; its exit code."""
    global _unclean
    from rnn_prune.cli import console_main

    state.restore()
    sys.argv[:] = [ENTRY, *args]  # read as a process's would be (args=None): no "args and argv" warning
    os.environ.setdefault("WANDB_PROGRAM", "-m rnn_prune")  # W&B names the cell's command, not the worker
    try:
        with warnings.catch_warnings():
            console_main()
        code = 0
    except SystemExit as error:
        code = _exit_code(error)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = 130
    except BaseException:  # noqa: BLE001 -- a bug in the cell: its traceback, as the process would print
        traceback.print_exc()
        code = 1
    finally:
        try:
            _clean_up()
        except BaseException:  # noqa: BLE001 -- W&B's teardown failing: into the cell's log; the job's own
            traceback.print_exc()  # code stands, but this process is no longer clean: it leaves
            _unclean = True
        state.restore()
    return code


def serve(jobs: TextIO, replies: TextIO) -> int:
    """Run every job read from ``jobs``; the worker's exit code."""
    state: ProcessState | None = None
    for number, line in enumerate(jobs, start=1):
        job = json.loads(line)
        with _output_to(Path(job["log"])):
            print(f"{WORKER_LINE} {os.getpid()}, command {number} in this process", file=sys.stderr, flush=True)
            try:
                if state is None:  # the stack's import goes into the first cell's log, as a process's would
                    import rnn_prune.cli  # noqa: F401

                    state = ProcessState()
                code = run_job(list(job["args"]), state)
            except BaseException:  # noqa: BLE001 -- the worker itself broke: say why in the cell's log
                traceback.print_exc()
                code = 1
        leaving = code not in CONTINUE_CODES or _terminated or _unclean
        try:
            replies.write(json.dumps({"code": code, "exiting": leaving}) + "\n")
            replies.flush()
        except BrokenPipeError:  # the study is gone (killed): nobody to answer
            return code or 143
        if leaving:
            return code or (143 if _terminated else 1)
    return 0


def main() -> int:
    """Keep fd 1 for replies (prints go to stderr) and stdin for jobs, then serve them: a cell that
    reads ``sys.stdin`` (``input()``, ``breakpoint()``) gets end of file, not the next job's line."""
    replies = os.fdopen(os.dup(1), "w")
    jobs = sys.stdin
    sys.stdin = open(os.devnull)  # noqa: SIM115 -- the cells' stdin for the worker's life
    os.dup2(2, 1)
    signal.signal(signal.SIGTERM, _on_sigterm)
    return serve(jobs, replies)


if __name__ == "__main__":
    raise SystemExit(main())
