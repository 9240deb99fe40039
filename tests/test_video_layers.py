"""Video layers on (N, C, D, H, W) clips: MaxPool3d, AvgPool3d, AdaptiveAvgPool3d, BatchNorm3d, Dropout3d.

Forward and every gradient against pycnn.reference (itself checked by
directional finite differences in float64), on awkward sizes (odd D/H/W,
stride != kernel, padding, dilation, ceil_mode) and on every ISA; 1 and 2
threads bitwise equal; PyTorch as a second oracle where installed;
save/load round trips; clear errors for bad input.
"""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from conftest import assert_close, case_id, f32, f64, needs_torch, ref, tol, torch
from pycnn import functional as F
from pycnn import nn
from test_dropout import check_drops_whole_channels

# (input shape, kernel, stride, padding, dilation, ceil_mode): odd sizes, stride != kernel,
# padding, dilation and ceil windows that hang past the padded input.
MAX_CASES = [
    dict(shape=(2, 3, 5, 7, 9), k=2, s=None, p=0, d=1, ceil=False),
    dict(shape=(2, 3, 5, 7, 9), k=2, s=None, p=0, d=1, ceil=True),
    dict(shape=(1, 2, 7, 6, 5), k=(3, 2, 3), s=(2, 1, 2), p=(1, 1, 0), d=1, ceil=True),
    dict(shape=(2, 2, 6, 9, 8), k=(2, 3, 2), s=(1, 2, 3), p=(1, 0, 1), d=(2, 1, 3), ceil=False),
    dict(shape=(1, 3, 4, 11, 7), k=3, s=(1, 3, 2), p=1, d=(1, 2, 2), ceil=True),
    dict(shape=(3, 1, 1, 3, 3), k=(1, 3, 3), s=1, p=(0, 1, 1), d=1, ceil=False),
]
AVG_CASES = [
    dict(shape=(2, 3, 5, 7, 9), k=2, s=None, p=0, ceil=False),
    dict(shape=(2, 3, 5, 7, 9), k=2, s=None, p=0, ceil=True),
    dict(shape=(1, 2, 7, 6, 5), k=(3, 2, 3), s=(2, 1, 2), p=(1, 1, 0), ceil=True),
    dict(shape=(2, 2, 6, 9, 8), k=(2, 3, 4), s=(3, 2, 3), p=(1, 1, 2), ceil=True),
    dict(shape=(1, 1, 3, 5, 4), k=3, s=1, p=1, ceil=False),
]
ADAPTIVE_CASES = [((2, 3, 5, 7, 9), (1, 1, 1)), ((2, 3, 5, 7, 9), (2, 3, 4)), ((1, 2, 4, 6, 3), (3, 4, 5)),
                  ((1, 2, 8, 7, 6), (8, 1, 6))]


def distinct(rng, *shape):
    """Data without ties (a permutation scaled to O(1)): each window's argmax is unique."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) / np.prod(shape) * 4 - 2).astype(np.float32)


def win(c):
    return c["k"], c["s"], c["p"]


@pytest.mark.parametrize("c", MAX_CASES, ids=case_id)
def test_max_pool3d_matches_reference(c, rng, isa):
    x = distinct(rng, *c["shape"])
    y, idx = F.max_pool3d(x, *win(c), c["d"], c["ceil"], return_indices=True)
    ey = ref.max_pool3d(f64(x), *win(c), c["d"], c["ceil"])
    assert idx.dtype == np.int32
    assert_close(y, ey, rtol=0, atol=0, **c)
    # the values-only forward is bitwise the same
    np.testing.assert_array_equal(F.max_pool3d(x, *win(c), c["d"], c["ceil"]), y)
    # the indices point at the values, flat within each (n, c) volume
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.reshape(*idx.shape[:2], -1), 2).reshape(y.shape), y)
    dy = f32(rng, *y.shape)
    dx = F.max_pool3d_backward(dy, idx, x.shape, *win(c), c["d"], c["ceil"])
    assert_close(dx, ref.max_pool3d_backward(f64(dy), f64(x), *win(c), c["d"], c["ceil"]), **tol(8), **c)
    # the module: the same values and gradient
    m = nn.MaxPool3d(*win(c), c["d"], ceil_mode=c["ceil"])
    np.testing.assert_array_equal(m(x), y)
    np.testing.assert_array_equal(m.backward(dy), dx)


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["cip", "no_cip"])
@pytest.mark.parametrize("c", AVG_CASES, ids=case_id)
def test_avg_pool3d_matches_reference(c, count_include_pad, rng, isa):
    x = f32(rng, *c["shape"])
    y = F.avg_pool3d(x, *win(c), c["ceil"], count_include_pad)
    k = int(np.prod(np.broadcast_to(c["k"], 3)))
    assert_close(y, ref.avg_pool3d(f64(x), *win(c), c["ceil"], count_include_pad), **tol(k), **c)
    dy = f32(rng, *y.shape)
    dx = F.avg_pool3d_backward(dy, x.shape, *win(c), c["ceil"], count_include_pad)
    assert_close(dx, ref.avg_pool3d_backward(f64(dy), x.shape, *win(c), c["ceil"], count_include_pad),
                 **tol(k), **c)
    m = nn.AvgPool3d(*win(c), ceil_mode=c["ceil"], count_include_pad=count_include_pad)
    np.testing.assert_array_equal(m(x), y)
    np.testing.assert_array_equal(m.backward(dy), dx)


@pytest.mark.parametrize("shape, out", ADAPTIVE_CASES, ids=str)
def test_adaptive_avg_pool3d_matches_reference(shape, out, rng, isa):
    x = f32(rng, *shape)
    y = F.adaptive_avg_pool3d(x, out)
    assert_close(y, ref.adaptive_avg_pool3d(f64(x), out), **tol(x[0, 0].size), shape=shape, out=out)
    dy = f32(rng, *y.shape)
    dx = F.adaptive_avg_pool3d_backward(dy, x.shape)
    assert_close(dx, ref.adaptive_avg_pool3d_backward(f64(dy), x.shape), **tol(8), shape=shape, out=out)
    m = nn.AdaptiveAvgPool3d(out)
    np.testing.assert_array_equal(m(x), y)
    np.testing.assert_array_equal(m.backward(dy), dx)


def test_adaptive_output_size_none_keeps_the_input_size(rng):
    x = f32(rng, 1, 2, 5, 6, 7)
    assert nn.AdaptiveAvgPool3d((None, 2, None))(x).shape == (1, 2, 5, 2, 7)
    assert F.adaptive_avg_pool3d(x, 3).shape == (1, 2, 3, 3, 3)


def directional_check(f, grad, x, rng, eps=1e-6):
    """<grad, v> against the central difference of f along random directions v (float64)."""
    for _ in range(3):
        v = rng.standard_normal(x.shape)
        fd = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
        assert abs(fd - np.sum(grad * v)) <= 1e-6 * (1 + abs(fd)), (fd, np.sum(grad * v))


def test_reference_gradients_by_finite_differences(rng):
    x = distinct(rng, 1, 2, 5, 6, 5).astype(np.float64)
    for c in MAX_CASES[:5]:
        y = ref.max_pool3d(x, *win(c), c["d"], c["ceil"])
        w = rng.standard_normal(y.shape)
        g = ref.max_pool3d_backward(w, x, *win(c), c["d"], c["ceil"])
        directional_check(lambda z: np.sum(w * ref.max_pool3d(z, *win(c), c["d"], c["ceil"])), g, x, rng)
    for c in AVG_CASES:
        for cip in (True, False):
            y = ref.avg_pool3d(x, *win(c), c["ceil"], cip)
            w = rng.standard_normal(y.shape)
            g = ref.avg_pool3d_backward(w, x.shape, *win(c), c["ceil"], cip)
            directional_check(lambda z: np.sum(w * ref.avg_pool3d(z, *win(c), c["ceil"], cip)), g, x, rng)
    for out in [(1, 1, 1), (2, 4, 3), (5, 6, 5)]:
        w = rng.standard_normal((1, 2) + out)
        g = ref.adaptive_avg_pool3d_backward(w, x.shape)
        directional_check(lambda z: np.sum(w * ref.adaptive_avg_pool3d(z, out)), g, x, rng)


def test_reference_ceil_mode_sizes_follow_pytorch_rule():
    # 5 with k=2, s=2: floor 2, ceil 3; with padding 1 and k=3, s=2 on 6: a window starting in
    # the right padding is dropped (ceil would otherwise give 4).
    assert ref.pool3d_output_size(5, 2, 2, 0) == 2
    assert ref.pool3d_output_size(5, 2, 2, 0, ceil_mode=True) == 3
    assert ref.pool3d_output_size(6, 3, 2, 1, ceil_mode=True) == 4
    assert ref.pool3d_output_size(5, 2, 3, 1, ceil_mode=True) == 2
    x = np.zeros((1, 1, 5, 5, 5), np.float32)
    assert F.max_pool3d(x, 2, 3, 1, ceil_mode=True).shape == (1, 1, 2, 2, 2)


# BatchNorm3d and Dropout3d run the existing kernels on the flattened D*H*W.
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
def test_batchnorm3d_train_and_eval_match_reference(affine, rng, isa):
    shape = (3, 4, 3, 5, 7)
    x, dy = f32(rng, *shape), f32(rng, *shape)
    bn = nn.BatchNorm3d(4, affine=affine, momentum=0.3)
    if affine:
        bn.weight.data[...] = f32(rng, 4)
        bn.bias.data[...] = f32(rng, 4)
    w = f64(bn.weight.data) if affine else None
    b = f64(bn.bias.data) if affine else None
    y = bn(x)
    ey, _, _, erm, erv = ref.batch_norm_train(f64(x), w, b, np.zeros(4), np.ones(4), momentum=0.3)
    M = x.size // 4
    assert_close(y, ey, **tol(M))
    assert_close(bn.running_mean, erm, **tol(M))
    assert_close(bn.running_var, erv, **tol(M))
    dx = bn.backward(dy)
    edx, edw, edb = ref.batch_norm_backward(f64(dy), f64(x), w)
    assert_close(dx, edx, **tol(M))
    if affine:
        assert_close(bn.weight.grad, edw, **tol(M))
        assert_close(bn.bias.grad, edb, **tol(M))
    # eval: the running statistics, and (inside enable_grad) the gradient of that affine map
    bn.eval()
    stats = bn.running_mean.copy(), bn.running_var.copy()
    assert_close(bn(x), ref.batch_norm_eval(f64(x), *map(f64, stats), w, b), **tol(1))
    bn.zero_grad()
    with nn.enable_grad():
        bn(x)
    edx, edw, edb = ref.batch_norm_eval_backward(f64(dy), f64(x), *map(f64, stats), w)
    assert_close(bn.backward(dy), edx, **tol(1))
    if affine:
        assert_close(bn.weight.grad, edw, **tol(M))
        assert_close(bn.bias.grad, edb, **tol(M))


def test_batchnorm3d_without_running_stats_uses_batch_statistics(rng):
    x = f32(rng, 2, 3, 3, 4, 5)
    bn = nn.BatchNorm3d(3, track_running_stats=False).eval()
    assert bn.running_mean is None
    assert_close(bn(x), ref.batch_norm_train(f64(x), np.ones(3), np.zeros(3))[0], **tol(x.size // 3))


def test_dropout3d_drops_whole_channels_and_is_identity_in_eval(rng):
    x = f32(rng, 6, 8, 3, 4, 5) + 5.0
    d = nn.Dropout3d(0.5)
    check_drops_whole_channels(d, x, rng)
    dy = f32(rng, *x.shape)
    d.eval()
    assert d(x) is x
    with nn.enable_grad():
        d(x)
    np.testing.assert_array_equal(d.backward(dy), dy)  # eval-mode backward: the identity


def test_one_and_two_threads_give_the_same_bits(rng):
    x = distinct(rng, 2, 8, 9, 24, 23)
    runs = []
    previous = pycnn.get_num_threads()
    try:
        for n in (1, 2):
            pycnn.set_num_threads(n)
            y, idx = F.max_pool3d(x, 3, 2, 1, (1, 2, 1), True, return_indices=True)
            a = F.avg_pool3d(x, (2, 3, 3), 2, 1, True, False)
            g = F.adaptive_avg_pool3d(x, (2, 5, 3))
            out = [y, idx, F.max_pool3d_backward(y, idx, x.shape, 3, 2, 1, (1, 2, 1), True),
                   a, F.avg_pool3d_backward(a, x.shape, (2, 3, 3), 2, 1, True, False),
                   g, F.adaptive_avg_pool3d_backward(g, x.shape)]
            bn = nn.BatchNorm3d(8)
            out += [bn(x), bn.backward(x), bn.running_var]
            runs.append(out)
    finally:
        pycnn.set_num_threads(previous)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_batchnorm3d_relu_in_sequential_is_fused_and_bitwise_unfused(rng):
    x, dy = f32(rng, 2, 3, 3, 5, 4), f32(rng, 2, 3, 3, 5, 4)
    fused = nn.Sequential(nn.BatchNorm3d(3), nn.ReLU())
    y, dx = fused(x), fused.backward(dy)
    bn, relu = nn.BatchNorm3d(3), nn.ReLU()
    np.testing.assert_array_equal(y, relu(bn(x)))
    np.testing.assert_array_equal(dx, bn.backward(relu.backward(dy)))


def video_stack():
    return nn.Sequential(nn.BatchNorm3d(3), nn.ReLU(), nn.MaxPool3d((1, 2, 2), dilation=(1, 1, 2), ceil_mode=True),
                         nn.AvgPool3d(3, (1, 2, 2), 1, ceil_mode=True, count_include_pad=False),
                         nn.Dropout3d(0.2), nn.AdaptiveAvgPool3d((2, None, 3)), nn.Flatten())


@needs_torch
def test_video_layers_match_torch(rng):
    tnn = torch.nn
    tmodel = tnn.Sequential(tnn.BatchNorm3d(3), tnn.ReLU(),
                            tnn.MaxPool3d((1, 2, 2), dilation=(1, 1, 2), ceil_mode=True),
                            tnn.AvgPool3d(3, (1, 2, 2), 1, ceil_mode=True, count_include_pad=False),
                            tnn.Dropout3d(0.2), tnn.AdaptiveAvgPool3d((2, None, 3)), tnn.Flatten())
    model = video_stack()
    model[0].weight.data[...] = f32(rng, 3)
    model[0].bias.data[...] = f32(rng, 3)
    tmodel.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    x = f32(rng, 2, 3, 5, 11, 13)
    for training in (True, False):  # dropout off in both: its masks come from different generators
        model.train(training)
        tmodel.train(training)
        model[4].p = tmodel[4].p = 0.0
        tx = torch.from_numpy(x).requires_grad_(True)
        ty = tmodel(tx)
        with nn.enable_grad():
            y = model(x)
        dy = f32(rng, *y.shape)
        ty.backward(torch.from_numpy(dy))
        assert_close(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5, training=training)
        assert_close(model.backward(dy), tx.grad.numpy(), rtol=1e-4, atol=1e-5, training=training)
        assert_close(model[0].running_mean, tmodel[0].running_mean.numpy(), rtol=1e-5, atol=1e-6)
        assert_close(model[0].running_var, tmodel[0].running_var.numpy(), rtol=1e-5, atol=1e-6)
    # max pooling's values and indices are PyTorch's, ties and NaNs included
    x = rng.integers(-2, 3, (2, 2, 7, 6, 9)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    y, idx = F.max_pool3d(x, (3, 2, 3), (2, 1, 2), 1, (1, 2, 2), True, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool3d(torch.from_numpy(x), (3, 2, 3), (2, 1, 2), 1, (1, 2, 2), True, True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())


def test_save_load_round_trip(rng, tmp_path):
    model = video_stack()
    model(f32(rng, 2, 3, 5, 11, 13))  # running statistics move away from their defaults
    model.eval()
    path = tmp_path / "video.npz"
    pycnn.save(model, path)
    loaded = pycnn.load(path)
    assert repr(loaded) == repr(model)
    x = f32(rng, 2, 3, 5, 11, 13)
    np.testing.assert_array_equal(loaded(x), model(x))


def test_bad_input_raises_clear_errors(rng):
    x = f32(rng, 1, 2, 4, 5, 6)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, D, H, W\), got \(2, 4, 5, 6\)"):
        F.max_pool3d(x[0], 2)
    with pytest.raises(ValueError, match=r"\(N, C, D, H, W\)"):
        nn.AvgPool3d(2)(x[0])
    with pytest.raises(ValueError, match=r"\(N, C, D, H, W\)"):
        nn.AdaptiveAvgPool3d(2)(x[0])
    with pytest.raises(ValueError, match="padding should be at most half"):
        nn.MaxPool3d(2, padding=(0, 2, 0))
    with pytest.raises(ValueError, match="padding should be at most half"):
        F.avg_pool3d(x, 3, padding=2)
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.max_pool3d(x, (5, 1, 1))
    with pytest.raises(ValueError, match="covers only padding"):  # taps at -1 and 4 of a 4-long axis
        F.max_pool3d(x, (2, 1, 1), 1, (1, 0, 0), (5, 1, 1))
    with pytest.raises(ValueError, match="kernel_size must be an int or a triple"):
        nn.MaxPool3d((2, 2))
    with pytest.raises(ValueError, match="dilation"):
        nn.MaxPool3d(2, dilation=0)
    with pytest.raises(TypeError, match="ceil_mode"):
        nn.AvgPool3d(2, ceil_mode=1)
    with pytest.raises(TypeError, match="count_include_pad"):
        nn.AvgPool3d(2, count_include_pad="no")
    with pytest.raises(ValueError, match="output_size must be an int or a tuple of 3"):
        nn.AdaptiveAvgPool3d((1, 2))
    with pytest.raises(ValueError, match="output_size"):
        F.adaptive_avg_pool3d(x, (1, 0, 1))
    with pytest.raises(OverflowError, match="64-bit"):  # the divisor kd*kh*kw of a huge window
        F.avg_pool3d(np.zeros((1, 1, 1, 1, 1), np.float32), 2 ** 40, 1, 2 ** 39)
    with pytest.raises(ValueError, match="too large"):  # int32 argmax: refused before any allocation
        F.max_pool3d_backward(np.zeros((1, 1, 1, 1, 1), np.float32), np.zeros((1, 1, 1, 1, 1), np.int32),
                              (1, 1, 2 ** 11, 2 ** 11, 2 ** 10), (2 ** 11, 2 ** 11, 2 ** 10))
    y, idx = F.max_pool3d(x, 2, return_indices=True)
    bad = idx.copy()
    bad.flat[0] = x[0, 0].size
    with pytest.raises(ValueError, match="outside the input volume"):
        F.max_pool3d_backward(y, bad, x.shape, 2)
    with pytest.raises(ValueError, match=r"grad_output of shape \(1, 2, 2, 2, 3\)"):
        F.avg_pool3d_backward(y[:, :, :1], x.shape, 2)
    with pytest.raises(ValueError, match=r"BatchNorm3d: expected input of shape \(N, C, D, H, W\)"):
        nn.BatchNorm3d(2)(x[0])
    with pytest.raises(ValueError, match=r"\(N, C, D, H, W\)"):
        nn.Dropout3d()(x[0])
