"""``python -m rnn_prune export`` and ``rnn_prune.load_exported``: a pruned checkpoint becomes a small
safetensors file that rebuilds a stock RecurrentClassifier with the checkpoint model's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import rnn_prune
from rnn_prune.export import (
    ENCODINGS,
    ExportError,
    console_main,
    decode,
    encode,
    main,
    model_from_checkpoint,
    save_exported,
    smallest_encoding,
)
from rnn_prune.masks import set_mask
from rnn_prune.model import RecurrentClassifier
from rnn_prune.module import SequenceClassifier
from rnn_prune.registry import prunable_weights

REPO = Path(__file__).resolve().parents[1]


def _pruned_checkpoint(path: Path, sparsity: float, **architecture: object) -> SequenceClassifier:
    """A checkpoint as Lightning writes it (hyperparameters, ``net.*`` state with masks, training state)."""
    torch.manual_seed(0)
    module = SequenceClassifier(input_size=8, num_classes=10, **architecture)
    generator = torch.Generator().manual_seed(1)
    for weight in prunable_weights(module):
        if weight.kind != "linear" and sparsity > 0:
            set_mask(weight, torch.rand(weight.shape, generator=generator) >= sparsity)
    adam = {"state": {0: {"exp_avg": torch.ones(20_000), "exp_avg_sq": torch.ones(20_000)}}, "param_groups": []}
    checkpoint = {"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict(),
                  "optimizer_states": [adam], "callbacks": {"figures": {"history": list(range(100))}}}  # fmt: skip
    torch.save(checkpoint, path)
    return module


@pytest.mark.parametrize("encoding", ["auto", *ENCODINGS])
@pytest.mark.parametrize(
    "architecture",
    [{"cell": "lstm", "hidden_size": 32}, {"cell": "gru", "hidden_size": 16, "num_layers": 2, "bidirectional": True,
                                           "readout": "max"}, {"cell": "rnn", "hidden_size": 300}],  # fmt: skip
)
def test_the_loaded_model_gives_the_checkpoint_model_s_outputs(
    tmp_path: Path, encoding: str, architecture: dict
) -> None:
    module = _pruned_checkpoint(tmp_path / "last.ckpt", 0.9, **architecture)
    main(["--ckpt_path", str(tmp_path / "last.ckpt"), "--out", str(tmp_path / "model.safetensors"),
          "--encoding", encoding])  # fmt: skip
    loaded = rnn_prune.load_exported(tmp_path / "model.safetensors")
    assert type(loaded) is RecurrentClassifier and not loaded.training
    assert list(loaded.named_buffers()) == []  # stock: no mask buffers
    x = torch.randn(5, 7, 8, generator=torch.Generator().manual_seed(2))
    module.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), module(x))
    for key, value in module.net.state_dict().items():
        if not key.endswith("_mask"):
            assert torch.equal(loaded.state_dict()[key], value), key


def test_a_90_percent_pruned_export_is_under_a_quarter_of_the_dense_one(tmp_path: Path) -> None:
    """The quickstart's shapes (LSTM 64 on 8 x 8 digits), recurrent weights pruned to 90 %."""
    ckpt = tmp_path / "pruned.ckpt"
    _pruned_checkpoint(ckpt, 0.9, hidden_size=64)
    _pruned_checkpoint(tmp_path / "dense.ckpt", 0.0, hidden_size=64)
    pruned = main(["--ckpt_path", str(ckpt), "--out", str(tmp_path / "pruned.safetensors")])
    dense = main(["--ckpt_path", str(tmp_path / "dense.ckpt"), "--out", str(tmp_path / "dense.safetensors")])
    assert pruned.file_bytes <= 0.25 * dense.file_bytes
    assert pruned.file_bytes < 0.1 * ckpt.stat().st_size  # no optimizer or callback state
    assert {encoding for encoding, _, _ in pruned.matrices.values()} == {"bitmask"}
    assert dense.matrices == {}  # nothing was pruned: every tensor stored dense


@pytest.mark.parametrize(
    ("sparsity", "expected"), [(0.0, "dense"), (0.01, "dense"), (0.5, "bitmask"), (0.9, "bitmask"), (0.99, "csr")]
)
def test_the_smallest_encoding_depends_on_the_sparsity(sparsity: float, expected: str) -> None:
    generator = torch.Generator().manual_seed(0)
    matrix = torch.randn(256, 64, generator=generator) * (torch.rand(256, 64, generator=generator) >= sparsity)
    chosen = smallest_encoding("w", matrix)
    assert chosen.encoding == expected
    assert chosen.nbytes == min(encode("w", matrix, e).nbytes for e in ENCODINGS)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("columns", [1, 255, 256, 257, 40_000])
def test_encodings_round_trip_exactly(encoding: str, columns: int) -> None:
    generator = torch.Generator().manual_seed(columns)
    matrix = torch.randn(6, columns, generator=generator) * (torch.rand(6, columns, generator=generator) > 0.7)
    matrix[2] = 0.0  # an empty row
    matrix[4, -1] = -3.0  # the last column
    encoded = encode("w", matrix, encoding)
    assert torch.equal(decode("w", encoded.tensors, encoding, matrix.shape), matrix)
    if encoding == "csr":
        expected = torch.uint8 if columns <= 256 else torch.int16 if columns <= 32_768 else torch.int32
        assert encoded.tensors["w.indices"].dtype == expected


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = str(tmp_path / "m.safetensors")
    with pytest.raises(ExportError, match="no such file"):
        main(["--ckpt_path", str(tmp_path / "missing.ckpt"), "--out", out])
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    with pytest.raises(ExportError, match="not a readable torch checkpoint"):
        model_from_checkpoint(tmp_path / "notes.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ExportError, match="not a checkpoint of rnn_prune's SequenceClassifier"):
        model_from_checkpoint(tmp_path / "other.ckpt")
    _pruned_checkpoint(tmp_path / "last.ckpt", 0.5, hidden_size=64)
    args = ["--ckpt_path", str(tmp_path / "last.ckpt"), "--out", out, "--config"]
    with pytest.raises(ExportError, match=r"model.hidden_size=128 does not match the checkpoint's hidden_size=64"):
        main([*args, str(REPO / "configs/sfmnist_lstm.yaml")])
    main([*args, str(REPO / "configs/quickstart.yaml")])
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ExportError, match="not an rnn_prune export"):
        rnn_prune.load_exported(tmp_path / "foreign.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ExportError, match="not a safetensors file"):
        rnn_prune.load_exported(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="encoding='zip' is not one of"):
        encode("w", torch.zeros(2, 2), "zip")
    with pytest.raises(ExportError, match="--encoding zip"):
        save_exported(RecurrentClassifier(8, 10), out, encoding="zip")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        console_main(["--ckpt_path", str(tmp_path / "missing.ckpt"), "--out", out])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"error: --ckpt_path {tmp_path / 'missing.ckpt'}: no such file"]


def test_the_rnn_prune_script_dispatches_export(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """``rnn-prune export`` (pyproject's script: ``rnn_prune.cli:console_main``) runs the export, as
    ``python -m rnn_prune export`` does, from its argument list or from ``sys.argv``."""
    from rnn_prune import cli

    _pruned_checkpoint(tmp_path / "last.ckpt", 0.9, hidden_size=32)
    out = tmp_path / "model.safetensors"
    cli.console_main(["export", "--ckpt_path", str(tmp_path / "last.ckpt"), "--out", str(out)])
    assert type(rnn_prune.load_exported(out)) is RecurrentClassifier
    assert f"wrote {out}" in capsys.readouterr().out
    monkeypatch.setattr("sys.argv", ["rnn-prune", "export", "--ckpt_path", str(tmp_path / "gone.ckpt"), "--out",
                                     str(out)])  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        cli.console_main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"error: --ckpt_path {tmp_path / 'gone.ckpt'}: no such file"]
