"""pycnn.functional against the NumPy oracle (pycnn.reference): every op, forward and gradients.

pycnn runs in float32; the oracle gets the same float32 values promoted to
float64, so differences are pure float32 rounding (tolerances: conftest.tol).
Sizes are odd or prime so vector tails and edge windows are exercised.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_close, case_id, f32, f64, needs_torch, ref, tol, torch
from pycnn import functional as F


# Every test here runs once per instruction set the CPU supports.
pytestmark = pytest.mark.usefixtures("isa")


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------

POOL_CASES = [
    dict(shape=(2, 3, 7, 7), k=2, s=None, p=0),
    dict(shape=(1, 2, 9, 11), k=3, s=2, p=1),          # overlapping windows, padding
    dict(shape=(3, 1, 13, 5), k=(3, 2), s=(1, 2), p=(1, 0)),
    dict(shape=(2, 5, 8, 8), k=3, s=1, p=1),           # heavy overlap: every input in 9 windows
    dict(shape=(1, 1, 5, 17), k=(1, 5), s=(1, 3), p=(0, 2)),
    dict(shape=(2, 2, 4, 4), k=4, s=3, p=2),
    # the 2x2 / stride-2 row kernels: rows of 33 and 16 windows (vector steps and tails), odd H and W
    dict(shape=(2, 3, 9, 67), k=2, s=None, p=0),
    dict(shape=(1, 2, 6, 32), k=2, s=2, p=0),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_max_pool2d(case, rng):
    x = f32(rng, *case["shape"])
    k, s, p = case["k"], case["s"], case["p"]
    y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
    # max selects an input element: exact.
    assert_close(y, ref.max_pool2d(f64(x), k, s, p), rtol=0, atol=0, **case)
    assert idx.dtype == np.int32 and idx.shape == y.shape
    planes = x.reshape(x.shape[0] * x.shape[1], -1)
    assert_close(np.take_along_axis(planes, idx.reshape(len(planes), -1), axis=1).reshape(y.shape), y,
                 rtol=0, atol=0, what="indices point at the maxima", **case)
    dy = f32(rng, *y.shape)
    dx = F.max_pool2d_backward(dy, idx, x.shape, k, s, p)
    # each dx element sums at most kh*kw dy values
    assert_close(dx, ref.max_pool2d_backward(f64(dy), f64(x), k, s, p), **tol(9), **case)


def test_max_pool2d_ties_first_maximum_wins():
    # Equal values everywhere: PyTorch picks the first element of each window (row-major).
    x = np.ones((1, 1, 5, 5), np.float32)
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    # windows start at rows/cols -1, 1, 3 -> first in-bounds element at 0, 1, 3
    first = np.array([0, 1, 3])
    assert (idx[0, 0] == first[:, None] * 5 + first[None, :]).all(), idx
    dy = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    assert_close(F.max_pool2d_backward(dy, idx, x.shape, 3, 2, 1),
                 ref.max_pool2d_backward(f64(dy), f64(x), 3, 2, 1), rtol=0, atol=0)


@needs_torch
def test_max_pool2d_ties_and_nan_vs_torch(rng):
    x = rng.integers(0, 3, size=(2, 3, 9, 8)).astype(np.float32)  # many ties
    x[0, 0, 2, 3] = np.nan
    x[1, 2, 4, 4] = np.nan
    x[1, 2, 4, 5] = np.nan  # two NaNs in one window
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())  # NaN == NaN here
    # With several NaNs in a window PyTorch takes the last, pycnn the first: either
    # is a NaN (same output, gradient to one NaN input), so only that is required.
    both_nan = np.isnan(y) & (idx != tidx.numpy())
    assert (np.isnan(x.reshape(6, -1)[np.arange(6)[:, None], idx.reshape(6, -1)]).reshape(y.shape)
            | ~both_nan).all()
    np.testing.assert_array_equal(idx[~both_nan], tidx.numpy()[~both_nan])


def test_max_pool2d_2x2_ties_nan_and_fused_relu_mask(rng):
    # After a ReLU half the inputs are tied zeros: the first maximum must still
    # win, every NaN must win (the last one of a window), and the fused ReLU
    # mask must zero the gradient of windows whose output is not > 0.
    x = np.maximum(rng.standard_normal((2, 3, 11, 45)), 0).astype(np.float32)
    x[0, 0, 2, 7] = x[0, 0, 3, 6] = np.nan  # two NaNs in one window: the last (row-major) is reported
    x[1, 2, 10, 44] = np.nan  # in the row and column no window covers (odd H, W): ignored
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    win = x[:, :, :10, :44].reshape(2, 3, 5, 2, 22, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 5, 22, 4)
    first_max = np.argmax(np.nan_to_num(win, nan=-np.inf), axis=-1)
    last_nan = 3 - np.argmax(np.isnan(win)[..., ::-1], axis=-1)
    pick = np.where(np.isnan(win).any(-1), last_nan, first_max)
    oh, ow = np.meshgrid(np.arange(5), np.arange(22), indexing="ij")
    expected_idx = (2 * oh + pick // 2) * 45 + 2 * ow + pick % 2
    np.testing.assert_array_equal(idx, expected_idx)
    assert idx[0, 0, 1, 3] == 3 * 45 + 6 and np.isnan(y[0, 0, 1, 3])
    np.testing.assert_array_equal(y, np.take_along_axis(x.reshape(6, -1), idx.reshape(6, -1), axis=1).reshape(y.shape))
    dy = f32(rng, *y.shape)
    for relu_output in (None, y):
        g = dy if relu_output is None else np.where(y > 0, dy, 0).astype(np.float32)
        dx = F.max_pool2d_backward(dy, idx, x.shape, 2, relu_output=relu_output)
        expected = np.zeros(x.shape, np.float32)
        planes = expected.reshape(6, -1)
        np.put_along_axis(planes, idx.reshape(6, -1), g.reshape(6, -1), axis=1)
        np.testing.assert_array_equal(dx, expected)


def test_max_pool2d_nan_propagates():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1
    assert not np.isnan(y[0, 0, 1:, :]).any() and not np.isnan(y[0, 0, :, 1]).any()
    dx = F.max_pool2d_backward(np.ones_like(y), idx, x.shape, 2)
    assert dx[0, 0, 0, 1] == 1 and dx[0, 0, 1, 1] == 0


def test_max_pool2d_backward_rejects_bad_indices():
    x = np.zeros((1, 1, 4, 4), np.float32)
    _, idx = F.max_pool2d(x, 2, return_indices=True)
    idx = idx.copy()
    idx[0, 0, 0, 0] = 16  # outside the 4x4 plane: must not write out of bounds
    with pytest.raises(ValueError, match="16"):
        F.max_pool2d_backward(np.ones((1, 1, 2, 2)), idx, x.shape, 2)
    # int64 indices (PyTorch's dtype) are accepted
    _, idx = F.max_pool2d(x, 2, return_indices=True)
    F.max_pool2d_backward(np.ones((1, 1, 2, 2)), idx.astype(np.int64), x.shape, 2)


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["include_pad", "exclude_pad"])
@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_avg_pool2d(case, count_include_pad, rng):
    x = f32(rng, *case["shape"])
    k, s, p = case["k"], case["s"], case["p"]
    y = F.avg_pool2d(x, k, s, p, count_include_pad)
    assert_close(y, ref.avg_pool2d(f64(x), k, s, p, count_include_pad), **tol(16), **case,
                 count_include_pad=count_include_pad)
    dy = f32(rng, *y.shape)
    dx = F.avg_pool2d_backward(dy, x.shape, k, s, p, count_include_pad)
    assert_close(dx, ref.avg_pool2d_backward(f64(dy), x.shape, k, s, p, count_include_pad), **tol(16),
                 **case, count_include_pad=count_include_pad)


ADAPTIVE_CASES = [((7, 5), (3, 2)), ((5, 5), (5, 5)), ((4, 9), (3, 4)), ((13, 11), (1, 1)),
                  ((3, 7), (5, 6)),  # output larger than input: windows repeat
                  ((6, 10), (4, 4)),
                  ((1, 1), (1, 1)), ((7, 7), (1, 1))]  # global pooling has a path of its own


@pytest.mark.parametrize("hw,out", ADAPTIVE_CASES, ids=[f"{a}->{b}" for a, b in ADAPTIVE_CASES])
def test_adaptive_avg_pool2d(hw, out, rng):
    x = f32(rng, 2, 3, *hw) if hw[0] * hw[1] > 1 else f32(rng, 64, 1000, *hw)  # 1x1: enough planes for 2 threads
    y = F.adaptive_avg_pool2d(x, out)
    assert_close(y, ref.adaptive_avg_pool2d(f64(x), out), **tol(hw[0] * hw[1]), hw=hw, out=out)
    dy = f32(rng, *y.shape)
    assert_close(F.adaptive_avg_pool2d_backward(dy, x.shape), ref.adaptive_avg_pool2d_backward(f64(dy), x.shape),
                 **tol(out[0] * out[1]), hw=hw, out=out)


def test_adaptive_avg_pool2d_int_and_none(rng):
    x = f32(rng, 1, 2, 7, 5)
    assert F.adaptive_avg_pool2d(x, 3).shape == (1, 2, 3, 3)
    y = F.adaptive_avg_pool2d(x, (None, 2))
    assert y.shape == (1, 2, 7, 2)
    assert_close(y, ref.adaptive_avg_pool2d(f64(x), (7, 2)), **tol(5))


# ---------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------

ACT_SHAPES = [(1,), (17,), (3, 5, 7), (2, 3, 11, 13), (4099,)]


def _act_input(rng, shape):
    x = f32(rng, *shape, scale=3.0)
    x.flat[: min(3, x.size)] = [0.0, 40.0, -40.0][: min(3, x.size)]  # kink and saturation
    return x


@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_relu(shape, rng):
    x, dy = _act_input(rng, shape), f32(rng, *shape)
    y = F.relu(x)
    assert_close(y, ref.relu(f64(x)), rtol=0, atol=0, shape=shape)
    assert_close(F.relu_backward(dy, y), ref.relu_backward(f64(dy), f64(x)), rtol=0, atol=0, shape=shape)


@pytest.mark.parametrize("slope", [0.01, 0.2, -0.5], ids=lambda s: f"slope={s}")
@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_leaky_relu(shape, slope, rng):
    x, dy = _act_input(rng, shape), f32(rng, *shape)
    # one float32 multiply: rtol 1e-6
    assert_close(F.leaky_relu(x, slope), ref.leaky_relu(f64(x), slope), rtol=1e-6, atol=0, shape=shape)
    assert_close(F.leaky_relu_backward(dy, x, slope), ref.leaky_relu_backward(f64(dy), f64(x), slope),
                 rtol=1e-6, atol=0, shape=shape)


def test_leaky_relu_default_slope(rng):
    x = f32(rng, 50)
    assert_close(F.leaky_relu(x), ref.leaky_relu(f64(x), 0.01), rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_sigmoid_tanh(name, shape, rng):
    x, dy = _act_input(rng, shape), f32(rng, *shape)
    fwd, bwd = getattr(F, name), getattr(F, name + "_backward")
    y = fwd(x)
    # transcendental in float32: a few ulp
    assert_close(y, getattr(ref, name)(f64(x)), rtol=1e-5, atol=1e-6, shape=shape, op=name)
    assert np.isfinite(y).all()
    assert_close(bwd(dy, y), getattr(ref, name + "_backward")(f64(dy), f64(y)), rtol=1e-5, atol=1e-6,
                 shape=shape, op=name)


def test_softmax(rng):
    x = f32(rng, 5, 7, scale=10)
    x[0] = [1e4, -1e4, 0, 3, 1e4, 2, 1]
    p = F.softmax(x)
    assert p.dtype == np.float32 and np.isfinite(p).all()
    expected = np.exp(ref._log_softmax(f64(x)))
    assert_close(p, expected, rtol=1e-5, atol=1e-7)
    assert_close(F.softmax(x.T, axis=0), expected.T, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------

LINEAR_CASES = [dict(N=1, i=1, o=1), dict(N=7, i=13, o=5), dict(N=33, i=67, o=19), dict(N=5, i=129, o=3)]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", LINEAR_CASES, ids=case_id)
def test_linear(case, bias, rng):
    N, i, o = case["N"], case["i"], case["o"]
    x, w, dy = f32(rng, N, i), f32(rng, o, i), f32(rng, N, o)
    b = f32(rng, o) if bias else None
    y = F.linear(x, w, b)
    assert_close(y, ref.linear(f64(x), f64(w), None if b is None else f64(b)), **tol(i), **case, bias=bias)
    dx, dw, db = F.linear_backward(dy, x, w, bias=bias)
    rdx, rdw, rdb = ref.linear_backward(f64(dy), f64(x), f64(w))
    assert_close(dx, rdx, **tol(o), **case, grad="dx")
    assert_close(dw, rdw, **tol(N), **case, grad="dw")
    if bias:
        assert_close(db, rdb, **tol(N), **case, grad="db")
    else:
        assert db is None


def test_linear_backward_accumulates_into_given_grads(rng):
    x, w, dy = f32(rng, 6, 5), f32(rng, 4, 5), f32(rng, 6, 4)
    gw, gb = np.ones((4, 5), np.float32), np.ones(4, np.float32)
    dx, gw_out, gb_out = F.linear_backward(dy, x, w, grad_weight=gw, grad_bias=gb, input_grad=False)
    assert dx is None and gw_out is gw and gb_out is gb
    _, rdw, rdb = ref.linear_backward(f64(dy), f64(x), f64(w))
    assert_close(gw, 1 + rdw, **tol(6))
    assert_close(gb, 1 + rdb, **tol(6))
    dx, _, _ = F.linear_backward(dy, x, w, weight_grad=False)
    assert_close(dx, ref.linear_backward(f64(dy), f64(x), f64(w))[0], **tol(4))


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("N,classes", [(1, 1), (1, 10), (7, 3), (64, 10), (5, 1001)])
def test_cross_entropy(N, classes, rng):
    z = f32(rng, N, classes, scale=3)
    t = rng.integers(0, classes, size=N)
    loss, probs = F.cross_entropy_forward(z, t)
    expected = ref.cross_entropy(f64(z), t)
    assert abs(loss - expected) <= 1e-5 * (1 + abs(expected)), (N, classes, loss, expected)
    assert F.cross_entropy(z, t) == pytest.approx(loss, rel=1e-12)
    assert F.cross_entropy(z, t, reduction="sum") == pytest.approx(loss * N, rel=1e-12)
    g = F.cross_entropy_backward(probs, t)
    rg = ref.cross_entropy_backward(f64(z), t)
    assert_close(g, rg, rtol=1e-4, atol=1e-6 / N, N=N, classes=classes)
    assert_close(F.cross_entropy_backward(probs, t, scale=N), rg * N, rtol=1e-4, atol=1e-6, N=N,
                 classes=classes, reduction="sum")


def test_cross_entropy_extreme_logits_are_finite():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4], [-1e4, 0.0, 1e4]], np.float32)
    t = np.array([1, 2, 0, 0])
    loss, probs = F.cross_entropy_forward(z, t)
    assert np.isfinite(loss) and np.isfinite(probs).all()
    assert loss == pytest.approx(ref.cross_entropy(f64(z), t), rel=1e-6)
    g = F.cross_entropy_backward(probs, t)
    assert np.isfinite(g).all()
    assert_close(g, ref.cross_entropy_backward(f64(z), t), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8, np.int16])
def test_cross_entropy_label_dtypes(label_dtype, rng):
    z = f32(rng, 6, 4)
    t = rng.integers(0, 4, size=6)
    assert F.cross_entropy(z, t.astype(label_dtype)) == F.cross_entropy(z, t)
    assert F.cross_entropy(z, list(t)) == F.cross_entropy(z, t)


@pytest.mark.parametrize("shape", [(1,), (7, 3), (2, 3, 5, 7), (10007,)], ids=str)
def test_mse_loss(shape, rng):
    x, t = f32(rng, *shape), f32(rng, *shape)
    n = x.size
    expected = ref.mse_loss(f64(x), f64(t))
    assert F.mse_loss(x, t) == pytest.approx(expected, rel=1e-5)
    assert F.mse_loss(x, t, reduction="sum") == pytest.approx(expected * n, rel=1e-5)
    g = F.mse_loss_backward(x, t)
    assert_close(g, ref.mse_loss_backward(f64(x), f64(t)), rtol=1e-5, atol=0, shape=shape)
    assert_close(F.mse_loss_backward(x, t, scale=n), ref.mse_loss_backward(f64(x), f64(t)) * n,
                 rtol=1e-5, atol=0, shape=shape, reduction="sum")


# ---------------------------------------------------------------------------
# SGD
# ---------------------------------------------------------------------------

SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.02, momentum=0.9, dampening=0.3),
    dict(lr=0.02, momentum=0.8, nesterov=True),
    dict(lr=0.01, momentum=0.9, dampening=0.1, weight_decay=0.05),
    dict(lr=0.03, momentum=0.5, weight_decay=0.1, nesterov=True),
]


@pytest.mark.parametrize("hp", SGD_CASES, ids=case_id)
def test_sgd_step_several_steps(hp, rng):
    p = f32(rng, 37, 3)
    buf = np.empty_like(p) if hp.get("momentum", 0) else None
    rp, rbuf = f64(p), None
    for step in range(5):
        g = f32(rng, *p.shape)
        F.sgd_step(p, g, buf, first_step=step == 0, **hp)
        rp, rbuf = ref.sgd_step(rp, f64(g), rbuf, **hp)
        # a handful of float32 fused multiply-adds per step, compounded
        assert_close(p, rp, rtol=1e-5, atol=1e-6, step=step, **hp)
        if buf is not None:
            assert_close(buf, rbuf, rtol=1e-5, atol=1e-6, step=step, what="momentum buffer", **hp)


def test_sgd_step_never_converts():
    p64 = np.zeros(3)
    with pytest.raises(TypeError, match="param"):
        F.sgd_step(p64, np.zeros(3, np.float32), None, 0.1)
    p = np.zeros((4, 4), np.float32)
    with pytest.raises(TypeError, match="param"):
        F.sgd_step(p[:, ::2], np.zeros((4, 2), np.float32), None, 0.1)
    with pytest.raises(TypeError, match="grad"):
        F.sgd_step(p, np.zeros((4, 4)), None, 0.1)
    with pytest.raises(TypeError, match="momentum_buffer"):
        F.sgd_step(p, np.zeros((4, 4), np.float32), np.zeros((4, 4)), 0.1, momentum=0.9)


# ---------------------------------------------------------------------------
# input conversion rule
# ---------------------------------------------------------------------------

def test_float32_contiguous_passes_through_without_copy(rng):
    x = f32(rng, 2, 3, 5, 5)
    assert F.as_float32(x) is x
    lab = np.arange(3, dtype=np.int64)
    assert F.as_labels(lab) is lab


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_],
                         ids=lambda d: np.dtype(d).name)
def test_other_real_dtypes_are_converted(dtype, rng):
    x = (rng.standard_normal((2, 3, 6, 6)) * 4).astype(dtype)
    x32 = x.astype(np.float32)
    for op in (F.relu, lambda a: F.max_pool2d(a, 2), lambda a: F.avg_pool2d(a, 3, 1, 1),
               lambda a: F.adaptive_avg_pool2d(a, 2), F.sigmoid):
        np.testing.assert_array_equal(op(x), op(x32), err_msg=np.dtype(dtype).name)
    w = rng.standard_normal((4, 3 * 36)).astype(dtype)
    np.testing.assert_array_equal(F.linear(x.reshape(2, -1), w), F.linear(x32.reshape(2, -1), w.astype(np.float32)))


def test_array_likes_are_converted():
    np.testing.assert_array_equal(F.relu([[-1, 2], [3, -4]]), np.array([[0, 2], [3, 0]], np.float32))
    assert F.relu(-2.5).shape == ()
    assert F.mse_loss([1, 2], [1, 4]) == 2.0


@pytest.mark.parametrize("layout", ["transposed", "sliced", "negative_stride", "fortran", "byteswapped"])
def test_non_contiguous_inputs_give_the_contiguous_result(layout, rng):
    base = f32(rng, 4, 6, 10, 12)
    x = {"transposed": base.transpose(0, 1, 3, 2),
         "sliced": base[::2, 1:5, ::2, 1::2],
         "negative_stride": base[:, :, ::-1, ::-1],
         "fortran": np.asfortranarray(base),
         "byteswapped": base.astype(">f4")}[layout]
    xc = np.ascontiguousarray(x, dtype=np.float32)
    before = x.copy()
    for name, op in [("relu", F.relu), ("maxpool", lambda a: F.max_pool2d(a, 3, 2, 1)),
                     ("avgpool", lambda a: F.avg_pool2d(a, 2)), ("adaptive", lambda a: F.adaptive_avg_pool2d(a, 3)),
                     ("tanh", F.tanh), ("linear", lambda a: F.linear(a.reshape(a.shape[0], -1)[:, :5],
                                                                     np.ones((2, 5), np.float32)))]:
        np.testing.assert_array_equal(op(x), op(xc), err_msg=f"{layout} {name}")
    np.testing.assert_array_equal(x, before)  # inputs are never written


def test_non_contiguous_labels_and_grads(rng):
    z = f32(rng, 8, 5)
    t = np.arange(8) % 5
    assert F.cross_entropy(z[::2], t[::2]) == F.cross_entropy(np.ascontiguousarray(z[::2]), t[::2].copy())
    x, w = f32(rng, 6, 5), f32(rng, 3, 5)
    dy = f32(rng, 3, 6).T  # non-contiguous grad_output
    a = F.linear_backward(dy, x, w)
    b = F.linear_backward(np.ascontiguousarray(dy), x, w)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("bad", [np.zeros((2, 3), np.complex64), np.array([[1, "a"]], object),
                                 np.array(["x", "y"]), np.zeros(2, "datetime64[s]")],
                         ids=["complex", "object", "str", "datetime"])
def test_non_real_dtypes_raise_type_error_naming_the_argument(bad):
    with pytest.raises(TypeError, match="input.*dtype"):
        F.relu(bad)
    with pytest.raises(TypeError, match="weight"):
        F.linear(np.zeros((1, 2)), bad)
    with pytest.raises(TypeError, match="target"):
        F.mse_loss(np.zeros(bad.shape), bad)


@pytest.mark.parametrize("labels", [np.array([0.0, 1.0]), np.array([True, False]), ["a", "b"]],
                         ids=["float", "bool", "str"])
def test_labels_must_be_integers(labels):
    with pytest.raises(TypeError, match="labels"):
        F.cross_entropy(np.zeros((2, 3)), labels)


# ---------------------------------------------------------------------------
# zero-size batch
# ---------------------------------------------------------------------------

def test_zero_size_batch():
    x = np.zeros((0, 3, 8, 8), np.float32)
    assert F.max_pool2d(x, 2).shape == (0, 3, 4, 4)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert F.max_pool2d_backward(y, idx, x.shape, 2).shape == x.shape
    assert F.avg_pool2d(x, 3, 2, 1).shape == (0, 3, 4, 4)
    assert F.avg_pool2d_backward(np.zeros((0, 3, 4, 4)), x.shape, 3, 2, 1).shape == x.shape
    assert F.adaptive_avg_pool2d(x, 3).shape == (0, 3, 3, 3)
    assert F.adaptive_avg_pool2d_backward(np.zeros((0, 3, 3, 3)), x.shape).shape == x.shape
    assert F.relu(x).shape == x.shape and F.tanh_backward(x, x).shape == x.shape
    assert F.linear(np.zeros((0, 5)), np.ones((4, 5)), np.ones(4)).shape == (0, 4)
    dx, dw, db = F.linear_backward(np.zeros((0, 4)), np.zeros((0, 5)), np.ones((4, 5)))
    assert dx.shape == (0, 5) and not dw.any() and not db.any()
    w = np.ones((4, 3, 3, 3), np.float32)
    assert F.conv2d(x, w, padding=1).shape == (0, 4, 8, 8)
    dx, dw, db = F.conv2d_backward(np.zeros((0, 4, 8, 8)), x, w, padding=1)
    assert dx.shape == x.shape and not dw.any() and not db.any()
    assert np.isnan(F.cross_entropy(np.zeros((0, 10)), []))  # mean of nothing, as PyTorch
    assert F.cross_entropy(np.zeros((0, 10)), np.zeros(0, np.int64), reduction="sum") == 0.0
    _, probs = F.cross_entropy_forward(np.zeros((0, 10)), [])
    assert F.cross_entropy_backward(probs, []).shape == (0, 10)


# ---------------------------------------------------------------------------
# conv2d through functional (the deep conv tests are in test_conv.py)
# ---------------------------------------------------------------------------

CONV_CASES = [
    dict(x=(2, 3, 9, 9), w=(4, 3, 3, 3)),
    dict(x=(1, 5, 11, 7), w=(6, 5, 3, 2), stride=2, padding=1),
    dict(x=(2, 4, 8, 9), w=(5, 4, 3, 3), padding="same", dilation=2),
    dict(x=(1, 3, 10, 10), w=(4, 3, 4, 4), padding="same"),          # even kernel: asymmetric pad
    dict(x=(2, 6, 7, 7), w=(9, 2, 3, 3), padding=1, groups=3),
    dict(x=(2, 8, 9, 9), w=(8, 1, 3, 3), stride=(2, 1), padding=(1, 0), groups=8),  # depthwise
    dict(x=(3, 16, 5, 5), w=(7, 16, 1, 1), bias=False),
]


@pytest.mark.parametrize("algo", ["im2col", "direct", "auto"])
@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
def test_conv2d_vs_reference(case, algo, rng):
    kw = {k: case[k] for k in ("stride", "padding", "dilation", "groups") if k in case}
    x, w = f32(rng, *case["x"]), f32(rng, *case["w"])
    b = f32(rng, case["w"][0]) if case.get("bias", True) else None
    y = F.conv2d(x, w, b, algo=algo, **kw)
    ry = ref.conv2d(f64(x), f64(w), None if b is None else f64(b), **kw)
    red = int(np.prod(case["w"][1:]))
    assert_close(y, ry, **tol(red), algo=algo, **case)
    dy = f32(rng, *y.shape)
    dx, dw, db = F.conv2d_backward(dy, x, w, algo=algo, bias=b is not None, **kw)
    rdx, rdw, rdb = ref.conv2d_backward(f64(dy), f64(x), f64(w), **kw)
    assert_close(dx, rdx, **tol(case["w"][0] * red), algo=algo, grad="dx", **case)
    assert_close(dw, rdw, **tol(y.shape[0] * y.shape[2] * y.shape[3]), algo=algo, grad="dw", **case)
    if b is None:
        assert db is None
    else:
        assert_close(db, rdb, **tol(y.shape[0] * y.shape[2] * y.shape[3]), algo=algo, grad="db", **case)


def test_conv2d_backward_accumulates_and_skips(rng):
    x, w = f32(rng, 2, 3, 6, 6), f32(rng, 4, 3, 3, 3)
    dy = f32(rng, 2, 4, 4, 4)
    gw, gb = np.full(w.shape, 0.5, np.float32), np.full(4, 0.5, np.float32)
    dx, gw2, gb2 = F.conv2d_backward(dy, x, w, grad_weight=gw, grad_bias=gb, input_grad=False)
    assert dx is None and gw2 is gw and gb2 is gb
    _, rdw, rdb = ref.conv2d_backward(f64(dy), f64(x), f64(w))
    assert_close(gw, 0.5 + rdw, **tol(32))
    assert_close(gb, 0.5 + rdb, **tol(32))
    dx, gw3, gb3 = F.conv2d_backward(dy, x, w, weight_grad=False)
    assert gw3 is None and gb3 is None and dx.shape == x.shape
    with pytest.raises(TypeError, match="grad_weight"):
        F.conv2d_backward(dy, x, w, grad_weight=np.zeros(w.shape))  # float64: would be a hidden copy
