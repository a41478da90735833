"""How a ``fit`` ended: its exit code, and ``fit_outcome.json`` in the run root that says why.

A shell, SLURM or the study learns how a fit ended from its exit code; the study also reads
``<default_root_dir>/fit_outcome.json`` (written by the CLI at the end of every ``fit``, however it
ended) to tell a fit that reached its last epoch, or stopped for a reason worth recording (early
stopping, divergence), from one that was cut short and must be resumed.

Exit codes of ``python -m rnn_prune`` / ``rnn-prune`` (the README's table is this one):

====  ===================================================================================
0     finished: the last epoch, or stopped early by a callback for a recorded reason
1     an unexpected error (a bug): Python's traceback
2     bad input: a config or argument, a checkpoint path, a data file (one ``error:`` line)
3     training diverged (``val/loss`` NaN/inf or past ``divergence_threshold``, a NaN loss,
      an optimizer update that overflowed); ``last.ckpt`` holds the bad state
74    a checkpoint could not be written (disk full, I/O error); the previous one is intact
75    the run root is in use by another live fit (``run.lock``)
130   stopped by SIGINT (Ctrl-C) after ``last.ckpt`` (the last whole epoch) was written
143   stopped by SIGTERM (SLURM time limit, preemption, ``kill``), likewise
====  ===================================================================================

Pure Python: the study reads outcomes without importing Lightning.
"""

from __future__ import annotations

import json
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rnn_prune.atomic import atomic_write

__all__ = [
    "EXIT_CHECKPOINT_WRITE", "EXIT_CONFIG", "EXIT_DIVERGED", "EXIT_ERROR", "EXIT_OK", "EXIT_ROOT_BUSY",
    "EXIT_SIGINT", "EXIT_SIGTERM", "OUTCOME_FILE", "FitOutcome", "read_outcome", "signal_exit_code",
    "write_outcome",
]  # fmt: skip

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_DIVERGED = 3
EXIT_CHECKPOINT_WRITE = 74  # sysexits.h EX_IOERR
EXIT_ROOT_BUSY = 75  # sysexits.h EX_TEMPFAIL: try again once the other run has ended
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM

OUTCOME_FILE = "fit_outcome.json"
"""Written into ``default_root_dir`` at the end of every ``fit`` (replaced by a later one)."""

COMPLETED = "completed"
"""The fit ran its last epoch (``max_epochs`` or ``max_steps`` reached)."""
STOPPED = "stopped"
"""A callback stopped it for the reason given (EarlyStopping on a plateau, ``max_time``): a finished fit."""
DIVERGED = "diverged"
"""Training went bad; the reason says how. A finished fit whose numbers are those of a broken model."""
INTERRUPTED = "interrupted"
"""A signal stopped it; ``last.ckpt`` holds the last whole epoch, resume from it."""
FAILED = "failed"
"""An error stopped it (an I/O error writing a checkpoint, a bug)."""
FINISHED_STATUSES = frozenset({COMPLETED, STOPPED, DIVERGED})
"""Outcomes after which the fit is done: resuming would not train on."""


@dataclass(frozen=True)
class FitOutcome:
    """How one ``fit`` ended.

    Attributes:
        status: one of :data:`COMPLETED`, :data:`STOPPED`, :data:`DIVERGED`, :data:`INTERRUPTED`,
            :data:`FAILED`.
        exit_code: the process's exit code for it (see the module's table).
        reason: one sentence for people (empty for a completed fit).
        epoch: the last epoch that ran (possibly cut short), or None before the first.
        max_epochs: the trainer's ``max_epochs`` (None: unlimited).
        checkpoint: the ``last.ckpt`` a resume would start from, if one was written.
    """

    status: str
    exit_code: int
    reason: str = ""
    epoch: int | None = None
    max_epochs: int | None = None
    checkpoint: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the fit is done (resuming it would not train any further)."""
        return self.status in FINISHED_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def signal_exit_code(signum: int) -> int:
    """The shell's exit code of a process stopped by ``signum``: 128 + its number.

    >>> signal_exit_code(signal.SIGTERM), signal_exit_code(signal.SIGINT)
    (143, 130)
    """
    return 128 + int(signum)


def write_outcome(root: Path, outcome: FitOutcome) -> Path:
    """Write ``outcome`` to ``root/fit_outcome.json`` atomically (a reader never sees half of it)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / OUTCOME_FILE
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(outcome.to_dict(), indent=2) + "\n"))
    return path


def read_outcome(root: Path) -> FitOutcome | None:
    """The outcome a fit wrote into ``root``; None when there is none, or it does not parse.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = write_outcome(Path(folder), FitOutcome(STOPPED, 0, "early stopping", 4, 20))
    ...     read_outcome(Path(folder)).finished, read_outcome(Path(folder) / "nothing")
    (True, None)
    """
    try:
        data = json.loads((root / OUTCOME_FILE).read_text())
        return FitOutcome(**data)
    except (OSError, ValueError, TypeError):
        return None
