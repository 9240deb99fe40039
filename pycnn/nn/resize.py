"""Resizing layers: ``Upsample`` (PyTorch's ``nn.Upsample``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union

import numpy as np

from .. import functional as F
from ..functional.resize import check_resize_options
from .module import Module

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Upsample"]


class Upsample(Module):
    """Resize (N, C, H, W) or (N, C, L) input, PyTorch's ``nn.Upsample(size=None, scale_factor=None,
    mode='nearest', align_corners=None, recompute_scale_factor=None)``.

    ``mode`` is 'nearest', 'nearest-exact', 'bilinear' (4-D input) or 'linear' (3-D); the other
    arguments are :func:`pycnn.functional.interpolate`'s. No parameters; backward scatters each
    output's gradient back to the input pixels it read.
    """

    def __init__(self, size: Optional[Union[int, Sequence[int]]] = None,
                 scale_factor: Optional[Union[float, Sequence[float]]] = None, mode: str = "nearest",
                 align_corners: Optional[bool] = None, recompute_scale_factor: Optional[bool] = None) -> None:
        super().__init__()
        op = "Upsample"
        check_resize_options(size, scale_factor, mode, align_corners, recompute_scale_factor, op)
        # As PyTorch keeps them: tuples stay tuples, a single factor becomes a float.
        self.size = tuple(size) if isinstance(size, (tuple, list)) else size
        self.scale_factor: Optional[Union[float, Sequence[float]]] = None
        if isinstance(scale_factor, Sequence):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        elif scale_factor is not None:
            self.scale_factor = float(scale_factor)
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def _args(self) -> Dict[str, Any]:
        return dict(size=self.size, scale_factor=self.scale_factor, mode=self.mode, align_corners=self.align_corners,
                    recompute_scale_factor=self.recompute_scale_factor)

    def forward(self, x: ArrayLike) -> np.ndarray:
        x = F.as_float32(x, "input")
        y = F.interpolate(x, **self._args())
        self.save_for_backward(x.shape)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        (shape,) = self.saved()
        if not input_grad:
            return None
        return F.interpolate_backward(grad_output, shape, **self._args())

    def extra_repr(self) -> str:
        what = f"scale_factor={self.scale_factor}" if self.size is None else f"size={self.size}"
        s = f"{what}, mode={self.mode!r}"
        if self.align_corners is not None:
            s += f", align_corners={self.align_corners}"
        return s
