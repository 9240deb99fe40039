"""He et al.'s CIFAR-style ResNet (2016, section 4.2): ``ResNet``, ``resnet8``, ``resnet20``.

A 3x3 stem, three stages of ``n`` BasicBlocks with 16, 32, 64 channels (the
2nd and 3rd halve the resolution), global average pooling and a linear
classifier: depth = 6n + 2 (``resnet8``: n = 1, ``resnet20``: n = 3). The
shortcut that changes shape is a 1x1 convolution + BatchNorm projection
(option B), as torchvision's ``downsample``. It accepts any input size
(28x28 Fashion-MNIST, 32x32 CIFAR).

The building blocks are layers of :mod:`pycnn.nn` (``nn.BasicBlock``,
``nn.Residual``). ``ResNet`` is registered under the name "ResNet" for
:func:`pycnn.load`. ``nn.ResNet``, ``nn.resnet8`` and ``nn.resnet20`` are
aliases of the names here, kept for one release.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

from .._checks import check_int
from ..nn import (
    AdaptiveAvgPool2d,
    BasicBlock,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Linear,
    Module,
    ReLU,
    Sequential,
    init,
)

__all__ = ["ResNet", "resnet8", "resnet20"]


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
                 zero_init_residual: bool = False) -> None:
        depth = check_int(depth, "depth", "ResNet", 8)
        if (depth - 2) % 6:
            raise ValueError(f"ResNet: depth must be 6n + 2 (8, 14, 20, 32, ...), got {depth}")
        n = (depth - 2) // 6
        in_channels = check_int(in_channels, "in_channels", "ResNet", 1)
        num_classes = check_int(num_classes, "num_classes", "ResNet", 1)
        width = check_int(width, "width", "ResNet", 1)
        widths: Sequence[int] = (width, 2 * width, 4 * width)
        layers: OrderedDict[str, Module] = OrderedDict()
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


def resnet8(in_channels: int = 1, num_classes: int = 10, width: int = 16, **kwargs: Any) -> ResNet:
    """ResNet-8 (one BasicBlock per stage, ~78k parameters at width 16)."""
    return ResNet(8, in_channels, num_classes, width, **kwargs)


def resnet20(in_channels: int = 1, num_classes: int = 10, width: int = 16, **kwargs: Any) -> ResNet:
    """ResNet-20 (three BasicBlocks per stage, ~0.27M parameters at width 16)."""
    return ResNet(20, in_channels, num_classes, width, **kwargs)
