"""Tests for pycnn.reference, the NumPy oracle the C++ kernels are tested against.

Three independent lines of evidence, so the oracle is itself verified:

1. Deliberately naive loop implementations (below) of every forward and of the
   conv/pool backwards, on tiny inputs. Agreement is to ~1e-12 (float64; only
   summation order differs).
2. Central finite differences in float64 for every backward.
3. PyTorch (float64), when ``import torch`` works; otherwise those tests skip.

Finite-difference tolerance: central differences with EPS = 1e-6 have truncation
error ~EPS**2 * f''' ~ 1e-12 (zero for ops that are linear in the perturbed
input) and round-off error ~1e-16 * |loss terms| / EPS ~ 1e-9 relative. We
require |numeric - analytic| <= FD_RTOL * max(|analytic|, typical) + FD_ATOL
with FD_RTOL = 1e-6: two to three orders of margin over the noise, while any
real gradient bug (a missing tap, a wrong index, a missing factor) shows up
as an O(1) relative error. "typical" is ||grad|| * ||v|| / sqrt(size), the
expected size of a directional derivative along a random direction v, so a
direction that happens to be almost orthogonal to the gradient does not make
the test flaky.
"""

import importlib.util
import math
import pathlib
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

try:
    from pycnn import reference as ref
except ImportError:  # pragma: no cover
    # TEMPORARY: only if the package's __init__ cannot be imported (e.g. C++ part
    # not built yet, or the repo root is not on sys.path). reference.py is
    # standalone (numpy only), so load it straight from its file.
    _path = pathlib.Path(__file__).resolve().parents[1] / "pycnn" / "reference.py"
    _spec = importlib.util.spec_from_file_location("pycnn_reference", _path)
    ref = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(ref)


EPS = 1e-6
FD_RTOL = 1e-6
FD_ATOL = 1e-9
EXACT = dict(rtol=1e-12, atol=1e-12)  # float64, same maths, different summation order


def distinct(rng, shape, gap=0.05):
    """Random values with pairwise gaps >= gap (no max-pool ties, FD-safe with EPS=1e-6)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap - n * gap / 2).reshape(shape)


def away_from_zero(rng, shape, margin=0.1):
    """Random values with |x| >= margin (relu kinks are not differentiable at 0)."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


def assert_fd_grad(loss, inputs, grads, rng, n_dirs=2):
    """Check each analytic grad of scalar loss(*inputs) by central differences along random dirs."""
    for k, (a, g) in enumerate(zip(inputs, grads)):
        if a is None:
            continue
        assert g.shape == a.shape, (k, g.shape, a.shape)
        for _ in range(n_dirs):
            v = rng.standard_normal(a.shape)
            plus, minus = list(inputs), list(inputs)
            plus[k], minus[k] = a + EPS * v, a - EPS * v
            numeric = (loss(*plus) - loss(*minus)) / (2 * EPS)
            analytic = float(np.sum(g * v))
            typical = np.linalg.norm(g) * np.linalg.norm(v) / math.sqrt(v.size)
            tol = FD_RTOL * max(abs(analytic), typical) + FD_ATOL
            assert abs(numeric - analytic) <= tol, (
                f"input #{k}: numeric {numeric!r} vs analytic {analytic!r} (tol {tol:.3g})")


def case_id(case):
    """Readable pytest id from a dict of parameters."""
    return "-".join(f"{k}={v}".replace(" ", "") for k, v in case.items())


# ---------------------------------------------------------------------------
# naive implementations (tiny sizes only)
# ---------------------------------------------------------------------------

def naive_out(size, k, s, p0, p1, d):
    span = d * (k - 1) + 1
    return math.floor((size + p0 + p1 - span) / s) + 1


def naive_conv2d(x, w, b, stride, pads, dilation, groups):
    """Direct 7-loop convolution; also returns a function computing (dx, dw) from dy by scatter."""
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    (sh, sw), (dh, dw_), (top, bottom, left, right) = stride, dilation, pads
    Ho, Wo = naive_out(H, kh, sh, top, bottom, dh), naive_out(W, kw, sw, left, right, dw_)
    Kg = K // groups
    y = np.zeros((N, K, Ho, Wo))
    taps = []  # (n, k, oh, ow, input channel, c, i, j, ih, iw) for every in-bounds product
    for n in range(N):
        for k in range(K):
            g = k // Kg
            for oh in range(Ho):
                for ow in range(Wo):
                    acc = 0.0 if b is None else b[k]
                    for c in range(Cg):
                        for i in range(kh):
                            for j in range(kw):
                                ih, iw = oh * sh - top + i * dh, ow * sw - left + j * dw_
                                if 0 <= ih < H and 0 <= iw < W:
                                    acc += x[n, g * Cg + c, ih, iw] * w[k, c, i, j]
                                    taps.append((n, k, oh, ow, g * Cg + c, c, i, j, ih, iw))
                    y[n, k, oh, ow] = acc

    def backward(dy):
        dx, dw = np.zeros_like(x), np.zeros_like(w)
        for n, k, oh, ow, ci, c, i, j, ih, iw in taps:
            dx[n, ci, ih, iw] += w[k, c, i, j] * dy[n, k, oh, ow]
            dw[k, c, i, j] += x[n, ci, ih, iw] * dy[n, k, oh, ow]
        return dx, dw, dy.sum(axis=(0, 2, 3))

    return y, backward


def naive_pool2d(x, kernel, stride, pad, mode, count_include_pad=True):
    """Direct max/avg pooling. Returns y and, for max, the argmax (ih, iw) of every window."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    Ho, Wo = naive_out(H, kh, sh, ph, ph, 1), naive_out(W, kw, sw, pw, pw, 1)
    y = np.zeros((N, C, Ho, Wo))
    arg = {}
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    best, where, total, count = -math.inf, None, 0.0, 0
                    for i in range(kh):  # row-major window order
                        for j in range(kw):
                            ih, iw = oh * sh - ph + i, ow * sw - pw + j
                            if 0 <= ih < H and 0 <= iw < W:
                                v = x[n, c, ih, iw]
                                total += v
                                count += 1
                                if v > best:  # strict: the first maximum wins
                                    best, where = v, (ih, iw)
                    if mode == "max":
                        y[n, c, oh, ow] = best
                        arg[n, c, oh, ow] = where
                    else:
                        y[n, c, oh, ow] = total / (kh * kw if count_include_pad else count)
    return y, arg


def naive_max_pool2d_backward(dy, x, kernel, stride, pad):
    _, arg = naive_pool2d(x, kernel, stride, pad, "max")
    dx = np.zeros_like(x)
    for (n, c, oh, ow), (ih, iw) in arg.items():
        dx[n, c, ih, iw] += dy[n, c, oh, ow]
    return dx


def naive_adaptive_avg_pool2d(x, out):
    N, C, H, W = x.shape
    Ho, Wo = out
    y = np.zeros((N, C, Ho, Wo))
    for oh in range(Ho):
        h0, h1 = math.floor(oh * H / Ho), math.ceil((oh + 1) * H / Ho)
        for ow in range(Wo):
            w0, w1 = math.floor(ow * W / Wo), math.ceil((ow + 1) * W / Wo)
            for n in range(N):
                for c in range(C):
                    y[n, c, oh, ow] = x[n, c, h0:h1, w0:w1].sum() / ((h1 - h0) * (w1 - w0))
    return y


def naive_cross_entropy(logits, labels):
    total = 0.0
    for row, label in zip(logits, labels):
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        total += lse - row[label]
    return total / len(labels)


# ---------------------------------------------------------------------------
# helpers: pair, conv_padding, conv_output_size
# ---------------------------------------------------------------------------

def test_pair():
    assert ref.pair(3) == (3, 3)
    assert ref.pair(np.int64(4)) == (4, 4)
    assert ref.pair((2, 5)) == (2, 5)
    assert ref.pair([1, 2]) == (1, 2)
    with pytest.raises(ValueError):
        ref.pair((1, 2, 3))


@pytest.mark.parametrize("args, expected", [
    ((1, 3, 1, 1), (1, 1, 1, 1)),
    (((2, 0), 3, 1, 2), (2, 2, 0, 0)),
    (("valid", 3, 1, 2), (0, 0, 0, 0)),
    (("same", 3, 1, 1), (1, 1, 1, 1)),
    (("same", 4, 1, 1), (1, 2, 1, 2)),           # even kernel: extra row/col at bottom/right
    (("same", (2, 5), (3, 1), 1), (1, 2, 2, 2)),  # dilation 3: total 3 -> (1, 2)
    (("same", 1, 1, (1, 1)), (0, 0, 0, 0)),
], ids=str)
def test_conv_padding(args, expected):
    assert ref.conv_padding(*args) == expected


@pytest.mark.parametrize("args", [
    ("same", 3, 1, 2), ("same", 3, 1, (1, 2)), ("full", 3, 1, 1),
], ids=str)
def test_conv_padding_rejects(args):
    with pytest.raises(ValueError):
        ref.conv_padding(*args)


def test_conv_output_size():
    assert ref.conv_output_size(7, 3, 2, 1, 1, 1) == 4
    assert ref.conv_output_size(5, 3, 1, 0, 0, 2) == 1
    assert ref.conv_output_size(5, 2, 1, 1, 2, 3) == 5
    assert ref.conv_output_size(3, 5, 1, 0, 0, 1) == -1  # raw formula; ops raise
    for size, k, s, p0, p1, d in [(7, 3, 2, 1, 1, 1), (6, 2, 3, 0, 1, 2), (3, 5, 1, 0, 0, 1)]:
        assert ref.conv_output_size(size, k, s, p0, p1, d) == naive_out(size, k, s, p0, p1, d)


# ---------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------

CONV_CASES = [
    dict(C=3, K=6, H=7, W=5, k=3, s=1, p=0, d=1, g=1, bias=True),
    dict(C=3, K=6, H=7, W=5, k=3, s=2, p=1, d=1, g=1, bias=True),
    dict(C=3, K=4, H=7, W=5, k=(3, 2), s=(2, 1), p=(1, 0), d=1, g=1, bias=False),
    dict(C=3, K=5, H=7, W=5, k=3, s=1, p="same", d=1, g=1, bias=True),
    dict(C=2, K=3, H=7, W=5, k=(2, 4), s=1, p="same", d=1, g=1, bias=True),   # asymmetric pad
    dict(C=2, K=3, H=7, W=5, k=(2, 3), s=1, p="same", d=2, g=1, bias=False),
    dict(C=3, K=2, H=7, W=5, k=2, s=1, p="valid", d=1, g=1, bias=True),
    dict(C=2, K=3, H=7, W=5, k=3, s=2, p=1, d=(2, 1), g=1, bias=True),
    dict(C=3, K=6, H=7, W=5, k=3, s=1, p=1, d=1, g=3, bias=True),           # depthwise x2
    dict(C=3, K=3, H=7, W=5, k=3, s=2, p=1, d=1, g=3, bias=False),          # depthwise
    dict(C=4, K=6, H=5, W=7, k=3, s=1, p="same", d=1, g=2, bias=True),
    dict(C=3, K=4, H=7, W=5, k=1, s=2, p=0, d=1, g=1, bias=True),           # 1x1, stride 2
    dict(C=2, K=3, H=7, W=5, k=(7, 5), s=1, p=0, d=1, g=1, bias=True),      # kernel == input
    dict(C=2, K=2, H=3, W=5, k=2, s=1, p=3, d=1, g=1, bias=True),           # padding > kernel
    dict(C=2, K=3, H=7, W=5, k=2, s=3, p=0, d=1, g=1, bias=True),           # stride > kernel
    dict(C=1, K=1, H=1, W=1, k=1, s=1, p=0, d=1, g=1, bias=True),
]
CONV_IDS = [case_id(c) for c in CONV_CASES]


def conv_setup(case, seed_key):
    rng = np.random.default_rng(list(map(ord, seed_key)))
    kh, kw = ref.pair(case["k"])
    x = rng.standard_normal((2, case["C"], case["H"], case["W"]))
    w = rng.standard_normal((case["K"], case["C"] // case["g"], kh, kw))
    b = rng.standard_normal(case["K"]) if case["bias"] else None
    kwargs = dict(stride=case["s"], padding=case["p"], dilation=case["d"], groups=case["g"])
    return rng, x, w, b, kwargs


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_matches_naive(case):
    rng, x, w, b, kw = conv_setup(case, "naive" + case_id(case))
    pads = ref.conv_padding(kw["padding"], w.shape[2:], kw["dilation"], kw["stride"])
    y_naive, naive_backward = naive_conv2d(
        x, w, b, ref.pair(kw["stride"]), pads, ref.pair(kw["dilation"]), kw["groups"])
    y = ref.conv2d(x, w, b, **kw)
    np.testing.assert_allclose(y, y_naive, **EXACT)
    dy = rng.standard_normal(y.shape)
    for got, want in zip(ref.conv2d_backward(dy, x, w, **kw), naive_backward(dy)):
        np.testing.assert_allclose(got, want, **EXACT)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_backward_finite_differences(case):
    rng, x, w, b, kw = conv_setup(case, "fd" + case_id(case))
    R = rng.standard_normal(ref.conv2d(x, w, b, **kw).shape)
    dx, dw, db = ref.conv2d_backward(R, x, w, **kw)
    np.testing.assert_allclose(db, R.sum(axis=(0, 2, 3)), **EXACT)

    def loss(x, w, b):
        return float(np.sum(ref.conv2d(x, w, b, **kw) * R))

    assert_fd_grad(loss, [x, w, b], [dx, dw, db], rng)


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch perf note, even kernels
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_vs_torch(case):
    torch = pytest.importorskip("torch")
    rng, x, w, b, kw = conv_setup(case, "torch" + case_id(case))
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if b is not None else None
    pad = kw["padding"]
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=kw["stride"], dilation=kw["dilation"],
                                    groups=kw["groups"], padding=pad)
    y = ref.conv2d(x, w, b, **kw)
    np.testing.assert_allclose(y, yt.detach().numpy(), **EXACT)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    dx, dw, db = ref.conv2d_backward(dy, x, w, **kw)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **EXACT)
    np.testing.assert_allclose(dw, wt.grad.numpy(), **EXACT)
    if bt is not None:
        np.testing.assert_allclose(db, bt.grad.numpy(), **EXACT)


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 2), G=st.integers(1, 3), Cg=st.integers(1, 2), Kg=st.integers(1, 2),
       H=st.integers(1, 6), W=st.integers(1, 6), kh=st.integers(1, 3), kw=st.integers(1, 3),
       sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
       padding=st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
                         st.sampled_from(["same", "valid"])),
       seed=st.integers(0, 2**32 - 1))
def test_conv2d_random_geometry(N, G, Cg, Kg, H, W, kh, kw, sh, sw, dh, dw, padding, seed):
    """Random geometries: ValueError iff the output is empty, else equal to the naive loops."""
    if padding == "same":
        sh = sw = 1
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, G * Cg, H, W))
    w = rng.standard_normal((G * Kg, Cg, kh, kw))
    b = rng.standard_normal(G * Kg)
    kwargs = dict(stride=(sh, sw), padding=padding, dilation=(dh, dw), groups=G)
    pads = ref.conv_padding(padding, (kh, kw), (dh, dw), (sh, sw))
    Ho = naive_out(H, kh, sh, pads[0], pads[1], dh)
    Wo = naive_out(W, kw, sw, pads[2], pads[3], dw)
    if Ho <= 0 or Wo <= 0:
        with pytest.raises(ValueError):
            ref.conv2d(x, w, b, **kwargs)
        with pytest.raises(ValueError):
            ref.conv2d_backward(np.zeros((N, G * Kg, 1, 1)), x, w, **kwargs)
        return
    y_naive, naive_backward = naive_conv2d(x, w, b, (sh, sw), pads, (dh, dw), G)
    np.testing.assert_allclose(ref.conv2d(x, w, b, **kwargs), y_naive, **EXACT)
    dy = rng.standard_normal(y_naive.shape)
    for got, want in zip(ref.conv2d_backward(dy, x, w, **kwargs), naive_backward(dy)):
        np.testing.assert_allclose(got, want, **EXACT)


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------

POOL_CASES = [
    dict(H=6, W=4, k=2, s=None, p=0),
    dict(H=7, W=5, k=2, s=None, p=0),            # floor mode drops the last row/col
    dict(H=7, W=5, k=3, s=2, p=1),
    dict(H=7, W=5, k=(3, 2), s=(1, 2), p=(1, 0)),
    dict(H=7, W=5, k=3, s=1, p=1),               # overlapping windows
    dict(H=7, W=5, k=(2, 3), s=(3, 1), p=(1, 1)),
    dict(H=7, W=5, k=(7, 5), s=1, p=0),          # global
    dict(H=5, W=7, k=(4, 2), s=(2, 3), p=(2, 1)),
]
POOL_IDS = [case_id(c) for c in POOL_CASES]


def pool_args(case):
    return dict(kernel_size=case["k"], stride=case["s"], padding=case["p"])


def naive_pool_args(case):
    k = ref.pair(case["k"])
    return k, k if case["s"] is None else ref.pair(case["s"]), ref.pair(case["p"])


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_max_pool2d_matches_naive(case):
    rng = np.random.default_rng(list(map(ord, "max" + case_id(case))))
    x = distinct(rng, (2, 3, case["H"], case["W"]))
    y = ref.max_pool2d(x, **pool_args(case))
    y_naive, _ = naive_pool2d(x, *naive_pool_args(case), "max")
    np.testing.assert_array_equal(y, y_naive)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(ref.max_pool2d_backward(dy, x, **pool_args(case)),
                               naive_max_pool2d_backward(dy, x, *naive_pool_args(case)), **EXACT)


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_max_pool2d_backward_finite_differences(case):
    rng = np.random.default_rng(list(map(ord, "maxfd" + case_id(case))))
    x = distinct(rng, (2, 3, case["H"], case["W"]))  # no ties: FD undefined at ties
    R = rng.standard_normal(ref.max_pool2d(x, **pool_args(case)).shape)
    dx = ref.max_pool2d_backward(R, x, **pool_args(case))
    args = pool_args(case)
    assert_fd_grad(lambda x: float(np.sum(ref.max_pool2d(x, **args) * R)), [x], [dx], rng)


def test_max_pool2d_ties_first_maximum_wins():
    x = np.zeros((1, 1, 4, 4))
    dx = ref.max_pool2d_backward(np.ones((1, 1, 2, 2)), x, 2)
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1  # top-left of every 2x2 window
    np.testing.assert_array_equal(dx[0, 0], expected)
    # overlapping windows on a constant 3x3 input, kernel 2 stride 1: each window's
    # top-left element wins, and they are all distinct.
    dx = ref.max_pool2d_backward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), 2, 1)
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    # a tie in a later row beats nothing: [[0, 5], [5, 5]] -> (0, 1)
    x = np.array([[[[0.0, 5.0], [5.0, 5.0]]]])
    np.testing.assert_array_equal(ref.max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2)[0, 0],
                                  [[0, 1], [0, 0]])
    # implicit padding is -inf, never 0: an all-negative window keeps its maximum
    x = -np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(ref.max_pool2d(x, 2, 1, 1)[0, 0],
                                  [[-1, -1, -2], [-1, -1, -2], [-3, -3, -4]])


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["incl_pad", "excl_pad"])
@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_avg_pool2d_matches_naive(case, count_include_pad):
    rng = np.random.default_rng(list(map(ord, "avg" + case_id(case))))
    x = rng.standard_normal((2, 3, case["H"], case["W"]))
    y = ref.avg_pool2d(x, **pool_args(case), count_include_pad=count_include_pad)
    y_naive, _ = naive_pool2d(x, *naive_pool_args(case), "avg", count_include_pad)
    np.testing.assert_allclose(y, y_naive, **EXACT)


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["incl_pad", "excl_pad"])
@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_avg_pool2d_backward_finite_differences(case, count_include_pad):
    rng = np.random.default_rng(list(map(ord, "avgfd" + case_id(case))))
    x = rng.standard_normal((2, 3, case["H"], case["W"]))
    args = dict(pool_args(case), count_include_pad=count_include_pad)
    R = rng.standard_normal(ref.avg_pool2d(x, **args).shape)
    dx = ref.avg_pool2d_backward(R, x.shape, **args)
    assert_fd_grad(lambda x: float(np.sum(ref.avg_pool2d(x, **args) * R)), [x], [dx], rng)


ADAPTIVE_CASES = [(7, 5, 1), (7, 5, (3, 2)), (7, 5, (7, 5)), (7, 5, (4, 3)), (6, 4, (3, 2)),
                  (3, 2, (5, 4)), (5, 7, (2, 6))]
ADAPTIVE_IDS = [f"H={h}-W={w}-out={o}".replace(" ", "") for h, w, o in ADAPTIVE_CASES]


@pytest.mark.parametrize("H, W, out", ADAPTIVE_CASES, ids=ADAPTIVE_IDS)
def test_adaptive_avg_pool2d(H, W, out):
    rng = np.random.default_rng(list(map(ord, f"ad{H}{W}{out}")))
    x = rng.standard_normal((2, 3, H, W))
    y = ref.adaptive_avg_pool2d(x, out)
    np.testing.assert_allclose(y, naive_adaptive_avg_pool2d(x, ref.pair(out)), **EXACT)
    R = rng.standard_normal(y.shape)
    dx = ref.adaptive_avg_pool2d_backward(R, x.shape)
    assert_fd_grad(lambda x: float(np.sum(ref.adaptive_avg_pool2d(x, out) * R)), [x], [dx], rng)


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_pools_vs_torch(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(list(map(ord, "pooltorch" + case_id(case))))
    x = distinct(rng, (2, 3, case["H"], case["W"]))
    args = pool_args(case)
    # max
    xt = torch.tensor(x, requires_grad=True)
    yt = F.max_pool2d(xt, args["kernel_size"], args["stride"], args["padding"])
    np.testing.assert_array_equal(ref.max_pool2d(x, **args), yt.detach().numpy())
    dy = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(ref.max_pool2d_backward(dy, x, **args), xt.grad.numpy(), **EXACT)
    # average, both divisors
    for cip in (True, False):
        xt = torch.tensor(x, requires_grad=True)
        yt = F.avg_pool2d(xt, args["kernel_size"], args["stride"], args["padding"],
                          count_include_pad=cip)
        np.testing.assert_allclose(ref.avg_pool2d(x, **args, count_include_pad=cip),
                                   yt.detach().numpy(), **EXACT)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(
            ref.avg_pool2d_backward(dy, x.shape, **args, count_include_pad=cip),
            xt.grad.numpy(), **EXACT)


def test_max_pool2d_ties_vs_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, (2, 3, 7, 5)).astype(np.float64)  # many ties
    for k, s, p in [(2, None, 0), (3, 1, 1), (3, 2, 1), ((2, 3), (1, 2), (1, 1))]:
        xt = torch.tensor(x, requires_grad=True)
        yt = torch.nn.functional.max_pool2d(xt, k, s, p)
        dy = rng.standard_normal(tuple(yt.shape))
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(ref.max_pool2d_backward(dy, x, k, s, p), xt.grad.numpy(),
                                   **EXACT)


@pytest.mark.parametrize("H, W, out", ADAPTIVE_CASES, ids=ADAPTIVE_IDS)
def test_adaptive_avg_pool2d_vs_torch(H, W, out):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(list(map(ord, f"adt{H}{W}{out}")))
    x = rng.standard_normal((2, 3, H, W))
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.adaptive_avg_pool2d(xt, out)
    np.testing.assert_allclose(ref.adaptive_avg_pool2d(x, out), yt.detach().numpy(), **EXACT)
    dy = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(ref.adaptive_avg_pool2d_backward(dy, x.shape), xt.grad.numpy(),
                               **EXACT)


# ---------------------------------------------------------------------------
# impossible geometry
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda x: ref.conv2d(x, np.ones((2, 3, 5, 1))),                      # kernel taller than input
    lambda x: ref.conv2d(x, np.ones((2, 3, 3, 3)), dilation=(1, 3)),     # dilated span 7 > 5
    lambda x: ref.conv2d_backward(np.ones((2, 2, 1, 1)), x, np.ones((2, 3, 5, 1))),
    lambda x: ref.conv2d(x, np.ones((2, 3, 3, 3)), stride=2, padding="same"),
    lambda x: ref.max_pool2d(x, 5),
    lambda x: ref.max_pool2d_backward(np.ones((2, 3, 1, 1)), x, (1, 6)),
    lambda x: ref.avg_pool2d(x, (5, 2)),
    lambda x: ref.avg_pool2d_backward(np.ones((2, 3, 1, 1)), x.shape, 5),
    lambda x: ref.adaptive_avg_pool2d(x, 0),
    lambda x: ref.adaptive_avg_pool2d(x, (2, 0)),
], ids=["conv_k5", "conv_dilated", "conv_bwd", "conv_same_stride2", "max_k5", "max_bwd",
        "avg_k5", "avg_bwd", "adaptive_0", "adaptive_2x0"])
def test_impossible_geometry_raises(call):
    with pytest.raises(ValueError):
        call(np.ones((2, 3, 4, 5)))


# ---------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------

ACTIVATIONS = {
    # name: (forward, backward(dy, x) built from the reference, scalar formula)
    "relu": (ref.relu, ref.relu_backward, lambda v: max(v, 0.0)),
    "leaky_relu": (ref.leaky_relu, ref.leaky_relu_backward, lambda v: v if v > 0 else 0.01 * v),
    "leaky_relu_0.2": (lambda x: ref.leaky_relu(x, 0.2),
                       lambda dy, x: ref.leaky_relu_backward(dy, x, 0.2),
                       lambda v: v if v > 0 else 0.2 * v),
    "sigmoid": (ref.sigmoid, lambda dy, x: ref.sigmoid_backward(dy, ref.sigmoid(x)),
                lambda v: 1 / (1 + math.exp(-v))),
    "tanh": (ref.tanh, lambda dy, x: ref.tanh_backward(dy, ref.tanh(x)), math.tanh),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_forward_and_fd(name):
    forward, backward, scalar = ACTIVATIONS[name]
    rng = np.random.default_rng(list(map(ord, name)))
    x = away_from_zero(rng, (2, 3, 4, 5)) * 2
    y = forward(x)
    assert y.shape == x.shape
    np.testing.assert_allclose(y.ravel(), [scalar(v) for v in x.ravel()], rtol=1e-14, atol=1e-15)
    R = rng.standard_normal(x.shape)
    dx = backward(R, x)
    assert_fd_grad(lambda x: float(np.sum(forward(x) * R)), [x], [dx], rng)


def test_kinks_at_zero_follow_pytorch():
    x = np.array([-1.0, 0.0, 1.0])
    dy = np.array([2.0, 3.0, 4.0])
    np.testing.assert_array_equal(ref.relu_backward(dy, x), [0.0, 0.0, 4.0])
    np.testing.assert_array_equal(ref.leaky_relu_backward(dy, x, 0.5), [1.0, 1.5, 4.0])
    np.testing.assert_array_equal(ref.leaky_relu(x, 0.5), [-0.5, 0.0, 1.0])


def test_activations_vs_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4, 5)) * 3
    x.flat[:4] = 0.0  # exact zeros: the kink conventions must match too
    dy = rng.standard_normal(x.shape)
    pairs = [
        (F.relu, ref.relu, lambda dy, x, y: ref.relu_backward(dy, x)),
        (lambda t: F.leaky_relu(t, 0.01), ref.leaky_relu,
         lambda dy, x, y: ref.leaky_relu_backward(dy, x)),
        (lambda t: F.leaky_relu(t, 0.3), lambda x: ref.leaky_relu(x, 0.3),
         lambda dy, x, y: ref.leaky_relu_backward(dy, x, 0.3)),
        (torch.sigmoid, ref.sigmoid, lambda dy, x, y: ref.sigmoid_backward(dy, y)),
        (torch.tanh, ref.tanh, lambda dy, x, y: ref.tanh_backward(dy, y)),
    ]
    for torch_fn, fwd, bwd in pairs:
        xt = torch.tensor(x, requires_grad=True)
        yt = torch_fn(xt)
        yt.backward(torch.tensor(dy))
        y = fwd(x)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(bwd(dy, x, y), xt.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_sigmoid_stable_without_warnings():
    x = np.array([-1e4, -800.0, -50.0, -1.0, 0.0, 1.0, 50.0, 800.0, 1e4])
    # Control: the textbook formula does warn under this filter, so the filter works.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning):
            1.0 / (1.0 + np.exp(-x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow/invalid warning becomes an exception
        for dtype in (np.float64, np.float32):
            y = ref.sigmoid(x.astype(dtype))
            assert y.dtype == dtype
            assert np.all(np.isfinite(y))
            assert y[0] == 0.0 and y[-1] == 1.0 and y[4] == 0.5
            assert np.all(np.diff(y) >= 0)
            g = ref.sigmoid_backward(np.ones_like(y), y)
            assert np.all(np.isfinite(g))
    e = math.exp(-50)
    np.testing.assert_allclose(ref.sigmoid(np.array([-50.0, 50.0])), [e / (1 + e), 1 / (1 + e)],
                               rtol=1e-15)


# ---------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_linear(bias):
    rng = np.random.default_rng(5 + bias)
    x, w = rng.standard_normal((4, 7)), rng.standard_normal((3, 7))
    b = rng.standard_normal(3) if bias else None
    y = ref.linear(x, w, b)
    naive = [[sum(x[n, i] * w[o, i] for i in range(7)) + (b[o] if bias else 0.0) for o in range(3)]
             for n in range(4)]
    np.testing.assert_allclose(y, naive, **EXACT)
    R = rng.standard_normal(y.shape)
    dx, dw, db = ref.linear_backward(R, x, w)
    np.testing.assert_allclose(db, R.sum(0), **EXACT)
    assert_fd_grad(lambda x, w, b: float(np.sum(ref.linear(x, w, b) * R)),
                   [x, w, b], [dx, dw, db], rng)


def test_linear_vs_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((5, 6)), rng.standard_normal((4, 6)), rng.standard_normal(4)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.linear(xt, wt, bt)
    np.testing.assert_allclose(ref.linear(x, w, b), yt.detach().numpy(), **EXACT)
    dy = rng.standard_normal((5, 4))
    yt.backward(torch.tensor(dy))
    for got, t in zip(ref.linear_backward(dy, x, w), (xt, wt, bt)):
        np.testing.assert_allclose(got, t.grad.numpy(), **EXACT)


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("N, classes", [(1, 2), (5, 3), (4, 10)], ids=lambda v: str(v))
def test_cross_entropy(N, classes):
    rng = np.random.default_rng(N * 100 + classes)
    logits = rng.standard_normal((N, classes)) * 3
    labels = rng.integers(0, classes, N)
    loss = ref.cross_entropy(logits, labels)
    assert isinstance(loss, float)
    assert loss == pytest.approx(naive_cross_entropy(logits, labels), rel=1e-13)
    g = ref.cross_entropy_backward(logits, labels)
    np.testing.assert_allclose(g.sum(axis=1), 0, atol=1e-15)
    assert_fd_grad(lambda z: ref.cross_entropy(z, labels), [logits], [g], rng, n_dirs=3)


def test_cross_entropy_extreme_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4, 1e4]])
    labels = np.array([0, 0, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = ref.cross_entropy(logits, labels)
        g = ref.cross_entropy_backward(logits, labels)
        loss32 = ref.cross_entropy(logits.astype(np.float32), labels)
        g32 = ref.cross_entropy_backward(logits.astype(np.float32), labels)
    # row losses: 0, 2e4 + log 2, log 3
    assert loss == pytest.approx((2e4 + math.log(2) + math.log(3)) / 3, rel=1e-12)
    assert math.isfinite(loss32) and np.all(np.isfinite(g32)) and g32.dtype == np.float32
    expected = np.array([[0, 0, 0], [-1, 0.5, 0.5], [1 / 3, 1 / 3, -2 / 3]]) / 3
    np.testing.assert_allclose(g, expected, atol=1e-15)
    np.testing.assert_allclose(g32, expected, atol=1e-7)


def test_mse_loss():
    rng = np.random.default_rng(3)
    pred, target = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    loss = ref.mse_loss(pred, target)
    assert isinstance(loss, float)
    naive = sum((p - t) ** 2 for p, t in zip(pred.ravel(), target.ravel())) / pred.size
    assert loss == pytest.approx(naive, rel=1e-13)
    g = ref.mse_loss_backward(pred, target)
    assert_fd_grad(lambda p: ref.mse_loss(p, target), [pred], [g], rng, n_dirs=3)


def test_losses_vs_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(4)
    logits, labels = rng.standard_normal((6, 5)) * 4, rng.integers(0, 5, 6)
    lt = torch.tensor(logits, requires_grad=True)
    out = F.cross_entropy(lt, torch.tensor(labels))
    out.backward()
    assert ref.cross_entropy(logits, labels) == pytest.approx(out.item(), rel=1e-13)
    np.testing.assert_allclose(ref.cross_entropy_backward(logits, labels), lt.grad.numpy(), **EXACT)
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    pt = torch.tensor(pred, requires_grad=True)
    out = F.mse_loss(pt, torch.tensor(target))
    out.backward()
    assert ref.mse_loss(pred, target) == pytest.approx(out.item(), rel=1e-13)
    np.testing.assert_allclose(ref.mse_loss_backward(pred, target), pt.grad.numpy(), **EXACT)


# ---------------------------------------------------------------------------
# SGD
# ---------------------------------------------------------------------------

SGD_CASES = [
    dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
    dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.01, nesterov=False),
    dict(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False),
    dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=False),
    dict(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True),
    dict(lr=0.05, momentum=0.5, dampening=0.0, weight_decay=0.05, nesterov=True),
]
SGD_IDS = [case_id(c) for c in SGD_CASES]


@pytest.mark.parametrize("hp", SGD_CASES, ids=SGD_IDS)
def test_sgd_step_rule_and_purity(hp):
    rng = np.random.default_rng(list(map(ord, case_id(hp))))
    param = rng.standard_normal((3, 4))
    buf = None
    for _ in range(3):
        grad = rng.standard_normal(param.shape)
        saved = (param.copy(), grad.copy(), None if buf is None else buf.copy())
        new_param, new_buf = ref.sgd_step(param, grad, buf, **hp)
        # inputs untouched, outputs fresh
        np.testing.assert_array_equal(param, saved[0])
        np.testing.assert_array_equal(grad, saved[1])
        if buf is not None:
            np.testing.assert_array_equal(buf, saved[2])
        for out in (new_param, new_buf):
            if out is not None:
                inputs = (param, grad) if buf is None else (param, grad, buf)
                assert not any(np.shares_memory(out, a) for a in inputs)
        # the rule, element by element
        m, d, wd, lr = hp["momentum"], hp["dampening"], hp["weight_decay"], hp["lr"]
        for idx in np.ndindex(param.shape):
            g = grad[idx] + wd * param[idx]
            if m:
                b = g if buf is None else m * buf[idx] + (1 - d) * g
                assert new_buf[idx] == pytest.approx(b, rel=1e-14, abs=1e-15)
                g = g + m * b if hp["nesterov"] else b
            assert new_param[idx] == pytest.approx(param[idx] - lr * g, rel=1e-14, abs=1e-15)
        if not m:
            assert new_buf is None
        param, buf = new_param, new_buf


@pytest.mark.parametrize("hp", SGD_CASES, ids=SGD_IDS)
def test_sgd_vs_torch(hp):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(list(map(ord, "t" + case_id(hp))))
    param = rng.standard_normal((3, 4))
    pt = torch.tensor(param.copy(), requires_grad=True)
    opt = torch.optim.SGD([pt], **hp)
    buf = None
    for _ in range(3):
        grad = rng.standard_normal(param.shape)
        pt.grad = torch.tensor(grad)
        opt.step()
        param, buf = ref.sgd_step(param, grad, buf, **hp)
        np.testing.assert_allclose(param, pt.detach().numpy(), **EXACT)
        if hp["momentum"]:
            np.testing.assert_allclose(buf, opt.state[pt]["momentum_buffer"].numpy(), **EXACT)


# ---------------------------------------------------------------------------
# dtype preservation and purity, across the whole API
# ---------------------------------------------------------------------------

def _all_calls(dtype):
    """(name, thunk) for every public function, all inputs of `dtype`."""
    rng = np.random.default_rng(0)
    a = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    x, w, b = a(2, 4, 6, 5), a(6, 2, 3, 3), a(6)
    cargs = dict(stride=(2, 1), padding=1, dilation=1, groups=2)
    dy_conv = a(*ref.conv2d(x, w, b, **cargs).shape)
    dy_pool = a(2, 4, 3, 2)
    v = a(3, 5)
    f64 = np.float64  # scalar hyper-parameters as NumPy float64 must not promote
    return [
        ("conv2d", lambda: ref.conv2d(x, w, b, **cargs)),
        ("conv2d_backward", lambda: ref.conv2d_backward(dy_conv, x, w, **cargs)),
        ("max_pool2d", lambda: ref.max_pool2d(x, 2)),
        ("max_pool2d_backward", lambda: ref.max_pool2d_backward(dy_pool, x, 2)),
        ("avg_pool2d", lambda: ref.avg_pool2d(x, 2, count_include_pad=False)),
        ("avg_pool2d_backward", lambda: ref.avg_pool2d_backward(dy_pool, x.shape, 2)),
        ("adaptive_avg_pool2d", lambda: ref.adaptive_avg_pool2d(x, (3, 2))),
        ("adaptive_avg_pool2d_backward",
         lambda: ref.adaptive_avg_pool2d_backward(dy_pool, x.shape)),
        ("relu", lambda: ref.relu(v)),
        ("relu_backward", lambda: ref.relu_backward(v, v)),
        ("leaky_relu", lambda: ref.leaky_relu(v, f64(0.1))),
        ("leaky_relu_backward", lambda: ref.leaky_relu_backward(v, v, f64(0.1))),
        ("sigmoid", lambda: ref.sigmoid(v)),
        ("sigmoid_backward", lambda: ref.sigmoid_backward(v, ref.sigmoid(v))),
        ("tanh", lambda: ref.tanh(v)),
        ("tanh_backward", lambda: ref.tanh_backward(v, ref.tanh(v))),
        ("linear", lambda: ref.linear(v, a(4, 5), a(4))),
        ("linear_backward", lambda: ref.linear_backward(a(3, 4), v, a(4, 5))),
        ("cross_entropy_backward", lambda: ref.cross_entropy_backward(v, np.array([0, 4, 2]))),
        ("mse_loss_backward", lambda: ref.mse_loss_backward(v, a(3, 5))),
        ("sgd_step", lambda: ref.sgd_step(v, a(3, 5), a(3, 5), f64(0.1), f64(0.9), f64(0.1),
                                          f64(0.01), False)),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_dtype_preserved(dtype):
    for name, call in _all_calls(dtype):
        out = call()
        for o in out if isinstance(out, tuple) else (out,):
            assert o.dtype == dtype, f"{name} returned {o.dtype} for {np.dtype(dtype).name} input"


def test_float32_agrees_with_float64():
    for (name, c32), (_, c64) in zip(_all_calls(np.float32), _all_calls(np.float64)):
        o32, o64 = c32(), c64()
        for a, b in zip(o32 if isinstance(o32, tuple) else (o32,),
                        o64 if isinstance(o64, tuple) else (o64,)):
            # inputs differ by float32 rounding (~6e-8 relative), so 1e-5 is loose
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)


def test_no_input_is_modified():
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s) for s in [(2, 4, 6, 5), (6, 2, 3, 3), (6,)])
    dy = rng.standard_normal(ref.conv2d(x, w, b, groups=2).shape)
    dy_pool = rng.standard_normal((2, 4, 5, 4))
    arrays = (x, w, b, dy, dy_pool)
    saved = [a.copy() for a in arrays]
    outs = [ref.conv2d(x, w, b, groups=2), *ref.conv2d_backward(dy, x, w, groups=2),
            ref.max_pool2d(x, 2, 1), ref.max_pool2d_backward(dy_pool, x, 2, 1),
            ref.avg_pool2d(x, 2, 1), ref.avg_pool2d_backward(dy_pool, x.shape, 2, 1),
            ref.adaptive_avg_pool2d(x, 1), ref.adaptive_avg_pool2d_backward(dy_pool, x.shape),
            ref.relu(x), ref.relu_backward(dy_pool, dy_pool), ref.tanh(x), ref.sigmoid(x)]
    for a, s in zip(arrays, saved):
        np.testing.assert_array_equal(a, s)
    for o in outs:
        assert not any(np.shares_memory(o, a) for a in arrays)
