"""pycnn/_core.pyi stays in sync with the compiled bindings: same functions, same arguments."""
import ast
import pathlib
import re

import pytest

from pycnn import _core

STUB = pathlib.Path(__file__).resolve().parents[1] / "pycnn" / "_core.pyi"


def stub_functions():
    if not STUB.is_file():
        pytest.skip("pycnn/_core.pyi is not next to tests/ (not running from a checkout)")
    tree = ast.parse(STUB.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            a = node.args
            params = [p.arg for p in a.posonlyargs + a.args]
            n_defaults = len(a.defaults)
            out[node.name] = (params, len(a.posonlyargs), n_defaults)
    return out


def split_top_level(text):
    """Split 'a: X[b, c], d: Y = 1' at the commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def binding_functions():
    out = {}
    for name in dir(_core):
        obj = getattr(_core, name)
        if name.startswith("__") or not callable(obj) or isinstance(obj, type):
            continue
        first = (obj.__doc__ or "").splitlines()[0]
        m = re.match(rf"{name}\((.*)\) ->", first)
        assert m, f"cannot read the signature of _core.{name}: {first!r}"
        args = split_top_level(m.group(1))
        params = [a.split(":")[0].strip() for a in args]
        n_defaults = sum(1 for a in args if "=" in a)
        out[name] = (params, n_defaults)
    return out


def test_stub_lists_exactly_the_bindings():
    stub, real = stub_functions(), binding_functions()
    assert sorted(stub) == sorted(real), (
        f"missing from _core.pyi: {sorted(set(real) - set(stub))}; "
        f"in _core.pyi but not compiled: {sorted(set(stub) - set(real))}")


def test_stub_signatures_match_the_bindings():
    stub, real = stub_functions(), binding_functions()
    for name, (params, n_defaults) in real.items():
        s_params, s_posonly, s_defaults = stub[name]
        assert len(s_params) == len(params), f"{name}: stub has {s_params}, binding {params}"
        assert s_defaults == n_defaults, f"{name}: stub has {s_defaults} defaults, binding {n_defaults}"
        unnamed = all(re.fullmatch(r"arg\d+", p) for p in params)
        if unnamed:  # pybind11 declares no names: callers must pass them by position
            assert s_posonly == len(params), f"{name}: binding arguments are positional-only; mark them with /"
        else:
            assert s_params == params, f"{name}: stub names {s_params}, binding names {params}"


def test_stub_lists_the_classes_and_their_methods():
    if not STUB.is_file():
        pytest.skip("pycnn/_core.pyi is not next to tests/ (not running from a checkout)")
    tree = ast.parse(STUB.read_text())
    stub = {node.name: sorted(n.name for n in node.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_"))
            for node in tree.body if isinstance(node, ast.ClassDef)}
    real = {name: sorted(m for m in vars(obj) if not m.startswith("_"))
            for name in dir(_core) if isinstance(obj := getattr(_core, name), type) and not name.startswith("_")}
    assert stub == real


def test_stub_declares_the_version():
    assert "__version__: str" in STUB.read_text() if STUB.is_file() else True
    assert isinstance(_core.__version__, str)
