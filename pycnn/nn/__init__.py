"""Neural-network modules in PyTorch's vocabulary: layers, containers and losses.

Each module has an explicit ``forward`` and ``backward`` (no autograd tape);
see :mod:`pycnn.nn.module` for the contract.
"""
from . import init
from .activation import LeakyReLU, ReLU, Sigmoid, Tanh
from .container import Sequential
from .conv import Conv2d
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module, Parameter, register_module, registered_modules
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .shape import Flatten

__all__ = [
    "Parameter", "Module", "Sequential", "register_module", "registered_modules",
    "Conv2d", "Linear", "Flatten",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
    "CrossEntropyLoss", "MSELoss",
    "init",
]

# Breadth: normalisation, dropout, more activations, 1-D layers, residual networks.
from .activation import ELU, GELU, Softmax  # noqa: E402
from .conv import Conv1d  # noqa: E402
from .dropout import Dropout, Dropout1d, Dropout2d  # noqa: E402
from .normalization import BatchNorm1d, BatchNorm2d  # noqa: E402
from .pooling import AdaptiveAvgPool1d, AvgPool1d, MaxPool1d  # noqa: E402
from .residual import BasicBlock, Residual, ResNet, resnet8, resnet20  # noqa: E402

__all__ += [
    "BatchNorm1d", "BatchNorm2d", "Dropout", "Dropout1d", "Dropout2d",
    "ELU", "GELU", "Softmax",
    "Conv1d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d",
    "Residual", "BasicBlock", "ResNet", "resnet8", "resnet20",
]
