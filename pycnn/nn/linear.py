"""Fully connected layer and Flatten."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ._weighted import init_weight_and_bias, reset_weight_and_bias, weighted_backward
from .module import Module

__all__ = ["Linear", "Flatten"]


class Linear(Module):
    """y = x @ weight.T + bias, PyTorch's ``nn.Linear(in_features, out_features, bias=True)``.

    ``weight`` is (out_features, in_features); weight and bias start at
    U(-1/sqrt(in_features), 1/sqrt(in_features)), as PyTorch.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = F._int(in_features, "in_features", "Linear", 1)
        self.out_features = F._int(out_features, "out_features", "Linear", 1)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"Linear: bias must be a bool, got {bias!r}")
        init_weight_and_bias(self, (self.out_features, self.in_features), bias)

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform(a=sqrt(5)) weight, U(+-1/sqrt(in_features)) bias."""
        reset_weight_and_bias(self)  # (fan_in = in_features)

    def forward(self, x) -> np.ndarray:
        """x (N, in_features) -> (N, out_features); saves x in training mode."""
        return self._forward(x, relu=False)

    def _forward(self, x, relu: bool) -> np.ndarray:
        # relu=True is used by Sequential when a ReLU follows (see container.py).
        x = F.as_float32(x, "input")
        y = F.linear(x, self.weight.data, None if self.bias is None else self.bias.data, relu=relu)
        self.save_for_backward(x)
        return y

    def backward(self, grad_output, input_grad: bool = True):
        """dL/dx (None when ``input_grad`` is False); accumulates into weight.grad and bias.grad."""
        (x,) = self.saved()
        return weighted_backward(F.linear_backward, self, grad_output, x, input_grad)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one (PyTorch's ``nn.Flatten(start_dim=1, end_dim=-1)``).

    A view when the input is contiguous; backward reshapes the gradient back.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        if not F._is_int(start_dim):
            raise TypeError(f"Flatten: start_dim must be an int, got {start_dim!r}")
        if not F._is_int(end_dim):
            raise TypeError(f"Flatten: end_dim must be an int, got {end_dim!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x) -> np.ndarray:
        x = F.as_float32(x, "input")
        nd = max(x.ndim, 1)
        start = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        end = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        if not (0 <= start < nd and 0 <= end < nd):
            raise IndexError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} out of range "
                             f"for an input of shape {x.shape}")
        if start > end:
            raise ValueError(f"Flatten: start_dim={self.start_dim} comes after end_dim={self.end_dim} "
                             f"for an input of shape {x.shape}")
        shape = x.shape
        y = x.reshape(shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:])
        self.save_for_backward(shape)
        return y

    def backward(self, grad_output, input_grad: bool = True):
        (shape,) = self.saved()
        if not input_grad:
            return None
        return F.as_float32(grad_output, "grad_output").reshape(shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
