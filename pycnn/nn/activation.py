"""Activation layers. Each saves the one array its gradient needs.

ReLU, Sigmoid and Tanh take their gradient from the output; LeakyReLU, ELU
and GELU from the input; Softmax (along one axis) from its output.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .. import functional as F
from .._checks import check_bool, check_real, is_int
from ..functional.activation import gelu_approximate
from .module import Module

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "ELU", "GELU", "Softmax"]


class _Activation(Module):
    """Saves the output y; backward is ``_bwd(grad_output, y)``."""

    _fwd = staticmethod(F.relu)
    _bwd = staticmethod(F.relu_backward)

    def forward(self, x: ArrayLike) -> np.ndarray:
        y = self._fwd(x)
        self.save_for_backward(y)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        (y,) = self.saved()
        return self._bwd(grad_output, y) if input_grad else None


class ReLU(_Activation):
    """max(x, 0). Its gradient is taken from the output (0 where the output is 0, as PyTorch)."""

    def _record(self, y: np.ndarray, gradient_applied_by_next: bool) -> None:
        """Sequential's fusion hook: ``y`` is this ReLU's output, computed by its neighbours.

        The previous layer applied the ReLU in its output write; when the next
        layer (a max pooling) also applies the ReLU's gradient mask in its own
        backward, this module's backward passes the gradient through untouched.
        """
        self.save_for_backward(None if gradient_applied_by_next else y)

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Any:
        (y,) = self.saved()
        if not input_grad:
            return None
        # grad_output itself, as given, when the next layer applied the ReLU's mask
        return grad_output if y is None else F.relu_backward(grad_output, y)


class Sigmoid(_Activation):
    """1 / (1 + exp(-x)); gradient y * (1 - y) from the output."""

    _fwd = staticmethod(F.sigmoid)
    _bwd = staticmethod(F.sigmoid_backward)


class Tanh(_Activation):
    """tanh(x); gradient 1 - y**2 from the output."""

    _fwd = staticmethod(F.tanh)
    _bwd = staticmethod(F.tanh_backward)


class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x (PyTorch's ``nn.LeakyReLU(negative_slope=0.01)``).

    Saves the input: a negative slope would make the output ambiguous.
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_real(negative_slope, "negative_slope", "LeakyReLU")

    def forward(self, x: ArrayLike) -> np.ndarray:
        x = F.as_float32(x, "input")
        y = F.leaky_relu(x, self.negative_slope)
        self.save_for_backward(x)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        (x,) = self.saved()
        return F.leaky_relu_backward(grad_output, x, self.negative_slope) if input_grad else None

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"



class ELU(Module):
    """x if x > 0 else alpha * (exp(x) - 1) (PyTorch's ``nn.ELU(alpha=1.0)``); saves its input."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = check_real(alpha, "alpha", "ELU")
        self.inplace = check_bool(inplace, "inplace", "ELU")  # accepted for compatibility; the output is new

    def forward(self, x: ArrayLike) -> np.ndarray:
        x = F.as_float32(x, "input")
        y = F.elu(x, self.alpha)
        self.save_for_backward(x)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        (x,) = self.saved()
        return F.elu_backward(grad_output, x, self.alpha) if input_grad else None

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class GELU(Module):
    """x * Phi(x), PyTorch's ``nn.GELU(approximate='none')`` (exact erf form) or ``'tanh'``; saves its input."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        gelu_approximate(approximate)  # validates
        self.approximate = approximate

    def forward(self, x: ArrayLike) -> np.ndarray:
        x = F.as_float32(x, "input")
        y = F.gelu(x, self.approximate)
        self.save_for_backward(x)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        (x,) = self.saved()
        return F.gelu_backward(grad_output, x, self.approximate) if input_grad else None

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """Softmax along ``dim`` (PyTorch's ``nn.Softmax``), for turning logits into probabilities at inference.

    Train with ``CrossEntropyLoss`` on the logits instead (it fuses the softmax
    and is numerically safer). ``dim=None`` follows PyTorch's legacy rule:
    axis 0 for 0-, 1- and 3-D inputs, else axis 1. Backward (from the saved
    output) is provided for completeness.
    """

    def __init__(self, dim: Optional[int] = None) -> None:
        super().__init__()
        if dim is not None and not is_int(dim):
            raise TypeError(f"Softmax: dim must be an int or None, got {dim!r}")
        self.dim = None if dim is None else int(dim)

    def _axis(self, x: np.ndarray) -> int:
        if self.dim is not None:
            if not -x.ndim <= self.dim < x.ndim:
                raise IndexError(f"Softmax: dim={self.dim} is out of range for an input of shape {x.shape}")
            return self.dim
        return 0 if x.ndim in (0, 1, 3) else 1

    def forward(self, x: ArrayLike) -> np.ndarray:
        x = F.as_float32(x, "input")
        axis = self._axis(x)
        y = F.softmax_c(x, axis=axis)
        self.save_for_backward(y, axis)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        y, axis = self.saved()
        return F.softmax_backward(grad_output, y, axis) if input_grad else None

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
