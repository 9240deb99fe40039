"""Weight initialisation in place, as ``torch.nn.init`` (only what the layers need).

Every draw comes from ``pycnn._random.generator()``, so ``pycnn.manual_seed``
makes model construction reproducible. Values are drawn in float64 and
stored into the float32 array.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import _random
from . import _budget

__all__ = ["calculate_fan_in", "calculate_fan_out", "uniform_", "normal_", "kaiming_uniform_", "kaiming_normal_"]


def calculate_fan_in(shape: Sequence[int]) -> int:
    """Inputs feeding one output: in_features (linear) or in_channels/groups * kh * kw (conv)."""
    if len(shape) < 2:
        raise ValueError(f"fan in is undefined for an array of shape {tuple(shape)} (fewer than 2 dims)")
    return int(np.prod(shape[1:]))


def calculate_fan_out(shape: Sequence[int]) -> int:
    """Outputs fed by one input: out_features (linear) or out_channels * kh * kw (conv)."""
    if len(shape) < 2:
        raise ValueError(f"fan out is undefined for an array of shape {tuple(shape)} (fewer than 2 dims)")
    return int(shape[0] * np.prod(shape[2:]))


def uniform_(a: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fill ``a`` in place with U(low, high) draws; returns ``a``."""
    if _budget.initialising():  # (pycnn.load overwrites every value: see pycnn.nn._budget)
        a[...] = _random.generator().uniform(low, high, size=a.shape)
    return a


def normal_(a: np.ndarray, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """Fill ``a`` in place with N(mean, std^2) draws; returns ``a``."""
    if _budget.initialising():
        a[...] = _random.generator().normal(mean, std, size=a.shape)
    return a


def _leaky_relu_gain(negative_slope: float) -> float:
    return math.sqrt(2.0 / (1.0 + negative_slope ** 2))


def kaiming_uniform_(a: np.ndarray, negative_slope: float = 0.0) -> np.ndarray:
    """He/Kaiming uniform init for a leaky-ReLU gain (fan_in mode), as ``torch.nn.init.kaiming_uniform_``.

    bound = gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + negative_slope**2)).
    PyTorch's layer default negative_slope = sqrt(5) makes it U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """
    fan_in = calculate_fan_in(a.shape)
    bound = _leaky_relu_gain(negative_slope) * math.sqrt(3.0 / fan_in) if fan_in > 0 else 0.0
    return uniform_(a, -bound, bound)


def kaiming_normal_(a: np.ndarray, negative_slope: float = 0.0, mode: str = "fan_in") -> np.ndarray:
    """He/Kaiming normal init, as ``torch.nn.init.kaiming_normal_``: std = gain / sqrt(fan).

    gain = sqrt(2 / (1 + negative_slope**2)); ``mode`` is 'fan_in' or 'fan_out'
    (ResNet's convolutions start from He normal, fan_out).
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_normal_: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = calculate_fan_in(a.shape) if mode == "fan_in" else calculate_fan_out(a.shape)
    return normal_(a, 0.0, _leaky_relu_gain(negative_slope) / math.sqrt(fan) if fan > 0 else 0.0)


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
