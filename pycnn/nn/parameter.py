"""``Parameter``: a trainable array with its gradient buffer."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

from . import _budget

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

__all__ = ["Parameter"]


def _as_param_array(value: ArrayLike, what: str) -> np.ndarray:
    """A float32, C-contiguous, writeable array owned by a parameter (real numeric input only)."""
    a = value.data if isinstance(value, Parameter) else value
    try:
        a = np.asarray(a)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what}: cannot be converted to a float32 array ({e})") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what}: expected a real numeric array, got dtype {a.dtype}")
    a = np.require(a, np.float32, ["C", "A"])
    # Optimisers update parameters in place, so a read-only view (np.broadcast_to, a
    # memory-mapped file) must become an array of our own.
    return a if a.flags.writeable else a.copy()


class Parameter:
    """A trainable array: ``.data`` and ``.grad`` are float32 C-contiguous ndarrays of one shape.

    ``.grad`` is allocated once, zero-filled; backward passes accumulate into
    it and ``zero_grad`` clears it in place, so the buffer is reused across
    steps. Assigning ``.data`` converts real numeric array-likes to float32
    C-contiguous (a shape change reallocates ``.grad``); ``.grad`` accepts only
    float32 arrays of the parameter's shape (it is written in place).
    ``requires_grad=False`` freezes the parameter: layers skip its gradient
    and optimisers skip its update.
    """

    __slots__ = ("_data", "_grad", "requires_grad", "_version", "__weakref__")

    def __init__(self, data: ArrayLike, requires_grad: bool = True) -> None:
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(f"Parameter: requires_grad must be a bool, got {requires_grad!r}")
        self._data = _as_param_array(data, "Parameter")
        _budget.reserve(self._data.size, f"a Parameter of shape {self._data.shape}")  # (pycnn.load's bound)
        # np.zeros, not zeros_like: calloc'd pages cost no memory until a backward writes them.
        self._grad = np.zeros(self._data.shape, np.float32)
        self.requires_grad = bool(requires_grad)
        # Counts changes made through pycnn (assigning .data, optimiser steps,
        # load_state_dict): eval-mode inference rebuilds what it prepared from
        # this parameter when it moves (pycnn.nn.fused).
        self._version = 0

    @property
    def data(self) -> np.ndarray:
        """The values: a float32 C-contiguous ndarray (updated in place by optimisers)."""
        return self._data

    @data.setter
    def data(self, value: ArrayLike) -> None:
        a = _as_param_array(value, "Parameter.data")
        if a.shape != self._data.shape:
            self._grad = np.zeros(a.shape, np.float32)
        self._data = a
        self._version += 1

    @property
    def grad(self) -> np.ndarray:
        """The accumulated gradient: float32, the shape of ``data``; backward adds into it."""
        return self._grad

    @grad.setter
    def grad(self, value: Optional[np.ndarray]) -> None:
        if value is None:  # PyTorch's "set to None" means "no gradient yet": zero it
            self._grad.fill(0)
            return
        if not isinstance(value, np.ndarray):
            raise TypeError(f"Parameter.grad: expected a float32 C-contiguous ndarray, got {type(value).__name__}")
        # Backward passes accumulate into it in place: it must be what the kernels write.
        wrong = ([f"dtype {value.dtype}"] if value.dtype != np.float32 else []) \
            + (["non-contiguous"] if not value.flags.c_contiguous else []) \
            + (["not aligned to 4 bytes (a view at an odd byte offset)"] if not value.flags.aligned else []) \
            + (["read-only"] if not value.flags.writeable else [])
        if wrong:
            raise TypeError(f"Parameter.grad: expected a writeable, aligned float32 C-contiguous ndarray, got "
                            f"{', '.join(wrong)}")
        if value.shape != self._data.shape:
            raise ValueError(f"Parameter.grad: expected shape {self._data.shape}, got {value.shape}")
        self._grad = value

    @property
    def shape(self) -> Tuple[int, ...]:
        """Shape of ``data``."""
        return self._data.shape

    @property
    def ndim(self) -> int:
        """Number of dimensions of ``data``."""
        return self._data.ndim

    @property
    def size(self) -> int:
        """Number of elements of ``data``."""
        return self._data.size

    @property
    def dtype(self) -> np.dtype:
        """Always float32."""
        return self._data.dtype

    def zero_grad(self) -> None:
        """Fill ``.grad`` with zeros in place."""
        self._grad.fill(0)

    def numpy(self) -> np.ndarray:
        """The ``.data`` array itself (not a copy), as ``torch.Tensor.numpy``."""
        return self._data

    def __array__(self, dtype: Optional[DTypeLike] = None, copy: Optional[bool] = None) -> np.ndarray:
        if copy:
            return self._data.astype(dtype or self._data.dtype, copy=True)
        return self._data if dtype is None else self._data.astype(dtype, copy=False)

    def __repr__(self) -> str:
        flag = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter containing:\n{self._data!r}{flag}"
