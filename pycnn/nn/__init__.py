"""Neural-network modules in PyTorch's vocabulary: layers, containers and losses.

Each module has an explicit ``forward`` and ``backward`` (no autograd tape);
see :mod:`pycnn.nn.module` for the contract.

``nn.ResNet``, ``nn.resnet8`` and ``nn.resnet20`` are aliases of
:mod:`pycnn.models.resnet`, where the networks now live; they are kept for
one release (imported on first use: ``pycnn.nn`` does not import ``pycnn.models``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import init
from .activation import ELU, GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .container import Sequential
from .conv import Conv1d, Conv2d, Conv2Plus1d, Conv3d, ConvTranspose1d, ConvTranspose2d
from .dropout import Dropout, Dropout1d, Dropout2d, Dropout3d
from .grad_mode import enable_grad
from .graph import Input, Model, SymbolicValue
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss
from .merge import Add, Concat, Multiply
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .parameter import Parameter
from .pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
)
from .registry import register_module, registered_modules
from .residual import BasicBlock, Residual
from .resize import Upsample
from .shape import Flatten

if TYPE_CHECKING:
    from ..models.resnet import ResNet, resnet8, resnet20

__all__ = [
    # the base classes and the registry of layers pycnn.load may build
    "Module", "Parameter", "register_module", "registered_modules",
    # containers
    "Sequential", "Residual", "BasicBlock",
    # graphs (Keras' functional API) and their merge layers
    "Input", "Model", "SymbolicValue", "Add", "Concat", "Multiply",
    # gradients of eval-mode models
    "enable_grad",
    # convolution, fully connected and shape layers
    "Conv1d", "Conv2d", "Conv3d", "Conv2Plus1d", "Linear", "Flatten",
    # transposed convolution and resizing
    "ConvTranspose1d", "ConvTranspose2d", "Upsample",
    # pooling
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "MaxPool3d", "AvgPool3d", "AdaptiveAvgPool3d",
    # activations
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "ELU", "GELU", "Softmax",
    # normalisation and regularisation
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
    # losses
    "CrossEntropyLoss", "MSELoss",
    # weight initialisation
    "init",
    # aliases of pycnn.models.resnet, for one release
    "ResNet", "resnet8", "resnet20",
]

_MOVED_TO_MODELS = ("ResNet", "resnet8", "resnet20")


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_MODELS:
        from ..models import resnet

        return getattr(resnet, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
