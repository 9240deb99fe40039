"""Weight initialisation in place, as ``torch.nn.init`` (only what the layers need).

Every draw comes from ``pycnn._random.generator()``, so ``pycnn.manual_seed``
makes model construction reproducible. Values are drawn in float64 and
stored into the float32 array.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _random

__all__ = ["uniform_", "kaiming_uniform_", "calculate_fan_in"]


def calculate_fan_in(shape) -> int:
    """Inputs feeding one output: in_features (linear) or in_channels/groups * kh * kw (conv)."""
    if len(shape) < 2:
        raise ValueError(f"fan in is undefined for an array of shape {tuple(shape)} (fewer than 2 dims)")
    return int(np.prod(shape[1:]))


def uniform_(a: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fill ``a`` in place with U(low, high) draws; returns ``a``."""
    a[...] = _random.generator().uniform(low, high, size=a.shape)
    return a


def kaiming_uniform_(a: np.ndarray, negative_slope: float = 0.0) -> np.ndarray:
    """He/Kaiming uniform init for a leaky-ReLU gain (fan_in mode), as ``torch.nn.init.kaiming_uniform_``.

    bound = gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + negative_slope**2)).
    PyTorch's layer default negative_slope = sqrt(5) makes it U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """
    fan_in = calculate_fan_in(a.shape)
    gain = math.sqrt(2.0 / (1.0 + negative_slope ** 2))
    bound = gain * math.sqrt(3.0 / fan_in) if fan_in > 0 else 0.0
    return uniform_(a, -bound, bound)
