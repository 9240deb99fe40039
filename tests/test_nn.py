"""pycnn.nn: module registration, state dicts, the forward/backward life cycle, init, and
whole-network gradients against the NumPy reference (and PyTorch, when installed).

Tolerances: float32 pycnn vs float64 reference, see conftest.tol.
"""
from __future__ import annotations

import gc
import weakref
from collections import OrderedDict

import numpy as np
import pytest

import pycnn
from conftest import assert_close, f32, f64, needs_torch, ref, tol, torch
from pycnn import functional as F
from pycnn import nn, optim


def small_cnn(classes=10):
    """conv-relu-pool-conv-relu-pool-flatten-linear-relu-linear on 1x12x12 input."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 16), nn.ReLU(), nn.Linear(16, classes))


SMALL_CNN_KEYS = ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias", "9.weight", "9.bias"]


def torch_small_cnn(classes=10):
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv2d(1, 4, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(4, 6, 3), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(6 * 2 * 2, 16), tnn.ReLU(), tnn.Linear(16, classes))


# ---------------------------------------------------------------------------
# registration and traversal
# ---------------------------------------------------------------------------

class Block(nn.Module):
    """A custom module with a child, a parameter of its own and buffers (BatchNorm-like)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1, bias=False)
        self.scale = nn.Parameter(np.ones(2, np.float32))
        self.register_buffer("running_mean", np.zeros(2, np.float32))
        self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        self.register_buffer("scratch", np.zeros(3, np.float32), persistent=False)

    def forward(self, x):
        y = self.conv(x)
        self.save_for_backward(y)
        return y * self.scale.data[:, None, None]

    def backward(self, grad_output, input_grad=True):
        (y,) = self.saved()
        self.scale.grad += (grad_output * y).sum(axis=(0, 2, 3))
        return self.conv.backward(grad_output * self.scale.data[:, None, None], input_grad)


def test_names_follow_pytorch_registration_order():
    model = nn.Sequential(OrderedDict(block=Block(), act=nn.ReLU(), fc=nn.Sequential(nn.Flatten(), nn.Linear(8, 3))))
    assert [n for n, _ in model.named_parameters()] == ["block.scale", "block.conv.weight", "fc.1.weight", "fc.1.bias"]
    assert [n for n, _ in model.named_buffers()] == ["block.running_mean", "block.num_batches_tracked", "block.scratch"]
    # state_dict: per module, its parameters then its (persistent) buffers, then its children
    assert list(model.state_dict()) == ["block.scale", "block.running_mean", "block.num_batches_tracked",
                                        "block.conv.weight", "fc.1.weight", "fc.1.bias"]
    assert [n for n, _ in model.named_children()] == ["block", "act", "fc"]
    assert [n for n, _ in model.named_modules()] == ["", "block", "block.conv", "act", "fc", "fc.0", "fc.1"]
    assert len(list(model.modules())) == 7 and len(list(model.children())) == 3
    assert model.state_dict()["block.num_batches_tracked"].dtype == np.int64


def test_the_nn_core_imports_from_where_it_lived_before():
    """Module, Parameter and the registry are defined in nn.module / nn.parameter / nn.registry; the old
    ``from pycnn.nn.module import ...`` keeps giving the same objects, and Flatten is the one of nn.shape."""
    from pycnn.nn import parameter, registry, shape
    from pycnn.nn.module import Module, Parameter, register_module, registered_modules

    assert Module is nn.Module and Parameter is nn.Parameter is parameter.Parameter
    assert register_module is nn.register_module is registry.register_module
    assert registered_modules is nn.registered_modules is registry.registered_modules
    assert nn.Flatten is shape.Flatten and nn.registered_modules()["Flatten"] is shape.Flatten
    assert repr(nn.Linear(2, 3).load_state_dict(nn.Linear(2, 3).state_dict())) == \
        "IncompatibleKeys(missing_keys=[], unexpected_keys=[])"


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(model.parameters())) == 2
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # as PyTorch


def test_attribute_rules():
    m = Block()
    with pytest.raises(TypeError, match="scale"):
        m.scale = np.ones(2)  # a registered parameter only takes a Parameter or None
    m.running_mean = np.ones(2, np.float32)
    assert m.state_dict()["running_mean"].tolist() == [1, 1]
    with pytest.raises(TypeError, match="running_mean"):
        m.running_mean = [1, 2]
    m.extra = 3  # plain attributes are plain
    assert m.extra == 3 and "extra" not in dict(m.named_parameters())
    del m.scale
    assert "scale" not in m.state_dict()
    with pytest.raises(AttributeError, match="nope"):
        m.nope

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(1))  # before super().__init__()

    with pytest.raises(AttributeError, match="__init__"):
        Early()


# ---------------------------------------------------------------------------
# Parameter
# ---------------------------------------------------------------------------

def test_parameter_data_and_grad():
    p = nn.Parameter(np.arange(6.0).reshape(2, 3))  # float64 in: stored float32
    assert p.data.dtype == np.float32 and p.data.flags.c_contiguous and p.shape == (2, 3)
    assert p.grad.dtype == np.float32 and not p.grad.any() and p.requires_grad
    g = p.grad
    p.grad += 1
    p.zero_grad()
    assert p.grad is g and not g.any()  # cleared in place: one buffer for the whole run
    p.data = np.ones((3, 2)).T  # non-contiguous float64 in: converted; same shape keeps the grad buffer
    assert p.data.flags.c_contiguous and p.data.dtype == np.float32 and p.grad is g
    p.data = np.ones(5, np.float32)
    assert p.grad.shape == (5,)
    with pytest.raises(TypeError, match="dtype complex"):
        p.data = np.ones(5, np.complex64)
    with pytest.raises(TypeError):
        p.grad = np.ones(5)  # float64: a grad buffer is written in place, never converted
    with pytest.raises(ValueError, match=r"\(5,\).*\(4,\)"):
        p.grad = np.ones(4, np.float32)
    ro = np.broadcast_to(np.float32(1), (3,))
    assert nn.Parameter(ro).data.flags.writeable  # optimisers write parameters in place
    assert "Parameter containing" in repr(p) and np.asarray(p) is p.data


# ---------------------------------------------------------------------------
# state dict
# ---------------------------------------------------------------------------

def test_state_dict_keys_copies_and_round_trip(rng):
    pycnn.manual_seed(1)
    a = small_cnn()
    sd = a.state_dict()
    assert list(sd) == SMALL_CNN_KEYS
    assert all(v.dtype == np.float32 for v in sd.values())
    sd["0.weight"][...] = 7  # a copy: the model is untouched
    assert not (a[0].weight.data == 7).any()

    pycnn.manual_seed(2)
    b = small_cnn()
    refs = {n: p.data for n, p in b.named_parameters()}
    x = f32(rng, 3, 1, 12, 12)
    assert not np.array_equal(a(x), b(x))
    result = b.load_state_dict({k: v.astype(np.float64) for k, v in a.state_dict().items()})  # float64: converted
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(a(x), b(x))
    # copied in place: the arrays optimisers hold are still the model's
    assert all(p.data is refs[n] for n, p in b.named_parameters())


def test_load_state_dict_strict_key_errors():
    model = small_cnn()
    sd = model.state_dict()
    del sd["3.bias"]
    sd["3.gamma"] = np.zeros(6)
    with pytest.raises(KeyError) as e:
        model.load_state_dict(sd)
    assert "3.bias" in str(e.value) and "3.gamma" in str(e.value)
    before = model.state_dict()
    sd["0.weight"] = sd["0.weight"] + 1
    result = model.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["3.bias"] and result.unexpected_keys == ["3.gamma"]
    np.testing.assert_array_equal(model[0].weight.data, before["0.weight"] + 1)
    np.testing.assert_array_equal(model[3].bias.data, before["3.bias"])


def test_load_state_dict_shape_mismatch_changes_nothing():
    model = small_cnn()
    before = model.state_dict()
    sd = {k: v + 1 for k, v in before.items()}
    sd["7.weight"] = np.zeros((16, 25))  # comes after keys that are fine
    with pytest.raises(ValueError, match=r"7\.weight.*\(16, 25\).*\(16, 24\)"):
        model.load_state_dict(sd)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    sd["7.weight"] = np.zeros((16, 24), np.complex64)
    with pytest.raises(ValueError, match="7.weight"):
        model.load_state_dict(sd)


def test_buffers_round_trip():
    m = Block()
    m.running_mean[...] = [3, 4]
    m.num_batches_tracked[...] = 9
    other = Block()
    other.load_state_dict(m.state_dict())
    assert other.running_mean.tolist() == [3, 4] and int(other.num_batches_tracked) == 9
    assert "scratch" not in m.state_dict()


# ---------------------------------------------------------------------------
# forward / backward life cycle, train / eval
# ---------------------------------------------------------------------------

MODULES = {
    "Conv2d": (lambda: nn.Conv2d(2, 3, 3), (2, 2, 5, 5)),
    "Linear": (lambda: nn.Linear(4, 3), (2, 4)),
    "ReLU": (nn.ReLU, (2, 4)),
    "LeakyReLU": (nn.LeakyReLU, (2, 4)),
    "Sigmoid": (nn.Sigmoid, (2, 4)),
    "Tanh": (nn.Tanh, (2, 4)),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), (1, 2, 4, 4)),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), (1, 2, 4, 4)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(1), (1, 2, 4, 4)),
    "Flatten": (nn.Flatten, (2, 3, 4)),
    "Sequential": (lambda: nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)), (2, 4)),
}


@pytest.mark.parametrize("name", list(MODULES))
def test_backward_needs_one_training_forward(name, rng):
    make, shape = MODULES[name]
    m = make()
    x = f32(rng, *shape)
    with pytest.raises(RuntimeError, match="before forward"):
        m.backward(np.ones((1,)))
    y = m(x)
    assert y.dtype == np.float32
    dx = m.backward(np.ones_like(y))
    assert dx.shape == x.shape
    with pytest.raises(RuntimeError, match="twice"):
        m.backward(np.ones_like(y))
    assert m.eval() is m and not m.training
    y_eval = m(x)
    np.testing.assert_array_equal(y_eval, y)  # no layer here behaves differently in eval
    with pytest.raises(RuntimeError, match="eval"):
        m.backward(np.ones_like(y))
    assert m.train() is m and m.training
    m(x)
    m.backward(np.ones_like(y))


def test_train_eval_propagates_and_eval_keeps_nothing(rng):
    model = small_cnn()
    model.eval()
    assert not any(m.training for m in model.modules())
    x = f32(rng, 2, 1, 12, 12)
    alive = weakref.ref(x)
    model(x)
    del x
    gc.collect()
    assert alive() is None  # inference saved no reference to the input
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(TypeError):
        model.train("yes")


@pytest.mark.parametrize("loss_cls,target", [(nn.CrossEntropyLoss, np.array([0, 2])),
                                             (nn.MSELoss, np.zeros((2, 3), np.float32))],
                         ids=["CrossEntropyLoss", "MSELoss"])
def test_loss_life_cycle(loss_cls, target, rng):
    loss_fn = loss_cls()
    with pytest.raises(RuntimeError, match="before forward"):
        loss_fn.backward()
    z = f32(rng, 2, 3)
    assert isinstance(loss_fn(z, target), float)
    assert loss_fn.backward().shape == z.shape
    with pytest.raises(RuntimeError, match="twice"):
        loss_fn.backward()


# ---------------------------------------------------------------------------
# initialisation
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make,fan_in", [
    (lambda: nn.Conv2d(3, 16, 5), 3 * 25),
    (lambda: nn.Conv2d(8, 16, (3, 2), groups=4), 2 * 6),
    (lambda: nn.Linear(300, 40), 300),
    (lambda: nn.Linear(1, 2000), 1),
], ids=["conv", "conv_groups", "linear", "linear_fan_in_1"])
def test_init_bounds_follow_pytorch(make, fan_in):
    pycnn.manual_seed(0)
    m = make()
    bound = 1 / np.sqrt(fan_in)
    for p in (m.weight, m.bias):
        assert p.data.dtype == np.float32
        assert np.abs(p.data).max() <= bound
        # U(-b, b) fills its range: the extremes are near the bound, the mean near 0
        if p.size >= 200:
            assert np.abs(p.data).max() > 0.9 * bound
            assert abs(p.data.mean()) < 0.2 * bound
            assert p.data.std() == pytest.approx(bound / np.sqrt(3), rel=0.15)


def test_init_is_reproducible_with_manual_seed():
    pycnn.manual_seed(123)
    a = small_cnn().state_dict()
    pycnn.manual_seed(123)
    b = small_cnn().state_dict()
    c = small_cnn().state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert not np.array_equal(a["0.weight"], c["0.weight"])


# ---------------------------------------------------------------------------
# a whole network against the reference composed by hand
# ---------------------------------------------------------------------------

def reference_step(params, x, labels, lr, momentum):
    """Forward, backward and one SGD step of small_cnn in float64 NumPy."""
    p = {k: f64(v) for k, v in params.items()}
    a0 = ref.conv2d(x, p["0.weight"], p["0.bias"], padding=1)
    a1 = ref.relu(a0)
    a2 = ref.max_pool2d(a1, 2)
    a3 = ref.conv2d(a2, p["3.weight"], p["3.bias"])
    a4 = ref.relu(a3)
    a5 = ref.max_pool2d(a4, 2)
    a6 = a5.reshape(len(x), -1)
    a7 = ref.linear(a6, p["7.weight"], p["7.bias"])
    a8 = ref.relu(a7)
    logits = ref.linear(a8, p["9.weight"], p["9.bias"])
    loss = ref.cross_entropy(logits, labels)
    g = {}
    d = ref.cross_entropy_backward(logits, labels)
    d, g["9.weight"], g["9.bias"] = ref.linear_backward(d, a8, p["9.weight"])
    d = ref.relu_backward(d, a7)
    d, g["7.weight"], g["7.bias"] = ref.linear_backward(d, a6, p["7.weight"])
    d = ref.max_pool2d_backward(d.reshape(a5.shape), a4, 2)
    d = ref.relu_backward(d, a3)
    d, g["3.weight"], g["3.bias"] = ref.conv2d_backward(d, a2, p["3.weight"])
    d = ref.max_pool2d_backward(d, a1, 2)
    d = ref.relu_backward(d, a0)
    dx, g["0.weight"], g["0.bias"] = ref.conv2d_backward(d, x, p["0.weight"], padding=1)
    new = {k: ref.sgd_step(p[k], g[k], None, lr, momentum)[0] for k in p}
    return logits, loss, g, dx, new


def test_sequential_forward_backward_step_vs_reference(rng):
    pycnn.manual_seed(7)
    model = small_cnn()
    x = f32(rng, 5, 1, 12, 12)
    labels = rng.integers(0, 10, size=5)
    logits_r, loss_r, grads_r, dx_r, new_r = reference_step(model.state_dict(), f64(x), labels, 0.1, 0.9)
    loss_fn = nn.CrossEntropyLoss()
    logits = model(x)
    assert_close(logits, logits_r, **tol(36))
    loss = loss_fn(logits, labels)
    assert loss == pytest.approx(loss_r, rel=1e-5)
    dx = model.backward(loss_fn.backward())
    # gradients flow through ~6 reductions of up to ~100 terms each
    assert_close(dx, dx_r, **tol(100))
    for name, p in model.named_parameters():
        assert_close(p.grad, grads_r[name], **tol(100), param=name)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.step()
    for name, p in model.named_parameters():
        assert_close(p.data, new_r[name], **tol(100), param=name, what="after SGD step")


def test_grads_accumulate_until_zero_grad(rng):
    model = small_cnn()
    x, labels = f32(rng, 3, 1, 12, 12), np.array([1, 2, 3])
    loss_fn = nn.CrossEntropyLoss()
    loss_fn(model(x), labels)
    model.backward(loss_fn.backward())
    once = {n: p.grad.copy() for n, p in model.named_parameters()}
    loss_fn(model(x), labels)
    model.backward(loss_fn.backward())
    for n, p in model.named_parameters():
        assert_close(p.grad, 2 * once[n], rtol=1e-5, atol=1e-7, param=n)
    model.zero_grad()
    assert not any(p.grad.any() for p in model.parameters())


def test_sequential_skips_first_input_grad(rng):
    model = small_cnn()
    x, labels = f32(rng, 3, 1, 12, 12), np.array([1, 2, 3])
    loss_fn = nn.CrossEntropyLoss()
    loss_fn(model(x), labels)
    dx = model.backward(loss_fn.backward())
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    model.zero_grad()
    loss_fn(model(x), labels)
    assert model.backward(loss_fn.backward(), input_grad=False) is None
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad, grads[n], err_msg=n)  # first layer's dW still computed
    assert dx.shape == x.shape


def test_frozen_parameters_get_no_gradient(rng):
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 9, 4))
    model[0].weight.requires_grad = False
    model[2].requires_grad_(False)
    x = f32(rng, 2, 2, 5, 5)
    y = model(x)
    dx = model.backward(np.ones_like(y))
    assert not model[0].weight.grad.any() and model[0].bias.grad.any()
    assert not model[2].weight.grad.any() and not model[2].bias.grad.any()
    full = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 9, 4))
    full.load_state_dict(model.state_dict())
    full(x)
    np.testing.assert_array_equal(full.backward(np.ones_like(y)), dx)  # dX does not depend on freezing


def test_loss_falls_on_a_small_training_set():
    rng = np.random.default_rng(0)
    pycnn.manual_seed(0)
    # each class is a fixed random pattern under noise: learnable in a few steps
    labels = np.arange(64) % 4
    patterns = rng.standard_normal((4, 1, 12, 12))
    x = (patterns[labels] + 0.5 * rng.standard_normal((64, 1, 12, 12))).astype(np.float32)
    model = small_cnn(classes=4)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        losses.append(loss_fn(model(x), labels))
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.3 * losses[0], losses


# ---------------------------------------------------------------------------
# layers match their functional ops; containers; repr
# ---------------------------------------------------------------------------

def test_layers_match_functional(rng):
    x = f32(rng, 2, 3, 7, 7)
    dy = f32(rng, 2, 3, 3, 3)
    cases = [
        (nn.MaxPool2d(3, 2, 1), lambda: F.max_pool2d(x, 3, 2, 1), (2, 3, 4, 4)),
        (nn.AvgPool2d(3, 2, 1, count_include_pad=False), lambda: F.avg_pool2d(x, 3, 2, 1, False), (2, 3, 4, 4)),
        (nn.AdaptiveAvgPool2d((3, None)), lambda: F.adaptive_avg_pool2d(x, (3, 7)), (2, 3, 3, 7)),
        (nn.LeakyReLU(0.3), lambda: F.leaky_relu(x, 0.3), x.shape),
        (nn.Sigmoid(), lambda: F.sigmoid(x), x.shape),
        (nn.Tanh(), lambda: F.tanh(x), x.shape),
    ]
    for m, f, shape in cases:
        y = m(x)
        assert y.shape == shape, m
        np.testing.assert_array_equal(y, f(), err_msg=repr(m))
        assert m.backward(f32(rng, *shape)).shape == x.shape
    fl = nn.Flatten(1, 2)
    assert fl(x).shape == (2, 21, 7)
    np.testing.assert_array_equal(fl.backward(np.ones((2, 21, 7))), np.ones(x.shape))
    del dy


def test_sequential_container():
    a, b, c = nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)
    s = nn.Sequential(a, b)
    assert len(s) == 2 and s[0] is a and s[-1] is b and list(s) == [a, b]
    assert s.append(c) is s and s[2] is c and list(s.state_dict())[-1] == "2.bias"
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
    named = nn.Sequential(OrderedDict(fc=a, act=b))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and named[0] is a
    with pytest.raises(IndexError):
        s[3]
    with pytest.raises(TypeError, match="not an nn.Module"):
        nn.Sequential(a, "relu")
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(s(x), c(b(a(x))))
    empty = nn.Sequential()
    assert empty(x) is x and empty.backward(x) is x


def test_repr_like_pytorch():
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, groups=2, bias=False),
                          nn.Flatten(), nn.Linear(8, 2))
    expected = """Sequential(
  (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
  (1): ReLU()
  (2): Conv2d(8, 8, kernel_size=(3, 3), stride=(2, 2), groups=2, bias=False)
  (3): Flatten(start_dim=1, end_dim=-1)
  (4): Linear(in_features=8, out_features=2, bias=True)
)"""
    assert repr(model) == expected
    if torch is not None:
        tnn = torch.nn
        tm = tnn.Sequential(tnn.Conv2d(1, 8, 3, padding=1), tnn.ReLU(),
                            tnn.Conv2d(8, 8, 3, stride=2, groups=2, bias=False), tnn.Flatten(), tnn.Linear(8, 2))
        assert repr(model) == repr(tm)
    assert repr(nn.Conv2d(2, 2, 3, padding="same")) == "Conv2d(2, 2, kernel_size=(3, 3), stride=(1, 1), padding=same)"


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------

def test_loss_modules(rng):
    z, t = f32(rng, 7, 5), rng.integers(0, 5, 7)
    ce, ce_sum = nn.CrossEntropyLoss(), nn.CrossEntropyLoss(reduction="sum")
    assert ce(z, t) == F.cross_entropy(z, t)
    assert ce_sum(z, t) == pytest.approx(7 * ce(z, t), rel=1e-12)
    assert_close(ce_sum.backward(), 7 * ce.backward(), rtol=1e-6, atol=0)
    ce(z, t)
    assert_close(ce.backward(2.0), 2 * ref.cross_entropy_backward(f64(z), t), rtol=1e-5, atol=1e-7)
    y = f32(rng, 7, 5)
    mse, mse_sum = nn.MSELoss(), nn.MSELoss("sum")
    assert mse_sum(z, y) == pytest.approx(35 * mse(z, y), rel=1e-12)
    assert_close(mse_sum.backward(), 35 * mse.backward(), rtol=1e-6, atol=0)
    for bad in ("none", "avg"):
        with pytest.raises(ValueError, match="reduction"):
            nn.CrossEntropyLoss(reduction=bad)
        with pytest.raises(ValueError, match="reduction"):
            nn.MSELoss(reduction=bad)
    with pytest.raises(ValueError, match="weight"):
        nn.CrossEntropyLoss(weight=np.ones(5))
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=0.1)


# ---------------------------------------------------------------------------
# PyTorch as a second oracle
# ---------------------------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_matches_torch_after_loading_its_weights(nesterov, rng):
    torch.manual_seed(0)
    tm = torch_small_cnn()
    model = small_cnn()
    assert list(model.state_dict()) == list(tm.state_dict())
    model.load_state_dict(tm.state_dict())  # torch tensors accepted as values
    x = f32(rng, 6, 1, 12, 12)
    labels = rng.integers(0, 10, size=6)
    topt = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=1e-3)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(3):
        tx = torch.from_numpy(x).requires_grad_(True)
        tlogits = tm(tx)
        tloss = torch.nn.functional.cross_entropy(tlogits, torch.from_numpy(labels))
        topt.zero_grad()
        tloss.backward()
        logits = model(x)
        loss = loss_fn(logits, labels)
        opt.zero_grad()
        dx = model.backward(loss_fn.backward())
        # both float32 with different summation orders
        assert_close(logits, tlogits.detach().numpy(), **tol(36), step=step)
        assert loss == pytest.approx(tloss.item(), rel=1e-5)
        assert_close(dx, tx.grad.numpy(), **tol(100), step=step)
        tparams = dict(tm.named_parameters())
        for name, p in model.named_parameters():
            assert_close(p.grad, tparams[name].grad.numpy(), **tol(100), step=step, param=name)
        topt.step()
        opt.step()
        for name, p in model.named_parameters():
            assert_close(p.data, tparams[name].detach().numpy(), **tol(100), step=step, param=name)
    # and back: pycnn's weights load into torch
    tm2 = torch_small_cnn()
    tm2.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    model.eval()
    assert_close(model(x), tm2(torch.from_numpy(x)).detach().numpy(), **tol(36))


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's own performance note
def test_layer_zoo_matches_torch(rng):
    tnn = torch.nn
    pairs = [
        (nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding="valid", dilation=(1, 2), groups=2),
         tnn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding="valid", dilation=(1, 2), groups=2)),
        (nn.Conv2d(4, 4, 4, padding="same", bias=False), tnn.Conv2d(4, 4, 4, padding="same", bias=False)),
        (nn.AvgPool2d(3, 2, 1, count_include_pad=False), tnn.AvgPool2d(3, 2, 1, count_include_pad=False)),
        (nn.AdaptiveAvgPool2d((3, 2)), tnn.AdaptiveAvgPool2d((3, 2))),
        (nn.LeakyReLU(0.2), tnn.LeakyReLU(0.2)),
        (nn.Sigmoid(), tnn.Sigmoid()),
        (nn.Tanh(), tnn.Tanh()),
    ]
    x = f32(rng, 2, 4, 9, 8)
    for m, tm in pairs:
        if list(tm.state_dict()):
            m.load_state_dict(tm.state_dict())
        tx = torch.from_numpy(x).requires_grad_(True)
        ty = tm(tx)
        y = m(x)
        assert_close(y, ty.detach().numpy(), **tol(36), layer=repr(m))
        dy = f32(rng, *y.shape)
        ty.backward(torch.from_numpy(dy))
        assert_close(m.backward(dy), tx.grad.numpy(), **tol(36), layer=repr(m))
        for name, p in m.named_parameters():
            assert_close(p.grad, dict(tm.named_parameters())[name].grad.numpy(), **tol(100), layer=repr(m),
                         param=name)
