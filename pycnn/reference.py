"""Plain NumPy forward and backward of every pycnn op.

This module is both the test oracle for the C++ kernels and the "NumPy
baseline" that users benchmark against. It therefore aims to be:

* readable -- one function per op, following PyTorch's semantics and names;
* vectorised -- no per-pixel Python loops. Convolution and pooling loop only
  over the ``kh * kw`` kernel taps: each tap is a strided view of the padded
  input with the output's shape, and the work per tap is a (batched) matmul
  or an elementwise max/sum;
* dtype-preserving -- every function computes in the dtype of its main float
  input (float32 or float64). Secondary arrays and scalar hyper-parameters
  are cast to that dtype, so float32 in means float32 arithmetic and out.

Layouts follow PyTorch: activations are NCHW, convolution weights are
``(K, C // groups, kh, kw)``, linear weights are ``(out, in)``.

Inputs are validated only as far as needed to compute; the library validates
at its boundary. Impossible geometries (an output size <= 0) raise ValueError.
All backward functions return fresh arrays (nothing is accumulated in place
into caller-owned memory) and no function modifies its inputs.
"""
from __future__ import annotations

import numbers
from typing import Any, List, Optional, Sequence, Tuple, Union, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = [
    "pair", "conv_padding", "conv_output_size",
    "conv2d", "conv2d_backward", "conv1d", "conv1d_backward", "conv3d", "conv3d_backward",
    "conv_transpose2d", "conv_transpose2d_backward", "conv_transpose1d", "conv_transpose1d_backward",
    "interpolate", "interpolate_backward",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "max_pool1d", "max_pool1d_backward",
    "avg_pool1d", "avg_pool1d_backward", "adaptive_avg_pool1d", "adaptive_avg_pool1d_backward",
    "pool3d_output_size", "max_pool3d", "max_pool3d_backward", "avg_pool3d", "avg_pool3d_backward",
    "adaptive_avg_pool3d", "adaptive_avg_pool3d_backward",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward", "elu", "elu_backward", "gelu", "gelu_backward", "softmax", "softmax_backward",
    "linear", "linear_backward",
    "cross_entropy", "cross_entropy_backward", "mse_loss", "mse_loss_backward",
    "batch_norm_train", "batch_norm_eval", "batch_norm_backward", "batch_norm_eval_backward",
    "dropout_apply",
    "sgd_step", "adam_step",
]

IntPair = Union[int, Sequence[int]]  # an int, or a pair (any 2-sequence, checked by pair())
IntSingle = Union[int, Tuple[int]]  # 1-D ops: an int or a 1-tuple
Pair = Tuple[int, int]
Pad4 = Tuple[int, int, int, int]  # (top, bottom, left, right)
Grads = Tuple[np.ndarray, np.ndarray, np.ndarray]  # (dx, dw, db)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def pair(v: IntPair) -> Pair:
    """Normalise an int or a 2-sequence to a ``(a, b)`` tuple."""
    if isinstance(v, (int, numbers.Integral)):  # int spelled out: mypy does not know int is an Integral
        return (int(v), int(v))
    t = tuple(v)
    if len(t) != 2:
        raise ValueError(f"expected an int or a pair, got {v!r}")
    return t[0], t[1]


def conv_padding(padding: Union[IntPair, str], kernel_size: IntPair, dilation: IntPair, stride: IntPair) -> Pad4:
    """Resolve ``padding`` (int | (ph, pw) | 'valid' | 'same') to ``(top, bottom, left, right)``."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
        if pair(stride) != (1, 1):
            raise ValueError("padding='same' requires stride 1")
        pads: List[int] = []
        for k, d in zip(pair(kernel_size), pair(dilation)):
            total = d * (k - 1)
            begin = total // 2
            pads += [begin, total - begin]  # the odd extra goes to bottom/right
        return cast(Pad4, tuple(pads))  # two pairs in, four pads out (mypy cannot count a list's items)
    ph, pw = pair(padding)
    return (ph, ph, pw, pw)


def conv_output_size(size: int, k: int, stride: int, pad_begin: int, pad_end: int, dilation: int) -> int:
    """Output length of a conv/pool along one axis (may be <= 0 for impossible geometry)."""
    return (size + pad_begin + pad_end - dilation * (k - 1) - 1) // stride + 1


def _float(a: ArrayLike, dtype: Optional[DTypeLike] = None) -> np.ndarray:
    """``a`` as an array of ``dtype`` (default: its own float dtype, float64 for non-floats)."""
    a = np.asarray(a)
    if dtype is None:
        dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.float64
    return a.astype(dtype, copy=False)


def _out_hw(H: int, W: int, kernel: Pair, stride: Pair, pads: Pad4, dilation: Pair) -> Pair:
    """Output ``(Ho, Wo)``; ValueError if either is <= 0."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    top, bottom, left, right = pads
    Ho = conv_output_size(H, kh, sh, top, bottom, dh)
    Wo = conv_output_size(W, kw, sw, left, right, dw)
    if Ho <= 0 or Wo <= 0:
        raise ValueError(
            f"impossible geometry: input {H}x{W}, kernel {kh}x{kw}, stride {sh}x{sw}, "
            f"padding {pads}, dilation {dh}x{dw} gives output {Ho}x{Wo}")
    return Ho, Wo


def _pad(x: np.ndarray, pads: Pad4, value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of an NCHW array by ``(top, bottom, left, right)``."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def _tap(i: int, j: int, out_hw: Pair, stride: Pair, dilation: Pair) -> Tuple[slice, slice, slice, slice]:
    """Index selecting, for kernel tap (i, j), the input pixel of every output position.

    ``xp[_tap(...)]`` is an ``(N, C, Ho, Wo)`` strided view of the padded input.
    """
    (Ho, Wo), (sh, sw), (dh, dw) = out_hw, stride, dilation
    r0, c0 = i * dh, j * dw
    return (slice(None), slice(None),
            slice(r0, r0 + sh * (Ho - 1) + 1, sh),
            slice(c0, c0 + sw * (Wo - 1) + 1, sw))


def _crop(xp: np.ndarray, x_shape: Sequence[int], pads: Pad4) -> np.ndarray:
    """Undo ``_pad``: return the ``x_shape`` interior of a padded gradient."""
    top, _, left, _ = pads
    H, W = x_shape[2], x_shape[3]
    return np.ascontiguousarray(xp[:, :, top:top + H, left:left + W])


# 1-D ops see an (N, C, L) array as an (N, C, 1, L) image with a (1, k) kernel.
def _one(v: IntSingle) -> int:
    return v[0] if isinstance(v, (tuple, list)) else v


# ---------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------
def _conv_geometry(x_shape: Sequence[int], w_shape: Sequence[int], stride: IntPair, padding: Union[IntPair, str],
                   dilation: IntPair, groups: int) -> Tuple[Pair, Pair, Pair, Pad4, Pair]:
    """(kernel, stride, dilation, pads, (Ho, Wo)) of a convolution; ValueError if impossible."""
    if x_shape[1] != w_shape[1] * groups or w_shape[0] % groups:
        raise ValueError(f"conv2d: input {tuple(x_shape)} and weight {tuple(w_shape)} "
                         f"do not match groups={groups}")
    kernel, stride, dilation = cast(Pair, tuple(w_shape[2:])), pair(stride), pair(dilation)  # w is 4-D
    pads = conv_padding(padding, kernel, dilation, stride)
    Ho, Wo = _out_hw(x_shape[2], x_shape[3], kernel, stride, pads, dilation)
    return kernel, stride, dilation, pads, (Ho, Wo)


def conv2d(x: ArrayLike, w: ArrayLike, b: Optional[ArrayLike] = None, stride: IntPair = 1,
           padding: Union[IntPair, str] = 0, dilation: IntPair = 1, groups: int = 1) -> np.ndarray:
    """2-D cross-correlation: x (N,C,H,W), w (K,C//groups,kh,kw), b (K,) or None -> (N,K,Ho,Wo)."""
    x = _float(x)
    w = _float(w, x.dtype)
    N, K, Cg, G = x.shape[0], w.shape[0], w.shape[1], groups
    (kh, kw), stride, dilation, pads, (Ho, Wo) = _conv_geometry(
        x.shape, w.shape, stride, padding, dilation, groups)
    xp = _pad(x, pads)
    y = np.zeros((N, G, K // G, Ho * Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            xt = xp[_tap(i, j, (Ho, Wo), stride, dilation)].reshape(N, G, Cg, Ho * Wo)
            wt = w[:, :, i, j].reshape(G, K // G, Cg)
            y += wt @ xt  # (G, Kg, Cg) @ (N, G, Cg, P) -> (N, G, Kg, P)
    y = y.reshape(N, K, Ho, Wo)
    if b is not None:
        y += _float(b, x.dtype).reshape(1, K, 1, 1)
    return y


def conv2d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, stride: IntPair = 1, padding: Union[IntPair, str] = 0,
                    dilation: IntPair = 1, groups: int = 1) -> Grads:
    """Gradients of conv2d: dy (N,K,Ho,Wo) -> (dx (N,C,H,W), dw (K,C//groups,kh,kw), db (K,))."""
    x = _float(x)
    w = _float(w, x.dtype)
    dy = _float(dy, x.dtype)
    (N, C), (K, Cg) = x.shape[:2], w.shape[:2]
    G, Kg = groups, K // groups
    (kh, kw), stride, dilation, pads, (Ho, Wo) = _conv_geometry(
        x.shape, w.shape, stride, padding, dilation, groups)
    P = Ho * Wo
    xp = _pad(x, pads)
    dxp = np.zeros(xp.shape, dtype=x.dtype)
    dw = np.empty(w.shape, dtype=x.dtype)
    dyg = dy.reshape(N, G, Kg, P)
    dy_gkq = dyg.transpose(1, 2, 0, 3).reshape(G, Kg, N * P)  # batch and pixels merged
    for i in range(kh):
        for j in range(kw):
            tap = _tap(i, j, (Ho, Wo), stride, dilation)
            xt = xp[tap].reshape(N, G, Cg, P)
            x_gqc = xt.transpose(1, 0, 3, 2).reshape(G, N * P, Cg)
            dw[:, :, i, j] = (dy_gkq @ x_gqc).reshape(K, Cg)  # (G, Kg, Cg)
            wt = w[:, :, i, j].reshape(G, Kg, Cg)
            dxp[tap] += (wt.transpose(0, 2, 1) @ dyg).reshape(N, C, Ho, Wo)  # (N, G, Cg, P)
    db = dy.sum(axis=(0, 2, 3))
    return _crop(dxp, x.shape, pads), dw, db


def conv1d(x: ArrayLike, w: ArrayLike, b: Optional[ArrayLike] = None, stride: IntSingle = 1,
           padding: Union[IntSingle, str] = 0, dilation: IntSingle = 1, groups: int = 1) -> np.ndarray:
    """1-D cross-correlation: x (N, C, L), w (K, C//groups, k), b (K,) -> (N, K, Lo)."""
    pad = padding if isinstance(padding, str) else (0, _one(padding))
    y = conv2d(_float(x)[:, :, None, :], _float(w)[:, :, None, :], b, (1, _one(stride)), pad,
               (1, _one(dilation)), groups)
    return y[:, :, 0, :]


def conv1d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, stride: IntSingle = 1,
                    padding: Union[IntSingle, str] = 0, dilation: IntSingle = 1, groups: int = 1) -> Grads:
    """Gradients of conv1d -> (dx (N, C, L), dw (K, C//groups, k), db (K,))."""
    pad = padding if isinstance(padding, str) else (0, _one(padding))
    dx, dw, db = conv2d_backward(_float(dy)[:, :, None, :], _float(x)[:, :, None, :], _float(w)[:, :, None, :],
                                 (1, _one(stride)), pad, (1, _one(dilation)), groups)
    return dx[:, :, 0, :], dw[:, :, 0, :], db


# ---------------------------------------------------------------------------
# transposed convolution
# ---------------------------------------------------------------------------
# Written from the definition, not as conv2d's gradient (which is how pycnn computes it), so the two
# check each other: input pixel (h, w) adds x[n, c, h, w] * w[c, :, i, j] to output
# (h * stride - padding + i * dilation, w * stride - padding + j * dilation) for each tap (i, j).
def _conv3d_geometry(x_shape: Sequence[int], w_shape: Sequence[int], stride: Union[int, Sequence[int]],
                     padding: Union[int, Sequence[int], str], dilation: Union[int, Sequence[int]],
                     groups: int) -> Tuple[List[int], List[int], List[Tuple[int, int]], List[int]]:
    """(stride, dilation, (begin, end) pads, output sizes) per axis (t, h, w) of a conv3d; ValueError if impossible."""
    if len(x_shape) != 5 or len(w_shape) != 5 or x_shape[1] != w_shape[1] * groups or w_shape[0] % groups:
        raise ValueError(f"conv3d: input {tuple(x_shape)} and weight {tuple(w_shape)} do not match groups={groups}")

    def triple(v: Union[int, Sequence[int]]) -> List[int]:
        return [int(v)] * 3 if isinstance(v, (int, numbers.Integral)) else [int(e) for e in v]

    kernel, st, dil = list(w_shape[2:]), triple(stride), triple(dilation)
    if padding == "valid":
        pads = [(0, 0)] * 3
    elif padding == "same":
        if st != [1, 1, 1]:
            raise ValueError("padding='same' requires stride 1")
        pads = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dil)]
    else:
        pads = [(p, p) for p in triple(cast(Union[int, Sequence[int]], padding))]
    out = [conv_output_size(n, k, s_, p[0], p[1], d) for n, k, s_, p, d in zip(x_shape[2:], kernel, st, pads, dil)]
    if min(out) <= 0:
        raise ValueError(f"impossible geometry: input {tuple(x_shape)}, weight {tuple(w_shape)} gives output {out}")
    return st, dil, pads, out


def _tap3(tap: Sequence[int], out: Sequence[int], stride: Sequence[int], dilation: Sequence[int]) -> Tuple[slice, ...]:
    """For kernel tap (a, i, j): the strided view of the padded input read by every output position."""
    return (slice(None), slice(None)) + tuple(slice(q * d, q * d + s_ * (o - 1) + 1, s_)
                                              for q, o, s_, d in zip(tap, out, stride, dilation))


def conv3d(x: ArrayLike, w: ArrayLike, b: Optional[ArrayLike] = None, stride: Union[int, Sequence[int]] = 1,
           padding: Union[int, Sequence[int], str] = 0, dilation: Union[int, Sequence[int]] = 1,
           groups: int = 1) -> np.ndarray:
    """3-D cross-correlation: x (N,C,T,H,W), w (K,C//groups,kt,kh,kw), b (K,) or None -> (N,K,To,Ho,Wo)."""
    x = _float(x)
    w = _float(w, x.dtype)
    N, K, Cg, G = x.shape[0], w.shape[0], w.shape[1], groups
    stride, dilation, pads, out = _conv3d_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    P = out[0] * out[1] * out[2]
    y = np.zeros((N, G, K // G, P), dtype=x.dtype)
    for tap in np.ndindex(*w.shape[2:]):
        xt = xp[_tap3(tap, out, stride, dilation)].reshape(N, G, Cg, P)
        y += w[(slice(None), slice(None)) + tap].reshape(G, K // G, Cg) @ xt  # (N, G, Kg, P)
    y = y.reshape((N, K) + tuple(out))
    if b is not None:
        y += _float(b, x.dtype).reshape(1, K, 1, 1, 1)
    return y


def conv3d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, stride: Union[int, Sequence[int]] = 1,
                    padding: Union[int, Sequence[int], str] = 0, dilation: Union[int, Sequence[int]] = 1,
                    groups: int = 1) -> Grads:
    """Gradients of conv3d: dy (N,K,To,Ho,Wo) -> (dx (N,C,T,H,W), dw (K,C//groups,kt,kh,kw), db (K,))."""
    x = _float(x)
    w = _float(w, x.dtype)
    dy = _float(dy, x.dtype)
    (N, C), (K, Cg) = x.shape[:2], w.shape[:2]
    G, Kg = groups, K // groups
    stride, dilation, pads, out = _conv3d_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    P = out[0] * out[1] * out[2]
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    dxp = np.zeros(xp.shape, dtype=x.dtype)
    dw = np.empty(w.shape, dtype=x.dtype)
    dyg = dy.reshape(N, G, Kg, P)
    dy_gkq = dyg.transpose(1, 2, 0, 3).reshape(G, Kg, N * P)
    for tap in np.ndindex(*w.shape[2:]):
        view = _tap3(tap, out, stride, dilation)
        x_gqc = xp[view].reshape(N, G, Cg, P).transpose(1, 0, 3, 2).reshape(G, N * P, Cg)
        wi = (slice(None), slice(None)) + tap
        dw[wi] = (dy_gkq @ x_gqc).reshape(K, Cg)
        dxp[view] += (w[wi].reshape(G, Kg, Cg).transpose(0, 2, 1) @ dyg).reshape((N, C) + tuple(out))
    interior = (slice(None), slice(None)) + tuple(slice(p[0], p[0] + n) for p, n in zip(pads, x.shape[2:]))
    return np.ascontiguousarray(dxp[interior]), dw, dy.sum(axis=(0, 2, 3, 4))


def _conv_transpose_geometry(x_shape: Sequence[int], w_shape: Sequence[int], stride: IntPair, padding: IntPair,
                             output_padding: IntPair, dilation: IntPair) -> Tuple[Pair, Pair, Pair, Pair, Pair]:
    """(stride, padding, dilation, (Ho, Wo), (Hf, Wf)): Hf is the size of the full scatter before the padding
    rows are cropped from both ends (and the output_padding rows added at the bottom)."""
    stride, padding, output_padding, dilation = pair(stride), pair(padding), pair(output_padding), pair(dilation)
    out, full = [], []
    for size, k, s, p, o, d in zip(x_shape[2:], w_shape[2:], stride, padding, output_padding, dilation):
        if o >= s and o >= d:
            raise ValueError(f"output_padding {o} must be smaller than either stride {s} or dilation {d}")
        out.append((size - 1) * s - 2 * p + d * (k - 1) + o + 1)
        full.append(max((size - 1) * s + d * (k - 1) + 1, p + out[-1]))
    if min(out) <= 0:
        raise ValueError(f"impossible geometry: input {tuple(x_shape)}, weight {tuple(w_shape)} gives output {out}")
    return stride, padding, dilation, (out[0], out[1]), (full[0], full[1])


def conv_transpose2d(x: ArrayLike, w: ArrayLike, b: Optional[ArrayLike] = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                     dilation: IntPair = 1) -> np.ndarray:
    """Transposed convolution: x (N, C_in, H, W), w (C_in, C_out//groups, kh, kw), b (C_out,) -> (N, C_out, Ho, Wo)."""
    x = _float(x)
    w = _float(w, x.dtype)
    (N, C, H, W), (kh, kw), G = x.shape, w.shape[2:], groups
    Cg, Kg = C // G, w.shape[1]
    stride, (ph, pw), dilation, (Ho, Wo), (Hf, Wf) = _conv_transpose_geometry(
        x.shape, w.shape, stride, padding, output_padding, dilation)
    full = np.zeros((N, G * Kg, Hf, Wf), dtype=x.dtype)
    xg = x.reshape(N, G, Cg, H * W)
    for i in range(kh):
        for j in range(kw):
            wt = w[:, :, i, j].reshape(G, Cg, Kg)
            # _tap with the input's (H, W): where tap (i, j) of every input pixel lands in the full output
            full[_tap(i, j, (H, W), stride, dilation)] += \
                (wt.transpose(0, 2, 1) @ xg).reshape(N, G * Kg, H, W)  # (G, Kg, Cg) @ (N, G, Cg, P)
    y = np.ascontiguousarray(full[:, :, ph:ph + Ho, pw:pw + Wo])
    if b is not None:
        y += _float(b, x.dtype).reshape(1, -1, 1, 1)
    return y


def conv_transpose2d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, stride: IntPair = 1, padding: IntPair = 0,
                              output_padding: IntPair = 0, groups: int = 1, dilation: IntPair = 1) -> Grads:
    """Gradients of conv_transpose2d: dy (N, C_out, Ho, Wo) -> (dx (N, C_in, H, W), dw (C_in, C_out//groups, kh, kw),
    db (C_out,)): each tap reads back, from the full output's gradient, what it scattered."""
    x = _float(x)
    w = _float(w, x.dtype)
    dy = _float(dy, x.dtype)
    (N, C, H, W), (kh, kw), G = x.shape, w.shape[2:], groups
    Cg, Kg = C // G, w.shape[1]
    stride, (ph, pw), dilation, (Ho, Wo), (Hf, Wf) = _conv_transpose_geometry(
        x.shape, w.shape, stride, padding, output_padding, dilation)
    dfull = np.zeros((N, G * Kg, Hf, Wf), dtype=x.dtype)
    dfull[:, :, ph:ph + Ho, pw:pw + Wo] = dy
    xg = x.reshape(N, G, Cg, H * W)
    x_gpc = xg.transpose(1, 0, 3, 2).reshape(G, N * H * W, Cg)
    dx = np.zeros((N, G, Cg, H * W), dtype=x.dtype)
    dw = np.empty(w.shape, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            dyt = dfull[_tap(i, j, (H, W), stride, dilation)].reshape(N, G, Kg, H * W)
            wt = w[:, :, i, j].reshape(G, Cg, Kg)
            dx += wt @ dyt  # (G, Cg, Kg) @ (N, G, Kg, P)
            dy_gkp = dyt.transpose(1, 2, 0, 3).reshape(G, Kg, N * H * W)
            dw[:, :, i, j] = (dy_gkp @ x_gpc).transpose(0, 2, 1).reshape(C, Kg)  # (G, Cg, Kg)
    return dx.reshape(x.shape), dw, dy.sum(axis=(0, 2, 3))


def conv_transpose1d(x: ArrayLike, w: ArrayLike, b: Optional[ArrayLike] = None, stride: IntSingle = 1,
                     padding: IntSingle = 0, output_padding: IntSingle = 0, groups: int = 1,
                     dilation: IntSingle = 1) -> np.ndarray:
    """1-D transposed convolution: x (N, C_in, L), w (C_in, C_out//groups, k) -> (N, C_out, Lo)."""
    y = conv_transpose2d(_float(x)[:, :, None, :], _float(w)[:, :, None, :], b, (1, _one(stride)),
                         (0, _one(padding)), (0, _one(output_padding)), groups, (1, _one(dilation)))
    return y[:, :, 0, :]


def conv_transpose1d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, stride: IntSingle = 1,
                              padding: IntSingle = 0, output_padding: IntSingle = 0, groups: int = 1,
                              dilation: IntSingle = 1) -> Grads:
    """Gradients of conv_transpose1d -> (dx (N, C_in, L), dw (C_in, C_out//groups, k), db (C_out,))."""
    dx, dw, db = conv_transpose2d_backward(_float(dy)[:, :, None, :], _float(x)[:, :, None, :],
                                           _float(w)[:, :, None, :], (1, _one(stride)), (0, _one(padding)),
                                           (0, _one(output_padding)), groups, (1, _one(dilation)))
    return dx[:, :, 0, :], dw[:, :, 0, :], db


# ---------------------------------------------------------------------------
# resizing (F.interpolate)
# ---------------------------------------------------------------------------
# Source coordinates are computed as PyTorch computes them, in float32 (its index arithmetic for float
# input), so that nearest indices agree exactly even where o * in / out is an integer that float32
# rounds below; the interpolation itself runs in the input's dtype.
def _interp_geometry(shape: Sequence[int], size: Union[None, int, Sequence[int]],
                     scale_factor: Union[None, float, Sequence[float]],
                     recompute_scale_factor: Optional[bool]) -> Tuple[List[int], List[Optional[float]]]:
    """(output sizes, scale factors the coordinate map uses: None where it uses in/out), PyTorch's rules."""
    dims = len(shape) - 2
    if size is not None and scale_factor is None:
        out = [int(v) for v in (size if isinstance(size, Sequence) else [size] * dims)]
        return out, [None] * dims
    if scale_factor is None or size is not None:
        raise ValueError("exactly one of size and scale_factor must be given")
    factors = [float(v) for v in (scale_factor if isinstance(scale_factor, Sequence) else [scale_factor] * dims)]
    out = [int(np.floor(float(n) * f)) for n, f in zip(shape[2:], factors)]
    return out, [None] * dims if recompute_scale_factor else list(factors)


def _coordinate_scale(n_in: int, n_out: int, scale: Optional[float]) -> np.float32:
    return np.float32(1.0 / scale) if scale is not None else np.float32(n_in) / np.float32(n_out)


def _nearest_index(n_in: int, n_out: int, scale: Optional[float], exact: bool) -> np.ndarray:
    """Input index of each output index: floor(o * s) ('nearest', with PyTorch's exact cases out == in and
    out == 2 in) or floor((o + 0.5) * s) ('nearest-exact'), at most n_in - 1."""
    o = np.arange(n_out)
    if not exact and n_out == n_in:
        return o
    if not exact and n_out == 2 * n_in:
        return o // 2
    sc = _coordinate_scale(n_in, n_out, scale)
    src = (o + 0.5) * np.float64(sc) if exact else o.astype(np.float32) * sc
    return np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), n_in - 1)


def _linear_taps(n_in: int, n_out: int, scale: Optional[float],
                 align_corners: bool) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, lambda) per output index: it reads (1 - lambda) x[i0] + lambda x[i1] (float32 lambda)."""
    o = np.arange(n_out)
    if n_out == n_in:
        return o, o, np.zeros(n_out, np.float32)
    if align_corners:
        ratio = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0)
        real = ratio * o.astype(np.float32)
    else:
        ratio = _coordinate_scale(n_in, n_out, scale)
        real = np.maximum(ratio * (o.astype(np.float32) + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    i0 = np.minimum(np.floor(real).astype(np.int64), n_in - 1)
    lam = np.clip(real - i0.astype(np.float32), 0, 1).astype(np.float32)
    return i0, np.minimum(i0 + 1, n_in - 1), lam


def _interp_args(x_shape: Sequence[int], size: Union[None, int, Sequence[int]],
                 scale_factor: Union[None, float, Sequence[float]], mode: str, align_corners: Optional[bool],
                 recompute_scale_factor: Optional[bool]) -> Tuple[Sequence[int], List[int], List[Optional[float]]]:
    """The (N, C, H, W) view (3-D input gets H = 1), output (Ho, Wo), scales (H's: None)."""
    if mode not in ("nearest", "nearest-exact", "linear", "bilinear"):
        raise ValueError(f"unsupported mode {mode!r}")
    out, scales = _interp_geometry(x_shape, size, scale_factor, recompute_scale_factor)
    if len(x_shape) == 3:
        return (x_shape[0], x_shape[1], 1, x_shape[2]), [1] + out, [None] + scales
    return x_shape, out, scales


def interpolate(x: ArrayLike, size: Union[None, int, Sequence[int]] = None,
                scale_factor: Union[None, float, Sequence[float]] = None, mode: str = "nearest",
                align_corners: Optional[bool] = None, recompute_scale_factor: Optional[bool] = None) -> np.ndarray:
    """Resize (N, C, H, W) (or (N, C, L)) as torch.nn.functional.interpolate: 'nearest', 'nearest-exact',
    'bilinear' (4-D) and 'linear' (3-D)."""
    x = _float(x)
    shape, (Ho, Wo), (sh, sw) = _interp_args(x.shape, size, scale_factor, mode, align_corners, recompute_scale_factor)
    x4 = x.reshape(shape)
    H, W = shape[2], shape[3]
    if mode.startswith("nearest"):
        exact = mode == "nearest-exact"
        y = x4[:, :, _nearest_index(H, Ho, sh, exact)[:, None], _nearest_index(W, Wo, sw, exact)[None, :]]
    else:
        h0, h1, a = _linear_taps(H, Ho, sh, bool(align_corners))
        w0, w1, b = _linear_taps(W, Wo, sw, bool(align_corners))
        a, b = a.astype(x.dtype)[:, None], b.astype(x.dtype)[None, :]
        one = x.dtype.type(1)

        def rows(h: np.ndarray) -> np.ndarray:  # each row interpolated along W
            return x4[:, :, h[:, None], w0[None, :]] * (one - b) + x4[:, :, h[:, None], w1[None, :]] * b

        y = rows(h0) * (one - a) + rows(h1) * a
    return y.reshape(x.shape[:-1] + (Wo,)) if x.ndim == 3 else y


def interpolate_backward(dy: ArrayLike, x_shape: Sequence[int], size: Union[None, int, Sequence[int]] = None,
                         scale_factor: Union[None, float, Sequence[float]] = None, mode: str = "nearest",
                         align_corners: Optional[bool] = None,
                         recompute_scale_factor: Optional[bool] = None) -> np.ndarray:
    """Gradient of interpolate: every output's gradient added to the inputs it read, times their weights."""
    dy = _float(dy)
    shape, (Ho, Wo), (sh, sw) = _interp_args(x_shape, size, scale_factor, mode, align_corners, recompute_scale_factor)
    H, W = shape[2], shape[3]
    dy4 = dy.reshape((shape[0], shape[1], Ho, Wo))
    dx = np.zeros(tuple(shape), dtype=dy.dtype)
    if mode.startswith("nearest"):
        exact = mode == "nearest-exact"
        hi, wi = _nearest_index(H, Ho, sh, exact), _nearest_index(W, Wo, sw, exact)
        np.add.at(dx, cast(Any, (slice(None), slice(None), hi[:, None], wi[None, :])), dy4)
    else:
        h0, h1, a = _linear_taps(H, Ho, sh, bool(align_corners))
        w0, w1, b = _linear_taps(W, Wo, sw, bool(align_corners))
        a, b = a.astype(dy.dtype)[:, None], b.astype(dy.dtype)[None, :]
        one = dy.dtype.type(1)
        for h, wa in ((h0, one - a), (h1, a)):
            for w, wb in ((w0, one - b), (w1, b)):
                np.add.at(dx, cast(Any, (slice(None), slice(None), h[:, None], w[None, :])), dy4 * (wa * wb))
    return dx.reshape(tuple(x_shape))


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------
def _pool_geometry(x_shape: Sequence[int], kernel_size: IntPair, stride: Optional[IntPair],
                   padding: IntPair) -> Tuple[Pair, Pair, Pad4, Pair]:
    """Normalised (kernel, stride, pads, (Ho, Wo)) of a pooling; ValueError if impossible."""
    kernel = pair(kernel_size)
    stride = kernel if stride is None else pair(stride)
    ph, pw = pair(padding)
    pads = (ph, ph, pw, pw)
    Ho, Wo = _out_hw(x_shape[2], x_shape[3], kernel, stride, pads, (1, 1))
    return kernel, stride, pads, (Ho, Wo)


def _max_pool_argmax(xp: np.ndarray, kernel: Pair, stride: Pair, out_hw: Pair) -> Tuple[np.ndarray, np.ndarray]:
    """Running max over the taps -> (max, index of the first maximal tap in row-major order)."""
    kh, kw = kernel
    best = xp[_tap(0, 0, out_hw, stride, (1, 1))].copy()  # tap 0
    idx = np.zeros(best.shape, dtype=np.intp)
    for t in range(1, kh * kw):
        v = xp[_tap(t // kw, t % kw, out_hw, stride, (1, 1))]
        better = v > best  # strict: on ties the earlier tap keeps the max
        best[better] = v[better]
        idx[better] = t
    return best, idx


def max_pool2d(x: ArrayLike, kernel_size: IntPair, stride: Optional[IntPair] = None,
               padding: IntPair = 0) -> np.ndarray:
    """Max pooling (implicit -inf padding, floor mode): x (N, C, H, W) -> (N, C, Ho, Wo)."""
    x = _float(x)
    kernel, stride, pads, out_hw = _pool_geometry(x.shape, kernel_size, stride, padding)
    y, _ = _max_pool_argmax(_pad(x, pads, -np.inf), kernel, stride, out_hw)
    return y


def max_pool2d_backward(dy: ArrayLike, x: ArrayLike, kernel_size: IntPair, stride: Optional[IntPair] = None,
                        padding: IntPair = 0) -> np.ndarray:
    """Gradient of max_pool2d: dy (N,C,Ho,Wo) -> dx (N,C,H,W); each window's argmax gets its dy."""
    x = _float(x)
    dy = _float(dy, x.dtype)
    kernel, stride, pads, out_hw = _pool_geometry(x.shape, kernel_size, stride, padding)
    xp = _pad(x, pads, -np.inf)
    _, idx = _max_pool_argmax(xp, kernel, stride, out_hw)
    dxp = np.zeros(xp.shape, dtype=x.dtype)
    zero = np.zeros((), dtype=x.dtype)
    kh, kw = kernel
    for t in range(kh * kw):
        dxp[_tap(t // kw, t % kw, out_hw, stride, (1, 1))] += np.where(idx == t, dy, zero)
    return _crop(dxp, x.shape, pads)


def _avg_pool_divisor(x_shape: Sequence[int], kernel: Pair, stride: Pair, pads: Pad4, out_hw: Pair,
                      count_include_pad: bool, dtype: DTypeLike) -> np.ndarray:
    """Per-output divisor, shape (Ho, Wo): kh*kw, or the number of in-bounds taps."""
    kh, kw = kernel
    if count_include_pad:
        return np.full(out_hw, kh * kw, dtype=dtype)
    ones = _pad(np.ones((1, 1) + tuple(x_shape[2:]), dtype=dtype), pads)
    count = np.zeros((1, 1) + out_hw, dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            count += ones[_tap(i, j, out_hw, stride, (1, 1))]
    return count[0, 0]


def avg_pool2d(x: ArrayLike, kernel_size: IntPair, stride: Optional[IntPair] = None, padding: IntPair = 0,
               count_include_pad: bool = True) -> np.ndarray:
    """Average pooling (zero padding, floor mode): x (N, C, H, W) -> (N, C, Ho, Wo)."""
    x = _float(x)
    kernel, stride, pads, out_hw = _pool_geometry(x.shape, kernel_size, stride, padding)
    xp = _pad(x, pads)
    y = np.zeros(x.shape[:2] + out_hw, dtype=x.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            y += xp[_tap(i, j, out_hw, stride, (1, 1))]
    return y / _avg_pool_divisor(x.shape, kernel, stride, pads, out_hw, count_include_pad, x.dtype)


def avg_pool2d_backward(dy: ArrayLike, x_shape: Sequence[int], kernel_size: IntPair, stride: Optional[IntPair] = None,
                        padding: IntPair = 0, count_include_pad: bool = True) -> np.ndarray:
    """Gradient of avg_pool2d: dy (N, C, Ho, Wo) -> dx of shape x_shape (N, C, H, W)."""
    dy = _float(dy)
    x_shape = tuple(x_shape)
    kernel, stride, pads, out_hw = _pool_geometry(x_shape, kernel_size, stride, padding)
    g = dy / _avg_pool_divisor(x_shape, kernel, stride, pads, out_hw, count_include_pad, dy.dtype)
    top, bottom, left, right = pads
    padded_hw = (x_shape[2] + top + bottom, x_shape[3] + left + right)
    dxp = np.zeros(x_shape[:2] + padded_hw, dtype=dy.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            dxp[_tap(i, j, out_hw, stride, (1, 1))] += g
    return _crop(dxp, x_shape, pads)


def _adaptive_matrix(size: int, out: int, dtype: DTypeLike) -> np.ndarray:
    """(out, size) averaging matrix over PyTorch's adaptive windows.

    Row i averages [floor(i*size/out), ceil((i+1)*size/out)).
    """
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    cols = np.arange(size)
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    return inside.astype(dtype) / (end - start).astype(dtype)[:, None]


def adaptive_avg_pool2d(x: ArrayLike, output_size: IntPair) -> np.ndarray:
    """Adaptive average pooling: x (N, C, H, W) -> (N, C, Ho, Wo) with (Ho, Wo) = pair(output_size).

    A window average is separable, so y = A_h @ x @ A_w.T with 1-D averaging matrices.
    """
    x = _float(x)
    Ho, Wo = pair(output_size)
    if Ho <= 0 or Wo <= 0:
        raise ValueError(f"impossible geometry: adaptive output size {Ho}x{Wo}")
    Ah = _adaptive_matrix(x.shape[2], Ho, x.dtype)
    Aw = _adaptive_matrix(x.shape[3], Wo, x.dtype)
    return Ah @ x @ Aw.T


def adaptive_avg_pool2d_backward(dy: ArrayLike, x_shape: Sequence[int]) -> np.ndarray:
    """Gradient of adaptive_avg_pool2d: dy (N, C, Ho, Wo) -> dx of shape x_shape (N, C, H, W)."""
    dy = _float(dy)
    Ah = _adaptive_matrix(x_shape[2], dy.shape[2], dy.dtype)
    Aw = _adaptive_matrix(x_shape[3], dy.shape[3], dy.dtype)
    return Ah.T @ dy @ Aw


def _pool1d(kernel_size: IntSingle, stride: Optional[IntSingle], padding: IntSingle) -> Tuple[Pair, Pair, Pair]:
    k = _one(kernel_size)
    return (1, k), (1, k if stride is None else _one(stride)), (0, _one(padding))


def max_pool1d(x: ArrayLike, kernel_size: IntSingle, stride: Optional[IntSingle] = None,
               padding: IntSingle = 0) -> np.ndarray:
    """1-D max pooling (N, C, L) -> (N, C, Lo)."""
    return max_pool2d(_float(x)[:, :, None, :], *_pool1d(kernel_size, stride, padding))[:, :, 0, :]


def max_pool1d_backward(dy: ArrayLike, x: ArrayLike, kernel_size: IntSingle, stride: Optional[IntSingle] = None,
                        padding: IntSingle = 0) -> np.ndarray:
    """Gradient of max_pool1d -> dx (N, C, L)."""
    return max_pool2d_backward(_float(dy)[:, :, None, :], _float(x)[:, :, None, :],
                               *_pool1d(kernel_size, stride, padding))[:, :, 0, :]


def avg_pool1d(x: ArrayLike, kernel_size: IntSingle, stride: Optional[IntSingle] = None, padding: IntSingle = 0,
               count_include_pad: bool = True) -> np.ndarray:
    """1-D average pooling (N, C, L) -> (N, C, Lo)."""
    return avg_pool2d(_float(x)[:, :, None, :], *_pool1d(kernel_size, stride, padding),
                      count_include_pad)[:, :, 0, :]


def avg_pool1d_backward(dy: ArrayLike, x_shape: Sequence[int], kernel_size: IntSingle,
                        stride: Optional[IntSingle] = None, padding: IntSingle = 0,
                        count_include_pad: bool = True) -> np.ndarray:
    """Gradient of avg_pool1d -> dx of x_shape (N, C, L)."""
    n, c, length = x_shape
    return avg_pool2d_backward(_float(dy)[:, :, None, :], (n, c, 1, length), *_pool1d(kernel_size, stride, padding),
                               count_include_pad)[:, :, 0, :]


def adaptive_avg_pool1d(x: ArrayLike, output_size: IntSingle) -> np.ndarray:
    """Adaptive average pooling (N, C, L) -> (N, C, output_size)."""
    return adaptive_avg_pool2d(_float(x)[:, :, None, :], (1, _one(output_size)))[:, :, 0, :]


def adaptive_avg_pool1d_backward(dy: ArrayLike, x_shape: Sequence[int]) -> np.ndarray:
    """Gradient of adaptive_avg_pool1d -> dx of x_shape (N, C, L)."""
    n, c, length = x_shape
    return adaptive_avg_pool2d_backward(_float(dy)[:, :, None, :], (n, c, 1, length))[:, :, 0, :]


# 3-D pooling of (N, C, D, H, W) clips: the same tap loops over kd * kh * kw
# strided views of the padded input. ceil_mode adds a partial last window;
# the views then reach an extra stretch past the right padding that holds
# -inf (max) or zeros that no divisor counts (average).
Triple = Tuple[int, int, int]
IntTriple = Union[int, Sequence[int]]


def _triple(v: IntTriple) -> Triple:
    if isinstance(v, numbers.Integral):
        return int(v), int(v), int(v)
    a, b, c = (int(e) for e in cast(Sequence[int], v))
    return a, b, c


def pool3d_output_size(size: int, k: int, stride: int, pad: int, dilation: int = 1, ceil_mode: bool = False) -> int:
    """PyTorch's pooling output size along one axis: floor or ceil of the window count, the
    ceil window dropped when it would start in the right padding."""
    span = dilation * (k - 1) + 1
    num = size + 2 * pad - span
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


class _Pool3dGeometry:
    """Normalised window, output size and padding of a 3-D pooling; ValueError if impossible."""

    def __init__(self, x_shape: Sequence[int], kernel_size: IntTriple, stride: Optional[IntTriple],
                 padding: IntTriple, dilation: IntTriple, ceil_mode: bool) -> None:
        self.kernel = _triple(kernel_size)
        self.stride = self.kernel if stride is None else _triple(stride)
        self.padding = _triple(padding)
        self.dilation = _triple(dilation)
        self.size = cast(Triple, tuple(int(v) for v in x_shape[2:5]))
        self.out = cast(Triple, tuple(pool3d_output_size(*a, ceil_mode) for a in
                                      zip(self.size, self.kernel, self.stride, self.padding, self.dilation)))
        if min(self.out) <= 0:
            raise ValueError(f"impossible geometry: input {self.size}, kernel {self.kernel}, stride {self.stride}, "
                             f"padding {self.padding}, dilation {self.dilation} gives output {self.out}")
        # Past the right padding: what the last (ceil) window's taps reach.
        self.extra = cast(Triple, tuple(max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p)) for o, s, d, k, n, p in
                                        zip(self.out, self.stride, self.dilation, self.kernel, self.size,
                                            self.padding)))

    def taps(self) -> List[Triple]:
        kd, kh, kw = self.kernel
        return [(a, b, c) for a in range(kd) for b in range(kh) for c in range(kw)]  # (d, h, w) order

    def view(self, tap: Triple) -> Tuple[slice, ...]:
        """Index selecting, for a kernel tap, the padded input element of every output position."""
        return (slice(None), slice(None)) + tuple(
            slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(tap, self.dilation, self.stride, self.out))

    def pad(self, x: np.ndarray, value: float, extra_value: float) -> np.ndarray:
        """x padded by the symmetric padding (``value``), then by the ceil stretch (``extra_value``)."""
        p = self.padding
        xp = np.pad(x, ((0, 0), (0, 0)) + tuple((q, q) for q in p), constant_values=value)
        return np.pad(xp, ((0, 0), (0, 0)) + tuple((0, e) for e in self.extra), constant_values=extra_value)

    def crop(self, xp: np.ndarray) -> np.ndarray:
        (pd, ph, pw), (D, H, W) = self.padding, self.size
        return np.ascontiguousarray(xp[:, :, pd:pd + D, ph:ph + H, pw:pw + W])


def _max_pool3d_taps(x: np.ndarray, g: _Pool3dGeometry) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(padded x, max, index of the first maximal tap in (d, h, w) order)."""
    xp = g.pad(x, -np.inf, -np.inf)
    taps = g.taps()
    best = xp[g.view(taps[0])].copy()
    idx = np.zeros(best.shape, dtype=np.intp)
    for t in range(1, len(taps)):
        v = xp[g.view(taps[t])]
        better = v > best  # strict: on ties the earlier tap keeps the max
        best[better] = v[better]
        idx[better] = t
    return xp, best, idx


def max_pool3d(x: ArrayLike, kernel_size: IntTriple, stride: Optional[IntTriple] = None, padding: IntTriple = 0,
               dilation: IntTriple = 1, ceil_mode: bool = False) -> np.ndarray:
    """3-D max pooling (implicit -inf padding): x (N, C, D, H, W) -> (N, C, Do, Ho, Wo)."""
    x = _float(x)
    _, y, _ = _max_pool3d_taps(x, _Pool3dGeometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode))
    return y


def max_pool3d_backward(dy: ArrayLike, x: ArrayLike, kernel_size: IntTriple, stride: Optional[IntTriple] = None,
                        padding: IntTriple = 0, dilation: IntTriple = 1, ceil_mode: bool = False) -> np.ndarray:
    """Gradient of max_pool3d: dy (N, C, Do, Ho, Wo) -> dx; each window's argmax gets its dy."""
    x = _float(x)
    dy = _float(dy, x.dtype)
    g = _Pool3dGeometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    xp, _, idx = _max_pool3d_taps(x, g)
    dxp = np.zeros(xp.shape, dtype=x.dtype)
    zero = np.zeros((), dtype=x.dtype)
    for t, tap in enumerate(g.taps()):
        dxp[g.view(tap)] += np.where(idx == t, dy, zero)
    return g.crop(dxp)


def _avg_pool3d_divisor(g: _Pool3dGeometry, count_include_pad: bool, dtype: DTypeLike) -> np.ndarray:
    """Per-output divisor (Do, Ho, Wo): the window's taps on the padded input (count_include_pad)
    or on the real input; taps in the ceil stretch never count (PyTorch)."""
    ones = g.pad(np.ones((1, 1) + g.size, dtype=dtype), 1.0 if count_include_pad else 0.0, 0.0)
    count = np.zeros((1, 1) + g.out, dtype=dtype)
    for tap in g.taps():
        count += ones[g.view(tap)]
    return count[0, 0]


def avg_pool3d(x: ArrayLike, kernel_size: IntTriple, stride: Optional[IntTriple] = None, padding: IntTriple = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> np.ndarray:
    """3-D average pooling (zero padding): x (N, C, D, H, W) -> (N, C, Do, Ho, Wo)."""
    x = _float(x)
    g = _Pool3dGeometry(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    xp = g.pad(x, 0.0, 0.0)
    y = np.zeros(x.shape[:2] + g.out, dtype=x.dtype)
    for tap in g.taps():
        y += xp[g.view(tap)]
    return y / _avg_pool3d_divisor(g, count_include_pad, x.dtype)


def avg_pool3d_backward(dy: ArrayLike, x_shape: Sequence[int], kernel_size: IntTriple,
                        stride: Optional[IntTriple] = None, padding: IntTriple = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True) -> np.ndarray:
    """Gradient of avg_pool3d: dy (N, C, Do, Ho, Wo) -> dx of shape x_shape."""
    dy = _float(dy)
    g = _Pool3dGeometry(x_shape, kernel_size, stride, padding, 1, ceil_mode)
    grad = dy / _avg_pool3d_divisor(g, count_include_pad, dy.dtype)
    dxp = g.pad(np.zeros(tuple(x_shape), dtype=dy.dtype), 0.0, 0.0)
    for tap in g.taps():
        dxp[g.view(tap)] += grad
    return g.crop(dxp)


def adaptive_avg_pool3d(x: ArrayLike, output_size: IntTriple) -> np.ndarray:
    """Adaptive average pooling: x (N, C, D, H, W) -> (N, C, Do, Ho, Wo), separable as in 2-D."""
    x = _float(x)
    Do, Ho, Wo = _triple(output_size)
    if min(Do, Ho, Wo) <= 0:
        raise ValueError(f"impossible geometry: adaptive output size {Do}x{Ho}x{Wo}")
    Ad, Ah, Aw = (_adaptive_matrix(n, o, x.dtype) for n, o in zip(x.shape[2:], (Do, Ho, Wo)))
    return np.einsum("nzdhw,ad,bh,ew->nzabe", x, Ad, Ah, Aw)  # z: the channel axis


def adaptive_avg_pool3d_backward(dy: ArrayLike, x_shape: Sequence[int]) -> np.ndarray:
    """Gradient of adaptive_avg_pool3d: dy (N, C, Do, Ho, Wo) -> dx of shape x_shape."""
    dy = _float(dy)
    Ad, Ah, Aw = (_adaptive_matrix(n, o, dy.dtype) for n, o in zip(x_shape[2:], dy.shape[2:]))
    return np.einsum("nzabe,ad,bh,ew->nzdhw", dy, Ad, Ah, Aw)


# ---------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------
def relu(x: ArrayLike) -> np.ndarray:
    """max(x, 0), any shape."""
    x = _float(x)
    return np.maximum(x, np.zeros((), x.dtype))


def relu_backward(dy: ArrayLike, x: ArrayLike) -> np.ndarray:
    """dy where x > 0 else 0 (gradient 0 at x == 0, as PyTorch)."""
    x = _float(x)
    return np.where(x > 0, _float(dy, x.dtype), np.zeros((), x.dtype))


def leaky_relu(x: ArrayLike, negative_slope: float = 0.01) -> np.ndarray:
    """x if x > 0 else negative_slope * x, any shape."""
    x = _float(x)
    return np.where(x > 0, x, x * x.dtype.type(negative_slope))


def leaky_relu_backward(dy: ArrayLike, x: ArrayLike, negative_slope: float = 0.01) -> np.ndarray:
    """dy if x > 0 else negative_slope * dy (slope used at x == 0, as PyTorch)."""
    x = _float(x)
    dy = _float(dy, x.dtype)
    return np.where(x > 0, dy, dy * x.dtype.type(negative_slope))


def sigmoid(x: ArrayLike) -> np.ndarray:
    """1 / (1 + exp(-x)), computed from exp(-|x|) so it never overflows; any shape."""
    x = _float(x)
    e = np.exp(-np.abs(x))  # in (0, 1]; may underflow to 0 silently
    one = x.dtype.type(1)
    return np.where(x >= 0, one / (one + e), e / (one + e))


def sigmoid_backward(dy: ArrayLike, y: ArrayLike) -> np.ndarray:
    """dy * y * (1 - y) where y = sigmoid(x)."""
    y = _float(y)
    return _float(dy, y.dtype) * y * (y.dtype.type(1) - y)


def tanh(x: ArrayLike) -> np.ndarray:
    """Hyperbolic tangent, any shape."""
    return np.tanh(_float(x))


def tanh_backward(dy: ArrayLike, y: ArrayLike) -> np.ndarray:
    """dy * (1 - y**2) where y = tanh(x)."""
    y = _float(y)
    return _float(dy, y.dtype) * (y.dtype.type(1) - y * y)


def elu(x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """x if x > 0 else alpha * (exp(x) - 1)."""
    x = _float(x)
    return np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))


def elu_backward(dy: ArrayLike, x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """dy if x > 0 else dy * alpha * exp(x) (PyTorch's branch at x == 0)."""
    x = _float(x)
    dy = _float(dy, x.dtype)
    return np.where(x > 0, dy, dy * x.dtype.type(alpha) * np.exp(np.minimum(x, 0)))


def _erf(x: np.ndarray) -> np.ndarray:
    """Elementwise erf (math.erf per element: NumPy has no erf, and SciPy is not a dependency)."""
    import math

    return np.vectorize(math.erf, otypes=[x.dtype])(x)


def gelu(x: ArrayLike, approximate: str = "none") -> np.ndarray:
    """x * Phi(x) (exact, erf) or 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    x = _float(x)
    if approximate == "tanh":
        u = np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)
        return 0.5 * x * (1 + np.tanh(u))
    return 0.5 * x * (1 + _erf(x / np.sqrt(2)))


def gelu_backward(dy: ArrayLike, x: ArrayLike, approximate: str = "none") -> np.ndarray:
    """Gradient of gelu w.r.t. x."""
    x = _float(x)
    dy = _float(dy, x.dtype)
    if approximate == "tanh":
        k = np.sqrt(2 / np.pi)
        t = np.tanh(k * (x + 0.044715 * x ** 3))
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x))
    cdf = 0.5 * (1 + _erf(x / np.sqrt(2)))
    pdf = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    return dy * (cdf + x * pdf)


def softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """exp(x - max) / sum(exp(x - max)) along axis."""
    x = _float(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(dy: ArrayLike, y: ArrayLike, axis: int = -1) -> np.ndarray:
    """y * (dy - sum(dy * y)) along axis, from the softmax output y."""
    y = _float(y)
    dy = _float(dy, y.dtype)
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


# ---------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------
def linear(x: ArrayLike, w: ArrayLike, b: Optional[ArrayLike] = None) -> np.ndarray:
    """x (N, in) @ w(out, in).T + b (out,) -> (N, out)."""
    x = _float(x)
    y = x @ _float(w, x.dtype).T
    if b is not None:
        y += _float(b, x.dtype)
    return y


def linear_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike) -> Grads:
    """Gradients of linear: dy (N, out) -> (dx (N, in), dw (out, in), db (out,))."""
    x = _float(x)
    w = _float(w, x.dtype)
    dy = _float(dy, x.dtype)
    return dy @ w, dy.T @ x, dy.sum(axis=0)


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------
def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (N, classes) via max subtraction (finite for huge logits)."""
    z = logits - logits.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def cross_entropy(logits: ArrayLike, labels: ArrayLike) -> float:
    """Mean cross-entropy: logits (N, classes), integer labels (N,) -> Python float."""
    logits = _float(logits)
    labels = np.asarray(labels, dtype=np.intp)
    logp = _log_softmax(logits)
    return float(-logp[np.arange(logits.shape[0]), labels].mean())


def cross_entropy_backward(logits: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Gradient of cross_entropy: (softmax(logits) - onehot(labels)) / N, shape (N, classes)."""
    logits = _float(logits)
    labels = np.asarray(labels, dtype=np.intp)
    N = logits.shape[0]
    g = np.exp(_log_softmax(logits))
    g[np.arange(N), labels] -= 1
    return g / logits.dtype.type(N)


def mse_loss(pred: ArrayLike, target: ArrayLike) -> float:
    """mean((pred - target)**2) over all elements -> Python float."""
    pred = _float(pred)
    d = pred - _float(target, pred.dtype)
    return float(np.mean(d * d))


def mse_loss_backward(pred: ArrayLike, target: ArrayLike) -> np.ndarray:
    """Gradient of mse_loss: 2 * (pred - target) / pred.size, shape of pred."""
    pred = _float(pred)
    d = pred - _float(target, pred.dtype)
    return d * (pred.dtype.type(2) / pred.dtype.type(pred.size))


# ---------------------------------------------------------------------------
# normalization
# ---------------------------------------------------------------------------
def _bn_axes(x: np.ndarray) -> Tuple[int, ...]:
    """Every axis but the channel axis 1: (N, C) -> (0,), (N, C, L) -> (0, 2), (N, C, H, W) -> (0, 2, 3)."""
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A (C,) array shaped to broadcast against x (N, C, ...)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def batch_norm_train(x: ArrayLike, weight: Optional[ArrayLike] = None, bias: Optional[ArrayLike] = None,
                     running_mean: Optional[ArrayLike] = None, running_var: Optional[ArrayLike] = None,
                     momentum: float = 0.1, eps: float = 1e-5
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Training batch norm -> (y, mean, var, new_running_mean, new_running_var).

    Batch statistics over every axis but 1 (biased variance normalises); the
    running statistics follow PyTorch: r = (1 - momentum) r + momentum * stat
    with the *unbiased* variance. Running outputs are None when not given.
    """
    x = _float(x)
    axes = _bn_axes(x)
    m = x.size // x.shape[1]
    mean = x.mean(axis=axes)
    var = ((x - _per_channel(mean, x)) ** 2).mean(axis=axes)
    y = (x - _per_channel(mean, x)) / np.sqrt(_per_channel(var, x) + eps)
    if weight is not None:
        y = y * _per_channel(_float(weight, x.dtype), x)
    if bias is not None:
        y = y + _per_channel(_float(bias, x.dtype), x)
    new_rm = new_rv = None
    if running_mean is not None:
        new_rm = (1 - momentum) * _float(running_mean, x.dtype) + momentum * mean
        rv = cast(ArrayLike, running_var)  # given with running_mean (both or neither)
        new_rv = (1 - momentum) * _float(rv, x.dtype) + momentum * var * m / (m - 1)
    return y, mean, var, new_rm, new_rv


def batch_norm_eval(x: ArrayLike, running_mean: ArrayLike, running_var: ArrayLike, weight: Optional[ArrayLike] = None,
                    bias: Optional[ArrayLike] = None, eps: float = 1e-5) -> np.ndarray:
    """Inference batch norm with the running statistics."""
    x = _float(x)
    y = (x - _per_channel(_float(running_mean, x.dtype), x)) / np.sqrt(
        _per_channel(_float(running_var, x.dtype), x) + eps)
    if weight is not None:
        y = y * _per_channel(_float(weight, x.dtype), x)
    if bias is not None:
        y = y + _per_channel(_float(bias, x.dtype), x)
    return y


def batch_norm_backward(dy: ArrayLike, x: ArrayLike, weight: Optional[ArrayLike] = None, eps: float = 1e-5) -> Grads:
    """Gradients of batch_norm_train w.r.t. (x, weight, bias), from the batch statistics of x.

    With xhat = (x - mean) / sqrt(var + eps), M values per channel:
    dx = w / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat)).
    """
    x = _float(x)
    dy = _float(dy, x.dtype)
    axes = _bn_axes(x)
    mean = x.mean(axis=axes)
    var = ((x - _per_channel(mean, x)) ** 2).mean(axis=axes)
    rstd = 1 / np.sqrt(var + eps)
    xhat = (x - _per_channel(mean, x)) * _per_channel(rstd, x)
    dbias = dy.sum(axis=axes)
    dweight = (dy * xhat).sum(axis=axes)
    w = np.ones_like(mean) if weight is None else _float(weight, x.dtype)
    dx = _per_channel(w * rstd, x) * (dy - _per_channel(dy.mean(axis=axes), x)
                                      - xhat * _per_channel((dy * xhat).mean(axis=axes), x))
    return dx, dweight, dbias


def batch_norm_eval_backward(dy: ArrayLike, x: ArrayLike, running_mean: ArrayLike, running_var: ArrayLike,
                             weight: Optional[ArrayLike] = None, eps: float = 1e-5) -> Grads:
    """Gradients of batch_norm_eval w.r.t. (x, weight, bias): the running statistics are constants.

    With xhat = (x - running_mean) / sqrt(running_var + eps), y = w * xhat + b
    is affine per channel: dx = dy * w / sqrt(running_var + eps),
    dweight = sum(dy * xhat), dbias = sum(dy).
    """
    x = _float(x)
    dy = _float(dy, x.dtype)
    axes = _bn_axes(x)
    rstd = 1 / np.sqrt(_float(running_var, x.dtype) + eps)
    xhat = (x - _per_channel(_float(running_mean, x.dtype), x)) * _per_channel(rstd, x)
    w = np.ones_like(rstd) if weight is None else _float(weight, x.dtype)
    return dy * _per_channel(w * rstd, x), (dy * xhat).sum(axis=axes), dy.sum(axis=axes)


# ---------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------
def dropout_apply(x: ArrayLike, mask: ArrayLike, p: float) -> np.ndarray:
    """Inverted dropout with a given keep-mask: x * mask / (1 - p) (0 when p == 1).

    ``mask`` is x's shape, or (N, C) for channel-wise dropout (broadcast over the rest).
    """
    x = _float(x)
    mask = np.asarray(mask, dtype=bool)
    mask = mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    return x * (mask * x.dtype.type(scale))


# ---------------------------------------------------------------------------
# optimisers
# ---------------------------------------------------------------------------
def sgd_step(param: ArrayLike, grad: ArrayLike, momentum_buffer: Optional[ArrayLike], lr: float, momentum: float = 0.0,
             dampening: float = 0.0, weight_decay: float = 0.0,
             nesterov: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """One step of PyTorch's SGD -> (new_param, new_buffer); new_buffer is None when momentum == 0.

    Pure: inputs are not modified. Rule (torch.optim.SGD):
        g = grad + weight_decay * param
        buf = g if first step else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
        param = param - lr * g
    """
    param = _float(param)
    t = param.dtype.type
    g = _float(grad, param.dtype)
    if weight_decay != 0:
        g = g + t(weight_decay) * param
    buf = None
    if momentum != 0:
        if momentum_buffer is None:
            buf = g.copy()
        else:
            buf = t(momentum) * _float(momentum_buffer, param.dtype) + t(1 - dampening) * g
        g = g + t(momentum) * buf if nesterov else buf
    return param - t(lr) * g, buf


def adam_step(param: ArrayLike, grad: ArrayLike, exp_avg: ArrayLike, exp_avg_sq: ArrayLike, step: int, lr: float,
              beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
              decoupled_weight_decay: bool = False, max_exp_avg_sq: Optional[ArrayLike] = None
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """One step of torch.optim.Adam / AdamW -> (param, exp_avg, exp_avg_sq, max_exp_avg_sq). Pure.

    ``step`` counts from 1. Buffers start at zero (pass zeros on the first step).
    Adam: g = grad + weight_decay * param. AdamW: param *= 1 - lr * weight_decay.
    m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2; vmax = max(vmax, v) for amsgrad;
    param -= lr / (1 - beta1^t) * m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps).
    """
    p = _float(param)
    t = p.dtype.type
    g = _float(grad, p.dtype)
    if decoupled_weight_decay:
        p = p * t(1 - lr * weight_decay)
    elif weight_decay != 0:
        g = g + t(weight_decay) * p
    m = t(beta1) * _float(exp_avg, p.dtype) + t(1 - beta1) * g
    v = t(beta2) * _float(exp_avg_sq, p.dtype) + t(1 - beta2) * g * g
    vmax = None
    if max_exp_avg_sq is not None:
        vmax = np.maximum(_float(max_exp_avg_sq, p.dtype), v)
    denom = np.sqrt(v if vmax is None else vmax) / t(np.sqrt(1 - beta2 ** step)) + t(eps)
    return p - t(lr / (1 - beta1 ** step)) * m / denom, m, v, vmax


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
