"""Fused inference: what a network runs in eval mode, prepared once instead of on every call.

In eval mode a ``Conv2d`` does not run ``functional.conv2d`` on its raw
weights. Its weights -- with a directly following ``BatchNorm2d`` folded in
(``w' = w * gamma / sqrt(var + eps)``, ``b' = (b - mean) * gamma / sqrt(var +
eps) + beta``, computed in float64 and rounded once) -- are copied into a
``_core.PreparedConv2d``, which packs them, on first use, in the layout the
chosen algorithm reads (the im2col GEMM's panels or Winograd's transformed
filters) instead of packing them on every call. The forward then writes
each output once: bias, the residual of a ``Residual`` / ``BasicBlock``
(its shortcut), and the ReLU are applied in the convolution's output write.
So a ResNet block runs as two convolutions and nothing else: no
BatchNorm pass, no add pass, no ReLU pass.

Which sequences fuse (exact types, both modules in eval mode):

* ``Conv2d``                                   prepared weights;
* ``Conv2d, BatchNorm2d``                      BN folded (running statistics tracked);
* either followed by ``ReLU``                  ReLU in the output write;
* the last of these in a ``Residual`` body     shortcut add (+ ReLU) in the output write.

Nothing fuses inside ``nn.enable_grad()`` (gradients of an eval-mode model,
:mod:`pycnn.nn.grad_mode`): a folded BatchNorm or a ReLU applied in the
convolution's output write leaves nothing for their backward, so there each
layer runs on its own and saves what its backward needs.

The model itself is not touched: parameters, buffers and ``state_dict`` stay
as they are, and training mode runs the unfused layers. Results match the
unfused eval forward to float32 rounding (folding the BN changes the order
of operations: tests/test_fused.py bounds the difference; the ResNet-18
logits stay within 1e-4 relative of the unfused ones and of PyTorch's).

What is prepared is rebuilt when it may be stale: whenever ``train()``,
``eval()`` or ``load_state_dict`` runs on the module or an ancestor, when a
parameter's ``.data`` is assigned or an optimiser steps it (each
``Parameter`` counts its versions), when a buffer is reassigned or reset
(each ``Module`` counts its buffers' versions), when a
hyper-parameter read here changes (BN ``eps``, the conv's stride, padding,
dilation, groups, algo), and when the active ISA changes (the packed layout
is the ISA's; checked in C++ on every call). The thread count does not
change the packed weights. Writing into a parameter's array in place
yourself (``conv.weight.data[...] = v``) cannot be seen: call ``.eval()``
again afterwards, which discards what was prepared.
"""
from __future__ import annotations

import contextlib
import threading
import weakref
from typing import TYPE_CHECKING, Any, Iterator, Optional, Tuple, cast

import numpy as np

from .. import _core
from .. import functional as F
from . import grad_mode

if TYPE_CHECKING:
    from .conv import Conv2d
    from .module import Module
    from .normalization import BatchNorm2d

__all__ = ["fold_batch_norm", "fused_conv2d", "can_fold", "discard_prepared", "disabled", "enabled", "output_shape"]

# conv -> (key, prepared): weak, so a dropped model frees its packed weights.
_PREPARED: "weakref.WeakKeyDictionary[Any, Tuple[Tuple[Any, ...], Any]]" = weakref.WeakKeyDictionary()


_local = threading.local()


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within this block (on this thread), eval mode runs every layer unfused, on its raw weights.

    ``pycnn.summary`` uses it to see each layer's own output; tests use it as the reference.
    """
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1


def enabled() -> bool:
    """Whether eval-mode forwards fuse here (False inside :func:`disabled`, and inside ``nn.enable_grad()``,
    where eval-mode layers save what backward needs and a folded layer would have nothing to save)."""
    return not getattr(_local, "depth", 0) and not grad_mode.enabled()


_batch_norm_2d: Any = None  # nn.BatchNorm2d, imported on first use (normalization imports module, which imports us)


def can_fold(conv: Conv2d, bn: Any) -> bool:
    """Whether ``bn`` (the module after ``conv``) folds into it in eval mode."""
    global _batch_norm_2d
    if _batch_norm_2d is None:
        from .normalization import BatchNorm2d

        _batch_norm_2d = BatchNorm2d
    return (type(bn) is _batch_norm_2d and not bn.training and not conv.training and bn.track_running_stats
            and bn.num_features == conv.out_channels)


def fold_batch_norm(weight: np.ndarray, bias: Optional[np.ndarray], bn: BatchNorm2d) -> Tuple[np.ndarray, np.ndarray]:
    """A convolution's (weight, bias) with an eval-mode BatchNorm2d folded in (float64 math, float32 out)."""
    scale = 1.0 / np.sqrt(bn.running_var.astype(np.float64) + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.data.astype(np.float64)
    shift = -bn.running_mean.astype(np.float64) * scale
    if bias is not None:
        shift = shift + bias.astype(np.float64) * scale
    if bn.bias is not None:
        shift = shift + bn.bias.data.astype(np.float64)
    w = weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    return w.astype(np.float32), shift.astype(np.float32)


def _key(conv: Conv2d, bn: Optional[BatchNorm2d]) -> Tuple[Any, ...]:
    # Objects compared by identity (held by the cache, so their ids cannot be
    # reused while it lives) and their version counters; no arrays. Parameters
    # are read from the modules' dicts: `conv.weight` reaches Module.__getattr__
    # only after a failed normal lookup, ~1 us each, 10 per conv and forward
    # (0.2 ms of a 19 ms batch-1 ResNet-18).
    params = conv._parameters
    w, b = params["weight"], params.get("bias")
    key: Tuple[Any, ...] = (w, w._version, b, None if b is None else b._version,
                            conv.stride, conv.padding, conv.dilation, conv.groups, conv.algo)
    if bn is not None:
        bn_params = bn._parameters
        bw, bb = bn_params.get("weight"), bn_params.get("bias")
        key += (bn, bn._buffer_version, bn.eps, bw, bb,
                None if bw is None else bw._version, None if bb is None else bb._version)
    return key


Pair = Tuple[int, int]


Geometry = Tuple[Pair, Pair, Pair, Tuple[int, int, int, int]]
# conv -> (its hyper-parameters, their geometry): resolving the padding costs
# more than comparing four attributes, and every eval forward of a residual
# block asks for its body's output shape (pycnn.nn.residual).
_GEOMETRY: "weakref.WeakKeyDictionary[Conv2d, Tuple[Tuple[Any, ...], Geometry]]" = weakref.WeakKeyDictionary()


def _geometry(conv: Conv2d) -> Geometry:
    """Kernel size, stride, dilation and (top, bottom, left, right) padding of a Conv2d."""
    attrs = (conv.kernel_size, conv.stride, conv.dilation, conv.padding)
    hit = _GEOMETRY.get(conv)
    if hit is not None and hit[0] == attrs:
        return hit[1]
    kernel, stride, dilation = (cast(Pair, v) for v in attrs[:3])
    geometry = kernel, stride, dilation, F.conv_padding(cast(Any, attrs[3]), kernel, stride, dilation, "Conv2d")
    _GEOMETRY[conv] = (attrs, geometry)
    return geometry


def _prepared(conv: Conv2d, bn: Optional[BatchNorm2d]) -> Any:
    key = _key(conv, bn)
    hit = _PREPARED.get(conv)
    if hit is not None and hit[0] == key:
        return hit[1]
    w = conv.weight.data
    b = None if conv.bias is None else conv.bias.data
    if bn is not None:
        w, b = fold_batch_norm(w, b, bn)
    _, stride, dilation, pads = _geometry(conv)
    prepared = _core.PreparedConv2d(w, b, stride, pads, dilation, conv.groups, conv.algo)
    _PREPARED[conv] = (key, prepared)
    return prepared


def fused_conv2d(conv: Conv2d, x: np.ndarray, bn: Optional[BatchNorm2d] = None, relu: bool = False,
                 residual: Optional[np.ndarray] = None) -> np.ndarray:
    """``relu?(bn?(conv(x)) + residual?)`` in one output write, with prepared weights (eval mode only)."""
    x = F.as_float32(x, "input")
    if residual is not None:
        residual = F.as_float32(residual, "residual")
    return _prepared(conv, bn).forward(x, residual, relu)


def output_shape(conv: Conv2d, x_shape: Tuple[int, ...]) -> Optional[Tuple[int, ...]]:
    """The shape ``conv`` gives a 4-D input of ``x_shape``; None when it gives none (the forward then raises)."""
    if len(x_shape) != 4:
        return None
    (kh, kw), (sh, sw), (dh, dw), (top, bottom, left, right) = _geometry(conv)
    ho = (x_shape[2] + top + bottom - dh * (kh - 1) - 1) // sh + 1
    wo = (x_shape[3] + left + right - dw * (kw - 1) - 1) // sw + 1
    return (x_shape[0], conv.out_channels, ho, wo) if ho > 0 and wo > 0 else None


def discard_prepared(module: Module) -> None:
    """Drop what was prepared for ``module`` and everything inside it (rebuilt on the next eval forward)."""
    for m in module.modules():
        _PREPARED.pop(m, None)
