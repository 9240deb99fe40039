"""conv2d with algo='winograd' (F(4x4, 3x3)): forward, backward-data and
backward-weight against the float64 reference, on every ISA and at 1 and 2
threads.

Tolerance: Winograd computes each output through transforms whose
coefficients reach 8 (A^T) and 5 (B^T) in magnitude and cancel, so its
float32 round-off is larger than a direct sum's. Measured (float64
reference, unit-variance data, N=4, 16x16, K=32, every ISA): max abs error
/ sqrt(R) with R = 9*C the reduction length is 0.5-0.7e-5 for C = 16,
0.8-1.3e-5 for C = 64 and 1.6-2.3e-5 for C = 256 (im2col: 0.16-0.26e-5).
We allow 1e-4 * sqrt(R) * scale, about 4x the worst measured value (5x
im2col's tolerance in test_conv.py); an indexing or transform bug gives
errors of order 1 and always fails. The weight gradient's error is 4-5x
im2col's (benchmarks/winograd_error.py) and gets the same rule with R the
number of output pixels it sums over.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import pycnn
from pycnn import _core
from pycnn import functional as F
from pycnn import reference as ref

pytestmark = pytest.mark.usefixtures("isa")


def _check(name, actual, expected, reduction_length, params):
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape} for {params}"
    assert actual.dtype == np.float32
    if actual.size == 0:
        return
    scale = max(1.0, float(np.abs(expected).max()) / np.sqrt(reduction_length))
    tol = 1e-4 * np.sqrt(reduction_length) * scale + 1e-6
    err = float(np.abs(actual.astype(np.float64) - expected).max())
    assert err <= tol, f"{name}: max abs error {err:.3g} > tolerance {tol:.3g} for {params}"



def _f64(a):
    return None if a is None else a.astype(np.float64)


def _run_case(N, C, H, W, K, padding, bias, relu, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C, 3, 3)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32) if bias else None
    params = dict(N=N, C=C, H=H, W=W, K=K, padding=padding, bias=bias, relu=relu)
    y = F.conv2d(x, w, b, padding=padding, algo="winograd", relu=relu)
    y_ref = ref.conv2d(_f64(x), _f64(w), _f64(b), padding=padding)
    if relu:
        y_ref = np.maximum(y_ref, 0.0)
    _check("forward", y, y_ref, 9 * C, params)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    # parameter gradients accumulate: start from non-zero buffers
    dw0 = rng.standard_normal(w.shape).astype(np.float32)
    db0 = rng.standard_normal(K).astype(np.float32)
    dx, dw, db = F.conv2d_backward(dy, x, w, padding=padding, algo="winograd", grad_weight=dw0.copy(),
                                   grad_bias=db0.copy() if bias else None, bias=bias)
    dx_ref, dw_ref, db_ref = ref.conv2d_backward(_f64(dy), _f64(x), _f64(w), padding=padding)
    _check("grad_input", dx, dx_ref, 9 * K, params)
    pixels = N * y.shape[2] * y.shape[3]
    _check("grad_weight", dw, dw0 + dw_ref, pixels, params)
    if bias:
        _check("grad_bias", db, db0 + db_ref, pixels, params)


# (N, C, H, W, K, padding, bias, relu): every size of the brief's list appears
# as H and W (partial edge tiles of 1, 2 and 3 rows/columns), odd batches,
# channel counts off every vector width, padding 0 / 1 / 'same'.
CASES = [
    (1, 1, 1, 1, 1, 1, True, False),
    (3, 3, 2, 2, 3, 1, False, True),
    (1, 17, 3, 3, 17, 0, True, True),
    (3, 3, 5, 7, 17, 1, True, False),
    (5, 17, 7, 5, 3, "same", False, False),
    (1, 64, 13, 17, 64, 1, True, True),
    (3, 1, 17, 13, 1, 0, True, False),
    (1, 3, 30, 30, 64, "same", True, True),
    (7, 17, 13, 7, 17, 1, False, True),
    (2, 64, 30, 17, 3, 0, True, False),
    (5, 3, 1, 30, 3, 1, True, False),
    (1, 17, 30, 1, 17, 1, False, False),
    (9, 64, 5, 5, 64, 1, True, True),  # more images than threads, tiles from many images per lane group
    (33, 3, 7, 7, 5, 1, True, False),  # lane groups spanning ~17 images
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "N{}C{}H{}W{}K{}p{}{}{}".format(
    *c[:6], "b" if c[6] else "", "r" if c[7] else ""))
def test_winograd_matches_reference(case, threads):
    _run_case(*case, seed=zlib.crc32(repr(case).encode()))


@pytest.mark.parametrize("H", [1, 2, 3, 5, 7, 13, 17, 30])
def test_winograd_every_height_and_width(H, threads):
    for W in [1, 2, 3, 5, 7, 13, 17, 30]:
        for padding in ([0, 1, "same"] if min(H, W) >= 3 else [1, "same"]):
            _run_case(3, 3, H, W, 5, padding, True, False, seed=H * 100 + W)


def test_winograd_large_channels(threads):
    """Depth slices of the GEMM (C > the microkernel's KC) and K chunks at batch 1."""
    _run_case(1, 600, 6, 6, 40, 1, True, False, seed=1)


# Transformed weights beyond L2 (36 x 264 x 300 floats: 11 MB) and 8 tiles (one block for every ISA):
# per-call weights are transformed piece by piece (winograd_run_streamed), in
# row chunks (260 = 7 x 36 + 8: a partial last chunk and panel) and depth
# slices (300 = 128 + 128 + 44); backward-data runs the same with 300 rows.
STREAMED = (2, 300, 7, 6, 260, 1, True, True)


def test_winograd_streamed_weights_match_reference(threads):
    _run_case(*STREAMED, seed=7)


def test_winograd_streamed_weights_thread_independent():
    N, C, H, W, K = STREAMED[:5]
    rng = np.random.default_rng(8)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((N, K, H, W)).astype(np.float32)
    old = pycnn.get_num_threads()
    runs = []
    try:
        for nt in (1, 2, 3):
            pycnn.set_num_threads(nt)
            runs.append((F.conv2d(x, w, padding=1, algo="winograd"),
                         F.conv2d_backward(dy, x, w, padding=1, algo="winograd", bias=False)[0]))
    finally:
        pycnn.set_num_threads(old)
    for later in runs[1:]:
        for a, c in zip(runs[0], later):
            np.testing.assert_array_equal(a, c)


def test_winograd_asymmetric_padding():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 9, 11)).astype(np.float32)
    w = rng.standard_normal((7, 5, 3, 3)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    for pads in [(0, 2, 1, 0), (2, 0, 0, 2), (1, 2, 2, 1)]:  # (top, bottom, left, right)
        y = _core.conv2d_fwd(x, w, b, (1, 1), pads, (1, 1), 1, "winograd", False)
        xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), pads[:2], pads[2:]))
        _check("forward", y, ref.conv2d(xp, _f64(w), _f64(b)), 45, dict(pads=pads))
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx = _core.conv2d_bwd_data(dy, w, x.shape, (1, 1), pads, (1, 1), 1, "winograd")
        dxp, dwp, _ = ref.conv2d_backward(_f64(dy), xp, _f64(w))
        _check("grad_input", dx, dxp[:, :, pads[0]:pads[0] + 9, pads[2]:pads[2] + 11], 63, dict(pads=pads))
        dw = np.zeros_like(w)
        _core.conv2d_bwd_weight(dy, x, dw, None, (1, 1), pads, (1, 1), 1, "winograd")
        _check("grad_weight", dw, dwp, dy.shape[0] * dy.shape[2] * dy.shape[3], dict(pads=pads))


def test_winograd_repeatable_bitwise_and_thread_independent():
    """Bit-identical on every run, and for every thread count (no reduction crosses work items)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 24, 13, 11)).astype(np.float32)
    w = rng.standard_normal((20, 24, 3, 3)).astype(np.float32)
    b = rng.standard_normal(20).astype(np.float32)
    dy = rng.standard_normal((5, 20, 13, 11)).astype(np.float32)
    old = pycnn.get_num_threads()
    runs = []
    try:
        for nt in (1, 1, 2, 2, 3):
            pycnn.set_num_threads(nt)
            y = F.conv2d(x, w, b, padding=1, algo="winograd")
            dx, dw, db = F.conv2d_backward(dy, x, w, padding=1, algo="winograd")
            runs.append((y, dx, dw, db))
    finally:
        pycnn.set_num_threads(old)
    for later in runs[1:]:
        for a, c in zip(runs[0], later):
            np.testing.assert_array_equal(a, c)


def test_winograd_nan_and_inf_propagate():
    """Every output whose window holds a NaN (Inf) is NaN (non-finite). Winograd may also
    turn other outputs of the same 4x4 tile into NaN (its transforms mix a patch's
    36 inputs); outputs of tiles whose 6x6 patch is finite stay finite."""
    x = np.ones((1, 1, 12, 12), np.float32)
    x[0, 0, 2, 2] = np.nan
    x[0, 0, 9, 10] = np.inf
    w = np.ones((2, 1, 3, 3), np.float32)
    y = F.conv2d(x, w, padding=1, algo="winograd")
    assert np.isnan(y[:, :, 1:4, 1:4]).all()
    assert not np.isfinite(y[:, :, 8:11, 9:12]).any()
    assert np.isfinite(y[:, :, 4:8, :8]).all()  # tile rows/cols 1 read input rows 3..8, cols 3..8 only
    relu = F.conv2d(x, w, padding=1, algo="winograd", relu=True)
    assert np.isnan(relu[:, :, 1:4, 1:4]).all()


def test_winograd_empty_batch():
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    y = F.conv2d(x, w, np.ones(4, np.float32), padding=1, algo="winograd")
    assert y.shape == (0, 4, 8, 8)
    dx, dw, db = F.conv2d_backward(y, x, w, padding=1, algo="winograd")
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw, 0.0)
    np.testing.assert_array_equal(db, 0.0)


# Shapes Winograd cannot do: forcing it runs im2col (same bits).
INELIGIBLE = [
    ((2, 4, 9, 9), (6, 4, 5, 5), dict(padding=2)),  # 5x5
    ((2, 4, 9, 9), (6, 4, 3, 3), dict(stride=2, padding=1)),
    ((2, 4, 9, 9), (6, 4, 3, 3), dict(dilation=2, padding=2)),
    ((2, 4, 9, 9), (6, 2, 3, 3), dict(groups=2, padding=1)),
    ((2, 4, 9, 9), (6, 4, 1, 3), dict(padding=(0, 1))),
]


@pytest.mark.parametrize("xs,ws,hp", INELIGIBLE, ids=["5x5", "stride2", "dilation2", "groups2", "1x3"])
def test_winograd_forced_on_ineligible_shape_runs_im2col(xs, ws, hp):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    y = F.conv2d(x, w, b, algo="winograd", **hp)
    np.testing.assert_array_equal(y, F.conv2d(x, w, b, algo="im2col", **hp))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    got = F.conv2d_backward(dy, x, w, algo="winograd", **hp)
    want = F.conv2d_backward(dy, x, w, algo="im2col", **hp)
    for a, c in zip(got, want):
        np.testing.assert_array_equal(a, c)


def test_winograd_bwd_data_with_large_padding_runs_im2col():
    """Padding 3 > kernel - 1: the flipped-weights forward would need negative padding."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((2, 4, 10, 10)).astype(np.float32)
    got, _, _ = F.conv2d_backward(dy, x, w, padding=3, algo="winograd", weight_grad=False)
    want, _, _ = F.conv2d_backward(dy, x, w, padding=3, algo="im2col", weight_grad=False)
    np.testing.assert_array_equal(got, want)
    y = F.conv2d(x, w, padding=3, algo="winograd")  # the forward itself is eligible
    _check("forward", y, ref.conv2d(_f64(x), _f64(w), padding=3), 27, {})


def test_winograd_resolve_algo():
    def resolved(w_shape, stride=(1, 1), dilation=(1, 1), groups=1, algo="winograd"):
        return _core.conv2d_resolve_algo((2, 4, 9, 9), w_shape, stride, (1, 1, 1, 1), dilation, groups, algo)

    assert resolved((6, 4, 3, 3)) == "winograd"
    # auto does not pick Winograd for 4 channels: im2col, or on AVX-512 the direct kernel (81 outputs, 2 images)
    assert resolved((6, 4, 3, 3), algo="auto") == ("direct" if _core.isa() == "avx512" else "im2col")
    assert resolved((6, 4, 5, 5)) == "im2col"
    assert resolved((6, 4, 3, 3), stride=(1, 2)) == "im2col"
    assert resolved((6, 4, 3, 3), dilation=(2, 1)) == "im2col"
    assert resolved((6, 2, 3, 3), groups=2) == "im2col"
    with pytest.raises(ValueError, match="winograd"):
        F.conv2d(np.zeros((1, 1, 3, 3), np.float32), np.zeros((1, 1, 3, 3), np.float32), algo="wino")


def test_winograd_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 16, 15, 10)).astype(np.float32)
    w = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, torch.tensor(w, dtype=torch.float64), torch.tensor(b, dtype=torch.float64),
                                    padding="same")
    dy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.tensor(dy, dtype=torch.float64))
    y = F.conv2d(x, w, b, padding="same", algo="winograd")
    dx, _, _ = F.conv2d_backward(dy, x, w, padding="same", algo="winograd", weight_grad=False)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=2e-3)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=2e-3)
