"""The fully connected layer, ``Linear``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from .. import functional as F
from .._checks import check_int
from ._weighted import init_weight_and_bias, reset_weight_and_bias, weighted_backward
from .module import Module

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Linear"]


class Linear(Module):
    """y = x @ weight.T + bias, PyTorch's ``nn.Linear(in_features, out_features, bias=True)``.

    ``weight`` is (out_features, in_features); weight and bias start at
    U(-1/sqrt(in_features), 1/sqrt(in_features)), as PyTorch.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", "Linear", 1)
        self.out_features = check_int(out_features, "out_features", "Linear", 1)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"Linear: bias must be a bool, got {bias!r}")
        init_weight_and_bias(self, (self.out_features, self.in_features), bias)

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform(a=sqrt(5)) weight, U(+-1/sqrt(in_features)) bias."""
        reset_weight_and_bias(self)  # (fan_in = in_features)

    def forward(self, x: ArrayLike) -> np.ndarray:
        """x (N, in_features) -> (N, out_features); saves x in training mode."""
        return self._forward(x, relu=False)

    def _forward(self, x: ArrayLike, relu: bool) -> np.ndarray:
        # relu=True is used by Sequential when a ReLU follows (see container.py).
        x = F.as_float32(x, "input")
        y = F.linear(x, self.weight.data, None if self.bias is None else self.bias.data, relu=relu)
        self.save_for_backward(x)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        """dL/dx (None when ``input_grad`` is False); accumulates into weight.grad and bias.grad."""
        (x,) = self.saved()
        return weighted_backward(F.linear_backward, self, grad_output, x, input_grad)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
