"""Argument checks for every public function and constructor: one module, one message style.

Each check returns the value converted to a plain Python type, or raises

* ``TypeError`` for a value of the wrong kind: ``"conv2d: stride must be an int
  or a pair of ints, got 1.5 (float)"``;
* ``ValueError`` for a value out of range: ``"Conv2d: groups must be >= 1,
  got 0"``;
* ``OverflowError`` for an int that does not fit the C++ layer's int64 sizes,
  or a finite real beyond float32's range (it would become an infinity).

``op`` names the function or class the user called; messages start with it.
``bool`` is never accepted where a number is expected (``True`` as a kernel
size is always a mistake), and only a ``bool`` is accepted where a flag is
expected: ``bool("no")`` is True, so converting would turn a mistake into
the opposite of what was meant.
"""
from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["I64_MAX", "is_int", "check_int", "check_bool", "check_pair", "check_triple", "check_single", "check_real",
           "check_shape", "check_choice", "check_samples"]

I64_MAX = 2 ** 63 - 1  # the C++ layer takes sizes as int64


def is_int(v: Any) -> bool:
    """True for Python and NumPy integers, False for bools."""
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_int(v: Any, name: str, op: str, minimum: Optional[int] = None) -> int:
    """An int (>= ``minimum`` when given) that fits in int64."""
    if not is_int(v):
        raise TypeError(f"{op}: {name} must be an int, got {v!r} ({type(v).__name__})")
    if minimum is not None and v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")
    if v > I64_MAX:
        raise OverflowError(f"{op}: {name}={v} does not fit in 64-bit integers")
    return int(v)


def check_bool(v: Any, name: str, op: str) -> bool:
    """A flag: ``True``/``False`` (or a NumPy bool), never a string, number or None."""
    if v is True or v is False:
        return v
    if isinstance(v, np.bool_):
        return bool(v)
    raise TypeError(f"{op}: {name} must be a bool (True or False), got {v!r} ({type(v).__name__})")


def check_pair(v: Any, name: str, op: str, minimum: int) -> Tuple[int, int]:
    """An int or a pair of ints, each >= ``minimum``, as a pair."""
    # Fast path for the common valid cases: modules call this on every forward.
    t = type(v)
    if t is int and minimum <= v <= I64_MAX:
        return v, v
    if t is tuple and len(v) == 2 and type(v[0]) is int and type(v[1]) is int \
            and minimum <= v[0] <= I64_MAX and minimum <= v[1] <= I64_MAX:
        return v
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
        if not all(is_int(e) for e in v):
            raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
        if any(e < minimum for e in v):
            raise ValueError(f"{op}: {name} must be >= {minimum}, got {tuple(int(e) for e in v)}")
        if any(e > I64_MAX for e in v):
            raise OverflowError(f"{op}: {name}={tuple(int(e) for e in v)} does not fit in 64-bit integers")
        return int(v[0]), int(v[1])
    if not is_int(v):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r} ({type(v).__name__})")
    n = check_int(v, name, op, minimum)
    return n, n


def check_triple(v: Any, name: str, op: str, minimum: int) -> Tuple[int, int, int]:
    """An int or a triple of ints (3-D layers: time, height, width), each >= ``minimum``, as a triple."""
    if isinstance(v, (tuple, list)):
        if len(v) != 3:
            raise ValueError(f"{op}: {name} must be an int or a triple of ints, got {v!r}")
        if not all(is_int(e) for e in v):
            raise TypeError(f"{op}: {name} must be an int or a triple of ints, got {v!r}")
        t, h, w = (check_int(e, name, op, minimum) for e in v)
        return t, h, w
    if not is_int(v):
        raise TypeError(f"{op}: {name} must be an int or a triple of ints, got {v!r} ({type(v).__name__})")
    n = check_int(v, name, op, minimum)
    return n, n, n


def check_single(v: Any, name: str, op: str, minimum: int) -> int:
    """An int or a 1-tuple (PyTorch accepts both for 1-D layers), >= ``minimum``."""
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{op}: {name} must be an int or a 1-tuple, got {v!r}")
        v = v[0]
    return check_int(v, name, op, minimum)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_real(v: Any, name: str, op: str, minimum: Optional[float] = None, *, finite: bool = False) -> float:
    """A real number (>= ``minimum`` and finite when asked) as a float.

    The kernels compute in float32, so a finite number beyond float32's range
    is an ``OverflowError``: it would silently become an infinity (a
    LeakyReLU slope of 1e186 turned every 0 into NaN). NaN and infinities
    asked for explicitly pass (unless ``finite``): they propagate as IEEE says.
    """
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{op}: {name} must be a real number, got {v!r} ({type(v).__name__})")
    try:
        f = float(v)
    except OverflowError:  # an int beyond even a double's range: refused below as beyond float32's
        f = 2 * FLOAT32_MAX
    if finite and not math.isfinite(f):
        raise ValueError(f"{op}: {name} must be a finite number, got {v}")
    if math.isfinite(f) and abs(f) > FLOAT32_MAX:
        digits = str(v)
        shown = f"{v:g}" if not isinstance(v, numbers.Integral) else digits if len(digits) < 24 else \
            f"{digits[:8]}... ({len(digits)} digits)"
        raise OverflowError(f"{op}: {name}={shown} does not fit in float32 (at most {FLOAT32_MAX:.4g}), "
                            f"which the kernels compute in")
    if minimum is not None and not f >= minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum:g}, got {v}")
    return f


def check_shape(shape: Any, name: str, op: str) -> Tuple[int, ...]:
    """A sequence of ints (an array shape) as a tuple."""
    try:
        t = tuple(shape)
    except TypeError:
        raise TypeError(f"{op}: {name} must be a sequence of ints, got {shape!r}") from None
    if not all(is_int(d) for d in t):
        raise TypeError(f"{op}: {name} must be a sequence of ints, got {shape!r}")
    return tuple(int(d) for d in t)


def check_choice(v: Any, name: str, op: str, choices: Sequence[str]) -> str:
    """One of the strings ``choices``; ``TypeError`` for a non-string."""
    listed = " or ".join(repr(c) for c in choices) if len(choices) == 2 else f"one of {tuple(choices)}"
    if not isinstance(v, str):
        raise TypeError(f"{op}: {name} must be {listed}, got {v!r}")
    if v not in choices:
        raise ValueError(f"{op}: {name} must be {listed}, got {v!r}")
    return v


def check_samples(x: ArrayLike, y: ArrayLike, what: str = "x and y", *,
                  allow_empty: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Inputs and targets as arrays with one sample per leading index, of equal length."""
    xa, ya = np.asarray(x), np.asarray(y)
    if xa.ndim == 0 or ya.ndim == 0:
        raise ValueError(f"{what} must have a leading sample dimension (got a 0-d array)")
    if len(xa) != len(ya):
        raise ValueError(f"{what} must have the same length, got {len(xa)} and {len(ya)}")
    if not allow_empty and len(xa) == 0:
        raise ValueError(f"{what} are empty (0 samples)")
    return xa, ya
