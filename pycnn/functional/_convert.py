"""The one conversion rule for arrays entering ``pycnn.functional`` (see the package docstring)."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from .._checks import I64_MAX

__all__ = ["as_float32", "as_labels", "inplace", "check_disjoint", "optional_float32", "param_grads", "as_ncl",
           "Grads"]

# What the backward functions return: (grad_input, grad_weight, grad_bias), each None when skipped.
Grads = Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]


def as_float32(x: ArrayLike, name: str = "input") -> np.ndarray:
    """Return ``x`` as a float32 C-contiguous array following the module's conversion rule.

    ``x`` itself is returned when it is already a float32 C-contiguous aligned
    ndarray; everything else real-valued is converted once. Non-real dtypes
    raise ``TypeError`` naming ``name``.
    """
    if isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous and x.flags.aligned:
        return x
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:  # ragged lists and the like
        raise TypeError(f"{name}: cannot be converted to a float32 array ({e})") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    _check_copy_size(a, 4, name)
    return np.require(a, np.float32, ("C", "A"))


def _check_copy_size(a: np.ndarray, itemsize: int, name: str) -> None:
    # A zero-stride view (np.broadcast_to) can claim more elements than any
    # copy could hold; say so before NumPy tries to allocate it.
    if not (a.flags.c_contiguous and a.dtype.itemsize == itemsize) and math.prod(a.shape) * itemsize > I64_MAX:
        raise OverflowError(f"{name}: an array of shape {a.shape} has more bytes than fit in 64-bit sizes")


def as_labels(labels: ArrayLike, name: str = "labels") -> np.ndarray:
    """Return class labels as a contiguous int64 array; non-integer dtypes raise ``TypeError``.

    An empty Python sequence (which NumPy would type float64) is accepted as an
    empty label array so a zero-size batch works.
    """
    if isinstance(labels, np.ndarray) and labels.dtype == np.int64 and labels.flags.c_contiguous \
            and labels.flags.aligned:
        return labels
    was_array = isinstance(labels, np.ndarray)
    try:
        a = np.asarray(labels)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: cannot be converted to an integer array ({e})") from None
    if a.size == 0 and not was_array:
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array of class indices, got dtype {a.dtype}")
    if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: label {a.max()} does not fit in int64")
    _check_copy_size(a, 8, name)
    return np.require(a, np.int64, ("C", "A"))


def inplace(a: object, name: str) -> np.ndarray:
    """An array the kernel writes into: must already be float32, C-contiguous and writeable."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a float32 ndarray (written in place), got {type(a).__name__}")
    if a.dtype != np.float32 or not (a.flags.c_contiguous and a.flags.aligned):
        what = ([f"dtype {a.dtype}"] if a.dtype != np.float32 else []) \
            + (["non-contiguous"] if not a.flags.c_contiguous else []) \
            + (["not aligned to 4 bytes (a view at an odd byte offset)"] if not a.flags.aligned else [])
        raise TypeError(f"{name}: expected an aligned float32 C-contiguous array (it is written in place, so "
                        f"it cannot be converted), got {', '.join(what)}")
    if not a.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return a


def check_disjoint(out: Optional[np.ndarray], other: np.ndarray, out_name: str, other_name: str, op: str) -> None:
    """``out`` (written in place) must not overlap ``other`` (read): the C++ check_disjoint's rule, for
    pairs the op layer never sees together (a weight and its gradient accumulator)."""
    if out is not None and out.size and other.size and np.may_share_memory(out, other):
        raise ValueError(f"{op}: {out_name} must not share memory with {other_name}")


def optional_float32(a: Optional[ArrayLike], name: str) -> Optional[np.ndarray]:
    return None if a is None else as_float32(a, name)


def param_grads(w: np.ndarray, grad_weight: Optional[np.ndarray], grad_bias: Optional[np.ndarray], bias: bool,
                op: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """The dW/db accumulators: the caller's (checked, never converted) or fresh zeros."""
    if grad_weight is None:
        grad_weight = np.zeros(w.shape, dtype=np.float32)
    else:
        inplace(grad_weight, "grad_weight")
        if grad_weight.shape != w.shape:
            raise ValueError(f"{op}: expected grad_weight of the weight's shape {w.shape}, "
                             f"got {grad_weight.shape}")
        # The input gradient is computed from w after dW is accumulated.
        check_disjoint(grad_weight, w, "grad_weight", "weight", op)
    if grad_bias is None:
        if bias:
            grad_bias = np.zeros(w.shape[:1], dtype=np.float32)
    else:
        inplace(grad_bias, "grad_bias")
        check_disjoint(grad_bias, w, "grad_bias", "weight", op)
    return grad_weight, grad_bias


def as_ncl(x: ArrayLike, op: str, name: str = "input") -> np.ndarray:
    x = as_float32(x, name)
    if x.ndim != 3:
        raise ValueError(f"{op}: expected {name} of shape (N, C, L), got {x.shape}")
    return x
