"""``pycnn.onnx.export``: a pycnn model as an ONNX graph (opset 17 or later), for ONNX Runtime and other runtimes.

How it works: the model is put in eval mode and run once on a small batch of
zeros; every module met on the way is translated by the converter registered
for its class in :data:`CONVERTERS`, which sees the module, the ONNX names of
its inputs and the shapes pycnn computed for its inputs and output (so
shape-dependent choices -- adaptive pooling windows, resize sizes -- come
from pycnn itself, not from a second implementation of its shape rules).
Containers (``Sequential``, ``Residual``/``BasicBlock``, graphs built with
``nn.Model``) are converters too: they translate their children in the
order their forward calls them. The batch dimension is the symbolic ``N``
unless ``dynamic_batch=False``; the other dimensions are those of
``input_shape``.

Adding a layer is one entry: decorate a function ``(builder, module,
input names, input shapes, output shape) -> output name`` with
``@converts(LayerClass)``. A module whose class (or nearest base class
whose ``forward`` it inherits) has no converter is refused with an error
naming it.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, cast

import numpy as np
import onnx
from onnx import TensorProto, helper

from .. import nn
from ..functional.conv import conv_padding
from ..nn.graph import flat_args

__all__ = ["export", "converts", "CONVERTERS", "MIN_OPSET", "UnsupportedModuleError"]

#: The oldest opset written. The operators used here have had their present meaning since opsets 13-15
#: (Softmax over one axis, Shape's start/end); 17 is what every ONNX Runtime release of recent years runs.
MIN_OPSET = 17
_BATCH = "N"  # the name of the symbolic batch dimension

Shape = Tuple[int, ...]


class UnsupportedModuleError(TypeError):
    """A module (or a setting of one) that has no ONNX translation."""


@dataclass
class _Value:
    """An array flowing through the export: its ONNX name and pycnn's value for the probe batch."""

    name: str
    array: np.ndarray


@dataclass
class Builder:
    """The ONNX graph being written: nodes, initializers (weights) and unique names."""

    opset: int
    module_names: Dict[int, str]  # id(module) -> dotted name in the exported model ("" for the root)
    nodes: List[onnx.NodeProto] = field(default_factory=list)
    initializers: List[onnx.TensorProto] = field(default_factory=list)
    _used: Dict[str, int] = field(default_factory=dict)
    _weights: Dict[int, Tuple[np.ndarray, str]] = field(default_factory=dict)

    def fresh(self, hint: str) -> str:
        """A name not used before in the graph, ``hint`` itself when free."""
        hint = hint or "value"
        n = self._used.get(hint, 0)
        self._used[hint] = n + 1
        return hint if n == 0 else f"{hint}_{n}"

    def name_of(self, module: nn.Module) -> str:
        return self.module_names.get(id(module)) or type(module).__name__.lower()

    def weight(self, array: np.ndarray, hint: str) -> str:
        """An initializer holding ``array`` as float32 (one per array: a shared layer's weights are written once)."""
        hit = self._weights.get(id(array))
        if hit is not None and hit[0] is array:
            return hit[1]
        name = self.fresh(hint)
        data = np.ascontiguousarray(array, dtype=np.float32)
        self.initializers.append(helper.make_tensor(name, TensorProto.FLOAT, data.shape, data.tobytes(), raw=True))
        self._weights[id(array)] = (array, name)  # the array is kept, so its id is not reused meanwhile
        return name

    def constant(self, values: Union[Sequence[float], Sequence[int], float], hint: str,
                 dtype: Any = np.float32) -> str:
        """A small constant initializer (a scalar when ``values`` is one number)."""
        name = self.fresh(hint)
        data = np.asarray(values, dtype=dtype)
        self.initializers.append(onnx.numpy_helper.from_array(data, name))
        return name

    def node(self, op: str, inputs: Sequence[str], hint: str, **attrs: Any) -> str:
        """Append one node with one output; returns the output's name."""
        out = self.fresh(hint)
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=self.fresh(f"{hint}/{op}"), **attrs))
        return out


# A leaf converter: (builder, module, input names, input shapes, output shape) -> output name.
LayerConverter = Callable[[Builder, Any, List[str], List[Shape], Shape], str]
# What CONVERTERS holds: (exporter, module, positional arguments as values or lists of values) -> output value(s).
Converter = Callable[["_Exporter", Any, Sequence[Any]], List[_Value]]

#: ``{module class: converter}``; see :func:`converts`.
CONVERTERS: Dict[type, Converter] = {}


def converts(*classes: type) -> Callable[[LayerConverter], LayerConverter]:
    """Register a layer converter for ``classes`` (a decorator).

    The function receives the :class:`Builder`, the module (in eval mode),
    the ONNX names of its inputs (a merge layer's list, flattened), their
    shapes and the output's shape (pycnn's, for the probe batch), adds its
    nodes with ``builder.node`` / ``builder.weight`` and returns the name of
    the output.
    """
    def register(fn: LayerConverter) -> LayerConverter:
        def convert(ex: _Exporter, module: Any, args: Sequence[Any]) -> List[_Value]:
            call_args = [[v.array for v in a] if isinstance(a, list) else a.array for a in args]
            flat = flat_args(args)
            y = module(*call_args)
            name = fn(ex.b, module, [v.name for v in flat], [tuple(v.array.shape) for v in flat], tuple(y.shape))
            return [_Value(name, y)]
        for cls in classes:
            CONVERTERS[cls] = convert
        return fn
    return register


def _container(*classes: type) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        for cls in classes:
            CONVERTERS[cls] = fn
        return fn
    return register


def converter_for(cls: type) -> Optional[Converter]:
    """The converter of ``cls``, or of its nearest base class whose forward it runs unchanged; None if none."""
    for base in cls.__mro__:
        fn = CONVERTERS.get(base)
        if fn is None:
            continue
        # A subclass with a forward of its own computes something else: the base's translation would be wrong.
        if all(getattr(cls, attr, None) is getattr(base, attr, None) for attr in ("forward", "_forward")):
            return fn
        break
    return None


def _converter_for(module: nn.Module) -> Converter:
    fn = converter_for(type(module))
    if fn is not None:
        return fn
    supported = ", ".join(sorted(c.__name__ for c in CONVERTERS))
    raise UnsupportedModuleError(
        f"pycnn.onnx.export: no ONNX translation for {type(module).__name__} ({module!r:.120}); supported "
        f"modules: {supported}. Register one with pycnn.onnx.exporter.converts({type(module).__name__})")


class _Exporter:
    def __init__(self, builder: Builder) -> None:
        self.b = builder

    def convert(self, module: nn.Module, args: Sequence[Any]) -> List[_Value]:
        return _converter_for(module)(self, module, args)


# ---------------------------------------------------------------------------------------------- layers
def _conv_pads(m: Any) -> List[int]:
    """ONNX's pads (all begins, then all ends) of a convolution of any dimension, 'same' split as pycnn does."""
    begins, ends = [], []
    for axis, (k, s, d) in enumerate(zip(m.kernel_size, m.stride, m.dilation)):
        # pycnn's rule, per axis as the second of a pair (conv_padding takes 2-D windows)
        p = m.padding if isinstance(m.padding, str) else (0, m.padding[axis])
        _, _, begin, end = conv_padding(p, (1, k), (1, s), (1, d), type(m).__name__)
        begins.append(begin)
        ends.append(end)
    return begins + ends


def _weight_and_bias(b: Builder, m: Any) -> List[str]:
    where = b.name_of(m)
    names = [b.weight(m.weight.data, f"{where}.weight")]
    if m.bias is not None:
        names.append(b.weight(m.bias.data, f"{where}.bias"))
    return names


@converts(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def _conv(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
    return b.node("Conv", xs + _weight_and_bias(b, m), b.name_of(m), kernel_shape=list(m.kernel_size),
                  strides=list(m.stride), dilations=list(m.dilation), pads=_conv_pads(m), group=m.groups)


@converts(nn.ConvTranspose1d, nn.ConvTranspose2d)
def _conv_transpose(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
    where = b.name_of(m)
    attrs = dict(kernel_shape=list(m.kernel_size), strides=list(m.stride), dilations=list(m.dilation), group=m.groups)
    pads, extra = list(m.padding), list(m.output_padding)
    if all(o < s for o, s in zip(extra, m.stride)):
        return b.node("ConvTranspose", xs + _weight_and_bias(b, m), where, pads=pads * 2, output_padding=extra,
                      **attrs)
    # output_padding >= stride (allowed by PyTorch when below the dilation) is refused by ONNX Runtime. The
    # same output: of the full transposed convolution, crop padding at the start and padding - output_padding
    # at the end; where output_padding exceeds padding, the rows past the full output are zeros; then the bias.
    ends = [max(p - o, 0) for p, o in zip(pads, extra)]
    w = b.weight(m.weight.data, f"{where}.weight")
    y = b.node("ConvTranspose", [xs[0], w], f"{where}/full", pads=pads + ends, **attrs)
    beyond = [max(o - p, 0) for p, o in zip(pads, extra)]
    if any(beyond):
        zeros = [0] * (2 + len(pads))
        y = b.node("Pad", [y, b.constant(zeros + [0, 0] + beyond, f"{where}/pads", dtype=np.int64)], f"{where}/pad")
    if m.bias is None:
        return b.node("Identity", [y], where)
    bias = b.weight(m.bias.data.reshape((-1,) + (1,) * len(pads)), f"{where}.bias")
    return b.node("Add", [y, bias], where)


@converts(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
def _batch_norm(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
    where = b.name_of(m)
    if not m.track_running_stats:
        raise UnsupportedModuleError(
            f"pycnn.onnx.export: {type(m).__name__} {where!r} has track_running_stats=False, so its eval-mode "
            f"output uses the statistics of each batch; ONNX's BatchNormalization (inference) needs running "
            f"statistics")
    C = m.num_features
    scale = m.weight.data if m.weight is not None else np.ones(C, np.float32)
    shift = m.bias.data if m.bias is not None else np.zeros(C, np.float32)
    inputs = [b.weight(scale, f"{where}.weight"), b.weight(shift, f"{where}.bias"),
              b.weight(m.running_mean, f"{where}.running_mean"), b.weight(m.running_var, f"{where}.running_var")]
    return b.node("BatchNormalization", xs + inputs, where, epsilon=float(m.eps))


def _unary(op: str, **attrs: Any) -> LayerConverter:
    def convert(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
        return b.node(op, xs, b.name_of(m), **{k: (v(m) if callable(v) else v) for k, v in attrs.items()})
    return convert


converts(nn.ReLU)(_unary("Relu"))
converts(nn.Sigmoid)(_unary("Sigmoid"))
converts(nn.Tanh)(_unary("Tanh"))
converts(nn.LeakyReLU)(_unary("LeakyRelu", alpha=lambda m: float(m.negative_slope)))
converts(nn.ELU)(_unary("Elu", alpha=lambda m: float(m.alpha)))


@converts(nn.Softmax)
def _softmax(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
    ndim = len(shapes[0])
    axis = m.dim if m.dim is not None else (0 if ndim in (0, 1, 3) else 1)  # PyTorch's legacy rule, as pycnn's
    return b.node("Softmax", xs, b.name_of(m), axis=int(axis))


@converts(nn.GELU)
def _gelu(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
    where = b.name_of(m)
    if b.opset >= 20:
        return b.node("Gelu", xs, where, approximate=m.approximate)
    (x,) = xs
    if m.approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = b.node("Mul", [b.node("Mul", [x, x], f"{where}/x2"), x], f"{where}/x3")
        inner = b.node("Add", [x, b.node("Mul", [x3, b.constant(0.044715, f"{where}/c")], f"{where}/cx3")],
                       f"{where}/poly")
        t = b.node("Tanh", [b.node("Mul", [inner, b.constant(math.sqrt(2 / math.pi), f"{where}/k")],
                                   f"{where}/scaled")], f"{where}/tanh")
    else:  # (x (1 + erf(x / sqrt(2)))) 0.5, node for node as torch.onnx writes it, which pycnn.onnx.load reads back
        t = b.node("Erf", [b.node("Div", [x, b.constant(math.sqrt(2), f"{where}/sqrt2")], f"{where}/scaled")],
                   f"{where}/erf")
        one_plus = b.node("Add", [t, b.constant(1.0, f"{where}/one")], f"{where}/one_plus")
        return b.node("Mul", [b.node("Mul", [x, one_plus], f"{where}/x_one_plus"), b.constant(0.5, f"{where}/half")],
                      where)
    one_plus = b.node("Add", [t, b.constant(1.0, f"{where}/one")], f"{where}/one_plus")
    half_x = b.node("Mul", [x, b.constant(0.5, f"{where}/half")], f"{where}/half_x")
    return b.node("Mul", [half_x, one_plus], where)


def _pool_window(m: Any, ndim: int) -> Tuple[List[int], List[int], List[int]]:
    # ints (1-D), pairs (2-D) or triples (3-D, followed by dilation and/or ceil_mode), as the functional ops take them
    k, s, p = m._window()[:3]
    if ndim == 1:
        return [int(k)], [int(s)], [int(p)] * 2
    return [int(v) for v in k], [int(v) for v in s], [int(v) for v in p] * 2


def _ceil_mode(m: Any) -> int:
    return int(bool(getattr(m, "ceil_mode", False)))  # pycnn's pools floor; a ceil_mode attribute is honoured


@converts(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
def _max_pool(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
    k, s, p = _pool_window(m, len(shapes[0]) - 2)
    dilation = [int(d) for d in getattr(m, "_d", (1,) * len(k))]  # MaxPool3d's (the 1-D/2-D pools have none)
    return b.node("MaxPool", xs, b.name_of(m), kernel_shape=k, strides=s, pads=p, ceil_mode=_ceil_mode(m),
                  dilations=dilation)


@converts(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
def _avg_pool(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
    k, s, p = _pool_window(m, len(shapes[0]) - 2)
    return b.node("AveragePool", xs, b.name_of(m), kernel_shape=k, strides=s, pads=p, ceil_mode=_ceil_mode(m),
                  count_include_pad=int(m.count_include_pad))


@converts(nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
def _adaptive_avg_pool(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
    where = b.name_of(m)
    size_in, size_out = shapes[0][2:], out[2:]
    if all(o == 1 for o in size_out):
        return b.node("GlobalAveragePool", xs, where)
    if any(i % o for i, o in zip(size_in, size_out)):
        raise UnsupportedModuleError(
            f"pycnn.onnx.export: {type(m).__name__} {where!r} pools {size_in} to {size_out}: its windows differ "
            f"in size (the input is not a multiple of the output), which no ONNX pooling operator expresses; "
            f"export with an input_shape that is a multiple of output_size")
    k = [i // o for i, o in zip(size_in, size_out)]
    return b.node("AveragePool", xs, where, kernel_shape=k, strides=k)


@converts(nn.Upsample)
def _upsample(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
    where = b.name_of(m)
    if m.mode in ("linear", "bilinear"):
        attrs: Dict[str, Any] = dict(mode="linear", coordinate_transformation_mode=(
            "align_corners" if m.align_corners else "half_pixel"))
    elif m.mode == "nearest":  # input index floor(o * in / out)
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    else:  # 'nearest-exact': floor((o + 0.5) * in / out)
        attrs = dict(mode="nearest", coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_ceil")
    dims = len(shapes[0]) - 2
    if m.scale_factor is not None and not m.recompute_scale_factor:
        # The coordinate map uses 1 / scale_factor (not in / out): give ONNX the factors themselves.
        factors = list(m.scale_factor) if isinstance(m.scale_factor, tuple) else [m.scale_factor] * dims
        exact = all(float(n) * f == o for n, f, o in zip(shapes[0][2:], factors, out[2:]))
        if m.mode != "nearest" and not exact:
            # With a factor whose output size is rounded down, runtimes disagree on the half-pixel map:
            # ONNX Runtime takes out / in, the specification's reference 1 / factor (pycnn's). Exact anywhere:
            # the interpolation as matrices.
            return _resize_by_matrices(b, m, xs[0], shapes[0], factors, where)
        scales = b.constant([1.0, 1.0] + [float(f) for f in factors], f"{where}/scales")
        return b.node("Resize", [xs[0], "", scales], where, **attrs)
    # An explicit output size: (N, C) of the input, then pycnn's spatial size.
    n_c = b.node("Shape", xs[:1], f"{where}/batch_channels", start=0, end=2)
    spatial = b.constant(list(out[2:]), f"{where}/spatial_size", dtype=np.int64)
    sizes = b.node("Concat", [n_c, spatial], f"{where}/sizes", axis=0)
    return b.node("Resize", [xs[0], "", "", sizes], where, **attrs)


def _resize_by_matrices(b: Builder, m: Any, x: str, shape: Shape, factors: Sequence[float], where: str) -> str:
    """Resize as one MatMul per spatial axis, by interpolation matrices read off pycnn's own resize.

    Resizing is separable and linear: along an axis, output o = sum_i M[o, i] x[i]. Channel c of the probe
    holds the one-hot vector of input index c along the axis (constant along the others, which are 1 long
    where the factor keeps a length of 1 non-empty), so pycnn's output channel c is column c of M, with
    pycnn's indices and weights.
    """
    spatial, y_name = shape[2:], x
    for axis, n in enumerate(spatial):
        lengths = tuple(n if a == axis else (1 if f >= 1 else k) for a, (k, f) in enumerate(zip(spatial, factors)))
        probe = np.zeros((1, n) + lengths, np.float32)
        for c in range(n):
            probe[(0, c) + (slice(None),) * axis + (c,)] = 1.0  # (and all along the axes after)
        y = m(probe)  # (1, n, *lengths resized)
        matrix = y[(0, slice(None)) + tuple(0 if a != axis else slice(None) for a in range(len(spatial)))].T
        if matrix.shape[0] == n and np.array_equal(matrix, np.eye(n, dtype=np.float32)):
            continue  # this axis is kept as it is
        last = axis == len(spatial) - 1
        # H of (N, C, H, W): M @ x; W (the last axis): x @ M^T
        weights = b.weight(matrix.T.copy() if last else matrix.copy(), f"{where}/matrix{axis}")
        y_name = b.node("MatMul", [y_name, weights] if last else [weights, y_name], f"{where}/axis{axis}")
    return b.node("Identity", [y_name], where)


@converts(nn.Linear)
def _linear(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
    return b.node("Gemm", xs + _weight_and_bias(b, m), b.name_of(m), transB=1)


@converts(nn.Flatten)
def _flatten(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
    ndim = len(shapes[0])
    start, end = m.start_dim % ndim, m.end_dim % ndim
    if (start, end) == (1, ndim - 1):  # ONNX's Flatten always gives 2-D: (N, rest) only from axis 1
        return b.node("Flatten", xs, b.name_of(m), axis=1)
    # 0 copies the input's dimension (the batch too), -1 is the merged one.
    target = [0] * start + [-1] + list(out[start + 1:])
    return b.node("Reshape", [xs[0], b.constant(target, f"{b.name_of(m)}/shape", dtype=np.int64)], b.name_of(m))


def _merge(op: str) -> LayerConverter:
    def convert(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
        where, y = b.name_of(m), xs[0]
        for i, x in enumerate(xs[1:]):  # left to right, as pycnn sums and multiplies
            y = b.node(op, [y, x], where if i == len(xs) - 2 else f"{where}/partial")
        return y if len(xs) > 1 else b.node("Identity", xs, where)
    return convert


converts(nn.Add)(_merge("Add"))
converts(nn.Multiply)(_merge("Mul"))


@converts(nn.Concat)
def _concat(b: Builder, m: Any, xs: List[str], shapes: List[Shape], out: Shape) -> str:
    return b.node("Concat", xs, b.name_of(m), axis=m.dim)


# ---------------------------------------------------------------------------------------------- no-ops, containers
@_container(nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
def _dropout(ex: _Exporter, m: Any, args: Sequence[Any]) -> List[_Value]:
    (x,) = args  # the identity in eval mode: no node
    return [x]


@_container(nn.Conv2Plus1d)
def _conv2plus1d(ex: _Exporter, m: Any, args: Sequence[Any]) -> List[_Value]:
    return ex.convert(m.temporal, ex.convert(m.relu, ex.convert(m.spatial, args)))


@_container(nn.Sequential)
def _sequential(ex: _Exporter, m: Any, args: Sequence[Any]) -> List[_Value]:
    values = list(args)
    for child in m:
        values = ex.convert(child, values)
    return values


@_container(nn.Residual)
def _residual(ex: _Exporter, m: Any, args: Sequence[Any]) -> List[_Value]:
    (x,) = args
    body, shortcut = m._body(), m._shortcut()
    (y,) = ex.convert(body, [x])
    (s,) = [x] if shortcut is None else ex.convert(shortcut, [x])
    where = ex.b.name_of(m)
    total = ex.b.node("Add", [y.name, s.name], f"{where}/add" if m._relu_after() else where)
    out = y.array + s.array
    if m._relu_after():
        total = ex.b.node("Relu", [total], where)
        out = np.maximum(out, 0)
    return [_Value(total, out.astype(np.float32))]


@_container(nn.Model)
def _graph(ex: _Exporter, m: Any, args: Sequence[Any]) -> List[_Value]:
    # A graph called as model(a, b) or model([a, b]) (as pycnn's forward takes either): one value per input.
    values: Dict[int, _Value] = {id(v): a for v, a in zip(m.inputs, flat_args(args))}
    for node in m._nodes:
        node_args = [[values[id(v)] for v in a] if isinstance(a, list) else values[id(a)] for a in node.args]
        for v, out in zip(node.outputs, ex.convert(node.module, node_args)):
            values[id(v)] = out
    return [values[id(v)] for v in m.outputs]


# ---------------------------------------------------------------------------------------------- export
def _shapes(model: nn.Module, input_shape: Any) -> List[Shape]:
    """One shape per input, without the batch dimension."""
    if input_shape is None:
        if isinstance(model, nn.Model):
            return [tuple(int(cast(int, d)) for d in s[1:]) for s in model.input_shapes]
        raise TypeError(f"pycnn.onnx.export: input_shape is required for a {type(model).__name__} (one sample's "
                        f"shape without the batch dimension, e.g. (3, 32, 32)); only an nn.Model knows its own")
    try:
        many = len(input_shape) > 0 and all(isinstance(s, (tuple, list)) for s in input_shape)
        shapes = [tuple(s) for s in input_shape] if many else [tuple(input_shape)]
    except TypeError:
        raise TypeError(f"pycnn.onnx.export: input_shape must be a sequence of ints (or one per input), "
                        f"got {input_shape!r}") from None
    for s in shapes:
        if not s or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in s):
            raise ValueError(f"pycnn.onnx.export: input_shape must be positive ints without the batch dimension, "
                             f"e.g. (3, 32, 32), got {input_shape!r}")
    return [tuple(int(d) for d in s) for s in shapes]


def _value_info(name: str, shape: Shape, batch: Union[int, str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch] + list(shape[1:]))


def _names(given: Optional[Sequence[str]], n: int, base: str) -> List[str]:
    if given is None:
        return [base] if n == 1 else [f"{base}_{i}" for i in range(n)]
    names = [str(v) for v in given]
    if len(names) != n or len(set(names)) != n or not all(names):
        raise ValueError(f"pycnn.onnx.export: {base}_names must be {n} distinct non-empty names, got {given!r}")
    return names


def export(model: nn.Module, path: Optional[Union[str, "os.PathLike[str]"]], input_shape: Any = None, *,
           opset: int = MIN_OPSET, dynamic_batch: bool = True, input_names: Optional[Sequence[str]] = None,
           output_names: Optional[Sequence[str]] = None) -> onnx.ModelProto:
    """Write ``model`` as an ONNX file at ``path`` (None: write nothing) and return the ``onnx.ModelProto``.

    Args:
        model: any pycnn module built from the layers pycnn has (see docs/onnx.md), a ``Sequential``,
            a ResNet, or a graph (``nn.Model``, several inputs and outputs, shared layers).
        path: where to write the ``.onnx`` file.
        input_shape: one sample's shape without the batch dimension, ``(C, H, W)`` or ``(C, L)``, or a
            list of them for several inputs; optional for an ``nn.Model`` (it knows its inputs' shapes).
        opset: the ONNX opset, from 17 to what the installed onnx package knows.
        dynamic_batch: the batch dimension is the symbolic ``N`` (any batch size runs); False fixes it at 1.
        input_names, output_names: the graph's input and output names (default ``input``, ``output``,
            or ``input_0``, ``input_1``, ... for several).

    The model is exported in eval mode (dropout removed, BatchNorm with its running statistics);
    each module's training flag is put back afterwards. The file passes
    ``onnx.checker.check_model(full_check=True)``. Raises ``UnsupportedModuleError`` (a ``TypeError``)
    naming a module that has no translation.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"pycnn.onnx.export: model must be a pycnn nn.Module, got {type(model).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"pycnn.onnx.export: opset must be an int from {MIN_OPSET} to {newest} (the installed "
                         f"onnx's newest), got {opset!r}")
    shapes = _shapes(model, input_shape)
    batch: Union[int, str] = _BATCH if dynamic_batch else 1
    probe = 2 if dynamic_batch else 1  # 2: the output's batch axis is told apart from a dimension of 1

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        b = Builder(int(opset), {id(m): name for name, m in model.named_modules()})
        in_names = _names(input_names, len(shapes), "input")
        inputs = [_Value(name, np.zeros((probe,) + s, np.float32)) for name, s in zip(in_names, shapes)]
        for v in inputs:
            b.fresh(v.name)
        outputs = _Exporter(b).convert(model, inputs)
    finally:
        model.train(modes[0][1])
        for m, mode in modes:
            object.__setattr__(m, "training", mode)  # (as Module.train sets it; a mixed-mode model stays mixed)

    out_names = _names(output_names, len(outputs), "output")
    graph_inputs = {v.name for v in inputs}
    produced = {o for n in b.nodes for o in n.output}
    taken = produced | graph_inputs | {t.name for t in b.initializers}
    for name in out_names:
        if name in taken:
            raise ValueError(f"pycnn.onnx.export: the output name {name!r} is already the name of a value in the "
                             f"graph (a layer's); choose other output_names")
    renamed: Dict[str, str] = {}  # a node output -> the graph output name it now carries
    for value, name in zip(outputs, out_names):
        src = renamed.get(value.name, value.name)
        if src in graph_inputs or src not in produced or value.name in renamed:
            # An input given back, or a value given twice: an Identity node carries the output's name.
            b.nodes.append(helper.make_node("Identity", [src], [name], name=b.fresh(f"{name}/Identity")))
            continue
        for n in b.nodes:  # the producing node writes the output's name, and its readers read it
            n.output[:] = [name if o == src else o for o in n.output]
            n.input[:] = [name if i == src else i for i in n.input]
        renamed[src] = name
    out_info = [_value_info(name, tuple(v.array.shape), batch if v.array.shape[:1] == (probe,) else
                            int(v.array.shape[0])) for v, name in zip(outputs, out_names)]
    graph = helper.make_graph(b.nodes, f"pycnn_{type(model).__name__}",
                              [_value_info(v.name, v.array.shape, batch) for v in inputs], out_info,
                              initializer=b.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                              producer_name="pycnn", producer_version=_version())
    proto.ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", int(opset))])
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


def _version() -> str:
    from .. import __version__

    return cast(str, __version__)
