"""Layers that only change the shape of their input: ``Flatten``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from .. import functional as F
from .._checks import is_int
from .module import Module

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Flatten"]

_MAX_DIMS = 64  # NumPy's limit on an array's dimensions


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one (PyTorch's ``nn.Flatten(start_dim=1, end_dim=-1)``).

    A view when the input is contiguous; backward reshapes the gradient back,
    which must have the shape of the forward's output.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        for name, v in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not is_int(v):
                raise TypeError(f"Flatten: {name} must be an int, got {v!r}")
            # NumPy arrays have at most 64 dimensions: no other value can ever be valid.
            if not -_MAX_DIMS <= v < _MAX_DIMS:
                raise ValueError(f"Flatten: {name} must be in [-{_MAX_DIMS}, {_MAX_DIMS - 1}] (arrays have at "
                                 f"most {_MAX_DIMS} dimensions), got {v}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: ArrayLike) -> np.ndarray:
        x = F.as_float32(x, "input")
        nd = max(x.ndim, 1)
        start = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        end = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        if not (0 <= start < nd and 0 <= end < nd):
            raise IndexError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} out of range "
                             f"for an input of shape {x.shape}")
        if start > end:
            raise ValueError(f"Flatten: start_dim={self.start_dim} comes after end_dim={self.end_dim} "
                             f"for an input of shape {x.shape}")
        shape = x.shape
        y = x.reshape(shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:])
        self.save_for_backward(shape, y.shape)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        shape, out_shape = self.saved()
        if not input_grad:
            return None
        dy = F.as_float32(grad_output, "grad_output")
        # A reshape would accept any gradient of the same size ((3, 4) for (2, 6)).
        if dy.shape != out_shape:
            raise ValueError(f"Flatten: expected grad_output of the forward output's shape {out_shape}, "
                             f"got {dy.shape}")
        return dy.reshape(shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
