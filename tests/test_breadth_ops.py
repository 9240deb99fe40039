"""ELU, GELU, Softmax, Dropout, Conv1d and the 1-D pools: kernels vs the NumPy reference,
finite differences on the reference, modules, and PyTorch as a second oracle.

Conv1d and the pools run on the 2-D kernels (GEMM microkernels per ISA), so those
tests use the ``isa`` fixture; the elementwise kernels have one (portable) version.
Tolerances: elementwise transcendental ops in float32: rtol 1e-5, atol 1e-6 (a few ulp);
convolution sums: conftest.tol(reduction length).
"""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from conftest import assert_close, case_id, f32, f64, needs_torch, ref, tol, torch
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
# Dropout
# ---------------------------------------------------------------------------

def test_dropout_is_inverted_seeded_and_identity_in_eval(rng):
    x = f32(rng, 64, 1000) + 3.0  # no zeros in x, so zeros in y are dropped units
    d = nn.Dropout(0.3)
    pycnn.manual_seed(7)
    y = d(x)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01  # 64000 Bernoulli(0.7) draws: sd 0.0018
    assert_close(y[kept], x[kept] / 0.7, rtol=1e-6, atol=0)
    dy = f32(rng, *x.shape)
    dx = d.backward(dy)
    np.testing.assert_array_equal(dx != 0, kept)
    assert_close(dx, ref.dropout_apply(f64(dy), kept, 0.3), rtol=1e-6, atol=0)
    pycnn.manual_seed(7)
    np.testing.assert_array_equal(nn.Dropout(0.3)(x), y)  # manual_seed reproduces the mask
    assert d.eval()(x) is x  # identity, no copy


def test_dropout2d_drops_whole_channels(rng):
    x = f32(rng, 8, 16, 5, 5) + 5.0
    d = nn.Dropout2d(0.5)
    y = d(x)
    per_channel = (y != 0).reshape(8, 16, -1)
    assert (per_channel.all(axis=2) | ~per_channel.any(axis=2)).all()
    kept = per_channel.all(axis=2)
    assert 0 < kept.sum() < kept.size
    assert_close(y, ref.dropout_apply(f64(x), kept, 0.5), rtol=1e-6, atol=0)
    dy = f32(rng, *x.shape)
    assert_close(d.backward(dy), ref.dropout_apply(f64(dy), kept, 0.5), rtol=1e-6, atol=0)
    y1 = nn.Dropout1d(0.5)(f32(rng, 4, 6, 9) + 5.0)
    pc = (y1 != 0)
    assert (pc.all(axis=2) | ~pc.any(axis=2)).all()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        d(f32(rng, 4, 6, 9))


def test_dropout_edge_probabilities_and_errors(rng):
    x = f32(rng, 10, 10)
    np.testing.assert_array_equal(nn.Dropout(1.0)(x), 0)
    assert nn.Dropout(0.0)(x) is x
    assert nn.Dropout(0.0).backward is not None
    d = nn.Dropout(0.0)
    d(x)
    assert d.backward(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)
    with pytest.raises(TypeError, match="uint8"):
        pycnn._core.dropout_apply(x, np.ones(x.shape, np.int32), 1.0, False)
    with pytest.raises(ValueError, match="dropout mask"):
        pycnn._core.dropout_apply(x, np.ones((3, 3), np.uint8), 1.0, False)


# ---------------------------------------------------------------------------
# Conv1d and 1-D pooling (2-D kernels on (N, C, 1, L) views: every ISA)
# ---------------------------------------------------------------------------

CONV1D_CASES = [
    dict(N=2, C=3, L=17, K=4, k=3, stride=1, padding=0, dilation=1, groups=1),
    dict(N=1, C=4, L=23, K=6, k=5, stride=2, padding=2, dilation=1, groups=2),
    dict(N=3, C=2, L=19, K=5, k=3, stride=1, padding="same", dilation=2, groups=1),
    dict(N=2, C=6, L=13, K=6, k=4, stride=1, padding="same", dilation=1, groups=3),  # asymmetric 'same'
    dict(N=1, C=4, L=11, K=4, k=3, stride=3, padding=1, dilation=1, groups=4),       # depthwise: direct kernel
    dict(N=2, C=3, L=9, K=5, k=1, stride=1, padding=0, dilation=1, groups=1),        # 1x1
    dict(N=2, C=1, L=31, K=7, k=8, stride=1, padding="valid", dilation=3, groups=1),
]


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("case", CONV1D_CASES, ids=case_id)
def test_conv1d_matches_reference(case, rng):
    c = case
    x = f32(rng, c["N"], c["C"], c["L"])
    w = f32(rng, c["K"], c["C"] // c["groups"], c["k"])
    b = f32(rng, c["K"])
    hp = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["groups"])
    y = F.conv1d(x, w, b, **hp)
    red = c["C"] // c["groups"] * c["k"]
    assert_close(y, ref.conv1d(f64(x), f64(w), f64(b), **hp), **tol(red), **c)
    dy = f32(rng, *y.shape)
    gw = np.ones_like(w)
    dx, gw2, gb = F.conv1d_backward(dy, x, w, **hp, grad_weight=gw)
    edx, edw, edb = ref.conv1d_backward(f64(dy), f64(x), f64(w), **hp)
    assert gw2 is gw
    assert_close(dx, edx, **tol(c["K"] * c["k"]), **c)
    assert_close(gw, edw + 1, **tol(c["N"] * y.shape[2]), **c)
    assert_close(gb, edb, **tol(c["N"] * y.shape[2]), **c)


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), (4, 1, 2), (5, 3, 0)])
def test_pool1d_matches_reference(k, s, p, rng):
    x = f32(rng, 2, 3, 17)
    y, idx = F.max_pool1d(x, k, s, p, return_indices=True)
    assert_close(y, ref.max_pool1d(f64(x), k, s, p), rtol=0, atol=0)
    dy = f32(rng, *y.shape)
    assert_close(F.max_pool1d_backward(dy, idx, x.shape, k, s, p), ref.max_pool1d_backward(f64(dy), f64(x), k, s, p),
                 **tol(k))
    for cip in (True, False):
        ya = F.avg_pool1d(x, k, s, p, cip)
        assert_close(ya, ref.avg_pool1d(f64(x), k, s, p, cip), **tol(k))
        assert_close(F.avg_pool1d_backward(dy, x.shape, k, s, p, cip),
                     ref.avg_pool1d_backward(f64(dy), x.shape, k, s, p, cip), **tol(k))
    for out in (1, 5, 17, 20):
        ya = F.adaptive_avg_pool1d(x, out)
        assert_close(ya, ref.adaptive_avg_pool1d(f64(x), out), **tol(17))
        dya = f32(rng, *ya.shape)
        assert_close(F.adaptive_avg_pool1d_backward(dya, x.shape), ref.adaptive_avg_pool1d_backward(f64(dya), x.shape),
                     **tol(17))


def test_conv1d_module_and_errors(rng):
    conv = nn.Conv1d(4, 6, 3, padding="same", groups=2, bias=True)
    assert conv.weight.shape == (6, 2, 3) and list(conv.state_dict()) == ["weight", "bias"]
    bound = 1 / np.sqrt(2 * 3)
    assert np.abs(conv.weight.data).max() <= bound
    x = f32(rng, 2, 4, 10)
    y = conv(x)
    assert y.shape == (2, 6, 10)
    dx = conv.backward(f32(rng, *y.shape))
    assert dx.shape == x.shape and conv.weight.grad.any()
    with pytest.raises(ValueError, match=r"conv1d: expected input of shape \(N, C, L\)"):
        conv(f32(rng, 2, 4, 10, 1))
    with pytest.raises(ValueError, match="expected input of shape"):
        conv(f32(rng, 2, 5, 10))
    with pytest.raises(ValueError, match="'same'"):
        nn.Conv1d(2, 2, 3, stride=2, padding="same")
    seq = nn.Sequential(nn.Conv1d(4, 6, 3), nn.ReLU(), nn.MaxPool1d(2), nn.AvgPool1d(2), nn.AdaptiveAvgPool1d(1),
                        nn.Flatten(), nn.Linear(6, 2))
    out = seq(x)
    assert out.shape == (2, 2) and seq.backward(np.ones_like(out)).shape == x.shape


@needs_torch
def test_conv1d_and_pools_match_torch(rng):
    tnn = torch.nn
    model = nn.Sequential(nn.Conv1d(3, 8, 5, padding="same", dilation=2), nn.BatchNorm1d(8), nn.ReLU(),
                          nn.MaxPool1d(3, 2, 1), nn.Conv1d(8, 8, 3, stride=2, groups=4), nn.GELU(),
                          nn.AvgPool1d(2), nn.AdaptiveAvgPool1d(3), nn.Flatten(), nn.Linear(24, 4))
    tmodel = tnn.Sequential(tnn.Conv1d(3, 8, 5, padding="same", dilation=2), tnn.BatchNorm1d(8), tnn.ReLU(),
                            tnn.MaxPool1d(3, 2, 1), tnn.Conv1d(8, 8, 3, stride=2, groups=4), tnn.GELU(),
                            tnn.AvgPool1d(2), tnn.AdaptiveAvgPool1d(3), tnn.Flatten(), tnn.Linear(24, 4))
    tmodel.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    x, dy = f32(rng, 4, 3, 41), f32(rng, 4, 4)
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = tmodel(tx)
    ty.backward(torch.from_numpy(dy))
    y = model(x)
    dx = model.backward(dy)
    assert_close(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert_close(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    tparams = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        assert_close(p.grad, tparams[name].grad.numpy(), rtol=1e-4, atol=1e-4, param=name)


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
