"""Data loading: IDX files, Fashion-MNIST, and mini-batch iteration.

This module uses only NumPy and the standard library, so it imports (and is
useful) without pycnn's compiled extension.

* :func:`read_idx` / :func:`write_idx` read and write the IDX format used by
  MNIST and Fashion-MNIST, raw or gzip-compressed.
* :func:`load_fashion_mnist` finds (or downloads) Fashion-MNIST and returns
  ``((x_train, y_train), (x_test, y_test))`` ready for a CNN: ``x`` is
  ``float32`` of shape ``(N, 1, 28, 28)`` in ``[0, 1]``, ``y`` is ``int64``.
* :func:`iterate_minibatches` and :class:`DataLoader` cut arrays into
  (optionally shuffled, reproducible) mini-batches.
* :class:`RandomCrop`, :class:`RandomHorizontalFlip`, :class:`Normalize` and
  :class:`Compose` transform image batches ``(N, C, H, W)``; ``fit(...,
  transform=...)`` applies them to every training batch, seeded.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import pathlib
import struct
import tempfile
import urllib.request
import zlib
from typing import Iterator, Optional, Tuple, Union

import numpy as np

__all__ = [
    "read_idx",
    "write_idx",
    "MAX_IDX_NDIM",
    "DatasetNotFoundError",
    "FASHION_MNIST_URL",
    "FASHION_MNIST_TRAIN_IMAGES",
    "FASHION_MNIST_TRAIN_LABELS",
    "FASHION_MNIST_TEST_IMAGES",
    "FASHION_MNIST_TEST_LABELS",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_MD5",
    "FASHION_MNIST_SIZES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_SYSTEM_DIR",
    "fashion_mnist_cache_dir",
    "find_fashion_mnist",
    "load_fashion_mnist",
    "iterate_minibatches",
    "DataLoader",
    "Transform",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Normalize",
    "Compose",
]

PathLike = Union[str, "os.PathLike[str]"]

# ---------------------------------------------------------------------------
# IDX format
# ---------------------------------------------------------------------------

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


def _parse_header(read, name: str) -> Tuple[np.dtype, Tuple[int, ...], int]:
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
    if nbytes > np.iinfo(np.intp).max:
        raise ValueError(
            f"{name}: IDX header claims shape {shape} of {dtype} ({nbytes} bytes), more than "
            f"this machine can address; the header is corrupt"
        )
    return nbytes


def _finish(buf, dtype: np.dtype, shape: Tuple[int, ...]) -> np.ndarray:
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


def _read_idx_raw(f, name: str, file_size: int) -> np.ndarray:
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


def _read_idx_gzip(f, name: str, file_size: int) -> np.ndarray:
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


def write_idx(path: PathLike, array) -> None:
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
                gz.write(data.reshape(-1).view(np.uint8))
        else:
            raw.write(header)
            raw.write(data.reshape(-1).view(np.uint8))


# ---------------------------------------------------------------------------
# Fashion-MNIST
# ---------------------------------------------------------------------------


class DatasetNotFoundError(FileNotFoundError):
    """A data set was not found locally and could not be downloaded.

    The message lists every place that was searched and how to get the data.
    """


#: Official Fashion-MNIST mirror (from the Fashion-MNIST README).
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

FASHION_MNIST_TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
FASHION_MNIST_TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
FASHION_MNIST_TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
FASHION_MNIST_TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

#: The four files, in the order train images, train labels, test images, test labels.
FASHION_MNIST_FILES = (
    FASHION_MNIST_TRAIN_IMAGES,
    FASHION_MNIST_TRAIN_LABELS,
    FASHION_MNIST_TEST_IMAGES,
    FASHION_MNIST_TEST_LABELS,
)

#: MD5 of each file as served by the mirror (from the Fashion-MNIST README).
#: Only downloads are checked: Debian's dataset-fashion-mnist ships the same
#: compressed data with a rewritten gzip header (no file name, other mtime),
#: so its files have other MD5s while decompressing to identical bytes.
FASHION_MNIST_MD5 = {
    FASHION_MNIST_TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    FASHION_MNIST_TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
    FASHION_MNIST_TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
    FASHION_MNIST_TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
}

#: Size in bytes of each file as served by the mirror; a download that grows
#: past it is aborted instead of filling the disk.
FASHION_MNIST_SIZES = {
    FASHION_MNIST_TRAIN_IMAGES: 26421880,
    FASHION_MNIST_TRAIN_LABELS: 29515,
    FASHION_MNIST_TEST_IMAGES: 4422102,
    FASHION_MNIST_TEST_LABELS: 5148,
}

#: Class names, indexed by label.
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Where Debian/Ubuntu's ``dataset-fashion-mnist`` package installs the files.
FASHION_MNIST_SYSTEM_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")

#: Seconds to wait on the network per request when downloading.
DOWNLOAD_TIMEOUT = 60.0

_DATA_ENV = "PYCNN_DATA"
_SUBDIR = "fashion-mnist"


def fashion_mnist_cache_dir() -> pathlib.Path:
    """The per-user cache directory for Fashion-MNIST (where downloads go).

    ``$XDG_CACHE_HOME/pycnn/fashion-mnist`` if ``XDG_CACHE_HOME`` is set to an
    absolute path, else ``~/.cache/pycnn/fashion-mnist``. Not created here.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    base = pathlib.Path(xdg) if os.path.isabs(xdg) else pathlib.Path.home() / ".cache"
    return base / "pycnn" / _SUBDIR


def _files_in(directory: pathlib.Path) -> Optional[dict]:
    """Map each Fashion-MNIST file name to its path in ``directory``, or None if any is missing."""
    found = {}
    for name in FASHION_MNIST_FILES:
        # Prefer an already-decompressed copy: it loads faster.
        for candidate in (directory / name[: -len(".gz")], directory / name):
            if candidate.is_file():
                found[name] = candidate
                break
        else:
            return None
    return found


def _search_dirs(path: Optional[PathLike]) -> list:
    """The directories searched, in order (see :func:`find_fashion_mnist`)."""
    if path is not None:
        explicit = pathlib.Path(path).expanduser()
        return [explicit, explicit / _SUBDIR]
    dirs = []
    env = os.environ.get(_DATA_ENV)
    if env:
        root = pathlib.Path(env).expanduser()
        dirs += [root, root / _SUBDIR]
    dirs += [fashion_mnist_cache_dir(), FASHION_MNIST_SYSTEM_DIR]
    return dirs


def find_fashion_mnist(path: Optional[PathLike] = None) -> Optional[pathlib.Path]:
    """Find a local copy of Fashion-MNIST without downloading anything.

    A directory qualifies when it holds all four files of
    :data:`FASHION_MNIST_FILES`, each gzipped or not (name without ``.gz``).

    Search order:

    1. if ``path`` is given, only ``path`` and ``path/fashion-mnist``;
    2. otherwise ``$PYCNN_DATA`` and ``$PYCNN_DATA/fashion-mnist`` (if set),
       then :func:`fashion_mnist_cache_dir`, then
       :data:`FASHION_MNIST_SYSTEM_DIR` (``/usr/share/datasets/fashion-mnist``).

    Returns:
        The first qualifying directory, or None.
    """
    for directory in _search_dirs(path):
        if _files_in(directory) is not None:
            return directory
    return None


def _not_found_message(dirs, path, download_error: Optional[BaseException]) -> str:
    looked = "\n".join(f"  - {d}" for d in dirs)
    files = ", ".join(FASHION_MNIST_FILES)
    lines = [f"Fashion-MNIST not found. Looked for {files} (or the same names without .gz) in:", looked]
    if download_error is not None:
        lines.append(f"Downloading from {FASHION_MNIST_URL} failed: {download_error}")
    elif path is None:
        lines.append("Downloading was disabled (download=False).")
    lines += [
        "To get the data, do one of:",
        "  - on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist",
        f"  - download the four files from {FASHION_MNIST_URL} into one of the places above",
        f"  - put them in any directory and set {_DATA_ENV} to it (or pass path=...)",
    ]
    if path is not None:
        lines.append("(An explicit path is the only place searched, and nothing is downloaded into it.)")
    return "\n".join(lines)


def _download_one(name: str, directory: pathlib.Path, timeout: float) -> None:
    url = FASHION_MNIST_URL + name
    limit = FASHION_MNIST_SIZES[name]
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
    try:
        md5 = hashlib.md5()
        size = 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise ValueError(
                        f"download of {url} is larger than the expected {limit} bytes; "
                        f"discarded"
                    )
                md5.update(chunk)
                out.write(chunk)
        digest = md5.hexdigest()
        if digest != FASHION_MNIST_MD5[name]:
            raise ValueError(
                f"MD5 mismatch for {url}: expected {FASHION_MNIST_MD5[name]}, got "
                f"{digest} ({size} bytes); the download is corrupt and was discarded"
            )
        # Atomic: readers never see a partial file under the final name.
        os.replace(tmp, directory / name)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _download_fashion_mnist(directory: pathlib.Path, timeout: float) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in FASHION_MNIST_FILES:
        # Skip files a previous, interrupted download already completed.
        if (directory / name).is_file() or (directory / name[: -len(".gz")]).is_file():
            continue
        _download_one(name, directory, timeout)


def _load_pair(images_path: pathlib.Path, labels_path: pathlib.Path, split: str):
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: Fashion-MNIST {split} images must be uint8 of shape "
            f"(N, 28, 28), got {images.dtype} of shape {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{labels_path}: Fashion-MNIST {split} labels must be uint8 of shape "
            f"(N,), got {labels.dtype} of shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"Fashion-MNIST {split} set: {len(images)} images in {images_path} but "
            f"{len(labels)} labels in {labels_path}"
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise ValueError(
            f"{labels_path}: Fashion-MNIST {split} labels must be in 0..9, found "
            f"{int(labels.max())}"
        )
    # One pass straight to float32: no float64 temporary of the 47M pixels.
    x = np.divide(images, np.float32(255), dtype=np.float32)
    return x.reshape(len(images), 1, 28, 28), labels.astype(np.int64)


def load_fashion_mnist(path: Optional[PathLike] = None, download: bool = True):
    """Load Fashion-MNIST, downloading it into the user cache if needed.

    Looks in the places listed in :func:`find_fashion_mnist`. If ``path`` is
    given, only there (an explicit path lacking the files is an error and
    nothing is downloaded). Otherwise, if no copy is found and ``download`` is
    true, the four files are fetched from :data:`FASHION_MNIST_URL` into
    :func:`fashion_mnist_cache_dir`, each checked against
    :data:`FASHION_MNIST_MD5`.

    Args:
        path: directory holding the four files (or a ``fashion-mnist``
            subdirectory that does); None to search the default places.
        download: whether to download when no local copy is found.

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` where ``x_*`` are
        ``float32`` arrays of shape ``(N, 1, 28, 28)`` with values in
        ``[0, 1]`` (pixel / 255) and ``y_*`` are ``int64`` arrays of shape
        ``(N,)`` with class indices 0..9 (see :data:`FASHION_MNIST_CLASSES`).
        N is 60000 for train and 10000 for test with the real data.

    Raises:
        DatasetNotFoundError: no copy found and download disabled or failed
            (network error); the message lists where it looked and how to get
            the data. A subclass of ``FileNotFoundError``.
        ValueError: a file is malformed (see :func:`read_idx`) or has the wrong
            shape, dtype or label range, or a download failed its MD5 check
            (the bad file is deleted).
    """
    dirs = _search_dirs(path)
    directory = find_fashion_mnist(path)
    if directory is None and path is None and download:
        cache = fashion_mnist_cache_dir()
        try:
            _download_fashion_mnist(cache, DOWNLOAD_TIMEOUT)
        # URLError and timeouts are OSErrors; HTTPException covers a connection
        # dropped mid-body (IncompleteRead).
        except (OSError, http.client.HTTPException) as exc:
            raise DatasetNotFoundError(_not_found_message(dirs, path, exc)) from exc
        directory = cache
    if directory is None:
        raise DatasetNotFoundError(_not_found_message(dirs, path, None))
    files = _files_in(directory)
    if files is None:  # vanished between search and load
        raise DatasetNotFoundError(_not_found_message(dirs, path, None))
    train = _load_pair(files[FASHION_MNIST_TRAIN_IMAGES], files[FASHION_MNIST_TRAIN_LABELS], "train")
    test = _load_pair(files[FASHION_MNIST_TEST_IMAGES], files[FASHION_MNIST_TEST_LABELS], "test")
    return train, test


# ---------------------------------------------------------------------------
# Mini-batches
# ---------------------------------------------------------------------------


def _check_batch_args(x, y, batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an integer, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("x and y must have a leading sample dimension (got a 0-d array)")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    return x, y, int(batch_size)


def _batches(x, y, batch_size, order, drop_last):
    n = len(x)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            yield x[idx], y[idx]


def iterate_minibatches(
    x,
    y,
    batch_size: int,
    shuffle: bool = True,
    seed=None,
    drop_last: bool = False,
) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Iterate over ``(x, y)`` in mini-batches along the first axis.

    Args:
        x: array of shape ``(N, ...)``, e.g. images ``(N, C, H, W)``.
        y: array of shape ``(N, ...)``, e.g. labels ``(N,)``.
        batch_size: samples per batch, >= 1.
        shuffle: visit samples in a random order (one permutation for the
            whole pass); otherwise in order.
        seed: seed for ``np.random.default_rng`` (int, None for fresh entropy,
            or a ``np.random.Generator`` to draw from). The same int seed
            gives the same order.
        drop_last: drop the final batch if it has fewer than ``batch_size``
            samples; otherwise it is yielded as a smaller batch.

    Returns:
        An iterator of ``(xb, yb)`` with ``xb.shape == (B,) + x.shape[1:]`` and
        the dtypes of ``x`` and ``y``; ``B == batch_size`` except possibly for
        the last batch. Unshuffled batches are views into ``x``/``y``;
        shuffled ones are copies. Every sample appears exactly once per pass
        (apart from those dropped by ``drop_last``).

    Raises:
        ValueError: ``batch_size < 1`` or ``len(x) != len(y)`` (raised at call
            time, not at the first ``next``).
        TypeError: ``batch_size`` is not an integer.
    """
    x, y, batch_size = _check_batch_args(x, y, batch_size)
    order = np.random.default_rng(seed).permutation(len(x)) if shuffle else None
    return _batches(x, y, batch_size, order, drop_last)


class DataLoader:
    """Re-iterable mini-batches over in-memory arrays, PyTorch-style.

    Each ``for xb, yb in loader`` is one epoch. With ``shuffle=True`` every
    epoch uses a new permutation drawn from a single generator seeded once
    with ``seed``: epochs differ from each other, but the whole sequence of
    epochs is reproducible for a given seed.

    Args:
        x: array of shape ``(N, ...)``, e.g. float32 images ``(N, 1, 28, 28)``.
        y: array of shape ``(N, ...)``, e.g. int64 labels ``(N,)``.
        batch_size: samples per batch, >= 1.
        shuffle: reshuffle every epoch.
        seed: seed for ``np.random.default_rng`` (int, None, or a Generator).
        drop_last: drop each epoch's final batch if it is smaller than
            ``batch_size``.

    Yields ``(xb, yb)`` as :func:`iterate_minibatches` does; ``len(loader)``
    is the number of batches per epoch.
    """

    def __init__(self, x, y, batch_size: int = 32, shuffle: bool = True, seed=None, drop_last: bool = False):
        self.x, self.y, self.batch_size = _check_batch_args(x, y, batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self._rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        return iterate_minibatches(
            self.x, self.y, self.batch_size, self.shuffle, seed=self._rng, drop_last=self.drop_last
        )

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __repr__(self) -> str:
        return (
            f"DataLoader(n={len(self.x)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last})"
        )


# ---------------------------------------------------------------------------
# Batch transforms (augmentation and normalisation)
# ---------------------------------------------------------------------------


class Transform:
    """A transform of a batch of images ``(N, C, H, W)``: ``t(x, rng=None, training=True)``.

    In training mode random transforms draw from ``rng`` (a
    ``np.random.Generator``; None uses pycnn's generator, which
    :func:`pycnn.manual_seed` seeds); in evaluation mode
    (``training=False``) they do their deterministic part only: no flip, a
    centre crop. Deterministic transforms (:class:`Normalize`) act the same
    in both modes. The input is never modified; the result is a new array
    (or the input itself when there is nothing to do).
    """

    def __call__(self, x, rng: Optional[np.random.Generator] = None, training: bool = True) -> np.ndarray:
        x = np.asarray(x)
        if rng is None and training:
            from ._random import generator

            rng = generator()
        return self.apply(x, rng, bool(training))

    def apply(self, x: np.ndarray, rng, training: bool) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def _images(x: np.ndarray, who: str) -> np.ndarray:
    if x.ndim != 4:
        raise ValueError(f"{who}: expected a batch of images (N, C, H, W), got shape {x.shape}")
    return x


def _size_pair(size, who: str) -> Tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)):
        raise TypeError(f"{who}: size must be an int or a pair of ints, got {size!r}")
    if min(size) < 1:
        raise ValueError(f"{who}: size must be positive, got {tuple(size)}")
    return int(size[0]), int(size[1])


class RandomCrop(Transform):
    """Pad each image by ``padding`` pixels of ``fill`` on every side, then cut a random ``size`` window.

    The classic CIFAR/Fashion-MNIST augmentation is ``RandomCrop(28,
    padding=2)``: the image moves by up to 2 pixels in each direction. Each
    image of the batch gets its own offset. In evaluation mode the window is
    the centre one (the identity when ``size`` is the input size).

    Args:
        size: output height and width (int or pair).
        padding: pixels added on each side before cropping (>= 0).
        fill: value of the padding.
    """

    def __init__(self, size, padding: int = 0, fill: float = 0.0):
        self.size = _size_pair(size, "RandomCrop")
        if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"RandomCrop: padding must be an int >= 0, got {padding!r}")
        self.padding = int(padding)
        self.fill = float(fill)

    def apply(self, x, rng, training):
        x = _images(x, "RandomCrop")
        n, c, h_in, w_in = x.shape
        h, w = self.size
        p = self.padding
        hp, wp = h_in + 2 * p, w_in + 2 * p
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image ({hp}, {wp})")
        if not training and (h, w) == (h_in, w_in):
            return x
        padded = x if p == 0 else np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.fill)
        if not training:  # the centre window
            oy, ox = (hp - h) // 2, (wp - w) // 2
            return padded[:, :, oy:oy + h, ox:ox + w].copy()
        oy = rng.integers(0, hp - h + 1, size=n)
        ox = rng.integers(0, wp - w + 1, size=n)
        rows = (oy[:, None] + np.arange(h))[:, None, :, None]
        cols = (ox[:, None] + np.arange(w))[:, None, None, :]
        return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p`` (training mode only)."""

    def __init__(self, p: float = 0.5):
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def apply(self, x, rng, training):
        x = _images(x, "RandomHorizontalFlip")
        if not training:
            return x
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip, :, :, ::-1]
        return out


class Normalize(Transform):
    """``(x - mean) / std`` per channel, in training and evaluation mode alike; float32 out.

    ``mean`` and ``std`` are numbers (all channels) or one value per
    channel. Fashion-MNIST's training set has mean 0.2860 and std 0.3530.
    """

    def __init__(self, mean, std):
        m = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        s = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if m.ndim != 1 or s.ndim != 1:
            raise ValueError(f"Normalize: mean and std must be numbers or 1-D sequences, got {mean!r}, {std!r}")
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(s)) and np.all(s > 0)):
            raise ValueError(f"Normalize: mean must be finite and std finite and > 0, got {mean!r}, {std!r}")
        self.mean = tuple(float(v) for v in m)
        self.std = tuple(float(v) for v in s)

    def apply(self, x, rng, training):
        if x.ndim < 2:
            raise ValueError(f"Normalize: expected a batch (N, C, ...), got shape {x.shape}")
        c = x.shape[1]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if len(v) not in (1, c):
                raise ValueError(f"Normalize: {name} has {len(v)} values for input with {c} channels "
                                 f"(shape {x.shape})")
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = np.asarray(self.mean, np.float32).reshape(shape)
        inv_std = (1.0 / np.asarray(self.std, np.float64)).astype(np.float32).reshape(shape)
        return ((x.astype(np.float32, copy=False) - mean) * inv_std).astype(np.float32, copy=False)


class Compose(Transform):
    """Apply ``transforms`` in order (one generator for all, so the whole chain is seeded)."""

    def __init__(self, transforms):
        transforms = list(transforms)
        for t in transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")
        self.transforms = transforms

    def apply(self, x, rng, training):
        for t in self.transforms:
            x = t(x, rng=rng, training=training) if isinstance(t, Transform) else (t(x) if training else x)
        return x
