"""The cache that reuses the memory of pycnn's output arrays (csrc/runtime/buffer_cache.h).

Reused memory holds whatever its previous array held, so every kernel must
overwrite its whole output: each op below runs once, its output is filled
with NaN and dropped (its block goes back to the cache), and the op runs
again on the same shapes -- the second result must equal the first exactly.
"""
import gc

import numpy as np
import pytest

import pycnn
from pycnn import _core
from pycnn import functional as F

pytestmark = pytest.mark.usefixtures("isa")

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4, 9, 11)).astype(np.float32)
W = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
B = rng.standard_normal(6).astype(np.float32)
Y = F.conv2d(X, W, B, padding=1)
DY = rng.standard_normal(Y.shape).astype(np.float32)
P, IDX = F.max_pool2d(X, 2, return_indices=True)
DP = rng.standard_normal(P.shape).astype(np.float32)
XL = rng.standard_normal((5, 7)).astype(np.float32)
WL = rng.standard_normal((3, 7)).astype(np.float32)
DYL = rng.standard_normal((5, 3)).astype(np.float32)
LABELS = np.array([0, 2, 1, 1, 0])

OPS = {
    "conv2d im2col": lambda: F.conv2d(X, W, B, padding=1, algo="im2col"),
    "conv2d direct": lambda: F.conv2d(X, W, B, padding=1, algo="direct"),
    "conv2d grad_input": lambda: F.conv2d_backward(DY, X, W, padding=1, weight_grad=False)[0],
    "conv2d grad_input strided": lambda: F.conv2d_backward(
        F.conv2d(X, W, stride=2), X, W, stride=2, weight_grad=False)[0],
    "max_pool2d": lambda: F.max_pool2d(X, 2, return_indices=True)[0],
    "max_pool2d indices": lambda: F.max_pool2d(X, 2, return_indices=True)[1],
    "max_pool2d 3x3": lambda: F.max_pool2d(X, 3, 2, 1),
    "max_pool2d_backward": lambda: F.max_pool2d_backward(DP, IDX, X.shape, 2),
    "max_pool2d_backward relu": lambda: F.max_pool2d_backward(DP, IDX, X.shape, 2, relu_output=P),
    "avg_pool2d_backward": lambda: F.avg_pool2d_backward(DP, X.shape, 2),
    "relu_backward": lambda: F.relu_backward(DY, Y),
    "sigmoid": lambda: F.sigmoid(X),
    "linear": lambda: F.linear(XL, WL),
    "linear grad_input": lambda: F.linear_backward(DYL, XL, WL, weight_grad=False)[0],
    "cross_entropy_backward": lambda: F.cross_entropy_backward(F.cross_entropy_forward(DYL, LABELS)[1], LABELS),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_outputs_overwrite_reused_memory(name):
    first = OPS[name]()
    expected = first.copy()
    first.fill(np.nan) if first.dtype.kind == "f" else first.fill(-1)
    before = _core.buffer_cache_info()["hits"]
    del first
    gc.collect()
    second = OPS[name]()
    assert _core.buffer_cache_info()["hits"] > before, "the op's output did not come from the cache"
    np.testing.assert_array_equal(second, expected, err_msg=name)


def test_live_arrays_never_share_memory():
    ys = [F.conv2d(X, W, B, padding=1) for _ in range(4)]
    for i in range(len(ys)):
        for j in range(i):
            assert not np.shares_memory(ys[i], ys[j])


def test_outputs_are_ordinary_writeable_arrays():
    y = F.conv2d(X, W, B, padding=1)
    assert y.flags.writeable and y.flags.c_contiguous and y.dtype == np.float32
    assert y.ctypes.data % 64 == 0  # kernels may rely on 64-byte alignment of their outputs
    y += 1  # in place works
    view = y[0]
    del y
    gc.collect()
    z = F.conv2d(X, W, B, padding=1)  # the view keeps the first block alive: no sharing
    assert not np.shares_memory(view, z)


def test_limit_bounds_what_is_held_and_zero_disables():
    info = _core.buffer_cache_info()
    old = info["limit_bytes"]
    try:
        pycnn.set_buffer_cache_limit(0)
        assert _core.buffer_cache_info()["held_bytes"] == 0
        y = F.conv2d(X, W, B, padding=1)
        del y
        gc.collect()
        assert _core.buffer_cache_info()["held_bytes"] == 0
        pycnn.set_buffer_cache_limit(1 << 20)
        ys = [F.conv2d(X, W, B, padding=1) for _ in range(200)]  # 200 x 8 KiB blocks
        del ys
        gc.collect()
        assert 0 < _core.buffer_cache_info()["held_bytes"] <= 1 << 20
    finally:
        pycnn.set_buffer_cache_limit(old)


@pytest.mark.parametrize("bad", [-1, 1.5, "1", True])
def test_limit_rejects_bad_values(bad):
    with pytest.raises((TypeError, ValueError)):
        pycnn.set_buffer_cache_limit(bad)
