"""Read the ``run-<id>.wandb`` files that W&B writes offline, without a W&B server.

wandb 0.31 no longer ships a Python reader for these files (the writer moved into its Go core), so
this module reads them directly. The file layout, as written by wandb 0.31 and checked against real
files in ``tests/test_wandb_offline.py``:

- a 7-byte file header: ``b":W&B"``, the magic ``0xBEE1`` (uint16 little-endian; the low 16 bits of
  ``zlib.crc32(b"Weights & Biases")``) and the version byte ``0``;
- then the LevelDB log format in 32 KiB blocks counted from the start of the file (the header sits
  in block 0). Each chunk has a 7-byte header: checksum (uint32 LE), payload length (uint16 LE) and
  type (1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST), then the payload. A record that does not fit in the rest
  of a block is split into FIRST, MIDDLE..., LAST chunks; a block tail shorter than a chunk header
  is zero padding. The checksum is the plain (unmasked) IEEE CRC-32 of the type byte followed by
  the payload, ``zlib.crc32(bytes([type]) + payload)`` -- not LevelDB's masked CRC-32C -- so
  verifying it is cheap and always done;
- each record is a serialized ``wandb.proto.wandb_internal_pb2.Record``. Metrics are ``history``
  records whose items carry ``nested_key`` (one element per level of a nested dict; a key such as
  ``graph/lstm.l0.hh/delta_r`` stays one element, dots included) or ``key``, and a JSON
  ``value_json`` (``NaN`` and ``Infinity`` included). ``summary`` and ``config`` records hold
  updates and removals; the initial config rides in the ``run`` record.

A run killed mid-write leaves a cut-off last chunk, a checksum-failing last chunk or a FIRST chunk
without its LAST: reading stops cleanly before it. Damage followed by more data raises
``ValueError``. wandb's core process writes the file asynchronously, even after ``run.finish()``
returns: :func:`wait_until_complete` waits for the ``exit`` record, the last one a run writes.

Example (``run`` is ``<save_dir>/wandb/offline-run-<date>-<id>`` or its ``.wandb`` file)::

    for row in read_history(run):
        print(row["_step"], row.get("val/acc"))
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

__all__ = [
    "OfflineRun",
    "find_offline_runs",
    "is_complete",
    "iter_records",
    "read_config",
    "read_history",
    "read_run",
    "read_summary",
    "run_file",
    "run_id",
    "wait_until_complete",
]

_FILE_HEADER = struct.Struct("<4sHB")  # ident, magic, version
_IDENT, _MAGIC, _VERSION = b":W&B", 0xBEE1, 0
_CHUNK_HEADER = struct.Struct("<IHB")  # checksum, length, type
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = _TYPES = (1, 2, 3, 4)

PathLike = str | os.PathLike


def run_file(run: PathLike) -> Path:
    """The ``.wandb`` file of a run: ``run`` itself if it is a file, else the ``run-*.wandb`` in it.

    Raises:
        FileNotFoundError: ``run`` does not exist, or is a directory without a ``run-*.wandb`` file.
    """
    path = Path(run)
    if path.is_file():
        return path
    files = sorted(path.glob("run-*.wandb")) if path.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {path}")
    return files[-1]


def find_offline_runs(root: PathLike) -> list[Path]:
    """Every W&B run directory at or under ``root`` that holds a ``run-*.wandb`` file, sorted.

    These are the ``offline-run-<date>-<id>`` directories, and also the ``run-<date>-<id>``
    directories of online runs (same file format). The ``latest-run`` symlink and other links are
    not followed, so no run is listed twice. A missing ``root`` gives an empty list.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        name = os.path.basename(dirpath)
        if name.startswith(("offline-run-", "run-")) and any(
            f.startswith("run-") and f.endswith(".wandb") for f in filenames
        ):
            found.append(Path(dirpath))
            dirnames.clear()  # a run directory holds no further runs
    return sorted(found)


def iter_records(path: PathLike) -> Iterator[wandb_internal_pb2.Record]:
    """Yield the ``Record`` protobufs of a ``.wandb`` file (or run directory) in write order.

    Raises:
        ValueError: the file is not a W&B run file, or is damaged before its last chunk.
    """
    path = run_file(path)
    data = path.read_bytes()
    for payload in _iter_payloads(data, path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        yield record


def _iter_payloads(data: bytes, path: Path) -> Iterator[bytes]:
    if len(data) < _FILE_HEADER.size:
        return  # killed before the header was flushed: no records
    ident, magic, version = _FILE_HEADER.unpack_from(data)
    if (ident, magic, version) != (_IDENT, _MAGIC, _VERSION):
        raise ValueError(f"{path}: not a W&B run file (header {data[: _FILE_HEADER.size]!r})")
    offset, pending = _FILE_HEADER.size, None
    while offset < len(data):
        left_in_block = _BLOCK - offset % _BLOCK
        if left_in_block < _CHUNK_HEADER.size:  # zero padding at the end of a block
            offset += left_in_block
            continue
        end = offset + _CHUNK_HEADER.size
        if end > len(data):
            return  # cut-off chunk header
        checksum, length, kind = _CHUNK_HEADER.unpack_from(data, offset)
        payload = data[end : end + length]
        if len(payload) < length:
            return  # cut-off payload
        if kind == 0 and length == 0 and checksum == 0:
            return  # zero-filled tail
        if zlib.crc32(bytes([kind]) + payload) != checksum or kind not in _TYPES:
            if end + length >= len(data):
                return  # a half-written last chunk
            raise ValueError(f"{path}: damaged chunk at byte {offset} (checksum or type {kind})")
        start, offset = offset, end + length
        if kind == _FULL:
            pending = None
            yield payload
        elif kind == _FIRST:
            pending = [payload]
        elif pending is None:
            raise ValueError(f"{path}: chunk of type {kind} at byte {start} has no FIRST chunk")
        elif kind == _MIDDLE:
            pending.append(payload)
        else:
            yield b"".join(pending + [payload])
            pending = None


def is_complete(run: PathLike) -> bool:
    """Whether the run's file holds its ``exit`` record: the run finished and wandb wrote it all.

    ``run.finish()`` can return before wandb's core process has flushed the file, and a run that is
    still going (or was killed) has no ``exit`` record: its file ends with what was flushed so far.
    """
    return any(record.HasField("exit") for record in iter_records(run))


def wait_until_complete(run: PathLike, *, timeout: float = 30.0) -> bool:
    """Poll until :func:`is_complete` (True) or ``timeout`` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if is_complete(run):
                return True
        except FileNotFoundError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _item_key(item: Any) -> str:
    return item.key or ".".join(item.nested_key)


def _items(items: Iterable[Any]) -> dict[str, Any]:
    return {_item_key(item): json.loads(item.value_json) for item in items}


def read_history(run: PathLike) -> list[dict[str, Any]]:
    """One dict per logged step: ``{"_step": 0, "_runtime": ..., "val/acc": 0.71, ...}``.

    Keys are ``item.key`` or the ``nested_key`` parts joined with ``"."`` (``run.log({"a": {"b":
    1}})`` gives ``"a.b"``); values are JSON-decoded (``NaN`` and ``Infinity`` become floats).
    """
    return [_items(r.history.item) for r in iter_records(run) if r.HasField("history")]


def run_id(run: PathLike) -> str:
    """The W&B run id of a run directory or file, from its name: ``run-<id>.wandb``.

    A resumed run (``resume="allow"``, same id) is written offline to a new
    ``offline-run-<time>-<id>`` folder holding a file of the same name, so equal ids mean one run.
    """
    return run_file(run).stem.removeprefix("run-")


@dataclass(frozen=True)
class OfflineRun:
    """What one ``.wandb`` file says about its session, read in one pass by :func:`read_run`.

    Attributes:
        path: the ``.wandb`` file.
        run_id: from the ``run`` record (the file name's id if the record is missing).
        job_type: the ``job_type`` given to ``wandb.init`` (``""`` when none was).
        start_time: the session's start, seconds since the epoch (0.0 when unknown).
        history: as :func:`read_history`.
        complete: as :func:`is_complete`.
    """

    path: Path
    run_id: str
    job_type: str
    start_time: float
    history: list[dict[str, Any]]
    complete: bool


def read_run(run: PathLike) -> OfflineRun:
    """Read a session's identity, history and completeness with one pass over its file."""
    path = run_file(run)
    identity, history, complete = None, [], False
    for record in iter_records(path):
        if record.HasField("history"):
            history.append(_items(record.history.item))
        elif record.HasField("run") and identity is None:
            identity = record.run
        elif record.HasField("exit"):
            complete = True
    if identity is None:
        return OfflineRun(path, run_id(path), "", 0.0, history, complete)
    start = identity.start_time.ToNanoseconds() / 1e9 if identity.HasField("start_time") else 0.0
    return OfflineRun(path, identity.run_id or run_id(path), identity.job_type, start, history, complete)


def read_summary(run: PathLike) -> dict[str, Any]:
    """The run's final summary: every ``summary`` update applied in order, removals honoured.

    Keys are flat as in :func:`read_history`; W&B's own ``_wandb.*`` entries are left out.
    """
    summary: dict[str, Any] = {}
    for record in iter_records(run):
        if record.HasField("summary"):
            _apply(summary, record.summary)
    return {k: v for k, v in summary.items() if not k.startswith("_wandb")}


def read_config(run: PathLike) -> dict[str, Any]:
    """The run's config: the one given to ``wandb.init`` and every later ``config.update``.

    Top-level keys map to JSON-decoded values (nested dicts stay nested); ``_wandb`` is left out.
    """
    config: dict[str, Any] = {}
    for record in iter_records(run):
        if record.HasField("run"):
            _apply(config, record.run.config)
        elif record.HasField("config"):
            _apply(config, record.config)
    config.pop("_wandb", None)
    return config


def _apply(target: dict[str, Any], updates: Any) -> None:
    target.update(_items(updates.update))
    for item in updates.remove:
        target.pop(_item_key(item), None)
