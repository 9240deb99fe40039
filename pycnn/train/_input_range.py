"""The input conversion of :func:`fit`, :func:`evaluate` and :func:`predict`, and its one warning.

Inputs become float32 (the only dtype the kernels compute in): float64 is
rounded to float32, lists and tuples go through ``np.asarray`` first, and
integer arrays (uint8 images) are converted value for value, 0-255 staying
0-255. That last one is the classic silent mistake: a model trained on
floats in [0, 1] (what ``load_fashion_mnist`` gives) then sees inputs 255
times too large and predicts garbage with no error. So integer inputs with
values above 1 given to a model that was not itself trained on integer
inputs by :func:`fit` raise a ``UserWarning``, once per model, saying how to
scale them. Passing float32 (scaled or not) says "I mean these values" and
silences it.
"""
from __future__ import annotations

import warnings
import weakref
from typing import Any

import numpy as np

# Models fit() trained on integer inputs (their inputs are meant to be 0-255), and models already warned.
_TRAINED_ON_INTEGERS: "weakref.WeakSet[Any]" = weakref.WeakSet()
_WARNED: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _remember(models: "weakref.WeakSet[Any]", model: Any) -> bool:
    try:
        models.add(model)
        return True
    except TypeError:  # not weak-referenceable: nothing to remember it by
        return False


def _known(models: "weakref.WeakSet[Any]", model: Any) -> bool:
    try:
        return model in models
    except TypeError:
        return False


def as_input_array(x: Any, model: Any, training: bool = False) -> np.ndarray:
    """``x`` as an array (lists converted), after the once-per-model check of integer inputs above 1."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype.kind in "iu" and a.size:
        if training:
            _remember(_TRAINED_ON_INTEGERS, model)
        elif not _known(_TRAINED_ON_INTEGERS, model) and not _known(_WARNED, model) and int(a.max()) > 1:
            _remember(_WARNED, model)
            warnings.warn(
                f"the inputs are {a.dtype} with values up to {int(a.max())}; pycnn converts them to float32 "
                f"unscaled, but a model trained on floats in [0, 1] (as load_fashion_mnist gives) expects "
                f"x.astype(np.float32) / 255. Pass float32 inputs to silence this warning (shown once per model)",
                UserWarning, stacklevel=4)
    return a
