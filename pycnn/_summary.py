"""``pycnn.summary(model, input_shape)``: layers, output shapes, parameter counts and memory.

Also :func:`record_outputs`, which runs a forward pass layer by layer and
keeps every module's output (used by the summary and by
:func:`pycnn.viz.plot_feature_maps`).
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

    from .nn.module import Module, Parameter

__all__ = ["summary", "ModelSummary", "LayerRow", "record_outputs"]


@contextlib.contextmanager
def record_outputs(model: Module) -> Iterator[List[Tuple[str, Module, Any]]]:
    """While active, every module's forward appends ``(dotted name, module, output)`` to the yielded list.

    Containers run their children one by one (``Sequential`` runs with its
    layer fusions off and eval mode unfused (:func:`pycnn.nn.fused.disabled`), so
    each layer's own output is seen; the results are the same to float32 rounding).
    Entries appear as the forwards finish (children before their parents).
    """
    from .nn import fused
    from .nn.container import Sequential

    records: List[Tuple[str, Module, Any]] = []
    patched = []

    def wrap(name: str, module: Module, forward: Callable[..., Any]) -> Callable[..., Any]:
        def recording_forward(*args: Any, **kwargs: Any) -> Any:
            out = forward(*args, **kwargs)
            records.append((name, module, out))
            return out

        return recording_forward

    try:
        for name, module in model.named_modules():
            if "forward" in module.__dict__:
                continue
            forward: Callable[..., Any] = module.forward
            if isinstance(module, Sequential) and type(module).forward is Sequential.forward:
                forward = functools.partial(module._chain, fuse=False)
            object.__setattr__(module, "forward", wrap(name, module, forward))
            patched.append(module)
        with fused.disabled():  # eval-mode fusion would skip the folded layers' own forwards
            yield records
    finally:
        for module in patched:
            module.__dict__.pop("forward", None)


@dataclass
class LayerRow:
    """One line of a :class:`ModelSummary`."""

    name: str                      #: dotted name ("3", "layer1.0.conv1")
    type: str                      #: class name
    depth: int                     #: nesting level (top-level layers are 0)
    output_shape: Optional[Tuple]  #: with None for the batch dimension; None if the layer did not run
    params: int                    #: parameters of the layer and its children
    trainable: int                 #: of which trainable
    is_leaf: bool                  #: has no children


@dataclass
class ModelSummary:
    """What :func:`summary` measured; ``str()`` gives the table."""

    model_name: str
    input_shape: Tuple[int, ...]  #: the (first) input's, without the batch dimension
    rows: List[LayerRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    frozen_params: int = 0
    param_bytes: int = 0
    buffer_bytes: int = 0
    activation_bytes: int = 0  #: per sample: the outputs of every leaf layer in one forward pass
    input_shapes: List[Tuple[int, ...]] = field(default_factory=list)  #: every input's (several for a graph)

    def __str__(self) -> str:
        def shape(s: Optional[Tuple[Optional[int], ...]]) -> str:
            return "-" if s is None else "(" + ", ".join("N" if d is None else str(d) for d in s) + ")"

        names = [("  " * r.depth) + f"{r.name} ({r.type})" for r in self.rows]
        shapes = [shape(r.output_shape) for r in self.rows]
        params = []
        for r in self.rows:
            if r.params == 0:
                params.append("0" if r.is_leaf else "")
                continue
            text = f"{r.params:,}"
            if r.trainable == 0:
                text += " frozen"
            elif r.trainable < r.params:
                text += f" ({r.params - r.trainable:,} frozen)"
            params.append(text)
        w0 = max([len("Layer (type)")] + [len(n) for n in names])
        w1 = max([len("Output shape")] + [len(s) for s in shapes])
        w2 = max([len("Param #")] + [len(p) for p in params])
        width = w0 + w1 + w2 + 4
        ins = self.input_shapes or [self.input_shape]
        given = ", ".join(shape((None,) + tuple(s)) for s in ins)
        lines = [f"Model: {self.model_name}, input{'s' if len(ins) > 1 else ''} {given}", "=" * width,
                 f"{'Layer (type)':<{w0}}  {'Output shape':<{w1}}  {'Param #':>{w2}}", "-" * width]
        for n, s, p in zip(names, shapes, params):
            lines.append(f"{n:<{w0}}  {s:<{w1}}  {p:>{w2}}")
        lines += [
            "=" * width,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Frozen params: {self.frozen_params:,}",
            f"Parameter memory: {_mib(self.param_bytes)}"
            + (f" (+ {_mib(self.buffer_bytes)} of buffers)" if self.buffer_bytes else ""),
            f"Activations per sample (forward): {_mib(self.activation_bytes)}",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"ModelSummary({self.model_name}, {len(self.rows)} layers, total_params={self.total_params:,}, "
                f"trainable_params={self.trainable_params:,}, param_bytes={self.param_bytes:,})")


def _mib(n: int) -> str:
    if n < 1 << 20:
        return f"{n / 1024:.2f} KiB"
    return f"{n / (1 << 20):.2f} MiB"


def _unique_params(module: Module) -> List[Parameter]:
    return list(module.parameters())


def _is_leaf(module: Module) -> bool:
    return next(module.children(), None) is None


def summary(model: Module, input_shape: Optional[Sequence[int]] = None, *, dtype: DTypeLike = np.float32,
            print_fn: Optional[Callable[[str], None]] = print) -> ModelSummary:
    """Print every layer of ``model`` with its output shape and parameter count; return the numbers.

    A forward pass on zeros of shape ``(1,) + input_shape`` in ``eval()``
    mode finds the output shapes (the model's mode is restored afterwards).
    Layers are listed in definition order, children indented under their
    containers; a container's parameter count includes its children's. An
    output shape of "-" means the layer did not run on its own (a container
    fused it into a neighbour, or does not use it).

    Args:
        model: the network.
        input_shape: one sample's shape, without the batch dimension (as
            Keras): ``(1, 28, 28)`` for Fashion-MNIST. For an ``nn.Model``,
            None takes the shapes of its ``nn.Input`` s (several inputs need it).
        dtype: of the zeros fed through (float32).
        print_fn: called with the table; None prints nothing.

    Returns:
        A :class:`ModelSummary`: ``rows`` (:class:`LayerRow`),
        ``total_params``, ``trainable_params``, ``frozen_params`` (shared
        parameters counted once), ``param_bytes``, ``buffer_bytes`` and
        ``activation_bytes`` (per sample).

    Raises:
        ValueError: a layer cannot take its input; the message names the
        layer and the shape it got.
    """
    from .nn.graph import Model

    if input_shape is None:
        if not isinstance(model, Model):
            raise TypeError(f"summary: input_shape is required for a {type(model).__name__} (only an nn.Model "
                            f"knows its inputs' shapes)")
        shapes = [tuple(int(d) for d in s[1:] if d is not None) for s in model.input_shapes]
    else:
        try:
            shapes = [tuple(int(d) for d in input_shape)]
        except TypeError:
            raise TypeError(f"summary: input_shape must be a sequence of ints, got {input_shape!r}") from None
    shape = shapes[0]
    if not shape or min(shape) < 1:
        raise ValueError(f"summary: input_shape must be positive sizes without the batch dimension, got {shape}")
    xs = [np.zeros((1,) + s, dtype=dtype) for s in shapes]
    x = xs[0]

    out_shapes: Dict[int, Tuple] = {}
    out_bytes: Dict[int, int] = {}
    was_training = getattr(model, "training", False)
    model.eval()
    failing: List[str] = []
    try:
        with record_outputs(model) as records:
            try:
                model(*xs)
            except Exception as e:  # name the layer that failed
                done = {id(m) for _, m, _ in records}
                for name, m in model.named_modules():
                    if id(m) not in done and _is_leaf(m):
                        failing.append(f"{name or type(model).__name__} ({type(m).__name__})")
                        break
                where = failing[0] if failing else type(model).__name__
                got = records[-1][2].shape if records else x.shape
                raise ValueError(f"summary: layer {where} failed on an input of shape "
                                 f"{tuple(got)}: {e}") from e
        for name, m, out in records:
            if isinstance(out, np.ndarray):
                out_shapes[id(m)] = (None,) + out.shape[1:]
                out_bytes[id(m)] = out[0].nbytes if out.ndim else out.nbytes
    finally:
        if was_training:
            model.train()

    result = ModelSummary(type(model).__name__, shape, input_shapes=shapes)
    for name, m in model.named_modules():
        if m is model:
            continue
        ps = _unique_params(m)
        result.rows.append(LayerRow(
            name=name, type=type(m).__name__, depth=name.count("."), output_shape=out_shapes.get(id(m)),
            params=sum(p.size for p in ps), trainable=sum(p.size for p in ps if p.requires_grad),
            is_leaf=_is_leaf(m),
        ))
        if result.rows[-1].is_leaf:
            result.activation_bytes += out_bytes.get(id(m), 0)
    if not result.rows:  # a single layer as the model
        ps = _unique_params(model)
        result.rows.append(LayerRow(type(model).__name__, type(model).__name__, 0, out_shapes.get(id(model)),
                                    sum(p.size for p in ps), sum(p.size for p in ps if p.requires_grad), True))
        result.activation_bytes = out_bytes.get(id(model), 0)
    params = _unique_params(model)
    result.total_params = sum(p.size for p in params)
    result.trainable_params = sum(p.size for p in params if p.requires_grad)
    result.frozen_params = result.total_params - result.trainable_params
    result.param_bytes = sum(p.data.nbytes for p in params)
    result.buffer_bytes = sum(b.nbytes for b in model.buffers())
    if print_fn is not None:
        print_fn(str(result))
    return result
