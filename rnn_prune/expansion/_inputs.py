"""Argument checks shared by the expansion measures: tensors or arrays in, numpy out.

Every public function checks its arguments here, at the top, so a bad argument fails with a
``ValueError`` naming it instead of an obscure error from deep inside scipy or igraph.
"""

from __future__ import annotations

import numbers
import sys

import numpy as np


def as_array(value: object, name: str) -> np.ndarray:
    """``value`` (a torch tensor or numpy array of real numbers, shape (out, in)) as a numpy array.

    torch is not imported here: a tensor exists only where torch already is, so the report and the
    study's ``--report-only`` (masks read back as numpy) run without the training stack."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            raise ValueError(f"{name} must be a dense (strided) tensor, got layout {value.layout}")
        tensor = value.detach().cpu()
        if tensor.is_complex():
            raise ValueError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
        if tensor.is_floating_point() and tensor.dtype not in (torch.float32, torch.float64):
            tensor = tensor.to(torch.float32)  # bfloat16 / float16 / float8 have no numpy twin
        array = tensor.numpy()
    elif isinstance(value, np.ndarray):
        array = value
    else:
        raise ValueError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(value).__name__}")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (out, in), got shape {tuple(array.shape)}")
    return array


def as_mask(mask: object, name: str = "mask") -> np.ndarray:
    """The boolean edge pattern ``mask != 0`` of a 0/1 (or bool) mask of shape (out, in)."""
    array = as_array(mask, name)
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(f"{name} has NaN entries; a mask holds 0/1 (edge where mask != 0)")
    return array if array.dtype == np.bool_ else array != 0


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_fraction(value: object, name: str) -> float:
    """A real number (not a bool) in [0, 1]: a share such as ``mixing`` or ``swaps``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r} must lie in [0, 1]")
    return float(value)


def check_int(value: object, name: str, *, minimum: int) -> int:
    """A Python/numpy integer (not a bool) that is at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)
