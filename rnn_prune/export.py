"""Export a trained checkpoint as the bare model in one safetensors file, pruned matrices compact.

``python -m rnn_prune export --ckpt_path CKPT --out MODEL.safetensors`` keeps what inference needs
(the :class:`~rnn_prune.model.RecurrentClassifier`'s weights and its architecture) and drops what
a checkpoint carries for training (optimizer state, callback state, the figures' history, masks as
bool tensors): a 90 %-pruned quickstart ``last.ckpt`` is 1.06× the dense one, its export 0.2×.

Every weight the pruning masked (the registry's prunable weights with a mask buffer) is stored in
the smallest of three encodings, chosen per matrix unless ``encoding`` forces one:

- ``dense``: the float32 matrix (``<key>``);
- ``bitmask``: one bit per entry saying whether it is non-zero (``<key>.bitmask``, uint8, numpy's
  little-endian ``packbits`` of the row-major matrix) and the non-zero values in row-major order
  (``<key>.values``): ``n/8 + 4·nnz`` bytes, 0.13× of dense at 90 % sparsity;
- ``csr``: compressed sparse rows, ``<key>.indptr`` (rows + 1 offsets), ``<key>.indices`` (column
  of each value) and ``<key>.values``, each index in the smallest integer type that holds it
  (uint8 up to 256 columns): ``~(4 + index bytes)·nnz`` bytes, ahead of the bitmask above ~97 %
  sparsity.

The encodings store the matrix's non-zero entries, not its mask: pruned entries are zero (pruning
multiplies by the mask after every step), and an exact zero the optimizer left is zero either way,
so the rebuilt matrix is bit-for-bit the checkpoint's. Everything else (biases, the head, unpruned
matrices) is stored dense. The file's metadata holds ``format``, the model's constructor arguments
(``architecture``, JSON) and the encoding and shape of each compact matrix (``encodings``, JSON).

:func:`load_exported` rebuilds a stock ``RecurrentClassifier`` (no mask buffers) whose outputs
equal the checkpoint's model's. This module needs torch, numpy and safetensors only (no
Lightning), so loading an export is cheap.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnn_prune.masks import register_masks_from_state_dict
from rnn_prune.model import ARCHITECTURE_KEYS, RecurrentClassifier
from rnn_prune.registry import MASK_SUFFIX, prunable_weights

FORMAT = "rnn_prune.export/1"
ENCODINGS = ("dense", "bitmask", "csr")
_MODEL_PREFIX = "net."  # the LightningModule's attribute holding the RecurrentClassifier


class ExportError(ValueError):
    """A checkpoint or export file that cannot be read as this package's model (one-line message)."""


@dataclass(frozen=True)
class Encoded:
    """One matrix in one encoding: the tensors stored for it and their total bytes."""

    encoding: str
    tensors: dict[str, Tensor]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())


def _index_dtype(largest: int) -> torch.dtype:
    """The smallest integer dtype (uint8, int16, int32, int64) that holds ``0 … largest``."""
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if largest <= torch.iinfo(dtype).max:
            return dtype
    return torch.int64


def encode(key: str, matrix: Tensor, encoding: str) -> Encoded:
    """``matrix`` (2-D float) as the tensors of ``encoding``, named ``key`` / ``key.<part>``.

    >>> m = torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [1.5, 0.0, 0.0]])
    >>> e = encode("w", m, "csr")
    >>> {name: t.tolist() for name, t in e.tensors.items()}
    {'w.indptr': [0, 1, 1, 2], 'w.indices': [1, 0], 'w.values': [2.0, 1.5]}
    >>> torch.equal(decode("w", e.tensors, "csr", (3, 3)), m)
    True
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding={encoding!r} is not one of {list(ENCODINGS)}")
    if matrix.dim() != 2:
        raise ValueError(f"{key}: only matrices are encoded, got shape {tuple(matrix.shape)}")
    matrix = matrix.detach().cpu().contiguous()
    if encoding == "dense":
        return Encoded("dense", {key: matrix})
    nonzero = matrix != 0
    values = matrix[nonzero]  # row-major order
    if encoding == "bitmask":
        bits = np.packbits(nonzero.numpy().reshape(-1), bitorder="little")
        return Encoded("bitmask", {f"{key}.bitmask": torch.from_numpy(bits), f"{key}.values": values})
    rows, columns = nonzero.nonzero(as_tuple=True)
    counts = torch.bincount(rows, minlength=matrix.shape[0])
    indptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    return Encoded(
        "csr",
        {
            f"{key}.indptr": indptr.to(_index_dtype(int(indptr[-1]))),
            f"{key}.indices": columns.to(_index_dtype(matrix.shape[1] - 1)),
            f"{key}.values": values,
        },
    )


def smallest_encoding(key: str, matrix: Tensor) -> Encoded:
    """The encoding of ``matrix`` that takes the fewest bytes (dense on a tie)."""
    return min((encode(key, matrix, e) for e in ENCODINGS), key=lambda enc: enc.nbytes)


def decode(key: str, tensors: Mapping[str, Tensor], encoding: str, shape: Sequence[int]) -> Tensor:
    """The dense matrix of ``shape`` that :func:`encode` stored as ``tensors`` under ``key``."""
    rows, columns = int(shape[0]), int(shape[1])
    if encoding == "dense":
        return tensors[key]
    values = tensors[f"{key}.values"]
    if encoding == "bitmask":
        bits = tensors[f"{key}.bitmask"].numpy()
        nonzero = np.unpackbits(bits, count=rows * columns, bitorder="little").astype(bool)
        flat = torch.zeros(rows * columns, dtype=values.dtype)
        flat[torch.from_numpy(nonzero)] = values
        return flat.reshape(rows, columns)
    if encoding == "csr":
        indptr = tensors[f"{key}.indptr"].long()
        row_of = torch.repeat_interleave(torch.arange(rows), indptr.diff())
        matrix = torch.zeros(rows, columns, dtype=values.dtype)
        matrix[row_of, tensors[f"{key}.indices"].long()] = values
        return matrix
    raise ExportError(f"{key}: unknown encoding {encoding!r} (one of {list(ENCODINGS)})")


def architecture(model: RecurrentClassifier) -> dict[str, Any]:
    """The constructor arguments that rebuild ``model`` (its own record, :attr:`RecurrentClassifier.arguments`)."""
    return {"input_size": model.recurrent.input_size, "num_classes": model.head.out_features, **model.arguments}


def model_from_checkpoint(ckpt_path: str | Path) -> RecurrentClassifier:
    """The checkpoint's :class:`RecurrentClassifier` with its masks, without any training state.

    Reads the LightningModule's hyperparameters (the constructor arguments of the model) and the
    ``net.*`` entries of its ``state_dict``, with ``torch.load(weights_only=True)``.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise ExportError(f"--ckpt_path {path}: no such file")
    try:
        checkpoint = torch.load(path, weights_only=True, map_location="cpu", mmap=True)
    except Exception as error:  # torch raises several types for a file that is not a checkpoint
        what = f"{type(error).__name__}: {error}".splitlines()[0]
        raise ExportError(f"--ckpt_path {path}: not a readable torch checkpoint ({what})") from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    arguments = set(inspect.signature(RecurrentClassifier).parameters)  # the network's one definition
    if not hparams or not state or not {"input_size", "num_classes"} <= set(hparams):
        raise ExportError(f"--ckpt_path {path}: not a checkpoint of rnn_prune's SequenceClassifier (no model hparams)")
    model = RecurrentClassifier(**{k: v for k, v in hparams.items() if k in arguments})
    weights = {k[len(_MODEL_PREFIX) :]: v for k, v in state.items() if k.startswith(_MODEL_PREFIX)}
    register_masks_from_state_dict(model, weights)
    model.load_state_dict(weights, strict=True)
    return model.eval()


@dataclass(frozen=True)
class ExportReport:
    """What :func:`save_exported` wrote: the file's size and each compact matrix's encoding and bytes."""

    path: Path
    file_bytes: int
    matrices: dict[str, tuple[str, int, int]]  # state_dict key → (encoding, bytes stored, dense bytes)


def save_exported(model: RecurrentClassifier, out: str | Path, *, encoding: str = "auto") -> ExportReport:
    """Write ``model`` to ``out`` (safetensors): pruned matrices compact, everything else dense.

    Args:
        model: the classifier; its weights with a mask buffer are the pruned ones.
        out: the file to write (its folder is created).
        encoding: ``"auto"`` (the smallest per matrix), or one of ``dense``, ``bitmask``, ``csr``
            for every pruned matrix.
    """
    from safetensors.torch import save_file

    if encoding != "auto" and encoding not in ENCODINGS:
        raise ExportError(f"--encoding {encoding}: not one of {['auto', *ENCODINGS]}")
    pruned = {w.qualified_name for w in prunable_weights(model) if w.mask is not None}
    masks = {name + MASK_SUFFIX for name in pruned}
    tensors: dict[str, Tensor] = {}
    encodings: dict[str, list[Any]] = {}
    matrices: dict[str, tuple[str, int, int]] = {}
    for key, value in model.state_dict().items():
        if key in masks:
            continue
        value = value.detach().cpu().contiguous()
        if key not in pruned:
            tensors[key] = value
            continue
        encoded = smallest_encoding(key, value) if encoding == "auto" else encode(key, value, encoding)
        tensors.update(encoded.tensors)
        encodings[key] = [encoded.encoding, *value.shape]
        matrices[key] = (encoded.encoding, encoded.nbytes, value.numel() * value.element_size())
    metadata = {
        "format": FORMAT,
        "architecture": json.dumps(architecture(model), separators=(",", ":")),
        "encodings": json.dumps(encodings, separators=(",", ":")),
    }
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return ExportReport(path, path.stat().st_size, matrices)


def load_exported(path: str | Path) -> RecurrentClassifier:
    """The stock :class:`RecurrentClassifier` stored by :func:`save_exported`, in eval mode.

    It has no mask buffers: the pruned entries are zeros of dense weights, so its outputs equal
    those of the model that was exported. Call ``.train()`` to fine-tune it (dense from then on).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise ExportError(f"{path}: not a safetensors file ({error})") from None
    if metadata.get("format") != FORMAT:
        raise ExportError(f"{path}: not an rnn_prune export (format {metadata.get('format')!r}, expected {FORMAT!r})")
    model = RecurrentClassifier(**json.loads(metadata["architecture"]))
    state = {key: tensors[key] for key in model.state_dict() if key in tensors}
    for key, (encoding, *shape) in json.loads(metadata["encodings"]).items():
        state[key] = decode(key, tensors, encoding, shape)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _check_config(config_paths: Sequence[str], model: RecurrentClassifier, ckpt_path: str) -> None:
    """The ``model:`` section of the given configs must agree with the checkpoint's architecture."""
    import yaml

    section: dict[str, Any] = {}
    for config in config_paths:
        if not Path(config).is_file():
            raise ExportError(f"--config {config}: no such file")
        parsed = yaml.safe_load(Path(config).read_text()) or {}
        section.update((parsed.get("model") or {}) if isinstance(parsed, dict) else {})
    for key in ARCHITECTURE_KEYS:
        value = model.arguments[key]
        if key in section and section[key] is not None and section[key] != value:
            raise ExportError(
                f"--config: model.{key}={section[key]!r} does not match the checkpoint's {key}={value!r} ({ckpt_path})"
            )


def main(argv: Sequence[str] | None = None) -> ExportReport:
    """``python -m rnn_prune export``: parse the flags, export, print what was written."""
    parser = argparse.ArgumentParser(
        prog="python -m rnn_prune export",
        description="Write a checkpoint's model (no optimizer or callback state) to a safetensors file, "
        "pruned matrices stored compactly; load it back with rnn_prune.load_exported(path).",
    )
    parser.add_argument("--ckpt_path", required=True, help="the checkpoint, e.g. runs/quickstart/checkpoints/last.ckpt")
    parser.add_argument("--out", required=True, help="the file to write, e.g. model.safetensors")
    parser.add_argument("--config", action="append", default=[],
                        help="the run's config(s): its model section must agree with the checkpoint (optional)")
    parser.add_argument("--encoding", default="auto", choices=["auto", *ENCODINGS],
                        help="pruned matrices: the smallest encoding per matrix (auto) or one for all")
    args = parser.parse_args(argv)
    model = model_from_checkpoint(args.ckpt_path)
    _check_config(args.config, model, args.ckpt_path)
    report = save_exported(model, args.out, encoding=args.encoding)
    dense = sum(v.numel() * v.element_size() for k, v in model.state_dict().items() if not k.endswith(MASK_SUFFIX))
    for key, (chosen, stored, full) in report.matrices.items():
        print(f"{key}: {chosen}, {stored} bytes ({stored / full:.3f} of dense)")
    print(f"wrote {report.path}: {report.file_bytes} bytes (the model's dense weights: {dense} bytes)")
    return report


def console_main(argv: Sequence[str] | None = None) -> None:
    """Run :func:`main`; an :class:`ExportError` is printed as one ``error:`` line (exit 2)."""
    try:
        main(argv)
    except ExportError as error:
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(2) from None
