"""Max, average and adaptive-average pooling, forward and backward.

2-D on (N, C, H, W), 1-D on (N, C, L) (the 2-D kernels on (N, C, 1, L) views),
3-D on (N, C, D, H, W) clips (kernels of their own).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from .. import _core
from .._checks import check_bool, check_int, check_pair, check_shape, check_single, check_triple
from ._convert import as_float32, as_ncl

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d",
           "adaptive_avg_pool2d_backward", "max_pool1d", "max_pool1d_backward", "avg_pool1d",
           "avg_pool1d_backward", "adaptive_avg_pool1d", "adaptive_avg_pool1d_backward", "max_pool3d",
           "max_pool3d_backward", "avg_pool3d", "avg_pool3d_backward", "adaptive_avg_pool3d",
           "adaptive_avg_pool3d_backward"]

IntPair = Union[int, Tuple[int, int]]
IntSingle = Union[int, Tuple[int]]  # 1-D layers accept an int or a 1-tuple (PyTorch)
Pair = Tuple[int, int]
Triple = Tuple[int, int, int]
IntTriple = Union[int, Tuple[int, int, int]]
AnyOutputSize = Union[int, Tuple[Optional[int], ...]]  # checked against the dimensions at run time
OutputSize3d = Union[int, Tuple[Optional[int], Optional[int], Optional[int]]]  # None keeps the input's size
OutputSize2d = Union[int, Tuple[Optional[int], Optional[int]]]  # None keeps the input's size


def pool_args(kernel_size: IntPair, stride: Optional[IntPair], padding: IntPair, op: str) -> Tuple[Pair, Pair, Pair]:
    k = check_pair(kernel_size, "kernel_size", op, 1)
    s = k if stride is None else check_pair(stride, "stride", op, 1)
    p = check_pair(padding, "padding", op, 0)
    return k, s, p


def max_pool2d(x: ArrayLike, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0,
               return_indices: bool = False) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """Max pooling (floor mode, implicit -inf padding): x (N, C, H, W) -> (N, C, Ho, Wo).

    ``stride`` defaults to ``kernel_size``; ``padding`` is at most half the
    kernel. Within a window the first maximum in row-major order wins, and a
    NaN always wins (as PyTorch). With ``return_indices`` also returns the
    int32 indices ``h * W + w`` of the chosen elements within their (n, c)
    plane (PyTorch's convention), which :func:`max_pool2d_backward` takes.
    Without ``return_indices`` no indices are computed (the inference
    forward); the values are bitwise the same either way.
    """
    return_indices = check_bool(return_indices, "return_indices", "max_pool2d")
    x = as_float32(x, "input")
    k, s, p = pool_args(kernel_size, stride, padding, "max_pool2d")
    if not return_indices:
        return _core.max_pool2d_fwd_values(x, k, s, p)
    return _core.max_pool2d_fwd(x, k, s, p)


def _int_indices(indices: ArrayLike, op: str) -> np.ndarray:
    """The saved argmax as C-contiguous int32; other integer dtypes only when every value fits."""
    idx = np.asarray(indices)
    if idx.dtype != np.int32:
        if idx.dtype.kind not in "iu":
            raise TypeError(f"{op}: indices must be an integer array, got dtype {idx.dtype}")
        i32 = np.iinfo(np.int32)
        if idx.size and (idx.min() < i32.min or idx.max() > i32.max):
            raise ValueError(f"{op}: indices hold values outside int32 "
                             f"([{idx.min()}, {idx.max()}])")
    return np.ascontiguousarray(idx, dtype=np.int32)


def max_pool2d_backward(grad_output: ArrayLike, indices: ArrayLike, input_shape: Sequence[int], kernel_size: IntPair,
                        stride: Optional[IntPair] = None, padding: IntPair = 0, *,
                        relu_output: Optional[ArrayLike] = None) -> np.ndarray:
    """Gradient of :func:`max_pool2d`: scatters ``grad_output`` to the saved ``indices`` -> dx of ``input_shape``.

    When the pooled input was a ReLU's output, passing the pooling's output as
    ``relu_output`` also applies the ReLU's gradient (only outputs > 0 pass
    theirs), so the ReLU's own backward pass can be skipped.
    """
    dy = as_float32(grad_output, "grad_output")
    k, s, p = pool_args(kernel_size, stride, padding, "max_pool2d")
    input_shape = check_shape(input_shape, "input_shape", "max_pool2d")
    idx = _int_indices(indices, "max_pool2d")
    mask = None if relu_output is None else as_float32(relu_output, "relu_output")
    return _core.max_pool2d_bwd(dy, idx, input_shape, k, s, p, mask)


def avg_pool2d(x: ArrayLike, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0,
               count_include_pad: bool = True) -> np.ndarray:
    """Average pooling (floor mode, zero padding): x (N, C, H, W) -> (N, C, Ho, Wo).

    With ``count_include_pad`` (PyTorch's default) the divisor is the full
    window, padding included; otherwise only the in-bounds elements count.
    """
    x = as_float32(x, "input")
    k, s, p = pool_args(kernel_size, stride, padding, "avg_pool2d")
    return _core.avg_pool2d_fwd(x, k, s, p, check_bool(count_include_pad, "count_include_pad", "avg_pool2d"))


def avg_pool2d_backward(grad_output: ArrayLike, input_shape: Sequence[int], kernel_size: IntPair,
                        stride: Optional[IntPair] = None, padding: IntPair = 0,
                        count_include_pad: bool = True) -> np.ndarray:
    """Gradient of :func:`avg_pool2d` -> dx of ``input_shape`` (the input itself is not needed)."""
    dy = as_float32(grad_output, "grad_output")
    k, s, p = pool_args(kernel_size, stride, padding, "avg_pool2d")
    input_shape = check_shape(input_shape, "input_shape", "avg_pool2d")
    return _core.avg_pool2d_bwd(dy, input_shape, k, s, p,
                                check_bool(count_include_pad, "count_include_pad", "avg_pool2d"))


def _adaptive_sizes(output_size: object, input_shape: Sequence[int], dims: int, op: str) -> Tuple[int, ...]:
    """``dims`` output sizes from an int or a ``dims``-tuple whose None entries keep the input's size (PyTorch)."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != dims:
            raise ValueError(f"{op}: output_size must be an int or a tuple of {dims}, got {output_size!r}")
        out: List[int] = []
        for i, v in enumerate(output_size):
            if v is None:
                # A wrong-ndim input is reported by the C++ layer; 1 is a placeholder.
                out.append(int(input_shape[2 + i]) if len(input_shape) == 2 + dims else 1)
            else:
                out.append(check_int(v, "output_size", op, 1))
        return tuple(out)
    return (check_int(output_size, "output_size", op, 1),) * dims


def adaptive_output_size(output_size: AnyOutputSize, input_shape: Sequence[int]) -> Pair:
    """(Ho, Wo) from an int or a pair whose None entries keep the input's size (PyTorch)."""
    h, w = _adaptive_sizes(output_size, input_shape, 2, "adaptive_avg_pool2d")
    return h, w


def adaptive_avg_pool2d(x: ArrayLike, output_size: OutputSize2d) -> np.ndarray:
    """Adaptive average pooling to ``output_size``: x (N, C, H, W) -> (N, C, Ho, Wo).

    Output cell i averages input rows ``[floor(i*H/Ho), ceil((i+1)*H/Ho))``
    (likewise for columns), so non-divisible sizes give overlapping windows
    as in PyTorch. A None entry in ``output_size`` keeps that input size.
    """
    x = as_float32(x, "input")
    out = adaptive_output_size(output_size, x.shape)
    return _core.adaptive_avg_pool2d_fwd(x, out)


def adaptive_avg_pool2d_backward(grad_output: ArrayLike, input_shape: Sequence[int]) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool2d` -> dx of ``input_shape``; the output size is grad_output's."""
    dy = as_float32(grad_output, "grad_output")
    input_shape = check_shape(input_shape, "input_shape", "adaptive_avg_pool2d")
    return _core.adaptive_avg_pool2d_bwd(dy, input_shape)


def pool1d_args(kernel_size: IntSingle, stride: Optional[IntSingle], padding: IntSingle,
                op: str) -> Tuple[Pair, Pair, Pair]:
    k = check_single(kernel_size, "kernel_size", op, 1)
    s = k if stride is None else check_single(stride, "stride", op, 1)
    p = check_single(padding, "padding", op, 0)
    return (1, k), (1, s), (0, p)


def max_pool1d(x: ArrayLike, kernel_size: IntSingle, stride: Optional[IntSingle] = None, padding: IntSingle = 0,
               return_indices: bool = False) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """1-D max pooling (N, C, L) -> (N, C, Lo); indices are positions along L (PyTorch's)."""
    return_indices = check_bool(return_indices, "return_indices", "max_pool1d")
    x = as_ncl(x, "max_pool1d")
    k, s, p = pool1d_args(kernel_size, stride, padding, "max_pool1d")
    if not return_indices:
        return _core.max_pool2d_fwd_values(x[:, :, None, :], k, s, p)[:, :, 0, :]
    y, idx = _core.max_pool2d_fwd(x[:, :, None, :], k, s, p)
    return y[:, :, 0, :], idx[:, :, 0, :]


def max_pool1d_backward(grad_output: ArrayLike, indices: ArrayLike, input_shape: Sequence[int], kernel_size: IntSingle,
                        stride: Optional[IntSingle] = None, padding: IntSingle = 0, *,
                        relu_output: Optional[ArrayLike] = None) -> np.ndarray:
    """Gradient of :func:`max_pool1d` -> dx of ``input_shape`` (N, C, L)."""
    n, c, length = check_shape(input_shape, "input_shape", "max_pool1d")
    dy = as_ncl(grad_output, "max_pool1d", "grad_output")
    k, s, p = pool1d_args(kernel_size, stride, padding, "max_pool1d")
    idx = np.asarray(indices)[:, :, None, :]
    r = None if relu_output is None else as_float32(relu_output, "relu_output")[:, :, None, :]
    dx = max_pool2d_backward(dy[:, :, None, :], idx, (n, c, 1, length), k, s, p, relu_output=r)
    return dx[:, :, 0, :]


def avg_pool1d(x: ArrayLike, kernel_size: IntSingle, stride: Optional[IntSingle] = None, padding: IntSingle = 0,
               count_include_pad: bool = True) -> np.ndarray:
    """1-D average pooling (N, C, L) -> (N, C, Lo), PyTorch's divisor rules."""
    x = as_ncl(x, "avg_pool1d")
    k, s, p = pool1d_args(kernel_size, stride, padding, "avg_pool1d")
    cip = check_bool(count_include_pad, "count_include_pad", "avg_pool1d")
    return _core.avg_pool2d_fwd(x[:, :, None, :], k, s, p, cip)[:, :, 0, :]


def avg_pool1d_backward(grad_output: ArrayLike, input_shape: Sequence[int], kernel_size: IntSingle,
                        stride: Optional[IntSingle] = None, padding: IntSingle = 0,
                        count_include_pad: bool = True) -> np.ndarray:
    """Gradient of :func:`avg_pool1d` -> dx of ``input_shape`` (N, C, L)."""
    n, c, length = check_shape(input_shape, "input_shape", "avg_pool1d")
    dy = as_ncl(grad_output, "avg_pool1d", "grad_output")
    k, s, p = pool1d_args(kernel_size, stride, padding, "avg_pool1d")
    return _core.avg_pool2d_bwd(dy[:, :, None, :], (n, c, 1, length), k, s, p,
                                check_bool(count_include_pad, "count_include_pad", "avg_pool1d"))[:, :, 0, :]


def adaptive_avg_pool1d(x: ArrayLike, output_size: IntSingle) -> np.ndarray:
    """Adaptive average pooling (N, C, L) -> (N, C, output_size), PyTorch's windows."""
    x = as_ncl(x, "adaptive_avg_pool1d")
    out = check_single(output_size, "output_size", "adaptive_avg_pool1d", 1)
    return _core.adaptive_avg_pool2d_fwd(x[:, :, None, :], (1, out))[:, :, 0, :]


def adaptive_avg_pool1d_backward(grad_output: ArrayLike, input_shape: Sequence[int]) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool1d` -> dx of ``input_shape`` (N, C, L)."""
    n, c, length = check_shape(input_shape, "input_shape", "adaptive_avg_pool1d")
    dy = as_ncl(grad_output, "adaptive_avg_pool1d", "grad_output")
    return _core.adaptive_avg_pool2d_bwd(dy[:, :, None, :], (n, c, 1, length))[:, :, 0, :]


def pool3d_args(kernel_size: IntTriple, stride: Optional[IntTriple], padding: IntTriple,
                op: str) -> Tuple[Triple, Triple, Triple]:
    k = check_triple(kernel_size, "kernel_size", op, 1)
    s = k if stride is None else check_triple(stride, "stride", op, 1)
    p = check_triple(padding, "padding", op, 0)
    return k, s, p


def max_pool3d(x: ArrayLike, kernel_size: IntTriple, stride: Optional[IntTriple] = None, padding: IntTriple = 0,
               dilation: IntTriple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """3-D max pooling (implicit -inf padding): x (N, C, D, H, W) -> (N, C, Do, Ho, Wo).

    Arguments are ints or (d, h, w) triples; ``stride`` defaults to
    ``kernel_size``, ``padding`` is at most half the kernel, ``dilation``
    spaces the window's taps, and ``ceil_mode`` rounds the output size up
    (PyTorch's rule: a last window that would start in the right padding is
    dropped). Within a window the first maximum in (d, h, w) order wins and a
    NaN always wins. With ``return_indices`` also returns the int32 indices
    ``(d * H + h) * W + w`` of the chosen elements within their (n, c) volume
    (PyTorch's convention), which :func:`max_pool3d_backward` takes; without
    it none are computed (the values are bitwise the same).
    """
    op = "max_pool3d"
    return_indices = check_bool(return_indices, "return_indices", op)
    x = as_float32(x, "input")
    k, s, p = pool3d_args(kernel_size, stride, padding, op)
    d = check_triple(dilation, "dilation", op, 1)
    return _core.max_pool3d_fwd(x, k, s, p, d, check_bool(ceil_mode, "ceil_mode", op), return_indices)


def max_pool3d_backward(grad_output: ArrayLike, indices: ArrayLike, input_shape: Sequence[int],
                        kernel_size: IntTriple, stride: Optional[IntTriple] = None, padding: IntTriple = 0,
                        dilation: IntTriple = 1, ceil_mode: bool = False, *,
                        relu_output: Optional[ArrayLike] = None) -> np.ndarray:
    """Gradient of :func:`max_pool3d`: scatters ``grad_output`` to the saved ``indices`` -> dx of ``input_shape``.

    ``relu_output`` as in :func:`max_pool2d_backward` (the ReLU's gradient applied in the same pass).
    """
    op = "max_pool3d"
    dy = as_float32(grad_output, "grad_output")
    k, s, p = pool3d_args(kernel_size, stride, padding, op)
    d = check_triple(dilation, "dilation", op, 1)
    input_shape = check_shape(input_shape, "input_shape", op)
    mask = None if relu_output is None else as_float32(relu_output, "relu_output")
    return _core.max_pool3d_bwd(dy, _int_indices(indices, op), input_shape, k, s, p, d,
                                check_bool(ceil_mode, "ceil_mode", op), mask)


def avg_pool3d(x: ArrayLike, kernel_size: IntTriple, stride: Optional[IntTriple] = None, padding: IntTriple = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> np.ndarray:
    """3-D average pooling (zero padding): x (N, C, D, H, W) -> (N, C, Do, Ho, Wo), PyTorch's divisor rules.

    With ``count_include_pad`` the divisor is the window clipped to the padded
    input, otherwise only the real elements it covers; ``ceil_mode`` as in
    :func:`max_pool3d`.
    """
    op = "avg_pool3d"
    x = as_float32(x, "input")
    k, s, p = pool3d_args(kernel_size, stride, padding, op)
    return _core.avg_pool3d_fwd(x, k, s, p, check_bool(ceil_mode, "ceil_mode", op),
                                check_bool(count_include_pad, "count_include_pad", op))


def avg_pool3d_backward(grad_output: ArrayLike, input_shape: Sequence[int], kernel_size: IntTriple,
                        stride: Optional[IntTriple] = None, padding: IntTriple = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True) -> np.ndarray:
    """Gradient of :func:`avg_pool3d` -> dx of ``input_shape`` (the input itself is not needed)."""
    op = "avg_pool3d"
    dy = as_float32(grad_output, "grad_output")
    k, s, p = pool3d_args(kernel_size, stride, padding, op)
    input_shape = check_shape(input_shape, "input_shape", op)
    return _core.avg_pool3d_bwd(dy, input_shape, k, s, p, check_bool(ceil_mode, "ceil_mode", op),
                                check_bool(count_include_pad, "count_include_pad", op))


def adaptive_output_size3d(output_size: AnyOutputSize, input_shape: Sequence[int]) -> Triple:
    """(Do, Ho, Wo) from an int or a triple whose None entries keep the input's size (PyTorch)."""
    d, h, w = _adaptive_sizes(output_size, input_shape, 3, "adaptive_avg_pool3d")
    return d, h, w


def adaptive_avg_pool3d(x: ArrayLike, output_size: OutputSize3d) -> np.ndarray:
    """Adaptive average pooling to ``output_size``: x (N, C, D, H, W) -> (N, C, Do, Ho, Wo).

    Output cell i along each axis averages ``[floor(i*D/Do), ceil((i+1)*D/Do))``
    (PyTorch's windows); a None entry keeps that input size.
    """
    x = as_float32(x, "input")
    return _core.adaptive_avg_pool3d_fwd(x, adaptive_output_size3d(output_size, x.shape))


def adaptive_avg_pool3d_backward(grad_output: ArrayLike, input_shape: Sequence[int]) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool3d` -> dx of ``input_shape``; the output size is grad_output's."""
    dy = as_float32(grad_output, "grad_output")
    input_shape = check_shape(input_shape, "input_shape", "adaptive_avg_pool3d")
    return _core.adaptive_avg_pool3d_bwd(dy, input_shape)
