"""Elementwise activations and softmax, forward and backward.

Every elementwise activation is one entry of the C++ table
(``csrc/activation/activation.cpp``), reached by name through
``_core.activation_fwd`` / ``_core.activation_bwd``. Each backward takes the
array its formula needs: the forward's *output* for relu, sigmoid and tanh,
its *input* for leaky_relu, elu and gelu. :func:`add` (with an optional
ReLU) is the elementwise sum of a residual connection.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike

from .. import _core
from .._checks import I64_MAX, check_choice, check_real, is_int
from ._convert import as_float32, inplace

__all__ = ["add", "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid", "sigmoid_backward", "tanh",
           "tanh_backward", "elu", "elu_backward", "gelu", "gelu_backward", "softmax", "softmax_backward"]


def add(a: ArrayLike, b: ArrayLike, *, relu: bool = False, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``a + b`` of one shape (``relu=True``: ``max(a + b, 0)``, NaN propagates), on pycnn's threads.

    A residual connection's sum and ReLU in one pass, and the sum of its two
    branches' input gradients. ``out`` (float32, C-contiguous, written in
    place; ``TypeError`` otherwise) receives the result and may be ``a`` or
    ``b`` itself (``add(dx, ds, out=dx)`` is ``dx += ds``); by default the
    result is a new array. Returns the result. Bitwise equal to
    ``np.add(a, b)`` (and ``np.maximum(., 0)``) on float32 input.
    """
    if out is not None:
        inplace(out, "out")
    return _core.add_fwd(as_float32(a, "a"), as_float32(b, "b"), out, bool(relu))


def _forward(name: str, x: ArrayLike, param: float = 0.0) -> np.ndarray:
    return _core.activation_fwd(name, as_float32(x, "input"), param)


def _backward(name: str, grad_output: ArrayLike, saved: ArrayLike, saved_name: str, param: float = 0.0) -> np.ndarray:
    return _core.activation_bwd(name, as_float32(grad_output, "grad_output"), as_float32(saved, saved_name), param)


def relu(x: ArrayLike) -> np.ndarray:
    """max(x, 0) elementwise (NaN propagates)."""
    return _forward("relu", x)


def relu_backward(grad_output: ArrayLike, output: ArrayLike) -> np.ndarray:
    """Gradient of :func:`relu` from its *output*: grad_output where output > 0, else 0."""
    return _backward("relu", grad_output, output, "output")


def leaky_relu(x: ArrayLike, negative_slope: float = 0.01) -> np.ndarray:
    """x where x > 0, else negative_slope * x, elementwise."""
    return _forward("leaky_relu", x, check_real(negative_slope, "negative_slope", "leaky_relu"))


def leaky_relu_backward(grad_output: ArrayLike, x: ArrayLike, negative_slope: float = 0.01) -> np.ndarray:
    """Gradient of :func:`leaky_relu` from its *input* x (slope used at x == 0, as PyTorch)."""
    return _backward("leaky_relu", grad_output, x, "input", check_real(negative_slope, "negative_slope", "leaky_relu"))


def sigmoid(x: ArrayLike) -> np.ndarray:
    """1 / (1 + exp(-x)) elementwise."""
    return _forward("sigmoid", x)


def sigmoid_backward(grad_output: ArrayLike, output: ArrayLike) -> np.ndarray:
    """Gradient of :func:`sigmoid` from its *output* y: grad_output * y * (1 - y)."""
    return _backward("sigmoid", grad_output, output, "output")


def tanh(x: ArrayLike) -> np.ndarray:
    """Hyperbolic tangent elementwise."""
    return _forward("tanh", x)


def tanh_backward(grad_output: ArrayLike, output: ArrayLike) -> np.ndarray:
    """Gradient of :func:`tanh` from its *output* y: grad_output * (1 - y**2)."""
    return _backward("tanh", grad_output, output, "output")


def elu(x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """x if x > 0 else alpha * (exp(x) - 1), elementwise (PyTorch's ``F.elu``)."""
    return _forward("elu", x, check_real(alpha, "alpha", "elu"))


def elu_backward(grad_output: ArrayLike, x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """Gradient of :func:`elu` from its *input* x: grad where x > 0, else grad * alpha * exp(x)."""
    return _backward("elu", grad_output, x, "input", check_real(alpha, "alpha", "elu"))


def gelu_approximate(approximate: str, op: str = "gelu") -> float:
    """GELU's ``approximate`` ('none' or 'tanh') as the kernel's parameter (0 or 1)."""
    return 1.0 if check_choice(approximate, "approximate", op, ("none", "tanh")) == "tanh" else 0.0


def gelu(x: ArrayLike, approximate: str = "none") -> np.ndarray:
    """GELU: x * Phi(x) with the exact erf form ('none', PyTorch's default) or the 'tanh' approximation."""
    return _forward("gelu", x, gelu_approximate(approximate))


def gelu_backward(grad_output: ArrayLike, x: ArrayLike, approximate: str = "none") -> np.ndarray:
    """Gradient of :func:`gelu` from its *input* x."""
    return _backward("gelu", grad_output, x, "input", gelu_approximate(approximate))


def _axis(axis: int, x: np.ndarray) -> int:
    if not is_int(axis):
        raise TypeError(f"softmax: axis must be an int, got {axis!r}")
    if not -I64_MAX <= axis <= I64_MAX:  # (the C++ layer says the same for axes that fit in int64)
        raise ValueError(f"softmax: axis {axis} is out of range for an input of shape {x.shape}")
    return int(axis)


def softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` (C++ kernel: shifted by the slice's maximum, sums in double, NaN propagates)."""
    x = as_float32(x, "input")
    return _core.softmax_fwd(x, _axis(axis, x))


def softmax_backward(grad_output: ArrayLike, output: ArrayLike, axis: int = -1) -> np.ndarray:
    """Gradient of softmax from its output y: ``y * (dy - sum(dy * y, axis))``."""
    y = as_float32(output, "output")
    return _core.softmax_bwd(as_float32(grad_output, "grad_output"), y, _axis(axis, y))
