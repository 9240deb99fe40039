"""``Module``, the base of every layer, container and loss, and the life cycle of its saved state.

There is no autograd tape: each module's ``forward`` saves what its own
``backward`` needs, and ``backward(grad_output)`` returns the gradient with
respect to the module's input while *accumulating* the gradients of its
parameters into ``Parameter.grad``. Containers chain these calls.

Saved state has a life cycle, enforced here once for all modules
(:meth:`Module.save_for_backward` / :meth:`Module.saved`):

* a forward in training mode saves; the following backward consumes and frees it;
* a forward in eval mode saves nothing (inference keeps no activations alive),
  except inside :class:`pycnn.nn.enable_grad` (and inside a container in
  training mode), where it saves what the eval-mode backward needs
  (:mod:`pycnn.nn.grad_mode`);
* a backward without a saved forward raises ``RuntimeError`` saying why.

A module instance therefore holds one forward at a time. A graph
(:class:`pycnn.nn.Model`) that calls one layer several times keeps each
call's saved state itself and gives it back to the layer before that call's
backward (:meth:`Module._detach_saved`); a ``Sequential`` does not, so
there share Parameters between two instances instead.

Calling a module on symbolic values (:func:`pycnn.nn.Input` and what layers
called on it return) does not compute anything: it adds the call to a graph
(:mod:`pycnn.nn.graph`).

Every subclass records the arguments its constructor was called with
(:meth:`Module.get_config`), and the public classes of pycnn register
themselves by name: see :mod:`pycnn.nn.registry`. ``Parameter`` lives in
:mod:`pycnn.nn.parameter`; both it and the registry functions are importable
from here too.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Set,
    Tuple,
)

import numpy as np

from .. import _core
from .. import functional as F
from . import _budget, grad_mode
from ._symbolic import SymbolicValue
from .fused import discard_prepared
from .parameter import Parameter
from .registry import (
    is_recording,
    record_no_arguments,
    recorded_config,
    records_config,
    register_module,
    registered_modules,
)

__all__ = ["Module", "Parameter", "register_module", "registered_modules"]


class _State:
    """Markers for a module's saved state when there is nothing to use."""

    def __init__(self, why: str) -> None:
        self.why = why


_NO_FORWARD = _State("backward called before forward: run a forward pass in training mode first")
_EVAL_FORWARD = _State("backward called after a forward in eval mode, which saves nothing for "
                       "backward: call .train() before the forward pass, or run it inside "
                       "`with pycnn.nn.enable_grad():` for the gradients of the eval-mode model")
_CONSUMED = _State("backward called twice for one forward: the first backward freed the saved "
                   "state; run a new forward pass first")

# The types of a first argument that may start a graph call: a symbolic value, or a list of them (merge layers).
_GRAPH_ARGUMENT_TYPES = frozenset((SymbolicValue, list, tuple))


def _immune(a: np.ndarray) -> np.ndarray:
    """``a`` as backward must see it, whatever the caller does to its arrays after the forward.

    NumPy arrays carry no version counter, so a change made in place between
    forward and backward (``x[:] = 0``, ``y *= 2``) cannot be detected when
    backward runs, as PyTorch does; it can only be prevented:

    * an array whose memory a pycnn op allocated (a layer's output, or a view
      of one) is made read-only, with every array it is a view of: nothing
      is copied, and a later write into it raises ``ValueError`` ("assignment
      destination is read-only") at the write itself;
    * any other array (the caller's input batch, labels, targets) is copied:
      the caller's own array is never changed, not even its flags.

    In a network only the input batch and the labels are copied (every other
    saved array is some layer's output). Views of a pycnn output taken
    before it was saved stay writeable: NumPy cannot reach them.
    """
    chain = [a]
    owner = a.base
    while isinstance(owner, np.ndarray):
        chain.append(owner)
        owner = owner.base
    if _core.is_output_buffer(owner):
        for view in chain:
            view.flags.writeable = False
        return a
    return a.copy()


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` returns, as PyTorch's."""

    missing_keys: List[str]
    unexpected_keys: List[str]


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


class Module:
    """Base class of all layers, containers and losses (PyTorch's ``nn.Module`` vocabulary).

    Subclasses call ``super().__init__()`` first, then assign ``Parameter``s
    and sub-``Module``s as attributes (registered in assignment order, which
    fixes the order of :meth:`parameters` and the keys of :meth:`state_dict`)
    and non-trainable arrays with :meth:`register_buffer`. They implement
    ``forward(*inputs)`` and ``backward(grad_output, input_grad=True)``.
    """

    training: bool
    #: True on layers that keep running statistics (BatchNorm): ``freeze(bn_eval=True)`` pins them in eval mode.
    _keeps_running_stats: bool = False
    #: Set by ``freeze(bn_eval=True)``: ``train()`` leaves this module in eval mode until ``unfreeze()``.
    _eval_pinned: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not is_recording(init):
            setattr(cls, "__init__", records_config(init))
        # pycnn's own public layers join the allowlist of pycnn.load on definition.
        if cls.__module__.startswith("pycnn.") and not cls.__name__.startswith("_"):
            register_module(cls)

    def get_config(self) -> Dict[str, Any]:
        """The arguments this module's constructor was called with, by parameter name (defaults included).

        ``type(m)(**m.get_config())`` builds a module with the same
        architecture (for constructors taking ``*args``, such as
        ``Sequential``, see :func:`pycnn.io.to_json`).
        """
        config = recorded_config(self)
        return {} if config is None else config

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_saved", _NO_FORWARD)
        # Counts changes to this module's buffers made through pycnn (assignment,
        # load_state_dict, reset_running_stats): see pycnn.nn.fused.
        object.__setattr__(self, "_buffer_version", 0)
        if type(self).__init__ is Module.__init__:  # a layer without a constructor of its own (ReLU)
            record_no_arguments(self)

    # ------------------------------------------------------------------ registration
    def _check_init(self, name: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() call "
                                 f"(call super().__init__() first in {type(self).__name__}.__init__)")

    @staticmethod
    def _check_name(name: object, kind: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name must be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{kind} name must be non-empty and contain no '.', got {name!r}")

    def _discard(self, name: str) -> None:
        for d in (self._parameters, self._buffers, self._modules):
            d.pop(name, None)
        self._non_persistent.discard(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Parameter):
            self._check_init(name)
            self.__dict__.pop(name, None)
            self._discard(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._check_init(name)
            self.__dict__.pop(name, None)
            self._discard(name)
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                f"(nn.Parameter or None expected)")
            self._parameters[name] = None
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} "
                                f"(nn.Module or None expected)")
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} "
                                f"(numpy.ndarray or None expected)")
            self._buffers[name] = value
            self._buffers_changed()
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: registered members live in the dicts.
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name: str, param: Optional[Parameter]) -> None:
        """Register ``param`` (or None: a declared but absent parameter, e.g. ``bias=False``)."""
        self._check_init(name)
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter {name!r} "
                            f"(nn.Parameter or None expected)")
        if hasattr(type(self), name) or (name in self.__dict__):
            raise KeyError(f"attribute {name!r} already exists")
        self._discard(name)
        self._parameters[name] = param

    def _buffers_changed(self) -> None:
        object.__setattr__(self, "_buffer_version", self._buffer_version + 1)

    def register_buffer(self, name: str, tensor: Optional[np.ndarray], persistent: bool = True) -> None:
        """Register a non-trainable array saved in ``state_dict`` (e.g. BatchNorm's running_mean).

        ``persistent=False`` keeps it out of ``state_dict``. The array is
        stored as given (buffers may be any dtype, e.g. an int64 counter).
        """
        self._check_init(name)
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, np.ndarray):
            raise TypeError(f"cannot assign {type(tensor).__name__} as buffer {name!r} "
                            f"(numpy.ndarray or None expected)")
        if hasattr(type(self), name) or (name in self.__dict__):
            raise KeyError(f"attribute {name!r} already exists")
        if tensor is not None:
            _budget.reserve(tensor.size, f"buffer {name!r} of shape {tensor.shape}")  # (pycnn.load's bound)
        self._discard(name)
        self._buffers[name] = tensor
        self._buffers_changed()
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Optional[Module]) -> None:
        """Register a child module under ``name`` (what attribute assignment does)."""
        self._check_init(name)
        self._check_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if hasattr(type(self), name) or (name in self.__dict__):
            raise KeyError(f"attribute {name!r} already exists")
        self._discard(name)
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo: Optional[Set[int]] = None, prefix: str = "") -> Iterator[Tuple[str, Module]]:
        """(dotted name, module) for this module and every descendant, each module once."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, each once, depth first in registration order."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[Tuple[str, Module]]:
        """(name, module) for the direct children."""
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        """The direct children."""
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool) -> Iterator[Tuple[str, Any]]:
        seen = set()
        mods: Iterable[Tuple[str, Module]] = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in mods:
            for name, v in getattr(m, store).items():
                if v is None or id(v) in seen:
                    continue
                seen.add(id(v))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), v

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[Tuple[str, Parameter]]:
        """(dotted name, Parameter) in registration order, shared parameters once (as PyTorch)."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every Parameter (of descendants too unless ``recurse`` is False), each once, in registration order."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[Tuple[str, np.ndarray]]:
        """(dotted name, array) for every registered buffer, persistent or not."""
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        """Every registered buffer array."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ------------------------------------------------------------------ modes, grads
    def train(self, mode: bool = True) -> Module:
        """Set training mode (forward saves state for backward) on this module and all descendants.

        Layers pinned by ``freeze(bn_eval=True)`` stay in eval mode.
        """
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode and not m._eval_pinned)
        discard_prepared(self)  # calling eval() again is also how a user says "I edited weights in place"
        return self

    def eval(self) -> Module:
        """Inference mode: forward saves nothing (backward needs :class:`pycnn.nn.enable_grad`). Returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Fill every parameter's ``.grad`` with zeros, in place (buffers are reused; one parallel pass)."""
        F.zero_many([p.grad for p in self.parameters()])

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter. Returns self."""
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(f"requires_grad_: requires_grad must be a bool, got {requires_grad!r}")
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def freeze(self, bn_eval: bool = True) -> Module:
        """Freeze every parameter (``requires_grad = False``): backward skips their gradients, optimisers their updates.

        For transfer learning: ``model.freeze(); model[-1] = nn.Linear(128, 5)``
        trains only the new head. Returns self.

        ``bn_eval=True`` (Keras' ``trainable = False``) also freezes the
        running statistics: every BatchNorm in this module goes to eval mode
        now and stays there through ``train()`` (and so through ``fit``,
        which calls it every epoch) until :meth:`unfreeze`. It normalises
        with its running statistics, which no longer change, and its backward
        is the gradient of that affine map. ``bn_eval=False`` freezes the
        parameters only, as PyTorch's ``requires_grad_(False)``: BatchNorm in
        training mode still normalises with batch statistics and updates its
        running statistics.
        """
        if not isinstance(bn_eval, (bool, np.bool_)):
            raise TypeError(f"freeze: bn_eval must be a bool, got {bn_eval!r}")
        self.requires_grad_(False)
        if bn_eval:
            for m in self.modules():
                if m._keeps_running_stats:
                    object.__setattr__(m, "_eval_pinned", True)
                    object.__setattr__(m, "training", False)
        return self

    def unfreeze(self) -> Module:
        """Make every parameter trainable again (``requires_grad = True``) and release BatchNorms pinned by
        ``freeze(bn_eval=True)``: they take this module's mode. Returns self."""
        self.requires_grad_(True)
        for m in self.modules():
            if m._eval_pinned:
                object.__setattr__(m, "_eval_pinned", False)
                object.__setattr__(m, "training", self.training)
        return self

    def trainable_parameters(self) -> Iterator[Parameter]:
        """The parameters with ``requires_grad`` (what an optimiser needs to hold for fine-tuning)."""
        for p in self.parameters():
            if p.requires_grad:
                yield p

    # ------------------------------------------------------------------ forward / backward
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the output; in training mode also :meth:`save_for_backward` what backward needs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Symbolic values build a graph instead (nn.Input); an array pays one set lookup of its type.
        if args and type(args[0]) in _GRAPH_ARGUMENT_TYPES:
            a = args[0]
            if type(a) is SymbolicValue or (a and type(a[0]) is SymbolicValue):
                from .graph import call_symbolic

                return call_symbolic(self, args, kwargs)
        return self.forward(*args, **kwargs)

    def backward(self, grad_output: Any, input_grad: bool = True) -> Any:
        """Gradient w.r.t. the last forward's input; accumulates parameter gradients.

        ``input_grad=False`` lets a module skip computing the input gradient
        (it then returns None), e.g. for a network's first layer.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    def records_for_backward(self) -> bool:
        """Whether a forward now saves what backward needs: in training mode, or inside ``nn.enable_grad()``.

        A layer with a cheaper inference path (MaxPool2d computes no argmax)
        takes it only when this is False.
        """
        return self.training or grad_mode.enabled()

    def save_for_backward(self, *state: Any) -> None:
        """Called by ``forward``: keep ``state`` for backward when :meth:`records_for_backward`, else nothing.

        Arrays in ``state`` are kept immune to what the caller does afterwards
        (:func:`_immune`: pycnn's own outputs become read-only, other arrays
        are copied), so backward always sees what forward saw.
        """
        if not self.records_for_backward():
            object.__setattr__(self, "_saved", _EVAL_FORWARD)
            return
        object.__setattr__(self, "_saved", tuple(_immune(a) if isinstance(a, np.ndarray) else a for a in state))

    def _mark_eval_forward(self) -> None:
        # save_for_backward() with nothing to save, for callers that know no
        # state is recorded here (outside nn.enable_grad()): eval-mode modules
        # are marked without the records_for_backward() round trip (a fused
        # eval forward marks 2-3 modules per convolution).
        if self.training:
            self.save_for_backward()
        else:
            object.__setattr__(self, "_saved", _EVAL_FORWARD)

    def saved(self) -> Tuple[Any, ...]:
        """Called by ``backward``: the state saved by the last forward, freed as it is returned.

        Raises ``RuntimeError`` if there is none (no forward, an eval-mode
        forward, or a second backward for one forward).
        """
        state = self.__dict__.get("_saved", _NO_FORWARD)
        if isinstance(state, _State):
            raise RuntimeError(f"{type(self).__name__}: {state.why}")
        object.__setattr__(self, "_saved", _CONSUMED)
        return state

    def _detach_saved(self) -> List[Tuple[Module, Any]]:
        """The saved state of this module and of every descendant, taken out of them.

        Each is left as before any forward. :mod:`pycnn.nn.graph` keeps one
        such list per call of a layer that a graph calls more than once, and
        hands it back with :meth:`_restore_saved` before that call's backward.
        """
        states = [(m, m.__dict__.get("_saved", _NO_FORWARD)) for m in self.modules()]
        for m, _ in states:
            object.__setattr__(m, "_saved", _NO_FORWARD)
        return states

    @staticmethod
    def _restore_saved(states: List[Tuple[Module, Any]]) -> None:
        """Put back what :meth:`_detach_saved` took."""
        for m, state in states:
            object.__setattr__(m, "_saved", state)

    # ------------------------------------------------------------------ state dict
    def _state_entries(self, prefix: str = "") -> Iterator[Tuple[str, Any, str, str]]:
        """(key, owner module, store, attribute) in PyTorch's order: own params, own buffers, children."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, self, "_parameters", name
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                yield prefix + name, self, "_buffers", name
        for name, m in self._modules.items():
            if m is not None:
                yield from m._state_entries(prefix + name + ".")

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of all parameters and persistent buffers, keyed by PyTorch's names ("0.weight").

        Raises ``ValueError`` if two entries would get the same key (children
        whose names contain '.', placed in ``_modules`` without ``add_module``):
        one of them would silently never be saved or loaded.
        """
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for key, owner, store, name in self._state_entries():
            if key in out:
                raise ValueError(f"state_dict: two entries have the key {key!r}; child, parameter and buffer "
                                 f"names must be non-empty and contain no '.'")
            v = getattr(owner, store)[name]
            out[key] = (v.data if store == "_parameters" else v).copy()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy ``state_dict``'s arrays into this module's parameters and buffers, in place.

        Arrays are copied into the existing ones (``np.copyto``), so optimisers
        keep valid references. Values may be any real array-like (float64
        arrays, ``torch`` CPU tensors); they are converted. With ``strict``,
        missing or unexpected keys raise ``KeyError`` listing them. A shape
        mismatch raises ``ValueError`` quoting both shapes. Everything is
        checked before anything is written, so a failed load changes nothing.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict: expected a mapping, got {type(state_dict).__name__}")
        entries = {key: (owner, store, name) for key, owner, store, name in self._state_entries()}
        missing = [k for k in entries if k not in state_dict]
        unexpected = [k for k in state_dict.keys() if k not in entries]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys: {missing}")
            if unexpected:
                parts.append(f"unexpected keys: {unexpected}")
            raise KeyError(f"Error(s) in loading state_dict for {type(self).__name__}: " + "; ".join(parts))
        plan, errors = [], []
        for key, (owner, store, name) in entries.items():
            if key not in state_dict:
                continue
            target = getattr(owner, store)[name]
            if store == "_parameters":
                target = target.data
            value = state_dict[key]
            if isinstance(value, Parameter):
                value = value.data
            if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, maybe requires_grad
                value = value.detach().cpu()
            try:
                value = np.asarray(value)
            except (TypeError, ValueError) as e:
                errors.append(f"{key}: cannot be converted to an array ({e})")
                continue
            if value.dtype.kind not in "biuf":
                errors.append(f"{key}: expected a real numeric array, got dtype {value.dtype}")
            elif value.shape != target.shape:
                errors.append(f"{key}: copying a param with shape {value.shape}, "
                              f"the shape in the current model is {target.shape}")
            elif not np.can_cast(value.dtype, target.dtype, "same_kind"):
                errors.append(f"{key}: cannot copy dtype {value.dtype} into the model's {target.dtype}")
            else:
                plan.append((target, value))
        if errors:
            raise ValueError(f"Error(s) in loading state_dict for {type(self).__name__}:\n  "
                             + "\n  ".join(errors))
        for target, value in plan:
            np.copyto(target, value, casting="same_kind")
        for p in self.parameters():
            p._version += 1
        for m in self.modules():
            m._buffers_changed()
        discard_prepared(self)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (hyper-parameters)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, m in self._modules.items():
            lines.append(f"({name}): " + _addindent(repr(m), 2))
        main = type(self).__name__ + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"
