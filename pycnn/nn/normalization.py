"""Batch normalisation layers, PyTorch's ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` / ``nn.BatchNorm3d``.

Parameters and buffers carry PyTorch's names -- ``weight``, ``bias``,
``running_mean``, ``running_var``, ``num_batches_tracked`` (int64, 0-d) -- so
state dicts move between the two libraries unchanged.

* ``train()``: normalise with the batch statistics (biased variance) and
  update the running statistics: ``r = (1 - momentum) * r + momentum * stat``
  with the *unbiased* batch variance; ``momentum=None`` uses the cumulative
  average ``1 / num_batches_tracked``.
* ``eval()``: normalise with the running statistics (batch statistics when
  ``track_running_stats=False``, as PyTorch). Nothing is saved for backward,
  except inside ``nn.enable_grad()`` (or a container in training mode: frozen
  statistics while fine-tuning), where backward is the gradient of that affine
  map per channel, as PyTorch's.

Inside a ``Sequential``, a BatchNorm directly followed by a ``ReLU`` applies
the ReLU in its own output write (one pass fewer; bitwise the same output).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

from .. import functional as F
from .._checks import check_int, check_real
from . import _budget
from .module import Module
from .parameter import Parameter

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class _BatchNorm(Module):
    _keeps_running_stats = True
    _ndims: Tuple[int, ...] = (4,)
    _shape_text = "(N, C, H, W)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        op = type(self).__name__
        self.num_features = check_int(num_features, "num_features", op, 1)
        self.eps = check_real(eps, "eps", op)
        if not self.eps > 0:
            raise ValueError(f"{op}: eps must be positive, got {eps}")
        if momentum is not None:
            momentum = check_real(momentum, "momentum", op)
            if not 0.0 <= momentum <= 1.0:
                raise ValueError(f"{op}: momentum must be in [0, 1] or None, got {momentum}")
        self.momentum = momentum
        for name, v in (("affine", affine), ("track_running_stats", track_running_stats)):
            if not isinstance(v, (bool, np.bool_)):
                raise TypeError(f"{op}: {name} must be a bool, got {v!r}")
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        C = self.num_features
        # Before anything is allocated: pycnn.load bounds what an architecture may build.
        _budget.check(2 * C * self.affine + (2 * C + 1) * self.track_running_stats, f"{op}({C})")
        if self.affine:
            self.weight = Parameter(np.ones(C, np.float32))
            self.bias = Parameter(np.zeros(C, np.float32))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(C, np.float32))
            self.register_buffer("running_var", np.ones(C, np.float32))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, counter 0 (in place)."""
        if self.track_running_stats:
            self.running_mean.fill(0)
            self.running_var.fill(1)
            self.num_batches_tracked.fill(0)
            self._buffers_changed()

    def reset_parameters(self) -> None:
        """Running statistics reset; weight 1, bias 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight.data.fill(1)
            self.bias.data.fill(0)
            self.weight._version += 1
            self.bias._version += 1

    def forward(self, x: ArrayLike) -> np.ndarray:
        """Normalise x per channel; in training mode saves (x, mean, rstd) for backward."""
        return self._forward(x, relu=False)

    def _forward(self, x: ArrayLike, relu: bool) -> np.ndarray:
        # relu=True is used by Sequential when a ReLU follows (see container.py).
        x = F.as_float32(x, "input")
        if x.ndim not in self._ndims:
            raise ValueError(f"{type(self).__name__}: expected input of shape {self._shape_text}, "
                             f"got {x.shape} ({x.ndim}D input)")
        w = None if self.weight is None else self.weight.data
        b = None if self.bias is None else self.bias.data
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            y, mean, rstd = F.batch_norm_forward(x, self.running_mean, self.running_var, w, b, True, factor,
                                                 self.eps, relu=relu)
        elif self.training or not self.track_running_stats:
            y, mean, rstd = F.batch_norm_forward(x, None, None, w, b, True, 0.0, self.eps, relu=relu)
        else:
            y, _, _ = F.batch_norm_forward(x, self.running_mean, self.running_var, w, b, False, eps=self.eps,
                                           relu=relu)
            if not self.records_for_backward():
                self.save_for_backward()  # inference: nothing
                return y
            # The fixed statistics the output was normalised with (copies: a later load_state_dict
            # or training step must not change this forward's gradient).
            mean = self.running_mean.copy()
            rstd = (1.0 / np.sqrt(self.running_var.astype(np.float64) + self.eps)).astype(np.float32)
            self.save_for_backward(x, mean, rstd, False)
            return y
        self.save_for_backward(x, mean, rstd, True)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        """dL/dx (None when ``input_grad`` is False); accumulates into weight.grad and bias.grad.

        After an eval-mode forward (inside ``nn.enable_grad()``) this is the
        gradient of the affine map the running statistics make: ``dx = dy *
        weight / sqrt(running_var + eps)``, ``dweight += sum(dy * xhat)``,
        ``dbias += sum(dy)``, as PyTorch's.
        """
        x, mean, rstd, batch_stats = self.saved()
        w, b = self.weight, self.bias
        gw = gb = None
        if w is not None:
            gw = w.grad if w.requires_grad else np.zeros_like(w.data)
            gb = b.grad if b.requires_grad else np.zeros_like(b.data)
        dx, _, _ = F.batch_norm_backward(grad_output, x, mean, rstd, None if w is None else w.data,
                                         grad_weight=gw, grad_bias=gb, affine=w is not None,
                                         input_grad=input_grad, training=batch_stats)
        return dx

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W): per-channel statistics over N, H and W."""

    _ndims = (4,)
    _shape_text = "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch normalisation over (N, C, D, H, W) clips: per-channel statistics over N, D, H and W."""

    _ndims = (5,)
    _shape_text = "(N, C, D, H, W)"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) (dense layers) or (N, C, L) (1-D layers): statistics over N (and L)."""

    _ndims = (2, 3)
    _shape_text = "(N, C) or (N, C, L)"
