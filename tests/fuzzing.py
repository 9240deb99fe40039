"""Fuzz targets for issue 12, item 10, and a runner that counts what happened to every input.

Each target draws an input with hypothesis, feeds it to pycnn and sorts the
outcome into one of four classes:

* ``accepted``: a result that passed the target's checks (below);
* ``clear``: the documented exception with a message (``ValueError`` naming
  the file for model and IDX files; for the functional API the exception a
  contract check raises: ``ValueError``, ``TypeError``, ``OverflowError``,
  ``IndexError``, ``KeyError``, or ``MemoryError`` for a legal but huge size);
* ``silent``: accepted although wrong: a loaded model whose weights, mode,
  frozen set or architecture differ from the file, an IDX array that is not
  the file's bytes, a functional call accepted with an argument the contract
  forbids (``_spec_*`` below, written from docs/api.md, not from the code),
  or a result away from the NumPy reference; a failed ``load_weights`` that
  changed the model;
* ``crash``: any other exception (a crash of the process itself kills the
  runner, which the caller reports).

Targets: ``model_file`` (pycnn.load and read_metadata on structure-aware
mutations of the corpus's model files: the JSON header's nodes replaced,
deleted or duplicated with values of every JSON kind, weight members
replaced, dropped, added or renamed, all inside well-formed zips so the
checks past the zip layer are reached), ``load_weights`` (the same member
mutations against a fixed model, strict and not), ``idx`` (random bytes and
mutated valid files, raw and gzip), ``functional`` (conv2d, max/avg pooling,
linear, softmax, leaky_relu, dropout and cross-entropy over a wild argument
space: ints from -2^63 to 10^30, bools, floats, NaN, strings, None, tuples
of any length, NumPy scalars; arrays of every dtype and rank).

    python tests/fuzzing.py --examples 20000          # every target, fixed seed
    python tests/fuzzing.py --seconds 600 --target functional
    python tests/fuzzing.py --write-corpus            # rebuild tests/fuzz_corpus/

The runner limits its own address space (``--memory-gib``, default 4) so a
refusal that comes too late is a MemoryError here, not a swapping machine.
tests/test_fuzz.py runs it with a small budget (``PYCNN_FUZZ_EXAMPLES``).
"""
from __future__ import annotations

import argparse
import gzip
import io as _io
import json
import math
import os
import pathlib
import struct
import sys
import tempfile
import time
import zipfile
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

CORPUS = pathlib.Path(__file__).resolve().parent / "fuzz_corpus"


class Outcome(Exception):
    """Raised inside a target to classify an input early."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


# ---------------------------------------------------------------------------
# IDX files (the strategies test_files.py uses too)
# ---------------------------------------------------------------------------

IDX_TYPES = {"u1": 8, "i1": 9, ">i2": 11, ">i4": 12, ">f4": 13, ">f8": 14}


@st.composite
def valid_idx(draw):
    """(array, the bytes of a valid IDX file holding it)."""
    code = draw(st.sampled_from(list(IDX_TYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=1, max_size=3)))
    arr = np.arange(int(np.prod(shape)), dtype=np.dtype(code).newbyteorder("=")).reshape(shape)
    buf = _io.BytesIO()
    buf.write(bytes([0, 0, IDX_TYPES[code], len(shape)]) + struct.pack(f">{len(shape)}I", *shape))
    buf.write(arr.astype(code).tobytes())
    return arr, buf.getvalue()


@st.composite
def mutation(draw, size):
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "append", "lie_dim", "lie_ndim", "lie_type"]))
    pos = draw(st.integers(0, max(0, size - 1)))
    return kind, pos, draw(st.integers(1, 255)), draw(st.integers(0, 2 ** 32 - 1))


def mutate(data: bytes, m) -> bytes:
    kind, pos, byte, big = m
    b = bytearray(data)
    if kind == "truncate":
        return bytes(b[:pos])
    if kind == "flip" and b:
        b[pos] ^= byte
    elif kind == "insert":
        b[pos:pos] = bytes([byte])
    elif kind == "append":
        b += bytes([byte]) * (byte % 7 + 1)
    elif kind == "lie_dim" and len(b) >= 8:
        ndim = b[3]
        i = pos % max(1, ndim)
        if 4 + 4 * i + 4 <= len(b):  # a dimension claims anything from 0 to 2^32 - 1
            b[4 + 4 * i:8 + 4 * i] = struct.pack(">I", big)
    elif kind == "lie_ndim" and len(b) >= 4:
        b[3] = byte
    elif kind == "lie_type" and len(b) >= 3:
        b[2] = byte
    return bytes(b)


def check_idx_read(path: pathlib.Path, raw: bytes) -> str:
    """read_idx on a file whose decompressed bytes are ``raw``: 'accepted' or 'clear'; Outcome otherwise."""
    from pycnn.data import read_idx

    try:
        arr = read_idx(path)
    except ValueError as e:
        if os.fspath(path) not in str(e):
            raise Outcome("crash", f"ValueError not naming the file: {e}")
        return "clear"
    ndim = raw[3] if len(raw) > 3 else -1
    if not (isinstance(arr, np.ndarray) and arr.flags.c_contiguous and arr.flags.writeable and ndim >= 1
            and arr.shape == struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
            and 4 + 4 * ndim + arr.nbytes == len(raw)
            and IDX_TYPES.get(arr.dtype.newbyteorder(">").str.replace("|", "")) == raw[2]
            and arr.tobytes() == np.frombuffer(raw[4 + 4 * ndim:], arr.dtype.newbyteorder(">"))
            .astype(arr.dtype).tobytes()):
        raise Outcome("silent", f"read_idx returned {getattr(arr, 'shape', arr)} for header {raw[:4 + 4 * max(ndim, 0)]!r}")
    return "accepted"


@st.composite
def idx_inputs(draw):
    if draw(st.integers(0, 4)) == 0:
        raw = draw(st.binary(max_size=200))
    else:
        _, good = draw(valid_idx())
        raw = mutate(good, draw(mutation(len(good)))) if draw(st.booleans()) else good
    return raw, draw(st.booleans())


def run_idx(case, workdir: pathlib.Path) -> str:
    raw, compress = case
    path = workdir / ("f.idx.gz" if compress else "f.idx")
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    return check_idx_read(path, raw)


# ---------------------------------------------------------------------------
# Model files: structure-aware mutations inside well-formed zips
# ---------------------------------------------------------------------------

META = "__pycnn__"
_WILD_INTS = [-2 ** 63 - 1, -2 ** 63, -2 ** 31, -1, 0, 1, 2, 3, 7, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 1, 2 ** 62,
              2 ** 63 - 1, 2 ** 63, 2 ** 64, 10 ** 30]


def _layer_names() -> List[str]:
    from pycnn.nn import registered_modules

    return sorted(registered_modules())


def json_values(depth: int = 2) -> st.SearchStrategy:
    """Values of every JSON kind, weighted towards the ones a checker can get wrong."""
    leaves = st.one_of(st.sampled_from(_WILD_INTS), st.integers(-4, 20), st.floats(allow_nan=True),
                       st.booleans(), st.none(), st.text(max_size=6),
                       st.sampled_from(["same", "valid", "none", "tanh", "auto", "im2col", "winograd", "mean",
                                        "Linear", "Conv2d", "ReLU", "Sequential", "ResNet", "0", "a.b", ""]))
    if depth == 0:
        return leaves
    inner = json_values(depth - 1)
    return st.one_of(leaves, leaves, st.lists(inner, max_size=3),
                     st.dictionaries(st.sampled_from(["type", "config", "children", "in_features", "x", ""]),
                                     inner, max_size=3))


def read_model_file(path: pathlib.Path) -> Tuple[Dict[str, Any], Dict[str, bytes]]:
    """(the JSON header, the raw .npy bytes of every member) of a file written by pycnn.save."""
    members = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            members[info.filename[:-4]] = z.read(info)
    meta = json.loads(np.load(_io.BytesIO(members.pop(META)), allow_pickle=False).tobytes().decode())
    return meta, members


def npy(a: np.ndarray) -> bytes:
    b = _io.BytesIO()
    np.save(b, a, allow_pickle=a.dtype == object)
    return b.getvalue()


def write_zip(path: pathlib.Path, members: Dict[str, bytes], deflate: bool) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)


def _paths(node: Any, prefix: Tuple = ()) -> List[Tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _edit_json(meta: Any, path: Tuple, op: str, value: Any) -> Any:
    if not path:
        return value if op == "replace" else meta
    parent = meta
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    if op == "replace":
        parent[key] = value
    elif op == "delete":
        del parent[key]
    elif op == "duplicate":
        if isinstance(parent, list):
            parent.insert(key, json.loads(json.dumps(parent[key])))
        else:
            parent[str(key) + "_"] = json.loads(json.dumps(parent[key]))
    return meta


@st.composite
def array_member(draw):
    """A replacement weight member: an array of any small shape and of any dtype, or bytes that lie."""
    kind = draw(st.sampled_from(["array", "array", "array", "object", "header_lie", "garbage"]))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=4)))
    if kind == "array":
        dtype = draw(st.sampled_from(["<f4", "<f8", "<f2", ">f4", "<i8", "|u1", "|b1", "<c8", "<U2", "<M8[s]"]))
        return npy(np.ones(shape, dtype) if dtype[1] != "U" else np.full(shape, "ab", dtype))
    if kind == "object":
        return npy(np.array([{"a": 1}, None], dtype=object))
    if kind == "header_lie":
        good = npy(np.zeros(shape, np.float32))
        claim = str(tuple(draw(st.lists(st.sampled_from([0, 1, 3, 2 ** 31, 2 ** 40, 10 ** 12]), max_size=3))))
        return good.replace(str(shape).encode(), claim.encode(), 1)
    return draw(st.binary(max_size=64))


@st.composite
def member_edits(draw, names: List[str]):
    edits = []
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["replace", "drop", "add", "rename"]))
        name = draw(st.sampled_from(names)) if names else "w"
        edits.append((op, name, draw(array_member()), draw(st.sampled_from(["extra", "0.weight", name + "x", ""]))))
    return edits


def apply_member_edits(members: Dict[str, bytes], edits) -> Dict[str, bytes]:
    members = dict(members)
    for op, name, data, new_name in edits:
        if op == "replace":
            members[name] = data
        elif op == "drop":
            members.pop(name, None)
        elif op == "add":
            members[new_name] = data
        elif op == "rename" and name in members:
            members[new_name] = members.pop(name)
    return members


def corpus_models() -> List[pathlib.Path]:
    return sorted(CORPUS.glob("model_*.npz"))


@st.composite
def model_file_inputs(draw):
    path = draw(st.sampled_from(corpus_models()))
    meta, members = read_model_file(path)
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(meta)
        p = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "replace", "delete", "duplicate", "type"]))
        if op == "type":  # another registered layer under the same config
            node = meta
            for k in p:
                node = node[k]
            if isinstance(node, dict) and "type" in node:
                node["type"] = draw(st.sampled_from(_layer_names()))
            continue
        if not p and op != "replace":
            continue
        meta = _edit_json(meta, p, op, draw(json_values()))
    members = apply_member_edits(members, draw(member_edits(sorted(members))))
    return meta, members, draw(st.booleans())


def _same_json(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, allow_nan=True) == json.dumps(b, sort_keys=True, allow_nan=True)


def _arch_mismatch(built: Any, given: Any, path: str = "") -> Optional[str]:
    """Where the built architecture differs from the file's, or None. Two readings of the format are not
    differences: an absent ``children`` list is an empty one (a leaf), and an absent ``config`` entry
    takes the constructor's default (files written before a layer gained an argument)."""
    if not (isinstance(given, dict) and "type" in given and isinstance(built, dict)):
        return None if _same_json(built, given) else _first_difference(built, given, path)
    if built.get("type") != given["type"]:
        return f"{path}/type: built {built.get('type')!r} != file {given['type']!r}"
    config = given.get("config", {})
    if not isinstance(config, dict):
        return f"{path}/config: the file has {config!r}"
    for k, v in config.items():
        if not _same_json(built.get("config", {}).get(k, "<absent>"), v):
            return _first_difference(built.get("config", {}).get(k, "<absent>"), v, f"{path}/config/{k}")
    extra = set(given) - {"type", "config", "children"}
    if extra:
        return f"{path}: keys {sorted(extra)} of the file were ignored"
    kids, built_kids = given.get("children", []), built.get("children", [])
    if not isinstance(kids, list) or len(kids) != len(built_kids):
        return f"{path}/children: built {len(built_kids)} children, the file has {json.dumps(kids)[:100]}"
    for i, (b, g) in enumerate(zip(built_kids, kids)):
        if not (isinstance(g, list) and len(g) == 2 and b[0] == g[0]):
            return f"{path}/children/{i}: built {b[0]!r}, the file has {json.dumps(g)[:100]}"
        m = _arch_mismatch(b[1], g[1], f"{path}/children/{i}/1")
        if m:
            return m
    return None


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two JSON values first differ: 'path: built value != file value'."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b or not _same_json(a[k], b[k]):
                return _first_difference(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}/{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if not _same_json(x, y):
                return _first_difference(x, y, f"{path}/{i}")
    return f"{path or '/'}: built {json.dumps(a, allow_nan=True)[:120]} != file {json.dumps(b, allow_nan=True)[:120]}"


def _check_loaded(model, meta: Dict[str, Any], members: Dict[str, bytes], path: pathlib.Path) -> None:
    """A loaded model must be the file: weights, mode, frozen set, architecture and metadata."""
    from pycnn import io as pio
    from pycnn import _architecture

    state = model.state_dict()
    for key, data in members.items():
        arr = np.load(_io.BytesIO(data), allow_pickle=False)
        if key not in state or not np.array_equal(state[key], arr.astype(state[key].dtype), equal_nan=True):
            raise Outcome("silent", f"weight {key!r} of the file is not the model's")
    if set(state) != set(members):
        raise Outcome("silent", f"the model's keys {sorted(state)} are not the file's {sorted(members)}")
    if model.training is not meta.get("training", False):
        raise Outcome("silent", f"loaded with training={model.training}, the file says {meta.get('training')!r}")
    frozen = sorted(n for n, p in model.named_parameters() if not p.requires_grad)
    if frozen != sorted(set(meta.get("frozen", []))):
        raise Outcome("silent", f"frozen {frozen}, the file says {meta.get('frozen')!r}")
    mismatch = _arch_mismatch(_architecture.to_spec(model), meta.get("architecture"))
    if mismatch:
        raise Outcome("silent", "the built architecture is not the file's: " + mismatch)
    if pio.read_metadata(path) != dict(meta.get("metadata") or {}):
        raise Outcome("silent", "read_metadata disagrees with the file")


def run_model_file(case, workdir: pathlib.Path) -> str:
    import pycnn
    from pycnn import io as pio

    meta, members, deflate = case
    path = workdir / "model.npz"
    text = json.dumps(meta, allow_nan=True)
    write_zip(path, {META: npy(np.frombuffer(text.encode(), np.uint8)), **members}, deflate)
    outcome = "accepted"
    try:
        model = pycnn.load(path)
    except ValueError as e:
        if os.fspath(path) not in str(e):
            raise Outcome("crash", f"ValueError not naming the file: {e}")
        outcome = "clear"
    else:
        _check_loaded(model, meta, members, path)
    try:
        got = pio.read_metadata(path)
    except ValueError as e:
        if os.fspath(path) not in str(e):
            raise Outcome("crash", f"read_metadata: ValueError not naming the file: {e}")
    else:
        if not isinstance(got, dict):
            raise Outcome("silent", f"read_metadata returned {type(got).__name__}")
    return outcome


# ---------------------------------------------------------------------------
# load_weights into a fixed model
# ---------------------------------------------------------------------------

def weights_model():
    from pycnn import nn

    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))


@st.composite
def load_weights_inputs(draw):
    members = {}
    with zipfile.ZipFile(CORPUS / "weights.npz") as z:
        for info in z.infolist():
            members[info.filename[:-4]] = z.read(info)
    return apply_member_edits(members, draw(member_edits(sorted(members)))), draw(st.booleans()), \
        draw(st.booleans())


def run_load_weights(case, workdir: pathlib.Path) -> str:
    from pycnn import io as pio

    members, strict, deflate = case
    path = workdir / "weights.npz"
    write_zip(path, members, deflate)
    model = weights_model()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    try:
        result = pio.load_weights(model, path, strict=strict)
    except (KeyError, ValueError) as e:
        if not str(e):
            raise Outcome("crash", f"{type(e).__name__} without a message")
        after = model.state_dict()
        if any(not np.array_equal(after[k], before[k]) for k in before):
            raise Outcome("silent", f"a refused load_weights changed the model ({e})")
        return "clear"
    state = model.state_dict()
    for key, data in members.items():
        if key in state:
            arr = np.load(_io.BytesIO(data), allow_pickle=False)
            if not np.array_equal(state[key], arr.astype(state[key].dtype), equal_nan=True):
                raise Outcome("silent", f"{key}: the model does not hold the file's values")
    for key in set(state) - set(members):
        if not np.array_equal(state[key], before[key]):
            raise Outcome("silent", f"{key}: not in the file, but changed")
    if strict and (result.missing_keys or result.unexpected_keys):
        raise Outcome("silent", f"strict load reported {result}")
    return "accepted"


# ---------------------------------------------------------------------------
# The functional API's argument space
# ---------------------------------------------------------------------------

I64_MAX = 2 ** 63 - 1
_BAD_DTYPES = ("complex64", "object", "<U1")
_OK_DTYPES = ("float32", "float32", "float32", "float64", "float16", "int32", "uint8", "bool")


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _int_ok(v: Any, minimum: int) -> bool:
    return _is_int(v) and minimum <= v <= I64_MAX


def _pair(v: Any, minimum: int) -> Optional[Tuple[int, int]]:
    """The contract's int-or-pair rule (docs/api.md): a pair, or None if the value is not allowed."""
    if _int_ok(v, minimum):
        return int(v), int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(_int_ok(e, minimum) for e in v):
        return int(v[0]), int(v[1])
    return None


def _real_ok(v: Any) -> bool:
    """A real hyper-parameter the contract allows: a number (not a bool) that is NaN, infinite, or
    within float32's range (a finite one beyond it would silently become an infinity)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return False
    try:
        f = float(v)
    except OverflowError:
        return False
    return not math.isfinite(f) or abs(f) <= float(np.finfo(np.float32).max)


def wild_scalars() -> st.SearchStrategy:
    return st.one_of(st.sampled_from(_WILD_INTS), st.integers(0, 4), st.integers(0, 4), st.integers(-2, 4)
                     .map(np.int64), st.booleans(), st.floats(allow_nan=True), st.just(1.0), st.none(),
                     st.sampled_from(["same", "valid", "x", ""]))


def wild_hyper() -> st.SearchStrategy:
    scalar = wild_scalars()
    return st.one_of(scalar, scalar, st.tuples(st.integers(0, 4), st.integers(0, 4)),
                     st.lists(scalar, max_size=3), st.lists(scalar, max_size=3).map(tuple))


@st.composite
def arrays(draw, shape: Tuple[int, ...], bad_ok: bool = True):
    dtype = draw(st.sampled_from(_OK_DTYPES + (_BAD_DTYPES if bad_ok and draw(st.integers(0, 9)) == 0 else ())))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    if dtype in _BAD_DTYPES:
        return np.zeros(shape, dtype)
    a = np.asarray(rng.standard_normal(shape) * 2)
    return a.astype(dtype) if dtype != "bool" else np.asarray(a > 0)


@st.composite
def maybe_bad_shape(draw, shape: Tuple[int, ...]):
    """``shape``, or one dimension changed or one added/removed (a mistake, sometimes a harmless one)."""
    r = draw(st.integers(0, 7))
    s = list(shape)
    if r == 0 and s:
        s[draw(st.integers(0, len(s) - 1))] = draw(st.integers(0, 5))
    elif r == 1:
        s.append(draw(st.integers(1, 3)))
    elif r == 2 and s:
        s.pop()
    return tuple(s)


def _valid_dtype(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind in "fiub"


def _out(size: int, k: int, s: int, p0: int, p1: int, d: int = 1) -> int:
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


_TOO_BIG = 10 ** 7  # elements: a legal call may then fail with MemoryError or OverflowError


def _spec_conv2d(x, w, b, stride, padding, dilation, groups, algo):
    """(valid, huge, reference kwargs) for conv2d by docs/api.md's rules."""
    if not (_valid_dtype(x) and _valid_dtype(w) and (b is None or _valid_dtype(b))):
        return False, False
    st_, dl = _pair(stride, 1), _pair(dilation, 1)
    if st_ is None or dl is None or not _int_ok(groups, 1) or algo not in ("auto", "im2col", "direct", "winograd"):
        return False, False
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups \
            or 0 in w.shape or x.shape[1] == 0 or (b is not None and b.shape != (w.shape[0],)):
        return False, False
    kh, kw = w.shape[2:]
    if padding in ("same", "valid"):
        if padding == "same" and st_ != (1, 1):
            return False, False
        pads = (0, 0, 0, 0) if padding == "valid" else (dl[0] * (kh - 1) // 2, dl[0] * (kh - 1) - dl[0] * (kh - 1) // 2,
                                                        dl[1] * (kw - 1) // 2, dl[1] * (kw - 1) - dl[1] * (kw - 1) // 2)
    else:
        pd = _pair(padding, 0)
        if pd is None:
            return False, False
        pads = (pd[0], pd[0], pd[1], pd[1])
    ho, wo = _out(x.shape[2], kh, st_[0], pads[0], pads[1], dl[0]), _out(x.shape[3], kw, st_[1], pads[2], pads[3], dl[1])
    if ho < 1 or wo < 1:
        return False, False
    return True, x.shape[0] * w.shape[0] * ho * wo > _TOO_BIG or max(pads) > 2 ** 40


def _spec_pool(x, kernel, stride, padding):
    if not _valid_dtype(x) or x.ndim != 4:
        return False, False
    k = _pair(kernel, 1)
    s = k if stride is None else _pair(stride, 1)
    p = _pair(padding, 0)
    if k is None or s is None or p is None or 2 * p[0] > k[0] or 2 * p[1] > k[1]:
        return False, False
    ho, wo = _out(x.shape[2], k[0], s[0], p[0], p[0]), _out(x.shape[3], k[1], s[1], p[1], p[1])
    if ho < 1 or wo < 1:
        return False, False
    return True, x.shape[0] * x.shape[1] * ho * wo > _TOO_BIG or max(k) > 2 ** 31


@st.composite
def functional_inputs(draw):
    op = draw(st.sampled_from(["conv2d", "conv2d", "max_pool2d", "avg_pool2d", "linear", "softmax", "leaky_relu",
                               "dropout", "cross_entropy"]))
    n = draw(st.integers(0, 2))
    hyper = wild_hyper() if draw(st.integers(0, 2)) == 0 else st.one_of(st.integers(1, 3), st.tuples(
        st.integers(1, 3), st.integers(1, 3)))
    if op == "conv2d":
        groups = draw(st.sampled_from([1, 1, 2])) if draw(st.integers(0, 3)) else draw(wild_scalars())
        g = groups if _int_ok(groups, 1) and groups <= 4 else 1
        c, k = g * draw(st.integers(1, 3)), g * draw(st.integers(1, 3))
        x = draw(arrays(draw(maybe_bad_shape((n, c, draw(st.integers(1, 7)), draw(st.integers(1, 7)))))))
        w = draw(arrays(draw(maybe_bad_shape((k, c // g, draw(st.integers(1, 3)), draw(st.integers(1, 3)))))))
        b = draw(st.one_of(st.none(), arrays(draw(maybe_bad_shape((k,))))))
        padding = draw(st.one_of(hyper, st.sampled_from(["same", "valid"]), st.integers(0, 2)))
        algo = draw(st.sampled_from(["auto", "im2col", "direct", "winograd", "auto", "gemm"]))
        return op, (x, w, b, draw(hyper), padding, draw(hyper), groups, algo)
    if op in ("max_pool2d", "avg_pool2d"):
        x = draw(arrays(draw(maybe_bad_shape((n, draw(st.integers(1, 3)), draw(st.integers(1, 8)),
                                              draw(st.integers(1, 8)))))))
        return op, (x, draw(hyper), draw(st.one_of(st.none(), hyper)), draw(st.one_of(st.integers(0, 1), hyper)))
    if op == "linear":
        i, o = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        x = draw(arrays(draw(maybe_bad_shape((n + 1, i)))))
        w = draw(arrays(draw(maybe_bad_shape((o, i)))))
        return op, (x, w, draw(st.one_of(st.none(), arrays(draw(maybe_bad_shape((o,)))))))
    if op == "softmax":
        x = draw(arrays(tuple(draw(st.lists(st.integers(1, 4), max_size=4)))))
        return op, (x, draw(st.one_of(st.integers(-5, 5), wild_scalars())))
    if op == "leaky_relu":
        x = draw(arrays(tuple(draw(st.lists(st.integers(0, 4), max_size=3)))))
        return op, (x, draw(st.one_of(st.floats(-2, 2), wild_scalars())))
    if op == "dropout":
        x = draw(arrays(tuple(draw(st.lists(st.integers(0, 4), max_size=3)))))
        return op, (x, draw(st.one_of(st.floats(0, 1), wild_scalars())))
    c = draw(st.integers(1, 4))
    logits = draw(arrays(draw(maybe_bad_shape((n + 1, c)))))
    labels = draw(st.one_of(
        st.lists(st.integers(0, c - 1), min_size=n + 1, max_size=n + 1).map(np.array),
        st.lists(st.sampled_from([-1, c, 2 ** 40, 0]), min_size=n + 1, max_size=n + 1).map(np.array),
        arrays((n + 1,)), st.just([0.5] * (n + 1))))
    return op, (logits, labels)


_CLEAR = (ValueError, TypeError, OverflowError, IndexError, KeyError, MemoryError)


def _call_functional(op: str, args) -> Tuple[Any, bool, bool, Callable[[], Any]]:
    """(the call, valid by the contract, legal but huge, the NumPy reference of a valid call)."""
    from pycnn import functional as F
    from pycnn import reference as R

    if op == "conv2d":
        x, w, b, stride, padding, dilation, groups, algo = args
        valid, huge = _spec_conv2d(x, w, b, stride, padding, dilation, groups, algo)
        return (lambda: F.conv2d(x, w, b, stride, padding, dilation, groups, algo)), valid, huge, \
            (lambda: R.conv2d(x.astype(np.float64), w.astype(np.float64), None if b is None else b.astype(np.float64),
                              stride, padding, dilation, int(groups)))
    if op in ("max_pool2d", "avg_pool2d"):
        x, kernel, stride, padding = args
        valid, huge = _spec_pool(x, kernel, stride, padding)
        f, r = getattr(F, op), getattr(R, op)
        return (lambda: f(x, kernel, stride, padding)), valid, huge, \
            (lambda: r(x.astype(np.float64), kernel, stride, padding))
    if op == "linear":
        x, w, b = args
        valid = all(_valid_dtype(a) for a in (x, w) + (() if b is None else (b,))) and x.ndim == 2 and w.ndim == 2 \
            and x.shape[1] == w.shape[1] and (b is None or b.shape == (w.shape[0],))
        return (lambda: F.linear(x, w, b)), valid, False, \
            (lambda: R.linear(x.astype(np.float64), w.astype(np.float64), None if b is None else b.astype(np.float64)))
    if op == "softmax":
        x, axis = args
        valid = _valid_dtype(x) and _is_int(axis) and -x.ndim <= axis < x.ndim
        return (lambda: F.softmax(x, axis)), valid, False, (lambda: R.softmax(x.astype(np.float64), int(axis)))
    if op == "leaky_relu":
        x, slope = args
        valid = _valid_dtype(x) and _real_ok(slope)
        return (lambda: F.leaky_relu(x, slope)), valid, False, \
            (lambda: R.leaky_relu(x.astype(np.float64), float(slope)))
    if op == "dropout":
        x, p = args
        valid = _valid_dtype(x) and _real_ok(p) and 0 <= p <= 1
        return (lambda: F.dropout(x, p)), valid, False, None
    logits, labels = args
    lab = np.asarray(labels)
    valid = _valid_dtype(logits) and logits.ndim == 2 and logits.shape[1] >= 1 and lab.dtype.kind in "iu" \
        and lab.shape == (logits.shape[0],) and bool(np.all((lab >= 0) & (lab < logits.shape[1])))
    return (lambda: F.cross_entropy(logits, labels)), valid, False, \
        (lambda: R.cross_entropy(logits.astype(np.float64), lab))


def run_functional(case, workdir: pathlib.Path) -> str:
    op, args = case
    call, valid, huge, reference = _call_functional(op, args)
    try:
        got = call()
    except _CLEAR as e:
        if not str(e) and not isinstance(e, MemoryError):
            raise Outcome("crash", f"{op}: {type(e).__name__} without a message")
        if valid and not huge and not isinstance(e, (MemoryError, OverflowError)):
            raise Outcome("crash", f"{op}: refused a call the contract allows: {type(e).__name__}: {e}")
        return "clear"
    if not valid:
        raise Outcome("silent", f"{op}: accepted arguments the contract forbids: {_describe(args)}")
    if reference is not None:
        want = reference()
        got_a, want_a = np.asarray(got, np.float64), np.asarray(want, np.float64)
        scale = 1.0 + float(np.max(np.abs(want_a), initial=0.0))
        if got_a.shape != want_a.shape or not np.allclose(got_a, want_a, rtol=1e-3, atol=1e-3 * scale,
                                                          equal_nan=True):
            raise Outcome("silent", f"{op}: result differs from the NumPy reference: {_describe(args)}")
    return "accepted"


def _describe(args) -> str:
    return ", ".join(f"array{a.shape}:{a.dtype}" if isinstance(a, np.ndarray) else repr(a) for a in args)[:300]


# ---------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------

TARGETS: Dict[str, Tuple[Callable[[], st.SearchStrategy], Callable[[Any, pathlib.Path], str]]] = {
    "model_file": (model_file_inputs, run_model_file),
    "load_weights": (load_weights_inputs, run_load_weights),
    "idx": (idx_inputs, run_idx),
    "functional": (functional_inputs, run_functional),
}


def fuzz(target: str, examples: int, seed_value: Optional[int], workdir: pathlib.Path) -> Dict[str, Any]:
    """Runs ``examples`` inputs of ``target``; counts of each outcome and up to 5 examples of the bad ones."""
    strategy, run = TARGETS[target]
    counts: Counter = Counter()
    bad: Dict[str, List[str]] = {"silent": [], "crash": []}

    def one(case):
        counts["tried"] += 1
        try:
            counts[run(case, workdir)] += 1
        except Outcome as o:
            counts[o.kind] += 1
            if len(bad[o.kind]) < 5:
                bad[o.kind].append(o.detail)
        except Exception as e:  # noqa: BLE001 - any other exception is what we look for
            counts["crash"] += 1
            if len(bad["crash"]) < 5:
                bad["crash"].append(f"{type(e).__name__}: {e}"[:400])

    test = settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                    derandomize=seed_value is None, suppress_health_check=list(HealthCheck))(given(strategy())(one))
    if seed_value is not None:
        test = seed(seed_value)(test)
    test()
    return {"target": target, **{k: counts[k] for k in ("tried", "accepted", "clear", "silent", "crash")},
            "examples": bad}


def write_corpus() -> None:
    """Rebuild tests/fuzz_corpus/ (small model files, a weights file, two IDX files)."""
    import pycnn
    from pycnn import io as pio
    from pycnn import nn
    from pycnn.data import write_idx

    CORPUS.mkdir(exist_ok=True)
    pycnn.manual_seed(0)
    models = {
        "model_mlp.npz": nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Dropout(0.1), nn.Linear(3, 2)),
        "model_cnn.npz": nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                                       nn.Flatten(), nn.Linear(8, 2)),
        "model_residual.npz": nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Residual(nn.Sequential(
            nn.Conv1d(2, 2, 3, padding=1), nn.Tanh())), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(2, 2)),
    }
    models["model_cnn.npz"][0].weight.requires_grad = False
    models["model_mlp.npz"].eval()
    for name, m in models.items():
        pio.save(m, CORPUS / name, metadata={"input_shape": [1, 4, 4], "classes": ["a", "b"]})
    pio.save_weights(weights_model(), CORPUS / "weights.npz")
    write_idx(CORPUS / "images.idx", np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3))
    write_idx(CORPUS / "floats.idx.gz", np.linspace(-1, 1, 6, dtype=">f4").reshape(2, 3))


def _limit_memory(gib: float) -> None:
    try:
        import resource

        with open("/proc/self/status") as f:
            vm = [int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize")][0]
    except (ImportError, OSError):  # not Linux: no limit
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = vm + int(gib * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", action="append", choices=sorted(TARGETS), help="default: every target")
    ap.add_argument("--examples", type=int, default=200, help="inputs per target (per round with --seconds)")
    ap.add_argument("--seconds", type=float, default=0, help="run rounds of --examples until this much time passed")
    ap.add_argument("--seed", type=int, default=None, help="default: derandomized (the same inputs every run)")
    ap.add_argument("--memory-gib", type=float, default=4.0, help="address space allowed beyond the start")
    ap.add_argument("--json", action="store_true", help="one JSON line per target")
    ap.add_argument("--write-corpus", action="store_true")
    args = ap.parse_args(argv)
    if args.write_corpus:
        write_corpus()
        return 0
    import pycnn  # noqa: F401 - imported before the limit, with its threads
    from pycnn import functional as F

    F.conv2d(np.zeros((2, 4, 16, 16), np.float32), np.zeros((4, 4, 3, 3), np.float32))  # start the threads
    _limit_memory(args.memory_gib)
    total_crash = total_silent = 0
    with tempfile.TemporaryDirectory() as d:
        for target in args.target or list(TARGETS):
            start, rounds, result = time.perf_counter(), 0, None
            while True:
                r = fuzz(target, args.examples, None if args.seed is None and rounds == 0 else
                         (args.seed or 0) + rounds, pathlib.Path(d))
                if result is None:
                    result = r
                else:
                    for k in ("tried", "accepted", "clear", "silent", "crash"):
                        result[k] += r[k]
                    for k in ("silent", "crash"):
                        result["examples"][k] = (result["examples"][k] + r["examples"][k])[:5]
                rounds += 1
                if time.perf_counter() - start >= args.seconds:
                    break
            result["seconds"] = round(time.perf_counter() - start, 1)
            total_crash += result["crash"]
            total_silent += result["silent"]
            if args.json:
                print(json.dumps(result), flush=True)
            else:
                print(f"{target:13s} tried {result['tried']:7d}  accepted {result['accepted']:7d}  "
                      f"clear errors {result['clear']:7d}  silent {result['silent']:4d}  crashes "
                      f"{result['crash']:4d}  ({result['seconds']} s)", flush=True)
                for kind in ("silent", "crash"):
                    for e in result["examples"][kind]:
                        print(f"    {kind}: {e}")
    return 1 if total_crash or total_silent else 0


if __name__ == "__main__":
    sys.exit(main())
