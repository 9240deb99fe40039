"""Batch normalisation over the channel axis of (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W), forward
and backward."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from .. import _core
from .._checks import check_bool, check_real
from ._convert import Grads, as_float32, check_disjoint, inplace, optional_float32

__all__ = ["batch_norm", "batch_norm_forward", "batch_norm_backward"]


def _running_stats(running_mean: Optional[np.ndarray], running_var: Optional[np.ndarray],
                   op: str) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: running_mean and running_var must both be given or both be None")
    if running_mean is not None:
        inplace(running_mean, "running_mean")
        inplace(running_var, "running_var")
    return running_mean, running_var


def batch_norm_forward(x: ArrayLike, running_mean: Optional[np.ndarray], running_var: Optional[np.ndarray],
                       weight: Optional[ArrayLike] = None, bias: Optional[ArrayLike] = None, training: bool = False,
                       momentum: float = 0.1, eps: float = 1e-5, *,
                       relu: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Batch normalisation -> ``(y, save_mean, save_rstd)``; the saved arrays are None in eval.

    ``x`` is (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W); statistics are per channel C
    over every other axis. In training the batch statistics normalise and,
    when ``running_mean``/``running_var`` are given (float32 (C,) arrays,
    updated in place), ``r = (1 - momentum) * r + momentum * stat`` with the
    *unbiased* batch variance, as PyTorch. ``momentum=None`` is not handled
    here (the module passes the cumulative-average factor). In eval the
    running statistics normalise. ``weight``/``bias`` (C,) are the affine
    scale and shift (None: 1 and 0). ``relu=True`` applies a ReLU in the same
    output pass. ``save_mean`` and ``save_rstd = 1/sqrt(var + eps)`` are what
    :func:`batch_norm_backward` needs.
    """
    op = "batch_norm"
    training, relu = check_bool(training, "training", op), check_bool(relu, "relu", op)
    x = as_float32(x, "input")
    w, b = optional_float32(weight, "weight"), optional_float32(bias, "bias")
    eps = check_real(eps, "eps", op)
    if not eps > 0:
        raise ValueError(f"{op}: eps must be positive, got {eps}")
    if training:
        rm, rv = _running_stats(running_mean, running_var, op)
        momentum = check_real(momentum, "momentum", op)
        return _core.batch_norm_fwd_train(x, w, b, rm, rv, eps, momentum, relu)
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: running_mean and running_var are required when training=False")
    rm, rv = as_float32(running_mean, "running_mean"), as_float32(running_var, "running_var")
    return _core.batch_norm_fwd_eval(x, w, b, rm, rv, eps, relu), None, None


def batch_norm(x: ArrayLike, running_mean: Optional[np.ndarray], running_var: Optional[np.ndarray],
               weight: Optional[ArrayLike] = None, bias: Optional[ArrayLike] = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5, *, relu: bool = False) -> np.ndarray:
    """PyTorch's ``F.batch_norm``: the output of :func:`batch_norm_forward` only."""
    return batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps,
                              relu=relu)[0]


def batch_norm_backward(grad_output: ArrayLike, x: ArrayLike, save_mean: ArrayLike, save_rstd: ArrayLike,
                        weight: Optional[ArrayLike] = None, *, grad_weight: Optional[np.ndarray] = None,
                        grad_bias: Optional[np.ndarray] = None, affine: Optional[bool] = None,
                        input_grad: bool = True, training: bool = True) -> Grads:
    """Gradients of :func:`batch_norm_forward` -> ``(grad_input, grad_weight, grad_bias)``.

    ``training`` is the forward's: True when it normalised with the batch's
    statistics (``save_mean``, ``save_rstd`` are what it returned), False
    when it normalised with fixed running statistics (eval mode; pass
    ``running_mean`` and ``1 / sqrt(running_var + eps)``), which makes it an
    affine map per channel: ``grad_input = grad_output * weight * rstd``
    (PyTorch's eval-mode gradient). ``grad_input`` is new (None when
    ``input_grad`` is False). ``grad_weight`` (``sum(dy * xhat)``) and
    ``grad_bias`` (``sum(dy)``) accumulate into the given float32 (C,)
    arrays, or into fresh zeros when ``affine`` (default: ``weight is not
    None``) and none are given; without affine they are None.
    """
    op = "batch_norm_backward"
    input_grad = check_bool(input_grad, "input_grad", op)
    training = check_bool(training, "training", op)
    dy = as_float32(grad_output, "grad_output")
    x = as_float32(x, "input")
    w = optional_float32(weight, "weight")
    m, r = as_float32(save_mean, "save_mean"), as_float32(save_rstd, "save_rstd")
    affine = w is not None if affine is None else check_bool(affine, "affine", op)
    if affine:
        C = m.shape[0] if m.ndim == 1 else 0
        if grad_weight is None:
            grad_weight = np.zeros((C,), np.float32)
        else:
            inplace(grad_weight, "grad_weight")
        if grad_bias is None:
            grad_bias = np.zeros((C,), np.float32)
        else:
            inplace(grad_bias, "grad_bias")
        if w is not None:  # dx is computed from the weight: an accumulator over it would change dx
            check_disjoint(grad_weight, w, "grad_weight", "weight", op)
            check_disjoint(grad_bias, w, "grad_bias", "weight", op)
    dx = _core.batch_norm_bwd(dy, x, m, r, w, grad_weight, grad_bias, input_grad, training)
    return dx, grad_weight, grad_bias
