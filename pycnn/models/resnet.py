"""He et al.'s residual networks (2016): the CIFAR-style ``ResNet`` (``resnet8``, ``resnet20``)
and the ImageNet-style ``ImageNetResNet`` in torchvision's layout (``resnet18``, ``resnet34``).

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

``ImageNetResNet`` has torchvision's module names and therefore its state
dict keys (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer2.0.downsample.0``, ``fc``), so a torchvision checkpoint loads
unchanged: ``resnet18().load_state_dict({k: v.numpy() for k, v in
torchvision_model.state_dict().items()})``.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

from .._checks import check_bool, check_int
from ..nn import (
    AdaptiveAvgPool2d,
    MaxPool2d,
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

__all__ = ["ResNet", "resnet8", "resnet20", "ImageNetResNet", "resnet18", "resnet34"]


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
        zero_init_residual = check_bool(zero_init_residual, "zero_init_residual", "ResNet")
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
        inplanes = _stages(layers, width, widths, (n, n, n), 2)
        layers["avgpool"] = AdaptiveAvgPool2d(1)
        layers["flatten"] = Flatten()
        layers["fc"] = Linear(inplanes, num_classes)
        super().__init__(layers)
        self.depth = depth
        _init_like_torchvision(self, zero_init_residual)


def _stages(layers: "OrderedDict[str, Module]", inplanes: int, widths: Sequence[int], blocks: Sequence[int],
            first_stride: int) -> int:
    """Appends ``layer1``, ``layer2``, ... of BasicBlocks; the first block of every stage after the first has
    stride ``first_stride``. Returns the channels of the last stage."""
    for i, (planes, n) in enumerate(zip(widths, blocks)):
        stage = []
        for j in range(n):
            stage.append(BasicBlock(inplanes, planes, first_stride if (i > 0 and j == 0) else 1))
            inplanes = planes
        layers[f"layer{i + 1}"] = Sequential(*stage)
    return inplanes


def _init_like_torchvision(model: Module, zero_init_residual: bool) -> None:
    """He normal (fan_out) convolutions; BatchNorm 1 and 0 (its default); optionally zero last BN of each block."""
    for m in model.modules():
        if isinstance(m, Conv2d):
            init.kaiming_normal_(m.weight.data, mode="fan_out")
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, BasicBlock):
                m.bn2.weight.data.fill(0)
                m.bn2.weight._version += 1


class ImageNetResNet(Sequential):
    """He et al.'s ImageNet ResNet with BasicBlocks, in torchvision's layout and module names.

    conv7x7(in_channels -> 64, stride 2) - BN - ReLU - MaxPool(3, 2, 1), four
    stages of BasicBlocks with 64, 128, 256, 512 channels (stride 2 at the
    start of stages 2-4), global average pooling, Linear(512 -> num_classes).
    ``blocks`` = (2, 2, 2, 2) is ResNet-18, (3, 4, 6, 3) ResNet-34. Module
    names: conv1, bn1, relu, maxpool, layer1..4, avgpool, flatten, fc
    (flatten has no parameters, so the state dict is torchvision's).
    Initialisation follows torchvision (He normal, fan_out).
    """

    def __init__(self, blocks: Sequence[int] = (2, 2, 2, 2), in_channels: int = 3, num_classes: int = 1000,
                 zero_init_residual: bool = False) -> None:
        blocks = [check_int(b, "blocks", "ImageNetResNet", 1) for b in blocks]
        zero_init_residual = check_bool(zero_init_residual, "zero_init_residual", "ImageNetResNet")
        if len(blocks) != 4:
            raise ValueError(f"ImageNetResNet: blocks must give 4 stage lengths, got {blocks}")
        in_channels = check_int(in_channels, "in_channels", "ImageNetResNet", 1)
        num_classes = check_int(num_classes, "num_classes", "ImageNetResNet", 1)
        layers: OrderedDict[str, Module] = OrderedDict()
        layers["conv1"] = Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        layers["bn1"] = BatchNorm2d(64)
        layers["relu"] = ReLU()
        layers["maxpool"] = MaxPool2d(3, stride=2, padding=1)
        channels = _stages(layers, 64, (64, 128, 256, 512), blocks, 2)
        layers["avgpool"] = AdaptiveAvgPool2d(1)
        layers["flatten"] = Flatten()
        layers["fc"] = Linear(channels, num_classes)
        super().__init__(layers)
        _init_like_torchvision(self, zero_init_residual)


def resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ImageNetResNet:
    """ResNet-18 in torchvision's layout (11.7M parameters at 1000 classes); torchvision checkpoints load."""
    return ImageNetResNet((2, 2, 2, 2), in_channels, num_classes, **kwargs)


def resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ImageNetResNet:
    """ResNet-34 in torchvision's layout (21.8M parameters at 1000 classes)."""
    return ImageNetResNet((3, 4, 6, 3), in_channels, num_classes, **kwargs)


def resnet8(in_channels: int = 1, num_classes: int = 10, width: int = 16, **kwargs: Any) -> ResNet:
    """ResNet-8 (one BasicBlock per stage, ~78k parameters at width 16)."""
    return ResNet(8, in_channels, num_classes, width, **kwargs)


def resnet20(in_channels: int = 1, num_classes: int = 10, width: int = 16, **kwargs: Any) -> ResNet:
    """ResNet-20 (three BasicBlocks per stage, ~0.27M parameters at width 16)."""
    return ResNet(20, in_channels, num_classes, width, **kwargs)
