"""Every public function and method of pycnn has type hints on every parameter and its return.

mypy (configured in pyproject.toml, run by .ci/run) checks that the hints are
right; this test checks that they are there, which mypy's default settings do
not: an unannotated public function would be silently skipped.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pycnn

# Modules run as programs, not imported as a library.
SKIP_MODULES = {"pycnn.__main__", "pycnn.bench.__main__", "pycnn.bench.rss_probe"}


def _public_modules():
    yield pycnn
    for info in pkgutil.walk_packages(pycnn.__path__, "pycnn."):
        if info.name in SKIP_MODULES or info.name == "pycnn._core":
            continue
        yield importlib.import_module(info.name)


def _missing(fn, qualname: str):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    out = []
    for i, (name, p) in enumerate(sig.parameters.items()):
        if i == 0 and name in ("self", "cls"):
            continue
        if p.annotation is inspect.Parameter.empty:
            out.append(f"{qualname}({name})")
    if sig.return_annotation is inspect.Signature.empty:
        out.append(f"{qualname} -> ?")
    return out


def _is_public(name: str) -> bool:
    return not name.startswith("_") or name == "__init__"


def test_public_signatures_are_annotated():
    missing = []
    seen = set()
    for mod in _public_modules():
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__ or id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isfunction(obj):
                missing += _missing(obj, f"{mod.__name__}.{name}")
            elif inspect.isclass(obj):
                for mname, member in vars(obj).items():
                    if not _is_public(mname):
                        continue
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if isinstance(member, property):
                        member = member.fget
                    if inspect.isfunction(member):
                        missing += _missing(member, f"{mod.__name__}.{name}.{mname}")
    assert not missing, f"{len(missing)} public signatures lack hints:\n" + "\n".join(missing)


def test_package_ships_py_typed():
    import pathlib

    assert (pathlib.Path(pycnn.__file__).parent / "py.typed").is_file()
