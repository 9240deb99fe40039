"""BatchNorm: functional kernels vs the NumPy reference, finite differences on the reference,
module semantics (train/eval, momentum, buffers, state dicts) and PyTorch as a second oracle.

The kernels have two loop orders (csrc/norm/batch_norm.cpp): per channel for L = H*W >= 16, per
row of channels below; SHAPES and PATH_SHAPES cover both and the sizes around the switch. The
per-channel loops have per-ISA versions (batch_norm_runs__<isa>.cpp), so the kernel tests run on
every ISA this CPU supports (the ``isa`` fixture).
Tolerances: statistics are accumulated in float64, so outputs differ from the float64
reference by float32 rounding of a few operations: rtol 1e-4, atol 1e-5 (dx sums
M = N*L terms: atol scaled by sqrt(M) through conftest.tol).
"""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from conftest import assert_close, f32, f64, needs_torch, ref, tol, torch
from pycnn import functional as F
from pycnn import nn


SHAPES = [(5, 3), (4, 7, 9), (3, 5, 7, 6), (2, 1, 3, 3), (7, 4, 1, 1)]


def numgrad(f, x, eps=1e-6):
    """Central finite differences of a scalar function of a float64 array."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        hi = f(x)
        x[i] = old - eps
        lo = f(x)
        x[i] = old
        g[i] = (hi - lo) / (2 * eps)
    return g


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
def test_batch_norm_train_matches_reference(shape, affine, rng, isa):
    C = shape[1]
    x = f32(rng, *shape, scale=3.0) + 5.0  # an offset mean: the variance must not cancel
    w = f32(rng, C) if affine else None
    b = f32(rng, C) if affine else None
    rm, rv = f32(rng, C), np.abs(f32(rng, C)) + 0.5
    rm0, rv0 = rm.copy(), rv.copy()
    y, mean, rstd = F.batch_norm_forward(x, rm, rv, w, b, training=True, momentum=0.3, eps=1e-3)
    ey, emean, evar, erm, erv = ref.batch_norm_train(f64(x), None if w is None else f64(w),
                                                      None if b is None else f64(b), f64(rm0), f64(rv0), 0.3, 1e-3)
    assert_close(y, ey, **tol(1), shape=shape)
    assert_close(mean, emean, rtol=1e-6, atol=1e-6, shape=shape)
    assert_close(rstd, 1 / np.sqrt(evar + 1e-3), rtol=1e-6, atol=0, shape=shape)
    assert_close(rm, erm, rtol=1e-6, atol=1e-6, shape=shape)
    assert_close(rv, erv, rtol=1e-6, atol=1e-6, shape=shape)
    dy = f32(rng, *shape)
    gw = np.full(C, 0.5, np.float32) if affine else None
    gb = np.full(C, -0.25, np.float32) if affine else None
    dx, gw2, gb2 = F.batch_norm_backward(dy, x, mean, rstd, w, grad_weight=gw, grad_bias=gb)
    edx, edw, edb = ref.batch_norm_backward(f64(dy), f64(x), None if w is None else f64(w), 1e-3)
    M = x.size // C
    assert_close(dx, edx, **tol(M), shape=shape)
    if affine:
        assert gw2 is gw and gb2 is gb  # accumulated into the given arrays
        assert_close(gw, edw + 0.5, **tol(M), shape=shape)
        assert_close(gb, edb - 0.25, **tol(M), shape=shape)
    else:
        assert gw2 is None and gb2 is None


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_eval_matches_reference(shape, rng, isa):
    C = shape[1]
    x, w, b = f32(rng, *shape), f32(rng, C), f32(rng, C)
    rm, rv = f32(rng, C), np.abs(f32(rng, C)) + 0.1
    y = F.batch_norm(x, rm, rv, w, b, training=False)
    assert_close(y, ref.batch_norm_eval(f64(x), f64(rm), f64(rv), f64(w), f64(b)), **tol(1))
    assert_close(F.batch_norm(x, rm, rv, w, b, relu=True),
                 np.maximum(ref.batch_norm_eval(f64(x), f64(rm), f64(rv), f64(w), f64(b)), 0), **tol(1))


# Values per channel and image (L) on both sides of the switch between the row path (L < 16) and the
# channel path, with channel counts that split unevenly over threads.
PATH_SHAPES = [(9, 37, 1), (6, 37, 2, 2), (5, 19, 15), (5, 19, 4, 4), (5, 19, 17), (33, 6), (3, 5, 33), (4, 6, 10, 10)]


@pytest.mark.parametrize("shape", PATH_SHAPES, ids=str)
@pytest.mark.parametrize("relu", [False, True], ids=["", "relu"])
def test_batch_norm_both_loop_orders_match_reference(shape, relu, rng, isa):
    C = shape[1]
    x = f32(rng, *shape, scale=2.0) - 3.0
    w, b = f32(rng, C), f32(rng, C)
    rm, rv = f32(rng, C), np.abs(f32(rng, C)) + 0.5
    rm0, rv0 = rm.copy(), rv.copy()
    y, mean, rstd = F.batch_norm_forward(x, rm, rv, w, b, training=True, momentum=0.2, relu=relu)
    ey, emean, evar, erm, erv = ref.batch_norm_train(f64(x), f64(w), f64(b), f64(rm0), f64(rv0), 0.2)
    assert_close(y, np.maximum(ey, 0) if relu else ey, **tol(1), shape=shape)
    assert_close(mean, emean, rtol=1e-6, atol=1e-6, shape=shape)
    assert_close(rstd, 1 / np.sqrt(evar + 1e-5), rtol=1e-6, atol=0, shape=shape)
    assert_close(rm, erm, rtol=1e-6, atol=1e-6, shape=shape)
    assert_close(rv, erv, rtol=1e-6, atol=1e-6, shape=shape)
    plain = F.batch_norm(x, None, None, w, b, training=True)
    if relu:
        np.testing.assert_array_equal(y, np.maximum(plain, 0))
    else:
        np.testing.assert_array_equal(y, plain)
    dy = f32(rng, *shape)
    gw, gb = np.full(C, 0.5, np.float32), np.full(C, -0.25, np.float32)
    dx, _, _ = F.batch_norm_backward(dy, x, mean, rstd, w, grad_weight=gw, grad_bias=gb)
    edx, edw, edb = ref.batch_norm_backward(f64(dy), f64(x), f64(w))
    M = x.size // C
    assert_close(dx, edx, **tol(M), shape=shape)
    assert_close(gw, edw + 0.5, **tol(M), shape=shape)
    assert_close(gb, edb - 0.25, **tol(M), shape=shape)
    dx2, _, _ = F.batch_norm_backward(dy, x, mean, rstd, w, grad_weight=np.zeros(C, np.float32),
                                      grad_bias=np.zeros(C, np.float32), input_grad=False)
    assert dx2 is None
    ye = F.batch_norm(x, rm, rv, w, b, training=False, relu=relu)
    ee = ref.batch_norm_eval(f64(x), f64(rm), f64(rv), f64(w), f64(b))
    assert_close(ye, np.maximum(ee, 0) if relu else ee, **tol(1), shape=shape)


# Large enough that both loop orders use several threads (a thread needs 32k operations).
@pytest.mark.parametrize("shape", [(256, 301), (64, 301, 2, 2), (16, 301, 5, 5)], ids=str)
def test_batch_norm_bitwise_equal_for_any_thread_count(shape, rng, isa):
    C = shape[1]
    x, dy = f32(rng, *shape) + 1.0, f32(rng, *shape)
    w, b = f32(rng, C), f32(rng, C)
    old = pycnn.get_num_threads()
    results = []
    try:
        for nt in (1, 2, 3):
            pycnn.set_num_threads(nt)
            rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
            y, mean, rstd = F.batch_norm_forward(x, rm, rv, w, b, training=True, relu=True)
            dx, gw, gb = F.batch_norm_backward(dy, x, mean, rstd, w)
            ye = F.batch_norm(x, rm, rv, w, b, training=False)
            results.append((y, mean, rstd, rm, rv, dx, gw, gb, ye))
    finally:
        pycnn.set_num_threads(old)
    for other in results[1:]:
        for a, e in zip(other, results[0]):
            np.testing.assert_array_equal(a, e)


def test_batch_norm_reference_gradient_by_finite_differences(rng):
    x = rng.standard_normal((3, 2, 4)) * 2 + 1
    w, b = rng.standard_normal(2), rng.standard_normal(2)
    dy = rng.standard_normal(x.shape)

    def loss_x(xx):
        return float((ref.batch_norm_train(xx, w, b)[0] * dy).sum())

    def loss_w(ww):
        return float((ref.batch_norm_train(x, ww, b)[0] * dy).sum())

    def loss_b(bb):
        return float((ref.batch_norm_train(x, w, bb)[0] * dy).sum())

    dx, dw, db = ref.batch_norm_backward(dy, x, w)
    assert_close(dx, numgrad(loss_x, x.copy()), rtol=1e-5, atol=1e-7)
    assert_close(dw, numgrad(loss_w, w.copy()), rtol=1e-5, atol=1e-7)
    assert_close(db, numgrad(loss_b, b.copy()), rtol=1e-5, atol=1e-7)


def test_fused_relu_is_bitwise_relu_of_output(rng, isa):
    x, w, b = f32(rng, 4, 3, 5, 5), f32(rng, 3), f32(rng, 3)
    y = F.batch_norm(x, None, None, w, b, training=True)
    yr = F.batch_norm(x, None, None, w, b, training=True, relu=True)
    np.testing.assert_array_equal(yr, np.maximum(y, 0))


def test_batch_norm_errors(rng):
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(f32(rng, 1, 3), None, None, training=True)
    with pytest.raises(ValueError, match=r"expected weight of shape \(3,\)"):
        F.batch_norm(f32(rng, 2, 3, 4, 4), None, None, np.ones(4, np.float32), training=True)
    with pytest.raises(ValueError, match=r"\(N, C\), \(N, C, L\), \(N, C, H, W\) or \(N, C, D, H, W\)"):
        F.batch_norm(f32(rng, 5), None, None, training=True)
    with pytest.raises(ValueError, match=r"or \(N, C, D, H, W\), got \(1, 2, 1, 1, 1, 1\)"):
        F.batch_norm(f32(rng, 1, 2, 1, 1, 1, 1), None, None, training=True)
    with pytest.raises(ValueError, match="required when training=False"):
        F.batch_norm(f32(rng, 2, 3), None, None, training=False)
    with pytest.raises(TypeError, match="running_mean"):  # written in place: never converted
        F.batch_norm(f32(rng, 2, 3), np.zeros(3), np.ones(3, np.float32), training=True)
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected input of shape \(N, C, H, W\)"):
        bn(f32(rng, 2, 3, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected input of shape \(N, C\) or \(N, C, L\)"):
        nn.BatchNorm1d(3)(f32(rng, 2, 3, 4, 4))
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm2d(3, momentum=1.5)


# ---------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------

def test_module_names_buffers_and_defaults():
    bn = nn.BatchNorm2d(4)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    sd = bn.state_dict()
    assert sd["num_batches_tracked"].dtype == np.int64 and sd["num_batches_tracked"].shape == ()
    np.testing.assert_array_equal(sd["weight"], 1)
    np.testing.assert_array_equal(sd["running_var"], 1)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(nn.BatchNorm1d(3, affine=False).state_dict()) == ["running_mean", "running_var",
                                                                  "num_batches_tracked"]
    assert list(nn.BatchNorm1d(3, track_running_stats=False).state_dict()) == ["weight", "bias"]
    assert "BatchNorm2d(4, eps=1e-05, momentum=0.1" in repr(bn)


def test_module_train_updates_running_stats_and_eval_uses_them(rng):
    bn = nn.BatchNorm2d(3, momentum=0.2)
    x = f32(rng, 6, 3, 4, 5, scale=2.0) + 1.0
    bn(x)
    bn(x)
    assert int(bn.num_batches_tracked) == 2
    _, mean, var, _, _ = ref.batch_norm_train(f64(x))
    unbiased = var * x[:, 0].size / (x[:, 0].size - 1)
    assert_close(bn.running_mean, (1 - 0.8 ** 2) * mean, rtol=1e-5, atol=1e-6)
    assert_close(bn.running_var, 0.8 ** 2 + (1 - 0.8 ** 2) * unbiased, rtol=1e-5, atol=1e-6)
    bn.eval()
    y = bn(x)
    assert_close(y, ref.batch_norm_eval(f64(x), f64(bn.running_mean), f64(bn.running_var)), **tol(1))
    with pytest.raises(RuntimeError, match="eval mode"):
        bn.backward(np.ones_like(y))


def test_momentum_none_is_cumulative_average(rng):
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [f32(rng, 8, 2) + i for i in range(3)]
    for x in xs:
        bn(x)
    assert_close(bn.running_mean, np.mean([x.mean(axis=0) for x in xs], axis=0), rtol=1e-5, atol=1e-6)


def test_module_backward_accumulates_and_frozen(rng):
    bn = nn.BatchNorm1d(3)
    bn.weight.data[...] = f32(rng, 3)
    x, dy = f32(rng, 5, 3, 7), f32(rng, 5, 3, 7)
    bn(x)
    dx = bn.backward(dy)
    edx, edw, edb = ref.batch_norm_backward(f64(dy), f64(x), f64(bn.weight.data))
    assert_close(dx, edx, **tol(35))
    bn(x)
    bn.backward(dy)
    assert_close(bn.weight.grad, 2 * edw, **tol(35))
    assert_close(bn.bias.grad, 2 * edb, **tol(35))
    bn.zero_grad()
    bn.weight.requires_grad = False
    bn(x)
    assert bn.backward(dy, input_grad=False) is None
    np.testing.assert_array_equal(bn.weight.grad, 0)
    assert_close(bn.bias.grad, edb, **tol(35))


def test_no_running_stats_uses_batch_stats_in_eval(rng):
    bn = nn.BatchNorm2d(2, track_running_stats=False).eval()
    x = f32(rng, 3, 2, 4, 4)
    assert_close(bn(x), ref.batch_norm_train(f64(x))[0], **tol(1))


def test_sequential_fuses_relu_with_same_results(rng):
    from pycnn.nn.container import _RELU_PRODUCERS

    assert nn.BatchNorm2d in _RELU_PRODUCERS and nn.BatchNorm1d in _RELU_PRODUCERS
    x, dy = f32(rng, 4, 3, 6, 6), f32(rng, 4, 3, 3, 3)
    fused = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2))

    class Plain(nn.Module):  # the same chain without Sequential's fusion
        def __init__(self, bn):
            super().__init__()
            self.bn, self.relu, self.pool = bn, nn.ReLU(), nn.MaxPool2d(2)

        def forward(self, x):
            return self.pool(self.relu(self.bn(x)))

        def backward(self, g, input_grad=True):
            return self.bn.backward(self.relu.backward(self.pool.backward(g)))

    plain = Plain(nn.BatchNorm2d(3))
    plain.bn.weight.data[...] = fused[0].weight.data = f32(rng, 3)
    np.testing.assert_array_equal(fused(x), plain(x))
    np.testing.assert_array_equal(fused.backward(dy), plain.backward(dy))
    np.testing.assert_array_equal(fused[0].weight.grad, plain.bn.weight.grad)


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("shape", [(6, 3), (4, 5, 7), (3, 4, 5, 6)], ids=str)
def test_matches_torch_train_eval_and_grads(shape, rng):
    C = shape[1]
    cls, tcls = (nn.BatchNorm2d, torch.nn.BatchNorm2d) if len(shape) == 4 else (nn.BatchNorm1d, torch.nn.BatchNorm1d)
    bn, tbn = cls(C, momentum=0.3), tcls(C, momentum=0.3)
    with torch.no_grad():
        tbn.weight.copy_(torch.from_numpy(f32(rng, C)))
        tbn.bias.copy_(torch.from_numpy(f32(rng, C)))
    bn.load_state_dict(tbn.state_dict())
    for step in range(3):
        x, dy = f32(rng, *shape, scale=2.0) + step, f32(rng, *shape)
        tx = torch.from_numpy(x).requires_grad_(True)
        ty = tbn(tx)
        ty.backward(torch.from_numpy(dy))
        y = bn(x)
        dx = bn.backward(dy)
        assert_close(y, ty.detach().numpy(), **tol(1), step=step)
        assert_close(dx, tx.grad.numpy(), **tol(x.size // C), step=step)
    assert_close(bn.weight.grad, tbn.weight.grad.numpy(), **tol(3 * x.size // C))
    assert_close(bn.bias.grad, tbn.bias.grad.numpy(), **tol(3 * x.size // C))
    for k, v in tbn.state_dict().items():
        assert_close(bn.state_dict()[k], v.numpy(), rtol=1e-5, atol=1e-6, key=k)
    bn.eval(), tbn.eval()
    x = f32(rng, *shape)
    assert_close(bn(x), tbn(torch.from_numpy(x)).detach().numpy(), **tol(1))
    # and back: pycnn's state dict into a fresh torch module
    t2 = tcls(C, momentum=0.3).eval()
    t2.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in bn.state_dict().items()})
    assert_close(bn(x), t2(torch.from_numpy(x)).detach().numpy(), **tol(1))
