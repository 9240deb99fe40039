"""Argument checks shared by the training loop, the callbacks and inference."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Tuple

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_real(name: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum:g}, got {value}")
    return float(value)


def _check_xy(x: ArrayLike, y: ArrayLike, what: str = "x and y") -> Tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{what} must have a leading sample dimension (got a 0-d array)")
    if len(x) != len(y):
        raise ValueError(f"{what} must have the same length, got {len(x)} and {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{what} are empty (0 samples)")
    return x, y
