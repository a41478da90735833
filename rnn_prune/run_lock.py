"""One live fit per run root: ``<default_root_dir>/run.lock`` names the owner and refuses a second.

Two fits in one root overwrite each other's ``last.ckpt`` and ``config.yaml`` and mix their best
checkpoints, and both exit 0. The lock is an exclusive ``flock`` on ``run.lock``, held for as long
as the fit runs; the file records the owner's PID, host and start time for the refusal message.
The kernel drops the ``flock`` when its process dies (``kill -9`` included), so a lock left by a
dead run is taken over -- with a warning naming it, because the run it belonged to ended without
cleaning up. A run that ends normally empties the file.

Notes: ``flock`` is advisory and per host on some network file systems (old NFS without lock
support); there the PID check falls back to "is that PID alive on this host".
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

__all__ = ["LOCK_FILE", "RunRootBusy", "RunRootLock", "pid_alive"]

log = logging.getLogger(__name__)

LOCK_FILE = "run.lock"


class RunRootBusy(RuntimeError):
    """Another live process holds the run root; the message names its PID."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _read_owner(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors="replace").strip()
    try:
        owner = json.loads(text) if text else {}
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def _describe(owner: dict[str, Any]) -> str:
    pid, host, since = owner.get("pid", "?"), owner.get("host", "?"), owner.get("started", "?")
    return f"PID {pid} on {host} (since {since})"


class RunRootLock:
    """The lock of one run root; :meth:`acquire` it before writing there, :meth:`release` at the end.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as root:
    ...     with RunRootLock(root):
    ...         RunRootLock(root).acquire()
    Traceback (most recent call last):
    ...
    rnn_prune.run_lock.RunRootBusy: ...is in use by a fit with PID ...
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunRootBusy` naming the live owner's PID.

        A lock file left by a dead process is taken over with a warning.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            flocked = True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise self._busy(_read_owner(fd)) from None
                flocked = False  # a file system without flock (ENOLCK): the PID check below decides
            previous = _read_owner(fd)
            pid = previous.get("pid")
            if isinstance(pid, int) and pid != os.getpid():
                if not flocked and (previous.get("host") != socket.gethostname() or pid_alive(pid)):
                    raise self._busy(previous)
                log.warning(
                    "%s: took over the lock of %s, which ended without releasing it (killed?)",
                    self.path, _describe(previous),
                )  # fmt: skip
            owner = {"pid": os.getpid(), "host": socket.gethostname(), "what": "fit",
                     "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(owner) + "\n").encode())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _busy(self, owner: dict[str, Any]) -> RunRootBusy:
        return RunRootBusy(
            f"{self.root} is in use by a fit with {_describe(owner)}: give this run another "
            "--trainer.default_root_dir, or wait for that one to end"
        )

    def release(self) -> None:
        """Empty the file and drop the lock (the file stays: removing it would race a new owner)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> RunRootLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
