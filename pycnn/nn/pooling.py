"""Pooling layers (floor mode, as PyTorch's defaults)."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]


class _Pool2d(Module):
    _op = "pool2d"

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        # Stored as given (PyTorch's repr shows them so); validated here, once.
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self._k, self._s, self._p = F._pool_args(kernel_size, stride, padding, self._op)
        for (k, p) in zip(self._k, self._p):
            if 2 * p > k:
                raise ValueError(f"{self._op}: padding should be at most half of kernel_size, got "
                                 f"padding={padding}, kernel_size={kernel_size}")


class MaxPool2d(_Pool2d):
    """Max pooling, PyTorch's ``nn.MaxPool2d(kernel_size, stride=None, padding=0)``.

    ``stride`` defaults to ``kernel_size``. The forward saves the argmax
    indices (int32), so backward does not need the input.
    """

    _op = "MaxPool2d"

    def forward(self, x) -> np.ndarray:
        return self._forward(x, after_relu=False)

    def _forward(self, x, after_relu: bool) -> np.ndarray:
        # after_relu=True is used by Sequential when a ReLU precedes: backward
        # then also applies the ReLU's gradient mask (see container.py).
        x = F.as_float32(x, "input")
        y, indices = F.max_pool2d(x, self._k, self._s, self._p, return_indices=True)
        self.save_for_backward(indices, x.shape, y if after_relu else None)
        return y

    def backward(self, grad_output, input_grad: bool = True):
        indices, shape, relu_output = self.saved()
        if not input_grad:
            return None
        return F.max_pool2d_backward(grad_output, indices, shape, self._k, self._s, self._p,
                                     relu_output=relu_output)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_Pool2d):
    """Average pooling, PyTorch's ``nn.AvgPool2d(kernel_size, stride=None, padding=0, count_include_pad=True)``."""

    _op = "AvgPool2d"

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding)
        if not isinstance(count_include_pad, (bool, np.bool_)):
            raise TypeError(f"AvgPool2d: count_include_pad must be a bool, got {count_include_pad!r}")
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x) -> np.ndarray:
        x = F.as_float32(x, "input")
        y = F.avg_pool2d(x, self._k, self._s, self._p, self.count_include_pad)
        self.save_for_backward(x.shape)
        return y

    def backward(self, grad_output, input_grad: bool = True):
        (shape,) = self.saved()
        if not input_grad:
            return None
        return F.avg_pool2d_backward(grad_output, shape, self._k, self._s, self._p, self.count_include_pad)

    def extra_repr(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        return s


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed ``output_size`` (int or pair; None keeps the input size), as PyTorch."""

    def __init__(self, output_size):
        super().__init__()
        F._adaptive_output_size(output_size, ())  # validates; None entries resolve per input
        self.output_size = output_size

    def forward(self, x) -> np.ndarray:
        x = F.as_float32(x, "input")
        y = F.adaptive_avg_pool2d(x, self.output_size)
        self.save_for_backward(x.shape)
        return y

    def backward(self, grad_output, input_grad: bool = True):
        (shape,) = self.saved()
        if not input_grad:
            return None
        return F.adaptive_avg_pool2d_backward(grad_output, shape)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


# ---------------------------------------------------------------------------
# 1-D pooling over (N, C, L), on the 2-D kernels with a (1, k) window.

__all__ += ["MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d"]


class _Pool1d(Module):
    _op = "pool1d"

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self._k, self._s, self._p = F._pool1d_args(kernel_size, stride, padding, self._op)
        if 2 * self._p[1] > self._k[1]:
            raise ValueError(f"{self._op}: padding should be at most half of kernel_size, got "
                             f"padding={padding}, kernel_size={kernel_size}")

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool1d(_Pool1d):
    """1-D max pooling, PyTorch's ``nn.MaxPool1d(kernel_size, stride=None, padding=0)``; saves the argmax."""

    _op = "MaxPool1d"

    def forward(self, x) -> np.ndarray:
        x = F.as_float32(x, "input")
        y, indices = F.max_pool1d(x, self._k[1], self._s[1], self._p[1], return_indices=True)
        self.save_for_backward(indices, x.shape)
        return y

    def backward(self, grad_output, input_grad: bool = True):
        indices, shape = self.saved()
        if not input_grad:
            return None
        return F.max_pool1d_backward(grad_output, indices, shape, self._k[1], self._s[1], self._p[1])


class AvgPool1d(_Pool1d):
    """1-D average pooling, PyTorch's ``nn.AvgPool1d(kernel_size, stride=None, padding=0, count_include_pad=True)``."""

    _op = "AvgPool1d"

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding)
        if not isinstance(count_include_pad, (bool, np.bool_)):
            raise TypeError(f"AvgPool1d: count_include_pad must be a bool, got {count_include_pad!r}")
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x) -> np.ndarray:
        x = F.as_float32(x, "input")
        y = F.avg_pool1d(x, self._k[1], self._s[1], self._p[1], self.count_include_pad)
        self.save_for_backward(x.shape)
        return y

    def backward(self, grad_output, input_grad: bool = True):
        (shape,) = self.saved()
        if not input_grad:
            return None
        return F.avg_pool1d_backward(grad_output, shape, self._k[1], self._s[1], self._p[1], self.count_include_pad)


class AdaptiveAvgPool1d(Module):
    """Average pooling of (N, C, L) to a fixed length ``output_size``, as PyTorch's windows."""

    def __init__(self, output_size):
        super().__init__()
        F._single(output_size, "output_size", "AdaptiveAvgPool1d", 1)
        self.output_size = output_size

    def forward(self, x) -> np.ndarray:
        x = F.as_float32(x, "input")
        y = F.adaptive_avg_pool1d(x, self.output_size)
        self.save_for_backward(x.shape)
        return y

    def backward(self, grad_output, input_grad: bool = True):
        (shape,) = self.saved()
        if not input_grad:
            return None
        return F.adaptive_avg_pool1d_backward(grad_output, shape)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
