"""Fashion-MNIST: find a local copy, download one (MD5-checked) into the user cache, load it.

:func:`load_fashion_mnist` returns ``((x_train, y_train), (x_test, y_test))``
ready for a CNN; :func:`find_fashion_mnist` only looks. The places searched
are listed in :func:`find_fashion_mnist`.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
from typing import Dict, List, Optional, Tuple

import numpy as np

from .idx import PathLike, read_idx

ArrayPair = Tuple[np.ndarray, np.ndarray]

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


def _files_in(directory: pathlib.Path) -> Optional[Dict[str, pathlib.Path]]:
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


def _search_dirs(path: Optional[PathLike]) -> List[pathlib.Path]:
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


def _not_found_message(dirs: List[pathlib.Path], path: Optional[PathLike], download_error: Optional[BaseException]) -> str:
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
    # Imported here, not at the top: urllib.request pulls in http.client and email, ~40% of
    # `import pycnn.data`'s own time, and only a download needs them.
    import tempfile
    import urllib.request

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


def _load_pair(images_path: pathlib.Path, labels_path: pathlib.Path, split: str) -> ArrayPair:
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


def load_fashion_mnist(path: Optional[PathLike] = None,
                       download: bool = True) -> Tuple[ArrayPair, ArrayPair]:
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
        import http.client

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
