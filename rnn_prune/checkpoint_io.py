"""Checkpoints written atomically in their own directory: a failed save never costs the last good one.

Lightning's ``TorchCheckpointIO`` serialises a checkpoint into memory and then opens the target
with ``"wb"`` and writes the bytes into it: the target is truncated first, so a full disk or an
I/O error mid-write leaves a cut-off ``last.ckpt`` ("PytorchStreamReader failed reading zip
archive") where a good one stood. :class:`AtomicCheckpointIO` writes a temporary file *beside* the
target (same directory, hence same file system, so the rename is atomic), ``fsync``\\ s it, renames
it over the target and ``fsync``\\ s the directory: a reader, a resume or a crash sees the old
checkpoint or the new one, never half of one. A failed write removes the temporary file and
raises :class:`CheckpointWriteError`, one sentence naming the path.

The CLI gives every trainer this plugin unless the config names a ``CheckpointIO`` of its own.
Paths with a ``scheme://`` (``s3://``, ...) go to Lightning's own (fsspec) writer unchanged.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO
from typing_extensions import override

__all__ = ["AtomicCheckpointIO", "CheckpointWriteError", "atomic_torch_save", "is_remote"]

_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote(path: str | os.PathLike) -> bool:
    """A URL (``s3://``, ``gs://``, ``file://``...): fsspec's to write, not a local file or folder."""
    return bool(_REMOTE.match(str(path)))


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the previous file at that path is unchanged.

    ``str()`` is the one sentence; ``errno`` is the cause's (``ENOSPC`` for a full disk)."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


def _umask() -> int:
    """The process's umask (read by setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` through a temporary file beside ``path``, fsync'ed and renamed over it.

    Raises:
        CheckpointWriteError: the write failed (its ``errno`` is the cause's: ``ENOSPC`` for a full
            disk); ``path`` is left as it was and the temporary file is removed.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        message = f"could not write checkpoint {target}: {error.strerror or error}"
        raise CheckpointWriteError(message, error.errno) from error
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make checkpoints private to their writer
        buffer = io.BytesIO()  # serialise first: torch's zip writer turns a failed write into an opaque
        torch.save(obj, buffer)  # RuntimeError ("unexpected pos"); a plain write keeps the OSError (ENOSPC)
        with os.fdopen(fd, "wb") as file:
            file.write(buffer.getbuffer())
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, target)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        kept = "the previous checkpoint there is unchanged" if target.exists() else "no checkpoint was there before"
        reason = error.strerror or str(error)
        raise CheckpointWriteError(f"could not write checkpoint {target}: {reason}; {kept}", error.errno) from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves are atomic and durable (see the module docstring).

    Loading and removing are Lightning's own.
    """

    @override
    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if is_remote(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__}.save_checkpoint() takes no storage_options")
        atomic_torch_save(checkpoint, path)
