"""What layers with a ``weight`` and an optional ``bias`` share (Conv1d, Conv2d, ConvTranspose1d/2d, Linear).

Creating the two parameters, PyTorch's default initialisation of them, and
the backward pass through a functional op that computes dW and db together.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

import numpy as np

from . import _budget, init
from .parameter import Parameter

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .module import Module

__all__ = ["init_weight_and_bias", "reset_weight_and_bias", "weighted_backward"]


def init_weight_and_bias(module: Module, weight_shape: Tuple[int, ...], bias: bool,
                         bias_size: Optional[int] = None) -> None:
    """Give ``module`` a ``weight`` of ``weight_shape`` and a ``bias`` of ``bias_size`` elements (default
    ``weight_shape[0]``; a transposed convolution's is the weight's second axis times groups) or None,
    then initialise them with its ``reset_parameters()``."""
    n_bias = weight_shape[0] if bias_size is None else bias_size
    # Before anything is allocated: pycnn.load bounds what an architecture may build.
    _budget.check(math.prod(weight_shape) + (n_bias if bias else 0),
                  f"{type(module).__name__} with weight {tuple(weight_shape)}")
    module.weight = Parameter(np.empty(weight_shape, dtype=np.float32))
    if bias:
        module.bias = Parameter(np.empty((n_bias,), dtype=np.float32))
    else:
        module.register_parameter("bias", None)
    module.reset_parameters()


def reset_weight_and_bias(module: Module) -> None:
    """PyTorch's default: kaiming_uniform(a=sqrt(5)) weight, U(+-1/sqrt(fan_in)) bias."""
    init.kaiming_uniform_(module.weight.data, negative_slope=math.sqrt(5))
    if module.bias is not None:
        fan_in = init.calculate_fan_in(module.weight.shape)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(module.bias.data, -bound, bound)
    for p in (module.weight, module.bias):
        if p is not None:
            p._version += 1  # pycnn.nn.fused rebuilds what it prepared from them


def weighted_backward(backward_fn: Callable[..., Tuple[Optional[np.ndarray], Any, Any]], module: Module,
                      grad_output: ArrayLike, x: np.ndarray, input_grad: bool, **args: Any) -> Optional[np.ndarray]:
    """The backward of a layer with ``weight`` and optional ``bias``.

    ``backward_fn`` is the functional backward (e.g. ``F.conv2d_backward``);
    gradients accumulate into the parameters' ``.grad``. Its kernel computes
    dW and db in one pass, so a frozen one of the two goes to a scratch array;
    when both are frozen only dx is computed. Returns dx, or None.
    """
    w, b = module.weight, module.bias
    need_w = w.requires_grad
    need_b = b is not None and b.requires_grad
    if not (need_w or need_b):
        dx, _, _ = backward_fn(grad_output, x, w.data, **args, input_grad=input_grad, weight_grad=False)
        return dx
    gw = w.grad if need_w else np.zeros_like(w.data)
    gb = None if b is None else (b.grad if need_b else np.zeros_like(b.data))
    dx, _, _ = backward_fn(grad_output, x, w.data, **args, grad_weight=gw, grad_bias=gb, bias=b is not None,
                           input_grad=input_grad)
    return dx
