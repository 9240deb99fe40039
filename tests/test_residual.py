"""Residual container, BasicBlock and ResNet: gradients through both branches against the NumPy
reference, state dicts against PyTorch equivalents (written here) in both directions, and
whole-network forward/backward against PyTorch.

Tolerances: float32 vs float64 reference through two linear layers: rtol 1e-4, atol 1e-5 * sqrt(len);
vs PyTorch through ResNet-8 (7 convolutions, batch statistics): rtol 1e-3, atol 1e-4.
"""
from __future__ import annotations


import numpy as np
import pytest

import pycnn
from conftest import assert_close, assert_step_matches_torch, f32, f64, needs_torch, ref, tol, torch
from pycnn import nn
from pycnn.bench import resnet as rn
from pycnn.models import resnet


@pytest.mark.parametrize("projection", [False, True], ids=["identity", "projection"])
@pytest.mark.parametrize("relu", [True, False], ids=["relu", "no_relu"])
def test_residual_backward_through_both_branches(projection, relu, rng):
    body = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6))
    shortcut = nn.Linear(6, 6, bias=False) if projection else None
    block = nn.Residual(body, shortcut, relu=relu)
    x, dy = f32(rng, 5, 6), f32(rng, 5, 6)
    out = block(x)
    # reference
    w1, b1, w2, b2 = (f64(p.data) for p in body.parameters())
    h = np.tanh(ref.linear(f64(x), w1, b1))
    y = ref.linear(h, w2, b2)
    s = ref.linear(f64(x), f64(shortcut.weight.data)) if projection else f64(x)
    expected = np.maximum(y + s, 0) if relu else y + s
    assert_close(out, expected, **tol(6))
    dx = block.backward(dy)
    g = np.where(expected > 0, f64(dy), 0) if relu else f64(dy)
    dh, dw2, db2 = ref.linear_backward(g, h, w2)
    dpre = ref.tanh_backward(dh, h)
    dx_body, dw1, db1 = ref.linear_backward(dpre, f64(x), w1)
    if projection:
        dx_short, dws, _ = ref.linear_backward(g, f64(x), f64(shortcut.weight.data))
        assert_close(shortcut.weight.grad, dws, **tol(5))
    else:
        dx_short = g
    assert_close(dx, dx_body + dx_short, **tol(12))
    for p, e in zip(body.parameters(), (dw1, db1, dw2, db2)):
        assert_close(p.grad, e, **tol(5))
    assert list(block.state_dict())[:2] == ["body.0.weight", "body.0.bias"]


def test_residual_identity_body_does_not_corrupt_the_gradient(rng):
    # body returns its gradient unchanged (Flatten on a 2-D input is a reshape):
    # the sum must be a new array, not an in-place add into grad_output.
    block = nn.Residual(nn.Flatten(), relu=False)
    x, dy = f32(rng, 3, 4), f32(rng, 3, 4)
    dy0 = dy.copy()
    block(x)
    dx = block.backward(dy)
    np.testing.assert_array_equal(dy, dy0)
    assert_close(dx, 2 * dy0, rtol=0, atol=0)


def test_residual_shape_mismatch_and_types(rng):
    with pytest.raises(ValueError, match="projection"):
        nn.Residual(nn.Linear(4, 3))(f32(rng, 2, 4))
    with pytest.raises(TypeError, match="body"):
        nn.Residual(lambda x: x)


def test_basic_block_names_and_downsample():
    blk = nn.BasicBlock(4, 4)
    assert blk.downsample is None
    assert [n for n, _ in blk.named_children()] == ["conv1", "bn1", "relu", "conv2", "bn2"]
    blk = nn.BasicBlock(4, 8, stride=2)
    keys = list(blk.state_dict())
    assert keys[:2] == ["conv1.weight", "bn1.weight"] and "downsample.0.weight" in keys
    assert "downsample.1.running_var" in keys


def test_resnet_shapes_and_depths(rng):
    pycnn.manual_seed(0)
    m8, m20 = nn.resnet8(), nn.resnet20(in_channels=3)
    assert sum(p.size for p in m8.parameters()) == 77754
    assert sum(p.size for p in m20.parameters()) == 272474  # the paper's 0.27M
    x = f32(rng, 2, 1, 28, 28)
    y = m8(x)
    assert y.shape == (2, 10)
    assert m8.backward(np.ones_like(y)).shape == x.shape
    assert m20(f32(rng, 2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="6n \\+ 2"):
        nn.ResNet(10)


def test_nn_resnet_names_are_aliases_of_pycnn_models():
    """The networks live in pycnn.models.resnet; nn.ResNet, nn.resnet8, nn.resnet20 stay for one release."""
    import pycnn.models

    assert nn.ResNet is pycnn.models.ResNet is resnet.ResNet
    assert nn.resnet8 is resnet.resnet8 and nn.resnet20 is resnet.resnet20
    assert {"ResNet", "resnet8", "resnet20"} <= set(nn.__all__) & set(dir(nn))
    assert nn.registered_modules()["ResNet"] is resnet.ResNet
    assert isinstance(nn.resnet8(width=2), nn.Sequential)
    # pycnn.models.resnet8 is the preset (one input channel); its network is the same class
    assert type(pycnn.models.resnet8(num_classes=3)) is resnet.ResNet
    with pytest.raises(AttributeError, match="no attribute 'ResNet18'"):
        nn.ResNet18


# ---------------------------------------------------------------------------
# PyTorch equivalents
# ---------------------------------------------------------------------------

def torch_resnet(depth, in_channels, num_classes, width=16):
    return rn.torch_cifar_resnet(torch, depth, in_channels, num_classes, width)


def to_torch(sd):
    return {k: torch.from_numpy(np.array(v)) for k, v in sd.items()}


@pytest.fixture
def torch_one_thread():
    """torch's OpenMP threads spin-wait: on a busy 2-core machine a 2-thread torch runs this test
    10x slower than a 1-thread one, so the oracle runs single-threaded."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@needs_torch
def test_resnet_state_dict_round_trip_and_gradients_match_torch(rng, torch_one_thread):
    pycnn.manual_seed(1)
    model = nn.resnet8(in_channels=1, num_classes=10, width=8)
    tmodel = torch_resnet(8, 1, 10, width=8)
    assert list(model.state_dict()) == list(tmodel.state_dict())
    tmodel.load_state_dict(to_torch(model.state_dict()))  # strict: every key and shape agrees
    # training mode: batch statistics, running-stat updates, all gradients
    x, dy = f32(rng, 4, 1, 12, 12), f32(rng, 4, 10)
    assert_step_matches_torch(model, tmodel, x, dy, rtol=1e-3, atol=1e-4, grad_atol=1e-4)
    for k, v in tmodel.state_dict().items():
        assert_close(model.state_dict()[k], v.numpy(), rtol=1e-4, atol=1e-5, key=k)
    # torch -> pycnn after torch trains a little: eval outputs agree
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1)
    for _ in range(3):
        topt.zero_grad()
        tmodel(torch.from_numpy(f32(rng, 8, 1, 12, 12))).square().mean().backward()
        topt.step()
    fresh = nn.resnet8(in_channels=1, num_classes=10, width=8)
    fresh.load_state_dict(tmodel.state_dict())
    tmodel.eval(), fresh.eval()
    xe = f32(rng, 5, 1, 12, 12)
    assert_close(fresh(xe), tmodel(torch.from_numpy(xe)).detach().numpy(), rtol=1e-3, atol=1e-4)
    assert int(fresh.state_dict()["bn1.num_batches_tracked"]) == 4


def test_resnet18_has_torchvisions_keys_and_sizes():
    model = pycnn.models.resnet18()
    sd = model.state_dict()
    assert len(sd) == 122 and sum(p.size for p in model.parameters()) == 11_689_512  # torchvision's counts
    assert list(sd)[:2] == ["conv1.weight", "bn1.weight"] and list(sd)[-2:] == ["fc.weight", "fc.bias"]
    assert sd["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert sd["layer4.1.conv2.weight"].shape == (512, 512, 3, 3)
    assert "layer1.0.downsample.0.weight" not in sd  # stage 1 keeps the shape: identity shortcut
    with pytest.raises(ValueError, match="blocks"):
        resnet.ImageNetResNet((2, 2, 2))


def test_resnet18_flops_formula_counts_the_models_layers():
    # the bench's closed form against a count over the model's own conv and linear outputs
    assert rn.resnet18_flops(224) == rn.model_flops(pycnn.models.resnet18(), (3, 224, 224))
    assert rn.resnet18_flops(32, 10) == rn.model_flops(pycnn.models.resnet18(num_classes=10), (3, 32, 32))
    assert rn.resnet18_flops(224) == pytest.approx(3.64e9, rel=0.01)  # 1.82 GMACs, as published


def test_resnet18_save_load_round_trip(tmp_path, rng):
    pycnn.manual_seed(3)
    model = pycnn.models.resnet18(num_classes=5, in_channels=1)
    model.eval()
    x = f32(rng, 2, 1, 40, 40)
    pycnn.save(model, tmp_path / "r18.npz")
    same = pycnn.load(tmp_path / "r18.npz")
    assert type(same) is resnet.ImageNetResNet
    np.testing.assert_array_equal(same(x), model(x))


@needs_torch
def test_resnet18_matches_torchvision_layout(rng, torch_one_thread):
    pycnn.manual_seed(2)
    model = pycnn.models.resnet18(num_classes=7)
    tmodel = rn.torch_resnet18(torch, 3, 7)
    assert list(model.state_dict()) == list(tmodel.state_dict())
    tmodel.load_state_dict(to_torch(model.state_dict()))  # strict: every key and shape agrees
    # training mode: outputs, input and parameter gradients
    x, dy = f32(rng, 2, 3, 48, 48), f32(rng, 2, 7)
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = tmodel(tx)
    ty.backward(torch.from_numpy(dy))
    assert_close(model(x), ty.detach().numpy(), rtol=1e-3, atol=1e-4)
    assert_close(model.backward(dy), tx.grad.numpy(), rtol=1e-3, atol=1e-4)
    tparams = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        assert_close(p.grad, tparams[name].grad.numpy(), rtol=1e-3, atol=1e-4, param=name)
    # a torch checkpoint (after torch's update of the running stats) loads and gives torch's eval logits
    fresh = pycnn.models.resnet18(num_classes=7)
    fresh.load_state_dict(tmodel.state_dict())
    tmodel.eval(), fresh.eval()
    xe = f32(rng, 3, 3, 64, 64)
    assert_close(fresh(xe), tmodel(torch.from_numpy(xe)).detach().numpy(), rtol=1e-3, atol=1e-4)
