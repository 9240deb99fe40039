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
     "training": false, "frozen": ["0.weight", ...], "metadata": {...}}

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
import os
import zipfile
import zlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Union

import numpy as np

from ._architecture import from_json, from_spec, parse_json, to_json, to_spec
from .nn.module import Module

if TYPE_CHECKING:
    from numpy.lib.npyio import NpzFile

    from .nn.module import IncompatibleKeys

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


def _member(z: NpzFile, key: str, path: str) -> np.ndarray:
    """One array of the archive; every way it can be unreadable is a ValueError naming the file."""
    try:
        return z[key]
    except ValueError as e:
        raise _refuse(path, e) from None
    except _CORRUPT as e:
        raise ValueError(f"{path}: corrupted entry {key!r} ({type(e).__name__}: {e})") from None


def _refuse(path: str, e: Exception) -> ValueError:
    msg = str(e)
    if "pickle" in msg.lower() or "object arrays" in msg.lower():
        return ValueError(f"{path}: refusing to load: the file holds a pickled Python object, which could run "
                          f"code when unpickled; pycnn files never contain one ({msg})")
    return ValueError(f"{path}: not a pycnn .npz file ({msg})")


def _open_npz(path: PathLike) -> NpzFile:
    p = os.fspath(path)
    try:
        z = np.load(p, allow_pickle=False)
    except ValueError as e:
        raise _refuse(p, e) from None
    except FileNotFoundError:
        raise
    except _CORRUPT as e:
        raise ValueError(f"{p}: not a pycnn .npz file ({type(e).__name__}: {e})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError(f"{p}: holds a single array, not a pycnn .npz file (made by pycnn.save or save_weights)")
    return z


def _read_arrays(z: NpzFile, path: str) -> OrderedDict[str, np.ndarray]:
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for key in z.files:
        if key == _META:
            continue
        a = _member(z, key, path)
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{path}: array {key!r} has dtype {a.dtype}; weights must be numeric")
        out[key] = a
    return out


def _read_meta(z: NpzFile, path: str) -> Dict[str, Any]:
    if _META not in z.files:
        raise ValueError(f"{path}: has weights but no architecture (written by save_weights?); build the model "
                         f"and use pycnn.io.load_weights(model, path)")
    raw = _member(z, _META, path)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{path}: malformed {_META} entry")
    meta = parse_json(raw.tobytes().decode("utf-8", errors="strict"), path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pycnn model file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{path}: written in model-file format {version!r}; this pycnn reads up to "
                         f"{FORMAT_VERSION}: upgrade pycnn")
    return meta


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
    """
    if not isinstance(model, Module):
        raise TypeError(f"save: expected an nn.Module, got {type(model).__name__}")
    import pycnn

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
    """
    p = os.fspath(path)
    with _open_npz(p) as z:
        meta = _read_meta(z, p)
        arrays = _read_arrays(z, p)
    model = from_spec(meta.get("architecture"))
    try:
        model.load_state_dict(arrays, strict=True)
    except (KeyError, ValueError) as e:
        raise ValueError(f"{p}: the weights do not fit the architecture: {e}") from None
    frozen = set(meta.get("frozen") or ())
    for name, param in model.named_parameters():
        if name in frozen:
            param.requires_grad = False
    model.train(bool(meta.get("training", False)))
    return model


def read_metadata(path: PathLike) -> Dict[str, Any]:
    """The ``metadata`` dict given to :func:`save` (empty if none), without building the model."""
    p = os.fspath(path)
    with _open_npz(p) as z:
        return dict(_read_meta(z, p).get("metadata") or {})


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

    Reads with ``allow_pickle=False``; returns ``load_state_dict``'s
    ``(missing_keys, unexpected_keys)``.
    """
    p = os.fspath(path)
    with _open_npz(p) as z:
        arrays = _read_arrays(z, p)
    return model.load_state_dict(arrays, strict=strict)
