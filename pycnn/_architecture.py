"""A network's architecture as JSON: what :mod:`pycnn.io` writes into a model file, and rebuilds from it.

Each layer is its registered class name, the arguments its constructor was
called with (``config``: JSON values, tuples as ``{"$tuple": [...]}``,
modules passed as arguments as ``{"$child": name}``, other modules inline as
``{"$module": ...}``) and its current children. ``Sequential`` is stored as
its children alone, so a head swapped with ``model[-1] = ...`` or layers
appended later are saved as they are now.

A graph (``nn.Model``) is its children and, instead of a config, its
``graph``: the inputs' shapes, each node as the child it calls, the values
it takes (by number: the inputs, then each node's outputs in order, so a
node can only take values defined before it and no file describes a cycle)
and its outputs' shapes, and the outputs (``Model.graph_spec``). Loading
checks every field and runs no layer (``Model.from_graph_spec``).

Building calls only the constructors of registered layer classes
(:mod:`pycnn.nn.registry`) with decoded JSON values; no name in the text is
ever imported or evaluated. Child names follow ``Module.add_module``'s rules
(non-empty strings without '.'), so no two state-dict keys can coincide; a
layer's children must be the ones its constructor builds (by name; a child
may be replaced by another layer, as a swapped head is); and
:mod:`pycnn.io` builds within the element budget of the file's weights
(:mod:`pycnn.nn._budget`), so no architecture costs more than its file holds. This module depends on :mod:`pycnn.nn` and
:mod:`pycnn.models` (whose networks must be registered to be built); neither
depends on it.
"""
from __future__ import annotations

import inspect
import json
from collections import OrderedDict
from typing import Any, Dict, Optional, Set, Union

import numpy as np

from . import _random
from .nn._budget import element_budget
from .nn.graph import Model
from .nn.module import Module
from .nn.registry import children_are_config, recorded_config, registered_modules, registered_name

# pycnn's networks register their classes (ResNet) when they are defined, so
# that files naming them can be built.
from .models import resnet as _networks  # noqa: F401

__all__ = ["to_spec", "from_spec", "to_json", "from_json", "parse_json", "count_layers"]

_MAX_DEPTH = 200  # nesting of layers and config values a file may have


def _encode(value: Any, owner: Module, where: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError(f"{where}: nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Module):
        for name, child in owner._modules.items():
            if child is value:
                return {"$child": name}
        return {"$module": _spec(value, where, depth + 1)}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, owner, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, owner, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where}: dict keys must be strings to be saved as JSON, got {list(value)!r}")
        items = [[k, _encode(v, owner, f"{where}[{k!r}]", depth + 1)] for k, v in value.items()]
        if isinstance(value, OrderedDict):
            return {"$odict": items}
        if any(k.startswith("$") for k in value):
            return {"$dict": items}
        return dict(items)
    raise TypeError(f"{where}: a {type(value).__name__} cannot be saved as JSON; pycnn.save stores the "
                    f"constructor arguments of every layer, which must be numbers, strings, bools, None, "
                    f"lists, tuples, dicts or modules")


def _spec(module: Module, where: str = "model", depth: int = 0) -> Dict[str, Any]:
    if depth > _MAX_DEPTH:
        raise ValueError(f"{where}: layers nested too deeply")
    cls = type(module)
    name = registered_name(cls)
    if name is None:
        raise TypeError(f"{where}: {cls.__module__}.{cls.__qualname__} is not a registered layer, so pycnn.load "
                        f"could not rebuild it; register it with pycnn.nn.register_module (in the program "
                        f"that loads, too)")
    spec: Dict[str, Any] = {"type": name}
    if cls is Model:  # a graph: its children and how they are called (a subclass has a constructor of its own)
        spec["graph"] = module.graph_spec()
    elif not children_are_config(cls):  # (Sequential is saved as its children as they are now)
        if recorded_config(module) is None:
            raise TypeError(f"{where}: {cls.__qualname__} object has no recorded constructor arguments "
                            f"(was it created without calling __init__?)")
        config = module.get_config()  # (which a layer may override)
        spec["config"] = {k: _encode(v, module, f"{where}.{k}", depth + 1) for k, v in config.items()}
    spec["children"] = [[n, None if c is None else _spec(c, f"{where}.{n}", depth + 1)]
                        for n, c in module._modules.items()]
    return spec


def _normal(spec: Any) -> Any:
    return json.loads(json.dumps(spec))


def _child_refs(value: Any, out: Set[str]) -> Set[str]:
    if isinstance(value, dict):
        if set(value) == {"$child"}:
            out.add(value["$child"])
        elif set(value) != {"$module"}:  # an inline module's refs are its own
            for v in value.values():
                _child_refs(v, out)
    elif isinstance(value, list):
        for v in value:
            _child_refs(v, out)
    return out


def _decode(value: Any, children: Dict[str, Any], where: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError(f"{where}: nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(v, children, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        raise ValueError(f"{where}: unexpected JSON value {value!r}")
    tags = [k for k in value if k.startswith("$")]
    if not tags:
        return {k: _decode(v, children, f"{where}[{k!r}]", depth + 1) for k, v in value.items()}
    if len(value) != 1:
        raise ValueError(f"{where}: malformed tagged value with keys {sorted(value)}")
    tag, inner = next(iter(value.items()))
    if tag == "$tuple" and isinstance(inner, list):
        return tuple(_decode(v, children, f"{where}[{i}]", depth + 1) for i, v in enumerate(inner))
    if tag == "$child" and isinstance(inner, str):
        if inner not in children:
            raise ValueError(f"{where}: refers to child {inner!r}, which the layer does not have")
        return children[inner]
    if tag == "$module":
        return _build(inner, where, depth + 1)
    if tag in ("$odict", "$dict") and isinstance(inner, list):
        items = []
        for item in inner:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                raise ValueError(f"{where}: malformed {tag} entry {item!r}")
            items.append((item[0], _decode(item[1], children, f"{where}[{item[0]!r}]", depth + 1)))
        return OrderedDict(items) if tag == "$odict" else dict(items)
    raise ValueError(f"{where}: unknown or malformed tag {tag!r}")


def _build(spec: Any, where: str = "architecture", depth: int = 0) -> Module:
    if depth > _MAX_DEPTH:
        raise ValueError(f"{where}: layers nested too deeply")
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise ValueError(f"{where}: expected a layer {{\"type\": ..., ...}}, got {str(spec)[:80]!r}")
    registry = registered_modules()
    cls = registry.get(spec["type"])
    unknown = set(spec) - {"type", "children"} - ({"graph"} if cls is Model else {"config"})
    if unknown:
        raise ValueError(f"{where}: unexpected keys {sorted(unknown)}")
    if cls is None:
        raise ValueError(f"{where}: unknown layer type {spec['type']!r}; pycnn.load builds only registered "
                         f"layers ({', '.join(sorted(registry))}); register custom layers with "
                         f"pycnn.nn.register_module before loading")
    child_specs = spec.get("children", [])
    if not isinstance(child_specs, list) or not all(
            isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) for c in child_specs):
        raise ValueError(f"{where}: children must be a list of [name, layer] pairs")
    for name, _ in child_specs:
        # add_module's rules: a '.' or an empty name would make two state-dict keys coincide.
        if not name or "." in name:
            raise ValueError(f"{where}: child name {name!r} is not allowed (names must be non-empty and "
                             f"contain no '.')")
    by_name = dict(child_specs)
    if len(by_name) != len(child_specs):
        raise ValueError(f"{where}: duplicate child names")
    if cls is Model:
        layers: Dict[str, Module] = OrderedDict()
        for name, child in child_specs:
            if child is None:
                raise ValueError(f"{where}: a graph's child {name!r} is null")
            layers[name] = _build(child, f"{where}.{name}", depth + 1)
        return Model.from_graph_spec(layers, spec.get("graph"), f"{where}.graph")
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"{where}: config must be an object, got {type(config).__name__}")

    # Children passed to the constructor are built first.
    built: Dict[str, Any] = {}
    for name in sorted(_child_refs(config, set())):
        if name not in by_name:
            raise ValueError(f"{where}: config refers to child {name!r}, which is not among its children")
        child = by_name[name]
        built[name] = None if child is None else _build(child, f"{where}.{name}", depth + 1)
    args = {k: _decode(v, built, f"{where}.{k}", depth + 1) for k, v in config.items()}

    sig = inspect.signature(getattr(cls, "__init__"))
    sig = sig.replace(parameters=list(sig.parameters.values())[1:])  # drop self
    bad = [k for k in args if k not in sig.parameters]
    if bad:
        raise ValueError(f"{where}: {cls.__name__} has no constructor argument(s) {bad}")
    bound = inspect.BoundArguments(sig, OrderedDict(args))
    try:
        module = cls(*bound.args, **bound.kwargs)
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"{where}: cannot construct {cls.__name__} from {args}: {e}") from e

    # Reconcile the children with the file: keep what the constructor built
    # where it is the same, use the file's where it differs (a swapped head).
    # A layer whose constructor builds its children must have the same ones:
    # a file that drops them (or adds others) is not what this config builds.
    if not children_are_config(cls):
        constructed, listed = list(module._modules), [name for name, _ in child_specs]
        if sorted(constructed) != sorted(listed):
            raise ValueError(f"{where}: {cls.__name__} built with this config has children {constructed}, the file "
                             f"lists {listed}")
    children: "OrderedDict[str, Optional[Module]]" = OrderedDict()
    for name, child_spec in child_specs:
        if child_spec is None:
            children[name] = None
        elif name in built:
            children[name] = built[name]
        else:
            existing = module._modules.get(name)
            same = False
            if existing is not None:
                try:
                    same = _normal(_spec(existing)) == child_spec
                except (TypeError, ValueError):
                    same = False
            children[name] = existing if same else _build(child_spec, f"{where}.{name}", depth + 1)
    if list(module._modules.items()) != list(children.items()):
        module._modules.clear()
        module._modules.update(children)
    return module


def count_layers(spec: Any, depth: int = 0) -> int:
    """How many layers ``spec`` describes (its own, its children's, and modules inlined in configs)."""
    if depth > _MAX_DEPTH:
        raise ValueError("architecture: nested too deeply")
    if isinstance(spec, list):
        return sum(count_layers(v, depth + 1) for v in spec)
    if not isinstance(spec, dict):
        return 0
    n = 1 if isinstance(spec.get("type"), str) else 0
    return n + sum(count_layers(v, depth + 1) for v in spec.values())


def to_spec(model: Module) -> Dict[str, Any]:
    """The architecture of ``model`` as JSON values (what :func:`to_json` writes)."""
    return _spec(model)


def from_spec(spec: Any, *, max_elements: Optional[int] = None, source: str = "") -> Module:
    """A newly initialised network from :func:`to_spec`'s values (only registered layers are constructed).

    pycnn's random generator is left as it was: the throw-away initial
    weights are drawn from a generator of their own. With ``max_elements``,
    the network may hold at most that many parameter and buffer elements:
    a layer that would exceed it is refused before it allocates them
    (``ValueError`` naming ``source``, where the bound comes from).
    Raises ``ValueError`` if two state-dict entries would get one key.
    """
    with _random.preserved():
        if max_elements is None:
            model = _build(spec)
        else:
            with element_budget(max_elements, source or "the bound"):
                model = _build(spec)
    seen: Set[str] = set()
    for key, *_ in model._state_entries():
        if key in seen:
            raise ValueError(f"architecture: two state-dict entries have the key {key!r}")
        seen.add(key)
    return model


def to_json(model: Module, indent: Optional[int] = None) -> str:
    """The architecture of ``model`` as JSON text (no weights); :func:`from_json` rebuilds it."""
    return json.dumps(_spec(model), indent=indent, allow_nan=True)


def from_json(text: Union[str, bytes]) -> Module:
    """A newly initialised network from :func:`to_json`'s text (only registered layers are constructed).

    pycnn's random generator is left as it was: the throw-away initial
    weights are drawn from a generator of their own.
    """
    return from_spec(parse_json(text, "architecture"))


def parse_json(text: Union[str, bytes], what: str) -> Any:
    """``json.loads(text)``; invalid JSON is a ``ValueError`` naming ``what``."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{what}: not valid JSON ({e})") from None
