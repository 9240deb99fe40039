"""ONNX interchange: :func:`export` writes a pycnn model as an ONNX file, :func:`load` reads one back.

``import pycnn.onnx`` is cheap and works without the ``onnx`` package: the
functions are imported on first use, and only then is ``onnx`` needed
(``pip install "pycnn[onnx]"``).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

if TYPE_CHECKING:
    from .exporter import export
    from .importer import load

__all__ = ["export", "load"]

# public name -> the submodule that defines it (imported on first use: it imports onnx)
_LAZY = {"export": ".exporter", "load": ".importer"}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        import onnx  # noqa: F401  (the submodules need it: say so before they fail deeper)
    except ImportError as e:
        raise ImportError(f"pycnn.onnx.{name} needs the onnx package: pip install \"pycnn[onnx]\" ({e})") from e
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
