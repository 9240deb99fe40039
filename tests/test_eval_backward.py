"""Backward after an eval-mode forward (pycnn.nn.grad_mode): BatchNorm's affine map, Dropout's identity,
the fused inference path turned off, frozen BatchNorm inside a training network.

Oracles: pycnn.reference.batch_norm_eval_backward (itself checked by finite differences in float64)
and PyTorch's autograd in eval mode where installed. Tolerances as in test_batchnorm.py: float32
against float64, the weight and bias gradients sum M = N*L terms (conftest.tol).
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_close, f32, f64, needs_torch, ref, tol, torch
from pycnn import functional as F
from pycnn import nn
from pycnn.nn import fused
from pycnn.train import Trainer
from test_batchnorm import numgrad

# Both loop orders of the kernel (row path for L < 16, channel path above), uneven channel counts.
SHAPES = [(9, 37), (6, 5, 2, 2), (5, 19, 15), (5, 7, 17), (3, 6, 5, 5)]


def _running(rng, C):
    return f32(rng, C), np.abs(f32(rng, C)) + 0.3


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
def test_kernel_eval_backward_matches_reference(shape, affine, rng, isa):
    C = shape[1]
    x, dy = f32(rng, *shape) * 2 + 1, f32(rng, *shape)
    rm, rv = _running(rng, C)
    w = f32(rng, C) if affine else None
    rstd = (1 / np.sqrt(rv.astype(np.float64) + 1e-3)).astype(np.float32)
    gw = np.full(C, 0.5, np.float32) if affine else None
    gb = np.full(C, -0.25, np.float32) if affine else None
    dx, gw2, gb2 = F.batch_norm_backward(dy, x, rm, rstd, w, grad_weight=gw, grad_bias=gb, training=False)
    edx, edw, edb = ref.batch_norm_eval_backward(f64(dy), f64(x), f64(rm), f64(rv), f64(w), 1e-3)
    M = x.size // C
    assert_close(dx, edx, **tol(1), shape=shape)
    if affine:
        assert_close(gw, edw + 0.5, **tol(M), shape=shape)
        assert_close(gb, edb - 0.25, **tol(M), shape=shape)
    else:
        assert gw2 is None and gb2 is None
    # dx is dy scaled per channel: no term of x enters it (a NaN in x stays out of dx)
    x_nan = x.copy()
    x_nan[0] = np.nan
    dx_nan, _, _ = F.batch_norm_backward(dy, x_nan, rm, rstd, w, training=False)
    np.testing.assert_array_equal(dx_nan, dx)
    none, _, _ = F.batch_norm_backward(dy, x, rm, rstd, w, training=False, input_grad=False)
    assert none is None


def test_reference_eval_backward_by_finite_differences(rng):
    x = rng.standard_normal((3, 2, 4)) * 2 + 1
    w, b = rng.standard_normal(2), rng.standard_normal(2)
    rm, rv = rng.standard_normal(2), np.abs(rng.standard_normal(2)) + 0.2
    dy = rng.standard_normal(x.shape)

    def loss(xx, ww, bb):
        return float((ref.batch_norm_eval(xx, rm, rv, ww, bb) * dy).sum())

    dx, dw, db = ref.batch_norm_eval_backward(dy, x, rm, rv, w)
    assert_close(dx, numgrad(lambda v: loss(v, w, b), x.copy()), rtol=1e-6, atol=1e-8)
    assert_close(dw, numgrad(lambda v: loss(x, v, b), w.copy()), rtol=1e-6, atol=1e-8)
    assert_close(db, numgrad(lambda v: loss(x, w, v), b.copy()), rtol=1e-6, atol=1e-8)


BN_CASES = [(nn.BatchNorm1d, (6, 5)), (nn.BatchNorm1d, (4, 3, 7)), (nn.BatchNorm2d, (3, 4, 5, 6))]


def _randomised(cls, C, rng, **kw):
    bn = cls(C, **kw)
    if bn.affine:
        bn.weight.data[...] = f32(rng, C)
        bn.bias.data[...] = f32(rng, C)
    if bn.track_running_stats:
        bn.running_mean[...], bn.running_var[...] = _running(rng, C)
    return bn


@pytest.mark.parametrize("cls, shape", BN_CASES, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
def test_module_eval_backward_matches_reference(cls, shape, affine, rng):
    C = shape[1]
    bn = _randomised(cls, C, rng, affine=affine).eval()
    x, dy = f32(rng, *shape), f32(rng, *shape)
    stats = bn.running_mean.copy(), bn.running_var.copy()
    with nn.enable_grad():
        y = bn(x)
    assert_close(y, ref.batch_norm_eval(f64(x), *map(f64, stats), f64(bn.weight), f64(bn.bias)), **tol(1))
    bn.running_mean[...] = 7.0  # changing the statistics after the forward does not change its gradient
    dx = bn.backward(dy)
    edx, edw, edb = ref.batch_norm_eval_backward(f64(dy), f64(x), *map(f64, stats), f64(bn.weight))
    M = x.size // C
    assert_close(dx, edx, **tol(1))
    if affine:
        assert_close(bn.weight.grad, edw, **tol(M))
        assert_close(bn.bias.grad, edb, **tol(M))
    np.testing.assert_array_equal(bn.num_batches_tracked, 0)


def test_eval_backward_without_enable_grad_raises_and_says_how(rng):
    bn = nn.BatchNorm2d(3).eval()
    y = bn(f32(rng, 2, 3, 4, 4))
    with pytest.raises(RuntimeError, match=r"eval mode.*\.train\(\).*enable_grad"):
        bn.backward(np.ones_like(y))


@pytest.mark.parametrize("cls, shape", [(nn.Dropout, (4, 9)), (nn.Dropout1d, (3, 4, 9)),
                                        (nn.Dropout2d, (3, 4, 5, 5))], ids=lambda v: getattr(v, "__name__", ""))
def test_dropout_eval_backward_is_the_identity(cls, shape, rng):
    d = cls(0.5).eval()
    x, dy = f32(rng, *shape), f32(rng, *shape)
    with nn.enable_grad():
        assert d(x) is x
    np.testing.assert_array_equal(d.backward(dy), dy)
    with nn.enable_grad():
        d(x)
    with pytest.raises(ValueError, match="shape"):  # the gradient is still checked against the output
        d.backward(dy[:1])


def test_maxpool_eval_backward_equals_training_backward(rng):
    x, pool = f32(rng, 2, 3, 9, 9), nn.MaxPool2d(3, 2, 1)
    y = pool(x)
    dy = f32(rng, *y.shape)
    expected = pool.backward(dy)
    pool.eval()
    with nn.enable_grad():
        np.testing.assert_array_equal(pool(x), y)
    np.testing.assert_array_equal(pool.backward(dy), expected)


def _stem(rng):
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                        nn.BasicBlock(6, 8, stride=2), nn.Flatten(), nn.Linear(8 * 2 * 2, 5))
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data[...] = f32(rng, m.num_features) + 1
            m.bias.data[...] = f32(rng, m.num_features)
            m.running_mean[...], m.running_var[...] = _running(rng, m.num_features)
    return net


def test_fused_network_in_eval_mode_gives_the_unfused_gradients(rng):
    # pycnn.nn.fused folds BatchNorm into the convolutions in eval mode; inside enable_grad it must not
    # (nothing would be saved), and the output must still be the eval-mode output.
    net = _stem(rng).eval()
    x = f32(rng, 3, 3, 8, 8)
    y_fused = net(x)
    assert any(m in fused._PREPARED for m in net.modules())
    fused.discard_prepared(net)
    with fused.disabled():
        y_unfused = net(x)
    with nn.enable_grad():
        y = net(x)
    assert not any(m in fused._PREPARED for m in net.modules())
    assert_close(y, y_fused, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(y, y_unfused)  # exactly the unfused eval forward
    dy = f32(rng, *y.shape)
    dx = net.backward(dy)
    # Oracle: each eval-mode module's own forward and backward, chained by hand (each checked above).
    grads = {n: p.grad.copy() for n, p in net.named_parameters()}
    net.zero_grad()
    with nn.enable_grad():
        h = x
        for m in net:
            h = m(h)
    g = dy
    for m in reversed(list(net)):
        g = m.backward(g)
    np.testing.assert_array_equal(dx, g)
    for n, p in net.named_parameters():
        np.testing.assert_array_equal(p.grad, grads[n], err_msg=n)


def _forward_backward_like_torch(net, tnet, rng, recording):
    """net's forward (inside enable_grad when `recording`) and backward against tnet's autograd."""
    x = f32(rng, 3, 3, 8, 8)
    if recording:
        with nn.enable_grad():
            y = net(x)
    else:
        y = net(x)
    dy = f32(rng, *y.shape)
    dx = net.backward(dy)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = tnet(tx)
    ty.backward(torch.from_numpy(dy))
    assert_close(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert_close(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (name, p), (_, tp) in zip(net.named_parameters(), tnet.named_parameters()):
        assert_close(p.grad, tp.grad.numpy(), rtol=1e-4, atol=1e-4, param=name)


@needs_torch
def test_eval_mode_gradients_match_torch(rng):
    net = _stem(rng).eval()
    _forward_backward_like_torch(net, _torch_stem(net).eval(), rng, recording=True)


@needs_torch
def test_frozen_batchnorm_in_a_training_network_matches_torch(rng):
    # Fine-tuning with frozen statistics: the network trains, its BatchNorms are in eval mode. No
    # enable_grad needed: a training-mode container records for its eval-mode children.
    net = _stem(rng).train()
    tnet = _torch_stem(net).train()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    for tm in tnet.modules():
        if isinstance(tm, torch.nn.BatchNorm2d):
            tm.eval()
    stats = [b.copy() for b in net.buffers()]
    _forward_backward_like_torch(net, tnet, rng, recording=False)
    for b, b0 in zip(net.buffers(), stats):
        np.testing.assert_array_equal(b, b0)  # frozen: the statistics did not move


def test_train_step_records_for_eval_mode_layers_of_any_model(rng):
    # A model that is not a container: fit's training step itself turns recording on.
    bn = _randomised(nn.BatchNorm1d, 4, rng).eval()
    lin = nn.Linear(4, 3)

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn, self.lin = bn, lin

        def forward(self, x):
            return self.lin(self.bn(x))

        def backward(self, g, input_grad=True):
            return self.bn.backward(self.lin.backward(g), input_grad=input_grad)

    model = Head()
    trainer = Trainer(model, nn.CrossEntropyLoss(), _NoStep())
    x, labels = f32(rng, 8, 4), rng.integers(0, 3, 8)
    trainer.train_step(x, labels)
    assert np.abs(bn.weight.grad).sum() > 0 and np.abs(lin.weight.grad).sum() > 0


class _NoStep:
    def zero_grad(self) -> None:
        pass

    def step(self) -> None:
        pass


def _torch_stem(net):
    """The same network in PyTorch (torchvision's BasicBlock written out), with net's weights."""
    tnn = torch.nn

    class TBlock(tnn.Module):
        def __init__(self, b):
            super().__init__()
            self.conv1 = tnn.Conv2d(6, 8, 3, 2, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(8)
            self.conv2 = tnn.Conv2d(8, 8, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(8)
            self.downsample = tnn.Sequential(tnn.Conv2d(6, 8, 1, 2, bias=False), tnn.BatchNorm2d(8))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + self.downsample(x))

    tnet = tnn.Sequential(tnn.Conv2d(3, 6, 3, padding=1), tnn.BatchNorm2d(6), tnn.ReLU(), tnn.MaxPool2d(2),
                          TBlock(net[4]), tnn.Flatten(), tnn.Linear(32, 5))
    tnet.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in net.state_dict().items()})
    return tnet
