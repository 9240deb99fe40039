"""Pooling layers (floor mode, as PyTorch's defaults).

Each kind (max, average, adaptive average) is written once, for any number
of spatial dimensions; the 2-D, 1-D and 3-D classes only name their
functional ops and how they parse the window (the 1-D ops run the 2-D
kernels on a (1, k) window; the 3-D ones, on (N, C, D, H, W) clips, have
kernels of their own and also take ``ceil_mode``, and dilation for max).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple, Union

import numpy as np

from .. import functional as F
from .._checks import check_bool, check_single, check_triple
from ..functional.pooling import (adaptive_output_size, adaptive_output_size3d, pool1d_args,
                                  pool3d_args, pool_args)
from .module import Module

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d",
           "MaxPool3d", "AvgPool3d", "AdaptiveAvgPool3d"]

# A window size, stride or padding: one int for every dimension, or one per dimension.
_Size = Union[int, Tuple[int, ...]]
# An adaptive pooling's output size; None keeps the input's size along that dimension.
_OutputSize = Union[int, Tuple[Optional[int], ...]]


class _Pool(Module):
    _op = "pool"
    _parse: Callable[..., Any] = staticmethod(pool_args)  # -> ((kh, kw), (sh, sw), (ph, pw))
    _one_d = False

    def __init__(self, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0) -> None:
        super().__init__()
        # Stored as given (PyTorch's repr shows them so); validated here, once.
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self._k, self._s, self._p = self._parse(kernel_size, stride, padding, self._op)
        for (k, p) in zip(self._k, self._p):
            if 2 * p > k:
                raise ValueError(f"{self._op}: padding should be at most half of kernel_size, got "
                                 f"padding={padding}, kernel_size={kernel_size}")

    def _window(self) -> Tuple[Any, ...]:
        """The window as the functional ops take it: (kernel, stride, padding), pairs or ints for 1-D."""
        if self._one_d:
            return self._k[1], self._s[1], self._p[1]
        return self._k, self._s, self._p

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _MaxPool(_Pool):
    _pool: Callable[..., Any] = staticmethod(F.max_pool2d)
    _pool_backward: Callable[..., np.ndarray] = staticmethod(F.max_pool2d_backward)

    def forward(self, x: ArrayLike) -> np.ndarray:
        return self._forward(x, after_relu=False)

    def _forward(self, x: ArrayLike, after_relu: bool) -> np.ndarray:
        # after_relu=True is used by Sequential when a ReLU precedes: backward
        # then also applies the ReLU's gradient mask (see container.py).
        x = F.as_float32(x, "input")
        if not self.records_for_backward():  # inference: no backward, so no indices (the same values)
            y: np.ndarray = self._pool(x, *self._window())
            self.save_for_backward()
            return y
        y, indices = self._pool(x, *self._window(), return_indices=True)
        self.save_for_backward(indices, x.shape, y if after_relu else None)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        indices, shape, relu_output = self.saved()
        if not input_grad:
            return None
        return self._pool_backward(grad_output, indices, shape, *self._window(), relu_output=relu_output)


class MaxPool2d(_MaxPool):
    """Max pooling, PyTorch's ``nn.MaxPool2d(kernel_size, stride=None, padding=0)``.

    ``stride`` defaults to ``kernel_size``. In training mode the forward
    saves the argmax indices (int32), so backward does not need the input;
    in eval mode it computes no indices (the same values, faster), unless
    inside ``nn.enable_grad()``.
    """

    _op = "MaxPool2d"


class MaxPool1d(_MaxPool):
    """1-D max pooling, PyTorch's ``nn.MaxPool1d(kernel_size, stride=None, padding=0)``; argmax as MaxPool2d."""

    _op = "MaxPool1d"
    _parse = staticmethod(pool1d_args)
    _one_d = True
    _pool = staticmethod(F.max_pool1d)
    _pool_backward = staticmethod(F.max_pool1d_backward)


class MaxPool3d(_MaxPool):
    """3-D max pooling of (N, C, D, H, W) clips, PyTorch's ``nn.MaxPool3d``.

    ``MaxPool3d(kernel_size, stride=None, padding=0, dilation=1, *,
    ceil_mode=False)``: ints or (d, h, w) triples; argmax saved as MaxPool2d
    (PyTorch's ``return_indices`` is :func:`pycnn.functional.max_pool3d`'s:
    a module returns one array).
    """

    _op = "MaxPool3d"
    _parse = staticmethod(pool3d_args)
    _pool = staticmethod(F.max_pool3d)
    _pool_backward = staticmethod(F.max_pool3d_backward)

    def __init__(self, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0,
                 dilation: _Size = 1, *, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding)
        self.dilation = dilation
        self._d = check_triple(dilation, "dilation", self._op, 1)
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", self._op)

    def _window(self) -> Tuple[Any, ...]:
        return self._k, self._s, self._p, self._d, self.ceil_mode

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class _AvgPool(_Pool):
    _pool: Callable[..., np.ndarray] = staticmethod(F.avg_pool2d)
    _pool_backward: Callable[..., np.ndarray] = staticmethod(F.avg_pool2d_backward)

    def __init__(self, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding)
        if not isinstance(count_include_pad, (bool, np.bool_)):
            raise TypeError(f"{self._op}: count_include_pad must be a bool, got {count_include_pad!r}")
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x: ArrayLike) -> np.ndarray:
        x = F.as_float32(x, "input")
        y = self._pool(x, *self._window(), self.count_include_pad)
        self.save_for_backward(x.shape)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        (shape,) = self.saved()
        if not input_grad:
            return None
        return self._pool_backward(grad_output, shape, *self._window(), self.count_include_pad)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        return s


class AvgPool2d(_AvgPool):
    """Average pooling, PyTorch's ``nn.AvgPool2d(kernel_size, stride=None, padding=0, count_include_pad=True)``."""

    _op = "AvgPool2d"


class AvgPool1d(_AvgPool):
    """1-D average pooling, PyTorch's ``nn.AvgPool1d(kernel_size, stride=None, padding=0, count_include_pad=True)``."""

    _op = "AvgPool1d"
    _parse = staticmethod(pool1d_args)
    _one_d = True
    _pool = staticmethod(F.avg_pool1d)
    _pool_backward = staticmethod(F.avg_pool1d_backward)


class AvgPool3d(_AvgPool):
    """3-D average pooling of (N, C, D, H, W) clips, PyTorch's
    ``nn.AvgPool3d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True)``."""

    _op = "AvgPool3d"
    _parse = staticmethod(pool3d_args)
    _pool = staticmethod(F.avg_pool3d)
    _pool_backward = staticmethod(F.avg_pool3d_backward)

    def __init__(self, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, count_include_pad)
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", self._op)

    def _window(self) -> Tuple[Any, ...]:
        return self._k, self._s, self._p, self.ceil_mode

    def extra_repr(self) -> str:
        return super().extra_repr() + (", ceil_mode=True" if self.ceil_mode else "")


class _AdaptiveAvgPool(Module):
    _pool: Callable[..., np.ndarray] = staticmethod(F.adaptive_avg_pool2d)
    _pool_backward: Callable[..., np.ndarray] = staticmethod(F.adaptive_avg_pool2d_backward)

    def __init__(self, output_size: _OutputSize) -> None:
        super().__init__()
        self._check_output_size(output_size)
        self.output_size = output_size

    @staticmethod
    def _check_output_size(output_size: _OutputSize) -> None:
        adaptive_output_size(output_size, ())  # validates; None entries resolve per input

    def forward(self, x: ArrayLike) -> np.ndarray:
        x = F.as_float32(x, "input")
        y = self._pool(x, self.output_size)
        self.save_for_backward(x.shape)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        (shape,) = self.saved()
        if not input_grad:
            return None
        return self._pool_backward(grad_output, shape)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptiveAvgPool):
    """Average pooling to a fixed ``output_size`` (int or pair; None keeps the input size), as PyTorch."""


class AdaptiveAvgPool1d(_AdaptiveAvgPool):
    """Average pooling of (N, C, L) to a fixed length ``output_size``, as PyTorch's windows."""

    _pool = staticmethod(F.adaptive_avg_pool1d)
    _pool_backward = staticmethod(F.adaptive_avg_pool1d_backward)

    @staticmethod
    def _check_output_size(output_size: _OutputSize) -> None:
        check_single(output_size, "output_size", "AdaptiveAvgPool1d", 1)


class AdaptiveAvgPool3d(_AdaptiveAvgPool):
    """Average pooling of (N, C, D, H, W) to a fixed ``output_size`` (int or triple; None keeps the input size)."""

    _pool = staticmethod(F.adaptive_avg_pool3d)
    _pool_backward = staticmethod(F.adaptive_avg_pool3d_backward)

    @staticmethod
    def _check_output_size(output_size: _OutputSize) -> None:
        adaptive_output_size3d(output_size, ())  # validates; None entries resolve per input
