"""Losses: softmax cross-entropy and mean squared error, forward and backward."""
from __future__ import annotations

from typing import Tuple

import numpy as np
from numpy.typing import ArrayLike

from .. import _core
from .._checks import check_choice, check_real
from ._convert import as_float32, as_labels

__all__ = ["cross_entropy", "cross_entropy_forward", "cross_entropy_backward", "mse_loss", "mse_loss_backward"]

REDUCTIONS = ("mean", "sum")


def cross_entropy_forward(logits: ArrayLike, labels: ArrayLike) -> Tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and the softmax probabilities -> ``(loss, probs)``.

    logits (N, classes), integer labels (N,) in [0, classes). ``probs`` is what
    :func:`cross_entropy_backward` needs. The mean over an empty batch is NaN,
    as in PyTorch.
    """
    z = as_float32(logits, "logits")
    t = as_labels(labels)
    loss, probs = _core.cross_entropy_fwd(z, t)
    return float(loss), probs


def cross_entropy(logits: ArrayLike, labels: ArrayLike, reduction: str = "mean") -> float:
    """Softmax cross-entropy of logits (N, classes) against integer labels (N,), reduced to a float.

    ``reduction`` is 'mean' (PyTorch's default) or 'sum'. Computed with a
    log-sum-exp around each row's maximum, so logits of any finite size give
    a finite loss.
    """
    reduction = check_choice(reduction, "reduction", "cross_entropy", REDUCTIONS)
    loss, probs = cross_entropy_forward(logits, labels)
    if reduction == "sum":
        n = probs.shape[0]
        return loss * n if n else 0.0
    return loss


def cross_entropy_backward(probs: ArrayLike, labels: ArrayLike, scale: float = 1.0) -> np.ndarray:
    """Gradient of the *mean* cross-entropy w.r.t. the logits: ``scale * (probs - onehot(labels)) / N``.

    Use ``scale=N`` for the 'sum' reduction, or the upstream gradient of the loss.
    """
    p = as_float32(probs, "probs")
    t = as_labels(labels)
    return _core.cross_entropy_bwd(p, t, check_real(scale, "scale", "cross_entropy"))


def mse_loss(input: ArrayLike, target: ArrayLike, reduction: str = "mean") -> float:
    """Squared error between input and target (same shape), averaged ('mean') or summed ('sum')."""
    reduction = check_choice(reduction, "reduction", "mse_loss", REDUCTIONS)
    x = as_float32(input, "input")
    t = as_float32(target, "target")
    loss = float(_core.mse_fwd(x, t))
    if reduction == "sum":
        return loss * x.size if x.size else 0.0
    return loss


def mse_loss_backward(input: ArrayLike, target: ArrayLike, scale: float = 1.0) -> np.ndarray:
    """Gradient of the *mean* squared error w.r.t. input: ``scale * 2 * (input - target) / input.size``.

    Use ``scale=input.size`` for the 'sum' reduction.
    """
    x = as_float32(input, "input")
    t = as_float32(target, "target")
    return _core.mse_bwd(x, t, check_real(scale, "scale", "mse_loss"))
