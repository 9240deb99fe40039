"""Elementwise activations (ELU, GELU) and softmax: kernels vs the NumPy reference,
finite differences on the reference, modules, and PyTorch as a second oracle.

The elementwise kernels have one (portable) version. Tolerances: transcendental
ops in float32: rtol 1e-5, atol 1e-6 (a few ulp).
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_close, f32, f64, needs_torch, ref, torch
from pycnn import functional as F
from pycnn import nn


def numgrad_elementwise(f, x, eps=1e-6):
    return (f(x + eps) - f(x - eps)) / (2 * eps)


def _act_input(rng, shape):
    x = f32(rng, *shape, scale=3.0)
    x.flat[:4] = [0.0, 40.0, -40.0, -1e-3][: min(4, x.size)]
    return x


# ---------------------------------------------------------------------------
# ELU / GELU
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5])
@pytest.mark.parametrize("shape", [(1,), (17,), (2, 3, 11, 13), (4099,)], ids=str)
def test_elu(shape, alpha, rng):
    x, dy = _act_input(rng, shape), f32(rng, *shape)
    assert_close(F.elu(x, alpha), ref.elu(f64(x), alpha), rtol=1e-5, atol=1e-6, shape=shape)
    assert_close(F.elu_backward(dy, x, alpha), ref.elu_backward(f64(dy), f64(x), alpha), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("shape", [(1,), (17,), (2, 3, 11, 13), (4099,)], ids=str)
def test_gelu(shape, approximate, rng):
    x, dy = _act_input(rng, shape), f32(rng, *shape)
    assert_close(F.gelu(x, approximate), ref.gelu(f64(x), approximate), rtol=1e-5, atol=1e-6, shape=shape)
    assert_close(F.gelu_backward(dy, x, approximate), ref.gelu_backward(f64(dy), f64(x), approximate),
                 rtol=1e-5, atol=1e-6, shape=shape)


@pytest.mark.parametrize("op", ["elu", "gelu_none", "gelu_tanh", "softmax"])
def test_reference_gradients_by_finite_differences(op, rng):
    x = rng.standard_normal((3, 7)) * 2
    x[0, 0] = 0.5  # away from ELU's kink at 0
    dy = rng.standard_normal(x.shape)
    if op == "elu":
        fwd, bwd = (lambda v: ref.elu(v, 0.7)), ref.elu_backward(dy, x, 0.7)
    elif op.startswith("gelu"):
        a = op.split("_")[1]
        fwd, bwd = (lambda v: ref.gelu(v, a)), ref.gelu_backward(dy, x, a)
    else:
        fwd, bwd = ref.softmax, ref.softmax_backward(dy, ref.softmax(x))
    if op == "softmax":  # not elementwise: full finite differences
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[i] = 1e-6
            g[i] = ((fwd(x + e) - fwd(x - e)) * dy).sum() / 2e-6
    else:
        g = numgrad_elementwise(fwd, x) * dy
    assert_close(bwd, g, rtol=1e-5, atol=1e-7, op=op)


@needs_torch
def test_elu_gelu_softmax_match_torch(rng):
    x, dy = _act_input(rng, (5, 6, 7)), f32(rng, 5, 6, 7)
    for mod, tmod in [(nn.ELU(0.7), torch.nn.ELU(0.7)), (nn.GELU(), torch.nn.GELU()),
                      (nn.GELU("tanh"), torch.nn.GELU("tanh")), (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
                      (nn.Softmax(), torch.nn.Softmax(dim=0))]:  # legacy dim=None rule: 0 for 3-D
        tx = torch.from_numpy(x).requires_grad_(True)
        ty = tmod(tx)
        ty.backward(torch.from_numpy(dy))
        assert_close(mod(x), ty.detach().numpy(), rtol=1e-5, atol=1e-6, module=repr(mod))
        assert_close(mod.backward(dy), tx.grad.numpy(), rtol=1e-5, atol=1e-6, module=repr(mod))


def test_softmax_module_rules(rng):
    x = f32(rng, 4, 5)
    assert_close(nn.Softmax(dim=-1)(x).sum(axis=-1), np.ones(4), rtol=1e-6, atol=1e-6)
    assert_close(nn.Softmax()(f32(rng, 3, 4, 5)).sum(axis=0), np.ones((4, 5)), rtol=1e-6, atol=1e-6)  # legacy
    with pytest.raises(IndexError, match="dim=2"):
        nn.Softmax(dim=2)(x)
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


# ---------------------------------------------------------------------------
# Softmax kernel (any axis)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape,axis", [((5, 7), -1), ((5, 7), 0), ((2, 3, 4, 5), 1), ((3, 1, 6), 2), ((9,), 0),
                                        ((2, 3, 4), -2)], ids=str)
def test_softmax_kernel_matches_reference(shape, axis, rng):
    x = f32(rng, *shape, scale=5.0)
    x.flat[0] = 1e4  # huge logits stay finite
    y = F.softmax_c(x, axis)
    assert_close(y, ref.softmax(f64(x), axis), rtol=1e-5, atol=1e-7, shape=shape, axis=axis)
    assert_close(y, F.softmax(x, axis), rtol=1e-5, atol=1e-7)  # the NumPy version agrees
    dy = f32(rng, *shape)
    assert_close(F.softmax_backward(dy, y, axis), ref.softmax_backward(f64(dy), f64(y), axis), rtol=1e-5,
                 atol=1e-6, shape=shape, axis=axis)


def test_softmax_kernel_nan_and_errors():
    x = np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]], np.float32)
    y = F.softmax_c(x)
    assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        F.softmax_c(x, 2)


# ---------------------------------------------------------------------------
# add (a residual connection's sum)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("relu", [False, True], ids=["", "relu"])
@pytest.mark.parametrize("shape", [(1,), (17,), (2, 3, 11, 13), (8, 64, 56, 56)], ids=str)
def test_add(shape, relu, rng):
    import pycnn

    a, b = f32(rng, *shape), f32(rng, *shape)
    a.flat[:3] = [np.nan, 1.0, -2.0][: min(3, a.size)]
    expected = ref.relu(f64(a) + f64(b)) if relu else f64(a) + f64(b)
    exact = np.maximum(np.add(a, b), 0) if relu else np.add(a, b)
    old = pycnn.get_num_threads()
    try:
        for nt in (1, 2, 3):
            pycnn.set_num_threads(nt)
            y = F.add(a, b, relu=relu)
            assert_close(y, expected, rtol=1e-6, atol=1e-7, shape=shape)
            np.testing.assert_array_equal(y, exact)  # NaN in the same places (NaN propagates through the ReLU)
            for i, target in enumerate((a.copy(), b.copy())):  # in place, into either operand
                args = (target, b) if i == 0 else (a, target)
                assert F.add(*args, relu=relu, out=target) is target
                np.testing.assert_array_equal(target, exact)
            out = np.empty_like(a)
            assert F.add(a, b, relu=relu, out=out) is out
            np.testing.assert_array_equal(out, exact)
    finally:
        pycnn.set_num_threads(old)


def test_add_conversion_and_errors(rng):
    a, b = f32(rng, 3, 4), f32(rng, 3, 4)
    np.testing.assert_array_equal(F.add(a.astype(np.float64), b.T.copy().T), a + b)  # inputs are converted
    with pytest.raises(ValueError, match=r"add operand b of shape \(3, 4\), got \(4, 3\)"):
        F.add(a, b.T)
    with pytest.raises(ValueError, match=r"add out of shape \(3, 4\)"):
        F.add(a, b, out=np.empty(12, np.float32))
    with pytest.raises(TypeError, match="out"):  # written in place: never converted
        F.add(a, b, out=np.empty((3, 4)))
    big = f32(rng, 20)
    with pytest.raises(ValueError, match="must not share memory"):
        F.add(big[:10], big[10:], out=big[5:15])
