"""What :func:`pycnn.load` needs to rebuild a layer: its class, found by name, and its constructor arguments.

* The registry (:func:`register_module`, :func:`registered_modules`) is the
  allowlist of classes ``pycnn.load`` may construct. The public classes of
  pycnn register themselves when they are defined (``Module.__init_subclass__``).
* Every ``Module`` subclass's ``__init__`` is wrapped by :func:`records_config`,
  so the outermost constructor call records its arguments;
  :func:`recorded_config` returns them by parameter name (``Module.get_config``).
* The same call records the names and shapes of the parameters and
  persistent buffers the constructor gave the module (:func:`built_state`):
  ``pycnn.save`` refuses a model whose arrays no longer have them (a
  reshaped ``weight.data``), since loading its file would rebuild the
  constructor's shapes and fail.
* :func:`config_is_children` marks a constructor whose arguments are exactly
  the module's children (``Sequential(*modules)``): :mod:`pycnn.io` then
  saves the children as they are now instead of the arguments.

:mod:`pycnn._architecture` (behind :mod:`pycnn.io`) reads this module; nothing here knows about files.
"""
from __future__ import annotations

import functools
import inspect
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Optional,
    Tuple,
    TypeVar,
    overload,
)

if TYPE_CHECKING:
    from .module import Module

__all__ = ["register_module", "registered_modules", "registered_name", "records_config", "is_recording",
           "record_no_arguments", "recorded_config", "built_state", "own_state_shapes", "config_is_children",
           "children_are_config"]

_T = TypeVar("_T", bound=type)
_Init = TypeVar("_Init", bound=Callable[..., None])

_REGISTRY: Dict[str, type] = {}


@overload
def register_module(cls: _T, *, name: Optional[str] = None) -> _T: ...


@overload
def register_module(cls: None = None, *, name: Optional[str] = None) -> Callable[[_T], _T]: ...


def register_module(cls: Optional[_T] = None, *, name: Optional[str] = None) -> Any:
    """Allow :func:`pycnn.load` to construct ``cls`` (a :class:`Module` subclass) by name.

    The public classes of ``pycnn.nn`` register themselves when they are
    defined. Register your own layers (in the program that saves *and* the
    one that loads) to save and load models that use them::

        @nn.register_module
        class Scale(nn.Module):
            def __init__(self, factor: float = 2.0): ...

    A registered class must be rebuildable from its constructor arguments,
    and these must be JSON values (numbers, strings, bools, None, lists,
    tuples, dicts) or modules. ``name`` defaults to the class name; two
    different classes cannot share one.
    """
    from .module import Module

    def register(c: _T) -> _T:
        if not (isinstance(c, type) and issubclass(c, Module)):
            raise TypeError(f"register_module: expected a Module subclass, got {c!r}")
        key = name or c.__name__
        if not isinstance(key, str) or not key:
            raise TypeError(f"register_module: name must be a non-empty string, got {key!r}")
        old = _REGISTRY.get(key)
        same = old is not None and (old.__module__, old.__qualname__) == (c.__module__, c.__qualname__)
        if old is not None and old is not c and not same:
            raise ValueError(f"register_module: the name {key!r} is already taken by "
                             f"{old.__module__}.{old.__qualname__}; pass name=... to register "
                             f"{c.__module__}.{c.__qualname__} under another name")
        _REGISTRY[key] = c
        setattr(c, "_registered_name", key)
        return c

    return register if cls is None else register(cls)


def registered_modules() -> Dict[str, type]:
    """``{name: class}`` of every layer class :func:`pycnn.load` may construct.

    Classes join it when they are defined: pycnn's networks (``ResNet``)
    once :mod:`pycnn.models.resnet` is imported, which ``pycnn.load`` does.
    """
    return dict(_REGISTRY)


def registered_name(cls: type) -> Optional[str]:
    """The name ``cls`` is registered under, or None."""
    key = cls.__dict__.get("_registered_name")
    return key if key is not None and _REGISTRY.get(key) is cls else None


# A module's recorded constructor call: (signature without self, args, kwargs),
# kept in this instance attribute.
_CALL = "_init_call"
# The shapes of the module's own parameters and persistent buffers when its constructor returned.
_BUILT = "_init_state"
_NO_ARGS = inspect.Signature()


def own_state_shapes(module: Any) -> Dict[str, Tuple[int, ...]]:
    """{name: shape} of ``module``'s own (not its children's) parameters and persistent buffers."""
    d = module.__dict__
    out = {n: tuple(p.shape) for n, p in d.get("_parameters", {}).items() if p is not None}
    skip = d.get("_non_persistent", ())
    out.update((n, tuple(b.shape)) for n, b in d.get("_buffers", {}).items() if b is not None and n not in skip)
    return out


def _record(module: object, call: Tuple[inspect.Signature, tuple, dict]) -> None:
    object.__setattr__(module, _CALL, call)
    object.__setattr__(module, _BUILT, own_state_shapes(module))


def built_state(module: Module) -> Optional[Dict[str, Tuple[int, ...]]]:
    """{name: shape} of the parameters and persistent buffers ``module``'s constructor gave it (None if unrecorded)."""
    return module.__dict__.get(_BUILT)


def records_config(init: _Init) -> _Init:
    """Wrap a Module subclass's ``__init__`` so the outermost call records its arguments."""
    sig = inspect.signature(init)
    sig = sig.replace(parameters=list(sig.parameters.values())[1:])  # drop self

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        # Only the constructor of the object's own class records (not the
        # super().__init__ calls it makes), after it has run.
        if type(self).__init__ is __init__:
            _record(self, (sig, args, kwargs))

    setattr(__init__, "_pycnn_records_config", True)
    return __init__  # type: ignore[return-value]  # the same signature as init


def is_recording(init: Callable[..., None]) -> bool:
    """Whether ``init`` is already wrapped by :func:`records_config`."""
    return bool(getattr(init, "_pycnn_records_config", False))


def record_no_arguments(module: Module) -> None:
    """Record an empty constructor call (for a layer without an ``__init__`` of its own, such as ReLU)."""
    _record(module, (_NO_ARGS, (), {}))


def recorded_config(module: Module) -> Optional[Dict[str, Any]]:
    """The arguments ``module``'s constructor was called with, by parameter name (defaults included).

    None if nothing was recorded (an object created without calling ``__init__``).
    """
    call = module.__dict__.get(_CALL)
    if call is None:
        return None
    sig, args, kwargs = call
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def config_is_children(init: _Init) -> _Init:
    """Mark a constructor whose arguments are exactly the module's children (``Sequential(*modules)``).

    Those children may change after construction (``append``, ``model[i] =
    ...``, ``del model[i]``), so :mod:`pycnn.io` saves such a module as its
    children alone. A subclass with a constructor of its own is not marked.
    """
    setattr(init, "_pycnn_config_is_children", True)
    return init


def children_are_config(cls: type) -> bool:
    """Whether ``cls``'s constructor is marked by :func:`config_is_children`."""
    return bool(getattr(getattr(cls, "__init__"), "_pycnn_config_is_children", False))
