"""Saving and loading models: architecture as JSON, weights as ``.npz``, never a pickle.

::

    pycnn.save(model, "model.npz")          # one file: architecture + weights
    model = pycnn.load("model.npz")         # the same network, bitwise the same outputs

    pycnn.io.save_weights(model, "w.npz")   # weights only (a state_dict)
    pycnn.io.load_weights(model, "w.npz")   # into a model you built yourself
    text = pycnn.io.to_json(model)          # the architecture alone
    fresh = pycnn.io.from_json(text)        # rebuilt, newly initialised

The file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays): one array
per ``state_dict()`` entry, under PyTorch's key names, plus ``__pycnn__``,
the UTF-8 JSON of::

    {"format": "pycnn.model", "format_version": 1, "pycnn_version": "0.1.0",
     "architecture": {"type": "Sequential", "children": [["0", {"type": "Conv2d",
         "config": {"in_channels": 1, "out_channels": 32, "kernel_size": 3, ...}}], ...]},
     "training": false, "frozen": ["0.weight", ...], "eval_pinned": ["1", ...], "metadata": {...}}

(``eval_pinned``: the BatchNorms that ``freeze(bn_eval=True)`` keeps in eval
mode; a file without it, as written before it existed, pins none.)

Each layer is its registered class name, the arguments its constructor was
called with (``config``: JSON values, tuples as ``{"$tuple": [...]}``,
modules passed as arguments as ``{"$child": name}``) and its current
children. ``Sequential`` is stored as its children alone, so a head swapped
with ``model[-1] = ...`` or layers appended later are saved as they are now.
:mod:`pycnn._architecture` writes and builds the architecture; this module
the files.

Safety: :func:`load` reads the archive with ``np.load(allow_pickle=False)``,
so a file holding a pickled object is refused before anything in it is
unpickled, and builds the network by calling only the constructors of
registered layer classes (:func:`pycnn.nn.register_module`; every public
``pycnn.nn`` layer registers itself) with JSON values. No name in the file
is ever imported or evaluated.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from ._architecture import count_layers, from_json, from_spec, parse_json, to_json, to_spec
from .nn.module import IncompatibleKeys, Module
from .nn.registry import built_state, own_state_shapes

__all__ = ["save", "load", "save_weights", "load_weights", "to_json", "from_json", "read_metadata",
           "FORMAT", "FORMAT_VERSION"]

PathLike = Union[str, "os.PathLike[str]"]

#: ``format`` of the JSON header of a model file.
FORMAT = "pycnn.model"
#: Its version; files of a later version are refused with a clear message.
FORMAT_VERSION = 1
_META = "__pycnn__"


def _write_npz(path: PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed .npz at exactly ``path``, atomically (temp file + rename)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key, a in arrays.items():
                with zf.open(key + ".npy", "w", force_zip64=True) as fh:
                    a = np.asarray(a)  # (not ascontiguousarray: it turns 0-d counters into 1-d)
                    np.lib.format.write_array(fh, a if a.flags.c_contiguous else a.copy(order="C"),
                                              allow_pickle=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# What a truncated or corrupted zip archive raises, from the zip layer
# (bad CRC, bad header, unsupported compression), zlib or the file itself.
_CORRUPT = (OSError, zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError)

# Bounds that make a refused file cheap (docs/reliability.md, "Files"):
_MAX_HEADER_BYTES = 4 << 20      # the JSON header (a ResNet-110's is 51 KB)
_MAX_NPY_HEADER = 10000          # an .npy member's own header (NumPy's default limit)
_MAX_DEFLATE_RATIO = 1100        # DEFLATE expands at most ~1032:1; a member claiming more is lying
_LAYERS_PER_ARRAY = 4            # layers an architecture may have per weight array, beyond...
_FREE_LAYERS = 64                # ...this many (ReLUs, pools, containers hold no arrays)
_SLACK_ELEMENTS = 1 << 20        # elements beyond the file's (non-persistent buffers, a replaced head)
_READ_CHUNK = 1 << 24


def _refuse(path: str, e: Exception) -> ValueError:
    msg = str(e)
    if "pickle" in msg.lower() or "object arrays" in msg.lower():
        return ValueError(f"{path}: refusing to load: the file holds a pickled Python object, which could run "
                          f"code when unpickled; pycnn files never contain one ({msg})")
    return ValueError(f"{path}: not a pycnn .npz file ({msg})")


class _Member:
    """One ``.npy`` member of the archive as its zip directory entry and its header declare it."""

    __slots__ = ("info", "key", "shape", "dtype", "fortran", "count")

    def __init__(self, info: zipfile.ZipInfo, key: str, shape: Tuple[int, ...], dtype: np.dtype,
                 fortran: bool) -> None:
        self.info, self.key, self.shape, self.dtype, self.fortran = info, key, shape, dtype, fortran
        self.count = math.prod(shape)


class _Archive:
    """A model or weights file, checked from its zip directory and ``.npy`` headers alone.

    Opening reads no array data: every member must be an ``.npy`` array of a
    real numeric dtype (an object array, i.e. a pickle, is refused) whose
    declared size matches its header's shape, within what its compressed
    bytes can inflate to. Only :meth:`read` inflates, and only what was
    declared. Every problem is a ``ValueError`` naming the file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, "rb") as f:
            head = f.read(8)
            size = os.fstat(f.fileno()).st_size
        if head[:6] == b"\x93NUMPY":
            raise ValueError(f"{path}: holds a single array, not a pycnn .npz file (made by pycnn.save or "
                             f"save_weights)")
        if head[:1] == b"\x80":  # a pickle (protocol 2 and later)
            raise _refuse(path, ValueError("pickled data"))
        if head[:2] != b"PK":
            raise ValueError(f"{path}: not a pycnn model file: pycnn.save writes a .npz (zip) archive, and this "
                             f"file is not one")
        try:
            self.zip = zipfile.ZipFile(path)
        except _CORRUPT as e:
            raise ValueError(f"{path}: not a pycnn .npz file ({type(e).__name__}: {e})") from None
        try:
            self.members: Dict[str, _Member] = {}
            compressed = 0
            for info in self.zip.infolist():
                m = self._scan(info)
                if m.key in self.members:
                    raise ValueError(f"{path}: holds two members named {info.filename!r}")
                self.members[m.key] = m
                compressed += info.compress_size
            if compressed > size:  # members overlapping each other's bytes: a zip bomb's trick
                raise ValueError(f"{path}: its members claim {compressed} compressed bytes, more than the "
                                 f"file's {size}; the archive is corrupt")
        except BaseException:
            self.zip.close()
            raise

    def __enter__(self) -> "_Archive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.zip.close()

    def _scan(self, info: zipfile.ZipInfo) -> _Member:
        path, name = self.path, info.filename
        if not name.endswith(".npy") or info.is_dir():
            if name.endswith("data.pkl"):  # torch.save's zip layout: archive/data.pkl + archive/data/N
                raise ValueError(f"{path}: not a pycnn model file: it is a PyTorch file (torch.save), whose "
                                 f"pickle pycnn never runs; load it with torch.load and give its state dict to "
                                 f"a pycnn model's load_state_dict (docs/training.md)")
            raise ValueError(f"{path}: not a pycnn model file: unexpected member {name!r} (pycnn files hold "
                             f"only .npy arrays)")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{path}: member {name!r} uses zip compression method {info.compress_type}; "
                             f"pycnn reads stored or DEFLATE members only")
        limit = info.compress_size if info.compress_type == zipfile.ZIP_STORED \
            else info.compress_size * _MAX_DEFLATE_RATIO + 1024
        if info.file_size > limit:
            raise ValueError(f"{path}: member {name!r} claims {info.file_size} bytes from {info.compress_size} "
                             f"compressed bytes, more than they can hold; the archive is corrupt")
        try:
            with self.zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=_MAX_NPY_HEADER)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=_MAX_NPY_HEADER)
                else:
                    raise ValueError(f".npy format version {version} (pycnn reads 1.0 and 2.0)")
                header = f.tell()
        except ValueError as e:
            raise ValueError(f"{path}: member {name!r} is not a valid .npy array ({e})") from None
        except _CORRUPT as e:
            raise ValueError(f"{path}: corrupted entry {name!r} ({type(e).__name__}: {e})") from None
        if dtype.hasobject:
            raise _refuse(path, ValueError(f"member {name!r} holds object arrays (pickled data)"))
        if dtype.kind not in "biuf" or dtype.subdtype is not None:
            raise ValueError(f"{path}: array {name[:-4]!r} has dtype {dtype}; weights must be numeric")
        m = _Member(info, name[:-4], tuple(int(d) for d in shape), dtype, bool(fortran))
        if header + m.count * dtype.itemsize != info.file_size:
            raise ValueError(f"{path}: member {name!r} declares an array of shape {m.shape} ({dtype}, "
                             f"{m.count * dtype.itemsize} bytes) but holds {info.file_size - header} bytes")
        return m

    def read(self, key: str) -> np.ndarray:
        """The array of member ``key``, inflated in bounded chunks (its size was checked when opened)."""
        m = self.members[key]
        try:
            with self.zip.open(m.info) as f:
                f.seek(m.info.file_size - m.count * m.dtype.itemsize)
                flat = np.empty(m.count, m.dtype)
                buf = flat.view(np.uint8).reshape(-1)
                done = 0
                while done < len(buf):
                    chunk = f.read(min(_READ_CHUNK, len(buf) - done))
                    if not chunk:
                        raise EOFError(f"ends after {done} of {len(buf)} bytes")
                    buf[done:done + len(chunk)] = np.frombuffer(chunk, np.uint8)
                    done += len(chunk)
                if f.read(1):  # (reading to the end also makes zipfile check the CRC)
                    raise zipfile.BadZipFile("more data than declared")
        except _CORRUPT as e:
            raise ValueError(f"{self.path}: corrupted entry {key!r} ({type(e).__name__}: {e})") from None
        if m.fortran:
            return flat.reshape(m.shape[::-1]).transpose()
        return flat.reshape(m.shape)

    @property
    def weights(self) -> Dict[str, _Member]:
        """The members that are weights (all but the header)."""
        return {k: m for k, m in self.members.items() if k != _META}

    def meta(self) -> Dict[str, Any]:
        """The JSON header, checked field by field."""
        path = self.path
        m = self.members.get(_META)
        if m is None:
            raise ValueError(f"{path}: has weights but no architecture (written by save_weights?); build the model "
                             f"and use pycnn.io.load_weights(model, path)")
        if m.dtype != np.uint8 or len(m.shape) != 1:
            raise ValueError(f"{path}: malformed {_META} entry")
        if m.count > _MAX_HEADER_BYTES:
            raise ValueError(f"{path}: its {_META} header claims {m.count} bytes (at most {_MAX_HEADER_BYTES})")
        try:
            text = self.read(_META).tobytes().decode("utf-8", errors="strict")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: its {_META} header is not UTF-8 text ({e})") from None
        meta = parse_json(text, path)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a pycnn model file (format "
                             f"{meta.get('format') if isinstance(meta, dict) else None!r})")
        version = meta.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
            raise ValueError(f"{path}: written in model-file format {version!r}; this pycnn reads up to "
                             f"{FORMAT_VERSION}: upgrade pycnn")
        if not isinstance(meta.get("training", False), bool):
            raise ValueError(f"{path}: \"training\" must be true or false, got {meta['training']!r}")
        frozen = meta.get("frozen", [])
        if not (isinstance(frozen, list) and all(isinstance(n, str) for n in frozen)):
            raise ValueError(f"{path}: \"frozen\" must be a list of parameter names, got {frozen!r}")
        pinned = meta.get("eval_pinned", [])
        if not (isinstance(pinned, list) and all(isinstance(n, str) for n in pinned)):
            raise ValueError(f"{path}: \"eval_pinned\" must be a list of module names, got {pinned!r}")
        if not isinstance(meta.get("metadata", {}), dict):
            raise ValueError(f"{path}: \"metadata\" must be an object, got {meta['metadata']!r}")
        return meta


def _open(path: PathLike) -> _Archive:
    return _Archive(os.fspath(path))


def _check_fit(expected: Mapping[str, Tuple[int, ...]], members: Mapping[str, _Member],
               what: str) -> Tuple[list, list]:
    """Missing and unexpected keys; a shape that differs is a ``ValueError`` (nothing has been read)."""
    missing = [k for k in expected if k not in members]
    unexpected = [k for k in members if k not in expected]
    wrong = [f"{k}: the file holds shape {members[k].shape}, the model has {expected[k]}"
             for k in expected if k in members and members[k].shape != expected[k]]
    if wrong:
        raise ValueError(f"{what}:\n  " + "\n  ".join(wrong))
    return missing, unexpected


def _state_shapes(model: Module) -> "OrderedDict[str, Tuple[int, ...]]":
    return OrderedDict((key, tuple(getattr(owner, store)[name].shape))
                       for key, owner, store, name in model._state_entries())


def _check_as_built(model: Module) -> None:
    """Each layer's own parameters and buffers still have the names and shapes its constructor gave them.

    Otherwise the file would not load: :func:`load` rebuilds each layer from
    its constructor arguments (e.g. after ``weight.data`` was reshaped).
    """
    for prefix, m in model.named_modules():
        built = built_state(m)
        if built is None:
            continue
        now = own_state_shapes(m)
        if now != built:
            diff = [f"{prefix + '.' if prefix else ''}{n}: {now.get(n)} (built as {built.get(n)})"
                    for n in sorted(set(now) | set(built)) if now.get(n) != built.get(n)]
            raise ValueError(f"save: {type(m).__name__} {prefix or '(the model)'} no longer has the parameters "
                             f"and buffers its constructor built, so pycnn.load could not rebuild it: "
                             f"{'; '.join(diff)} (reshaping .data or replacing a Parameter changes the layer; "
                             f"build a new layer with the arguments you want instead)")


def save(model: Module, path: PathLike, *, metadata: Optional[Mapping[str, Any]] = None) -> None:
    """Write ``model`` (architecture and weights) to ``path`` as one ``.npz`` file.

    The file is written exactly at ``path`` (no suffix is added; ``.npz``
    is the convention) and replaced atomically, so a crash never leaves a
    half-written model. Frozen parameters and the train/eval mode are kept.

    Args:
        model: a network made of registered layers (every ``pycnn.nn``
            layer; see :func:`pycnn.nn.register_module` for your own).
        path: the file to write.
        metadata: JSON-able extras stored alongside (e.g. ``{"input_shape":
            [1, 28, 28], "class_names": [...]}``); :func:`read_metadata`
            returns them.

    Raises:
        TypeError: a layer is not registered or has constructor arguments
            that are not JSON values.
        ValueError: a layer's parameters or buffers no longer have the
            names and shapes its constructor gave them (e.g. ``weight.data``
            was reshaped), so the file could not be loaded.
    """
    if not isinstance(model, Module):
        raise TypeError(f"save: expected an nn.Module, got {type(model).__name__}")
    import pycnn

    _check_as_built(model)
    state = model.state_dict()
    if _META in state:
        raise ValueError(f"save: the model has a state_dict entry named {_META!r}, which is reserved")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pycnn_version": pycnn.__version__,
        "architecture": to_spec(model),
        "training": bool(getattr(model, "training", False)),
        "frozen": [name for name, p in model.named_parameters() if not p.requires_grad],
        "eval_pinned": [name for name, m in model.named_modules() if m._eval_pinned],
        "metadata": dict(metadata or {}),
    }
    try:
        text = json.dumps(meta, allow_nan=True)
    except TypeError as e:
        raise TypeError(f"save: metadata must be JSON values ({e})") from None
    arrays = OrderedDict([(_META, np.frombuffer(text.encode("utf-8"), dtype=np.uint8))])
    arrays.update(state)
    _write_npz(path, arrays)


def load(path: PathLike) -> Module:
    """Read a model written by :func:`save`: the same architecture and weights, bitwise the same outputs.

    Never unpickles anything: a file holding a pickled object, or naming a
    layer type that is not registered, raises ``ValueError``. pycnn's random
    generator is left untouched.

    A file is checked before it costs anything: the zip directory and the
    ``.npy`` headers say what each weight array is; the architecture may
    have at most a few layers per array and build no more parameter and
    buffer elements than the arrays hold (a larger layer is refused before
    it allocates); the built network's state-dict keys and shapes must be
    the file's before any array is inflated. Every refusal is a
    ``ValueError`` naming the file.
    """
    p = os.fspath(path)
    with _open(p) as archive:
        meta = archive.meta()
        weights = archive.weights
        arch = meta.get("architecture")
        layers = count_layers(arch) if isinstance(arch, (dict, list)) else 0
        if layers > _FREE_LAYERS + _LAYERS_PER_ARRAY * len(weights):
            raise ValueError(f"{p}: its architecture has {layers} layers for {len(weights)} weight arrays (at most "
                             f"{_FREE_LAYERS} + {_LAYERS_PER_ARRAY} per array); the file is not a saved model")
        held = sum(m.count for m in weights.values())
        try:
            model = from_spec(arch, max_elements=held + _SLACK_ELEMENTS,
                              source=f"the weight arrays of the file hold ({held:,} + {_SLACK_ELEMENTS:,} spare)")
        except ValueError as e:
            raise ValueError(f"{p}: {e}") from None
        missing, unexpected = _check_fit(_state_shapes(model), weights,
                                         f"{p}: the weights do not fit the architecture")
        if missing or unexpected:
            raise ValueError(f"{p}: the weights do not fit the architecture: "
                             + "; ".join(([f"missing keys: {missing}"] if missing else [])
                                         + ([f"unexpected keys: {unexpected}"] if unexpected else [])))
        frozen = set(meta.get("frozen", []))
        unknown = sorted(frozen - {name for name, _ in model.named_parameters()})
        if unknown:
            raise ValueError(f"{p}: \"frozen\" names {unknown}, which are not parameters of the architecture")
        modules = dict(model.named_modules())
        pinned = [modules.get(name) for name in meta.get("eval_pinned", [])]
        if not all(m is not None and m._keeps_running_stats for m in pinned):
            raise ValueError(f"{p}: \"eval_pinned\" names {meta['eval_pinned']}, which are not all BatchNorm layers "
                             "of the architecture")
        arrays = OrderedDict((key, archive.read(key)) for key in weights)
    try:
        model.load_state_dict(arrays, strict=True)
    except (KeyError, ValueError) as e:
        raise ValueError(f"{p}: the weights do not fit the architecture: {e}") from None
    for name, param in model.named_parameters():
        if name in frozen:
            param.requires_grad = False
    for m in pinned:
        object.__setattr__(m, "_eval_pinned", True)
    model.train(meta.get("training", False))
    return model


def read_metadata(path: PathLike) -> Dict[str, Any]:
    """The ``metadata`` dict given to :func:`save` (empty if none), without building the model."""
    with _open(path) as archive:
        return dict(archive.meta().get("metadata") or {})


def save_weights(model: Union[Module, Mapping[str, Any]], path: PathLike) -> None:
    """Write ``model.state_dict()`` to ``path`` as ``.npz`` (weights only, PyTorch's key names)."""
    if isinstance(model, Module):
        state = model.state_dict()
    elif isinstance(model, Mapping):
        state = OrderedDict((k, np.asarray(v)) for k, v in model.items())
    else:
        raise TypeError(f"save_weights: expected an nn.Module or a state dict, got {type(model).__name__}")
    _write_npz(path, state)


def load_weights(model: Module, path: PathLike, strict: bool = True) -> IncompatibleKeys:
    """Load weights from an ``.npz`` (from :func:`save_weights` or :func:`save`) into ``model``.

    Never unpickles; the file's keys and shapes are checked against the
    model's from the zip directory and ``.npy`` headers before any array is
    inflated. With ``strict``, missing or unexpected keys raise ``KeyError``
    listing them; a shape mismatch is a ``ValueError``. Returns
    ``(missing_keys, unexpected_keys)`` as ``load_state_dict``.
    """
    if not isinstance(model, Module):
        raise TypeError(f"load_weights: expected an nn.Module, got {type(model).__name__}")
    p = os.fspath(path)
    with _open(p) as archive:
        weights = archive.weights
        expected = _state_shapes(model)
        missing, unexpected = _check_fit(expected, weights, f"{p}: the weights do not fit the model")
        if strict and (missing or unexpected):
            parts = ([f"missing keys: {missing}"] if missing else []) \
                + ([f"unexpected keys: {unexpected}"] if unexpected else [])
            raise KeyError(f"Error(s) in loading state_dict for {type(model).__name__} from {p}: "
                           + "; ".join(parts))
        arrays = OrderedDict((key, archive.read(key)) for key in weights if key in expected)
    model.load_state_dict(arrays, strict=False)
    return IncompatibleKeys(missing, unexpected)


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
