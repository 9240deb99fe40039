"""Inverted dropout, elementwise or channel-wise, with the mask drawn from pycnn's generator."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from .. import _core
from .._checks import check_bool, check_real
from ._convert import as_float32

__all__ = ["dropout", "dropout_backward"]


def dropout_probability(p: object, op: str = "dropout") -> float:
    """``p`` checked to be a probability in [0, 1]."""
    p = check_real(p, "p", op)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    return p


def dropout(x: ArrayLike, p: float = 0.5, training: bool = True, *, channelwise: bool = False,
            return_mask: bool = False) -> Union[np.ndarray, Tuple[np.ndarray, Optional[np.ndarray]]]:
    """Inverted dropout: zero each unit with probability ``p`` and scale the rest by 1/(1-p).

    Identity (the input itself) when ``training`` is False or ``p`` is 0.
    ``channelwise`` drops whole channels of an (N, C, ...) input (PyTorch's
    Dropout1d/Dropout2d); otherwise each element independently. The mask
    (bool, x's shape or (N, C)) is drawn from pycnn's generator, so
    ``pycnn.manual_seed`` reproduces it; ``return_mask`` also returns it for
    :func:`dropout_backward` (None when nothing was dropped).
    """
    from .. import _random

    p = dropout_probability(p)
    training = check_bool(training, "training", "dropout")
    channelwise = check_bool(channelwise, "channelwise", "dropout")
    return_mask = check_bool(return_mask, "return_mask", "dropout")
    x = as_float32(x, "input")
    if not training or p == 0.0:
        return (x, None) if return_mask else x
    if channelwise and x.ndim < 2:
        raise ValueError(f"dropout: channel-wise dropout expects input of shape (N, C, ...), got {x.shape}")
    shape = x.shape[:2] if channelwise else x.shape
    # asarray: for a 0-d input the comparison gives a NumPy bool scalar, which the kernel cannot take
    mask = np.asarray(_random.generator().random(shape, dtype=np.float32) >= np.float32(p))
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    y = _core.dropout_apply(x, mask.view(np.uint8), scale, channelwise)
    return (y, mask) if return_mask else y


def dropout_backward(grad_output: ArrayLike, mask: Optional[ArrayLike], p: float, *,
                     channelwise: bool = False) -> np.ndarray:
    """Gradient of :func:`dropout`: the same mask and scale applied to grad_output (identity for mask None).

    ``mask`` is the bool array :func:`dropout` returned; any other dtype is a
    ``TypeError`` (a float mask cast to bool would keep every non-zero unit).
    ``grad_output`` must have the shape the mask was drawn for.
    """
    op = "dropout_backward"
    p = dropout_probability(p, op)
    channelwise = check_bool(channelwise, "channelwise", op)
    dy = as_float32(grad_output, "grad_output")
    if mask is None:
        return dy
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"{op}: mask must be the bool array dropout(..., return_mask=True) returned, "
                        f"got dtype {m.dtype}")
    if not m.flags.c_contiguous:  # (not np.ascontiguousarray: it turns a 0-d mask into shape (1,))
        m = m.copy(order="C")
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return _core.dropout_bwd(dy, m.view(np.uint8), scale, channelwise)
