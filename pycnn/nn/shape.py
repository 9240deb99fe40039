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


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one (PyTorch's ``nn.Flatten(start_dim=1, end_dim=-1)``).

    A view when the input is contiguous; backward reshapes the gradient back.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        if not is_int(start_dim):
            raise TypeError(f"Flatten: start_dim must be an int, got {start_dim!r}")
        if not is_int(end_dim):
            raise TypeError(f"Flatten: end_dim must be an int, got {end_dim!r}")
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
        self.save_for_backward(shape)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        (shape,) = self.saved()
        if not input_grad:
            return None
        return F.as_float32(grad_output, "grad_output").reshape(shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
