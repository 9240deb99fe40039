"""Loss modules: ``loss = loss_fn(prediction, target)`` is a float, ``loss_fn.backward()`` dL/dprediction."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from .. import functional as F
from .._checks import check_real
from .module import Module

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["CrossEntropyLoss", "MSELoss"]


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean' or 'sum' "
                             f"(others are not supported), got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (N, classes) against integer class labels (N,).

    ``reduction`` is 'mean' (default) or 'sum'. PyTorch's other options
    (``weight``, ``ignore_index``, ``label_smoothing``) are accepted only at
    their defaults; anything else raises ValueError rather than being ignored.
    The forward saves the softmax probabilities and labels for ``backward``.
    """

    def __init__(self, reduction: str = "mean", *, weight: Optional[ArrayLike] = None, ignore_index: int = -100,
                 label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        if weight is not None:
            raise ValueError("CrossEntropyLoss: class weights are not supported")
        if ignore_index != -100:
            raise ValueError(f"CrossEntropyLoss: ignore_index is not supported, got {ignore_index!r}")
        if label_smoothing != 0.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing is not supported, got {label_smoothing!r}")

    def forward(self, logits: ArrayLike, labels: ArrayLike) -> float:
        """The reduced loss as a Python float; saves probabilities and labels in training mode."""
        labels = F.as_labels(labels)
        loss, probs = F.cross_entropy_forward(logits, labels)
        n = probs.shape[0]
        if self.reduction == "sum":
            loss = loss * n if n else 0.0
        self.save_for_backward(probs, labels)
        return loss

    def backward(self, grad_output: float = 1.0, input_grad: bool = True) -> Optional[np.ndarray]:
        """dL/dlogits, scaled by ``grad_output`` (dOuter/dL; 1 for a plain loss)."""
        probs, labels = self.saved()
        if not input_grad:
            return None
        scale = check_real(grad_output, "grad_output", "CrossEntropyLoss")
        if self.reduction == "sum":
            scale *= probs.shape[0]
        return F.cross_entropy_backward(probs, labels, scale)


class MSELoss(_Loss):
    """Squared error between input and target of the same shape, 'mean' (default) or 'sum' over elements."""

    def forward(self, input: ArrayLike, target: ArrayLike) -> float:
        """The reduced loss as a Python float; saves input and target in training mode."""
        x = F.as_float32(input, "input")
        t = F.as_float32(target, "target")
        loss = F.mse_loss(x, t, self.reduction)
        self.save_for_backward(x, t)
        return loss

    def backward(self, grad_output: float = 1.0, input_grad: bool = True) -> Optional[np.ndarray]:
        """dL/dinput, scaled by ``grad_output``."""
        x, t = self.saved()
        if not input_grad:
            return None
        scale = check_real(grad_output, "grad_output", "MSELoss")
        if self.reduction == "sum":
            scale *= x.size
        return F.mse_loss_backward(x, t, scale)
