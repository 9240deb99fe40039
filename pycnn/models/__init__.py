"""Ready-made networks: the ResNet family and the presets.

* :mod:`pycnn.models.resnet`: ``ResNet`` (He et al.'s CIFAR-style network,
  depth 6n + 2) and its builders ``resnet8``/``resnet20``, made of the
  layers of :mod:`pycnn.nn` (``BasicBlock``).
* :mod:`pycnn.models.presets`: the networks the command line, the tests and
  the benchmarks use by name (``fashion_mnist_cnn``, ``fashion_mnist_bn_cnn``,
  ``resnet8``) and their registry (``@preset``, ``get_preset``,
  ``available_presets``, ``PRESETS``).

``pycnn.models.resnet8`` is the preset (``resnet8(num_classes=10)``, one
input channel); the builder with every option is ``pycnn.models.resnet.resnet8``.
Importing this package is cheap (no NumPy): ``ResNet`` is imported on first
use and the presets import :mod:`pycnn.nn` when called.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .presets import (
    PRESETS,
    available_presets,
    fashion_mnist_bn_cnn,
    fashion_mnist_cnn,
    get_preset,
    preset,
    resnet8,
    resnet18,
)

if TYPE_CHECKING:
    from .resnet import ImageNetResNet, ResNet

__all__ = ["ResNet", "ImageNetResNet", "preset", "get_preset", "available_presets", "PRESETS", "fashion_mnist_cnn",
           "fashion_mnist_bn_cnn", "resnet8", "resnet18"]


def __getattr__(name: str) -> Any:
    if name in ("ResNet", "ImageNetResNet"):
        from . import resnet

        return getattr(resnet, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
