"""Neural-network modules in PyTorch's vocabulary: layers, containers and losses.

Each module has an explicit ``forward`` and ``backward`` (no autograd tape);
see :mod:`pycnn.nn.module` for the contract.
"""
from . import init
from .activation import LeakyReLU, ReLU, Sigmoid, Tanh
from .container import Sequential
from .conv import Conv2d
from .linear import Flatten, Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module, Parameter, register_module, registered_modules
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = [
    "Parameter", "Module", "Sequential", "register_module", "registered_modules",
    "Conv2d", "Linear", "Flatten",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
    "CrossEntropyLoss", "MSELoss",
    "init",
]
