"""The fully connected layer: x @ weight.T + bias, forward and backward."""
from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike

from .. import _core
from .._checks import check_bool
from ._convert import Grads, as_float32, param_grads

__all__ = ["linear", "linear_backward"]


def linear(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, *, relu: bool = False) -> np.ndarray:
    """x (N, in) @ weight (out, in).T + bias (out,) -> (N, out); ``relu=True`` fuses a ReLU."""
    x = as_float32(x, "input")
    w = as_float32(weight, "weight")
    b = None if bias is None else as_float32(bias, "bias")
    return _core.linear_fwd(x, w, b, check_bool(relu, "relu", "linear"))


def linear_backward(grad_output: ArrayLike, x: ArrayLike, weight: ArrayLike, *,
                    grad_weight: Optional[np.ndarray] = None, grad_bias: Optional[np.ndarray] = None,
                    bias: bool = True, input_grad: bool = True, weight_grad: bool = True) -> Grads:
    """Gradients of :func:`linear` -> ``(grad_input or None, grad_weight or None, grad_bias or None)``.

    Same conventions as :func:`conv2d_backward`: grad_input is new (skipped
    when ``input_grad`` is False); grad_weight / grad_bias accumulate into the
    given float32 arrays or fresh zeros (grad_bias only when ``bias``).
    """
    op = "linear_backward"
    bias, input_grad = check_bool(bias, "bias", op), check_bool(input_grad, "input_grad", op)
    weight_grad = check_bool(weight_grad, "weight_grad", op)
    dy = as_float32(grad_output, "grad_output")
    x = as_float32(x, "input")
    w = as_float32(weight, "weight")
    if weight_grad:
        grad_weight, grad_bias = param_grads(w, grad_weight, grad_bias, bias, "linear")
        _core.linear_bwd_weight(dy, x, grad_weight, grad_bias)
    else:
        grad_weight = grad_bias = None
    grad_input = _core.linear_bwd_data(dy, w) if input_grad else None
    return grad_input, grad_weight, grad_bias
