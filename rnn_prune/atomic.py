"""Write a file so that a reader sees the old one or the new one, never half of one.

Standard library only: the CLI (``fit_outcome.json``), the study (``result.json``, figures) and
scripts share it without importing each other's stacks. Checkpoints have their own, durable
variant (:func:`rnn_prune.checkpoint_io.atomic_torch_save`: fsync'ed, permissions of a plain file,
one-line errors for a full disk).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: Path, write: Callable[[Path], object], *, suffix: str = ".tmp") -> None:
    """``write`` a temporary file beside ``path``, then rename it over: readers (a parallel cell, a
    SLURM task, a killed study) see the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
