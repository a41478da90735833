"""What a cell ran on, and how the study was started: enough to rerun one cell and compare like with like.

The thread count alone moves a cell's test accuracy by more than its seed gap, and so can another
torch or a changed package. Each ``result.json`` therefore records :func:`cell_provenance` (versions
of torch, Lightning and this package, the git commit, the torch threads and the CPU or GPU), and
``OUT/study.json`` every distinct invocation (:func:`record_invocation`): its argv, config (with a
hash of its text), fit overrides and settings. A study resumed under settings that change results
warns, naming what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["COMPARED", "STUDY_JSON", "cell_provenance", "changed_settings", "cpu_name", "git_state",
           "record_invocation", "versions"]  # fmt: skip

log = logging.getLogger("rnn_prune.study")

STUDY_JSON = "study.json"
COMPARED = ("config_sha256", "overrides", "threads_per_cell", "versions", "git_commit", "devices")
"""The settings of an invocation that can change a cell's numbers: resuming with others warns."""
PACKAGES = {"torch": "torch", "lightning": "lightning", "rnn_prune": "rnn-prune"}
"""Recorded versions: name in the record -> distribution name (read from metadata, nothing imported)."""


def versions() -> dict[str, str | None]:
    """Python's and :data:`PACKAGES`' versions (None for one not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name, distribution in PACKAGES.items():
        try:
            found[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


@cache
def git_state(path: Path | None = None) -> tuple[str | None, bool | None]:
    """The commit of the checkout holding ``path`` (default: this package's source) and whether tracked
    files differ from it; ``(None, None)`` outside a git checkout (an installed wheel) or without git."""
    where = path if path is not None else Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=30)  # fmt: skip
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    return commit.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None


@cache
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def gpu_name(device: str) -> str | None:
    """The name of GPU ``device`` (an id as ``CUDA_VISIBLE_DEVICES`` lists it), None if torch cannot see it."""
    import os

    import torch

    if not torch.cuda.is_available():
        return None
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    count = torch.cuda.device_count()
    ids = [g.strip() for g in listed.split(",")] if listed is not None else [str(i) for i in range(count)]
    if device not in ids or ids.index(device) >= count:
        return None
    return torch.cuda.get_device_name(ids.index(device))


def cell_provenance(slot: Mapping[str, str]) -> dict[str, Any]:
    """What ``result.json`` records of the cell that ran in ``slot`` (its environment variables)."""
    commit, dirty = git_state()
    threads = slot.get("OMP_NUM_THREADS")
    device = slot.get("CUDA_VISIBLE_DEVICES")
    return {
        **versions(),
        "git_commit": commit,
        "git_dirty": dirty,
        "threads": int(threads) if threads is not None else None,
        "cpu": cpu_name(),
        "gpu": gpu_name(device) if device is not None else None,
        "cuda_visible_devices": device,
        "executable": sys.executable,
    }


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def changed_settings(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The :data:`COMPARED` settings that differ between two invocations, as ``name: old -> new``.

    >>> changed_settings({"threads_per_cell": 2, "overrides": []}, {"threads_per_cell": 1, "overrides": []})
    ['threads_per_cell: 2 -> 1']
    """
    changes = []
    for key in COMPARED:
        old, new = before.get(key), now.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            changes += [f"{key}.{k}: {old.get(k)} -> {new.get(k)}" for k in sorted({*old, *new})
                        if old.get(k) != new.get(k)]  # fmt: skip
        elif old != new:
            changes.append(f"{key}: {old} -> {new}")
    return changes


def _without_cell_index(argv: Sequence[str]) -> list[str]:
    """``argv`` less ``--cell-index K``: the array tasks of one study are one invocation."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--cell-index":
            skip = True
        elif not arg.startswith("--cell-index="):
            out.append(arg)
    return out


def record_invocation(
    out: Path,
    argv: Sequence[str],
    *,
    config: Path,
    overrides: Sequence[str],
    threads_per_cell: int,
    cells_per_gpu: int,
    devices: Sequence[str],
) -> dict[str, Any]:
    """Add this invocation to ``out/study.json`` (once: a repeated one is not added again) and warn when
    an earlier invocation of the same config ran with other :data:`COMPARED` settings; return the entry."""
    from rnn_prune.study.results import write_json_atomic

    commit, dirty = git_state()
    entry = {
        "argv": _without_cell_index(argv),
        "config": str(config),
        "config_sha256": _sha256(config),
        "overrides": list(overrides),
        "threads_per_cell": threads_per_cell,
        "cells_per_gpu": cells_per_gpu,
        "versions": versions(),
        "git_commit": commit,
        "git_dirty": dirty,
        "devices": list(devices),
        "cwd": str(Path.cwd()),
        "executable": sys.executable,
    }
    path = out / STUDY_JSON
    recorded: dict[str, Any] = {"invocations": []}
    if path.is_file():
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            log.warning("%s could not be read (%s): starting a new record", path, err)
    invocations = recorded.setdefault("invocations", [])
    earlier = [e for e in invocations if e.get("config") == entry["config"]]
    if earlier and (changes := changed_settings(earlier[-1], entry)):
        log.warning("%s was run before with other settings (%s): cells finished then and now may differ",
                    out, "; ".join(changes))  # fmt: skip
    if entry not in invocations:
        invocations.append(entry)
        write_json_atomic(path, recorded)
    return entry
