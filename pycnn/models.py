"""Ready-made networks.

One place defines each network so that the command line (``python -m pycnn
train``), the tests and the benchmarks all train and time the same thing.
"""
from __future__ import annotations

__all__ = ["fashion_mnist_cnn"]


def fashion_mnist_cnn(num_classes: int = 10, algo: str = "auto"):
    """The small CNN ``python -m pycnn train`` trains on Fashion-MNIST.

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
    from . import nn

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
