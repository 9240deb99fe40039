"""Conv1d and the 1-D pools: the 2-D kernels on (N, C, 1, L) views (GEMM microkernels per
ISA, so these tests use the ``isa`` fixture) vs the NumPy reference, modules, and PyTorch.

Tolerances: convolution sums: conftest.tol(reduction length).
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_close, assert_step_matches_torch, case_id, f32, f64, needs_torch, ref, tol, torch
from pycnn import functional as F
from pycnn import nn


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
    assert_step_matches_torch(model, tmodel, x, dy)
