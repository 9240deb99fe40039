"""Convolution: conv2d, conv1d (the (N, C, L) input seen as (N, C, 1, L), no copy) and conv3d (NCTHW video),
and the transposes conv_transpose2d and conv_transpose1d, forward and backward."""
from __future__ import annotations

import functools
from typing import Callable, List, Optional, Tuple, Union, cast

import numpy as np
from numpy.typing import ArrayLike

from .. import _core
from .._checks import check_bool, check_choice, check_int, check_pair, check_single, check_triple
from ._convert import Grads, as_float32, as_ncl, inplace, param_grads

__all__ = ["conv_padding", "conv2d", "conv2d_backward", "conv1d", "conv1d_backward", "conv3d_padding", "conv3d",
           "conv3d_backward", "conv_transpose2d",
           "conv_transpose2d_backward", "conv_transpose1d", "conv_transpose1d_backward",
           "conv_transpose_output_size"]

IntPair = Union[int, Tuple[int, int]]
IntSingle = Union[int, Tuple[int]]  # 1-D layers accept an int or a 1-tuple (PyTorch)
Pair = Tuple[int, int]
Pad4 = Tuple[int, int, int, int]  # (top, bottom, left, right)
IntTriple = Union[int, Tuple[int, int, int]]
Triple = Tuple[int, int, int]
Pad6 = Tuple[int, int, int, int, int, int]  # (front, back, top, bottom, left, right)
CONV_ALGOS = ("auto", "im2col", "direct", "winograd")


def conv_padding(padding: Union[IntPair, str], kernel_size: Pair, stride: Pair, dilation: Pair,
                 op: str = "conv2d") -> Pad4:
    """Resolve a conv ``padding`` (int | pair | 'same' | 'valid') to ``(top, bottom, left, right)``.

    'same' follows PyTorch: it needs stride 1; the total padding along an axis
    is ``dilation * (kernel - 1)``, ``total // 2`` goes before and the odd
    remainder after.
    """
    if isinstance(padding, str):
        return cast(Pad4, _string_padding(padding, kernel_size, stride, dilation, op))
    ph, pw = check_pair(padding, "padding", op, 0)
    return (ph, ph, pw, pw)


def _string_padding(padding: str, kernel_size: Tuple[int, ...], stride: Tuple[int, ...],
                    dilation: Tuple[int, ...], op: str) -> Tuple[int, ...]:
    """'valid' or 'same' as (begin, end) per axis, PyTorch's rule (see :func:`conv_padding`)."""
    if padding == "valid":
        return (0,) * (2 * len(kernel_size))
    if padding != "same":
        raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of 'valid', 'same'")
    if any(s != 1 for s in stride):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride={stride})")
    pads: List[int] = []
    for k, d in zip(kernel_size, dilation):
        total = d * (k - 1)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def conv3d_padding(padding: Union[IntTriple, str], kernel_size: Triple, stride: Triple, dilation: Triple,
                   op: str = "conv3d") -> Pad6:
    """Resolve a conv3d ``padding`` (int | triple | 'same' | 'valid') to ``(front, back, top, bottom, left,
    right)``; 'same' follows :func:`conv_padding`'s rule on each of the three axes."""
    if isinstance(padding, str):
        return cast(Pad6, _string_padding(padding, kernel_size, stride, dilation, op))
    pt, ph, pw = check_triple(padding, "padding", op, 0)
    return (pt, pt, ph, ph, pw, pw)


def _conv_args(weight: np.ndarray, stride: IntPair, padding: Union[IntPair, str], dilation: IntPair, groups: int,
               algo: str, op: str = "conv2d") -> Tuple[Pair, Pad4, Pair, int, str]:
    stride = check_pair(stride, "stride", op, 1)
    dilation = check_pair(dilation, "dilation", op, 1)
    groups = check_int(groups, "groups", op, 1)
    algo = check_choice(algo, "algo", op, CONV_ALGOS)
    # A malformed weight gets its ValueError (with shapes) from the C++ layer;
    # its kernel size only matters here for padding='same'.
    kernel = (weight.shape[2], weight.shape[3]) if weight.ndim == 4 else (1, 1)
    pads = conv_padding(padding, kernel, stride, dilation, op)
    return stride, pads, dilation, groups, algo


def conv2d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, stride: IntPair = 1,
           padding: Union[IntPair, str] = 0, dilation: IntPair = 1, groups: int = 1, algo: str = "auto", *,
           relu: bool = False) -> np.ndarray:
    """2-D convolution (cross-correlation, as PyTorch): x (N, C, H, W) -> (N, K, Ho, Wo).

    ``weight`` is (K, C/groups, kh, kw), ``bias`` (K,) or None. ``padding`` is
    an int, a pair, 'valid' or 'same' (stride 1 only). ``algo`` forces the
    kernel: 'im2col' (GEMM), 'direct' (no GEMM; ungrouped forwards with
    horizontal stride 1 or 2 run the channel-blocked AVX-512/AVX2 kernel),
    'winograd' (F(4x4, 3x3): 3x3, stride-1, dilation-1, ungrouped
    convolutions; im2col for any other shape), or 'auto' (chosen by shape
    and pass: docs/architecture.md).
    ``relu=True`` returns ``relu(conv2d(...))`` computed in the same pass
    (bitwise equal to the two ops in sequence, one memory pass fewer).
    """
    x = as_float32(x, "input")
    w = as_float32(weight, "weight")
    b = None if bias is None else as_float32(bias, "bias")
    stride, pads, dilation, groups, algo = _conv_args(w, stride, padding, dilation, groups, algo)
    return _core.conv2d_fwd(x, w, b, stride, pads, dilation, groups, algo, check_bool(relu, "relu", "conv2d"))


def conv2d_backward(grad_output: ArrayLike, x: ArrayLike, weight: ArrayLike, stride: IntPair = 1,
                    padding: Union[IntPair, str] = 0, dilation: IntPair = 1, groups: int = 1, algo: str = "auto", *,
                    grad_weight: Optional[np.ndarray] = None, grad_bias: Optional[np.ndarray] = None,
                    bias: bool = True, input_grad: bool = True, weight_grad: bool = True) -> Grads:
    """Gradients of :func:`conv2d` -> ``(grad_input or None, grad_weight or None, grad_bias or None)``.

    ``grad_input`` (N, C, H, W) is a new array; it is skipped (None) when
    ``input_grad`` is False, e.g. for a network's first layer. ``grad_weight``
    and ``grad_bias`` accumulate: pass the arrays to add into (float32,
    C-contiguous, written in place) or leave them None to get fresh ones
    (``grad_bias`` only when ``bias`` is True). ``weight_grad=False`` skips the
    parameter gradients altogether (frozen layers).
    """
    return _conv_backward("conv2d_backward", _core.conv2d_bwd_weight, _core.conv2d_bwd_data,
                          functools.partial(_conv_args, stride=stride, padding=padding, dilation=dilation,
                                            groups=groups, algo=algo),
                          grad_output, x, weight, grad_weight, grad_bias, bias, input_grad, weight_grad)


def _conv_backward(op: str, bwd_weight: Callable[..., None], bwd_data: Callable[..., np.ndarray],
                   resolve_args: Callable[[np.ndarray], Tuple[object, ...]], grad_output: ArrayLike, x: ArrayLike,
                   weight: ArrayLike, grad_weight: Optional[np.ndarray], grad_bias: Optional[np.ndarray], bias: bool,
                   input_grad: bool, weight_grad: bool) -> Grads:
    """conv2d_backward and conv3d_backward: the flags and arrays checked, the hyper-parameters resolved
    (``resolve_args(weight)``, as the kernels take them), dW/db accumulated, then dX."""
    bias, input_grad = check_bool(bias, "bias", op), check_bool(input_grad, "input_grad", op)
    weight_grad = check_bool(weight_grad, "weight_grad", op)
    dy = as_float32(grad_output, "grad_output")
    x = as_float32(x, "input")
    w = as_float32(weight, "weight")
    args = resolve_args(w)
    if weight_grad:
        grad_weight, grad_bias = param_grads(w, grad_weight, grad_bias, bias, op)
        bwd_weight(dy, x, grad_weight, grad_bias, *args)
    else:
        grad_weight = grad_bias = None
    grad_input = bwd_data(dy, w, x.shape, *args) if input_grad else None
    return grad_input, grad_weight, grad_bias


def _check_conv1d_shapes(x: np.ndarray, w: np.ndarray, groups: int, op: str = "conv1d") -> None:
    """Channel checks with 1-D shapes in the message (the 2-D kernels would quote the (N, C, 1, L) view)."""
    if w.ndim != 3:
        raise ValueError(f"{op}: expected weight of shape (K, C/groups, k), got {w.shape}")
    g = check_int(groups, "groups", op, 1)
    if w.shape[0] % g:
        raise ValueError(f"{op}: groups={g} must divide the output channels; weight {w.shape}")
    if x.shape[1] != w.shape[1] * g:
        raise ValueError(f"{op}: expected input of shape (N, {w.shape[1] * g}, L) for weight {w.shape} and "
                         f"groups={g}, got {x.shape}")


def _conv1d_args(weight: np.ndarray, stride: IntSingle, padding: Union[IntSingle, str], dilation: IntSingle,
                 groups: int, op: str = "conv1d") -> Tuple[Pair, Union[Pair, str], Pair, int]:
    s = check_single(stride, "stride", op, 1)
    d = check_single(dilation, "dilation", op, 1)
    pad: Union[Pair, str]
    if isinstance(padding, str):
        if padding == "same" and s != 1:
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride={s})")
        pad = padding  # resolved by the 2-D rule with kernel (1, k): no padding along the unit axis
    else:
        pad = (0, check_single(padding, "padding", op, 0))
    return (1, s), pad, (1, d), groups


def conv1d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, stride: IntSingle = 1,
           padding: Union[IntSingle, str] = 0, dilation: IntSingle = 1, groups: int = 1, algo: str = "auto", *,
           relu: bool = False) -> np.ndarray:
    """1-D convolution (PyTorch's ``F.conv1d``): x (N, C, L), weight (K, C/groups, k) -> (N, K, Lo).

    Runs the 2-D kernels on the (N, C, 1, L) view with a (1, k) kernel: no copy.
    ``padding`` is an int, 'valid' or 'same' (stride 1).
    """
    op = "conv1d"
    x = as_ncl(x, op)
    w = as_float32(weight, "weight")
    _check_conv1d_shapes(x, w, groups)
    stride2, pad2, dilation2, groups = _conv1d_args(w, stride, padding, dilation, groups)
    y = conv2d(x[:, :, None, :], w[:, :, None, :], bias, stride2, pad2, dilation2, groups, algo, relu=relu)
    return y[:, :, 0, :]


def conv1d_backward(grad_output: ArrayLike, x: ArrayLike, weight: ArrayLike, stride: IntSingle = 1,
                    padding: Union[IntSingle, str] = 0, dilation: IntSingle = 1, groups: int = 1,
                    algo: str = "auto", *, grad_weight: Optional[np.ndarray] = None,
                    grad_bias: Optional[np.ndarray] = None, bias: bool = True, input_grad: bool = True,
                    weight_grad: bool = True) -> Grads:
    """Gradients of :func:`conv1d` -> ``(grad_input, grad_weight, grad_bias)``; conventions of conv2d_backward."""
    op = "conv1d"
    x = as_ncl(x, op)
    w = as_float32(weight, "weight")
    _check_conv1d_shapes(x, w, groups)
    dy = as_ncl(grad_output, op, "grad_output")
    stride2, pad2, dilation2, groups = _conv1d_args(w, stride, padding, dilation, groups)
    return _backward_on_2d_view(functools.partial(conv2d_backward, stride=stride2, padding=pad2, dilation=dilation2,
                                                  groups=groups, algo=algo),
                                dy, x, w, grad_weight, grad_bias, bias, input_grad, weight_grad, op)


def _backward_on_2d_view(backward2d: Callable[..., Grads], dy: np.ndarray, x: np.ndarray, w: np.ndarray,
                         grad_weight: Optional[np.ndarray], grad_bias: Optional[np.ndarray], bias: bool,
                         input_grad: bool, weight_grad: bool, op: str) -> Grads:
    """A 1-D op's backward through its 2-D op on (N, C, 1, L) views, accumulating into the caller's arrays."""
    gw4 = None
    if grad_weight is not None:
        inplace(grad_weight, "grad_weight")
        if grad_weight.shape != w.shape:
            raise ValueError(f"{op}: expected grad_weight of the weight's shape {w.shape}, got {grad_weight.shape}")
        gw4 = grad_weight[:, :, None, :]  # a view: the 2-D kernel accumulates into the caller's array
    dx, gw, gb = backward2d(dy[:, :, None, :], x[:, :, None, :], w[:, :, None, :], grad_weight=gw4,
                            grad_bias=grad_bias, bias=bias, input_grad=input_grad, weight_grad=weight_grad)
    if dx is not None:
        dx = dx[:, :, 0, :]
    if gw is not None:
        gw = grad_weight if grad_weight is not None else gw[:, :, 0, :]
    return dx, gw, gb


# ---------------------------------------------------------------------------
# 3-D convolution
# ---------------------------------------------------------------------------

def _conv3d_args(weight: np.ndarray, stride: IntTriple, padding: Union[IntTriple, str], dilation: IntTriple,
                 groups: int, algo: str, op: str) -> Tuple[Triple, Pad6, Triple, int, str]:
    stride = check_triple(stride, "stride", op, 1)
    dilation = check_triple(dilation, "dilation", op, 1)
    groups = check_int(groups, "groups", op, 1)
    algo = check_choice(algo, "algo", op, CONV_ALGOS)
    if isinstance(padding, str):
        if weight.ndim != 5:  # the kernel size 'same' needs comes from the weight; C++ checks every other shape
            raise ValueError(f"{op}: expected weight of shape (K, C/groups, kt, kh, kw), got {weight.shape}")
        pads = conv3d_padding(padding, cast(Triple, weight.shape[2:]), stride, dilation, op)
    else:
        pads = conv3d_padding(padding, (1, 1, 1), stride, dilation, op)
    return stride, pads, dilation, groups, algo


def conv3d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, stride: IntTriple = 1,
           padding: Union[IntTriple, str] = 0, dilation: IntTriple = 1, groups: int = 1, algo: str = "auto", *,
           relu: bool = False) -> np.ndarray:
    """3-D convolution (PyTorch's ``F.conv3d``): x (N, C, T, H, W), weight (K, C/groups, kt, kh, kw),
    bias (K,) or None -> (N, K, To, Ho, Wo).

    ``stride``, ``dilation`` and ``padding`` are an int or a (t, h, w) triple; ``padding`` may also be
    'valid' or 'same' (stride 1; an even kernel puts the extra pad after, as PyTorch). It runs the 2-D
    kernels on each output frame's input frames stacked as channels (docs/architecture.md), so ``algo``
    picks the 2-D algorithm for the planes as in :func:`conv2d`, and ``relu=True`` fuses a ReLU.
    """
    x = as_float32(x, "input")
    w = as_float32(weight, "weight")
    b = None if bias is None else as_float32(bias, "bias")
    stride, pads, dilation, groups, algo = _conv3d_args(w, stride, padding, dilation, groups, algo, "conv3d")
    return _core.conv3d_fwd(x, w, b, stride, pads, dilation, groups, algo, check_bool(relu, "relu", "conv3d"))


def conv3d_backward(grad_output: ArrayLike, x: ArrayLike, weight: ArrayLike, stride: IntTriple = 1,
                    padding: Union[IntTriple, str] = 0, dilation: IntTriple = 1, groups: int = 1,
                    algo: str = "auto", *, grad_weight: Optional[np.ndarray] = None,
                    grad_bias: Optional[np.ndarray] = None, bias: bool = True, input_grad: bool = True,
                    weight_grad: bool = True) -> Grads:
    """Gradients of :func:`conv3d` -> ``(grad_input, grad_weight, grad_bias)``; conventions of
    :func:`conv2d_backward` (``grad_weight`` / ``grad_bias`` accumulate)."""
    op = "conv3d_backward"
    return _conv_backward(op, _core.conv3d_bwd_weight, _core.conv3d_bwd_data,
                          functools.partial(_conv3d_args, stride=stride, padding=padding, dilation=dilation,
                                            groups=groups, algo=algo, op=op),
                          grad_output, x, weight, grad_weight, grad_bias, bias, input_grad, weight_grad)


# ---------------------------------------------------------------------------
# transposed convolution
# ---------------------------------------------------------------------------

def conv_transpose_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """The output length of a transposed convolution along one axis (PyTorch's formula):
    ``(size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1``."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


def _conv_transpose_args(stride: IntPair, padding: IntPair, output_padding: IntPair, groups: int, dilation: IntPair,
                         algo: str, op: str) -> Tuple[Pair, Pair, Pair, Pair, int, str]:
    # Signs and types here; output_padding against stride and dilation, and every shape, in C++.
    stride = check_pair(stride, "stride", op, 1)
    padding = check_pair(padding, "padding", op, 0)
    output_padding = check_pair(output_padding, "output_padding", op, 0)
    dilation = check_pair(dilation, "dilation", op, 1)
    groups = check_int(groups, "groups", op, 1)
    algo = check_choice(algo, "algo", op, CONV_ALGOS)
    return stride, padding, output_padding, dilation, groups, algo


def conv_transpose2d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1, dilation: IntPair = 1,
                     algo: str = "auto") -> np.ndarray:
    """2-D transposed convolution (PyTorch's ``F.conv_transpose2d``, same argument order):
    x (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw), bias (C_out,) or None -> (N, C_out, Ho, Wo)
    with ``Ho = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1``.

    Each input pixel adds its weighted kernel to the output at ``stride`` spacing: the gradient of
    :func:`conv2d` with respect to its input, which is how it runs (conv2d's backward-data kernels, the
    bias added per channel). ``output_padding`` (smaller than stride or dilation) adds rows and columns
    at the bottom and right, picking one of the output sizes a strided convolution maps to the same
    input size. ``algo`` forces the underlying convolution's algorithm, as for :func:`conv2d`.
    """
    op = "conv_transpose2d"
    x = as_float32(x, "input")
    w = as_float32(weight, "weight")
    b = None if bias is None else as_float32(bias, "bias")
    stride, padding, output_padding, dilation, groups, algo = _conv_transpose_args(
        stride, padding, output_padding, groups, dilation, algo, op)
    return _core.conv_transpose2d_fwd(x, w, b, stride, padding, output_padding, dilation, groups, algo)


def conv_transpose2d_backward(grad_output: ArrayLike, x: ArrayLike, weight: ArrayLike, stride: IntPair = 1,
                              padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                              dilation: IntPair = 1, algo: str = "auto", *, grad_weight: Optional[np.ndarray] = None,
                              grad_bias: Optional[np.ndarray] = None, bias: bool = True, input_grad: bool = True,
                              weight_grad: bool = True) -> Grads:
    """Gradients of :func:`conv_transpose2d` -> ``(grad_input or None, grad_weight or None, grad_bias or None)``.

    The conventions of :func:`conv2d_backward`: ``grad_input`` (N, C_in, H, W) is a new array (None when
    ``input_grad`` is False); ``grad_weight`` (C_in, C_out/groups, kh, kw) and ``grad_bias`` (C_out,)
    accumulate into the arrays passed, or into fresh zeros. The input gradient is :func:`conv2d` of
    ``grad_output`` with the same weight, and the weight gradient conv2d's with the roles of x and
    ``grad_output`` swapped.
    """
    op = "conv_transpose2d_backward"
    bias, input_grad = check_bool(bias, "bias", op), check_bool(input_grad, "input_grad", op)
    weight_grad = check_bool(weight_grad, "weight_grad", op)
    dy = as_float32(grad_output, "grad_output")
    x = as_float32(x, "input")
    w = as_float32(weight, "weight")
    stride, padding, output_padding, dilation, groups, algo = _conv_transpose_args(
        stride, padding, output_padding, groups, dilation, algo, op)
    if weight_grad:
        if grad_bias is None and bias and w.ndim == 4:
            grad_bias = np.zeros(w.shape[1] * groups, dtype=np.float32)  # (C_out,), not the weight's first axis
        grad_weight, grad_bias = param_grads(w, grad_weight, grad_bias, False, "conv_transpose2d")
        _core.conv_transpose2d_bwd_weight(dy, x, grad_weight, grad_bias, stride, padding, output_padding, dilation,
                                          groups, algo)
    else:
        grad_weight = grad_bias = None
    grad_input = None
    if input_grad:
        grad_input = _core.conv_transpose2d_bwd_data(dy, w, x.shape, stride, padding, output_padding, dilation,
                                                     groups, algo)
    return grad_input, grad_weight, grad_bias


def _check_conv_transpose1d_shapes(x: np.ndarray, w: np.ndarray, op: str) -> None:
    """Shape checks with 1-D shapes in the message (the 2-D kernels would quote the (N, C, 1, L) view)."""
    if w.ndim != 3:
        raise ValueError(f"{op}: expected weight of shape (C_in, C_out/groups, k), got {w.shape}")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"{op}: expected input of shape (N, {w.shape[0]}, L) for weight {w.shape}, got {x.shape}")


def _conv_transpose1d_args(stride: IntSingle, padding: IntSingle, output_padding: IntSingle, dilation: IntSingle,
                           op: str) -> Tuple[Pair, Pair, Pair, Pair]:
    """The 2-D arguments of the (N, C, 1, L) view: the unit axis has stride, dilation 1 and no padding."""
    return ((1, check_single(stride, "stride", op, 1)), (0, check_single(padding, "padding", op, 0)),
            (0, check_single(output_padding, "output_padding", op, 0)), (1, check_single(dilation, "dilation", op, 1)))


def conv_transpose1d(x: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None, stride: IntSingle = 1,
                     padding: IntSingle = 0, output_padding: IntSingle = 0, groups: int = 1, dilation: IntSingle = 1,
                     algo: str = "auto") -> np.ndarray:
    """1-D transposed convolution (PyTorch's ``F.conv_transpose1d``): x (N, C_in, L), weight
    (C_in, C_out/groups, k) -> (N, C_out, Lo); the 2-D op on the (N, C, 1, L) view (no copy)."""
    op = "conv_transpose1d"
    x = as_ncl(x, op)
    w = as_float32(weight, "weight")
    _check_conv_transpose1d_shapes(x, w, op)
    s, p, o, d = _conv_transpose1d_args(stride, padding, output_padding, dilation, op)
    return conv_transpose2d(x[:, :, None, :], w[:, :, None, :], bias, s, p, o, groups, d, algo)[:, :, 0, :]


def conv_transpose1d_backward(grad_output: ArrayLike, x: ArrayLike, weight: ArrayLike, stride: IntSingle = 1,
                              padding: IntSingle = 0, output_padding: IntSingle = 0, groups: int = 1,
                              dilation: IntSingle = 1, algo: str = "auto", *, grad_weight: Optional[np.ndarray] = None,
                              grad_bias: Optional[np.ndarray] = None, bias: bool = True, input_grad: bool = True,
                              weight_grad: bool = True) -> Grads:
    """Gradients of :func:`conv_transpose1d`; the conventions of :func:`conv_transpose2d_backward`."""
    op = "conv_transpose1d"
    x = as_ncl(x, op)
    w = as_float32(weight, "weight")
    _check_conv_transpose1d_shapes(x, w, op)
    dy = as_ncl(grad_output, op, "grad_output")
    s, p, o, d = _conv_transpose1d_args(stride, padding, output_padding, dilation, op)
    return _backward_on_2d_view(functools.partial(conv_transpose2d_backward, stride=s, padding=p, output_padding=o,
                                                  groups=groups, dilation=d, algo=algo),
                                dy, x, w, grad_weight, grad_bias, bias, input_grad, weight_grad, op)
