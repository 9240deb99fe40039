"""Networks of any shape: Keras' functional API over pycnn's modules, with an automatic backward.

::

    x = nn.Input((3, 32, 32))                             # one sample's shape; the batch size is free
    a = nn.ReLU()(nn.Conv2d(3, 16, 3, padding=1)(x))
    b = nn.ReLU()(nn.Conv2d(16, 16, 3, padding=1)(a))
    y = nn.Conv2d(32, 10, 1)(nn.Concat(dim=1)([a, b]))    # a U-Net-like skip: a fans out
    model = nn.Model(x, y)                                # a Module like any other
    out = model(images); dx = model.backward(dout)        # forward, then backward in reverse order

**Building.** Calling a module on :class:`SymbolicValue` s (``nn.Input``
and what layers called on it return; merge layers take a list of them)
computes nothing: it records a *node* (the module and the values it takes)
and returns symbolic values for its outputs. To know their shapes, and to
report a layer that cannot take its inputs at the line that builds it, the
module is run once on a batch of two zero samples, in eval mode, unfused,
with its mode and saved state put back afterwards (dropout draws nothing,
BatchNorm's statistics do not move). ``Model(inputs, outputs)`` then walks
back from the outputs, and refuses inputs that do not reach an output and
outputs that depend on an ``nn.Input`` not among the inputs. Cycles cannot
be built: a layer's inputs exist before it is called (and a saved graph may
only refer to values defined before each node).

**Running.** The nodes run in a topological order (a depth-first walk from
the outputs). Each value is dropped as soon as the last node that reads it
has run (eval mode then keeps no activation longer than needed; training
mode keeps what each layer saves for its backward). ``backward`` visits the
nodes in reverse order, sums the gradients of a value that fans out to
several nodes, skips nodes through which no gradient flows or which need
none (``input_grad=False`` and frozen layers upstream), and returns the
gradient of each input (a tuple for several; zeros for an input no gradient
reached). Merge layers' and multi-input modules' backward return one
gradient per input, in the order of their (flattened) arguments.

**A layer used more than once** (shared weights) is one child of the model
(its parameters count once) and its parameter gradients accumulate over its
calls. A module holds the saved state of one forward only, so after each
call of such a layer (or of a layer that shares a sub-module with another
node) the model takes that call's saved state out of the layer and its
descendants (``Module._detach_saved``), keeps it with the call, and gives it
back just before that call's backward. Calls are therefore differentiated
in reverse order, each with exactly what it saved.

**State-dict keys** are the children's names: each distinct module in
order of first use, named after its class and numbered per class
(``conv2d_0.weight``, ``batchnorm2d_0.running_mean``, ``conv2d_1.weight``),
so the same code builds the same keys, and a saved model keeps the names
in its file.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union, cast

import numpy as np

from .. import functional as F
from . import fused, grad_mode
from ._symbolic import SymbolicValue
from .container import call_backward
from .module import Module

__all__ = ["Input", "Model", "SymbolicValue", "call_symbolic"]

Shape = Tuple[Optional[int], ...]
# One positional argument of a node: a value, or a list of values (merge layers).
_Arg = Union[SymbolicValue, List[SymbolicValue]]
_MAX_DIMS = 64  # NumPy's limit on an array's dimensions
_PROBE_BATCH = 2  # not 1: BatchNorm without running statistics needs two values per channel


def Input(shape: Sequence[int]) -> SymbolicValue:  # noqa: N802  (Keras' name for it)
    """A graph's input: one sample's shape, without the batch dimension (Keras' ``Input(shape)``).

    ``nn.Input((3, 32, 32))`` stands for arrays of shape (N, 3, 32, 32) for
    any N. The shape checks the graph when it is built; the model runs on
    whatever its layers accept (e.g. other image sizes for a convolutional
    network).
    """
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"Input: shape must be a sequence of ints (one sample's shape), got {shape!r}") from None
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) for d in dims):
        raise TypeError(f"Input: shape must be a sequence of ints (one sample's shape), got {shape!r}")
    if not dims or len(dims) >= _MAX_DIMS or min(dims) < 1:
        raise ValueError(f"Input: shape must be 1 to {_MAX_DIMS - 1} positive sizes without the batch dimension "
                         f"(e.g. (3, 32, 32)), got {tuple(dims)}")
    return SymbolicValue((None,) + tuple(int(d) for d in dims))


def _describe(module: Module) -> str:
    """``Conv2d(3, 8, kernel_size=(3, 3), ...)`` for a layer, the class name alone for a container."""
    extra = module.extra_repr()
    return f"{type(module).__name__}({extra})" if extra and "\n" not in extra else type(module).__name__


def _shape_text(shape: Sequence[Optional[int]]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _inputs_text(values: Sequence[SymbolicValue]) -> str:
    shapes = [_shape_text(v.shape) for v in values]
    if len(shapes) == 1:
        return f"an input of shape {shapes[0]}"
    return "inputs of shapes " + ", ".join(shapes[:-1]) + " and " + shapes[-1]


def flat_args(args: Sequence[Any]) -> List[Any]:
    """A call's arguments as one list: lists (a merge layer's) spliced in (also pycnn.onnx.exporter's)."""
    out: List[Any] = []
    for a in args:
        if isinstance(a, list):
            out.extend(a)
        else:
            out.append(a)
    return out


class Node:
    """One call of a module in a graph: the module, the values it takes, the values it gives."""

    __slots__ = ("module", "args", "outputs", "single")

    def __init__(self, module: Module, args: Tuple[_Arg, ...], output_shapes: Sequence[Shape], single: bool) -> None:
        self.module = module
        self.args = args
        # single: the module returns one array (not a tuple of arrays)
        self.single = single
        self.outputs = tuple(SymbolicValue(s, self, k) for k, s in enumerate(output_shapes))

    def inputs(self) -> List[SymbolicValue]:
        return flat_args(self.args)

    def describe(self) -> str:
        return _describe(self.module)


def _probe(module: Module, args: Tuple[_Arg, ...]) -> Tuple[List[Shape], bool]:
    """The output shapes of ``module`` on ``args`` (and whether it returns one array), from a batch of zeros.

    Runs the module in eval mode and unfused, then puts back every
    descendant's mode and saved state, so building a graph changes nothing
    about its layers.
    """
    def zeros(v: SymbolicValue) -> np.ndarray:
        return np.zeros((_PROBE_BATCH,) + cast(Tuple[int, ...], v.shape[1:]), np.float32)

    arrays = [zeros(a) if isinstance(a, SymbolicValue) else [zeros(v) for v in a] for a in args]
    what = _describe(module)
    modules = list(module.modules())
    modes = [m.training for m in modules]
    saved = module._detach_saved()
    try:
        for m in modules:
            object.__setattr__(m, "training", False)
        with fused.disabled():
            out = module.forward(*arrays)
    except (ValueError, IndexError, OverflowError) as e:
        raise ValueError(f"{what} cannot take {_inputs_text(flat_args(args))} (found while building the graph; "
                         f"the layer said, with a batch of {_PROBE_BATCH}: {e})") from e
    except TypeError as e:
        raise TypeError(f"{what} cannot take {_inputs_text(flat_args(args))} (found while building the graph; "
                        f"the layer said: {e})") from e
    finally:
        for m, mode in zip(modules, modes):
            object.__setattr__(m, "training", mode)
        Module._restore_saved(saved)
    if isinstance(out, np.ndarray):
        outs, single = [out], True
    elif isinstance(out, tuple) and out and all(isinstance(o, np.ndarray) for o in out):
        outs, single = list(out), False
    else:
        raise TypeError(f"{what} returned a {type(out).__name__}; a layer in a graph must return an array or a "
                        f"tuple of arrays")
    for o in outs:
        if o.ndim == 0 or o.shape[0] != _PROBE_BATCH:
            raise ValueError(f"{what} on {_inputs_text(flat_args(args))} gives an output of shape {o.shape} for a batch "
                             f"of {_PROBE_BATCH}: layers in a graph must keep dimension 0 as the batch")
    return [(None,) + tuple(int(d) for d in o.shape[1:]) for o in outs], single


def call_symbolic(module: Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    """``module(*args)`` on symbolic values (``Module.__call__`` sends them here): a new node's outputs."""
    what = _describe(module)
    if kwargs:
        raise TypeError(f"{what}: keyword arguments ({', '.join(sorted(kwargs))}) cannot be given when building a "
                        f"graph; pass values positionally")
    structure: List[_Arg] = []
    for i, a in enumerate(args):
        if type(a) is SymbolicValue:
            structure.append(a)
        elif isinstance(a, (list, tuple)) and a and all(type(v) is SymbolicValue for v in a):
            structure.append(list(a))
        else:
            listed = isinstance(a, (list, tuple))
            bad = next((v for v in a if type(v) is not SymbolicValue), a) if listed and a else a
            raise TypeError(f"{what}: argument {i} {'holds' if listed and a else 'is'} a {type(bad).__name__}; "
                            f"when building a graph, layers take symbolic values (nn.Input() and layers' "
                            f"outputs) or lists of them only")
    shapes, single = _probe(module, tuple(structure))
    node = Node(module, tuple(structure), shapes, single)
    return node.outputs[0] if single else node.outputs


def _topological(outputs: Sequence[SymbolicValue]) -> List[Node]:
    """The nodes the outputs depend on, each after the nodes it takes values from (depth-first, post-order)."""
    order: List[Node] = []
    done: Set[int] = set()
    for out in outputs:
        if out.node is None or id(out.node) in done:
            continue
        stack = [(out.node, iter(out.node.inputs()))]
        while stack:
            node, pending = stack[-1]
            for v in pending:
                if v.node is not None and id(v.node) not in done:
                    stack.append((v.node, iter(v.node.inputs())))
                    break
            else:  # every input's node is done (a node's inputs predate it, so there is no cycle)
                stack.pop()
                if id(node) not in done:
                    done.add(id(node))
                    order.append(node)
    return order


class _Step:
    """A node as :class:`Model` runs it: value slots instead of symbolic values."""

    __slots__ = ("module", "args", "flat_in", "outs", "single", "single_input", "shared", "frees")

    def __init__(self, node: Node, slot: Dict[int, int]) -> None:
        self.module = node.module
        # Each positional argument: a slot, or a list of slots (merge layers).
        self.args: List[Union[int, List[int]]] = [
            slot[id(a)] if isinstance(a, SymbolicValue) else [slot[id(v)] for v in a] for a in node.args]
        self.flat_in: List[int] = flat_args(self.args)
        self.outs = [slot[id(v)] for v in node.outputs]
        self.single = node.single
        # backward returns one gradient (not a sequence) exactly when forward took one array
        self.single_input = len(self.args) == 1 and isinstance(self.args[0], int)
        self.shared = False  # set by Model: its module (or a descendant) is called by another node too
        self.frees: List[int] = []  # slots no later node reads, dropped after this step


class Model(Module):
    """A network given as a graph of module calls: ``nn.Model(inputs, outputs)`` (Keras' functional ``Model``).

    ``inputs`` is a value made by :func:`Input` or a list of them;
    ``outputs`` a value computed from them or a list of values. The model
    is a ``Module``: ``model(x)`` (``model(x1, x2)`` or ``model([x1, x2])``
    for several inputs) returns the output, or a tuple when ``outputs`` was
    given as a list; ``model.backward(dy)`` (a list of gradients, one per
    output, None for an output without one) returns the input gradient (a
    tuple for several inputs, or when ``inputs`` was a list) and accumulates
    the parameter gradients of every layer. Parameters, ``state_dict``,
    ``train()``/``eval()``, freezing, ``pycnn.save``/``pycnn.load``,
    ``pycnn.summary`` and ``fit`` work as for any module. Eval-mode fusion
    (:mod:`pycnn.nn.fused`) happens inside the ``Sequential``/``Residual``
    layers of the graph, not across its nodes.

    Raises ``ValueError`` at construction when an input does not reach any
    output, or an output depends on an ``nn.Input`` not among ``inputs``.
    See :mod:`pycnn.nn.graph` for how it runs.
    """

    def __init__(self, inputs: Union[SymbolicValue, Sequence[SymbolicValue]],
                 outputs: Union[SymbolicValue, Sequence[SymbolicValue]]) -> None:
        super().__init__()
        ins, list_inputs = self._values(inputs, "inputs")
        outs, list_outputs = self._values(outputs, "outputs")
        self._assemble(ins, outs, list_inputs, list_outputs, names={})

    @staticmethod
    def _values(v: Any, what: str) -> Tuple[List[SymbolicValue], bool]:
        if type(v) is SymbolicValue:
            return [v], False
        if isinstance(v, (list, tuple)) and v and all(type(x) is SymbolicValue for x in v):
            return list(v), True
        raise TypeError(f"Model: {what} must be a symbolic value (from nn.Input or a layer called on one) or a "
                        f"non-empty list of them, got {v!r:.200}")

    def _assemble(self, inputs: List[SymbolicValue], outputs: List[SymbolicValue], list_inputs: bool,
                  list_outputs: bool, names: Dict[int, str]) -> None:
        """Check the graph, name the children (``names``: id(module) -> name, else automatic), plan the run."""
        for i, v in enumerate(inputs):
            if v.node is not None:
                raise ValueError(f"Model: inputs[{i}] is the output of {v.node.describe()}, not a value made by "
                                 f"nn.Input")
        if len({id(v) for v in inputs}) != len(inputs):
            raise ValueError("Model: the same nn.Input is listed twice in inputs")
        order = _topological(outputs)
        reached: Dict[int, SymbolicValue] = {id(v): v for v in outputs if v.node is None}
        reached.update((id(v), v) for node in order for v in node.inputs() if v.node is None)
        given = {id(v) for v in inputs}
        for v in reached.values():
            if id(v) not in given:
                raise ValueError(f"Model: the outputs depend on an nn.Input of shape {_shape_text(v.shape)} that is "
                                 f"not among the inputs (the outputs are not reachable from the given inputs alone)")
        for i, v in enumerate(inputs):
            if id(v) not in reached:
                raise ValueError(f"Model: inputs[{i}] (shape {_shape_text(v.shape)}) is not connected to the "
                                 f"outputs")

        # Value slots: the inputs, then each node's outputs in order.
        slot: Dict[int, int] = {id(v): i for i, v in enumerate(inputs)}
        for node in order:
            for v in node.outputs:
                slot[id(v)] = len(slot)
        steps = [_Step(node, slot) for node in order]
        out_slots = [slot[id(v)] for v in outputs]

        # Children: each distinct module once, in order of first use.
        per_class: Counter[str] = Counter()
        registered: Set[int] = set()
        for node in order:
            m = node.module
            if id(m) in registered:
                continue
            registered.add(id(m))
            name = names.get(id(m))
            if name is None:
                base = type(m).__name__.lower()
                name = f"{base}_{per_class[base]}"
                per_class[base] += 1
            self.add_module(name, m)

        # Calls whose modules share a module with another call: their saved state is kept per call.
        # (Per distinct layer, not per call: a file may call one large layer many times.)
        calls = Counter(id(step.module) for step in steps)
        layers = {id(step.module): step.module for step in steps}
        subtrees = {layer: [id(d) for d in m.modules()] for layer, m in layers.items()}
        uses: Counter[int] = Counter()
        for layer, ids in subtrees.items():
            for i in ids:
                uses[i] += calls[layer]
        shared = {layer for layer, ids in subtrees.items() if any(uses[i] > 1 for i in ids)}
        for step in steps:
            step.shared = id(step.module) in shared

        # Drop each value after the last step that reads it (never an output).
        last: Dict[int, int] = {}
        for k, step in enumerate(steps):
            for s in step.flat_in:
                last[s] = k
        keep = set(out_slots)
        for s, k in last.items():
            if s not in keep:
                steps[k].frees.append(s)

        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self._list_inputs, self._list_outputs = list_inputs, list_outputs
        self._steps = steps
        self._nodes = order
        self._input_slots = list(range(len(inputs)))
        self._output_slots = out_slots
        self._n_slots = len(slot)

    # ------------------------------------------------------------------ shapes
    @property
    def input_shapes(self) -> List[Shape]:
        """Each input's shape, None for the batch dimension (as given to ``nn.Input``)."""
        return [v.shape for v in self.inputs]

    @property
    def output_shapes(self) -> List[Shape]:
        """Each output's shape, None for the batch dimension (found when the graph was built)."""
        return [v.shape for v in self.outputs]

    # ------------------------------------------------------------------ forward / backward
    def forward(self, *inputs: Any) -> Any:
        """Run the graph on arrays: one per input (or one list of them); the output, or a tuple of outputs."""
        n = len(self._input_slots)
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)) and (n > 1 or self._list_inputs):
            inputs = tuple(inputs[0])
        if len(inputs) != n:
            raise TypeError(f"Model: expected {n} input array{'s' if n > 1 else ''}, got {len(inputs)}")
        if self.training:  # eval-mode layers inside (frozen BatchNorm) save for the backward that follows
            with grad_mode.enable_grad():
                return self._run(inputs)
        return self._run(inputs)

    def _run(self, inputs: Tuple[Any, ...]) -> Any:
        slots: List[Any] = [None] * self._n_slots
        for s, x in zip(self._input_slots, inputs):
            slots[s] = x
        record = self.records_for_backward()
        shapes: List[Any] = [None] * self._n_slots
        detached: Dict[int, Any] = {}
        if record:
            for s, x in zip(self._input_slots, inputs):
                shapes[s] = np.shape(x)
        for k, step in enumerate(self._steps):
            self._forward_step(step, slots)
            if record:
                for s in step.outs:
                    shapes[s] = np.shape(slots[s])
                if step.shared:
                    detached[k] = step.module._detach_saved()
            for s in step.frees:
                slots[s] = None
        self.save_for_backward(shapes, detached)
        result = [slots[s] for s in self._output_slots]
        return tuple(result) if self._list_outputs else result[0]

    @staticmethod
    def _forward_step(step: _Step, slots: List[Any]) -> None:
        # (A function of its own, so that no local outlives the step and keeps a dropped value alive.)
        out = step.module(*[slots[a] if isinstance(a, int) else [slots[t] for t in a] for a in step.args])
        if step.single:
            slots[step.outs[0]] = out
            return
        if not (isinstance(out, tuple) and len(out) == len(step.outs)):
            raise TypeError(f"Model: {_describe(step.module)} returned {type(out).__name__}, not the tuple of "
                            f"{len(step.outs)} arrays it returned when the graph was built")
        for s, o in zip(step.outs, out):
            slots[s] = o

    def backward(self, grad_output: Any, input_grad: bool = True) -> Any:
        """Gradients back through the graph; returns dL/d(input) (a tuple for several), or None.

        ``grad_output`` is the output's gradient, or a list with one per
        output (None where an output has none). Parameter gradients
        accumulate; ``input_grad=False`` skips what only the inputs' gradients need.
        """
        shapes, detached = self.saved()
        n_out = len(self._output_slots)
        if self._list_outputs:
            if not isinstance(grad_output, (list, tuple)) or len(grad_output) != n_out:
                raise TypeError(f"Model.backward: expected a list of {n_out} gradient(s), one per output (None for "
                                f"an output without one), got {type(grad_output).__name__}")
            gouts = list(grad_output)
        else:
            gouts = [grad_output]
        steps = self._steps
        grads: List[Any] = [None] * self._n_slots
        owned = [False] * self._n_slots  # grads[s] is an array this backward made (may be added to in place)
        for s, g in zip(self._output_slots, gouts):
            if g is not None:
                self._accumulate(grads, owned, s, g)

        # needs[s]: the gradient of value s is wanted by a trainable layer or an input upstream.
        needs = [False] * self._n_slots
        if input_grad:
            for s in self._input_slots:
                needs[s] = True
        for step in steps:
            wanted = any(needs[s] for s in step.flat_in) or any(p.requires_grad for p in step.module.parameters())
            for s in step.outs:
                needs[s] = wanted

        for k in range(len(steps) - 1, -1, -1):
            step = steps[k]
            if any(grads[s] is not None for s in step.outs) and needs[step.outs[0]]:
                if step.shared:
                    Module._restore_saved(detached.pop(k))
                self._backward_step(step, grads, owned, needs, shapes)
            for s in step.outs:  # (consumed, or nothing before this call needs it)
                grads[s] = None
        if not input_grad:
            return None
        dxs = [np.zeros(shapes[s], np.float32) if grads[s] is None else grads[s] for s in self._input_slots]
        return tuple(dxs) if self._list_inputs or len(dxs) > 1 else dxs[0]

    def _backward_step(self, step: _Step, grads: List[Any], owned: List[bool], needs: List[bool],
                       shapes: List[Any]) -> None:
        # (A function of its own, so that no local outlives the step and keeps a used gradient alive.)
        want_input = any(needs[s] for s in step.flat_in)
        if step.single:
            g = grads[step.outs[0]]
        else:  # an output without a gradient contributes zeros
            g = tuple(np.zeros(shapes[s], np.float32) if grads[s] is None else grads[s] for s in step.outs)
        for s in step.outs:
            grads[s] = None
        result = call_backward(step.module, g, want_input)
        del g
        if not want_input:
            return
        dins = [result] if step.single_input else result
        if not isinstance(dins, (list, tuple)) or len(dins) != len(step.flat_in):
            raise TypeError(f"Model: {_describe(step.module)}.backward returned {type(result).__name__}, not one "
                            f"gradient for each of its {len(step.flat_in)} inputs")
        for s, d in zip(step.flat_in, dins):
            if needs[s] and d is not None:
                self._accumulate(grads, owned, s, d)

    @staticmethod
    def _accumulate(grads: List[Any], owned: List[bool], s: int, g: Any) -> None:
        """grads[s] += g, without ever writing into an array a layer returned (it may be another value's too)."""
        current = grads[s]
        if current is None:
            grads[s] = g
        elif owned[s]:
            F.add(current, g, out=current)
        else:
            grads[s] = F.add(current, g)
            owned[s] = True

    # ------------------------------------------------------------------ the graph as JSON (pycnn.save)
    def graph_spec(self) -> Dict[str, Any]:
        """The graph as JSON values, layers named by child name (what ``pycnn.save`` writes; see :meth:`from_graph_spec`).

        Values are numbered: the inputs, then each node's outputs in order.
        """
        name_of = {id(m): n for n, m in self._modules.items() if m is not None}
        owner: Dict[int, str] = {}
        for n, m in self._modules.items():
            for d in m.modules():
                if owner.setdefault(id(d), n) != n:
                    raise ValueError(f"Model: layers {owner[id(d)]!r} and {n!r} share the module "
                                     f"{type(d).__name__}; a model file cannot say so (each layer is written on "
                                     f"its own). Use the shared module itself as a layer of the graph")
        return {
            "inputs": [list(v.shape[1:]) for v in self.inputs],
            "nodes": [{"layer": name_of[id(step.module)],
                       "args": [a if isinstance(a, int) else list(a) for a in step.args],
                       "outputs": [list(v.shape[1:]) for v in node.outputs], "single": step.single}
                      for step, node in zip(self._steps, self._nodes)],
            "outputs": list(self._output_slots),
            "list_inputs": self._list_inputs,
            "list_outputs": self._list_outputs,
        }

    @classmethod
    def from_graph_spec(cls, children: Dict[str, Module], spec: Any, where: str = "graph") -> Model:
        """The model :meth:`graph_spec` describes, over the given (already built) ``children``.

        Checks every field (a model file may be hostile) and runs no layer:
        the shapes come from the file and the work is linear in its size.
        Raises ``ValueError`` naming ``where``.
        """
        def fail(msg: str) -> ValueError:
            return ValueError(f"{where}: {msg}")

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        def shape(v: Any, what: str, least: int) -> Shape:
            if not (isinstance(v, list) and len(v) < _MAX_DIMS and all(is_int(d) and least <= d < 2 ** 62 for d in v)):
                raise fail(f"{what} must be a list of sizes (>= {least}), got {str(v)[:80]}")
            return (None,) + tuple(v)

        keys = {"inputs", "nodes", "outputs", "list_inputs", "list_outputs"}
        if not isinstance(spec, dict) or set(spec) != keys:
            raise fail(f"a graph must be an object with the keys {sorted(keys)}, got "
                       f"{sorted(spec) if isinstance(spec, dict) else type(spec).__name__}")
        for flag in ("list_inputs", "list_outputs"):
            if not isinstance(spec[flag], bool):
                raise fail(f"{flag} must be true or false")
        if not (isinstance(spec["inputs"], list) and spec["inputs"]):
            raise fail("inputs must be a non-empty list of shapes")
        inputs = [SymbolicValue(shape(s, f"inputs[{i}]", 1)) for i, s in enumerate(spec["inputs"])]
        values: List[SymbolicValue] = list(inputs)
        if not isinstance(spec["nodes"], list):
            raise fail("nodes must be a list")

        def ref(r: Any, what: str) -> SymbolicValue:
            if not (is_int(r) and 0 <= r < len(values)):
                raise fail(f"{what} refers to value {str(r)[:40]}, which is not defined before it (values are the "
                           f"inputs, then each node's outputs in order; a later value would make a cycle)")
            return values[r]

        used: Set[str] = set()
        for k, n in enumerate(spec["nodes"]):
            here = f"nodes[{k}]"
            if not (isinstance(n, dict) and set(n) == {"layer", "args", "outputs", "single"}):
                raise fail(f"{here} must be an object with the keys layer, args, outputs, single")
            layer = n["layer"]
            if not isinstance(layer, str) or layer not in children:
                raise fail(f"{here} calls layer {str(layer)[:40]!r}, which is not among the children")
            used.add(layer)
            if not isinstance(n["args"], list) or not isinstance(n["single"], bool):
                raise fail(f"{here}: args must be a list and single true or false")
            args: List[_Arg] = []
            for i, a in enumerate(n["args"]):
                if isinstance(a, list) and a:
                    args.append([ref(r, f"{here}.args[{i}]") for r in a])
                else:
                    args.append(ref(a, f"{here}.args[{i}]"))
            outs = n["outputs"]
            if not (isinstance(outs, list) and outs and (len(outs) == 1 or not n["single"])):
                raise fail(f"{here}: outputs must be a non-empty list of shapes (one when single)")
            node = Node(children[layer], tuple(args), [shape(s, f"{here}.outputs", 0) for s in outs], n["single"])
            values.extend(node.outputs)
        if not (isinstance(spec["outputs"], list) and spec["outputs"]):
            raise fail("outputs must be a non-empty list of values")
        outputs = [ref(r, f"outputs[{i}]") for i, r in enumerate(spec["outputs"])]
        unused = sorted(set(children) - used)
        if unused:
            raise fail(f"children {unused} are not called by the graph")
        if not spec["list_outputs"] and len(outputs) != 1:
            raise fail("list_outputs is false but the graph has several outputs")
        if not spec["list_inputs"] and len(inputs) != 1:
            raise fail("list_inputs is false but the graph has several inputs")
        model = cls.__new__(cls)
        Module.__init__(model)
        try:
            model._assemble(inputs, outputs, spec["list_inputs"], spec["list_outputs"],
                            names={id(m): name for name, m in children.items()})
        except ValueError as e:
            raise fail(str(e)) from None
        return model
