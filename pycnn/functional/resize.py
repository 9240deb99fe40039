"""Resizing: ``interpolate`` (PyTorch's ``F.interpolate`` with mode 'nearest', 'nearest-exact', 'linear' or
'bilinear') and its backward; (N, C, L) input runs as (N, C, 1, L) on the 2-D kernels (no copy)."""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from .. import _core
from .._checks import check_bool, check_choice, check_int, check_real, check_shape
from ._convert import as_float32

__all__ = ["interpolate", "interpolate_backward", "INTERPOLATE_MODES", "resize_args"]

INTERPOLATE_MODES = ("nearest", "nearest-exact", "linear", "bilinear")
Size = Union[int, Sequence[int]]
ScaleFactor = Union[float, Sequence[float]]
# What the kernels take: the (N, C, H, W) view's shape, output (Ho, Wo), the scale factors the coordinate
# map uses (0.0: the output size was given, in/out is used), the kernel's mode, align_corners.
ResizeArgs = Tuple[Tuple[int, ...], Tuple[int, int], Tuple[float, float], str, bool]


def _per_axis(v: object, dims: int, name: str, op: str) -> List[object]:
    if isinstance(v, (tuple, list)):
        if len(v) != dims:
            raise ValueError(f"{op}: {name} must be a number or a sequence of {dims} numbers for {dims}-D "
                             f"spatial input, got {v!r}")
        return list(v)
    return [v] * dims


def check_resize_options(size: Optional[Size], scale_factor: Optional[ScaleFactor], mode: str,
                         align_corners: Optional[bool], recompute_scale_factor: Optional[bool],
                         op: str) -> Tuple[str, bool]:
    """The checks that need no input shape (what ``nn.Upsample``'s constructor runs) -> (mode, align_corners)."""
    mode = check_choice(mode, "mode", op, INTERPOLATE_MODES)
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: exactly one of size and scale_factor must be given, got size={size!r}, "
                         f"scale_factor={scale_factor!r}")
    if recompute_scale_factor is not None:
        check_bool(recompute_scale_factor, "recompute_scale_factor", op)
        if recompute_scale_factor and size is not None:
            raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an explicit size")
    if align_corners is not None:
        check_bool(align_corners, "align_corners", op)
        if mode.startswith("nearest"):
            raise ValueError(f"{op}: align_corners can only be set with the interpolating modes 'linear' and "
                             f"'bilinear', got mode={mode!r}")
    for name, given in (("size", size), ("scale_factor", scale_factor)):
        if isinstance(given, (tuple, list)) and len(given) not in (1, 2):
            raise ValueError(f"{op}: {name} must be a number or one per spatial axis (1 or 2 of them: "
                             f"'linear' takes (N, C, L), the others (N, C, H, W) too), got {given!r}")
    if size is not None:
        for v in size if isinstance(size, (tuple, list)) else [size]:
            check_int(v, "size", op, 1)
    if scale_factor is not None:
        for v in scale_factor if isinstance(scale_factor, (tuple, list)) else [scale_factor]:
            if not check_real(v, "scale_factor", op, finite=True) > 0:
                raise ValueError(f"{op}: scale_factor must be positive, got {v!r}")
    return mode, bool(align_corners)


def resize_args(x_shape: Sequence[int], size: Optional[Size], scale_factor: Optional[ScaleFactor], mode: str,
                align_corners: Optional[bool], recompute_scale_factor: Optional[bool], op: str) -> ResizeArgs:
    """Resolve :func:`interpolate`'s arguments for an input of ``x_shape`` (PyTorch's rules)."""
    mode, align = check_resize_options(size, scale_factor, mode, align_corners, recompute_scale_factor, op)
    shape = tuple(int(d) for d in x_shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"{op}: expected input of shape (N, C, L) or (N, C, H, W), got {shape}")
    dims = len(shape) - 2
    if mode == "linear" and dims != 1:
        raise ValueError(f"{op}: mode 'linear' needs 3-D input (N, C, L), got {shape}; use 'bilinear' for images")
    if mode == "bilinear" and dims != 2:
        raise ValueError(f"{op}: mode 'bilinear' needs 4-D input (N, C, H, W), got {shape}; use 'linear'")
    if size is not None:
        out = [check_int(v, "size", op, 1) for v in _per_axis(size, dims, "size", op)]
        scales = [0.0] * dims
    else:
        factors = [check_real(v, "scale_factor", op, finite=True)
                   for v in _per_axis(scale_factor, dims, "scale_factor", op)]
        out = [math.floor(float(n) * f) for n, f in zip(shape[2:], factors)]  # PyTorch's output size
        if min(out) < 1 and min(shape[2:]) > 0:
            raise ValueError(f"{op}: scale_factor={scale_factor!r} gives an empty output for input {shape}")
        # With recompute_scale_factor the coordinate map uses in/out, as for an explicit size.
        scales = [0.0] * dims if recompute_scale_factor else factors
    if dims == 1:  # (N, C, L) as (N, C, 1, L): the unit axis maps 1 -> 1, the identity
        shape, out, scales = (shape[0], shape[1], 1, shape[2]), [1] + out, [0.0] + scales
    kernel_mode = "bilinear" if mode == "linear" else mode
    return shape, (out[0], out[1]), (scales[0], scales[1]), kernel_mode, align


def interpolate(input: ArrayLike, size: Optional[Size] = None, scale_factor: Optional[ScaleFactor] = None,
                mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None) -> np.ndarray:
    """Resize ``input`` (N, C, H, W) or (N, C, L) to ``size`` or by ``scale_factor`` (PyTorch's ``F.interpolate``).

    ``mode``: 'nearest' (input index ``floor(o * in / out)``, PyTorch's 'nearest'), 'nearest-exact'
    (``floor((o + 0.5) * in / out)``, pixel centres), 'bilinear' (4-D) or 'linear' (3-D). With
    ``align_corners=True`` the corner pixels' centres of input and output coincide; False (the default
    for the linear modes) aligns the pixel areas; it must stay None for the nearest modes. Exactly one
    of ``size`` (int or one per spatial axis) and ``scale_factor`` (float or one per axis) is given; the
    output size is ``floor(in * scale_factor)``, and the coordinate map uses ``1 / scale_factor`` unless
    ``recompute_scale_factor=True`` (then ``in / out``, as for an explicit size). Coordinates are computed
    in float32 as PyTorch computes them, so the indices and weights are PyTorch's.
    """
    x = as_float32(input, "input")
    shape, out, scales, kernel_mode, align = resize_args(x.shape, size, scale_factor, mode, align_corners,
                                                         recompute_scale_factor, "interpolate")
    y = _core.upsample2d_fwd(x.reshape(shape), out, scales, kernel_mode, align)
    return y[:, :, 0, :] if x.ndim == 3 else y


def interpolate_backward(grad_output: ArrayLike, input_shape: Sequence[int], size: Optional[Size] = None,
                         scale_factor: Optional[ScaleFactor] = None, mode: str = "nearest",
                         align_corners: Optional[bool] = None,
                         recompute_scale_factor: Optional[bool] = None) -> np.ndarray:
    """Gradient of :func:`interpolate` with the same arguments -> dx of ``input_shape`` (a new array): each
    output's gradient added to the input pixels it read, times their interpolation weights."""
    op = "interpolate_backward"
    dy = as_float32(grad_output, "grad_output")
    input_shape = check_shape(input_shape, "input_shape", op)
    shape, out, scales, kernel_mode, align = resize_args(input_shape, size, scale_factor, mode, align_corners,
                                                         recompute_scale_factor, op)
    if len(input_shape) == 3:  # checked here to quote (N, C, L) shapes, not the (N, C, 1, L) view's
        if dy.shape != input_shape[:2] + out[1:]:
            raise ValueError(f"{op}: expected grad_output of shape {input_shape[:2] + out[1:]} for input "
                             f"{input_shape}, got {dy.shape}")
        dy = dy[:, :, None, :]
    return _core.upsample2d_bwd(dy, shape, out, scales, kernel_mode, align).reshape(input_shape)
