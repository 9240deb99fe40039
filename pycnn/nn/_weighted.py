"""What layers with a ``weight`` and an optional ``bias`` share (Conv1d, Conv2d, Linear).

The backward pass through a functional op that computes dW and db together.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .module import Module

__all__ = ["weighted_backward"]


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
