"""The on-disk array cache: ``.npy`` files named by a hash of what they hold, written atomically.

A file is written as ``<name>-<hash>.tmp<pid>.npy`` and renamed when complete, so a crash never
leaves a half-written file under the final name. A process killed mid-fill (``kill -9`` runs no
cleanup) leaves its temporary behind, possibly several GB: :func:`remove_stale_temporaries` deletes
those whose process is gone, at the next start.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnn_prune.run_lock import pid_alive

_TEMPORARY = re.compile(r"\.tmp(\d+)\.npy$")


def cache_path(folder: Path, name: str, key: dict) -> Path:
    """``<folder>/<name>-<16 hex digits of the SHA-1 of key as sorted JSON>.npy``."""
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return folder / f"{name}-{digest}.npy"


def cached_array(
    path: Path, shape: tuple[int, ...], dtype: type, fill: Callable[[np.ndarray], None]
) -> np.ndarray:
    """Memory-map ``path`` (read-only), first creating it with ``fill(array)`` when it is missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        try:
            fill(out)
            out.flush()
        except BaseException:
            del out
            tmp.unlink(missing_ok=True)  # no multi-GB leftovers from an interrupted fill
            raise
        del out
        os.replace(tmp, path)
    return np.load(path, mmap_mode="r")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the ``*.tmp<pid>.npy`` files in ``folder`` whose process no longer runs.

    A temporary of a live process (another run filling the same cache) is kept. Returns the
    deleted paths.

    Notes: the pid is checked on this machine only; do not share one cache folder between
    machines while a fill runs.
    """
    removed = []
    for path in folder.glob("*.tmp*.npy") if folder.is_dir() else ():
        match = _TEMPORARY.search(path.name)
        if match and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
