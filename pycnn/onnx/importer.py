"""Reading ONNX files into pycnn networks: ``load("model.onnx")`` gives a ``Sequential`` or an ``nn.Model``.

::

    from pycnn.onnx.importer import load
    model = load("resnet18.onnx")          # e.g. from torch.onnx.export
    y = model(x)                           # the same outputs as ONNX Runtime, to float32 rounding
    pycnn.fit(model, ...)                  # an ordinary pycnn network: trainable, savable

A graph that is one chain of layers (one input, one output, each layer
reading the previous one's output) becomes an ``nn.Sequential``; anything
else (skip connections, several inputs or outputs) a functional
``nn.Model`` built with ``nn.Input`` and merge layers (:mod:`pycnn.nn.graph`).

**Operators** (the default ONNX domain, opsets 7 to 22): Conv and ConvTranspose
(1-D/2-D), BatchNormalization (inference), Relu, LeakyRelu, Elu, Gelu (and
the ``x * 0.5 * (1 + erf(x / sqrt(2)))`` subgraph that exporters write
before opset 20), Sigmoid, Tanh, Softmax, MaxPool, AveragePool,
GlobalAveragePool, ReduceMean over the spatial axes, Resize (nearest,
bilinear), Gemm and MatMul (+ Add) as ``Linear``, Flatten, Reshape to
(batch, -1) as ``Flatten``, Add, Mul and Concat of two graph values as
``nn.Add``/``nn.Multiply``/``nn.Concat``; Identity and Dropout are dropped;
Constant nodes and initializers give weights. Anything else raises
:class:`UnsupportedOnnxError` naming the node and its operator.

**Safety.** Files are parsed with ``onnx.load_model_from_string`` (no
external data loaded by onnx, no pickles: weights are read from
``raw_data`` and the typed fields with NumPy). Before any weight array is
made, the declared element count of every initializer and constant is
added up in Python integers and refused above ``max_elements``; every
array's bytes must match its declared shape. External data files must lie
inside the model's folder (after resolving symbolic links); they are read
only for a model given as a path. Graphs with cycles, inputs no one
defines, values defined twice, or absurd attributes are refused with
:class:`InvalidOnnxError` (a ``ValueError``) before the network is built,
and the network is built inside :func:`pycnn.nn._budget.element_budget`, so
it holds no more parameters than the file's weights. No value may hold more
than 2^27 elements per sample (checked before the layer that makes it runs).

**NHWC inputs** (Keras files converted with tf2onnx start with
``Transpose(perm=[0, 3, 1, 2])``): refused by default, because pycnn has no
layout-permuting layer and a model that silently expected NCHW where the
file says NHWC would give wrong answers. ``drop_input_transpose=True``
removes that transpose: the pycnn model then takes NCHW arrays
(``x.transpose(0, 3, 1, 2)`` of what the ONNX model takes).
"""
from __future__ import annotations

import heapq
import math
import os
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from .. import nn
from ..nn import _budget
from ..nn.graph import SymbolicValue

if TYPE_CHECKING:
    import onnx

__all__ = ["load", "load_with_input_shapes", "UnsupportedOnnxError", "InvalidOnnxError",
           "DEFAULT_MAX_ELEMENTS", "DEFAULT_MAX_BYTES"]

#: Default bound on the elements all initializers and constants may declare (1 GiB of float32).
DEFAULT_MAX_ELEMENTS = 1 << 28
#: Default bound on the size of an ONNX file (protobuf cannot parse 2 GiB or more anyway).
DEFAULT_MAX_BYTES = (1 << 31) - 1
# Attribute integers (strides, pads, axes, kernel sizes) beyond this are absurd and refused.
_MAX_ATTR_INT = 1 << 24
# Elements one sample of any value in the graph may have (512 MiB of float32). Building the graph runs
# each layer on a batch of two zero samples to learn its output shape, so a file declaring a huge input,
# or a layer that blows its input up (padding, stride, resize factors), is refused before that allocation.
_MAX_SAMPLE_ELEMENTS = 1 << 27
# Elements a network may build beyond its file's weights: BatchNorm's num_batches_tracked, one per node.
_SLACK_PER_NODE = 4
_SUPPORTED_OPSETS = range(7, 23)

_PathOrBytes = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]
Value = Union[np.ndarray, SymbolicValue]


class UnsupportedOnnxError(ValueError):
    """The file is valid ONNX, but uses an operator or attribute pycnn cannot represent."""


class InvalidOnnxError(ValueError):
    """The file is not a well-formed ONNX model, or exceeds the limits it was loaded with."""


# ONNX TensorProto.DataType -> NumPy dtype (little-endian), and the typed field holding the values.
_DTYPES: Dict[int, Tuple[str, str]] = {
    1: ("<f4", "float_data"), 10: ("<f2", "int32_data"), 11: ("<f8", "double_data"),
    6: ("<i4", "int32_data"), 7: ("<i8", "int64_data"), 9: ("?", "int32_data"),
    2: ("u1", "int32_data"), 3: ("i1", "int32_data"),
}
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

_WINDOW = {"auto_pad", "pads", "strides", "kernel_shape", "dilations"}
# The attributes each operator's converter reads (or knows to be harmless); any other is refused, since an
# attribute the converter ignored could change what the node computes.
_KNOWN_ATTRIBUTES: Dict[str, Set[str]] = {
    "Conv": _WINDOW | {"group"},
    "ConvTranspose": _WINDOW | {"group", "output_padding", "output_shape"},
    "BatchNormalization": {"epsilon", "momentum", "training_mode", "spatial", "is_test", "consumed_inputs"},
    "MaxPool": _WINDOW | {"ceil_mode", "storage_order"},
    "AveragePool": _WINDOW | {"ceil_mode", "count_include_pad"},
    "GlobalAveragePool": set(), "Relu": set(), "Sigmoid": set(), "Tanh": set(), "Identity": set(),
    "LeakyRelu": {"alpha"}, "Elu": {"alpha"}, "Gelu": {"approximate"}, "Softmax": {"axis"},
    "ReduceMean": {"axes", "keepdims", "noop_with_empty_axes"},
    "Resize": {"mode", "coordinate_transformation_mode", "nearest_mode", "antialias", "exclude_outside",
               "cubic_coeff_a", "extrapolation_value", "axes", "keep_aspect_ratio_policy"},
    "Gemm": {"alpha", "beta", "transA", "transB"}, "MatMul": set(), "Flatten": {"axis"},
    "Reshape": {"allowzero"}, "Add": set(), "Mul": set(), "Concat": {"axis"},
    "Dropout": {"ratio", "seed", "is_test"}, "Transpose": {"perm"},
    "Constant": {"value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value", "value_string",
                 "value_strings"},
    "Erf": set(), "Div": set(),
}


def _declared_count(t: "onnx.TensorProto", what: str) -> int:
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        raise InvalidOnnxError(f"{what} declares negative dimensions {dims}")
    return math.prod(dims)  # Python integers: no overflow


class _TensorReader:
    """TensorProto -> ndarray, checked against the declared shape before anything is allocated."""

    def __init__(self, folder: Optional[str]) -> None:
        self.folder = folder

    def read(self, t: "onnx.TensorProto", what: str) -> np.ndarray:
        if t.data_type not in _DTYPES:
            raise UnsupportedOnnxError(f"{what} has ONNX data type {t.data_type}, which pycnn does not read "
                                       f"(float, float16, double, int8/32/64, uint8 and bool are read)")
        if t.HasField("segment"):
            raise UnsupportedOnnxError(f"{what} is a segmented tensor, which pycnn does not read")
        count = _declared_count(t, what)
        dtype, field = _DTYPES[t.data_type]
        dims = tuple(t.dims)
        if t.data_location == _EXTERNAL:
            raw = self._external(t, what, count * np.dtype(dtype).itemsize)
            return np.frombuffer(raw, dtype).reshape(dims).copy()
        if t.raw_data:
            nbytes = count * np.dtype(dtype).itemsize
            if len(t.raw_data) != nbytes:
                raise InvalidOnnxError(f"{what} declares shape {list(dims)} ({nbytes:,} bytes of {dtype}) but holds "
                                       f"{len(t.raw_data):,} bytes")
            return np.frombuffer(t.raw_data, dtype).reshape(dims).copy()
        values = getattr(t, field)
        if len(values) != count:
            raise InvalidOnnxError(f"{what} declares shape {list(dims)} ({count:,} values) but holds {len(values):,}")
        if t.data_type == 10:  # float16 values travel as their bit patterns in int32_data
            return np.asarray(values, np.uint16).view(np.float16).reshape(dims)
        return np.asarray(values, dtype).reshape(dims)

    def _external(self, t: "onnx.TensorProto", what: str, nbytes: int) -> bytes:
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        if self.folder is None:
            raise InvalidOnnxError(f"{what} is stored in an external file ({location!r}); external data is read "
                                   f"only for a model loaded from a path, not from bytes")
        target = os.path.realpath(os.path.join(self.folder, location))
        if not location or os.path.isabs(location) or os.path.commonpath([self.folder, target]) != self.folder:
            raise InvalidOnnxError(f"{what} refers to external data at {location!r}, outside the model's folder "
                                   f"{self.folder}; refusing to read it")
        try:
            offset = int(info.get("offset", "0"))
            length = int(info["length"]) if "length" in info else nbytes
        except ValueError:
            raise InvalidOnnxError(f"{what}: external data offset/length are not integers: {info}") from None
        if offset < 0 or length != nbytes:
            raise InvalidOnnxError(f"{what} declares {nbytes:,} bytes but its external data gives offset {offset}, "
                                   f"length {length}")
        if not os.path.isfile(target):
            raise InvalidOnnxError(f"{what}: external data file {location!r} not found in {self.folder}")
        if os.path.getsize(target) < offset + nbytes:
            raise InvalidOnnxError(f"{what}: external data file {location!r} holds {os.path.getsize(target):,} "
                                   f"bytes, fewer than offset {offset:,} + {nbytes:,}")
        with open(target, "rb") as f:
            f.seek(offset)
            return f.read(nbytes)


def _read_model(source: _PathOrBytes, max_bytes: int) -> Tuple["onnx.ModelProto", str, Optional[str]]:
    """The parsed model, a name for messages, and the folder external data may come from (None for bytes)."""
    import onnx

    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name, folder = bytes(source), "<bytes>", None
    else:
        path = os.fspath(source)
        name = path
        try:
            size = os.path.getsize(path)
        except OSError as e:
            raise FileNotFoundError(f"{path}: cannot read the ONNX file: {e.strerror or e}") from None
        if size > max_bytes:
            raise InvalidOnnxError(f"{path}: the file holds {size:,} bytes, more than max_bytes={max_bytes:,}")
        with open(path, "rb") as f:
            data = f.read()
        folder = os.path.dirname(os.path.realpath(path))
    if len(data) > max_bytes:
        raise InvalidOnnxError(f"{name}: {len(data):,} bytes, more than max_bytes={max_bytes:,}")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf's DecodeError, among others: the bytes are not a model
        raise InvalidOnnxError(f"{name}: not an ONNX model (protobuf could not parse it: {e})") from None
    if not model.HasField("graph"):
        raise InvalidOnnxError(f"{name}: not an ONNX model (it has no graph)")
    return model, name, folder


def _opset(model: "onnx.ModelProto", name: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise InvalidOnnxError(f"{name}: the model imports no version of the default ONNX operator set")
    version = max(versions)
    if version not in _SUPPORTED_OPSETS:
        raise UnsupportedOnnxError(f"{name}: opset {version} is not supported (pycnn reads opsets "
                                   f"{_SUPPORTED_OPSETS.start} to {_SUPPORTED_OPSETS.stop - 1})")
    return version


class _Node:
    """An ONNX node as the importer walks it (a plain copy: the GELU rewrite makes nodes of its own)."""

    __slots__ = ("name", "op", "inputs", "outputs", "attrs", "proto")

    def __init__(self, name: str, op: str, inputs: List[str], outputs: List[str], attrs: Dict[str, Any],
                 proto: Any = None) -> None:
        self.name, self.op, self.inputs, self.outputs, self.attrs, self.proto = name, op, inputs, outputs, attrs, proto

    def where(self) -> str:
        return f"node {self.name!r} ({self.op})"


def _attributes(proto: "onnx.NodeProto", where: str) -> Dict[str, Any]:
    """Attribute name -> Python value (TensorProto for tensors); a repeated name is refused."""
    out: Dict[str, Any] = {}
    for a in proto.attribute:
        if a.name in out:
            raise InvalidOnnxError(f"{where}: attribute {a.name!r} is given twice")
        kind = a.type
        if kind == 1:
            out[a.name] = float(a.f)
        elif kind == 2:
            out[a.name] = int(a.i)
        elif kind == 3:
            out[a.name] = a.s.decode("utf-8", "replace")
        elif kind == 4:
            out[a.name] = a.t
        elif kind == 6:
            out[a.name] = [float(v) for v in a.floats]
        elif kind == 7:
            out[a.name] = [int(v) for v in a.ints]
        else:
            out[a.name] = a  # graphs, sparse tensors, strings lists: no supported op reads them
    return out


def _topological(nodes: List[_Node], defined: Set[str], name: str) -> List[_Node]:
    """Nodes in an order where each comes after those defining its inputs (Kahn); cycles and undefined
    inputs are refused."""
    producer: Dict[str, int] = {}
    for i, n in enumerate(nodes):
        for o in n.outputs:
            if not o:
                continue
            if o in producer or o in defined:
                raise InvalidOnnxError(f"{name}: value {o!r} is defined twice (by {n.where()} and before it)")
            producer[o] = i
    waiting = [0] * len(nodes)
    users: List[List[int]] = [[] for _ in nodes]
    for i, n in enumerate(nodes):
        for v in n.inputs:
            if not v:
                continue  # an omitted optional input
            if v in producer:
                waiting[i] += 1
                users[producer[v]].append(i)
            elif v not in defined:
                raise InvalidOnnxError(f"{name}: {n.where()} reads {v!r}, which no graph input, initializer or "
                                       f"node defines")
    ready = [i for i in range(len(nodes)) if waiting[i] == 0]  # a heap: the file's order among ready nodes
    heapq.heapify(ready)
    order: List[_Node] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        stuck = [nodes[i].where() for i in range(len(nodes)) if waiting[i] > 0][:3]
        raise InvalidOnnxError(f"{name}: the graph has a cycle (through {', '.join(stuck)})")
    return order


def _ints(node: _Node, key: str, n: int, default: int, low: int) -> Tuple[int, ...]:
    """An INTS attribute of ``n`` values, each in [low, _MAX_ATTR_INT]."""
    v = node.attrs.get(key)
    if v is None:
        return (default,) * n
    if not isinstance(v, list) or len(v) != n:
        raise InvalidOnnxError(f"{node.where()}: attribute {key} must hold {n} integers, got {v!r}")
    for x in v:
        if not low <= x <= _MAX_ATTR_INT:
            raise InvalidOnnxError(f"{node.where()}: attribute {key}={v} is out of range (each must be in "
                                   f"[{low}, {_MAX_ATTR_INT:,}])")
    return tuple(v)


def _int(node: _Node, key: str, default: int) -> int:
    v = node.attrs.get(key, default)
    if not isinstance(v, int) or abs(v) > _MAX_ATTR_INT:
        raise InvalidOnnxError(f"{node.where()}: attribute {key} must be a (reasonable) integer, got {v!r}")
    return v


class _Importer:
    def __init__(self, model: "onnx.ModelProto", name: str, folder: Optional[str], *, max_elements: int,
                 input_shape: Optional[Sequence[int]], drop_input_transpose: bool) -> None:
        self.model, self.name, self.opset = model, name, _opset(model, name)
        self.reader = _TensorReader(folder)
        self.max_elements = max_elements
        self.input_shape = input_shape
        self.drop_input_transpose = drop_input_transpose
        self.env: Dict[str, Value] = {}
        self.calls: List[Tuple[nn.Module, List[SymbolicValue], SymbolicValue]] = []
        self.users: Dict[str, List[_Node]] = {}
        self.skip: Set[int] = set()  # ids of nodes already folded into an earlier one (MatMul's Add)
        self.batch: Optional[int] = None  # the batch size the file's first input declares, if any
        self.replaced: Dict[int, SymbolicValue] = {}  # graph inputs given NCHW instead of NHWC

    # ------------------------------------------------------------------ the walk
    def run(self) -> Tuple[nn.Module, List[Tuple[Optional[int], ...]]]:
        g = self.model.graph
        held = self._check_budget()
        for t in g.initializer:
            if t.name in self.env:
                raise InvalidOnnxError(f"{self.name}: initializer {t.name!r} is defined twice")
            self.env[t.name] = self.reader.read(t, f"{self.name}: initializer {t.name!r}")
        inputs: List[SymbolicValue] = []
        seen: Set[str] = set()
        for vi in g.input:
            if vi.name in seen:
                raise InvalidOnnxError(f"{self.name}: graph input {vi.name!r} is listed twice")
            seen.add(vi.name)
            if vi.name in self.env:
                continue  # IR < 4 lists initializers among the inputs too
            v = self._graph_input(vi)
            self.env[vi.name] = v
            inputs.append(v)
        if not inputs:
            raise InvalidOnnxError(f"{self.name}: the graph has no input that is not an initializer")
        nodes = [self._node(i, p) for i, p in enumerate(g.node)]
        order = _topological(nodes, set(self.env), self.name)
        for n in order:  # constants first: the GELU rewrite compares them
            if n.op == "Constant":
                self._op_Constant(n)
        order = _rewrite_gelu([n for n in order if n.op != "Constant"], self._constant_of)
        for n in order:
            for name in n.inputs:
                self.users.setdefault(name, []).append(n)
        graph_outputs = [o.name for o in g.output]
        if not graph_outputs:
            raise InvalidOnnxError(f"{self.name}: the graph has no output")
        self.graph_outputs = set(graph_outputs)
        # Layers get their own copy of the weights they read, so an initializer read by several nodes (exporters
        # share identical tensors) counts once per reader -- but never more than max_elements in all.
        sizes = {k: v.size for k, v in self.env.items() if isinstance(v, np.ndarray)}
        uses = 0
        for n in order:
            if n.op == "Identity" and n.inputs and n.inputs[0] in sizes:
                sizes[n.outputs[0]] = sizes[n.inputs[0]]
            else:
                uses += sum(sizes.get(v, 0) for v in n.inputs)
        slack = _SLACK_PER_NODE * len(order) + 1024  # BatchNorm's num_batches_tracked
        limit = min(max(uses, held) + slack, self.max_elements)
        with _budget.element_budget(limit, f"the weights the file's nodes read ({max(uses, held):,} elements + "
                                           f"{slack:,} spare), capped at max_elements={self.max_elements:,}"):
            for n in order:
                if id(n) in self.skip:
                    continue
                try:
                    self._convert(n)
                except (UnsupportedOnnxError, InvalidOnnxError) as e:
                    if str(e).startswith(self.name + ": "):
                        raise
                    raise type(e)(f"{self.name}: {e}") from None  # the attribute helpers know no file name
                except _budget.BudgetExceeded as e:
                    raise InvalidOnnxError(f"{self.name}: {n.where()}: {e}") from None
                except (ValueError, TypeError, IndexError, OverflowError) as e:
                    raise UnsupportedOnnxError(f"{self.name}: {n.where()}: pycnn cannot build it: {e}") from e
        outputs: List[SymbolicValue] = []
        for o in graph_outputs:
            out = self.env.get(o)
            if not isinstance(out, SymbolicValue) or out.node is None:
                raise UnsupportedOnnxError(f"{self.name}: graph output {o!r} is a constant, an input or undefined; "
                                           f"pycnn models compute their outputs from their inputs by layers")
            outputs.append(out)
        inputs = [self.replaced.get(id(v), v) for v in inputs]  # a dropped NHWC transpose
        shapes = [v.shape for v in inputs]
        if self._is_chain(inputs, outputs):
            return nn.Sequential(*[m for m, _, _ in self.calls]), shapes
        return (nn.Model(inputs if len(inputs) > 1 else inputs[0],
                         outputs if len(outputs) > 1 else outputs[0]), shapes)

    def _is_chain(self, inputs: List[SymbolicValue], outputs: List[SymbolicValue]) -> bool:
        if len(inputs) != 1 or len(outputs) != 1 or not self.calls:
            return False
        prev = inputs[0]
        for _, args, out in self.calls:
            if len(args) != 1 or args[0] is not prev:
                return False
            prev = out
        return prev is outputs[0]

    def _check_budget(self) -> int:
        """Elements declared by initializers and Constant nodes, refused above max_elements (nothing read yet)."""
        g = self.model.graph
        total = 0
        for t in g.initializer:
            total += _declared_count(t, f"{self.name}: initializer {t.name!r}")
        for p in g.node:
            for a in p.attribute:
                if a.type == 4:
                    total += _declared_count(a.t, f"{self.name}: constant of node {p.name!r}")
                elif a.type in (6, 7):
                    total += len(a.floats) + len(a.ints)
        if total > self.max_elements:
            raise InvalidOnnxError(f"{self.name}: its initializers and constants declare {total:,} elements, more "
                                   f"than max_elements={self.max_elements:,}; refusing to read them")
        return total

    def _node(self, index: int, p: "onnx.NodeProto") -> _Node:
        where = f"node {p.name or '#' + str(index)!r} ({p.op_type})"
        if p.domain not in ("", "ai.onnx"):
            raise UnsupportedOnnxError(f"{self.name}: {where} is in operator domain {p.domain!r}; pycnn reads only "
                                       f"the default ONNX domain")
        if not p.output or not p.output[0]:
            raise InvalidOnnxError(f"{self.name}: {where} has no output")
        attrs = _attributes(p, where)
        unknown = sorted(set(attrs) - _KNOWN_ATTRIBUTES.get(p.op_type, set(attrs)))
        if unknown:
            raise UnsupportedOnnxError(f"{self.name}: {where}: attribute {unknown[0]!r} is not one pycnn knows for "
                                       f"{p.op_type}; refusing rather than ignoring it")
        return _Node(p.name or f"#{index}", p.op_type, list(p.input), list(p.output), attrs, p)

    def _graph_input(self, vi: "onnx.ValueInfoProto") -> SymbolicValue:
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or tt.elem_type not in (1, 10, 11):
            raise UnsupportedOnnxError(f"{self.name}: graph input {vi.name!r} is not a float tensor")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if len(dims) < 2:
            raise UnsupportedOnnxError(f"{self.name}: graph input {vi.name!r} has shape {dims}; pycnn needs a batch "
                                       f"dimension and at least one more")
        if self.batch is None:
            self.batch = dims[0]
        if self.input_shape is not None:
            sample = [int(d) for d in self.input_shape]
            if len(sample) != len(dims) - 1:
                raise ValueError(f"input_shape={tuple(sample)} has {len(sample)} sizes, but graph input {vi.name!r} "
                                 f"has {len(dims) - 1} besides the batch")
        else:
            if any(d is None or d < 1 for d in dims[1:]):
                raise UnsupportedOnnxError(f"{self.name}: graph input {vi.name!r} has shape {dims} with sizes the "
                                           f"file leaves open; give input_shape= (one sample's shape)")
            sample = [int(d) for d in dims[1:]]  # type: ignore[arg-type]
        if any(d < 1 or d > _MAX_ATTR_INT for d in sample) or math.prod(sample) > _MAX_SAMPLE_ELEMENTS:
            raise InvalidOnnxError(f"{self.name}: graph input {vi.name!r} has absurd sizes {sample} (at most "
                                   f"{_MAX_SAMPLE_ELEMENTS:,} elements per sample)")
        return nn.Input(sample)

    def _check_output_size(self, n: _Node, elements: int) -> None:
        """Refuse a node whose output would hold more than _MAX_SAMPLE_ELEMENTS per sample (before building it)."""
        if elements > _MAX_SAMPLE_ELEMENTS:
            raise InvalidOnnxError(f"{self.name}: {n.where()}: its output would hold {elements:,} elements per "
                                   f"sample, more than {_MAX_SAMPLE_ELEMENTS:,}")

    def _constant_of(self, name: str) -> Optional[np.ndarray]:
        v = self.env.get(name)
        return v if isinstance(v, np.ndarray) else None

    # ------------------------------------------------------------------ helpers for converters
    def _sym(self, n: _Node, k: int = 0) -> SymbolicValue:
        if k >= len(n.inputs) or not n.inputs[k]:
            raise InvalidOnnxError(f"{self.name}: {n.where()} lacks input {k}")
        v = self.env[n.inputs[k]]
        if not isinstance(v, SymbolicValue):
            raise UnsupportedOnnxError(f"{self.name}: {n.where()}: input {k} ({n.inputs[k]!r}) is a constant; "
                                       f"pycnn supports this operator on computed values only")
        return v

    def _const(self, n: _Node, k: int, optional: bool = False) -> Optional[np.ndarray]:
        if k >= len(n.inputs) or not n.inputs[k]:
            if optional:
                return None
            raise InvalidOnnxError(f"{self.name}: {n.where()} lacks input {k}")
        v = self.env[n.inputs[k]]
        if not isinstance(v, np.ndarray):
            raise UnsupportedOnnxError(f"{self.name}: {n.where()}: input {k} ({n.inputs[k]!r}) must be a constant "
                                       f"(an initializer or Constant) for pycnn; it is computed by the graph")
        return v

    def _unsupported(self, n: _Node, why: str) -> UnsupportedOnnxError:
        return UnsupportedOnnxError(f"{self.name}: {n.where()}: {why}")

    def _only_first_output(self, n: _Node) -> None:
        for o in n.outputs[1:]:
            if o and (o in self.users or o in self.graph_outputs):
                raise self._unsupported(n, f"its output {o!r} is used; pycnn computes only the first output")

    def _call(self, n: _Node, module: nn.Module, args: List[SymbolicValue], merge: bool = False) -> None:
        try:
            out = module(list(args)) if merge else module(*args)
        except ValueError as e:
            raise self._unsupported(n, f"pycnn's {type(module).__name__} cannot take its inputs: {e}") from e
        self.env[n.outputs[0]] = out
        self.calls.append((module, list(args), out))

    def _weights(self, module: nn.Module, **arrays: Optional[np.ndarray]) -> None:
        state = {k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items() if v is not None}
        missing, unexpected = module.load_state_dict(state, strict=False)
        # Every parameter must come from the file (built inside the budget, the others hold no values).
        assert not unexpected and set(missing) <= {"num_batches_tracked"}, (missing, unexpected)

    def _floats(self, a: np.ndarray, n: _Node, what: str) -> np.ndarray:
        if a.dtype.kind != "f":
            raise InvalidOnnxError(f"{self.name}: {n.where()}: {what} must be floating point, got {a.dtype}")
        return a

    def _window(self, n: _Node, x: SymbolicValue, kernel: Tuple[int, ...], dilations: Tuple[int, ...],
                same_allowed: bool = False) -> Tuple[Tuple[int, ...], Optional[Tuple[int, ...]]]:
        """(strides, symmetric pads) of a Conv/pool node, from pads or auto_pad; asymmetric padding refused,
        except (``same_allowed``, pads None) PyTorch's padding='same' of a stride-1 convolution: half of
        dilation * (kernel - 1) before, the rest after."""
        k = len(kernel)
        strides = _ints(n, "strides", k, 1, 1)
        auto = n.attrs.get("auto_pad", "NOTSET")
        spatial = [int(d) for d in x.shape[2:]]  # type: ignore[arg-type]
        if auto in ("NOTSET", ""):
            pads = _ints(n, "pads", 2 * k, 0, 0)
            begin, end = pads[:k], pads[k:]
        elif auto == "VALID":
            begin = end = (0,) * k
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            total = [max((-(-size // s) - 1) * s + (kk - 1) * d + 1 - size, 0)
                     for size, s, kk, d in zip(spatial, strides, kernel, dilations)]
            small = tuple(t // 2 for t in total)
            large = tuple(t - t // 2 for t in total)
            begin, end = (small, large) if auto == "SAME_UPPER" else (large, small)
        else:
            raise self._unsupported(n, f"auto_pad={auto!r} is not an ONNX value")
        if begin != end and same_allowed and all(s == 1 for s in strides) and all(
                b == d * (kk - 1) // 2 and b + e == d * (kk - 1) for b, e, kk, d in zip(begin, end, kernel, dilations)):
            return strides, None
        if begin != end:
            raise self._unsupported(n, f"asymmetric padding (begin {list(begin)}, end {list(end)}"
                                       f"{', from auto_pad=' + auto if auto not in ('NOTSET', '') else ''}); pycnn's "
                                       f"layers pad both sides of an axis equally")
        return strides, begin

    # ------------------------------------------------------------------ the operators
    def _convert(self, n: _Node) -> None:
        handler: Optional[Callable[[_Node], None]] = getattr(self, "_op_" + n.op, None)
        if handler is None:
            raise self._unsupported(n, "pycnn does not import this operator (see pycnn.onnx.importer for the list)")
        handler(n)

    def _op_Constant(self, n: _Node) -> None:  # noqa: N802
        a = n.attrs
        if "value" in a:
            self.env[n.outputs[0]] = self.reader.read(a["value"], f"{self.name}: {n.where()} value")
        elif "value_float" in a:
            self.env[n.outputs[0]] = np.array(a["value_float"], np.float32)
        elif "value_floats" in a:
            self.env[n.outputs[0]] = np.array(a["value_floats"], np.float32)
        elif "value_int" in a:
            self.env[n.outputs[0]] = np.array(a["value_int"], np.int64)
        elif "value_ints" in a:
            self.env[n.outputs[0]] = np.array(a["value_ints"], np.int64)
        else:
            raise self._unsupported(n, f"only tensor, float(s) and int(s) values are read, got {sorted(a)}")

    def _op_Identity(self, n: _Node) -> None:  # noqa: N802
        if not n.inputs or not n.inputs[0]:
            raise InvalidOnnxError(f"{self.name}: {n.where()} lacks input 0")
        self.env[n.outputs[0]] = self.env[n.inputs[0]]

    def _op_Dropout(self, n: _Node) -> None:  # noqa: N802
        # Inference: the identity. (A trainable Dropout would need its ratio; ONNX files are for inference.)
        self._only_first_output(n)
        self.env[n.outputs[0]] = self._sym(n)

    def _op_Transpose(self, n: _Node) -> None:  # noqa: N802
        x = self._sym(n)
        perm = n.attrs.get("perm")
        graph_input = x.node is None
        if graph_input and perm == [0, 3, 1, 2] and len(x.shape) == 4:
            if not self.drop_input_transpose:
                raise self._unsupported(n, "the graph takes NHWC input and transposes it to NCHW (a Keras/tf2onnx "
                                           "file); pycnn has no transpose layer. Load with "
                                           "drop_input_transpose=True to get a model that takes NCHW arrays")
            _, h, w, c = x.shape
            names = [k for k, v in self.env.items() if v is x]
            if any(u is not n for k in names for u in self.users.get(k, [])) or set(names) & self.graph_outputs:
                raise self._unsupported(n, "the NHWC input is used by other nodes than this transpose")
            y = nn.Input((int(c), int(h), int(w)))  # type: ignore[arg-type]
            # The graph input becomes NCHW: replace it everywhere it appears.
            for k, v in list(self.env.items()):
                if v is x:
                    self.env[k] = y
            self.replaced[id(x)] = y
            self.env[n.outputs[0]] = y
            return
        raise self._unsupported(n, f"perm={perm}: pycnn has no transpose layer (only a leading NHWC->NCHW "
                                   f"transpose of the graph input can be dropped, with drop_input_transpose=True)")

    def _op_Conv(self, n: _Node) -> None:  # noqa: N802
        self._conv(n, transposed=False)

    def _op_ConvTranspose(self, n: _Node) -> None:  # noqa: N802
        self._conv(n, transposed=True)

    def _conv(self, n: _Node, transposed: bool) -> None:
        x = self._sym(n)
        w = self._floats(self._const(n, 1), n, "the weight")  # type: ignore[arg-type]
        b = self._const(n, 2, optional=True)
        rank = len(x.shape)
        if rank not in ((3, 4) if transposed else (3, 4, 5)) or w.ndim != rank:
            raise self._unsupported(n, f"input of shape {x.shape} with weight {w.shape}: pycnn has 1-D, 2-D and 3-D "
                                       f"convolutions and 1-D and 2-D transposed ones")
        k = rank - 2
        kernel = tuple(int(d) for d in w.shape[2:])
        if "kernel_shape" in n.attrs and tuple(_ints(n, "kernel_shape", k, 1, 1)) != kernel:
            raise InvalidOnnxError(f"{self.name}: {n.where()}: kernel_shape={n.attrs['kernel_shape']} disagrees "
                                   f"with the weight's shape {list(w.shape)}")
        group = _int(n, "group", 1)
        dilations = _ints(n, "dilations", k, 1, 1)
        strides, window_pads = self._window(n, x, kernel, dilations, same_allowed=not transposed)
        same = window_pads is None  # PyTorch's padding='same'
        pads = (0,) * k if window_pads is None else window_pads
        padding: Any = "same" if same else pads
        c_in = int(x.shape[1])  # type: ignore[arg-type]
        if group < 1 or c_in % group:
            raise InvalidOnnxError(f"{self.name}: {n.where()}: group={group} does not divide the {c_in} input "
                                   f"channels")
        if transposed:
            if w.shape[0] != c_in:
                raise InvalidOnnxError(f"{self.name}: {n.where()}: weight {list(w.shape)} for {c_in} input channels")
            c_out = int(w.shape[1]) * group
            if "output_shape" in n.attrs:
                raise self._unsupported(n, "output_shape is not supported; give pads and output_padding")
            out_pad = _ints(n, "output_padding", k, 0, 0)
            cls: Any = nn.ConvTranspose2d if k == 2 else nn.ConvTranspose1d
            one = (lambda t: t) if k == 2 else (lambda t: t[0])
            m = cls(c_in, c_out, one(kernel), stride=one(strides), padding=one(pads), output_padding=one(out_pad),
                    groups=group, bias=b is not None, dilation=one(dilations))
        else:
            c_out = int(w.shape[0])
            if w.shape[1] * group != c_in or c_out % group:
                raise InvalidOnnxError(f"{self.name}: {n.where()}: weight {list(w.shape)} with group={group} does "
                                       f"not fit {c_in} input channels")
            if k == 3:
                triple = lambda t: (t[0], t[1], t[2])  # noqa: E731
                m = nn.Conv3d(c_in, c_out, triple(kernel), stride=triple(strides), padding=padding,
                              dilation=triple(dilations), groups=group, bias=b is not None)
            elif k == 2:
                pair = lambda t: (t[0], t[1])  # noqa: E731
                m = nn.Conv2d(c_in, c_out, pair(kernel), stride=pair(strides), padding="same" if same else pair(pads),
                              dilation=pair(dilations), groups=group, bias=b is not None)
            else:
                m = nn.Conv1d(c_in, c_out, kernel[0], stride=strides[0], padding="same" if same else pads[0],
                              dilation=dilations[0],
                              groups=group, bias=b is not None)
        if b is not None and b.shape != (c_out,):
            raise InvalidOnnxError(f"{self.name}: {n.where()}: bias of shape {list(b.shape)} for {c_out} channels")
        size = [int(d) for d in x.shape[2:]]  # type: ignore[arg-type]
        if transposed:  # an upper bound in both cases (output_padding < stride, pads >= 0)
            self._check_output_size(n, c_out * math.prod(
                (d - 1) * s + dl * (kk - 1) + s for d, s, dl, kk in zip(size, strides, dilations, kernel)))
        else:
            self._check_output_size(n, c_out * math.prod(d + 2 * p + dl * (kk - 1) * same
                                                         for d, p, dl, kk in zip(size, pads, dilations, kernel)))
        self._weights(m, weight=w, bias=b)
        self._call(n, m, [x])

    def _op_BatchNormalization(self, n: _Node) -> None:  # noqa: N802
        x = self._sym(n)
        if _int(n, "training_mode", 0):
            raise self._unsupported(n, "training_mode=1 (batch statistics); export the model in eval mode")
        if _int(n, "spatial", 1) != 1:
            raise self._unsupported(n, "spatial=0 (per-position statistics)")
        self._only_first_output(n)
        scale, bias, mean, var = (self._floats(self._const(n, i), n, "its parameters")  # type: ignore[arg-type]
                                  for i in range(1, 5))
        c = int(x.shape[1])  # type: ignore[arg-type]
        for a in (scale, bias, mean, var):
            if a.shape != (c,):
                raise InvalidOnnxError(f"{self.name}: {n.where()}: parameters of shape {list(a.shape)} for {c} "
                                       f"channels")
        eps = float(n.attrs.get("epsilon", 1e-5))
        momentum = 1.0 - float(n.attrs.get("momentum", 0.9))  # ONNX keeps the old value's share; PyTorch the new
        cls: Any = {5: nn.BatchNorm3d, 4: nn.BatchNorm2d}.get(len(x.shape), nn.BatchNorm1d)
        m = cls(c, eps=eps, momentum=min(max(momentum, 0.0), 1.0))
        self._weights(m, weight=scale, bias=bias, running_mean=mean, running_var=var)
        self._call(n, m, [x])

    def _activation(self, n: _Node, module: nn.Module) -> None:
        self._call(n, module, [self._sym(n)])

    def _op_Relu(self, n: _Node) -> None:  # noqa: N802
        self._activation(n, nn.ReLU())

    def _op_Sigmoid(self, n: _Node) -> None:  # noqa: N802
        self._activation(n, nn.Sigmoid())

    def _op_Tanh(self, n: _Node) -> None:  # noqa: N802
        self._activation(n, nn.Tanh())

    def _op_LeakyRelu(self, n: _Node) -> None:  # noqa: N802
        self._activation(n, nn.LeakyReLU(float(n.attrs.get("alpha", 0.01))))

    def _op_Elu(self, n: _Node) -> None:  # noqa: N802
        self._activation(n, nn.ELU(float(n.attrs.get("alpha", 1.0))))

    def _op_Gelu(self, n: _Node) -> None:  # noqa: N802
        approximate = n.attrs.get("approximate", "none")
        if approximate not in ("none", "tanh"):
            raise self._unsupported(n, f"approximate={approximate!r}")
        self._activation(n, nn.GELU(approximate))

    def _op_Softmax(self, n: _Node) -> None:  # noqa: N802
        x = self._sym(n)
        rank = len(x.shape)
        axis = _int(n, "axis", -1 if self.opset >= 13 else 1) % rank
        # Before opset 13 Softmax flattened the axes from `axis` on; that is a softmax over one axis only
        # when `axis` is the last.
        if self.opset < 13 and axis != rank - 1:
            raise self._unsupported(n, f"opset {self.opset} Softmax with axis={axis} on rank {rank} softmaxes "
                                       f"several axes together")
        if axis == 0:
            raise self._unsupported(n, "softmax over the batch axis")
        self._call(n, nn.Softmax(dim=axis), [x])

    def _pool_common(self, n: _Node, x: SymbolicValue, dilated: bool = False
                     ) -> Tuple[int, Tuple[int, ...], Tuple[int, ...], Tuple[int, ...], Tuple[int, ...]]:
        # (spatial dims, kernel, strides, pads, dilations); dilation only where `dilated` (MaxPool3d).
        # The 3-D pools take ceil_mode and (max) dilation as they are; the 1-D and 2-D ones floor.
        rank = len(x.shape)
        if rank not in (3, 4, 5):
            raise self._unsupported(n, f"input of shape {x.shape}: pycnn pools 1-D, 2-D and 3-D")
        k = rank - 2
        kernel = _ints(n, "kernel_shape", k, 0, 1) if "kernel_shape" in n.attrs else None
        if kernel is None:
            raise InvalidOnnxError(f"{self.name}: {n.where()}: kernel_shape is required")
        dilations = _ints(n, "dilations", k, 1, 1)
        if any(d != 1 for d in dilations) and not (dilated and k == 3):
            raise self._unsupported(n, "dilated pooling (pycnn's MaxPool3d has it; its 1-D and 2-D pools and the "
                                       "average pools do not)")
        strides, window_pads = self._window(n, x, kernel, dilations)
        pads = (0,) * k if window_pads is None else window_pads  # (None only where same_allowed)
        if _int(n, "ceil_mode", 0) and k != 3:
            # ceil_mode changes nothing when every window fits exactly; otherwise pycnn (floor only) refuses.
            for size, kk, s, p in zip(x.shape[2:], kernel, strides, pads):
                if (int(size) + 2 * p - kk) % s:  # type: ignore[arg-type]
                    raise self._unsupported(n, "ceil_mode=1 where it adds a partial window; pycnn pools in "
                                               "floor mode")
        return k, kernel, strides, pads, dilations

    def _op_MaxPool(self, n: _Node) -> None:  # noqa: N802
        x = self._sym(n)
        self._only_first_output(n)
        if _int(n, "storage_order", 0):
            raise self._unsupported(n, "storage_order=1")
        k, kernel, strides, pads, dilations = self._pool_common(n, x, dilated=True)
        m: nn.Module
        if k == 3:
            m = nn.MaxPool3d(kernel, strides, pads, dilations, ceil_mode=bool(_int(n, "ceil_mode", 0)))
        else:
            m = nn.MaxPool2d(kernel, strides, pads) if k == 2 else nn.MaxPool1d(kernel[0], strides[0], pads[0])
        self._call(n, m, [x])

    def _op_AveragePool(self, n: _Node) -> None:  # noqa: N802
        x = self._sym(n)
        k, kernel, strides, pads, _ = self._pool_common(n, x)
        include = bool(_int(n, "count_include_pad", 0))  # ONNX's default is 0, PyTorch's True
        m: nn.Module
        if k == 3:
            m = nn.AvgPool3d(kernel, strides, pads, ceil_mode=bool(_int(n, "ceil_mode", 0)),
                             count_include_pad=include)
        else:
            m = (nn.AvgPool2d(kernel, strides, pads, count_include_pad=include) if k == 2
                 else nn.AvgPool1d(kernel[0], strides[0], pads[0], count_include_pad=include))
        self._call(n, m, [x])

    def _global_pool(self, n: _Node, x: SymbolicValue, keepdims: bool) -> None:
        rank = len(x.shape)
        if rank not in (3, 4, 5):
            raise self._unsupported(n, f"input of shape {x.shape}: pycnn pools 1-D, 2-D and 3-D")
        m: nn.Module = {5: nn.AdaptiveAvgPool3d, 4: nn.AdaptiveAvgPool2d}.get(rank, nn.AdaptiveAvgPool1d)(1)
        if not keepdims:
            m = nn.Sequential(m, nn.Flatten())
        self._call(n, m, [x])

    def _op_GlobalAveragePool(self, n: _Node) -> None:  # noqa: N802
        self._global_pool(n, self._sym(n), keepdims=True)

    def _op_ReduceMean(self, n: _Node) -> None:  # noqa: N802
        x = self._sym(n)
        rank = len(x.shape)
        if self.opset >= 18:
            given = self._const(n, 1, optional=True)
            axes = None if given is None else [int(a) for a in given.reshape(-1)]
        else:
            axes = n.attrs.get("axes")
        if axes is None or sorted(a % rank for a in axes) != list(range(2, rank)):
            raise self._unsupported(n, f"axes={axes}: pycnn imports ReduceMean only over all spatial axes "
                                       f"(global average pooling)")
        self._global_pool(n, x, keepdims=bool(_int(n, "keepdims", 1)))

    def _op_Resize(self, n: _Node) -> None:  # noqa: N802
        x = self._sym(n)
        rank = len(x.shape)
        if rank not in (3, 4):
            raise self._unsupported(n, f"input of shape {x.shape}: pycnn resizes 1-D and 2-D")
        mode = n.attrs.get("mode", "nearest")
        ctm = n.attrs.get("coordinate_transformation_mode", "half_pixel")
        for key in ("antialias", "exclude_outside"):
            if _int(n, key, 0):
                raise self._unsupported(n, f"{key}=1")
        if "axes" in n.attrs or n.attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
            raise self._unsupported(n, "axes / keep_aspect_ratio_policy")
        if mode == "nearest":
            nearest = n.attrs.get("nearest_mode", "round_prefer_floor")
            if (ctm, nearest) == ("asymmetric", "floor"):
                pmode, align = "nearest", None
            else:
                raise self._unsupported(n, f"nearest with coordinate_transformation_mode={ctm!r}, nearest_mode="
                                           f"{nearest!r}; pycnn matches asymmetric + floor (PyTorch's 'nearest')")
        elif mode == "linear":
            pmode = "bilinear" if rank == 4 else "linear"
            if ctm in ("half_pixel", "pytorch_half_pixel"):
                align = False
            elif ctm == "align_corners":
                align = True
            else:
                raise self._unsupported(n, f"linear with coordinate_transformation_mode={ctm!r}")
        else:
            raise self._unsupported(n, f"mode={mode!r}; pycnn resizes with nearest and (bi)linear")
        # opset 10: Resize(X, scales); from 11: Resize(X, roi, scales, sizes), empty names for omitted inputs.
        scales_i, sizes_i = (1, None) if self.opset < 11 else (2, 3)
        scales = self._const(n, scales_i, optional=True)
        sizes = self._const(n, sizes_i, optional=True) if sizes_i is not None else None
        if scales is not None and scales.size == 0:
            scales = None
        spatial = [int(d) for d in x.shape[2:]]  # type: ignore[arg-type]
        if sizes is not None and sizes.size:
            sz = [int(s) for s in sizes.reshape(-1)]
            if len(sz) != rank or sz[1] != x.shape[1] or any(s < 1 or s > _MAX_ATTR_INT for s in sz[2:]):
                raise self._unsupported(n, f"sizes={sz} for input {x.shape}: only spatial sizes may change")
            self._check_output_size(n, math.prod(sz[1:]))
            m = nn.Upsample(size=tuple(sz[2:]), mode=pmode, align_corners=align)
        elif scales is not None:
            sc = [float(s) for s in scales.reshape(-1)]
            if len(sc) != rank or sc[0] != 1 or sc[1] != 1 or not all(0 < s < _MAX_ATTR_INT for s in sc[2:]):
                raise self._unsupported(n, f"scales={sc}: only the spatial axes may be scaled, by positive factors")
            self._check_output_size(n, int(x.shape[1]) * math.prod(  # type: ignore[arg-type]
                math.floor(size * s) for size, s in zip(spatial, sc[2:])))
            m = nn.Upsample(scale_factor=tuple(sc[2:]), mode=pmode, align_corners=align)
        else:
            raise InvalidOnnxError(f"{self.name}: {n.where()}: neither scales nor sizes is given")
        self._call(n, m, [x])

    def _linear(self, n: _Node, x: SymbolicValue, weight: np.ndarray, bias: Optional[np.ndarray]) -> None:
        if len(x.shape) != 2:
            raise self._unsupported(n, f"input of shape {x.shape}: pycnn's Linear takes (N, features)")
        out_f, in_f = weight.shape
        if in_f != x.shape[1]:
            raise InvalidOnnxError(f"{self.name}: {n.where()}: weight of shape {list(weight.shape)} (as (out, in)) "
                                   f"for input {x.shape}")
        if bias is not None:
            if bias.size == 1 and out_f != 1:
                bias = np.full(out_f, bias.reshape(()), np.float32)
            if bias.shape not in ((out_f,), (1, out_f)):
                raise self._unsupported(n, f"bias of shape {list(bias.shape)} for {out_f} outputs")
            bias = bias.reshape(out_f)
        m = nn.Linear(int(in_f), int(out_f), bias=bias is not None)
        self._weights(m, weight=weight, bias=bias)
        self._call(n, m, [x])

    def _op_Gemm(self, n: _Node) -> None:  # noqa: N802
        x = self._sym(n)
        b = self._floats(self._const(n, 1), n, "B")  # type: ignore[arg-type]
        c = self._const(n, 2, optional=True)
        if _int(n, "transA", 0):
            raise self._unsupported(n, "transA=1 (the input transposed)")
        if b.ndim != 2:
            raise InvalidOnnxError(f"{self.name}: {n.where()}: B must be 2-D, got {list(b.shape)}")
        weight = b if _int(n, "transB", 0) else b.T
        alpha, beta = float(n.attrs.get("alpha", 1.0)), float(n.attrs.get("beta", 1.0))
        weight = weight * np.float32(alpha) if alpha != 1.0 else weight
        bias = None if c is None else (c * np.float32(beta) if beta != 1.0 else c)
        self._linear(n, x, weight, bias)

    def _op_MatMul(self, n: _Node) -> None:  # noqa: N802
        x = self._sym(n)
        w = self._floats(self._const(n, 1), n, "the weight")  # type: ignore[arg-type]
        if w.ndim != 2:
            raise self._unsupported(n, f"weight of shape {list(w.shape)}; pycnn imports MatMul by a 2-D constant")
        bias = None
        out = n.outputs[0]
        users = self.users.get(out, [])
        # MatMul then Add of a constant vector (Keras' Dense through tf2onnx, PyTorch's Linear at some opsets):
        # one Linear with a bias.
        if len(users) == 1 and users[0].op == "Add" and out not in self.graph_outputs:
            add = users[0]
            other = [v for v in add.inputs if v != out]
            const = self._constant_of(other[0]) if len(other) == 1 else None
            if const is not None and const.size == w.shape[1] and const.ndim <= 2:
                bias = const.reshape(-1)
                self.skip.add(id(add))
                n = _Node(n.name, "MatMul", n.inputs, add.outputs, n.attrs)
        self._linear(n, x, w.T, bias)

    def _op_Flatten(self, n: _Node) -> None:  # noqa: N802
        x = self._sym(n)
        axis = _int(n, "axis", 1) % max(len(x.shape), 1)
        if axis != 1:
            raise self._unsupported(n, f"axis={n.attrs.get('axis')}: pycnn keeps the batch axis and flattens the "
                                       f"rest (axis=1)")
        self._call(n, nn.Flatten(), [x])

    def _op_Reshape(self, n: _Node) -> None:  # noqa: N802
        x = self._sym(n)
        target = [int(v) for v in self._const(n, 1).reshape(-1)]  # type: ignore[union-attr]
        rest = math.prod(int(d or 0) for d in x.shape[1:])
        # 0 copies the input's size, unless allowzero=1 makes it a literal 0
        batch_ok = (self.batch,) if _int(n, "allowzero", 0) else (0, self.batch)
        if len(target) == 2 and (target[1] in (-1, rest) and target[0] in batch_ok
                                 or target[0] == -1 and target[1] == rest):
            self._call(n, nn.Flatten(), [x])
            return
        raise self._unsupported(n, f"shape {target} for input {x.shape}: pycnn imports Reshape only as Flatten "
                                   f"to (batch, -1)")

    def _merge(self, n: _Node, module: nn.Module) -> None:
        args = [self._sym(n, k) for k in range(len(n.inputs))]
        per_sample = [tuple(int(d or 0) for d in a.shape[1:]) for a in args]
        if isinstance(module, nn.Concat):
            size = sum(math.prod(p) for p in per_sample)
        else:  # Add and Mul broadcast as NumPy does (nn.Add/nn.Multiply too): the output can outgrow every input
            try:
                size = math.prod(np.broadcast_shapes(*per_sample))
            except ValueError:
                raise self._unsupported(n, f"inputs of shapes {[a.shape for a in args]} do not broadcast") from None
        self._check_output_size(n, size)
        self._call(n, module, args, merge=True)

    def _op_Add(self, n: _Node) -> None:  # noqa: N802
        self._merge(n, nn.Add())

    def _op_Mul(self, n: _Node) -> None:  # noqa: N802
        self._merge(n, nn.Multiply())

    def _op_Concat(self, n: _Node) -> None:  # noqa: N802
        axis = _int(n, "axis", 1)
        if axis == 0 or axis == -len(self._sym(n).shape):
            raise self._unsupported(n, "concatenation along the batch axis")
        self._merge(n, nn.Concat(dim=axis))


def _rewrite_gelu(order: List[_Node], constant: Callable[[str], Optional[np.ndarray]]) -> List[_Node]:
    """Replace the exact-GELU subgraph exporters write before opset 20 by one Gelu node.

    PyTorch's ``F.gelu`` becomes ``Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)``; each intermediate
    value must feed only the next node, so nothing else reads a value the rewrite removes.
    """
    def users(v: str) -> List[_Node]:
        return [m for m in order if v in m.inputs]

    def is_const(name: str, value: float) -> bool:
        c = constant(name)
        return c is not None and c.size == 1 and abs(float(c.reshape(())) - value) <= 1e-6 * abs(value)

    removed: Set[int] = set()
    replacement: Dict[int, _Node] = {}
    for erf in order:
        if erf.op != "Erf" or len(erf.inputs) != 1:
            continue
        div = next((m for m in order if erf.inputs[0] in m.outputs), None)
        if div is None or div.op != "Div" or not is_const(div.inputs[1], math.sqrt(2.0)):
            continue
        x = div.inputs[0]
        chain = [div, erf]
        add_users = users(erf.outputs[0])
        if len(users(div.outputs[0])) != 1 or len(add_users) != 1 or add_users[0].op != "Add":
            continue
        add = add_users[0]
        if not any(is_const(v, 1.0) for v in add.inputs):
            continue
        mul_users = users(add.outputs[0])
        if len(mul_users) != 1 or mul_users[0].op != "Mul" or x not in mul_users[0].inputs:
            continue
        mul = mul_users[0]
        half_users = users(mul.outputs[0])
        if len(half_users) != 1 or half_users[0].op != "Mul" or not any(is_const(v, 0.5) for v in half_users[0].inputs):
            continue
        half = half_users[0]
        chain += [add, mul, half]
        for m in chain:
            removed.add(id(m))
        replacement[id(half)] = _Node(erf.name, "Gelu", [x], list(half.outputs), {"approximate": "none"})
    return [replacement.get(id(m), m) for m in order if id(m) not in removed or id(m) in replacement]


def load_with_input_shapes(source: _PathOrBytes, *, max_elements: int = DEFAULT_MAX_ELEMENTS,
                           max_bytes: int = DEFAULT_MAX_BYTES, input_shape: Optional[Sequence[int]] = None,
                           drop_input_transpose: bool = False) -> Tuple[nn.Module, List[Tuple[Optional[int], ...]]]:
    """:func:`load`, and each input's shape (None for the batch dimension) as the model takes it."""
    if not isinstance(max_elements, int) or max_elements < 0:
        raise ValueError(f"max_elements must be a non-negative int, got {max_elements!r}")
    if not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"max_bytes must be a non-negative int, got {max_bytes!r}")
    model, name, folder = _read_model(source, max_bytes)
    imp = _Importer(model, name, folder, max_elements=max_elements, input_shape=input_shape,
                    drop_input_transpose=drop_input_transpose)
    module, shapes = imp.run()
    module.eval()
    return module, shapes


def load(source: _PathOrBytes, *, max_elements: int = DEFAULT_MAX_ELEMENTS, max_bytes: int = DEFAULT_MAX_BYTES,
         input_shape: Optional[Sequence[int]] = None, drop_input_transpose: bool = False) -> nn.Module:
    """Read an ONNX model (a path, or the file's bytes) as a pycnn network, in eval mode.

    A chain of layers gives an ``nn.Sequential``, any other graph an
    ``nn.Model``. The batch size the file declares is not kept: the network
    takes any batch. ``input_shape`` (one sample's shape, without the batch)
    is needed when the file leaves input sizes other than the batch open.
    ``max_elements`` bounds the elements the file's weights may declare,
    ``max_bytes`` its size. ``drop_input_transpose=True`` removes a leading
    NHWC->NCHW ``Transpose`` (Keras files), so the network takes NCHW.

    Raises :class:`UnsupportedOnnxError` for an operator or attribute pycnn
    cannot represent (naming the node and operator), :class:`InvalidOnnxError`
    for a malformed or oversized file (both ``ValueError``), and
    ``FileNotFoundError`` for a missing file. Needs the ``onnx`` package.
    """
    return load_with_input_shapes(source, max_elements=max_elements, max_bytes=max_bytes, input_shape=input_shape,
                                  drop_input_transpose=drop_input_transpose)[0]
