"""Property-based tests (hypothesis): random shapes and hyper-parameters against pycnn.reference.

Every kernel family with shape-dependent code paths gets random geometries:
pooling (max, average with both divisor rules, adaptive; the dedicated 2x2
stride-2 max path included), the losses, linear (every ISA's GEMM
microkernel and its edge tiles), and convolution in the corners the
fixed-case and small-channel property tests of test_conv.py leave out:
channel counts that cross the microkernel tile sizes, 1, 2, 3 or 8 threads
(more threads than images: the split inside one image), the fused ReLU
epilogue. Examples also check dtypes and shapes, and that inputs are left
unmodified.

Examples per test are kept small so the file runs in seconds; set
PYCNN_PROPERTY_SCALE=10 (a multiplier) for a longer search.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import assert_close, f64, tol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pycnn
from pycnn import functional as F
from pycnn import reference as ref

_SCALE = float(os.environ.get("PYCNN_PROPERTY_SCALE", "1"))


def ex(n: int) -> int:
    """Examples for a test: n, times $PYCNN_PROPERTY_SCALE."""
    return max(1, int(n * _SCALE))


# Function-scoped fixtures (isa) only switch the kernel table: nothing to reset between examples.
FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def data(seed, shape, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


class threads:
    """Context manager: run with n pycnn threads."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.old = pycnn.get_num_threads()
        pycnn.set_num_threads(self.n)

    def __exit__(self, *exc):
        pycnn.set_num_threads(self.old)


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------

@st.composite
def pool_geometry(draw, square_2x2_often=True):
    if square_2x2_often and draw(st.integers(0, 3)) == 0:
        kh = kw = sh = sw = 2  # the dedicated max-pool path
        ph = pw = 0
    else:
        kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    H = draw(st.integers(max(1, kh - 2 * ph), 13))
    W = draw(st.integers(max(1, kw - 2 * pw), 13))
    N, C = draw(st.integers(0, 3)), draw(st.integers(1, 4))
    return (N, C, H, W), (kh, kw), (sh, sw), (ph, pw)


@settings(max_examples=ex(80), deadline=None, suppress_health_check=FIXTURE_OK)
@given(g=pool_geometry(), seed=st.integers(0, 2**16), nt=st.sampled_from([1, 2, 3, 8]))
def test_max_pool2d_property(g, seed, nt):
    shape, k, s, p = g
    x = data(seed, shape)
    x0 = x.copy()
    with threads(nt):
        y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
        dy = data(seed + 1, y.shape)
        dx = F.max_pool2d_backward(dy, idx, shape, k, s, p)
        # Fused ReLU gradient: the same as masking dy by y > 0 first.
        dx_fused = F.max_pool2d_backward(dy, idx, shape, k, s, p, relu_output=y)
    ctx = dict(shape=shape, k=k, s=s, p=p, nt=nt)
    assert y.dtype == np.float32 and idx.dtype == np.int32
    np.testing.assert_array_equal(y, ref.max_pool2d(x, k, s, p).astype(np.float32), err_msg=str(ctx))
    # Overlapping windows that pick the same element add their gradients: summation order may differ.
    assert_close(dx, ref.max_pool2d_backward(f64(dy), f64(x), k, s, p), **tol(k[0] * k[1]), **ctx)
    np.testing.assert_array_equal(dx_fused, F.max_pool2d_backward(np.where(y > 0, dy, 0), idx, shape, k, s, p),
                                  err_msg=str(ctx))
    if y.size:
        assert idx.min() >= 0 and idx.max() < shape[2] * shape[3]
    np.testing.assert_array_equal(x, x0)


@settings(max_examples=ex(80), deadline=None)
@given(g=pool_geometry(square_2x2_often=False), include=st.booleans(), seed=st.integers(0, 2**16),
       nt=st.sampled_from([1, 2, 3, 8]))
def test_avg_pool2d_property(g, include, seed, nt):
    shape, k, s, p = g
    x = data(seed, shape)
    with threads(nt):
        y = F.avg_pool2d(x, k, s, p, count_include_pad=include)
        dy = data(seed + 1, y.shape)
        dx = F.avg_pool2d_backward(dy, shape, k, s, p, count_include_pad=include)
    ctx = dict(shape=shape, k=k, s=s, p=p, include=include)
    assert_close(y, ref.avg_pool2d(f64(x), k, s, p, include), **tol(k[0] * k[1]), **ctx)
    assert_close(dx, ref.avg_pool2d_backward(f64(dy), shape, k, s, p, include), **tol(k[0] * k[1]), **ctx)


@settings(max_examples=ex(60), deadline=None)
@given(N=st.integers(0, 3), C=st.integers(1, 4), H=st.integers(1, 15), W=st.integers(1, 15),
       oh=st.integers(1, 8), ow=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_adaptive_avg_pool2d_property(N, C, H, W, oh, ow, seed):
    x = data(seed, (N, C, H, W))
    y = F.adaptive_avg_pool2d(x, (oh, ow))
    dy = data(seed + 1, y.shape)
    dx = F.adaptive_avg_pool2d_backward(dy, x.shape)
    ctx = dict(shape=x.shape, out=(oh, ow))
    assert_close(y, ref.adaptive_avg_pool2d(f64(x), (oh, ow)), **tol(H * W), **ctx)
    assert_close(dx, ref.adaptive_avg_pool2d_backward(f64(dy), x.shape), **tol(H * W), **ctx)


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------

@settings(max_examples=ex(80), deadline=None)
@given(N=st.integers(1, 40), classes=st.integers(1, 70), scale=st.sampled_from([0.1, 1.0, 30.0, 1e3]),
       label_dtype=st.sampled_from([np.int64, np.int32, np.uint8]), seed=st.integers(0, 2**16))
def test_cross_entropy_property(N, classes, scale, label_dtype, seed):
    z = data(seed, (N, classes), scale)
    t = np.random.default_rng(seed).integers(0, classes, N).astype(label_dtype)
    loss, probs = F.cross_entropy_forward(z, t)
    d = F.cross_entropy_backward(probs, t)
    ctx = dict(N=N, classes=classes, scale=scale)
    expected = float(ref.cross_entropy(f64(z), t.astype(np.int64)))
    assert np.isfinite(loss)
    assert abs(loss - expected) <= 1e-5 * max(1.0, abs(expected)) * np.sqrt(classes), ctx
    assert_close(probs.sum(axis=1), np.ones(N), rtol=1e-5, atol=1e-5, **ctx)
    assert_close(d, ref.cross_entropy_backward(f64(z), t.astype(np.int64)), rtol=1e-4, atol=1e-6, **ctx)
    assert F.cross_entropy(z, t, reduction="sum") == pytest.approx(loss * N, rel=1e-12)


@settings(max_examples=ex(60), deadline=None)
@given(shape=st.lists(st.integers(0, 7), min_size=0, max_size=4).map(tuple), seed=st.integers(0, 2**16),
       scale=st.sampled_from([1e-3, 1.0, 1e3]))
def test_mse_loss_property(shape, seed, scale):
    x, t = data(seed, shape, scale), data(seed + 1, shape, scale)
    loss = F.mse_loss(x, t)
    g = F.mse_loss_backward(x, t)
    assert g.shape == x.shape and g.dtype == np.float32
    if x.size == 0:
        assert np.isnan(loss)
        return
    expected = float(ref.mse_loss(f64(x), f64(t)))
    assert loss == pytest.approx(expected, rel=1e-5), dict(shape=shape, scale=scale)
    assert_close(g, ref.mse_loss_backward(f64(x), f64(t)), rtol=1e-5, atol=1e-12 * scale, shape=shape)


# ---------------------------------------------------------------------------
# linear: every ISA's GEMM microkernel, edge tiles included
# ---------------------------------------------------------------------------

@pytest.mark.usefixtures("isa")
@settings(max_examples=ex(40), deadline=None, suppress_health_check=FIXTURE_OK)
@given(N=st.integers(0, 40), fin=st.integers(1, 70), fout=st.integers(1, 70), bias=st.booleans(),
       relu=st.booleans(), nt=st.sampled_from([1, 2, 3, 8]), seed=st.integers(0, 2**16))
def test_linear_property(N, fin, fout, bias, relu, nt, seed):
    x, w = data(seed, (N, fin)), data(seed + 1, (fout, fin))
    b = data(seed + 2, (fout,)) if bias else None
    with threads(nt):
        y = F.linear(x, w, b, relu=relu)
        dy = data(seed + 3, y.shape)
        dx, dw, db = F.linear_backward(dy, x, w, bias=bias)
    ctx = dict(N=N, fin=fin, fout=fout, bias=bias, relu=relu, nt=nt)
    ry = ref.linear(f64(x), f64(w), f64(b))
    assert_close(y, np.maximum(ry, 0) if relu else ry, **tol(fin), **ctx)
    rdx, rdw, rdb = ref.linear_backward(f64(dy), f64(x), f64(w))
    assert_close(dx, rdx, **tol(fout), **ctx)
    assert_close(dw, rdw, **tol(N), **ctx)
    if bias:
        assert_close(db, rdb, **tol(N), **ctx)


# ---------------------------------------------------------------------------
# conv2d: wide channel counts, threads, fused ReLU (test_conv.py covers small ones)
# ---------------------------------------------------------------------------

@st.composite
def wide_conv(draw):
    groups = draw(st.sampled_from([1, 1, 1, 2, 4]))
    C = groups * draw(st.integers(1, 12))
    K = groups * draw(st.integers(1, 40 // groups))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s = draw(st.integers(1, 2))
    p = draw(st.integers(0, 1))
    d = draw(st.integers(1, 2))
    H = draw(st.integers(max(1, d * (kh - 1) + 1 - 2 * p), 11))
    W = draw(st.integers(max(1, d * (kw - 1) + 1 - 2 * p), 11))
    N = draw(st.integers(1, 5))
    return (N, C, H, W), (K, C // groups, kh, kw), dict(stride=s, padding=p, dilation=d, groups=groups)


@pytest.mark.usefixtures("isa")
@settings(max_examples=ex(50), deadline=None, suppress_health_check=FIXTURE_OK)
@given(g=wide_conv(), algo=st.sampled_from(["im2col", "direct"]), relu=st.booleans(),
       nt=st.sampled_from([1, 2, 3, 8]), seed=st.integers(0, 2**16))
def test_conv2d_wide_property(g, algo, relu, nt, seed):
    xs, ws, hp = g
    x, w, b = data(seed, xs), data(seed + 1, ws), data(seed + 2, ws[:1])
    with threads(nt):
        y = F.conv2d(x, w, b, algo=algo, relu=relu, **hp)
        dy = data(seed + 3, y.shape)
        dx, dw, db = F.conv2d_backward(dy, x, w, algo=algo, **hp)
    ctx = dict(x=xs, w=ws, algo=algo, relu=relu, nt=nt, **hp)
    red = ws[1] * ws[2] * ws[3]
    ry = ref.conv2d(f64(x), f64(w), f64(b), **hp)
    assert_close(y, np.maximum(ry, 0) if relu else ry, **tol(red), **ctx)
    rdx, rdw, rdb = ref.conv2d_backward(f64(dy), f64(x), f64(w), **hp)
    spatial = y.shape[0] * y.shape[2] * y.shape[3]
    assert_close(dx, rdx, **tol(ws[0] // hp["groups"] * ws[2] * ws[3]), grad="dx", **ctx)
    assert_close(dw, rdw, **tol(spatial), grad="dw", **ctx)
    assert_close(db, rdb, **tol(spatial), grad="db", **ctx)
