"""The IDX file format of MNIST and Fashion-MNIST: :func:`read_idx` and :func:`write_idx`.

Files may be raw or gzip-compressed. Headers are checked against the file
before anything is allocated, so a corrupt or hostile file is refused with a
message that names it, instead of exhausting memory.
"""
from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib
from typing import TYPE_CHECKING, Callable, Tuple, Union

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

PathLike = Union[str, "os.PathLike[str]"]

# IDX type byte -> NumPy type code. Multi-byte types are big-endian on disk;
# read_idx returns the native-endian equivalent.
_IDX_TYPES = {
    0x08: "u1",
    0x09: "i1",
    0x0B: "i2",
    0x0C: "i4",
    0x0D: "f4",
    0x0E: "f8",
}
_DTYPE_TO_IDX = {np.dtype(code): type_byte for type_byte, code in _IDX_TYPES.items()}

#: Largest number of dimensions read_idx accepts and write_idx writes. The
#: format allows up to 255, but real files have 1-4; a larger count is far more
#: likely to be a corrupt header than real data.
MAX_IDX_NDIM = 16

_GZIP_MAGIC = b"\x1f\x8b"

# DEFLATE cannot expand data by more than ~1032:1, so a header that claims more
# decompressed bytes than this times the compressed size is lying; rejecting it
# up front keeps a hostile file from making us decompress (or allocate) a lot.
_MAX_GZIP_RATIO = 1100

# Decompressed data is read in bounded chunks so memory grows with the data
# that actually exists, never with what the header claims.
_CHUNK = 1 << 24


def _be_dtype(code: str) -> np.dtype:
    return np.dtype(code).newbyteorder(">")


def _parse_header(read: Callable[[int], bytes], name: str) -> Tuple[np.dtype, Tuple[int, ...], int]:
    """Parse an IDX header via ``read(n)``; return (native dtype, shape, header length)."""
    head = read(4)
    if len(head) < 4:
        raise ValueError(
            f"{name}: truncated IDX header (file has {len(head)} bytes, the "
            f"magic number alone needs 4)"
        )
    if head[0] != 0 or head[1] != 0:
        raise ValueError(
            f"{name}: bad IDX magic number {head.hex()} (must start with two "
            f"zero bytes); not an IDX file"
        )
    type_byte, ndim = head[2], head[3]
    if type_byte not in _IDX_TYPES:
        known = ", ".join(f"0x{t:02X}" for t in _IDX_TYPES)
        raise ValueError(
            f"{name}: unknown IDX data type byte 0x{type_byte:02X} (known: {known})"
        )
    if ndim == 0:
        raise ValueError(f"{name}: IDX header has 0 dimensions")
    if ndim > MAX_IDX_NDIM:
        raise ValueError(
            f"{name}: IDX header claims {ndim} dimensions (at most {MAX_IDX_NDIM} "
            f"supported); the header is probably corrupt"
        )
    raw_dims = read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(
            f"{name}: truncated IDX header: {ndim} dimensions need {4 * ndim} "
            f"bytes of sizes, only {len(raw_dims)} present"
        )
    shape = struct.unpack(f">{ndim}I", raw_dims)
    return np.dtype(_IDX_TYPES[type_byte]), shape, 4 + 4 * ndim


def _expected_nbytes(name: str, shape: Tuple[int, ...], dtype: np.dtype) -> int:
    # Python ints cannot overflow, so compute exactly and then compare with
    # what NumPy can address at all.
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    # NumPy refuses a shape whose non-zero dimensions multiply beyond its
    # sizes even when another dimension is 0 ("array is too big"), so an
    # empty array's shape is checked the same way.
    if math.prod(d for d in shape if d) * dtype.itemsize > np.iinfo(np.intp).max:
        what = f"({nbytes} bytes)" if nbytes else "(empty, but its other dimensions multiply to"  \
            f" {math.prod(d for d in shape if d) * dtype.itemsize} bytes)"
        raise ValueError(
            f"{name}: IDX header claims shape {shape} of {dtype} {what}, more than "
            f"this machine can address; the header is corrupt"
        )
    return nbytes


def _finish(buf: bytearray, dtype: np.dtype, shape: Tuple[int, ...]) -> np.ndarray:
    arr = np.frombuffer(buf, dtype=_be_dtype(dtype.str[1:])).reshape(shape)
    if arr.dtype != dtype:  # big-endian multi-byte type on a little-endian host
        arr = arr.astype(dtype)
    return arr


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (as used by MNIST / Fashion-MNIST) into a NumPy array.

    The file may be raw or gzip-compressed; compression is detected from the
    gzip magic bytes, not from the file name.

    Args:
        path: the file to read.

    Returns:
        A writable C-contiguous array with the shape given in the file's header
        and the native-endian dtype for its type byte: ``uint8`` (0x08),
        ``int8`` (0x09), ``int16`` (0x0B), ``int32`` (0x0C), ``float32``
        (0x0D) or ``float64`` (0x0E).

    Raises:
        ValueError: the file is not a well-formed IDX file: bad magic, unknown
            type byte, 0 or more than :data:`MAX_IDX_NDIM` dimensions, truncated
            header, data shorter or longer than the header's shape says, a
            shape too large to be real, or corrupt gzip data. The message names
            the file and the problem. The size claimed by the header is checked
            against the file before anything is allocated.
        OSError: the file cannot be opened (e.g. ``FileNotFoundError``).
    """
    name = os.fspath(path)
    with open(name, "rb") as raw:
        is_gzip = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        file_size = os.fstat(raw.fileno()).st_size
        if is_gzip:
            try:
                with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                    return _read_idx_gzip(gz, name, file_size)
            except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
                # EOFError means the stream ends before its end-of-stream marker.
                raise ValueError(f"{name}: corrupt gzip data: {exc}") from exc
        return _read_idx_raw(raw, name, file_size)


def _read_idx_raw(f: io.BufferedReader, name: str, file_size: int) -> np.ndarray:
    dtype, shape, header_len = _parse_header(f.read, name)
    nbytes = _expected_nbytes(name, shape, dtype)
    available = file_size - header_len
    if available < nbytes:
        raise ValueError(
            f"{name}: truncated IDX data: header shape {shape} of {dtype} needs "
            f"{nbytes} bytes, the file has only {available} after the header"
        )
    if available > nbytes:
        raise ValueError(
            f"{name}: IDX file has {available - nbytes} extra bytes after the "
            f"{nbytes} bytes of data that header shape {shape} of {dtype} describes"
        )
    # Safe to allocate now: the size is confirmed by the file itself.
    buf = bytearray(nbytes)
    got = f.readinto(buf) if nbytes else 0
    if got != nbytes:  # file shrank since fstat
        raise ValueError(f"{name}: truncated IDX data: read {got} of {nbytes} bytes")
    return _finish(buf, dtype, shape)


def _read_idx_gzip(f: gzip.GzipFile, name: str, file_size: int) -> np.ndarray:
    dtype, shape, _ = _parse_header(f.read, name)
    nbytes = _expected_nbytes(name, shape, dtype)
    if nbytes > max(file_size, 1024) * _MAX_GZIP_RATIO:
        raise ValueError(
            f"{name}: IDX header claims shape {shape} of {dtype} ({nbytes} bytes), "
            f"but a {file_size}-byte gzip file cannot decompress to that much; "
            f"the header is corrupt"
        )
    buf = bytearray()
    while len(buf) < nbytes:
        chunk = f.read(min(_CHUNK, nbytes - len(buf)))
        if not chunk:
            raise ValueError(
                f"{name}: truncated IDX data: header shape {shape} of {dtype} needs "
                f"{nbytes} bytes, the decompressed file has only {len(buf)} after "
                f"the header"
            )
        buf += chunk
    # One more byte is enough to tell "exactly right" from "too long", and
    # reaching the end of the stream also makes gzip verify its CRC.
    if f.read(1):
        raise ValueError(
            f"{name}: IDX file has extra bytes after the {nbytes} bytes of data "
            f"that header shape {shape} of {dtype} describes"
        )
    return _finish(buf, dtype, shape)


def write_idx(path: PathLike, array: ArrayLike) -> None:
    """Write an array to an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    The inverse of :func:`read_idx`. Multi-byte values are stored big-endian as
    the format requires. Compressed output is reproducible (no timestamp or
    file name in the gzip header).

    Args:
        path: the file to write (overwritten if it exists).
        array: array-like with 1 to :data:`MAX_IDX_NDIM` dimensions, each at
            most ``2**32 - 1``, of dtype ``uint8``, ``int8``, ``int16``,
            ``int32``, ``float32`` or ``float64`` (either byte order).

    Raises:
        TypeError: the dtype has no IDX type (e.g. ``int64``, ``bool``); cast
            first, e.g. ``labels.astype(np.uint8)``.
        ValueError: 0-d array, too many dimensions, or a dimension too large.
    """
    arr = np.asarray(array)
    native = arr.dtype.newbyteorder("=")
    if native not in _DTYPE_TO_IDX:
        supported = ", ".join(np.dtype(c).name for c in _IDX_TYPES.values())
        raise TypeError(
            f"write_idx: dtype {arr.dtype} has no IDX type (supported: {supported}); "
            f"cast the array first"
        )
    if not 1 <= arr.ndim <= MAX_IDX_NDIM:
        raise ValueError(
            f"write_idx: array must have 1 to {MAX_IDX_NDIM} dimensions, got {arr.ndim}"
        )
    if any(d > 0xFFFFFFFF for d in arr.shape):
        raise ValueError(f"write_idx: dimension too large for IDX in shape {arr.shape}")
    header = bytes([0, 0, _DTYPE_TO_IDX[native], arr.ndim]) + struct.pack(
        f">{arr.ndim}I", *arr.shape
    )
    data = np.ascontiguousarray(arr, dtype=_be_dtype(native.str[1:]))
    name = os.fspath(path)
    with open(name, "wb") as raw:
        if name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                gz.write(header)
                gz.write(data.reshape(-1).view(np.uint8).data)
        else:
            raw.write(header)
            raw.write(data.reshape(-1).view(np.uint8).data)
