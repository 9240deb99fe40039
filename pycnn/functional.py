"""Stateless operations: ``pycnn.functional`` (imported as ``F`` by convention).

Every op takes NumPy arrays (NCHW for images, as PyTorch), checks its
hyper-parameters, converts its inputs and calls the compiled kernels in
``pycnn._core``. Array *shapes* are checked once, by the C++ layer, which
raises ``ValueError`` with a message quoting the shapes.

Input conversion (one rule, applied by :func:`as_float32` to every array read):

* a ``float32`` C-contiguous, aligned ``ndarray`` is used as it is (no copy);
* an ``ndarray`` of any other real numeric dtype (``float16``, ``float64``,
  integers, ``bool``) or any array-like (lists, scalars, objects with
  ``__array__``) is converted once to a float32 C-contiguous aligned array
  (``np.require(x, np.float32, "CA")``; unlike ``np.ascontiguousarray`` this
  keeps 0-d input 0-d);
* a non-contiguous or negative-stride ``float32`` array is made contiguous once;
* complex, object, string, datetime (any non-real) dtypes raise ``TypeError``
  naming the argument: there is no sensible float32 value for them.

Class labels (:func:`as_labels`) must have an integer dtype (``TypeError``
otherwise, e.g. for float labels, which usually mean labels and inputs were
swapped); they are converted to contiguous ``int64``.

Arrays written in place (``sgd_step``'s parameter and momentum buffer, the
``grad_weight`` / ``grad_bias`` accumulators of the backward functions) are
never converted: a converted copy would receive the update and the caller's
array would silently keep its old value. They must be ``float32``, C-contiguous
and writeable, otherwise ``TypeError``.

Gradients follow one convention: gradients with respect to inputs (dX) are
returned as new arrays; gradients with respect to parameters (dW, db)
accumulate (``+=``) into the arrays passed as ``grad_weight`` / ``grad_bias``,
or into fresh zero arrays when none are given.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from . import _core

__all__ = [
    "as_float32", "as_labels",
    "conv2d", "conv2d_backward", "conv_padding",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward",
    "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "linear", "linear_backward",
    "cross_entropy", "cross_entropy_forward", "cross_entropy_backward",
    "mse_loss", "mse_loss_backward",
    "softmax", "sgd_step",
]

IntPair = Union[int, Tuple[int, int]]
_I64_MAX = 2 ** 63 - 1  # the C++ layer takes sizes as int64
_CONV_ALGOS = ("auto", "im2col", "direct")
_REDUCTIONS = ("mean", "sum")


# ---------------------------------------------------------------------------
# input conversion
# ---------------------------------------------------------------------------

def as_float32(x, name: str = "input") -> np.ndarray:
    """Return ``x`` as a float32 C-contiguous array following the module's conversion rule.

    ``x`` itself is returned when it is already a float32 C-contiguous aligned
    ndarray; everything else real-valued is converted once. Non-real dtypes
    raise ``TypeError`` naming ``name``.
    """
    if isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous and x.flags.aligned:
        return x
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:  # ragged lists and the like
        raise TypeError(f"{name}: cannot be converted to a float32 array ({e})") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    _check_copy_size(a, 4, name)
    return np.require(a, np.float32, "CA")


def _check_copy_size(a: np.ndarray, itemsize: int, name: str) -> None:
    # A zero-stride view (np.broadcast_to) can claim more elements than any
    # copy could hold; say so before NumPy tries to allocate it.
    if not (a.flags.c_contiguous and a.dtype.itemsize == itemsize) and math.prod(a.shape) * itemsize > _I64_MAX:
        raise OverflowError(f"{name}: an array of shape {a.shape} has more bytes than fit in 64-bit sizes")


def as_labels(labels, name: str = "labels") -> np.ndarray:
    """Return class labels as a contiguous int64 array; non-integer dtypes raise ``TypeError``.

    An empty Python sequence (which NumPy would type float64) is accepted as an
    empty label array so a zero-size batch works.
    """
    if isinstance(labels, np.ndarray) and labels.dtype == np.int64 and labels.flags.c_contiguous \
            and labels.flags.aligned:
        return labels
    was_array = isinstance(labels, np.ndarray)
    try:
        a = np.asarray(labels)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: cannot be converted to an integer array ({e})") from None
    if a.size == 0 and not was_array:
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array of class indices, got dtype {a.dtype}")
    if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: label {a.max()} does not fit in int64")
    _check_copy_size(a, 8, name)
    return np.require(a, np.int64, "CA")


def _inplace(a, name: str) -> np.ndarray:
    """An array the kernel writes into: must already be float32, C-contiguous and writeable."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a float32 ndarray (written in place), got {type(a).__name__}")
    if a.dtype != np.float32 or not (a.flags.c_contiguous and a.flags.aligned):
        raise TypeError(f"{name}: expected a float32 C-contiguous array (it is written in place, so it "
                        f"cannot be converted), got dtype {a.dtype}"
                        f"{'' if a.flags.c_contiguous else ', non-contiguous'}")
    if not a.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return a


# ---------------------------------------------------------------------------
# hyper-parameter checks
# ---------------------------------------------------------------------------

def _is_int(v) -> bool:
    # bool is an int subclass, but True as a kernel size is always a mistake.
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def _int(v, name: str, op: str, minimum: int) -> int:
    if not _is_int(v):
        raise TypeError(f"{op}: {name} must be an int, got {v!r} ({type(v).__name__})")
    if v < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {what}, got {v}")
    if v > _I64_MAX:
        raise OverflowError(f"{op}: {name}={v} does not fit in 64-bit integers")
    return int(v)


def _pair(v, name: str, op: str, minimum: int) -> Tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a tuple."""
    # Fast path for the common valid cases: modules call this on every forward.
    t = type(v)
    if t is int and minimum <= v <= _I64_MAX:
        return v, v
    if t is tuple and len(v) == 2 and type(v[0]) is int and type(v[1]) is int \
            and minimum <= v[0] <= _I64_MAX and minimum <= v[1] <= _I64_MAX:
        return v
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
        if not all(_is_int(e) for e in v):
            raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
        if any(e < minimum for e in v):
            what = "positive" if minimum == 1 else "non-negative"
            raise ValueError(f"{op}: {name} must be {what}, got {tuple(int(e) for e in v)}")
        if any(e > _I64_MAX for e in v):
            raise OverflowError(f"{op}: {name}={tuple(int(e) for e in v)} does not fit in 64-bit integers")
        return int(v[0]), int(v[1])
    if not _is_int(v):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r} ({type(v).__name__})")
    n = _int(v, name, op, minimum)
    return n, n


def _real(v, name: str, op: str) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{op}: {name} must be a real number, got {v!r} ({type(v).__name__})")
    return float(v)


def _shape(shape, name: str, op: str) -> Tuple[int, ...]:
    try:
        t = tuple(shape)
    except TypeError:
        raise TypeError(f"{op}: {name} must be a sequence of ints, got {shape!r}") from None
    if not all(_is_int(d) for d in t):
        raise TypeError(f"{op}: {name} must be a sequence of ints, got {shape!r}")
    return tuple(int(d) for d in t)


def _reduction(reduction, op: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean' or 'sum', got {reduction!r}")
    return reduction


def conv_padding(padding, kernel_size: Tuple[int, int], stride: Tuple[int, int],
                 dilation: Tuple[int, int], op: str = "conv2d") -> Tuple[int, int, int, int]:
    """Resolve a conv ``padding`` (int | pair | 'same' | 'valid') to ``(top, bottom, left, right)``.

    'same' follows PyTorch: it needs stride 1; the total padding along an axis
    is ``dilation * (kernel - 1)``, ``total // 2`` goes before and the odd
    remainder after.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of 'valid', 'same'")
        if stride != (1, 1):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                             f"(stride={stride})")
        pads = []
        for k, d in zip(kernel_size, dilation):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    ph, pw = _pair(padding, "padding", op, 0)
    return (ph, ph, pw, pw)


def _conv_args(weight: np.ndarray, stride, padding, dilation, groups, algo, op="conv2d"):
    stride = _pair(stride, "stride", op, 1)
    dilation = _pair(dilation, "dilation", op, 1)
    groups = _int(groups, "groups", op, 1)
    if not isinstance(algo, str):
        raise TypeError(f"{op}: algo must be one of {_CONV_ALGOS}, got {algo!r}")
    if algo not in _CONV_ALGOS:
        raise ValueError(f"{op}: algo must be one of {_CONV_ALGOS}, got {algo!r}")
    # A malformed weight gets its ValueError (with shapes) from the C++ layer;
    # its kernel size only matters here for padding='same'.
    kernel = tuple(weight.shape[2:]) if weight.ndim == 4 else (1, 1)
    pads = conv_padding(padding, kernel, stride, dilation, op)
    return stride, pads, dilation, groups, algo


# ---------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------

def conv2d(x, weight, bias=None, stride: IntPair = 1, padding: Union[IntPair, str] = 0,
           dilation: IntPair = 1, groups: int = 1, algo: str = "auto", *, relu: bool = False) -> np.ndarray:
    """2-D convolution (cross-correlation, as PyTorch): x (N, C, H, W) -> (N, K, Ho, Wo).

    ``weight`` is (K, C/groups, kh, kw), ``bias`` (K,) or None. ``padding`` is
    an int, a pair, 'valid' or 'same' (stride 1 only). ``algo`` forces the
    kernel: 'im2col' (GEMM), 'direct', or 'auto' (chosen by shape).
    ``relu=True`` returns ``relu(conv2d(...))`` computed in the same pass
    (bitwise equal to the two ops in sequence, one memory pass fewer).
    """
    x = as_float32(x, "input")
    w = as_float32(weight, "weight")
    b = None if bias is None else as_float32(bias, "bias")
    stride, pads, dilation, groups, algo = _conv_args(w, stride, padding, dilation, groups, algo)
    return _core.conv2d_fwd(x, w, b, stride, pads, dilation, groups, algo, bool(relu))


def conv2d_backward(grad_output, x, weight, stride: IntPair = 1, padding: Union[IntPair, str] = 0,
                    dilation: IntPair = 1, groups: int = 1, algo: str = "auto", *,
                    grad_weight: Optional[np.ndarray] = None, grad_bias: Optional[np.ndarray] = None,
                    bias: bool = True, input_grad: bool = True, weight_grad: bool = True):
    """Gradients of :func:`conv2d` -> ``(grad_input or None, grad_weight or None, grad_bias or None)``.

    ``grad_input`` (N, C, H, W) is a new array; it is skipped (None) when
    ``input_grad`` is False, e.g. for a network's first layer. ``grad_weight``
    and ``grad_bias`` accumulate: pass the arrays to add into (float32,
    C-contiguous, written in place) or leave them None to get fresh ones
    (``grad_bias`` only when ``bias`` is True). ``weight_grad=False`` skips the
    parameter gradients altogether (frozen layers).
    """
    dy = as_float32(grad_output, "grad_output")
    x = as_float32(x, "input")
    w = as_float32(weight, "weight")
    stride, pads, dilation, groups, algo = _conv_args(w, stride, padding, dilation, groups, algo)
    if weight_grad:
        grad_weight, grad_bias = _param_grads(w, grad_weight, grad_bias, bias, "conv2d")
        _core.conv2d_bwd_weight(dy, x, grad_weight, grad_bias, stride, pads, dilation, groups, algo)
    else:
        grad_weight = grad_bias = None
    grad_input = None
    if input_grad:
        grad_input = _core.conv2d_bwd_data(dy, w, x.shape, stride, pads, dilation, groups, algo)
    return grad_input, grad_weight, grad_bias


def _param_grads(w: np.ndarray, grad_weight, grad_bias, bias: bool, op: str):
    """The dW/db accumulators: the caller's (checked, never converted) or fresh zeros."""
    if grad_weight is None:
        grad_weight = np.zeros(w.shape, dtype=np.float32)
    else:
        _inplace(grad_weight, "grad_weight")
        if grad_weight.shape != w.shape:
            raise ValueError(f"{op}: expected grad_weight of the weight's shape {w.shape}, "
                             f"got {grad_weight.shape}")
    if grad_bias is None:
        if bias:
            grad_bias = np.zeros(w.shape[:1], dtype=np.float32)
    else:
        _inplace(grad_bias, "grad_bias")
    return grad_weight, grad_bias


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------

def _pool_args(kernel_size, stride, padding, op):
    k = _pair(kernel_size, "kernel_size", op, 1)
    s = k if stride is None else _pair(stride, "stride", op, 1)
    p = _pair(padding, "padding", op, 0)
    return k, s, p


def max_pool2d(x, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0,
               return_indices: bool = False):
    """Max pooling (floor mode, implicit -inf padding): x (N, C, H, W) -> (N, C, Ho, Wo).

    ``stride`` defaults to ``kernel_size``; ``padding`` is at most half the
    kernel. Within a window the first maximum in row-major order wins, and a
    NaN always wins (as PyTorch). With ``return_indices`` also returns the
    int32 indices ``h * W + w`` of the chosen elements within their (n, c)
    plane (PyTorch's convention), which :func:`max_pool2d_backward` takes.
    """
    x = as_float32(x, "input")
    k, s, p = _pool_args(kernel_size, stride, padding, "max_pool2d")
    y, indices = _core.max_pool2d_fwd(x, k, s, p)
    return (y, indices) if return_indices else y


def max_pool2d_backward(grad_output, indices, input_shape: Sequence[int], kernel_size: IntPair,
                        stride: Optional[IntPair] = None, padding: IntPair = 0, *,
                        relu_output=None) -> np.ndarray:
    """Gradient of :func:`max_pool2d`: scatters ``grad_output`` to the saved ``indices`` -> dx of ``input_shape``.

    When the pooled input was a ReLU's output, passing the pooling's output as
    ``relu_output`` also applies the ReLU's gradient (only outputs > 0 pass
    theirs), so the ReLU's own backward pass can be skipped.
    """
    dy = as_float32(grad_output, "grad_output")
    k, s, p = _pool_args(kernel_size, stride, padding, "max_pool2d")
    input_shape = _shape(input_shape, "input_shape", "max_pool2d")
    idx = np.asarray(indices)
    if idx.dtype != np.int32:
        if idx.dtype.kind not in "iu":
            raise TypeError(f"max_pool2d: indices must be an integer array, got dtype {idx.dtype}")
        i32 = np.iinfo(np.int32)
        if idx.size and (idx.min() < i32.min or idx.max() > i32.max):
            raise ValueError(f"max_pool2d: indices hold values outside int32 "
                             f"([{idx.min()}, {idx.max()}])")
    idx = np.ascontiguousarray(idx, dtype=np.int32)
    mask = None if relu_output is None else as_float32(relu_output, "relu_output")
    return _core.max_pool2d_bwd(dy, idx, input_shape, k, s, p, mask)


def avg_pool2d(x, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0,
               count_include_pad: bool = True) -> np.ndarray:
    """Average pooling (floor mode, zero padding): x (N, C, H, W) -> (N, C, Ho, Wo).

    With ``count_include_pad`` (PyTorch's default) the divisor is the full
    window, padding included; otherwise only the in-bounds elements count.
    """
    x = as_float32(x, "input")
    k, s, p = _pool_args(kernel_size, stride, padding, "avg_pool2d")
    return _core.avg_pool2d_fwd(x, k, s, p, bool(count_include_pad))


def avg_pool2d_backward(grad_output, input_shape: Sequence[int], kernel_size: IntPair,
                        stride: Optional[IntPair] = None, padding: IntPair = 0,
                        count_include_pad: bool = True) -> np.ndarray:
    """Gradient of :func:`avg_pool2d` -> dx of ``input_shape`` (the input itself is not needed)."""
    dy = as_float32(grad_output, "grad_output")
    k, s, p = _pool_args(kernel_size, stride, padding, "avg_pool2d")
    input_shape = _shape(input_shape, "input_shape", "avg_pool2d")
    return _core.avg_pool2d_bwd(dy, input_shape, k, s, p, bool(count_include_pad))


def _adaptive_output_size(output_size, input_shape) -> Tuple[int, int]:
    """(Ho, Wo) from an int or a pair whose None entries keep the input's size (PyTorch)."""
    op = "adaptive_avg_pool2d"
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
        out = []
        for i, v in enumerate(output_size):
            if v is None:
                # A wrong-ndim input is reported by the C++ layer; 1 is a placeholder.
                out.append(int(input_shape[2 + i]) if len(input_shape) == 4 else 1)
            else:
                out.append(_int(v, "output_size", op, 1))
        return out[0], out[1]
    return _pair(output_size, "output_size", op, 1)


def adaptive_avg_pool2d(x, output_size: Union[int, Tuple[Optional[int], Optional[int]]]) -> np.ndarray:
    """Adaptive average pooling to ``output_size``: x (N, C, H, W) -> (N, C, Ho, Wo).

    Output cell i averages input rows ``[floor(i*H/Ho), ceil((i+1)*H/Ho))``
    (likewise for columns), so non-divisible sizes give overlapping windows
    as in PyTorch. A None entry in ``output_size`` keeps that input size.
    """
    x = as_float32(x, "input")
    out = _adaptive_output_size(output_size, x.shape)
    return _core.adaptive_avg_pool2d_fwd(x, out)


def adaptive_avg_pool2d_backward(grad_output, input_shape: Sequence[int]) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool2d` -> dx of ``input_shape``; the output size is grad_output's."""
    dy = as_float32(grad_output, "grad_output")
    input_shape = _shape(input_shape, "input_shape", "adaptive_avg_pool2d")
    return _core.adaptive_avg_pool2d_bwd(dy, input_shape)


# ---------------------------------------------------------------------------
# activations (elementwise, any shape)
# ---------------------------------------------------------------------------

def relu(x) -> np.ndarray:
    """max(x, 0) elementwise (NaN propagates)."""
    return _core.activation_fwd("relu", as_float32(x, "input"), 0.0)


def relu_backward(grad_output, output) -> np.ndarray:
    """Gradient of :func:`relu` from its *output*: grad_output where output > 0, else 0."""
    return _core.activation_bwd("relu", as_float32(grad_output, "grad_output"),
                                as_float32(output, "output"), 0.0)


def leaky_relu(x, negative_slope: float = 0.01) -> np.ndarray:
    """x where x > 0, else negative_slope * x, elementwise."""
    slope = _real(negative_slope, "negative_slope", "leaky_relu")
    return _core.activation_fwd("leaky_relu", as_float32(x, "input"), slope)


def leaky_relu_backward(grad_output, x, negative_slope: float = 0.01) -> np.ndarray:
    """Gradient of :func:`leaky_relu` from its *input* x (slope used at x == 0, as PyTorch)."""
    slope = _real(negative_slope, "negative_slope", "leaky_relu")
    return _core.activation_bwd("leaky_relu", as_float32(grad_output, "grad_output"),
                                as_float32(x, "input"), slope)


def sigmoid(x) -> np.ndarray:
    """1 / (1 + exp(-x)) elementwise."""
    return _core.activation_fwd("sigmoid", as_float32(x, "input"), 0.0)


def sigmoid_backward(grad_output, output) -> np.ndarray:
    """Gradient of :func:`sigmoid` from its *output* y: grad_output * y * (1 - y)."""
    return _core.activation_bwd("sigmoid", as_float32(grad_output, "grad_output"),
                                as_float32(output, "output"), 0.0)


def tanh(x) -> np.ndarray:
    """Hyperbolic tangent elementwise."""
    return _core.activation_fwd("tanh", as_float32(x, "input"), 0.0)


def tanh_backward(grad_output, output) -> np.ndarray:
    """Gradient of :func:`tanh` from its *output* y: grad_output * (1 - y**2)."""
    return _core.activation_bwd("tanh", as_float32(grad_output, "grad_output"),
                                as_float32(output, "output"), 0.0)


def softmax(x, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` in NumPy (float32), shifted by the maximum so large logits do not overflow."""
    x = as_float32(x, "input")
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------

def linear(x, weight, bias=None, *, relu: bool = False) -> np.ndarray:
    """x (N, in) @ weight (out, in).T + bias (out,) -> (N, out); ``relu=True`` fuses a ReLU."""
    x = as_float32(x, "input")
    w = as_float32(weight, "weight")
    b = None if bias is None else as_float32(bias, "bias")
    return _core.linear_fwd(x, w, b, bool(relu))


def linear_backward(grad_output, x, weight, *, grad_weight: Optional[np.ndarray] = None,
                    grad_bias: Optional[np.ndarray] = None, bias: bool = True, input_grad: bool = True,
                    weight_grad: bool = True):
    """Gradients of :func:`linear` -> ``(grad_input or None, grad_weight or None, grad_bias or None)``.

    Same conventions as :func:`conv2d_backward`: grad_input is new (skipped
    when ``input_grad`` is False); grad_weight / grad_bias accumulate into the
    given float32 arrays or fresh zeros (grad_bias only when ``bias``).
    """
    dy = as_float32(grad_output, "grad_output")
    x = as_float32(x, "input")
    w = as_float32(weight, "weight")
    if weight_grad:
        grad_weight, grad_bias = _param_grads(w, grad_weight, grad_bias, bias, "linear")
        _core.linear_bwd_weight(dy, x, grad_weight, grad_bias)
    else:
        grad_weight = grad_bias = None
    grad_input = _core.linear_bwd_data(dy, w) if input_grad else None
    return grad_input, grad_weight, grad_bias


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------

def cross_entropy_forward(logits, labels) -> Tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and the softmax probabilities -> ``(loss, probs)``.

    logits (N, classes), integer labels (N,) in [0, classes). ``probs`` is what
    :func:`cross_entropy_backward` needs. The mean over an empty batch is NaN,
    as in PyTorch.
    """
    z = as_float32(logits, "logits")
    t = as_labels(labels)
    loss, probs = _core.cross_entropy_fwd(z, t)
    return float(loss), probs


def cross_entropy(logits, labels, reduction: str = "mean") -> float:
    """Softmax cross-entropy of logits (N, classes) against integer labels (N,), reduced to a float.

    ``reduction`` is 'mean' (PyTorch's default) or 'sum'. Computed with a
    log-sum-exp around each row's maximum, so logits of any finite size give
    a finite loss.
    """
    reduction = _reduction(reduction, "cross_entropy")
    loss, probs = cross_entropy_forward(logits, labels)
    if reduction == "sum":
        n = probs.shape[0]
        return loss * n if n else 0.0
    return loss


def cross_entropy_backward(probs, labels, scale: float = 1.0) -> np.ndarray:
    """Gradient of the *mean* cross-entropy w.r.t. the logits: ``scale * (probs - onehot(labels)) / N``.

    Use ``scale=N`` for the 'sum' reduction, or the upstream gradient of the loss.
    """
    p = as_float32(probs, "probs")
    t = as_labels(labels)
    return _core.cross_entropy_bwd(p, t, _real(scale, "scale", "cross_entropy"))


def mse_loss(input, target, reduction: str = "mean") -> float:
    """Squared error between input and target (same shape), averaged ('mean') or summed ('sum')."""
    reduction = _reduction(reduction, "mse_loss")
    x = as_float32(input, "input")
    t = as_float32(target, "target")
    loss = float(_core.mse_fwd(x, t))
    if reduction == "sum":
        return loss * x.size if x.size else 0.0
    return loss


def mse_loss_backward(input, target, scale: float = 1.0) -> np.ndarray:
    """Gradient of the *mean* squared error w.r.t. input: ``scale * 2 * (input - target) / input.size``.

    Use ``scale=input.size`` for the 'sum' reduction.
    """
    x = as_float32(input, "input")
    t = as_float32(target, "target")
    return _core.mse_bwd(x, t, _real(scale, "scale", "mse_loss"))


# ---------------------------------------------------------------------------
# optimiser update
# ---------------------------------------------------------------------------

def sgd_step(param: np.ndarray, grad: np.ndarray, momentum_buffer: Optional[np.ndarray], lr: float,
             momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
             nesterov: bool = False, first_step: bool = False) -> None:
    """One step of PyTorch's SGD, in place on ``param`` and ``momentum_buffer``.

    ``g = grad + weight_decay * param``; with momentum,
    ``buf = g`` on the first step (``first_step=True``, the buffer's previous
    contents are ignored) else ``momentum * buf + (1 - dampening) * g``, and
    ``g = g + momentum * buf`` (nesterov) or ``buf``; then ``param -= lr * g``.
    All three arrays must be float32 and C-contiguous (``TypeError`` otherwise:
    a converted copy would take the update instead of the caller's array).
    ``momentum_buffer`` may be None when ``momentum`` is 0.
    """
    op = "sgd_step"
    _inplace(param, "param")
    if not isinstance(grad, np.ndarray) or grad.dtype != np.float32 or not grad.flags.c_contiguous:
        raise TypeError(f"{op}: grad must be a float32 C-contiguous array, got "
                        f"{getattr(grad, 'dtype', type(grad).__name__)}")
    if momentum_buffer is not None:
        _inplace(momentum_buffer, "momentum_buffer")
    _core.sgd_step(param, grad, momentum_buffer, _real(lr, "lr", op), _real(momentum, "momentum", op),
                   _real(dampening, "dampening", op), _real(weight_decay, "weight_decay", op),
                   bool(nesterov), bool(first_step))


# ===========================================================================
# Breadth ops: batch normalisation, ELU/GELU, dropout, Adam, and the 1-D
# (time-series) convolution and pooling built on the 2-D kernels.
# ===========================================================================

__all__ += [
    "batch_norm", "batch_norm_forward", "batch_norm_backward",
    "elu", "elu_backward", "gelu", "gelu_backward",
    "dropout", "dropout_backward",
    "adam_step",
    "conv1d", "conv1d_backward",
    "max_pool1d", "max_pool1d_backward", "avg_pool1d", "avg_pool1d_backward",
    "adaptive_avg_pool1d", "adaptive_avg_pool1d_backward",
    "softmax_c", "softmax_backward",
]


def _optional_f32(a, name):
    return None if a is None else as_float32(a, name)


def _running_stats(running_mean, running_var, op: str):
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: running_mean and running_var must both be given or both be None")
    if running_mean is not None:
        _inplace(running_mean, "running_mean")
        _inplace(running_var, "running_var")
    return running_mean, running_var


def batch_norm_forward(x, running_mean, running_var, weight=None, bias=None, training: bool = False,
                       momentum: float = 0.1, eps: float = 1e-5, *, relu: bool = False):
    """Batch normalisation -> ``(y, save_mean, save_rstd)``; the saved arrays are None in eval.

    ``x`` is (N, C), (N, C, L) or (N, C, H, W); statistics are per channel C
    over every other axis. In training the batch statistics normalise and,
    when ``running_mean``/``running_var`` are given (float32 (C,) arrays,
    updated in place), ``r = (1 - momentum) * r + momentum * stat`` with the
    *unbiased* batch variance, as PyTorch. ``momentum=None`` is not handled
    here (the module passes the cumulative-average factor). In eval the
    running statistics normalise. ``weight``/``bias`` (C,) are the affine
    scale and shift (None: 1 and 0). ``relu=True`` applies a ReLU in the same
    output pass. ``save_mean`` and ``save_rstd = 1/sqrt(var + eps)`` are what
    :func:`batch_norm_backward` needs.
    """
    op = "batch_norm"
    x = as_float32(x, "input")
    w, b = _optional_f32(weight, "weight"), _optional_f32(bias, "bias")
    eps = _real(eps, "eps", op)
    if not eps > 0:
        raise ValueError(f"{op}: eps must be positive, got {eps}")
    if training:
        rm, rv = _running_stats(running_mean, running_var, op)
        momentum = _real(momentum, "momentum", op)
        return _core.batch_norm_fwd_train(x, w, b, rm, rv, eps, momentum, bool(relu))
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: running_mean and running_var are required when training=False")
    rm, rv = as_float32(running_mean, "running_mean"), as_float32(running_var, "running_var")
    return _core.batch_norm_fwd_eval(x, w, b, rm, rv, eps, bool(relu)), None, None


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5, *, relu: bool = False) -> np.ndarray:
    """PyTorch's ``F.batch_norm``: the output of :func:`batch_norm_forward` only."""
    return batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps,
                              relu=relu)[0]


def batch_norm_backward(grad_output, x, save_mean, save_rstd, weight=None, *,
                        grad_weight: Optional[np.ndarray] = None, grad_bias: Optional[np.ndarray] = None,
                        affine: Optional[bool] = None, input_grad: bool = True):
    """Gradients of training-mode :func:`batch_norm_forward` -> ``(grad_input, grad_weight, grad_bias)``.

    ``grad_input`` is new (None when ``input_grad`` is False). ``grad_weight``
    and ``grad_bias`` accumulate into the given float32 (C,) arrays, or into
    fresh zeros when ``affine`` (default: ``weight is not None``) and none are
    given; without affine they are None.
    """
    dy = as_float32(grad_output, "grad_output")
    x = as_float32(x, "input")
    w = _optional_f32(weight, "weight")
    m, r = as_float32(save_mean, "save_mean"), as_float32(save_rstd, "save_rstd")
    if affine is None:
        affine = w is not None
    if affine:
        C = m.shape[0] if m.ndim == 1 else 0
        if grad_weight is None:
            grad_weight = np.zeros((C,), np.float32)
        else:
            _inplace(grad_weight, "grad_weight")
        if grad_bias is None:
            grad_bias = np.zeros((C,), np.float32)
        else:
            _inplace(grad_bias, "grad_bias")
    dx = _core.batch_norm_bwd(dy, x, m, r, w, grad_weight, grad_bias, bool(input_grad))
    return dx, grad_weight, grad_bias


def elu(x, alpha: float = 1.0) -> np.ndarray:
    """x if x > 0 else alpha * (exp(x) - 1), elementwise (PyTorch's ``F.elu``)."""
    return _core.activation_fwd("elu", as_float32(x, "input"), _real(alpha, "alpha", "elu"))


def elu_backward(grad_output, x, alpha: float = 1.0) -> np.ndarray:
    """Gradient of :func:`elu` from its *input* x: grad where x > 0, else grad * alpha * exp(x)."""
    return _core.activation_bwd("elu", as_float32(grad_output, "grad_output"), as_float32(x, "input"),
                                 _real(alpha, "alpha", "elu"))


def _gelu_approx(approximate) -> float:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 1.0 if approximate == "tanh" else 0.0


def gelu(x, approximate: str = "none") -> np.ndarray:
    """GELU: x * Phi(x) with the exact erf form ('none', PyTorch's default) or the 'tanh' approximation."""
    return _core.activation_fwd("gelu", as_float32(x, "input"), _gelu_approx(approximate))


def gelu_backward(grad_output, x, approximate: str = "none") -> np.ndarray:
    """Gradient of :func:`gelu` from its *input* x."""
    return _core.activation_bwd("gelu", as_float32(grad_output, "grad_output"), as_float32(x, "input"),
                                 _gelu_approx(approximate))


def softmax_c(x, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` by the C++ kernel (max-shifted, double sums); what ``nn.Softmax`` runs.

    Same values as :func:`softmax` (the NumPy version kept for its existing
    callers) to float32 rounding.
    """
    if not _is_int(axis):
        raise TypeError(f"softmax: axis must be an int, got {axis!r}")
    return _core.softmax_fwd(as_float32(x, "input"), int(axis))


def softmax_backward(grad_output, output, axis: int = -1) -> np.ndarray:
    """Gradient of softmax from its output y: ``y * (dy - sum(dy * y, axis))`` (C++ kernel)."""
    if not _is_int(axis):
        raise TypeError(f"softmax: axis must be an int, got {axis!r}")
    return _core.softmax_bwd(as_float32(grad_output, "grad_output"), as_float32(output, "output"), int(axis))


def _dropout_p(p, op: str = "dropout") -> float:
    p = _real(p, "p", op)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    return p


def dropout(x, p: float = 0.5, training: bool = True, *, channelwise: bool = False,
            return_mask: bool = False):
    """Inverted dropout: zero each unit with probability ``p`` and scale the rest by 1/(1-p).

    Identity (the input itself) when ``training`` is False or ``p`` is 0.
    ``channelwise`` drops whole channels of an (N, C, ...) input (PyTorch's
    Dropout1d/Dropout2d); otherwise each element independently. The mask
    (bool, x's shape or (N, C)) is drawn from pycnn's generator, so
    ``pycnn.manual_seed`` reproduces it; ``return_mask`` also returns it for
    :func:`dropout_backward` (None when nothing was dropped).
    """
    from . import _random

    p = _dropout_p(p)
    x = as_float32(x, "input")
    if not training or p == 0.0:
        return (x, None) if return_mask else x
    if channelwise and x.ndim < 2:
        raise ValueError(f"dropout: channel-wise dropout expects input of shape (N, C, ...), got {x.shape}")
    shape = x.shape[:2] if channelwise else x.shape
    mask = _random.generator().random(shape, dtype=np.float32) >= np.float32(p)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    y = _core.dropout_apply(x, mask.view(np.uint8), scale, bool(channelwise))
    return (y, mask) if return_mask else y


def dropout_backward(grad_output, mask, p: float, *, channelwise: bool = False) -> np.ndarray:
    """Gradient of :func:`dropout`: the same mask and scale applied to grad_output (identity for mask None)."""
    p = _dropout_p(p)
    dy = as_float32(grad_output, "grad_output")
    if mask is None:
        return dy
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return _core.dropout_apply(dy, mask.view(np.uint8), scale, bool(channelwise))


def adam_step(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
              max_exp_avg_sq: Optional[np.ndarray], step: int, lr: float, beta1: float = 0.9,
              beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
              decoupled_weight_decay: bool = False) -> None:
    """One step of PyTorch's Adam (or AdamW with ``decoupled_weight_decay``), in place.

    ``step`` is the step number *after* incrementing (1 on the first call).
    Adam adds ``weight_decay * param`` to the gradient; AdamW multiplies the
    parameter by ``1 - lr * weight_decay`` first. Then
    ``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 - beta2) g^2``,
    (amsgrad: ``vmax = max(vmax, v)``, used instead of v),
    ``param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)``.
    The arrays written in place must be float32 C-contiguous (``TypeError``).
    """
    op = "adam_step"
    _inplace(param, "param")
    _inplace(exp_avg, "exp_avg")
    _inplace(exp_avg_sq, "exp_avg_sq")
    if max_exp_avg_sq is not None:
        _inplace(max_exp_avg_sq, "max_exp_avg_sq")
    if not isinstance(grad, np.ndarray) or grad.dtype != np.float32 or not grad.flags.c_contiguous:
        raise TypeError(f"{op}: grad must be a float32 C-contiguous array, got "
                        f"{getattr(grad, 'dtype', type(grad).__name__)}")
    step = _int(step, "step", op, 1)
    lr, beta1, beta2 = _real(lr, "lr", op), _real(beta1, "beta1", op), _real(beta2, "beta2", op)
    eps, wd = _real(eps, "eps", op), _real(weight_decay, "weight_decay", op)
    bc1 = 1.0 - beta1 ** step
    bc2 = 1.0 - beta2 ** step
    if decoupled_weight_decay:
        l2, decay = 0.0, 1.0 - lr * wd
    else:
        l2, decay = wd, 1.0
    # 1 - beta in double, as PyTorch: 1 - 0.999 in float32 is off by 1e-5.
    _core.adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, 1.0 - beta1, beta2, 1.0 - beta2, eps, l2,
                    decay, -lr / bc1, bc2 ** 0.5)


# --- 1-D ops: (N, C, L) is viewed as (N, C, 1, L) and run by the 2-D kernels.

def _as_ncl(x, op: str, name: str = "input") -> np.ndarray:
    x = as_float32(x, name)
    if x.ndim != 3:
        raise ValueError(f"{op}: expected {name} of shape (N, C, L), got {x.shape}")
    return x


def _single(v, name: str, op: str, minimum: int) -> int:
    """An int or a 1-tuple (PyTorch accepts both for 1-D layers)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{op}: {name} must be an int or a 1-tuple, got {v!r}")
        v = v[0]
    return _int(v, name, op, minimum)


def _check_conv1d_shapes(x: np.ndarray, w: np.ndarray, groups, op="conv1d") -> None:
    """Channel checks with 1-D shapes in the message (the 2-D kernels would quote the (N, C, 1, L) view)."""
    if w.ndim != 3:
        raise ValueError(f"{op}: expected weight of shape (K, C/groups, k), got {w.shape}")
    g = _int(groups, "groups", op, 1)
    if w.shape[0] % g:
        raise ValueError(f"{op}: groups={g} must divide the output channels; weight {w.shape}")
    if x.shape[1] != w.shape[1] * g:
        raise ValueError(f"{op}: expected input of shape (N, {w.shape[1] * g}, L) for weight {w.shape} and "
                         f"groups={g}, got {x.shape}")


def _conv1d_args(weight: np.ndarray, stride, padding, dilation, groups, op="conv1d"):
    s = _single(stride, "stride", op, 1)
    d = _single(dilation, "dilation", op, 1)
    if isinstance(padding, str):
        if padding == "same" and s != 1:
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride={s})")
        pad = padding  # resolved by the 2-D rule with kernel (1, k): no padding along the unit axis
    else:
        pad = (0, _single(padding, "padding", op, 0))
    return (1, s), pad, (1, d), groups


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1, algo: str = "auto", *,
           relu: bool = False) -> np.ndarray:
    """1-D convolution (PyTorch's ``F.conv1d``): x (N, C, L), weight (K, C/groups, k) -> (N, K, Lo).

    Runs the 2-D kernels on the (N, C, 1, L) view with a (1, k) kernel: no copy.
    ``padding`` is an int, 'valid' or 'same' (stride 1).
    """
    op = "conv1d"
    x = _as_ncl(x, op)
    w = as_float32(weight, "weight")
    _check_conv1d_shapes(x, w, groups)
    stride, pad, dilation, groups = _conv1d_args(w, stride, padding, dilation, groups)
    y = conv2d(x[:, :, None, :], w[:, :, None, :], bias, stride, pad, dilation, groups, algo, relu=relu)
    return y[:, :, 0, :]


def conv1d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups: int = 1,
                    algo: str = "auto", *, grad_weight: Optional[np.ndarray] = None,
                    grad_bias: Optional[np.ndarray] = None, bias: bool = True, input_grad: bool = True,
                    weight_grad: bool = True):
    """Gradients of :func:`conv1d` -> ``(grad_input, grad_weight, grad_bias)``; conventions of conv2d_backward."""
    op = "conv1d"
    x = _as_ncl(x, op)
    w = as_float32(weight, "weight")
    _check_conv1d_shapes(x, w, groups)
    dy = _as_ncl(grad_output, op, "grad_output")
    stride, pad, dilation, groups = _conv1d_args(w, stride, padding, dilation, groups)
    gw4 = None
    if grad_weight is not None:
        _inplace(grad_weight, "grad_weight")
        if grad_weight.shape != w.shape:
            raise ValueError(f"{op}: expected grad_weight of the weight's shape {w.shape}, got {grad_weight.shape}")
        gw4 = grad_weight[:, :, None, :]  # a view: the 2-D kernel accumulates into the caller's array
    dx, gw, gb = conv2d_backward(dy[:, :, None, :], x[:, :, None, :], w[:, :, None, :], stride, pad, dilation,
                                 groups, algo, grad_weight=gw4, grad_bias=grad_bias, bias=bias,
                                 input_grad=input_grad, weight_grad=weight_grad)
    if dx is not None:
        dx = dx[:, :, 0, :]
    if gw is not None:
        gw = grad_weight if grad_weight is not None else gw[:, :, 0, :]
    return dx, gw, gb


def _pool1d_args(kernel_size, stride, padding, op):
    k = _single(kernel_size, "kernel_size", op, 1)
    s = k if stride is None else _single(stride, "stride", op, 1)
    p = _single(padding, "padding", op, 0)
    return (1, k), (1, s), (0, p)


def max_pool1d(x, kernel_size, stride=None, padding=0, return_indices: bool = False):
    """1-D max pooling (N, C, L) -> (N, C, Lo); indices are positions along L (PyTorch's)."""
    x = _as_ncl(x, "max_pool1d")
    k, s, p = _pool1d_args(kernel_size, stride, padding, "max_pool1d")
    y, idx = _core.max_pool2d_fwd(x[:, :, None, :], k, s, p)
    y, idx = y[:, :, 0, :], idx[:, :, 0, :]
    return (y, idx) if return_indices else y


def max_pool1d_backward(grad_output, indices, input_shape, kernel_size, stride=None, padding=0, *,
                        relu_output=None) -> np.ndarray:
    """Gradient of :func:`max_pool1d` -> dx of ``input_shape`` (N, C, L)."""
    n, c, length = _shape(input_shape, "input_shape", "max_pool1d")
    dy = _as_ncl(grad_output, "max_pool1d", "grad_output")
    k, s, p = _pool1d_args(kernel_size, stride, padding, "max_pool1d")
    idx = np.asarray(indices)[:, :, None, :]
    r = None if relu_output is None else as_float32(relu_output, "relu_output")[:, :, None, :]
    dx = max_pool2d_backward(dy[:, :, None, :], idx, (n, c, 1, length), k, s, p, relu_output=r)
    return dx[:, :, 0, :]


def avg_pool1d(x, kernel_size, stride=None, padding=0, count_include_pad: bool = True) -> np.ndarray:
    """1-D average pooling (N, C, L) -> (N, C, Lo), PyTorch's divisor rules."""
    x = _as_ncl(x, "avg_pool1d")
    k, s, p = _pool1d_args(kernel_size, stride, padding, "avg_pool1d")
    return _core.avg_pool2d_fwd(x[:, :, None, :], k, s, p, bool(count_include_pad))[:, :, 0, :]


def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        count_include_pad: bool = True) -> np.ndarray:
    """Gradient of :func:`avg_pool1d` -> dx of ``input_shape`` (N, C, L)."""
    n, c, length = _shape(input_shape, "input_shape", "avg_pool1d")
    dy = _as_ncl(grad_output, "avg_pool1d", "grad_output")
    k, s, p = _pool1d_args(kernel_size, stride, padding, "avg_pool1d")
    return _core.avg_pool2d_bwd(dy[:, :, None, :], (n, c, 1, length), k, s, p,
                                bool(count_include_pad))[:, :, 0, :]


def adaptive_avg_pool1d(x, output_size) -> np.ndarray:
    """Adaptive average pooling (N, C, L) -> (N, C, output_size), PyTorch's windows."""
    x = _as_ncl(x, "adaptive_avg_pool1d")
    out = _single(output_size, "output_size", "adaptive_avg_pool1d", 1)
    return _core.adaptive_avg_pool2d_fwd(x[:, :, None, :], (1, out))[:, :, 0, :]


def adaptive_avg_pool1d_backward(grad_output, input_shape) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool1d` -> dx of ``input_shape`` (N, C, L)."""
    n, c, length = _shape(input_shape, "input_shape", "adaptive_avg_pool1d")
    dy = _as_ncl(grad_output, "adaptive_avg_pool1d", "grad_output")
    return _core.adaptive_avg_pool2d_bwd(dy[:, :, None, :], (n, c, 1, length))[:, :, 0, :]
