"""Skip connections: the ``Residual`` container, ResNet's ``BasicBlock`` and small ResNets.

``Residual(body, shortcut=None, relu=True)`` computes
``out = relu(body(x) + shortcut(x))`` (the identity when ``shortcut`` is
None; no ReLU when ``relu`` is False). Its backward sends the output
gradient through both branches and adds their input gradients.

``BasicBlock`` is the two-convolution block of He et al. (2016) with
torchvision's member names (``conv1``, ``bn1``, ``relu``, ``conv2``, ``bn2``,
``downsample``), so its state dict keys are torchvision's.

``ResNet`` is the CIFAR-style network of the same paper (section 4.2):
a 3x3 stem, three stages of ``n`` BasicBlocks with 16, 32, 64 channels (the
2nd and 3rd halve the resolution), global average pooling and a linear
classifier: depth = 6n + 2 (``resnet8``: n = 1, ``resnet20``: n = 3). The
shortcut that changes shape is a 1x1 convolution + BatchNorm projection
(option B), as torchvision's ``downsample``. It accepts any input size
(28x28 Fashion-MNIST, 32x32 CIFAR).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np

from .. import functional as F
from . import init
from .activation import ReLU
from .container import Sequential, call_backward
from .conv import Conv2d
from .linear import Linear
from .module import Module
from .normalization import BatchNorm2d
from .pooling import AdaptiveAvgPool2d
from .shape import Flatten

__all__ = ["Residual", "BasicBlock", "ResNet", "resnet8", "resnet20"]


class Residual(Module):
    """``out = relu(body(x) + shortcut(x))``: a skip connection around ``body``.

    ``shortcut`` is None for the identity, or a module giving ``body``'s
    output shape (e.g. a 1x1 strided convolution + BatchNorm). ``relu=False``
    leaves the sum as it is. State dict keys: ``body.*`` and ``shortcut.*``.
    """

    def __init__(self, body: Module, shortcut: Optional[Module] = None, relu: bool = True):
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

    def forward(self, x) -> np.ndarray:
        x = F.as_float32(x, "input")
        y = self._body()(x)
        sc = self._shortcut()
        s = x if sc is None else sc(x)
        if y.shape != s.shape:
            raise ValueError(f"{type(self).__name__}: the body's output {y.shape} and the shortcut's output "
                             f"{s.shape} differ (input {x.shape}); use a projection shortcut")
        out = np.add(y, s, dtype=np.float32)  # a new array: the branches may have saved theirs
        if self._relu_after():
            np.maximum(out, 0, out=out)  # NaN propagates
        self.save_for_backward(out if self._relu_after() else None)
        return out

    def _relu_after(self) -> bool:
        return self.relu

    def backward(self, grad_output, input_grad: bool = True):
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
            return np.add(dx, ds, dtype=np.float32)
        dx += ds  # dx is the body's fresh input gradient: reuse it
        return dx

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

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[Module] = None):
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
        return self._chain

    def _shortcut(self) -> Optional[Module]:
        return self.downsample

    def _relu_after(self) -> bool:
        return True

    def extra_repr(self) -> str:
        return ""


class ResNet(Sequential):
    """CIFAR-style ResNet (He et al. 2016, sec. 4.2) of ``depth = 6n + 2`` layers, for small images.

    conv3x3(in_channels -> width) - BN - ReLU, three stages of n BasicBlocks
    (width, 2*width, 4*width channels; stride 2 at the start of stages 2 and
    3), global average pooling, Linear(4*width -> num_classes). Convolutions
    start from He normal (fan_out) as torchvision's ResNet; ``zero_init_residual``
    zeroes each block's last BN weight (Goyal et al. 2017). Module names:
    conv1, bn1, relu, layer1..3, avgpool, flatten, fc.
    """

    def __init__(self, depth: int = 20, in_channels: int = 3, num_classes: int = 10, width: int = 16,
                 zero_init_residual: bool = False):
        depth = F._int(depth, "depth", "ResNet", 8)
        if (depth - 2) % 6:
            raise ValueError(f"ResNet: depth must be 6n + 2 (8, 14, 20, 32, ...), got {depth}")
        n = (depth - 2) // 6
        in_channels = F._int(in_channels, "in_channels", "ResNet", 1)
        num_classes = F._int(num_classes, "num_classes", "ResNet", 1)
        width = F._int(width, "width", "ResNet", 1)
        widths: Sequence[int] = (width, 2 * width, 4 * width)
        layers = OrderedDict()
        layers["conv1"] = Conv2d(in_channels, width, 3, padding=1, bias=False)
        layers["bn1"] = BatchNorm2d(width)
        layers["relu"] = ReLU()
        inplanes = width
        for i, planes in enumerate(widths):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(inplanes, planes, stride))
                inplanes = planes
            layers[f"layer{i + 1}"] = Sequential(*blocks)
        layers["avgpool"] = AdaptiveAvgPool2d(1)
        layers["flatten"] = Flatten()
        layers["fc"] = Linear(inplanes, num_classes)
        super().__init__(layers)
        self.depth = depth
        for m in self.modules():
            if isinstance(m, Conv2d):
                init.kaiming_normal_(m.weight.data, mode="fan_out")
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    m.bn2.weight.data.fill(0)


def resnet8(in_channels: int = 1, num_classes: int = 10, width: int = 16, **kwargs) -> ResNet:
    """ResNet-8 (one BasicBlock per stage, ~78k parameters at width 16)."""
    return ResNet(8, in_channels, num_classes, width, **kwargs)


def resnet20(in_channels: int = 1, num_classes: int = 10, width: int = 16, **kwargs) -> ResNet:
    """ResNet-20 (three BasicBlocks per stage, ~0.27M parameters at width 16)."""
    return ResNet(20, in_channels, num_classes, width, **kwargs)
