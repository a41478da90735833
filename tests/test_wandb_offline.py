"""The ``.wandb`` reader against files written by wandb itself (offline, no server).

Two runs are written once per module: one through ``wandb.init`` directly (with a record larger than
two 32 KiB blocks, NaN/Infinity, nested dicts, summary and config updates and a removal) and one
through Lightning's ``WandbLogger(offline=True)``. The damaged-file tests cut and corrupt copies.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from pathlib import Path

import pytest
import wandb
from lightning.pytorch.loggers import WandbLogger
from wandb.proto import wandb_internal_pb2

from rnn_prune.wandb_offline import (
    find_offline_runs,
    is_complete,
    iter_records,
    read_config,
    read_history,
    read_run,
    read_summary,
    run_file,
    run_id,
    wait_until_complete,
)
from tests.conftest import offline_wandb_env

BLOCK = 32768
BIG_KEYS = 3000  # ~150 KB in one history record: a FIRST, several MIDDLE and a LAST chunk
CONFIG = {"model": {"cell": "lstm", "hidden_size": 64}, "lr": 0.01, "seed": 0}


def logged_rows() -> list[dict]:
    rows = []
    for i in range(12):
        row = {
            "epoch": i // 3,
            "val/acc": 0.05 + i / 13,
            "graph/lstm.l0.ih.forget_gate/delta_r": -0.5 + i * 0.1234567,
            "prune/sparsity": min(0.9, i * 0.1),
            "nested": {"inner": i},
        }
        if i == 5:
            row.update({f"graph/g{k}.hh/delta_r": k * 1.5 for k in range(BIG_KEYS)})
        if i == 7:
            row.update({"odd/nan": math.nan, "odd/inf": math.inf, "odd/text": "hello"})
        rows.append(row)
    return rows


def flat(row: dict) -> dict:
    out = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def same(a: object, b: object) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


@pytest.fixture(scope="module")
def wandb_root(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("wandb_runs")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in offline_wandb_env(root).items():
            mp.setenv(key, value)
        yield root


@pytest.fixture(scope="module")
def direct_run(wandb_root: Path) -> Path:
    """A run written with ``wandb.init`` / ``run.log`` / ``run.finish``."""
    run = wandb.init(dir=wandb_root / "direct", project="rnn-prune", name="direct", config=CONFIG)
    for row in logged_rows():
        run.log(row)
    run.config.update({"sparsity": 0.9})
    run.summary["best/val_acc"] = 0.875
    run.summary["scratch"] = 1
    del run.summary["scratch"]
    run.finish()
    (run_dir,) = find_offline_runs(wandb_root / "direct")
    assert wait_until_complete(run_dir)  # finish() can return before wandb-core flushed the file
    return run_dir


@pytest.fixture(scope="module")
def lightning_run(wandb_root: Path) -> Path:
    """A run written the way a Trainer writes it: ``WandbLogger.log_metrics(metrics, step)``."""
    logger = WandbLogger(offline=True, save_dir=str(wandb_root / "lightning"), project="rnn-prune", name="lit")
    logger.log_hyperparams({"model": {"cell": "gru"}, "lr": 0.01})
    logger.log_metrics({"train/loss": 2.5, "epoch": 0}, step=4)
    logger.log_metrics({"val/acc": 0.625, "val/loss": 1.125, "epoch": 0}, step=9)
    logger.log_metrics({"prune/sparsity": 0.5, "graph/head/delta_r": -0.25, "epoch": 0}, step=9)
    logger.log_metrics({"test/acc@-5dB": 0.375, "test/acc": 0.75, "epoch": 1}, step=10)
    logger.experiment.finish()
    (run_dir,) = find_offline_runs(wandb_root / "lightning")
    assert wait_until_complete(run_dir)
    return run_dir


def test_history_has_every_value_per_step(direct_run: Path) -> None:
    history = read_history(direct_run)
    rows = logged_rows()
    assert len(history) == len(rows)
    for step, (read, written) in enumerate(zip(history, rows, strict=True)):
        assert read["_step"] == step
        expected = flat(written)
        assert {k for k in read if not k.startswith("_")} == set(expected)
        for key, value in expected.items():
            assert same(read[key], value), (step, key, read[key], value)
    assert history[5]["graph/g2999.hh/delta_r"] == 2999 * 1.5
    assert history[7]["odd/text"] == "hello" and math.isinf(history[7]["odd/inf"])


def test_records_span_blocks(direct_run: Path) -> None:
    path = run_file(direct_run)
    assert path.name.startswith("run-") and path.stat().st_size > 3 * BLOCK
    sizes = {r.WhichOneof("record_type"): 0 for r in iter_records(path)}
    for record in iter_records(path):
        kind = record.WhichOneof("record_type")
        sizes[kind] = max(sizes[kind], record.ByteSize())
    assert sizes["history"] > 2 * BLOCK  # so one record had a FIRST, a MIDDLE and a LAST chunk
    assert {"run", "history", "summary", "config", "exit"} <= set(sizes)


def test_summary_and_config(direct_run: Path) -> None:
    summary = read_summary(direct_run)
    last = flat(logged_rows()[-1])
    for key, value in last.items():
        assert summary[key] == value
    assert summary["best/val_acc"] == 0.875 and "scratch" not in summary
    assert summary["graph/g10.hh/delta_r"] == 15.0  # logged once, kept in the summary
    assert not any(key.startswith("_wandb") for key in summary)
    assert read_config(direct_run) == {**CONFIG, "sparsity": 0.9}


def test_lightning_wandb_logger_run(lightning_run: Path) -> None:
    history = [{k: v for k, v in row.items() if not k.startswith("_")} for row in read_history(lightning_run)]
    assert history == [
        {"train/loss": 2.5, "epoch": 0, "trainer/global_step": 4},
        {"val/acc": 0.625, "val/loss": 1.125, "epoch": 0, "trainer/global_step": 9},
        {"prune/sparsity": 0.5, "graph/head/delta_r": -0.25, "epoch": 0, "trainer/global_step": 9},
        {"test/acc@-5dB": 0.375, "test/acc": 0.75, "epoch": 1, "trainer/global_step": 10},
    ]
    assert read_config(lightning_run) == {"model": {"cell": "gru"}, "lr": 0.01}
    assert read_summary(lightning_run)["val/acc"] == 0.625


def test_read_run_reads_identity_history_and_completeness_at_once(direct_run: Path, lightning_run: Path,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    session = read_run(direct_run)
    assert session.path == run_file(direct_run) and session.complete
    assert session.run_id == run_id(direct_run) == direct_run.name.rsplit("-", 1)[-1]
    assert session.history == read_history(direct_run)
    assert session.job_type == "" and session.start_time > 1.6e9  # wandb.init got no job_type
    assert read_run(lightning_run).history == read_history(lightning_run)
    header = b":W&B" + struct.pack("<HB", 0xBEE1, 0)  # a run killed before its run record: no identity
    (tmp_path / "run-abc.wandb").write_bytes(header + _chunk(1, _history_record(0, x=1.0)))
    bare = read_run(tmp_path / "run-abc.wandb")
    assert (bare.run_id, bare.job_type, bare.start_time, bare.complete) == ("abc", "", 0.0, False)
    assert bare.history == [{"x": 1.0}]


def test_find_offline_runs(wandb_root: Path, direct_run: Path, lightning_run: Path, tmp_path: Path) -> None:
    assert (direct_run.parent / "latest-run").is_symlink()  # wandb's link, not listed again
    assert find_offline_runs(wandb_root) == sorted([direct_run, lightning_run])
    assert direct_run.name.startswith("offline-run-")
    assert find_offline_runs(direct_run) == [direct_run]
    assert find_offline_runs(tmp_path / "missing") == []


def test_run_file_needs_a_wandb_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no run-\*\.wandb file in"):
        run_file(tmp_path)


@pytest.fixture(scope="module")
def full_bytes(direct_run: Path) -> bytes:
    return run_file(direct_run).read_bytes()


def _records(data: bytes, tmp_path: Path) -> list[bytes]:
    path = tmp_path / "run-cut.wandb"
    path.write_bytes(data)
    return [record.SerializeToString() for record in iter_records(path)]


def test_truncated_file_reads_a_prefix(full_bytes: bytes, tmp_path: Path) -> None:
    """A killed run: every cut point gives the complete records before it, and no error."""
    full = _records(full_bytes, tmp_path)
    big = next(i for i, r in enumerate(full) if len(r) > 2 * BLOCK)
    cuts = {0, 3, 7, 8, 13, 14, BLOCK - 1, BLOCK, BLOCK + 3, len(full_bytes) - 1, len(full_bytes)}
    cuts |= set(range(0, len(full_bytes), 997))
    seen_lengths = set()
    for cut in sorted(cuts):
        records = _records(full_bytes[:cut], tmp_path)
        assert records == full[: len(records)], cut
        seen_lengths.add(len(records))
    assert len(full) in seen_lengths and 0 in seen_lengths
    # a cut inside the multi-block record stops just before it
    offset = full_bytes.index(full[big][:64])
    assert len(_records(full_bytes[: offset + BLOCK + 100], tmp_path)) == big


def test_complete_means_the_exit_record_was_written(full_bytes: bytes, tmp_path: Path) -> None:
    path = tmp_path / "run-cut.wandb"
    path.write_bytes(full_bytes)
    assert is_complete(path) and wait_until_complete(path, timeout=0)
    path.write_bytes(full_bytes[:-10])  # the exit record is the last one a run writes
    assert not is_complete(path) and not wait_until_complete(path, timeout=0.1)


def test_zero_tail_is_ignored(full_bytes: bytes, tmp_path: Path) -> None:
    assert _records(full_bytes + bytes(100), tmp_path) == _records(full_bytes, tmp_path)


def test_damage_before_the_end_raises(full_bytes: bytes, tmp_path: Path) -> None:
    damaged = bytearray(full_bytes)
    damaged[30] ^= 0xFF  # inside the first record's payload
    with pytest.raises(ValueError, match="damaged chunk at byte 7"):
        _records(bytes(damaged), tmp_path)


def test_not_a_wandb_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a W&B run file"):
        _records(b"SQLite format 3\x00", tmp_path)


def _chunk(kind: int, payload: bytes) -> bytes:
    """One chunk as the writer lays it out: crc32(type + payload), length, type, payload."""
    return struct.pack("<IHB", zlib.crc32(bytes([kind]) + payload), len(payload), kind) + payload


def _history_record(step: int, **items: float) -> bytes:
    record = wandb_internal_pb2.Record()
    record.history.step.num = step
    for key, value in items.items():
        record.history.item.add(nested_key=[key], value_json=json.dumps(value))
    return record.SerializeToString()


def test_hand_written_file(tmp_path: Path) -> None:
    """The layout as documented, written by hand: header, FULL chunks, a block tail shorter than a
    chunk header left as zero padding, and a record split into FIRST + LAST at a block boundary."""
    header = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
    first = _history_record(0, **{"val/acc": 0.5})
    data = header + _chunk(1, first)
    room = BLOCK - len(data) - 7 - 3  # leave 3 bytes at the end of block 0
    filler = next(r for n in range(room - 64, room) if len(r := _history_record(1, pad="x" * n)) == room)
    data += _chunk(1, filler) + bytes(3)
    assert len(data) == BLOCK
    split = _history_record(2, **{f"k{i}": float(i) for i in range(2000)})
    assert BLOCK - 7 < len(split) < 2 * (BLOCK - 7)
    data += _chunk(2, split[: BLOCK - 7]) + _chunk(4, split[BLOCK - 7 :])
    assert _records(data, tmp_path) == [first, filler, split]
    history = read_history(tmp_path / "run-cut.wandb")
    assert history[0] == {"val/acc": 0.5} and history[2]["k1999"] == 1999.0


def test_continuation_without_first_chunk_raises(tmp_path: Path) -> None:
    header = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
    data = header + _chunk(4, b"orphan") + _chunk(1, _history_record(0, x=1.0))
    with pytest.raises(ValueError, match="chunk of type 4 at byte 7 has no FIRST chunk"):
        _records(data, tmp_path)
