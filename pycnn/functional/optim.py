"""Optimiser updates (PyTorch's SGD and Adam/AdamW), in place on the caller's arrays."""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from .. import _core
from .._checks import check_bool, check_int, check_real
from ._convert import inplace

__all__ = ["sgd_step", "sgd_step_many", "zero_many", "adam_step"]


def sgd_step(param: np.ndarray, grad: np.ndarray, momentum_buffer: Optional[np.ndarray], lr: float,
             momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
             nesterov: bool = False, first_step: bool = False) -> None:
    """One step of PyTorch's SGD, in place on ``param`` and ``momentum_buffer``.

    ``g = grad + weight_decay * param``; with momentum,
    ``buf = g`` on the first step (``first_step=True``, the buffer's previous
    contents are ignored) else ``momentum * buf + (1 - dampening) * g``, and
    ``g = g + momentum * buf`` (nesterov) or ``buf``; then ``param -= lr * g``.
    All three arrays must be float32 and C-contiguous (``TypeError`` otherwise:
    a converted copy would take the update instead of the caller's array).
    ``momentum_buffer`` may be None when ``momentum`` is 0.
    """
    op = "sgd_step"
    inplace(param, "param")
    if not isinstance(grad, np.ndarray) or grad.dtype != np.float32 or not grad.flags.c_contiguous:
        raise TypeError(f"{op}: grad must be a float32 C-contiguous array, got "
                        f"{getattr(grad, 'dtype', type(grad).__name__)}")
    if momentum_buffer is not None:
        inplace(momentum_buffer, "momentum_buffer")
    _core.sgd_step(param, grad, momentum_buffer, check_real(lr, "lr", op), check_real(momentum, "momentum", op),
                   check_real(dampening, "dampening", op), check_real(weight_decay, "weight_decay", op),
                   check_bool(nesterov, "nesterov", op), check_bool(first_step, "first_step", op))


def sgd_step_many(params: Sequence[np.ndarray], grads: Sequence[np.ndarray],
                  momentum_buffers: Sequence[Optional[np.ndarray]], lr: float, momentum: float = 0.0,
                  dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                  first_steps: Optional[Sequence[bool]] = None) -> None:
    """:func:`sgd_step` on every ``(params[i], grads[i], momentum_buffers[i])``, in one call.

    The same update, element for element, as a loop of :func:`sgd_step`
    calls, but in one pass of the threads over all the arrays: a network's
    step then costs one fork/join and one Python call instead of one per
    parameter (ResNet-18 has 62, most of them BatchNorm's small vectors).
    ``first_steps[i]`` (default all False) initialises that momentum buffer
    from the gradient. The arrays follow :func:`sgd_step`'s rules (float32,
    C-contiguous, written in place: ``TypeError`` otherwise; ``ValueError``
    for mismatched shapes). Parameters sharing memory with each other are
    updated one after another, in order, as the loop would.
    """
    op = "sgd_step_many"
    n = len(params)
    firsts: List[bool] = [False] * n if first_steps is None else [bool(f) for f in first_steps]
    _core.sgd_step_many(list(params), list(grads), list(momentum_buffers), firsts, check_real(lr, "lr", op),
                        check_real(momentum, "momentum", op), check_real(dampening, "dampening", op),
                        check_real(weight_decay, "weight_decay", op), bool(nesterov))


def zero_many(arrays: Sequence[np.ndarray]) -> None:
    """Fill every array with zeros, in place, in one parallel pass (what ``zero_grad`` does to the gradients).

    The arrays must be float32, C-contiguous and writeable (``TypeError`` otherwise).
    """
    _core.zero_many(list(arrays))


def adam_step(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
              max_exp_avg_sq: Optional[np.ndarray], step: int, lr: float, beta1: float = 0.9,
              beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
              decoupled_weight_decay: bool = False) -> None:
    """One step of PyTorch's Adam (or AdamW with ``decoupled_weight_decay``), in place.

    ``step`` is the step number *after* incrementing (1 on the first call).
    Adam adds ``weight_decay * param`` to the gradient; AdamW multiplies the
    parameter by ``1 - lr * weight_decay`` first. Then
    ``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 - beta2) g^2``,
    (amsgrad: ``vmax = max(vmax, v)``, used instead of v),
    ``param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)``.
    The arrays written in place must be float32 C-contiguous (``TypeError``).
    """
    op = "adam_step"
    inplace(param, "param")
    inplace(exp_avg, "exp_avg")
    inplace(exp_avg_sq, "exp_avg_sq")
    if max_exp_avg_sq is not None:
        inplace(max_exp_avg_sq, "max_exp_avg_sq")
    if not isinstance(grad, np.ndarray) or grad.dtype != np.float32 or not grad.flags.c_contiguous:
        raise TypeError(f"{op}: grad must be a float32 C-contiguous array, got "
                        f"{getattr(grad, 'dtype', type(grad).__name__)}")
    step = check_int(step, "step", op, 1)
    lr, beta1, beta2 = check_real(lr, "lr", op), check_real(beta1, "beta1", op), check_real(beta2, "beta2", op)
    eps, wd = check_real(eps, "eps", op), check_real(weight_decay, "weight_decay", op)
    decoupled_weight_decay = check_bool(decoupled_weight_decay, "decoupled_weight_decay", op)
    # The bias corrections divide by 1 - beta^step: beta = 1 would divide by zero
    # (and beta outside [0, 1) is not a moving average). PyTorch's range.
    for i, beta in enumerate((beta1, beta2), 1):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{op}: beta{i} must be in [0, 1), got {beta}")
    bc1 = 1.0 - beta1 ** step
    bc2 = 1.0 - beta2 ** step
    if decoupled_weight_decay:
        l2, decay = 0.0, 1.0 - lr * wd
    else:
        l2, decay = wd, 1.0
    # 1 - beta in double, as PyTorch: 1 - 0.999 in float32 is off by 1e-5.
    _core.adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, 1.0 - beta1, beta2, 1.0 - beta2, eps, l2,
                    decay, -lr / bc1, bc2 ** 0.5)
