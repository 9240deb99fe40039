"""Max pooling forward on every ISA: values and indices, with and without indices, bit for bit.

The oracle is the rule the portable loop in csrc/pool/pool2d.cpp implements
(PyTorch's): scan each window in row-major order with the padding as -inf;
take an element when it is > the running maximum (the first maximum wins,
+0 and -0 tie) or when it is a NaN (the last NaN wins); the output is the
taken element itself (its sign of zero, its NaN payload) and the index its
h*W + w in the plane. ``oracle`` below computes that in NumPy, and agrees
with pycnn.reference.max_pool2d on NaN-free data. Sizes are awkward on
purpose: odd planes, rows that are not a multiple of 8 or 16 outputs, planes
of 1x1 to 3x3, and data full of ties, signed zeros, -inf and NaNs with
different payloads.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from conftest import ref
from pycnn import _core, nn
from pycnn import functional as F

pytestmark = pytest.mark.usefixtures("isa")


def oracle(x, k, s, p):
    """(values, int32 indices) of max pooling by the scan rule above, in float32."""
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    N, C, H, W = x.shape
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    xp = np.full((N, C, H + 2 * ph, W + 2 * pw), -np.inf, np.float32)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    oh, ow = np.arange(Ho)[:, None], np.arange(Wo)[None, :]
    best = np.full((N, C, Ho, Wo), -np.inf, np.float32)
    # until a tap beats -inf, the index is the window's first real element (PyTorch's start)
    idx = np.broadcast_to(np.maximum(oh * sh - ph, 0) * W + np.maximum(ow * sw - pw, 0), best.shape).copy()
    for i in range(kh):
        for j in range(kw):
            h, w = oh * sh + i, ow * sw + j  # in the padded plane
            v = xp[:, :, h, w]
            take = (v > best) | np.isnan(v)
            best = np.where(take, v, best)
            idx = np.where(take, (h - ph) * W + (w - pw), idx)
    return best, idx.astype(np.int32)


def awkward(rng, shape):
    """Data with ties, signed zeros, -inf, +inf and NaNs of different payloads (and signs)."""
    x = np.where(rng.random(shape) < 0.5, rng.integers(-3, 4, size=shape),
                 rng.standard_normal(shape)).astype(np.float32)
    u = x.view(np.uint32)
    r = rng.random(shape)
    u[r < 0.12] = 0x80000000  # -0.0
    x[(r >= 0.12) & (r < 0.2)] = 0.0
    x[(r >= 0.2) & (r < 0.25)] = -np.inf
    x[(r >= 0.25) & (r < 0.27)] = np.inf
    nan = r >= 0.97
    u[nan] = (np.uint32(0x7FC00000) | rng.integers(1, 1 << 22, size=int(nan.sum())).astype(np.uint32)
              | (rng.integers(0, 2, size=int(nan.sum())).astype(np.uint32) << np.uint32(31)))
    return x


def bits(a):
    return np.ascontiguousarray(a).view(np.uint32)


def check(x, k, s, p, **context):
    y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
    values = F.max_pool2d(x, k, s, p)
    ey, eidx = oracle(x, k, s, p)
    ctx = dict(shape=x.shape, k=k, s=s, p=p, **context)
    assert idx.dtype == np.int32 and y.shape == ey.shape, ctx
    np.testing.assert_array_equal(idx, eidx, err_msg=f"indices {ctx}")
    np.testing.assert_array_equal(bits(y), bits(ey), err_msg=f"values {ctx}")
    np.testing.assert_array_equal(bits(values), bits(ey), err_msg=f"values without indices {ctx}")


SIZES = [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 3), (3, 1), (4, 5), (5, 7), (7, 9), (9, 17),
         (6, 31), (5, 33), (3, 64), (4, 67), (11, 47)]
WINDOWS = [(k, s, p) for k, s in itertools.product(range(2, 6), range(1, 4)) for p in sorted({0, 1, k // 2})
           if p <= k // 2]


@pytest.mark.parametrize("k,s,p", WINDOWS, ids=[f"k{k}s{s}p{p}" for k, s, p in WINDOWS])
def test_square_windows_on_awkward_planes(k, s, p, rng):
    for H, W in SIZES:
        if H + 2 * p < k or W + 2 * p < k:
            continue
        check(awkward(rng, (2, 3, H, W)), (k, k), (s, s), (p, p))


@pytest.mark.parametrize("k,s,p", [((3, 2), (2, 1), (1, 0)), ((1, 5), (1, 3), (0, 2)), ((5, 1), (3, 1), (2, 0)),
                                   ((2, 4), (1, 4), (1, 2)), ((3, 3), (4, 5), (1, 1)), ((7, 7), (3, 3), (3, 3)),
                                   ((1, 1), (1, 1), (0, 0)), ((1, 1), (2, 2), (0, 0))],
                         ids=lambda v: "x".join(map(str, v)))
def test_rectangular_windows(k, s, p, rng):
    for H, W in [(1, 1), (3, 3), (8, 16), (13, 35), (7, 100)]:
        if H + 2 * p[0] < k[0] or W + 2 * p[1] < k[1]:
            continue
        check(awkward(rng, (1, 2, H, W)), k, s, p)


def test_resnet_stem_pool(rng):
    # ResNet-18's MaxPool2d(3, 2, 1) on its 112x112 planes (smaller batch), and on odd neighbours
    for H, W in [(112, 112), (111, 113), (56, 57)]:
        x = np.maximum(rng.standard_normal((1, 4, H, W)), 0).astype(np.float32)  # a ReLU's output: tied zeros
        check(x, (3, 3), (2, 2), (1, 1))
        check(awkward(rng, (1, 4, H, W)), (3, 3), (2, 2), (1, 1))


def test_large_strides(rng):
    # a gather per tap (stride 1000 on a 2500-wide row), and strides so large that
    # the row kernels' int32 lane columns could overflow: the portable loop runs
    check(awkward(rng, (1, 2, 2, 2500)), (1, 7), (1, 1000), (0, 3))
    check(awkward(rng, (1, 2, 3, 5)), (2, 3), (2 ** 30, 2 ** 30), (1, 1))
    check(awkward(rng, (2, 1, 4, 40)), (3, 3), (3, 2 ** 31 - 1), (1, 1))


def test_oracle_agrees_with_the_reference(rng):
    for k, s, p in [(2, 2, 0), (3, 2, 1), (3, 1, 1), (5, 3, 2)]:
        x = rng.integers(-2, 3, size=(2, 2, 9, 11)).astype(np.float32)
        x[0, 0, 0, :4] = -np.inf
        y, _ = oracle(x, (k, k), (s, s), (p, p))
        np.testing.assert_array_equal(y, ref.max_pool2d(x, k, s, p))


def test_nan_windows():
    x = np.arange(2 * 7 * 9, dtype=np.float32).reshape(1, 2, 7, 9)
    nan_a = np.array([0x7FC00001], np.uint32).view(np.float32)[0]
    nan_b = np.array([0xFFC00002], np.uint32).view(np.float32)[0]
    x[0, 0, 2, 3] = nan_a
    x[0, 0, 3, 4] = nan_b  # later in the windows that hold both: its payload is reported
    x[0, 1, :, :] = -np.inf
    x[0, 1, 6, 8] = nan_a
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert idx[0, 0, 1, 1] == 2 * 9 + 3 and bits(y)[0, 0, 1, 1] == 0x7FC00001  # window rows 1-3, cols 1-3
    assert idx[0, 0, 2, 2] == 3 * 9 + 4 and bits(y)[0, 0, 2, 2] == 0xFFC00002  # rows 3-5, cols 3-5: only nan_b
    assert idx[0, 0, 1, 2] == 3 * 9 + 4 and bits(y)[0, 0, 1, 2] == 0xFFC00002  # rows 1-3, cols 3-5: both
    assert np.isneginf(y[0, 1, :3, :4]).all() and np.isnan(y[0, 1, 3, 4])
    # all -inf windows point at their first real element
    assert idx[0, 1, 0, 0] == 0 and idx[0, 1, 1, 1] == 9 + 1 and idx[0, 1, 0, 3] == 5
    check(x, (3, 3), (2, 2), (1, 1))


def test_signed_zero_ties_keep_the_first_in_row_major_order():
    # Windows where the column-first order would pick a different zero than the row-major scan.
    x = np.full((1, 1, 2, 2), -1.0, np.float32)
    x[0, 0, 0, 1] = -0.0
    x[0, 0, 1, 0] = 0.0
    for with_idx in (True, False):
        y = F.max_pool2d(x, 2, return_indices=with_idx)
        y = y[0] if with_idx else y
        assert bits(y)[0, 0, 0, 0] == 0x80000000  # -0.0, scanned before +0.0
    x = np.full((1, 1, 3, 40), -1.0, np.float32)
    x[0, 0, 0, 1::2] = -0.0
    x[0, 0, 1, 0::2] = 0.0
    check(x, (3, 3), (2, 2), (1, 1))
    check(x, (2, 2), (1, 1), (0, 0))


def test_threads_give_the_same_bits(rng):
    import pycnn
    x = awkward(rng, (3, 5, 23, 37))
    before = pycnn.get_num_threads()
    try:
        out = []
        for nt in (1, 2, 3):
            pycnn.set_num_threads(nt)
            y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
            out.append((bits(y), idx, bits(F.max_pool2d(x, 3, 2, 1))))
    finally:
        pycnn.set_num_threads(before)
    for o in out[1:]:
        for a, b in zip(out[0], o):
            np.testing.assert_array_equal(a, b)


def test_one_d_pool_without_indices(rng):
    x = awkward(rng, (2, 3, 37))
    y, idx = F.max_pool1d(x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(bits(F.max_pool1d(x, 3, 2, 1)), bits(y))
    ey, eidx = oracle(x[:, :, None, :], (1, 3), (1, 2), (0, 1))
    np.testing.assert_array_equal(idx, eidx[:, :, 0, :])


# ---------------------------------------------------------------------------
# nn.MaxPool2d: eval mode computes no indices, with the same values
# ---------------------------------------------------------------------------

def _forbid_indexed_forward(monkeypatch):
    def boom(*args):
        raise AssertionError("eval-mode forward computed indices")
    monkeypatch.setattr(_core, "max_pool2d_fwd", boom)


def test_eval_forward_computes_no_indices_and_matches_training(rng, monkeypatch):
    x = awkward(rng, (2, 3, 13, 19))
    for layer, shape in [(nn.MaxPool2d(3, 2, 1), x.shape), (nn.MaxPool2d(2), x.shape),
                         (nn.MaxPool1d(3, 2, 1), (2, 3, 19))]:
        xi = x if len(shape) == 4 else x[:, :, 0, :].copy()
        y_train = layer(xi)
        assert layer.backward(np.ones_like(y_train)).shape == xi.shape
        layer.eval()
        with monkeypatch.context() as m:
            _forbid_indexed_forward(m)
            y_eval = layer(xi)
        np.testing.assert_array_equal(bits(y_eval), bits(y_train), err_msg=repr(layer))
        with pytest.raises(RuntimeError, match="eval mode"):
            layer.backward(np.ones_like(y_eval))
        layer.train()
        np.testing.assert_array_equal(bits(layer(xi)), bits(y_train))
        layer.backward(np.ones_like(y_train))


STEMS = {
    # a convolution with its ReLU fused, then the pool (after_relu=True in training)
    "conv-relu-pool": lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                                            nn.Flatten(), nn.Linear(4 * 8 * 8, 5)),
    # ResNet's stem: conv - BatchNorm - ReLU - pool (eval mode folds the BatchNorm into the conv)
    "conv-bn-relu-pool": lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                                               nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Flatten(),
                                               nn.Linear(4 * 8 * 8, 5)),
    # a ReLU on its own before the pool
    "relu-pool": lambda: nn.Sequential(nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Flatten(), nn.Linear(3 * 8 * 8, 5)),
}


@pytest.mark.parametrize("stem", list(STEMS))
def test_relu_then_max_pool_in_a_sequential(stem, rng, monkeypatch):
    x = rng.standard_normal((2, 3, 15, 15)).astype(np.float32)
    model = STEMS[stem]()
    pool_at = [type(m) for m in model.children()].index(nn.MaxPool2d)
    y_train = model(x)
    model.backward(np.ones_like(y_train))
    model.eval()
    with monkeypatch.context() as m:
        _forbid_indexed_forward(m)
        y_eval = model(x)
        # the fused path's entry, called directly in eval mode, takes the same route
        pool = model[pool_at]
        a = np.maximum(x[:, :1], 0)
        np.testing.assert_array_equal(bits(pool._forward(a, after_relu=True)), bits(F.max_pool2d(a, 3, 2, 1)))
    # eval mode folds BatchNorm with its running statistics: compare against the
    # same model run unfused, module by module, also in eval mode
    expected = x
    for m in model.children():
        expected = m(expected)
    np.testing.assert_allclose(y_eval, expected, rtol=1e-4, atol=1e-5)
    model.train()
    y_again = model(x)
    assert y_again.shape == y_train.shape
    model.backward(np.ones_like(y_again))
