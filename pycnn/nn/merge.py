"""Layers that merge a list of arrays: ``Add``, ``Concat``, ``Multiply`` (Keras' merge layers).

Each takes one list (or tuple) of arrays -- in a graph, of symbolic values:
``nn.Add()([a, b])`` -- and its ``backward`` returns a tuple with one
gradient per input, in order. PyTorch's equivalents are ``a + b``,
``torch.cat([a, b], dim)`` and ``a * b``. ``Add`` and ``Multiply``
broadcast as NumPy and PyTorch do (shapes aligned from the right, each
dimension equal or 1 -- ``(N, C, H, W) * (N, C, 1, 1)`` is
squeeze-and-excitation's channel scaling), and the gradient of a
broadcast input is summed over the dimensions it was broadcast along.
``Concat`` needs inputs that differ only along ``dim``. Each says which
input does not fit and how.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

import numpy as np

from .. import functional as F
from .._checks import is_int
from .module import Module

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Add", "Concat", "Multiply"]


class _Merge(Module):
    def _inputs(self, inputs: Sequence[ArrayLike]) -> List[np.ndarray]:
        op = type(self).__name__
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(f"{op}: expected a list of arrays, e.g. {op}()([a, b]), got a {type(inputs).__name__}")
        if not inputs:
            raise ValueError(f"{op}: expected a list of at least one array, got an empty {type(inputs).__name__}")
        return [F.as_float32(x, f"input {i}") for i, x in enumerate(inputs)]

    def _broadcast_shape(self, xs: List[np.ndarray]) -> Tuple[int, ...]:
        """The shape the inputs broadcast to (NumPy's rules); ValueError naming the first input that does not fit."""
        shape = xs[0].shape
        for i, x in enumerate(xs[1:], 1):
            try:
                shape = np.broadcast_shapes(shape, x.shape)
            except ValueError:
                raise ValueError(f"{type(self).__name__}: inputs must have one shape or broadcast to one (dimensions "
                                 f"aligned from the right, each equal or 1); got input 0 of shape {xs[0].shape}"
                                 + (f", inputs 0..{i - 1} broadcast to {shape}," if i > 1 else "")
                                 + f" and input {i} of shape {x.shape}") from None
        return shape

    def _grad(self, grad_output: ArrayLike, shape: Tuple[int, ...]) -> np.ndarray:
        dy = F.as_float32(grad_output, "grad_output")
        if dy.shape != shape:
            raise ValueError(f"{type(self).__name__}: expected grad_output of the forward output's shape {shape}, "
                             f"got {dy.shape}")
        return dy


def _sum_to(g: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
    """The gradient of an input of ``shape`` that was broadcast to ``g.shape``: g summed over the broadcast
    dimensions (the leading ones it lacks and those where it has size 1)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    return np.ascontiguousarray(g.sum(axis=axes, dtype=np.float32).reshape(shape))


class Add(_Merge):
    """The sum of a list of arrays: ``nn.Add()([a, b, c])`` is ``(a + b) + c``, broadcast as NumPy.

    Backward gives every input of the output's shape the output's gradient
    (the same array, to be read, not written), and a broadcast input its sum
    over the broadcast dimensions.
    """

    def forward(self, inputs: Sequence[ArrayLike]) -> np.ndarray:
        xs = self._inputs(inputs)
        shape = self._broadcast_shape(xs)
        if all(x.shape == shape for x in xs):  # one shape: pycnn's kernel
            y = xs[0] if len(xs) == 1 else F.add(xs[0], xs[1])
            for x in xs[2:]:
                F.add(y, x, out=y)  # y is this call's new array
        else:
            y = np.add(xs[0], xs[1])  # a new array; in place once it has the broadcast shape
            for x in xs[2:]:
                y = np.add(y, x, out=y if y.shape == shape else None)
        self.save_for_backward([x.shape for x in xs], y.shape)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[Tuple[np.ndarray, ...]]:
        shapes, shape = self.saved()
        if not input_grad:
            return None
        dy = self._grad(grad_output, shape)
        return tuple(_sum_to(dy, s) for s in shapes)


class Multiply(_Merge):
    """The elementwise product of a list of arrays: ``((a * b) * c)``, broadcast as NumPy.

    Saves the running products, so backward is the chain rule of that order
    (as PyTorch's autograd would apply it): no division, exact zeros stay
    exact. A broadcast input's gradient is summed over the broadcast dimensions.
    """

    def forward(self, inputs: Sequence[ArrayLike]) -> np.ndarray:
        xs = self._inputs(inputs)
        self._broadcast_shape(xs)
        products = [xs[0]]
        for x in xs[1:]:
            products.append(np.multiply(products[-1], x))
        self.save_for_backward(xs, products)
        return products[-1]

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[Tuple[np.ndarray, ...]]:
        xs, products = self.saved()
        if not input_grad:
            return None
        g = self._grad(grad_output, products[-1].shape)
        grads: List[Any] = [None] * len(xs)
        for i in range(len(xs) - 1, 0, -1):  # products[i] = products[i - 1] * xs[i]; g is of products[i]'s shape
            grads[i] = _sum_to(np.multiply(g, products[i - 1]), xs[i].shape)
            g = _sum_to(np.multiply(g, xs[i]), products[i - 1].shape)
        grads[0] = g
        return tuple(grads)


class Concat(_Merge):
    """Concatenation of a list of arrays along ``dim`` (PyTorch's ``torch.cat(tensors, dim=1)``: channels of NCHW).

    The inputs must agree in every other dimension. Backward splits the
    gradient into each input's part (contiguous copies).
    """

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        if not is_int(dim):
            raise TypeError(f"Concat: dim must be an int, got {dim!r}")
        self.dim = int(dim)

    def forward(self, inputs: Sequence[ArrayLike]) -> np.ndarray:
        xs = self._inputs(inputs)
        nd = xs[0].ndim
        if not -nd <= self.dim < nd:
            raise IndexError(f"Concat: dim={self.dim} is out of range for inputs of {nd} dimensions "
                             f"(input 0 has shape {xs[0].shape})")
        axis = self.dim % nd
        rest = xs[0].shape[:axis] + xs[0].shape[axis + 1:]
        for i, x in enumerate(xs[1:], 1):
            if x.ndim != nd or x.shape[:axis] + x.shape[axis + 1:] != rest:
                raise ValueError(f"Concat: inputs must have the same shape except in dim {self.dim}; got input 0 of "
                                 f"shape {xs[0].shape} and input {i} of shape {x.shape}")
        y = np.concatenate(xs, axis=axis)
        self.save_for_backward(axis, [x.shape[axis] for x in xs], y.shape)
        return y

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[Tuple[np.ndarray, ...]]:
        axis, sizes, shape = self.saved()
        if not input_grad:
            return None
        dy = self._grad(grad_output, shape)
        parts = np.split(dy, np.cumsum(sizes)[:-1], axis=axis)
        return tuple(np.ascontiguousarray(p) for p in parts)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
