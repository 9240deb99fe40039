"""Skip connections: the ``Residual`` container and ResNet's ``BasicBlock``.

``Residual(body, shortcut=None, relu=True)`` computes
``out = relu(body(x) + shortcut(x))`` (the identity when ``shortcut`` is
None; no ReLU when ``relu`` is False). Its backward sends the output
gradient through both branches and adds their input gradients.

``BasicBlock`` is the two-convolution block of He et al. (2016) with
torchvision's member names (``conv1``, ``bn1``, ``relu``, ``conv2``, ``bn2``,
``downsample``), so its state dict keys are torchvision's. The networks
built from it (``ResNet``) are in :mod:`pycnn.models.resnet`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Tuple

import numpy as np

from .. import functional as F
from . import fused, grad_mode
from .activation import ReLU
from .container import Sequential, call_backward
from .conv import Conv2d
from .module import Module
from .normalization import BatchNorm2d

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Residual", "BasicBlock"]


class Residual(Module):
    """``out = relu(body(x) + shortcut(x))``: a skip connection around ``body``.

    ``shortcut`` is None for the identity, or a module giving ``body``'s
    output shape (e.g. a 1x1 strided convolution + BatchNorm). ``relu=False``
    leaves the sum as it is. State dict keys: ``body.*`` and ``shortcut.*``.
    """

    relu: Any  # a bool here; BasicBlock's (torchvision's name) is its ReLU module

    def __init__(self, body: Module, shortcut: Optional[Module] = None, relu: bool = True) -> None:
        super().__init__()
        for name, m in (("body", body), ("shortcut", shortcut)):
            if m is not None and not isinstance(m, Module):
                raise TypeError(f"Residual: {name} must be an nn.Module, got {type(m).__name__}")
        if body is None:
            raise TypeError("Residual: body must be an nn.Module, got None")
        self.body = body
        if shortcut is not None:
            self.shortcut = shortcut
        else:
            self.add_module("shortcut", None)
        self.relu = bool(relu)

    # Subclasses with their own member names (BasicBlock) override these two.
    def _body(self) -> Module:
        return self.body

    def _shortcut(self) -> Optional[Module]:
        return self.shortcut

    def forward(self, x: ArrayLike) -> np.ndarray:
        if self.training:  # eval-mode branches (frozen BatchNorm) save for the backward that follows
            with grad_mode.enable_grad():
                return self._forward(x)
        return self._forward(x)

    def _forward(self, x: ArrayLike) -> np.ndarray:
        x = F.as_float32(x, "input")
        body, sc = self._body(), self._shortcut()
        if not self.training and type(body) is Sequential and fused.enabled():
            # Eval mode: the shortcut first, so that the body's last convolution
            # adds it (and applies the ReLU) in its output write (pycnn.nn.fused).
            s = x if sc is None else sc(x)
            if self._body_output_shape(body, x.shape) == s.shape:
                y, done = body._chain(x, fuse=True, residual=s, relu_after=self._relu_after())
                if done:
                    self.save_for_backward()
                    return y
            else:
                y = body(x)
            return self._add(x, y, s)
        y = body(x)
        s = x if sc is None else sc(x)
        return self._add(x, y, s)

    def _body_output_shape(self, body: Sequential, x_shape: Tuple[int, ...]) -> Optional[Tuple[int, ...]]:
        # The shape of body(x) when every module keeps its input shape except its
        # convolutions (a ResNet body); None when that cannot be told without running it.
        shape: Optional[Tuple[int, ...]] = x_shape
        for m in body:
            if shape is None:
                return None
            if type(m) is Conv2d:
                shape = fused.output_shape(m, shape)
            elif type(m) not in (BatchNorm2d, ReLU):
                return None
        return shape

    def _add(self, x: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
        if y.shape != s.shape:
            raise ValueError(f"{type(self).__name__}: the body's output {y.shape} and the shortcut's output "
                             f"{s.shape} differ (input {x.shape}); use a projection shortcut")
        out = F.add(y, s, relu=self._relu_after())  # a new array: the branches may have saved theirs
        self.save_for_backward(out if self._relu_after() else None)
        return out

    def _relu_after(self) -> bool:
        return self.relu

    def backward(self, grad_output: ArrayLike, input_grad: bool = True) -> Optional[np.ndarray]:
        """Gradient through both branches, summed at the input; parameter grads accumulate in each."""
        (out,) = self.saved()
        g = F.as_float32(grad_output, "grad_output")
        if out is not None:
            g = F.relu_backward(g, out)
        dx = call_backward(self._body(), g, input_grad)
        sc = self._shortcut()
        ds = g if sc is None else call_backward(sc, g, input_grad)
        if not input_grad:
            return None
        if dx is g or np.may_share_memory(dx, g) or np.may_share_memory(dx, ds):
            return F.add(dx, ds)
        return F.add(dx, ds, out=dx)  # dx is the body's fresh input gradient: reuse it

    def extra_repr(self) -> str:
        return "" if self.relu else "relu=False"


class BasicBlock(Residual):
    """He et al.'s two 3x3 convolutions with a skip: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    ``stride`` applies to ``conv1`` (and the projection). The shortcut is the
    identity when the shape is kept, else ``downsample`` = 1x1 conv (stride)
    + BatchNorm2d, unless a ``downsample`` module is given. Member names
    follow torchvision's ``BasicBlock``.
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[Module] = None) -> None:
        Module.__init__(self)
        self.conv1 = Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BatchNorm2d(planes)
        self.relu = ReLU()
        self.conv2 = Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = BatchNorm2d(planes)
        if downsample is None and (stride != 1 or inplanes != planes):
            downsample = Sequential(Conv2d(inplanes, planes, 1, stride=stride, bias=False), BatchNorm2d(planes))
        if downsample is not None:
            self.downsample = downsample
        else:
            self.add_module("downsample", None)
        # An unregistered chain over the registered members: state dict keys stay
        # conv1.*, bn1.*, ..., and the chain fuses bn1's ReLU into its output write.
        object.__setattr__(self, "_chain", Sequential(self.conv1, self.bn1, self.relu, self.conv2, self.bn2))

    def _body(self) -> Module:
        # The chain is not a registered child, so train()/eval() do not reach it: keep its mode ours.
        object.__setattr__(self._chain, "training", self.training)
        return self._chain

    def _shortcut(self) -> Optional[Module]:
        return self.downsample

    def _relu_after(self) -> bool:
        return True

    def extra_repr(self) -> str:
        return ""
