"""Transposed convolution (F.conv_transpose2d/1d, nn.ConvTranspose2d/1d): the C++ passes (conv2d's
kernels, so every ISA and 1 and 2 threads) against the NumPy reference, the reference against
finite differences and against conv2d (its adjoint), PyTorch, errors, and save/load.

Tolerances: conftest.tol(reduction length), as for conv2d.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, case_id, f32, f64, needs_torch, ref, tol, torch

import pycnn
from pycnn import functional as F
from pycnn import nn

# Awkward sizes: odd and prime planes, rectangular kernels, every hyper-parameter away from its default.
CASES = [
    # the decoder layer: stride 2, output_padding 1 doubles the plane
    dict(N=2, C_in=3, C_out=5, H=7, W=6, k=(3, 3), stride=2, padding=1, output_padding=1, groups=1, dilation=1),
    dict(N=1, C_in=6, C_out=9, H=5, W=7, k=(4, 3), stride=(3, 2), padding=(2, 1), output_padding=(2, 0), groups=3,
         dilation=1),
    # output_padding >= stride, allowed because it is < dilation: the output is longer than the
    # convolution it is the adjoint of reaches
    dict(N=2, C_in=4, C_out=3, H=6, W=5, k=(3, 3), stride=1, padding=0, output_padding=1, groups=1, dilation=2),
    # depthwise: the direct kernel
    dict(N=3, C_in=4, C_out=4, H=5, W=4, k=(3, 3), stride=2, padding=1, output_padding=0, groups=4, dilation=1),
    # pointwise with stride: every other output row and column only gets the bias
    dict(N=2, C_in=5, C_out=7, H=4, W=3, k=(1, 1), stride=2, padding=0, output_padding=1, groups=1, dilation=1),
    # 3x3, stride 1, 8 channels, 18 tiles: Winograd under 'auto'; planes of >= 64 pixels
    dict(N=2, C_in=8, C_out=8, H=11, W=9, k=(3, 3), stride=1, padding=1, output_padding=0, groups=1, dilation=1),
    # padding larger than the kernel reach on a tiny plane: dead taps cropped
    dict(N=1, C_in=3, C_out=2, H=2, W=3, k=(5, 4), stride=2, padding=3, output_padding=1, groups=1, dilation=(1, 2)),
    dict(N=2, C_in=2, C_out=4, H=13, W=1, k=(2, 2), stride=(1, 3), padding=0, output_padding=(0, 2), groups=2,
         dilation=1),
]


def _hp(c):
    return dict(stride=c["stride"], padding=c["padding"], output_padding=c["output_padding"], groups=c["groups"],
                dilation=c["dilation"])


def _make(c, rng):
    x = f32(rng, c["N"], c["C_in"], c["H"], c["W"])
    w = f32(rng, c["C_in"], c["C_out"] // c["groups"], *c["k"])
    b = f32(rng, c["C_out"])
    return x, w, b


def _check_against_reference(c, rng, **kw):
    x, w, b = _make(c, rng)
    hp = _hp(c)
    y = F.conv_transpose2d(x, w, b, **hp, **kw)
    y_ref = ref.conv_transpose2d(f64(x), f64(w), f64(b), **hp)
    kh, kw_ = c["k"]
    assert_close(y, y_ref, **tol(c["C_in"] // c["groups"] * kh * kw_), what="forward", **c, **kw)
    dy = f32(rng, *y.shape)
    # Parameter gradients accumulate: start from non-zero buffers to prove it.
    gw0, gb0 = f32(rng, *w.shape), f32(rng, c["C_out"])
    gw, gb = gw0.copy(), gb0.copy()
    dx, gw_out, gb_out = F.conv_transpose2d_backward(dy, x, w, **hp, **kw, grad_weight=gw, grad_bias=gb)
    assert gw_out is gw and gb_out is gb
    dx_ref, dw_ref, db_ref = ref.conv_transpose2d_backward(f64(dy), f64(x), f64(w), **hp)
    assert_close(dx, dx_ref, **tol(c["C_out"] // c["groups"] * kh * kw_), what="grad_input", **c, **kw)
    assert_close(gw, gw0 + dw_ref, **tol(c["N"] * c["H"] * c["W"]), what="grad_weight", **c, **kw)
    assert_close(gb, gb0 + db_ref, **tol(y[0, 0].size * c["N"]), what="grad_bias", **c, **kw)


@pytest.mark.usefixtures("isa", "threads")
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv_transpose2d_matches_reference(case, rng):
    _check_against_reference(case, rng)


@pytest.mark.parametrize("algo", ["im2col", "direct", "winograd"])
@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[5], CASES[6]], ids=case_id)
def test_conv_transpose2d_every_algorithm(case, algo, rng):
    """Each of conv2d's algorithms serves all three passes ('winograd' falls back where it cannot)."""
    _check_against_reference(case, rng, algo=algo)


def test_conv_transpose2d_fresh_gradients_and_skips(rng):
    c = CASES[1]
    x, w, _ = _make(c, rng)
    hp = _hp(c)
    dy = f32(rng, *F.conv_transpose2d(x, w, None, **hp).shape)
    dx, gw, gb = F.conv_transpose2d_backward(dy, x, w, **hp)
    dx_ref, dw_ref, db_ref = ref.conv_transpose2d_backward(f64(dy), f64(x), f64(w), **hp)
    assert gb.shape == (c["C_out"],)  # the output channels, not the weight's first axis
    assert_close(dx, dx_ref, **tol(w[0].size))
    assert_close(gw, dw_ref, **tol(x[0].size))
    assert_close(gb, db_ref, **tol(dy[0].size))
    assert F.conv_transpose2d_backward(dy, x, w, **hp, bias=False)[2] is None
    assert F.conv_transpose2d_backward(dy, x, w, **hp, input_grad=False)[0] is None
    dx2, gw2, gb2 = F.conv_transpose2d_backward(dy, x, w, **hp, weight_grad=False)
    assert gw2 is None and gb2 is None
    np.testing.assert_array_equal(dx2, dx)


def test_conv_transpose2d_empty_batch(rng):
    w = f32(rng, 3, 2, 3, 3)
    y = F.conv_transpose2d(np.zeros((0, 3, 4, 4), np.float32), w, f32(rng, 2), stride=2)
    assert y.shape == (0, 2, 9, 9)


CASES_1D = [
    dict(N=2, C_in=3, C_out=4, L=9, k=3, stride=2, padding=1, output_padding=1, groups=1, dilation=1),
    dict(N=1, C_in=4, C_out=6, L=7, k=4, stride=3, padding=2, output_padding=2, groups=2, dilation=1),
    dict(N=3, C_in=2, C_out=2, L=5, k=3, stride=1, padding=1, output_padding=1, groups=2, dilation=3),
]


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("case", CASES_1D, ids=case_id)
def test_conv_transpose1d_matches_reference(case, rng):
    c = case
    x, w, b = f32(rng, c["N"], c["C_in"], c["L"]), f32(rng, c["C_in"], c["C_out"] // c["groups"], c["k"]), \
        f32(rng, c["C_out"])
    hp = _hp(c)
    y = F.conv_transpose1d(x, w, b, **hp)
    assert_close(y, ref.conv_transpose1d(f64(x), f64(w), f64(b), **hp), **tol(c["C_in"] * c["k"]), **c)
    assert y.shape[2] == F.conv_transpose_output_size(c["L"], c["k"], c["stride"], c["padding"],
                                                      c["output_padding"], c["dilation"])
    dy = f32(rng, *y.shape)
    gw = np.ones_like(w)
    dx, gw_out, gb = F.conv_transpose1d_backward(dy, x, w, **hp, grad_weight=gw)
    dx_ref, dw_ref, db_ref = ref.conv_transpose1d_backward(f64(dy), f64(x), f64(w), **hp)
    assert gw_out is gw
    assert_close(dx, dx_ref, **tol(c["C_out"] * c["k"]), **c)
    assert_close(gw, dw_ref + 1, **tol(c["N"] * c["L"]), **c)
    assert_close(gb, db_ref, **tol(dy[0, 0].size * c["N"]), **c)


# ---------------------------------------------------------------------------
# the reference itself
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[6]], ids=case_id)
def test_reference_is_the_adjoint_of_conv2d(case, rng):
    """<conv_transpose2d(x, w), y> = <x, conv2d(y, w)>: the definition of the transpose, checked on
    the reference, whose transposed convolution is written as a scatter, not through conv2d."""
    x, w, _ = (f64(a) for a in _make(case, rng))
    hp = _hp(case)
    y = ref.conv_transpose2d(x, w, None, **hp)
    v = rng.standard_normal(y.shape)
    cv = ref.conv2d(v, w, None, hp["stride"], hp["padding"], hp["dilation"], hp["groups"])
    assert cv.shape == x.shape  # output_padding < stride in these cases
    np.testing.assert_allclose(np.vdot(y, v), np.vdot(x, cv), rtol=1e-12)


def test_reference_backward_matches_finite_differences(rng):
    hp = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2))
    x, w, b = rng.standard_normal((1, 2, 3, 2)), rng.standard_normal((2, 2, 2, 3)), rng.standard_normal(4)
    g = rng.standard_normal(ref.conv_transpose2d(x, w, b, **hp).shape)

    def loss(x_, w_, b_):
        return float(np.vdot(ref.conv_transpose2d(x_, w_, b_, **hp), g))

    def numeric(a, f, eps=1e-6):
        out = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            d = np.zeros_like(a)
            d[i] = eps
            out[i] = (f(a + d) - f(a - d)) / (2 * eps)
        return out

    dx, dw, db = ref.conv_transpose2d_backward(g, x, w, **hp)
    np.testing.assert_allclose(dx, numeric(x, lambda a: loss(a, w, b)), atol=1e-7)
    np.testing.assert_allclose(dw, numeric(w, lambda a: loss(x, a, b)), atol=1e-7)
    np.testing.assert_allclose(db, numeric(b, lambda a: loss(x, w, a)), atol=1e-7)


# ---------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------

def test_conv_transpose2d_module_parameters_and_init():
    pycnn.manual_seed(0)
    m = nn.ConvTranspose2d(6, 8, (3, 2), stride=2, groups=2)
    assert m.weight.shape == (6, 4, 3, 2) and m.bias.shape == (8,)
    assert list(m.state_dict()) == ["weight", "bias"]
    # PyTorch's bound: fan_in is the weight's second axis times the kernel, 4 * 3 * 2
    bound = 1 / np.sqrt(4 * 3 * 2)
    for p in (m.weight.data, m.bias.data):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.8 * bound
    assert repr(m) == "ConvTranspose2d(6, 8, kernel_size=(3, 2), stride=(2, 2), groups=2)"
    assert nn.ConvTranspose2d(2, 3, 3, bias=False).bias is None


def test_conv_transpose2d_module_forward_backward_and_freezing(rng):
    m = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1, dilation=1)
    x = f32(rng, 2, 3, 5, 4)
    seq = nn.Sequential(m, nn.ReLU())  # a following ReLU is not fused into it: the ReLU runs on its own
    y = seq(x)
    y_ref = ref.conv_transpose2d(f64(x), f64(m.weight.data), f64(m.bias.data), 2, 1, 1)
    assert_close(y, np.maximum(y_ref, 0), **tol(27))
    dy = f32(rng, *y.shape)
    dx = seq.backward(dy)
    dx_ref, dw_ref, db_ref = ref.conv_transpose2d_backward(f64(dy) * (y_ref > 0), f64(x), f64(m.weight.data), 2, 1, 1)
    assert_close(dx, dx_ref, **tol(36))
    assert_close(m.weight.grad, dw_ref, **tol(40))
    assert_close(m.bias.grad, db_ref, **tol(200))
    # A frozen weight: only the bias gradient accumulates.
    seq.zero_grad()
    m.weight.requires_grad = False
    seq(x)
    seq.backward(dy)
    assert not m.weight.grad.any()
    assert_close(m.bias.grad, db_ref, **tol(200))


def test_conv_transpose_modules_check_their_arguments():
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.ConvTranspose2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="output_padding must be smaller than either stride or dilation"):
        nn.ConvTranspose2d(4, 6, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="output_padding must be smaller"):
        nn.ConvTranspose1d(4, 6, 3, stride=1, dilation=2, output_padding=2)
    nn.ConvTranspose1d(4, 6, 3, stride=1, dilation=2, output_padding=1)  # < dilation: allowed
    with pytest.raises(TypeError, match="padding must be an int"):
        nn.ConvTranspose2d(4, 6, 3, padding="same")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        nn.ConvTranspose2d(4, 6, 3, stride=0)
    with pytest.raises(ValueError, match="output_padding must be >= 0"):
        nn.ConvTranspose2d(4, 6, 3, output_padding=-1)


def test_save_load_roundtrip(tmp_path):
    pycnn.manual_seed(3)
    x2 = np.random.default_rng(1).standard_normal((2, 4, 5, 6)).astype(np.float32)
    x1 = x2[:, :, 0, :].copy()
    for model, x in ((nn.Sequential(nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1, output_padding=(1, 0),
                                                       groups=2, bias=False, dilation=(1, 2)), nn.Tanh(),
                                    nn.ConvTranspose2d(6, 3, 1, algo="im2col")), x2),
                     (nn.Sequential(nn.ConvTranspose1d(4, 2, 4, stride=3, padding=1, output_padding=2)), x1)):
        path = tmp_path / "m.npz"
        pycnn.save(model, path)
        loaded = pycnn.load(path)
        assert repr(loaded) == repr(model)
        assert [m.get_config() for m in loaded] == [m.get_config() for m in model]
        np.testing.assert_array_equal(loaded.eval()(x), model.eval()(x))


# ---------------------------------------------------------------------------
# errors (checked in csrc/ops/conv.cpp, messages in PyTorch's style)
# ---------------------------------------------------------------------------

ERRORS = [
    ((1, 4, 5, 5), (4, 2, 3, 3), None, dict(stride=1, output_padding=1),
     "output_padding must be smaller than either stride or dilation"),
    ((1, 4, 5, 5), (4, 2, 3), None, {}, r"expected weight of shape \(C_in, C_out/groups, kh, kw\)"),
    ((1, 3, 5, 5), (4, 2, 3, 3), None, {}, r"expected input of shape \(N, 4, H, W\) for weight \(4, 2, 3, 3\)"),
    ((1, 4, 5, 5), (4, 2, 3, 3), None, dict(groups=3), "groups=3 must divide the input channels"),
    ((1, 4, 5, 5), (4, 1, 3, 3), (3,), dict(groups=2), r"expected bias of shape \(2,\), got \(3,\)"),
    ((1, 4, 1, 1), (4, 2, 1, 1), None, dict(padding=1), r"output size \(-1, -1\) is not positive"),
    ((4, 5, 5), (4, 2, 3, 3), None, {}, r"expected input of shape \(N, C_in, H, W\)"),
    ((1, 4, 0, 5), (4, 2, 3, 3), None, {}, "input planes must be non-empty"),
]


@pytest.mark.parametrize("x_shape,w_shape,b_shape,hp,message", ERRORS)
def test_conv_transpose2d_errors(x_shape, w_shape, b_shape, hp, message):
    x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
    b = None if b_shape is None else np.zeros(b_shape, np.float32)
    with pytest.raises(ValueError, match=message):
        F.conv_transpose2d(x, w, b, **hp)


def test_conv_transpose_backward_and_1d_errors(rng):
    x, w = f32(rng, 1, 4, 5, 5), f32(rng, 4, 2, 3, 3)
    with pytest.raises(ValueError, match=r"expected conv_transpose2d grad_output of shape \(1, 2, 11, 11\)"):
        F.conv_transpose2d_backward(np.zeros((1, 2, 10, 11), np.float32), x, w, stride=2)
    with pytest.raises(TypeError, match="padding must be an int or a pair"):
        F.conv_transpose2d(x, w, padding="same")
    with pytest.raises(ValueError, match=r"expected weight of shape \(C_in, C_out/groups, k\)"):
        F.conv_transpose1d(f32(rng, 1, 4, 5), w)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4, L\)"):
        F.conv_transpose1d(f32(rng, 1, 3, 5), f32(rng, 4, 2, 3))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, L\)"):
        F.conv_transpose1d(x, f32(rng, 4, 2, 3))


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv_transpose2d_matches_torch(case, rng):
    x, w, b = _make(case, rng)
    hp = _hp(case)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, **hp)
    y = F.conv_transpose2d(x, w, b, **hp)
    kh, kw = case["k"]
    assert_close(y, ty.detach().numpy(), **tol(case["C_in"] * kh * kw), **case)
    dy = f32(rng, *y.shape)
    ty.backward(torch.from_numpy(dy))
    dx, dw, db = F.conv_transpose2d_backward(dy, x, w, **hp)
    assert_close(dx, tx.grad.numpy(), **tol(case["C_out"] * kh * kw), **case)
    assert_close(dw, tw.grad.numpy(), **tol(x[0, 0].size * case["N"]), **case)
    assert_close(db, tb.grad.numpy(), **tol(y[0, 0].size * case["N"]), **case)


@needs_torch
def test_conv_transpose_modules_match_torch(rng):
    for pm, tm, x in (
        (nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 1), padding=1, output_padding=(1, 0), groups=2, dilation=(1, 2)),
         torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 1), padding=1, output_padding=(1, 0), groups=2,
                                  dilation=(1, 2)), f32(rng, 2, 4, 5, 6)),
        (nn.ConvTranspose1d(3, 4, 5, stride=2, padding=2, output_padding=1, bias=False),
         torch.nn.ConvTranspose1d(3, 4, 5, stride=2, padding=2, output_padding=1, bias=False), f32(rng, 2, 3, 9)),
    ):
        assert repr(pm) == repr(tm)
        assert {k: tuple(v.shape) for k, v in tm.state_dict().items()} == \
            {k: v.shape for k, v in pm.state_dict().items()}
        pm.load_state_dict(tm.state_dict())  # torch tensors under PyTorch's key names
        tx = torch.tensor(x, requires_grad=True)
        ty = tm(tx)
        y = pm(x)
        assert_close(y, ty.detach().numpy(), **tol(60))
        dy = f32(rng, *y.shape)
        ty.backward(torch.from_numpy(dy))
        assert_close(pm.backward(dy), tx.grad.numpy(), **tol(60))
        for name, p in pm.named_parameters():
            assert_close(p.grad, getattr(tm, name).grad.numpy(), **tol(200), param=name)


# ---------------------------------------------------------------- forward(x, output_size=...)
@needs_torch
@pytest.mark.parametrize("dims, size", [(2, (13, 15)), (2, (2, 4, 14, 13)), (1, (15,)), (1, [13])], ids=str)
def test_output_size_matches_torch(dims, size, rng):
    """PyTorch's output_size picks the output padding per call; forward and every gradient as torch's."""
    k, s, p = 3, 3, 1  # an input of 5 gives 13..15 (stride 3: three possible sizes)
    layer = nn.ConvTranspose2d(3, 4, k, stride=s, padding=p) if dims == 2 else nn.ConvTranspose1d(3, 4, k, s, p)
    tlayer = (torch.nn.ConvTranspose2d(3, 4, k, s, p) if dims == 2 else torch.nn.ConvTranspose1d(3, 4, k, s, p))
    tlayer.load_state_dict({n: torch.from_numpy(v.copy()) for n, v in layer.state_dict().items()})
    x = f32(rng, 2, 3, *(5,) * dims)
    y = layer(x, output_size=size)
    assert y.shape[2:] == tuple(size)[-dims:]
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = tlayer(tx, output_size=list(size))
    dy = f32(rng, *y.shape)
    ty.backward(torch.from_numpy(dy))
    assert_close(y, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert_close(layer.backward(dy), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    assert_close(layer.weight.grad, tlayer.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    assert_close(layer.bias.grad, tlayer.bias.grad.numpy(), rtol=1e-4, atol=1e-4)
    assert layer(x).shape[2:] == (13,) * dims  # without output_size: the layer's own output_padding (0)


def test_output_size_errors(rng):
    layer = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1)
    x = f32(rng, 1, 3, 5, 5)  # 9 or 10
    with pytest.raises(ValueError, match=r"output_size \(11, 9\) is not possible .* dimension 2 of the output "
                                         r"can be 9 to 10"):
        layer(x, output_size=(11, 9))
    with pytest.raises(ValueError, match="2 or 4 elements"):
        layer(x, output_size=(9,))
    with pytest.raises(TypeError, match="list or tuple of ints"):
        layer(x, output_size=(9.5, 9))
    with pytest.raises(ValueError, match="expected input of 4 dimensions"):
        layer(f32(rng, 3, 5, 5), output_size=(9, 9))
