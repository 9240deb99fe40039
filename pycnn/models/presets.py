"""Presets: the networks the command line, the tests and the benchmarks use, by name.

One place defines each network so that the command line (``python -m pycnn
train --model NAME``), the tests and the benchmarks all train and time the
same thing. Adding a preset is one line: decorate a function that takes
``num_classes`` and returns a model with ``@preset``; it is then listed by
:func:`available_presets` and accepted by ``--model``.

Importing this module is cheap: a preset imports :mod:`pycnn.nn` when it is called.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, TypeVar

if TYPE_CHECKING:
    from ..nn import Sequential
    from .resnet import ImageNetResNet, ResNet

__all__ = ["preset", "get_preset", "available_presets", "PRESETS", "fashion_mnist_cnn", "fashion_mnist_bn_cnn",
           "resnet8"]

#: ``{name: function(num_classes=10) -> model}``, filled by :func:`preset`.
PRESETS: Dict[str, Callable[..., Sequential]] = {}

_Preset = TypeVar("_Preset", bound=Callable[..., "Sequential"])


def preset(fn: _Preset) -> _Preset:
    """Register ``fn`` as a preset under its function name (a decorator)."""
    PRESETS[fn.__name__] = fn
    return fn


def get_preset(name: str) -> Callable[..., Sequential]:
    """The preset function called ``name``; ``KeyError`` listing the presets if there is none."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown model preset {name!r}; available: {', '.join(sorted(PRESETS))}") from None


def available_presets() -> Dict[str, str]:
    """``{name: first line of its docstring}`` for every preset."""
    return {name: (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "" for name, fn in PRESETS.items()}


@preset
def fashion_mnist_cnn(num_classes: int = 10, algo: str = "auto") -> Sequential:
    """Two 3x3 convolutions (32, 64 channels) with max pooling and two linear layers; 421,642 parameters.

    The network ``python -m pycnn train`` trains on Fashion-MNIST by default:

    ``Conv2d(1, 32, 3, padding=1) - ReLU - MaxPool2d(2) -
    Conv2d(32, 64, 3, padding=1) - ReLU - MaxPool2d(2) - Flatten -
    Linear(3136, 128) - ReLU - Linear(128, num_classes)``

    Input: float32 ``(N, 1, 28, 28)``; output: logits ``(N, num_classes)``.
    Parameter names (``state_dict()`` keys) are PyTorch's for the same
    ``torch.nn.Sequential``: ``"0.weight"``, ``"0.bias"``, ``"3.weight"``,
    ``"7.weight"``, ``"9.weight"`` and so on, so weights move between the two.
    Weights are drawn from pycnn's generator: call :func:`pycnn.manual_seed`
    first for a reproducible network.

    Args:
        num_classes: number of output logits.
        algo: convolution algorithm for both conv layers (see ``nn.Conv2d``).
    """
    from .. import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, algo=algo),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, algo=algo),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


@preset
def fashion_mnist_bn_cnn(num_classes: int = 10) -> Sequential:
    """Four 3x3 convolutions with BatchNorm, two max pools, a BatchNorm/Dropout dense layer; 871,082 parameters.

    ``[Conv2d(bias=False) - BatchNorm2d - ReLU] x 2 (32 channels) - MaxPool2d(2) -
    [Conv2d - BatchNorm2d - ReLU] x 2 (64 channels) - MaxPool2d(2) - Flatten -
    Linear(3136, 256, bias=False) - BatchNorm1d - ReLU - Dropout(0.4) - Linear(256, num_classes)``,
    the "2 conv blocks + BN" family whose published Fashion-MNIST test
    accuracy is about 93.4% (``examples/fashion_mnist_bn_cnn.py`` trains it).
    """
    from .. import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.4),
        nn.Linear(256, num_classes),
    )


@preset
def resnet8(num_classes: int = 10) -> ResNet:
    """A ResNet-8 for 28x28 single-channel images (three stages of BasicBlocks, width 16); 77,754 parameters."""
    from . import resnet

    return resnet.resnet8(in_channels=1, num_classes=num_classes)


@preset
def resnet18(num_classes: int = 1000, in_channels: int = 3) -> ImageNetResNet:
    """ResNet-18 in torchvision's layout and state-dict keys (7x7 stem, four stages); 11,689,512 parameters."""
    from . import resnet

    return resnet.resnet18(num_classes=num_classes, in_channels=in_channels)
