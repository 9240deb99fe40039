"""Resizing (F.interpolate, nn.Upsample: 'nearest', 'nearest-exact', 'bilinear', 'linear'): the C++
kernels (csrc/resize/, portable loops with no ISA-specific code, so no `isa` fixture; 1 and 2
threads) against the NumPy reference, the reference against independent constructions and as the
adjoint of itself, PyTorch, errors, and save/load.

Nearest outputs are copies of input values (compared exactly); bilinear outputs sum 4 products and
gradients at most (Ho/H + 1)(Wo/W + 1) of them (conftest.tol).
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, f32, f64, needs_torch, ref, tol, torch

import pycnn
from pycnn import functional as F
from pycnn import nn

GEOMETRIES = [
    ((2, 3, 5, 7), dict(scale_factor=2)),
    ((1, 2, 4, 3), dict(size=(9, 13))),                       # ratios that are not integers
    ((2, 1, 7, 6), dict(size=(3, 4))),                        # downsampling
    ((1, 3, 5, 5), dict(scale_factor=(1.5, 2.7))),            # the map uses 1/scale, not in/out
    ((2, 2, 6, 4), dict(scale_factor=(1.5, 2.2), recompute_scale_factor=True)),  # ... here in/out
    ((1, 2, 1, 4), dict(size=(3, 1))),                        # single rows and columns
    ((3, 2, 4, 5), dict(size=(4, 5))),                        # the identity
    ((1, 1, 3, 3), dict(scale_factor=2.0001)),                # 6 outputs: PyTorch's exact 2x path for 'nearest'
]
MODES = [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True)]


def _gid(g):
    shape, spec = g
    return f"{shape}-" + "-".join(f"{k}={v}" for k, v in spec.items()).replace(" ", "")


def _mid(m):
    return m[0] if m[1] is None else f"{m[0]}-align_corners={m[1]}"


def _tolerances(mode, x_shape, y_shape):
    """(forward, backward) tolerances: exact copies for nearest; sums of dy over the outputs reading a pixel."""
    fan = 1
    for n_in, n_out in zip(x_shape[2:], y_shape[2:]):
        fan *= n_out // n_in + 2
    fwd = dict(rtol=0, atol=0) if mode.startswith("nearest") else tol(4)
    return fwd, tol(fan)


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize("mode,align_corners", MODES, ids=[_mid(m) for m in MODES])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[_gid(g) for g in GEOMETRIES])
def test_interpolate_matches_reference(geometry, mode, align_corners, rng):
    shape, spec = geometry
    args = dict(spec, mode=mode, align_corners=align_corners)
    x = f32(rng, *shape)
    y = F.interpolate(x, **args)
    fwd, bwd = _tolerances(mode, x.shape, y.shape)
    assert_close(y, ref.interpolate(f64(x), **args), **fwd, **args)
    dy = f32(rng, *y.shape)
    assert_close(F.interpolate_backward(dy, x.shape, **args), ref.interpolate_backward(f64(dy), x.shape, **args),
                 **bwd, **args)


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize("mode,align_corners,spec", [
    ("nearest", None, dict(scale_factor=3)), ("nearest-exact", None, dict(size=4)),
    ("linear", False, dict(size=12)), ("linear", True, dict(scale_factor=1.7)), ("linear", None, dict(size=(3,))),
])
def test_interpolate_1d_matches_reference(mode, align_corners, spec, rng):
    args = dict(spec, mode=mode, align_corners=align_corners)
    x = f32(rng, 2, 3, 7)
    y = F.interpolate(x, **args)
    assert y.ndim == 3
    fwd, bwd = _tolerances(mode, x.shape, y.shape)
    assert_close(y, ref.interpolate(f64(x), **args), **fwd, **args)
    dy = f32(rng, *y.shape)
    assert_close(F.interpolate_backward(dy, x.shape, **args), ref.interpolate_backward(f64(dy), x.shape, **args),
                 **bwd, **args)


@pytest.mark.parametrize("mode,align_corners", MODES, ids=[_mid(m) for m in MODES])
def test_interpolate_bitwise_the_same_for_any_thread_count(mode, align_corners, rng):
    x = f32(rng, 4, 16, 9, 11)  # 64 planes, enough work for two threads
    args = dict(size=(20, 17), mode=mode, align_corners=align_corners)
    dy = f32(rng, 4, 16, 20, 17)
    old = pycnn.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            pycnn.set_num_threads(n)
            results.append((F.interpolate(x, **args), F.interpolate_backward(dy, x.shape, **args)))
    finally:
        pycnn.set_num_threads(old)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# the reference itself
# ---------------------------------------------------------------------------

def test_reference_nearest_integer_scale_is_repeat(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(ref.interpolate(x, scale_factor=(2, 3)), x.repeat(2, axis=2).repeat(3, axis=3))
    dy = rng.standard_normal((2, 3, 8, 15))
    np.testing.assert_allclose(ref.interpolate_backward(dy, x.shape, scale_factor=(2, 3)),
                               dy.reshape(2, 3, 4, 2, 5, 3).sum(axis=(3, 5)), rtol=1e-12)


@pytest.mark.parametrize("align_corners", [True, False])
def test_reference_bilinear_reproduces_a_linear_ramp(align_corners):
    """Bilinear interpolation of f(h, w) = 3h - 2w + 1 is f at the source coordinates: o (H-1)/(Ho-1)
    with align_corners, else the pixel centres (o + 0.5) H/Ho - 0.5, clamped to the image."""
    H, W, Ho, Wo = 5, 4, 9, 11
    h, w = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    x = (3.0 * h - 2.0 * w + 1.0)[None, None]
    y = ref.interpolate(x, size=(Ho, Wo), mode="bilinear", align_corners=align_corners)

    def src(n_in, n_out):
        o = np.arange(n_out)
        if align_corners:
            return o * (n_in - 1) / (n_out - 1)
        return np.clip((o + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)

    expected = 3.0 * src(H, Ho)[:, None] - 2.0 * src(W, Wo)[None, :] + 1.0
    np.testing.assert_allclose(y[0, 0], expected, atol=1e-5)  # float32 coordinates, as PyTorch's


@pytest.mark.parametrize("mode,align_corners", MODES, ids=[_mid(m) for m in MODES])
@pytest.mark.parametrize("geometry", GEOMETRIES[:6], ids=[_gid(g) for g in GEOMETRIES[:6]])
def test_reference_backward_is_the_adjoint(geometry, mode, align_corners, rng):
    """The forward is linear in x, so its gradient is its adjoint: <f(x), g> = <x, f'(g)>."""
    shape, spec = geometry
    args = dict(spec, mode=mode, align_corners=align_corners)
    x = rng.standard_normal(shape)
    y = ref.interpolate(x, **args)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, ref.interpolate_backward(g, shape, **args)), rtol=1e-12)


def test_reference_backward_matches_finite_differences(rng):
    x = rng.standard_normal((1, 1, 3, 4))
    args = dict(size=(5, 7), mode="bilinear", align_corners=False)
    g = rng.standard_normal((1, 1, 5, 7))
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = 1e-6
        numeric[i] = (np.vdot(ref.interpolate(x + d, **args), g) - np.vdot(ref.interpolate(x - d, **args), g)) / 2e-6
    np.testing.assert_allclose(ref.interpolate_backward(g, x.shape, **args), numeric, atol=1e-7)


# ---------------------------------------------------------------------------
# the module
# ---------------------------------------------------------------------------

def test_upsample_module_in_a_network(rng):
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
    assert repr(up) == "Upsample(scale_factor=2.0, mode='bilinear', align_corners=True)"
    assert list(up.state_dict()) == [] and list(up.parameters()) == []
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), up, nn.ReLU())
    x = f32(rng, 2, 2, 5, 6)
    y = model(x)
    assert y.shape == (2, 3, 10, 12)
    dy = f32(rng, *y.shape)
    conv_out = model[0](x)
    expected = ref.interpolate_backward(f64(dy) * (y > 0), conv_out.shape, scale_factor=2, mode="bilinear",
                                        align_corners=True)
    model(x)
    model.backward(dy)
    _, dw_ref, _ = ref.conv2d_backward(expected, f64(x), f64(model[0].weight.data), padding=1)
    assert_close(model[0].weight.grad, dw_ref, **tol(200))
    model.eval()
    model(x)
    with pytest.raises(RuntimeError):  # eval mode keeps nothing for backward (the module contract)
        up.backward(dy)


def test_upsample_save_load_roundtrip(tmp_path, rng):
    pycnn.manual_seed(0)
    model = nn.Sequential(nn.Upsample(scale_factor=(2, 1.5), mode="bilinear", align_corners=True),
                          nn.Conv2d(2, 2, 3), nn.Upsample(size=(7, 9)),
                          nn.Upsample(scale_factor=0.5, mode="nearest-exact", recompute_scale_factor=True))
    path = tmp_path / "m.npz"
    pycnn.save(model, path)
    loaded = pycnn.load(path)
    assert repr(loaded) == repr(model)
    assert [m.get_config() for m in loaded] == [m.get_config() for m in model]
    x = f32(rng, 2, 2, 4, 5)
    np.testing.assert_array_equal(loaded.eval()(x), model.eval()(x))


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------

X4 = np.zeros((2, 3, 4, 4), np.float32)
X3 = np.zeros((2, 3, 7), np.float32)
ERRORS = [
    (X4, dict(size=2, scale_factor=2), ValueError, "exactly one of size and scale_factor"),
    (X4, dict(), ValueError, "exactly one of size and scale_factor"),
    (X4, dict(size=8, align_corners=True), ValueError, "align_corners can only be set with the interpolating modes"),
    (X4, dict(size=8, mode="linear"), ValueError, "mode 'linear' needs 3-D input"),
    (X3, dict(size=8, mode="bilinear"), ValueError, "mode 'bilinear' needs 4-D input"),
    (X4, dict(size=8, mode="bicubic"), ValueError, "mode must be one of"),
    (np.zeros((1, 1, 2, 2, 2), np.float32), dict(size=3), ValueError, r"expected input of shape \(N, C, L\) or"),
    (X4, dict(size=0), ValueError, "size must be >= 1"),
    (X4, dict(size=(8,)), ValueError, "sequence of 2 numbers"),
    (X4, dict(size=(2, 3, 4)), ValueError, "one per spatial axis"),
    (X4, dict(scale_factor=0.0), ValueError, "scale_factor must be positive"),
    (X4, dict(scale_factor=float("nan")), ValueError, "finite"),
    (X4, dict(scale_factor="2"), TypeError, "scale_factor must be a real number"),
    (X4, dict(size=8, recompute_scale_factor=True), ValueError, "not meaningful with an explicit size"),
    (X4, dict(scale_factor=0.2), ValueError, "gives an empty output"),
    (X4, dict(size=8, mode="bilinear", align_corners="yes"), TypeError, "align_corners must be a bool"),
    (np.zeros((2, 3, 0, 4), np.float32), dict(size=3), ValueError, "input planes must be non-empty"),
]


@pytest.mark.parametrize("x,args,error,message", ERRORS)
def test_interpolate_errors(x, args, error, message):
    with pytest.raises(error, match=message):
        F.interpolate(x, **args)


def test_backward_and_module_errors():
    with pytest.raises(ValueError, match=r"expected upsample2d grad_output of shape \(2, 3, 8, 8\)"):
        F.interpolate_backward(np.zeros((2, 3, 8, 7), np.float32), X4.shape, scale_factor=2)
    with pytest.raises(ValueError, match=r"expected grad_output of shape \(2, 3, 14\)"):
        F.interpolate_backward(np.zeros((2, 3, 13), np.float32), X3.shape, scale_factor=2)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        nn.Upsample()
    with pytest.raises(ValueError, match="align_corners can only be set"):
        nn.Upsample(scale_factor=2, align_corners=False)
    with pytest.raises(ValueError, match="mode must be one of"):
        nn.Upsample(scale_factor=2, mode="trilinear")
    with pytest.raises(ValueError, match="one per spatial axis"):
        nn.Upsample(size=(2, 3, 4))


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("mode,align_corners", MODES, ids=[_mid(m) for m in MODES])
def test_interpolate_matches_torch(mode, align_corners, rng):
    for shape, spec in GEOMETRIES:
        args = dict(spec, mode=mode, align_corners=align_corners)
        x = f32(rng, *shape)
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.interpolate(tx, **args)
        y = F.interpolate(x, **args)
        fwd, bwd = _tolerances(mode, x.shape, y.shape)
        assert_close(y, ty.detach().numpy(), **fwd, **args)
        dy = f32(rng, *y.shape)
        ty.backward(torch.from_numpy(dy))
        assert_close(F.interpolate_backward(dy, x.shape, **args), tx.grad.numpy(), **bwd, **args)


@needs_torch
def test_upsample_module_matches_torch(rng):
    for kwargs, shape in ((dict(scale_factor=2.5, mode="linear"), (2, 3, 7)),
                          (dict(size=5, mode="nearest"), (2, 3, 7)),
                          (dict(size=(6, 9), mode="bilinear", align_corners=True), (1, 2, 4, 5)),
                          (dict(scale_factor=(0.5, 3), mode="nearest-exact"), (1, 2, 7, 3))):
        pm, tm = nn.Upsample(**kwargs), torch.nn.Upsample(**kwargs)
        if "align_corners" not in kwargs:  # (pycnn's repr also shows align_corners when it is set)
            assert repr(pm) == repr(tm)
        x = f32(rng, *shape)
        tx = torch.tensor(x, requires_grad=True)
        ty = tm(tx)
        y = pm(x)
        assert_close(y, ty.detach().numpy(), **tol(4), **kwargs)
        dy = f32(rng, *y.shape)
        ty.backward(torch.from_numpy(dy))
        assert_close(pm.backward(dy), tx.grad.numpy(), **tol(16), **kwargs)
