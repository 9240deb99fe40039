"""conv2d, both algorithms, every pass, against the float64 NumPy reference.

Tolerances: the kernels compute in float32 and the reference in float64, so
the error of one output is round-off accumulated over its reduction. Each
output (or gradient) element of conv is a sum of R = (C/groups)*kh*kw terms
(forward, dx) or of N*Ho*Wo terms (dw, db); with inputs of unit variance the
float32 round-off of such a sum grows like eps32 * sqrt(R) * |typical term|,
and we allow ~100x that (rtol 1e-5 on the sqrt-scaled magnitude) so that a
different but legitimate summation order never fails while any indexing bug
(errors of order 1) always does.
"""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from pycnn import functional as F
from pycnn import reference as ref
from conftest import run_benchmark_script

# Every test here runs once per instruction set the CPU supports.
pytestmark = pytest.mark.usefixtures("isa")

ALGOS = ["im2col", "direct"]


def _tolerance(reduction_length: int, scale: float = 1.0) -> float:
    return 2e-5 * np.sqrt(reduction_length) * scale + 1e-6


def _check(name, actual, expected, reduction_length, params):
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape} for {params}"
    assert actual.dtype == np.float32, f"{name}: dtype {actual.dtype} for {params}"
    if actual.size == 0:
        return
    scale = max(1.0, float(np.abs(expected).max()) / np.sqrt(reduction_length))
    tol = _tolerance(reduction_length, scale)
    err = float(np.abs(actual.astype(np.float64) - expected).max())
    assert err <= tol, f"{name}: max abs error {err:.3g} > tolerance {tol:.3g} for {params}"


# (N, C, H, W, K, kernel, stride, padding, dilation, groups, bias):
# odd and prime sizes so every tail path runs; every hyper-parameter varied.
CASES = [
    (2, 3, 7, 5, 6, (3, 3), 1, 0, 1, 1, True),
    (2, 3, 7, 5, 6, (3, 3), 1, 1, 1, 1, False),
    (3, 4, 11, 13, 5, (3, 2), 2, 1, 1, 1, True),
    (2, 6, 9, 9, 6, (3, 3), 1, "same", 2, 3, True),
    (2, 6, 9, 9, 6, (3, 3), 1, "same", 1, 6, True),  # depthwise
    (2, 6, 9, 9, 12, (3, 3), 2, 1, 1, 6, True),  # depthwise, channel multiplier 2
    (1, 5, 8, 7, 7, (2, 4), 1, "same", 1, 1, True),  # even kernel: asymmetric 'same'
    (2, 8, 10, 10, 4, (1, 1), 1, 0, 1, 1, True),  # pointwise: GEMM on the input itself
    (2, 8, 10, 10, 4, (1, 1), 2, 0, 1, 1, True),  # strided 1x1
    (2, 8, 10, 10, 4, (1, 1), 1, 1, 1, 2, True),  # padded 1x1
    (2, 4, 13, 17, 8, (5, 5), 3, 2, 2, 2, True),
    (5, 1, 28, 28, 32, (3, 3), 1, 1, 1, 1, True),  # first layer of the Fashion-MNIST CNN
    (3, 32, 14, 14, 64, (3, 3), 1, 1, 1, 1, True),  # second layer
    (2, 3, 5, 5, 4, (5, 5), 1, 0, 1, 1, True),  # kernel == input: 1x1 output
    (2, 3, 4, 4, 4, (3, 3), (2, 1), (0, 2), (1, 2), 1, True),  # per-axis parameters
    (1, 7, 23, 19, 11, (3, 3), 2, "valid", 1, 1, True),
    (2, 2, 6, 6, 2, (7, 7), 1, 3, 1, 2, True),  # kernel larger than the input, padded
    (1, 3, 1, 17, 5, (1, 3), 1, (0, 1), 1, 1, True),  # one-row images
    (4, 16, 6, 6, 40, (3, 3), 1, 1, 1, 1, True),  # K not a multiple of any vector width
    # Geometry of the vectorised im2col packers (csrc/conv/im2col_panel.h):
    (2, 2, 40, 1, 3, (7, 1), 1, (3, 0), 1, 1, True),  # one-column images: a run per pixel
    (2, 2, 40, 1, 3, (5, 5), 1, 2, 1, 1, True),  # too many masked loads for the plan: loop fallback
    (1, 2, 12, 12, 3, (9, 9), 1, 4, 1, 1, True),  # 81 taps: more than the plan holds
    (1, 3, 5, 33, 4, (3, 3), 1, 1, 1, 1, True),  # rows longer than a panel
    (2, 5, 12, 11, 7, (3, 3), 1, 2, 2, 1, True),  # dilated, padded
    (2, 40, 8, 9, 33, (3, 3), 1, 1, 1, 1, True),  # R = 360: dW's packer spans many panels, depth tails
    # The same geometries one image at a time: batches of small planes (Ho * Wo < 64)
    # take the image-spanning path (conv2d_im2col.cpp), single images the panel packers.
    (1, 2, 40, 1, 3, (7, 1), 1, (3, 0), 1, 1, True),
    (1, 2, 40, 1, 3, (5, 5), 1, 2, 1, 1, True),
    (1, 5, 12, 11, 7, (3, 3), 1, 2, 2, 1, True),
    (1, 40, 8, 9, 33, (3, 3), 1, 1, 1, 1, True),
    # Stride-2 panels (AVX-512 gathers even elements): short rows, rows longer than a
    # panel, dilation, strided 1x1, a 7x7 stem
    (1, 3, 23, 37, 5, (3, 3), 2, 1, 1, 1, True),
    (1, 2, 9, 70, 4, (7, 7), 2, 3, 1, 1, True),
    (1, 3, 17, 21, 5, (3, 3), 2, 2, 2, 1, True),
    (1, 4, 15, 15, 6, (1, 1), 2, 0, 1, 1, True),
    (2, 3, 30, 30, 8, (7, 7), 2, 3, 1, 1, True),
    # Image-spanning columns: grouped strided (col2im per image), 1x1 planes, and
    # more images than one block holds (2 blocks of 56)
    (3, 6, 9, 9, 12, (3, 3), 2, 1, 1, 3, True),
    (5, 16, 1, 1, 24, (3, 3), 1, 1, 1, 1, True),
    (60, 512, 2, 2, 4, (3, 3), 1, 1, 1, 1, True),
    # Dead taps (taps that read only padding; ops/conv.cpp crops them away): a strided
    # 2x2 -> 1x1, a 5x5 on a 2x2 plane (3x3 live), one axis only, depthwise on 1x1 planes,
    # and dilation where cropping the front would need negative padding (only the back goes)
    (3, 8, 2, 2, 6, (3, 3), 2, 1, 1, 1, True),
    (3, 4, 2, 2, 5, (5, 5), 1, 2, 1, 1, True),
    (2, 3, 4, 1, 5, (3, 3), 1, 1, 1, 1, True),
    (4, 6, 1, 1, 6, (3, 3), 1, 1, 1, 6, True),
    (2, 3, 3, 3, 4, (3, 3), 1, 1, 2, 1, True),
    # Strided backward-data (col2im): 4x4 stride 2 (ConvTranspose2d's usual shape),
    # per-axis strides 3 and 2, a stride above the kernel with groups (input pixels
    # that no output reads get zeros), and padding of most of the kernel
    (2, 3, 11, 10, 4, (4, 4), 2, 1, 1, 1, True),
    (1, 4, 9, 13, 5, (3, 5), (3, 2), (1, 2), 1, 1, True),
    (2, 6, 12, 12, 4, (3, 3), 4, 1, 1, 2, True),
    (2, 3, 10, 10, 4, (3, 3), 2, 2, 1, 1, True),
    # The channel-blocked direct forward (algo="direct", groups 1, on AVX-512; conv2d_direct_blocked.cpp):
    # 64-channel blocks on rows of 7 and 21 with a partial last block, 32-channel blocks with
    # remainder tiles (15 = 14 + 1, 29 = 14 + 14 + 1), depth slices (C beyond one slice of L1),
    # stride 2 with odd sizes and dilation, stride (3, 1), several images per padded chunk
    (2, 9, 7, 7, 70, (3, 3), 1, 1, 1, 1, True),
    (1, 5, 21, 21, 64, (3, 3), 1, 1, 1, 1, False),
    (2, 3, 15, 29, 33, (3, 3), 1, 1, 1, 1, True),
    (1, 45, 9, 15, 64, (3, 3), 1, 1, 1, 1, True),
    (1, 70, 7, 7, 130, (3, 3), 1, 1, 1, 1, True),
    (2, 30, 11, 13, 20, (5, 5), 2, 2, 1, 1, True),
    (3, 4, 31, 29, 17, (3, 3), 2, 1, 2, 1, True),
    (1, 3, 17, 30, 36, (3, 3), (3, 1), (2, 0), 1, 1, True),
]


def _case_id(case):
    N, C, H, W, K, k, s, p, d, g, b = case
    return f"N{N}C{C}H{H}W{W}K{K}k{k[0]}x{k[1]}s{s}p{p}d{d}g{g}{'b' if b else ''}".replace(" ", "")


def _make(case, rng):
    N, C, H, W, K, k, s, p, d, g, bias = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C // g) + k).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32) if bias else None
    return x, w, b, dict(stride=s, padding=p, dilation=d, groups=g)



@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_conv2d_matches_reference(case, algo, threads):
    rng = np.random.default_rng(abs(hash(_case_id(case))) % 2**32)
    x, w, b, hp = _make(case, rng)
    params = dict(case=_case_id(case), algo=algo, threads=threads)
    f64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731

    y = F.conv2d(x, w, b, algo=algo, **hp)
    y_ref = ref.conv2d(f64(x), f64(w), f64(b), **hp)
    R = w.shape[1] * w.shape[2] * w.shape[3]
    _check("forward", y, y_ref, R, params)

    dy = rng.standard_normal(y.shape).astype(np.float32)
    # Parameter gradients accumulate: start from non-zero buffers to prove it.
    dw0 = rng.standard_normal(w.shape).astype(np.float32)
    db0 = rng.standard_normal(w.shape[0]).astype(np.float32)
    dw, db = dw0.copy(), db0.copy()
    dx, dw_out, db_out = F.conv2d_backward(
        dy, x, w, algo=algo, grad_weight=dw, grad_bias=db if b is not None else None,
        bias=b is not None, **hp)
    assert dw_out is dw, "grad_weight must be accumulated in place"
    dx_ref, dw_ref, db_ref = ref.conv2d_backward(f64(dy), f64(x), f64(w), **hp)
    K, Kg = w.shape[0], w.shape[0] // hp["groups"]
    _check("grad_input", dx, dx_ref, Kg * w.shape[2] * w.shape[3], params)
    spatial = x.shape[0] * y.shape[2] * y.shape[3]
    _check("grad_weight", dw, dw0 + dw_ref, spatial, params)
    if b is not None:
        assert db_out is db
        _check("grad_bias", db, db0 + db_ref, spatial, params)
    else:
        assert db_out is None


@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_repeatable_bitwise(algo, threads):
    """For a fixed thread count every pass gives bit-identical results."""
    rng = np.random.default_rng(7)
    x, w, b, hp = _make((6, 8, 13, 11, 10, (3, 3), 1, 1, 1, 1, True), rng)
    dy = rng.standard_normal(F.conv2d(x, w, b, algo=algo, **hp).shape).astype(np.float32)
    runs = []
    for _ in range(3):
        y = F.conv2d(x, w, b, algo=algo, **hp)
        dx, dw, db = F.conv2d_backward(dy, x, w, algo=algo, **hp)
        runs.append((y, dx, dw, db))
    for later in runs[1:]:
        for a, c in zip(runs[0], later):
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("case", [(5, 4, 9, 9, 6, (3, 3), 1, 1, 1, 2, True),  # grouped: the portable kernels
                                  (3, 30, 7, 21, 70, (3, 3), 1, 1, 1, 1, True),  # blocked tiles, depth slices
                                  (2, 3, 20, 20, 40, (7, 7), 2, 3, 1, 1, True)], ids=_case_id)
def test_conv2d_direct_and_im2col_agree_across_threads(algo, case):
    """The direct kernels split work so that no reduction crosses threads:
    their results do not depend on the thread count at all."""
    rng = np.random.default_rng(3)
    x, w, b, hp = _make(case, rng)
    dy = rng.standard_normal(F.conv2d(x, w, b, **hp).shape).astype(np.float32)
    old = pycnn.get_num_threads()
    try:
        results = []
        for nt in (1, 2, 3):
            pycnn.set_num_threads(nt)
            y = F.conv2d(x, w, b, algo=algo, **hp)
            results.append((y,) + tuple(F.conv2d_backward(dy, x, w, algo=algo, **hp)))
    finally:
        pycnn.set_num_threads(old)
    for later in results[1:]:
        for a, c in zip(results[0], later):
            if algo == "direct":
                np.testing.assert_array_equal(a, c)
            else:
                np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5)


def test_conv2d_input_grad_can_be_skipped():
    rng = np.random.default_rng(0)
    x, w, b, hp = _make((2, 3, 8, 8, 4, (3, 3), 1, 1, 1, 1, True), rng)
    dy = np.ones(F.conv2d(x, w, b, **hp).shape, np.float32)
    dx, dw, db = F.conv2d_backward(dy, x, w, input_grad=False, **hp)
    assert dx is None
    _, dw_ref, db_ref = ref.conv2d_backward(dy.astype(np.float64), x.astype(np.float64),
                                            w.astype(np.float64), **hp)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, db_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_empty_batch(algo):
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    b = np.ones(4, np.float32)
    y = F.conv2d(x, w, b, padding=1, algo=algo)
    assert y.shape == (0, 4, 8, 8)
    dx, dw, db = F.conv2d_backward(y, x, w, padding=1, algo=algo)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw, 0.0)
    np.testing.assert_array_equal(db, 0.0)


def test_conv2d_nan_and_inf_propagate():
    x = np.ones((1, 1, 5, 5), np.float32)
    x[0, 0, 2, 2] = np.nan
    x[0, 0, 0, 0] = np.inf
    w = np.ones((1, 1, 3, 3), np.float32)
    for algo in ALGOS:
        y = F.conv2d(x, w, algo=algo)
        assert np.isnan(y).all(), algo  # every 3x3 window of the 5x5 input holds the NaN


def test_conv2d_non_contiguous_input_same_as_copy():
    rng = np.random.default_rng(5)
    big = rng.standard_normal((4, 6, 20, 18)).astype(np.float32)
    x = big[::2, ::2, 1:-1:2, ::-1]  # strided, offset and negative-stride
    w = rng.standard_normal((3, 3, 3, 3)).astype(np.float32)
    for algo in ALGOS:
        np.testing.assert_array_equal(F.conv2d(x, w, padding=1, algo=algo),
                                      F.conv2d(np.ascontiguousarray(x), w, padding=1, algo=algo))


@pytest.mark.parametrize("algo", ALGOS + ["winograd"])
def test_conv2d_dead_taps_cropped(algo):
    # A 3x3 convolution padded by 1 on a 1x1 plane reads the input only through its
    # centre tap: each pass runs as the 1x1 convolution (bitwise), and the other taps'
    # gradients are left as they were (they multiply padding only).
    from pycnn import _core

    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 20, 1, 1)).astype(np.float32)
    w = rng.standard_normal((12, 20, 3, 3)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    centre = np.ascontiguousarray(w[:, :, 1:2, 1:2])
    np.testing.assert_array_equal(F.conv2d(x, w, b, padding=1, algo=algo), F.conv2d(x, centre, b, algo=algo))
    dy = rng.standard_normal((6, 12, 1, 1)).astype(np.float32)
    dw0 = rng.standard_normal(w.shape).astype(np.float32)
    dx, dw, _ = F.conv2d_backward(dy, x, w, padding=1, algo=algo, grad_weight=dw0.copy())
    dx_c, dw_c, _ = F.conv2d_backward(dy, x, centre, algo=algo, grad_weight=np.ascontiguousarray(dw0[:, :, 1:2, 1:2]))
    np.testing.assert_array_equal(dx, dx_c)
    np.testing.assert_array_equal(dw[:, :, 1:2, 1:2], dw_c)
    outside = np.ones(w.shape, bool)
    outside[:, :, 1, 1] = False
    np.testing.assert_array_equal(dw[outside], dw0[outside])
    # What runs is the algorithm for the cropped 1x1 kernel (Winograd cannot do 1x1)
    assert _core.conv2d_resolve_algo(x.shape, w.shape, (1, 1), (1, 1, 1, 1), (1, 1), 1, algo) == \
        ("im2col" if algo == "winograd" else algo)


def test_auto_algorithm_rule(isa):
    from pycnn import _core

    def resolved(x_shape, w_shape, groups, stride=1, pad=1):
        return _core.conv2d_resolve_algo(x_shape, w_shape, (stride, stride), (pad,) * 4, (1, 1), groups, "auto")

    # The forward takes the channel-blocked direct kernel where im2col would run on a small plane
    # (<= 64 outputs, or <= 256 with one or two images; AVX-512 only) or for a first layer with a
    # large kernel (C <= 4, kh * kw >= 25; AVX2 too), with output rows of 7 or more; never for 1x1.
    small = "direct" if isa == "avx512" else "im2col"
    stem = "direct" if isa in ("avx2", "avx512") else "im2col"

    # docs/architecture.md: Winograd for 3x3 stride-1 ungrouped convolutions with C, K >= 8
    # and at least 16 output tiles of 4x4 (N * ceil(Ho/4) * ceil(Wo/4)), on planes that fill
    # their tiles enough (Ho * Wo >= 6 * tiles per image); im2col otherwise
    assert resolved((8, 32, 14, 14), (64, 32, 3, 3), 1) == "winograd"  # 8 * 4 * 4 = 128 tiles
    assert resolved((1, 256, 14, 14), (256, 256, 3, 3), 1) == "winograd"  # 16 tiles
    assert resolved((1, 256, 13, 13), (256, 256, 3, 3), 1) == "winograd"  # ceil: 16 tiles
    assert resolved((1, 256, 12, 12), (256, 256, 3, 3), 1) == small  # 9 tiles: 144 outputs, one image
    assert resolved((3, 256, 12, 12), (256, 256, 3, 3), 1) == "winograd"  # 27 tiles
    assert resolved((2, 512, 7, 7), (512, 512, 3, 3), 1) == small  # 8 tiles: 49 outputs
    assert resolved((32, 512, 1, 1), (512, 512, 3, 3), 1) == "im2col"  # 32 tiles, 1 output of 16; cropped to 1x1
    assert resolved((32, 256, 2, 2), (256, 256, 3, 3), 1) == "im2col"  # 4 outputs of 16; rows of 2: no direct
    assert resolved((32, 128, 4, 4), (256, 128, 3, 3), 1, stride=2) == "im2col"  # rows of 2
    assert resolved((32, 64, 8, 8), (128, 64, 3, 3), 1, stride=2) == "im2col"  # rows of 4
    assert resolved((32, 64, 10, 10), (64, 64, 5, 5), 1, pad=0) == "im2col"  # 6x6 outputs: rows of 6
    assert resolved((32, 64, 11, 11), (64, 64, 5, 5), 1, pad=0) == small  # 7x7 outputs
    assert resolved((1, 3, 224, 224), (64, 3, 7, 7), 1, stride=2, pad=3) == stem  # ResNet's stem
    assert resolved((16, 3, 224, 224), (64, 3, 7, 7), 1, stride=2, pad=3) == stem
    assert resolved((1, 64, 56, 56), (128, 64, 3, 3), 1, stride=2) == "im2col"  # 28x28 outputs
    assert resolved((1, 128, 28, 28), (256, 128, 3, 3), 1, stride=2) == small  # 14x14, one image
    assert resolved((4, 128, 28, 28), (256, 128, 3, 3), 1, stride=2) == "im2col"  # 14x14, four images
    assert resolved((1, 256, 14, 14), (512, 256, 1, 1), 1, stride=2, pad=0) == "im2col"  # 1x1
    assert resolved((32, 128, 3, 3), (128, 128, 3, 3), 1) == "winograd"  # 9 outputs of 16
    assert resolved((32, 64, 5, 5), (64, 64, 3, 3), 1) == "winograd"  # 25 of 64
    assert resolved((8, 7, 28, 28), (32, 7, 3, 3), 1) == "im2col"  # C < 8
    assert resolved((8, 32, 28, 28), (7, 32, 3, 3), 1) == "im2col"  # K < 8
    assert resolved((8, 32, 28, 28), (32, 32, 5, 5), 1) == "im2col"  # not 3x3
    assert resolved((8, 32, 28, 28), (32, 16, 3, 3), 2) == "im2col"  # grouped
    assert resolved((8, 64, 14, 14), (64, 1, 3, 3), 64) == "direct"  # depthwise
    assert resolved((8, 1, 28, 28), (32, 1, 3, 3), 1) == "im2col"  # first layer
    for algo in ALGOS:  # an explicit choice is always honoured
        assert _core.conv2d_resolve_algo((8, 1, 28, 28), (32, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1,
                                         algo) == algo


# torch warns that an even kernel with 'same' makes it copy the input: irrelevant here.
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv2d_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    for case in [CASES[3], CASES[6], CASES[10], CASES[14]]:
        x, w, b, hp = _make(case, rng)
        pad = hp["padding"]
        tpad = pad if isinstance(pad, str) else ref.pair(pad)
        xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        yt = torch.nn.functional.conv2d(xt, wt, bt, stride=hp["stride"], padding=tpad,
                                        dilation=hp["dilation"], groups=hp["groups"])
        dy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        yt.backward(torch.tensor(dy, dtype=torch.float64))
        for algo in ALGOS:
            y = F.conv2d(x, w, b, algo=algo, **hp)
            dx, dw, db = F.conv2d_backward(dy, x, w, algo=algo, **hp)
            for name, a, e in [("y", y, yt), ("dx", dx, xt.grad), ("dw", dw, wt.grad), ("db", db, bt.grad)]:
                np.testing.assert_allclose(a, e.detach().numpy(), rtol=1e-4, atol=1e-3,
                                           err_msg=f"{name} {_case_id(case)} {algo}")


try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    given = None

if given is not None:

    @st.composite
    def conv_geometries(draw):
        groups = draw(st.sampled_from([1, 1, 2, 3]))
        C = groups * draw(st.integers(1, 3))
        K = groups * draw(st.integers(1, 3))
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        H = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 12))
        W = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 12))
        N = draw(st.integers(1, 3))
        bias = draw(st.booleans())
        return (N, C, H, W, K, (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups, bias)

    # The `isa` fixture only selects the kernel table: nothing to reset between examples.
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(case=conv_geometries(), algo=st.sampled_from(ALGOS), seed=st.integers(0, 2**16))
    def test_conv2d_property_random_geometry(case, algo, seed):
        rng = np.random.default_rng(seed)
        x, w, b, hp = _make(case, rng)
        params = dict(case=case, algo=algo)
        f64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
        y = F.conv2d(x, w, b, algo=algo, **hp)
        _check("forward", y, ref.conv2d(f64(x), f64(w), f64(b), **hp), int(np.prod(w.shape[1:])), params)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx, dw, db = F.conv2d_backward(dy, x, w, algo=algo, bias=b is not None, **hp)
        dx_ref, dw_ref, db_ref = ref.conv2d_backward(f64(dy), f64(x), f64(w), **hp)
        _check("grad_input", dx, dx_ref, w.shape[0] * w.shape[2] * w.shape[3], params)
        _check("grad_weight", dw, dw_ref, x.shape[0] * y.shape[2] * y.shape[3], params)
        if b is not None:
            _check("grad_bias", db, db_ref, x.shape[0] * y.shape[2] * y.shape[3], params)


def test_thread_setting_validation():
    with pytest.raises(ValueError, match="n >= 1"):
        pycnn.set_num_threads(0)
    with pytest.raises(TypeError):
        pycnn.set_num_threads(1.5)
    assert pycnn.get_num_threads() >= 1


def test_conv_algos_benchmark_script_runs(tmp_path):
    """benchmarks/conv_algos.py (how the forward rule was measured) still runs; a smoke test, no timing."""
    out = run_benchmark_script("conv_algos.py", ["--reps", "1", "--threads", "1", "--only", "1x28x28"], tmp_path,
                               timeout=120)
    assert "1x28x28->32 k3s1" in out and "fastest=" in out and "im2col" in out
