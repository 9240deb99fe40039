"""Dropout layers: inverted dropout in ``train()``, identity in ``eval()``.

Masks are drawn with NumPy from pycnn's generator (``pycnn.manual_seed``
reproduces them); the C++ kernel applies mask and scale ``1 / (1 - p)`` in
one pass, forward and backward. ``Dropout`` drops elements independently;
``Dropout1d`` / ``Dropout2d`` / ``Dropout3d`` drop whole channels of (N, C, L) /
(N, C, H, W) / (N, C, D, H, W) inputs, as PyTorch's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from .. import functional as F
from .._checks import check_bool
from ..functional.dropout import dropout_probability
from .module import Module

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]


class Dropout(Module):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (PyTorch's ``nn.Dropout``)."""

    _channelwise = False
    _ndims: Optional[int] = None

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = dropout_probability(p, type(self).__name__)
        # inplace is accepted for PyTorch compatibility; the output is always a new array.
        self.inplace = check_bool(inplace, "inplace", type(self).__name__)

    def forward(self, x: ArrayLike) -> np.ndarray:
        x = F.as_float32(x, "input")
        if self._ndims is not None and x.ndim != self._ndims:
            raise ValueError(f"{type(self).__name__}: expected input of {self._ndims} dimensions "
                             f"{self._shape_text}, got {x.shape}")
        y, mask = F.dropout(x, self.p, self.training, channelwise=self._channelwise, return_mask=True)
        self.save_for_backward(mask, x.shape)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        mask, shape = self.saved()
        if not input_grad:
            return None
        dy = F.as_float32(grad_output, "grad_output")
        # Without a mask (p = 0) nothing else would look at the gradient's shape.
        if dy.shape != shape:
            raise ValueError(f"{type(self).__name__}: expected grad_output of the forward output's shape {shape}, "
                             f"got {dy.shape}")
        return F.dropout_backward(dy, mask, self.p, channelwise=self._channelwise)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(Dropout):
    """Zero whole channels of an (N, C, L) input with probability ``p`` (PyTorch's ``nn.Dropout1d``)."""

    _channelwise = True
    _ndims = 3
    _shape_text = "(N, C, L)"


class Dropout2d(Dropout):
    """Zero whole channels of an (N, C, H, W) input with probability ``p`` (PyTorch's ``nn.Dropout2d``)."""

    _channelwise = True
    _ndims = 4
    _shape_text = "(N, C, H, W)"


class Dropout3d(Dropout):
    """Zero whole channels of an (N, C, D, H, W) input with probability ``p`` (PyTorch's ``nn.Dropout3d``)."""

    _channelwise = True
    _ndims = 5
    _shape_text = "(N, C, D, H, W)"
