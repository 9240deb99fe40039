"""Tests for pycnn.data: IDX I/O, Fashion-MNIST discovery/download, mini-batches.

No test touches the network: urlopen is replaced for every test, and the
download tests serve bytes from memory.
"""

import gzip
import hashlib
import http.client
import io
import os
import struct
import time
import tracemalloc
import urllib.error
import urllib.request
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycnn import data
from pycnn.data import fashion_mnist  # where the Fashion-MNIST constants are read: patch them there

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
TYPE_BYTES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"test tried to use the network: urlopen{args}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Point every Fashion-MNIST search location at empty temporary places."""
    home = tmp_path / "home"
    home.mkdir()
    system = tmp_path / "system"
    system.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("PYCNN_DATA", raising=False)
    monkeypatch.setattr(fashion_mnist, "FASHION_MNIST_SYSTEM_DIR", system)
    return tmp_path


# ---------------------------------------------------------------------------
# IDX round trips
# ---------------------------------------------------------------------------


def _sample(dtype, shape, rng):
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        arr = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        if arr.size >= 2:  # make sure the extremes survive byte swapping
            arr.flat[0], arr.flat[-1] = info.min, info.max
        return arr
    arr = rng.standard_normal(shape).astype(dtype) * 1e3
    if arr.size >= 3:
        arr.flat[0], arr.flat[1], arr.flat[2] = np.inf, -0.0, np.finfo(dtype).tiny
    return arr


@pytest.mark.parametrize("dtype", IDX_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2), (0, 28, 28), (1,) * 16])
@pytest.mark.parametrize("suffix", [".idx", ".idx.gz"])
def test_round_trip(tmp_path, dtype, shape, suffix):
    arr = _sample(dtype, shape, np.random.default_rng(0))
    path = tmp_path / f"a{suffix}"
    data.write_idx(path, arr)
    out = data.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == shape
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, arr)
    with open(path, "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == suffix.endswith(".gz")


def test_write_is_big_endian_per_spec(tmp_path):
    path = tmp_path / "a.idx"
    data.write_idx(path, np.array([[1, -2, 258]], dtype=np.int16))
    expected = bytes([0, 0, 0x0B, 2]) + struct.pack(">II", 1, 3) + struct.pack(">3h", 1, -2, 258)
    assert path.read_bytes() == expected


def test_write_accepts_non_native_and_non_contiguous(tmp_path):
    arr = np.arange(24, dtype=">i4").reshape(4, 6)[:, ::2]
    data.write_idx(tmp_path / "a.idx.gz", arr)
    out = data.read_idx(tmp_path / "a.idx.gz")
    assert out.dtype == np.dtype("int32") and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_gzip_output_is_reproducible(tmp_path):
    data.write_idx(tmp_path / "a.gz", np.arange(100, dtype=np.uint8))
    header = (tmp_path / "a.gz").read_bytes()[:10]
    # No FNAME flag and a zero MTIME: same array, same bytes, whenever written.
    assert header[3] & 0x08 == 0 and header[4:8] == bytes(4)


def test_compression_detected_by_magic_not_name(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    data.write_idx(tmp_path / "c.gz", arr)
    data.write_idx(tmp_path / "r.idx", arr)
    (tmp_path / "c.gz").rename(tmp_path / "compressed.idx")
    (tmp_path / "r.idx").rename(tmp_path / "raw.gz")
    np.testing.assert_array_equal(data.read_idx(tmp_path / "compressed.idx"), arr)
    np.testing.assert_array_equal(data.read_idx(str(tmp_path / "raw.gz")), arr)


@settings(max_examples=40, deadline=None)
@given(
    arr=hnp.arrays(
        dtype=st.sampled_from(IDX_DTYPES),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    compress=st.booleans(),
)
def test_round_trip_property(tmp_path_factory, arr, compress):
    path = tmp_path_factory.mktemp("h") / ("a.gz" if compress else "a")
    data.write_idx(path, arr)
    out = data.read_idx(path)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("bad", [np.zeros(3, np.int64), np.zeros(3, bool), np.zeros(3, np.uint16), np.array(["a"])])
def test_write_rejects_unsupported_dtype(tmp_path, bad):
    with pytest.raises(TypeError, match="no IDX type"):
        data.write_idx(tmp_path / "a.idx", bad)


def test_write_rejects_bad_ndim(tmp_path):
    with pytest.raises(ValueError, match="dimensions"):
        data.write_idx(tmp_path / "a.idx", np.uint8(3))
    with pytest.raises(ValueError, match="dimensions"):
        data.write_idx(tmp_path / "a.idx", np.zeros((1,) * 17, np.uint8))


# ---------------------------------------------------------------------------
# Malformed IDX files
# ---------------------------------------------------------------------------


def _idx_bytes(type_byte, dims, payload, magic=b"\x00\x00", ndim=None):
    ndim = len(dims) if ndim is None else ndim
    return magic + bytes([type_byte, ndim]) + struct.pack(f">{len(dims)}I", *dims) + payload


MALFORMED = {
    "empty file": (b"", "truncated IDX header"),
    "3 bytes": (b"\x00\x00\x08", "truncated IDX header"),
    "bad magic": (_idx_bytes(0x08, [3], b"abc", magic=b"\x01\x02"), "bad IDX magic"),
    "text file": (b"hello, world\n", "bad IDX magic"),
    "unknown type": (_idx_bytes(0x0A, [3], b"abc"), "unknown IDX data type byte 0x0A"),
    "zero ndim": (_idx_bytes(0x08, [], b""), "0 dimensions"),
    "too many dims": (_idx_bytes(0x08, [1] * 17, b"a"), "17 dimensions"),
    "truncated dims": (_idx_bytes(0x08, [2, 2], b"", ndim=3), "truncated IDX header"),
    "truncated data": (_idx_bytes(0x08, [10], bytes(9)), "truncated IDX data"),
    "truncated multibyte": (_idx_bytes(0x0B, [2], bytes(3)), "truncated IDX data"),
    "header but no data": (_idx_bytes(0x0D, [4, 4], b""), "truncated IDX data"),
    "extra data": (_idx_bytes(0x08, [10], bytes(11)), "extra bytes"),
    "lying small header": (_idx_bytes(0x0C, [2, 2], bytes(4 * 4 * 100)), "extra bytes"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_malformed_raises_value_error(tmp_path, case, compress):
    content, message = MALFORMED[case]
    path = tmp_path / "bad.idx"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(ValueError, match=message) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def _good_gz(tmp_path, n=4000):
    path = tmp_path / "good.gz"
    data.write_idx(path, np.random.default_rng(1).integers(0, 256, size=n, dtype=np.uint8))
    return path.read_bytes()


def test_corrupt_gzip_stream(tmp_path):
    blob = bytearray(_good_gz(tmp_path))
    mid = len(blob) // 2
    blob[mid : mid + 16] = bytes(16)
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="corrupt gzip") as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip(tmp_path):
    blob = _good_gz(tmp_path)
    for cut in (3, 12, len(blob) // 2, len(blob) - 4):
        path = tmp_path / f"cut{cut}.gz"
        path.write_bytes(blob[:cut])
        with pytest.raises(ValueError, match=str(path)):
            data.read_idx(path)


def test_gzip_bad_crc(tmp_path):
    blob = bytearray(_good_gz(tmp_path))
    blob[-8] ^= 0xFF  # first CRC32 byte of the trailer
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="corrupt gzip"):
        data.read_idx(path)


def test_gzip_trailing_garbage(tmp_path):
    path = tmp_path / "trail.gz"
    path.write_bytes(_good_gz(tmp_path) + b"garbage!")
    with pytest.raises(ValueError, match="corrupt gzip"):
        data.read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize(
    "dims",
    [
        [100_000, 100_000, 1_000],  # 10 TB of uint8: addressable, but not in this file
        [0xFFFFFFFF] * 3,  # product overflows any 64-bit size
        [0xFFFFFFFF] * 16,
    ],
    ids=["terabytes", "overflow3", "overflow16"],
)
def test_huge_lying_dims_fail_fast_without_allocating(tmp_path, compress, dims):
    content = _idx_bytes(0x0E, dims, bytes(4096))
    path = tmp_path / "huge.idx"
    path.write_bytes(gzip.compress(content) if compress else content)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError) as info:
            data.read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 1 << 20, f"read_idx allocated {peak} bytes for a lying header"
    assert str(path) in str(info.value)


def test_gzip_bomb_with_lying_header_is_bounded(tmp_path):
    # Claims 1000 bytes of data but decompresses to ~64 MB of zeros.
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    parts = [comp.compress(_idx_bytes(0x08, [1000], b""))]
    zeros = bytes(1 << 20)
    parts += [comp.compress(zeros) for _ in range(64)]
    parts.append(comp.flush())
    path = tmp_path / "bomb.gz"
    path.write_bytes(b"".join(parts))
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="extra bytes"):
            data.read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"read_idx used {peak} bytes on a gzip bomb"


def test_gzip_claim_beyond_deflate_ratio(tmp_path):
    # 1 GB claimed from a ~100-byte gzip: impossible, rejected before decompressing.
    path = tmp_path / "claim.gz"
    path.write_bytes(gzip.compress(_idx_bytes(0x08, [1000, 1000, 1000], bytes(10))))
    with pytest.raises(ValueError, match="cannot decompress to that much"):
        data.read_idx(path)


def test_missing_file_is_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.read_idx(tmp_path / "nope.idx")


# ---------------------------------------------------------------------------
# Fashion-MNIST discovery and loading (synthetic files)
# ---------------------------------------------------------------------------


def make_fake_fmnist(directory, n_train=20, n_test=10, gz=True, seed=0):
    """Write a tiny Fashion-MNIST look-alike; return the uint8 arrays written."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        data.FASHION_MNIST_TRAIN_IMAGES: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        data.FASHION_MNIST_TRAIN_LABELS: (np.arange(n_train) % 10).astype(np.uint8),
        data.FASHION_MNIST_TEST_IMAGES: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        data.FASHION_MNIST_TEST_LABELS: (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    arrays[data.FASHION_MNIST_TRAIN_IMAGES][0, 0, 0] = 255  # pin the range ends
    arrays[data.FASHION_MNIST_TRAIN_IMAGES][0, 0, 1] = 0
    for name, arr in arrays.items():
        data.write_idx(directory / (name if gz else name[: -len(".gz")]), arr)
    return arrays


def check_loaded(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    for x, y, img_name, lab_name in [
        (x_train, y_train, data.FASHION_MNIST_TRAIN_IMAGES, data.FASHION_MNIST_TRAIN_LABELS),
        (x_test, y_test, data.FASHION_MNIST_TEST_IMAGES, data.FASHION_MNIST_TEST_LABELS),
    ]:
        images, labels = arrays[img_name], arrays[lab_name]
        assert x.dtype == np.float32 and x.shape == (len(images), 1, 28, 28)
        assert y.dtype == np.int64 and y.shape == (len(labels),)
        np.testing.assert_array_equal(x[:, 0], images.astype(np.float32) / np.float32(255))
        np.testing.assert_array_equal(y, labels)
    assert x_train.min() == 0.0 and x_train.max() == 1.0


def test_explicit_path(isolated):
    arrays = make_fake_fmnist(isolated / "mine")
    check_loaded(data.load_fashion_mnist(isolated / "mine"), arrays)
    assert data.find_fashion_mnist(isolated / "mine") == isolated / "mine"


def test_explicit_path_subfolder_and_str(isolated):
    arrays = make_fake_fmnist(isolated / "root" / "fashion-mnist")
    check_loaded(data.load_fashion_mnist(str(isolated / "root"), download=False), arrays)


@pytest.mark.parametrize("mixed", [False, True])
def test_ungzipped_names_accepted(isolated, mixed):
    arrays = make_fake_fmnist(isolated / "raw", gz=False)
    if mixed:
        name = data.FASHION_MNIST_TEST_LABELS
        (isolated / "raw" / name[:-3]).unlink()
        data.write_idx(isolated / "raw" / name, arrays[name])
    check_loaded(data.load_fashion_mnist(isolated / "raw"), arrays)


def test_explicit_path_without_files_is_error_without_fallback(isolated, monkeypatch):
    make_fake_fmnist(isolated / "env")  # valid data elsewhere must not be used
    monkeypatch.setenv("PYCNN_DATA", str(isolated / "env"))
    (isolated / "empty").mkdir()
    make_fake_fmnist(isolated / "partial")
    (isolated / "partial" / data.FASHION_MNIST_TEST_IMAGES).unlink()
    for where in ("empty", "partial", "missing"):
        with pytest.raises(data.DatasetNotFoundError) as info:
            data.load_fashion_mnist(isolated / where)  # download=True must not download here
        assert str(isolated / where) in str(info.value)
        assert str(isolated / "env") not in str(info.value)
        assert data.find_fashion_mnist(isolated / where) is None


@pytest.mark.parametrize("sub", ["", "fashion-mnist"])
def test_pycnn_data_env(isolated, monkeypatch, sub):
    arrays = make_fake_fmnist(isolated / "env" / sub)
    monkeypatch.setenv("PYCNN_DATA", str(isolated / "env"))
    check_loaded(data.load_fashion_mnist(download=False), arrays)
    assert data.find_fashion_mnist() == isolated / "env" / sub


def test_search_order(isolated, monkeypatch):
    cache = isolated / "home" / ".cache" / "pycnn" / "fashion-mnist"
    make_fake_fmnist(fashion_mnist.FASHION_MNIST_SYSTEM_DIR, n_train=11)
    assert len(data.load_fashion_mnist(download=False)[0][0]) == 11
    make_fake_fmnist(cache, n_train=12)
    assert len(data.load_fashion_mnist(download=False)[0][0]) == 12
    make_fake_fmnist(isolated / "env", n_train=13)
    monkeypatch.setenv("PYCNN_DATA", str(isolated / "env"))
    assert len(data.load_fashion_mnist(download=False)[0][0]) == 13
    make_fake_fmnist(isolated / "explicit", n_train=14)
    assert len(data.load_fashion_mnist(isolated / "explicit", download=False)[0][0]) == 14


def test_cache_respects_xdg_cache_home(isolated, monkeypatch):
    xdg = isolated / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    assert data.fashion_mnist_cache_dir() == xdg / "pycnn" / "fashion-mnist"
    arrays = make_fake_fmnist(xdg / "pycnn" / "fashion-mnist")
    check_loaded(data.load_fashion_mnist(download=False), arrays)
    # A relative XDG_CACHE_HOME is invalid per the spec and ignored.
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert data.fashion_mnist_cache_dir() == isolated / "home" / ".cache" / "pycnn" / "fashion-mnist"


def test_not_found_message(isolated, monkeypatch):
    monkeypatch.setenv("PYCNN_DATA", str(isolated / "env"))
    assert data.find_fashion_mnist() is None
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_fashion_mnist(download=False)
    assert isinstance(info.value, FileNotFoundError)
    msg = str(info.value)
    for place in [
        isolated / "env",
        isolated / "env" / "fashion-mnist",
        isolated / "home" / ".cache" / "pycnn" / "fashion-mnist",
        fashion_mnist.FASHION_MNIST_SYSTEM_DIR,
    ]:
        assert str(place) in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "PYCNN_DATA" in msg
    assert data.FASHION_MNIST_URL in msg
    for name in data.FASHION_MNIST_FILES:
        assert name in msg


@pytest.mark.parametrize(
    "name, bad, message",
    [
        ("train-images-idx3-ubyte.gz", np.zeros((20, 28, 27), np.uint8), r"shape \(N, 28, 28\)"),
        ("train-images-idx3-ubyte.gz", np.zeros((20, 28, 28), np.float32), "must be uint8"),
        ("train-images-idx3-ubyte.gz", np.zeros((20, 784), np.uint8), r"shape \(N, 28, 28\)"),
        ("t10k-labels-idx1-ubyte.gz", np.zeros((10, 1), np.uint8), r"shape \(N,\)"),
        ("t10k-labels-idx1-ubyte.gz", np.zeros(9, np.uint8), "10 images .* but 9 labels"),
        ("train-labels-idx1-ubyte.gz", np.full(20, 10, np.uint8), r"0\.\.9"),
    ],
)
def test_invalid_contents(isolated, name, bad, message):
    make_fake_fmnist(isolated / "d")
    data.write_idx(isolated / "d" / name, bad)
    with pytest.raises(ValueError, match=message):
        data.load_fashion_mnist(isolated / "d")


def test_malformed_file_in_found_dir_is_reported(isolated):
    make_fake_fmnist(isolated / "d")
    (isolated / "d" / data.FASHION_MNIST_TRAIN_LABELS).write_bytes(b"not idx at all")
    with pytest.raises(ValueError, match=data.FASHION_MNIST_TRAIN_LABELS):
        data.load_fashion_mnist(isolated / "d")


# ---------------------------------------------------------------------------
# Download (fake urlopen, bytes from memory)
# ---------------------------------------------------------------------------


@pytest.fixture
def served(isolated, monkeypatch):
    """Fake mirror: the synthetic files' bytes, with MD5s/sizes patched to match."""
    src = isolated / "src"
    arrays = make_fake_fmnist(src)
    payload = {name: (src / name).read_bytes() for name in data.FASHION_MNIST_FILES}
    monkeypatch.setattr(
        fashion_mnist, "FASHION_MNIST_MD5", {n: hashlib.md5(b).hexdigest() for n, b in payload.items()}
    )
    monkeypatch.setattr(fashion_mnist, "FASHION_MNIST_SIZES", {n: len(b) for n, b in payload.items()})
    requests = []

    def fake_urlopen(url, timeout=None):
        assert timeout is not None and timeout > 0, "downloads must use a timeout"
        requests.append(url)
        name = url[len(data.FASHION_MNIST_URL) :]
        assert url == data.FASHION_MNIST_URL + name and name in payload
        return io.BytesIO(payload[name])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    cache = isolated / "home" / ".cache" / "pycnn" / "fashion-mnist"
    return arrays, payload, requests, cache


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part") or p.name.startswith("."))


def test_download_lands_in_cache(served, monkeypatch):
    arrays, payload, requests, cache = served
    check_loaded(data.load_fashion_mnist(), arrays)
    assert sorted(requests) == sorted(data.FASHION_MNIST_URL + n for n in data.FASHION_MNIST_FILES)
    for name in data.FASHION_MNIST_FILES:
        assert (cache / name).read_bytes() == payload[name]
    assert _leftovers(cache) == []
    assert data.find_fashion_mnist() == cache
    # Second load uses the cache and does not download again.
    requests.clear()
    check_loaded(data.load_fashion_mnist(), arrays)
    assert requests == []


def test_download_respects_xdg_cache_home(served, monkeypatch, isolated):
    arrays, _, _, _ = served
    monkeypatch.setenv("XDG_CACHE_HOME", str(isolated / "xdg"))
    check_loaded(data.load_fashion_mnist(), arrays)
    assert data.find_fashion_mnist() == isolated / "xdg" / "pycnn" / "fashion-mnist"


def test_download_fetches_only_missing_files(served):
    arrays, payload, requests, cache = served
    cache.mkdir(parents=True)
    for name in data.FASHION_MNIST_FILES[:2]:
        (cache / name).write_bytes(payload[name])
    check_loaded(data.load_fashion_mnist(), arrays)
    assert sorted(requests) == sorted(data.FASHION_MNIST_URL + n for n in data.FASHION_MNIST_FILES[2:])


def test_download_bad_md5_raises_and_leaves_no_file(served, monkeypatch):
    _, payload, _, cache = served
    bad = data.FASHION_MNIST_TEST_IMAGES
    md5 = dict(fashion_mnist.FASHION_MNIST_MD5)
    md5[bad] = "0" * 32
    monkeypatch.setattr(fashion_mnist, "FASHION_MNIST_MD5", md5)
    with pytest.raises(ValueError, match=f"MD5 mismatch for .*{bad}"):
        data.load_fashion_mnist()
    assert not (cache / bad).exists()
    assert _leftovers(cache) == []
    assert data.find_fashion_mnist() is None


def test_download_oversized_response_aborted(served, monkeypatch):
    _, payload, _, cache = served
    sizes = dict(fashion_mnist.FASHION_MNIST_SIZES)
    sizes[data.FASHION_MNIST_TRAIN_IMAGES] = 100
    monkeypatch.setattr(fashion_mnist, "FASHION_MNIST_SIZES", sizes)
    with pytest.raises(ValueError, match="larger than the expected"):
        data.load_fashion_mnist()
    assert not (cache / data.FASHION_MNIST_TRAIN_IMAGES).exists()
    assert _leftovers(cache) == []


@pytest.mark.parametrize(
    "error",
    [urllib.error.URLError("no route to host"), TimeoutError("timed out"), http.client.IncompleteRead(b"")],
)
def test_download_network_error_is_dataset_not_found(isolated, monkeypatch, error):
    def failing(url, timeout=None):
        raise error

    monkeypatch.setattr(urllib.request, "urlopen", failing)
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_fashion_mnist()
    assert info.value.__cause__ is error
    assert "failed" in str(info.value) and "apt-get install dataset-fashion-mnist" in str(info.value)
    cache = data.fashion_mnist_cache_dir()
    assert not cache.exists() or _leftovers(cache) == []


def test_download_false_does_not_download(isolated):
    with pytest.raises(data.DatasetNotFoundError, match="download=False"):
        data.load_fashion_mnist(download=False)


# ---------------------------------------------------------------------------
# The real data set, when installed
# ---------------------------------------------------------------------------


def test_real_fashion_mnist():
    found = data.find_fashion_mnist()
    if found is None:
        pytest.skip(
            "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist, or set PYCNN_DATA)"
        )
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist(found, download=False)
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), [1000] * 10)


# Debian's dataset-fashion-mnist recompressed nothing, but rewrote each gzip
# header: FNAME dropped, MTIME set to 2020-06-05. Rebuilding the original
# header (name + 2017 mtime) must reproduce the README's MD5s exactly, which
# checks both our constants and the package against the official files.
_ORIGINAL_MTIMES = {
    "train-images-idx3-ubyte.gz": 1504176606,
    "train-labels-idx1-ubyte.gz": 1504176606,
    "t10k-images-idx3-ubyte.gz": 1504176627,
    "t10k-labels-idx1-ubyte.gz": 1504176627,
}
_DEBIAN_HEADER = bytes.fromhex("1f8b0800ed0ada5e0003")


def test_md5_constants_match_debian_package():
    system = data.FASHION_MNIST_SYSTEM_DIR
    for name in data.FASHION_MNIST_FILES:
        path = system / name
        if not path.is_file():
            pytest.skip(f"{system} lacks {name} (apt-get install dataset-fashion-mnist)")
        blob = path.read_bytes()
        if hashlib.md5(blob).hexdigest() == data.FASHION_MNIST_MD5[name]:
            assert len(blob) == data.FASHION_MNIST_SIZES[name]
            continue  # an untouched copy of the official file
        if blob[:10] != _DEBIAN_HEADER:
            pytest.skip(f"{path} has an unknown gzip header {blob[:10].hex()}")
        original = (
            b"\x1f\x8b\x08\x08"
            + struct.pack("<I", _ORIGINAL_MTIMES[name])
            + b"\x00\x03"
            + name[: -len(".gz")].encode()
            + b"\x00"
            + blob[10:]
        )
        assert hashlib.md5(original).hexdigest() == data.FASHION_MNIST_MD5[name]
        assert len(original) == data.FASHION_MNIST_SIZES[name]


def test_constants():
    assert data.FASHION_MNIST_URL == "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    assert len(data.FASHION_MNIST_CLASSES) == 10
    assert data.FASHION_MNIST_CLASSES[0] == "T-shirt/top" and data.FASHION_MNIST_CLASSES[9] == "Ankle boot"
    assert set(data.FASHION_MNIST_MD5) == set(data.FASHION_MNIST_FILES) == set(data.FASHION_MNIST_SIZES)
    assert issubclass(data.DatasetNotFoundError, FileNotFoundError)


# ---------------------------------------------------------------------------
# Mini-batches
# ---------------------------------------------------------------------------


def _xy(n):
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 1, 2, 3)
    y = np.arange(n, dtype=np.int64) * 10
    return x, y


def _check_pairs(xb, yb):
    # Row i of x starts at 6*i and y[i] == 10*i: the pairing survived shuffling.
    np.testing.assert_array_equal(xb[:, 0, 0, 0] / 6 * 10, yb)


@pytest.mark.parametrize("n, batch_size", [(10, 3), (10, 5), (10, 1), (10, 10), (10, 64), (1, 1), (0, 4)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_every_sample_once(n, batch_size, shuffle):
    x, y = _xy(n)
    batches = list(data.iterate_minibatches(x, y, batch_size, shuffle=shuffle, seed=0))
    sizes = [len(yb) for _, yb in batches]
    assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    for xb, yb in batches:
        assert xb.shape[1:] == x.shape[1:] and xb.dtype == x.dtype and yb.dtype == y.dtype
        _check_pairs(xb, yb)
    seen = np.concatenate([yb for _, yb in batches]) if batches else np.array([], np.int64)
    np.testing.assert_array_equal(np.sort(seen), y)
    if not shuffle:
        np.testing.assert_array_equal(seen, y)


def test_unshuffled_batches_are_views():
    x, y = _xy(10)
    xb, yb = next(data.iterate_minibatches(x, y, 4, shuffle=False))
    assert np.shares_memory(xb, x) and np.shares_memory(yb, y)


def test_seeded_shuffle_reproducible():
    x, y = _xy(100)

    def order(seed):
        return np.concatenate([yb for _, yb in data.iterate_minibatches(x, y, 7, seed=seed)])

    np.testing.assert_array_equal(order(123), order(123))
    assert not np.array_equal(order(123), order(124))
    assert not np.array_equal(order(123), y)


def test_drop_last():
    x, y = _xy(10)
    batches = list(data.iterate_minibatches(x, y, 3, shuffle=True, seed=1, drop_last=True))
    assert [len(yb) for _, yb in batches] == [3, 3, 3]
    assert len(set(np.concatenate([yb for _, yb in batches]))) == 9
    assert list(data.iterate_minibatches(x, y, 11, drop_last=True)) == []
    assert len(list(data.iterate_minibatches(x, y, 5, drop_last=True))) == 2


def test_last_partial_batch():
    x, y = _xy(10)
    *_, (xb, yb) = data.iterate_minibatches(x, y, 4, shuffle=False)
    np.testing.assert_array_equal(yb, [80, 90])
    assert xb.shape == (2, 1, 2, 3)


def test_batch_argument_validation():
    x, y = _xy(10)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="batch_size must be >= 1"):
            data.iterate_minibatches(x, y, bad)  # raised at call time, not lazily
        with pytest.raises(ValueError, match="batch_size must be >= 1"):
            data.DataLoader(x, y, bad)
    for bad in (2.5, "4", True):
        with pytest.raises(TypeError, match="batch_size"):
            data.iterate_minibatches(x, y, bad)
    with pytest.raises(ValueError, match="same length, got 10 and 9"):
        data.iterate_minibatches(x, y[:9], 2)
    with pytest.raises(ValueError, match="same length"):
        data.DataLoader(x[:3], y, 2)
    assert len(list(data.iterate_minibatches(x, y, np.int64(4)))) == 3


def test_dataloader_len_and_reiteration():
    x, y = _xy(10)
    for bs, drop_last, expected in [(3, False, 4), (3, True, 3), (5, False, 2), (5, True, 2), (32, False, 1), (32, True, 0)]:
        loader = data.DataLoader(x, y, batch_size=bs, drop_last=drop_last, seed=0)
        assert len(loader) == expected
        for _ in range(2):  # re-iterable
            assert len(list(loader)) == expected
    assert len(data.DataLoader(*_xy(0), batch_size=4)) == 0
    assert "batch_size=32" in repr(data.DataLoader(x, y))


def test_dataloader_epochs_differ_but_sequence_reproducible():
    x, y = _xy(50)

    def epochs(loader, k=3):
        return [np.concatenate([yb for _, yb in loader]) for _ in range(k)]

    a = epochs(data.DataLoader(x, y, batch_size=8, seed=7))
    b = epochs(data.DataLoader(x, y, batch_size=8, seed=7))
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
        np.testing.assert_array_equal(np.sort(ea), y)
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])
    c = epochs(data.DataLoader(x, y, batch_size=8, seed=8))
    assert not np.array_equal(a[0], c[0])
    for e in epochs(data.DataLoader(x, y, batch_size=8, shuffle=False)):
        np.testing.assert_array_equal(e, y)


def test_generator_seed_is_drawn_from():
    x, y = _xy(30)
    rng = np.random.default_rng(5)
    first = np.concatenate([yb for _, yb in data.iterate_minibatches(x, y, 4, seed=rng)])
    second = np.concatenate([yb for _, yb in data.iterate_minibatches(x, y, 4, seed=rng)])
    assert not np.array_equal(first, second)
    replay = np.random.default_rng(5)
    again = np.concatenate([yb for _, yb in data.iterate_minibatches(x, y, 4, seed=replay)])
    np.testing.assert_array_equal(first, again)
