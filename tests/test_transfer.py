"""Transfer learning: freeze, swap the head, fine-tune; optimisers and backward skip frozen parameters."""
import numpy as np
import pytest

import pycnn
from pycnn import nn, optim
from pycnn.models import fashion_mnist_cnn
from pycnn.train import fit

from conftest import assert_close, needs_torch, torch
from test_eval_backward import _stem, _torch_stem


def data(n=96, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int64)
    x = rng.random((n, 1, 28, 28), dtype=np.float32) * 0.2
    for i, c in enumerate(y):  # a bright square whose place tells the class
        x[i, 0, 4 * c:4 * c + 6, 4 * c:4 * c + 6] += 0.8
    return x, y


def test_freeze_unfreeze_and_trainable_parameters():
    pycnn.manual_seed(0)
    model = fashion_mnist_cnn()
    assert model.freeze() is model
    assert not any(p.requires_grad for p in model.parameters())
    assert list(model.trainable_parameters()) == []
    model[9].unfreeze()
    assert list(model.trainable_parameters()) == [model[9].weight, model[9].bias]
    model.unfreeze()
    assert len(list(model.trainable_parameters())) == 8


def test_fine_tune_a_new_head():
    """The documented recipe: freeze the features, swap the classifier, train: only the head changes."""
    pycnn.manual_seed(0)
    model = fashion_mnist_cnn()
    model.freeze()
    model[-1] = nn.Linear(128, 5)  # new head for 5 classes: trainable
    before = {k: v.copy() for k, v in model.state_dict().items()}
    # Optimisers may hold every parameter: frozen ones are skipped (momentum and weight decay too).
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    x, y = data()
    h = fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=3, batch_size=32, verbose=0)
    after = model.state_dict()
    for k in before:
        if k.startswith("9."):
            assert not np.array_equal(after[k], before[k]), k
        else:
            np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    for p in model.parameters():  # frozen gradients are never written
        if not p.requires_grad:
            assert not p.grad.any()
    assert h["loss"][-1] < h["loss"][0]


def test_backward_stops_at_the_frozen_prefix():
    """With the features frozen, fit does not run their backward at all (no wasted dX passes)."""
    calls = []

    class Spy(nn.Conv2d):
        def backward(self, grad_output, input_grad=True):
            calls.append(input_grad)
            return super().backward(grad_output, input_grad)

    pycnn.manual_seed(0)
    model = nn.Sequential(Spy(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), Spy(4, 4, 3, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 5))
    x, y = data(32)
    opt = optim.SGD(model.parameters(), lr=0.01)
    fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=1, batch_size=32, verbose=0)
    assert calls == [True, False]  # both convolutions; the first without its input gradient
    calls.clear()
    model[0].freeze()
    fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=1, batch_size=32, verbose=0)
    assert calls == [False]  # only the second, which is now first to need gradients
    calls.clear()
    model[3].freeze()
    fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=1, batch_size=32, verbose=0)
    assert calls == []
    # An explicit input gradient still goes through every layer.
    model.train()
    out = model(x)
    loss_fn = nn.CrossEntropyLoss()
    loss_fn(out, y)
    dx = model.backward(loss_fn.backward())
    assert dx.shape == x.shape and calls == [True, True]


def test_frozen_prefix_gives_the_same_head_gradients():
    pycnn.manual_seed(1)
    a = fashion_mnist_cnn()
    b = fashion_mnist_cnn()
    b.load_state_dict(a.state_dict())
    for m in (a, b):
        m[:7].freeze()
    x, y = data(16)
    grads = []
    for m, input_grad in ((a, False), (b, True)):
        m.train()
        m.zero_grad()
        loss_fn = nn.CrossEntropyLoss()
        loss_fn(m(x), y)
        m.backward(loss_fn.backward(), input_grad=input_grad)
        grads.append({n: p.grad.copy() for n, p in m.named_parameters()})
    for k in grads[0]:
        np.testing.assert_array_equal(grads[0][k], grads[1][k], err_msg=k)


def test_summary_and_save_see_the_frozen_state(tmp_path):
    pycnn.manual_seed(0)
    model = fashion_mnist_cnn()
    model.freeze()
    model[-1] = nn.Linear(128, 5)
    s = pycnn.summary(model, (1, 28, 28), print_fn=None)
    assert s.trainable_params == 128 * 5 + 5
    pycnn.save(model, tmp_path / "ft.npz")
    loaded = pycnn.load(tmp_path / "ft.npz")
    assert [n for n, p in loaded.named_parameters() if p.requires_grad] == ["9.weight", "9.bias"]


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_other_optimisers_skip_frozen_parameters(name):
    """Adam/AdamW are being added by another branch; when present they must skip frozen parameters too."""
    cls = getattr(optim, name, None)
    if cls is None:
        pytest.skip(f"optim.{name} is not in this tree yet")
    p = nn.Parameter(np.ones(3, np.float32), requires_grad=False)
    p.grad[...] = 1.0
    cls([p], lr=0.1, weight_decay=0.1).step()
    np.testing.assert_array_equal(p.data, 1.0)


# ---------------------------------------------------------------- frozen BatchNorm statistics (freeze(bn_eval=True))
def _bn_net(rng):
    """conv-BN-ReLU, a BasicBlock (BNs inside a block), a head; BatchNorms with non-default statistics."""
    return _stem(rng)


def _batchnorms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def _image_data(rng, n=24, classes=5):
    return rng.standard_normal((n, 3, 8, 8)).astype(np.float32), rng.integers(0, classes, n)


def test_freeze_pins_batchnorm_in_eval_mode_through_fit(rng):
    """Keras' trainable = False: fit's model.train() every epoch leaves the frozen BatchNorms in eval mode,
    their running statistics (and counters) unchanged; only the new head changes."""
    pycnn.manual_seed(0)
    model = _bn_net(rng)
    model.freeze()
    assert all(not bn.training for bn in _batchnorms(model))
    model[-1] = nn.Linear(32, 5)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    x, y = _image_data(rng)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=2, batch_size=8, verbose=0)
    after = model.state_dict()
    for k in before:
        if k.startswith("6."):
            assert not np.array_equal(after[k], before[k]), k
        else:  # weights, running_mean/var and num_batches_tracked
            np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    model.train()
    assert model.training and model[0].training and not any(bn.training for bn in _batchnorms(model))
    assert all(bn._eval_pinned for bn in _batchnorms(model))


def test_freeze_bn_eval_false_is_pytorchs_requires_grad(rng):
    """freeze(bn_eval=False) freezes parameters only: BatchNorm trains on batch statistics and updates them."""
    model = _bn_net(rng)
    model.freeze(bn_eval=False)
    bn = model[1]
    mean0 = bn.running_mean.copy()
    model.train()
    assert bn.training
    model(_image_data(rng)[0])
    assert not np.array_equal(bn.running_mean, mean0) and int(bn.num_batches_tracked) == 1
    with pytest.raises(TypeError, match="bn_eval"):
        model.freeze(bn_eval="yes")


def test_unfreeze_releases_the_pinned_batchnorms(rng):
    model = _bn_net(rng).train()
    model.freeze()
    model.unfreeze()
    assert all(bn.training and not bn._eval_pinned for bn in _batchnorms(model))
    assert all(p.requires_grad for p in model.parameters())
    # unfreeze on a model in eval mode: the released BatchNorms take its mode, and follow train() again
    model.freeze()
    model.eval()
    model.unfreeze()
    assert not model[1].training  # the mode of the module unfreeze was called on
    model.train()
    assert model[1].training


@needs_torch
def test_frozen_backbone_training_step_matches_torch(rng):
    """The whole recipe, one SGD step through fit: pycnn's freeze() against PyTorch's idiom
    (requires_grad_(False) on the backbone, BatchNorm .eval() after .train()): same logits, loss, head update."""
    pycnn.manual_seed(0)
    model = _bn_net(rng)
    tmodel = _torch_stem(model)
    model[:6].freeze()  # everything but the head
    tmodel.train()
    for tp in tmodel[:6].parameters():
        tp.requires_grad_(False)
    for tm in tmodel.modules():
        if isinstance(tm, torch.nn.BatchNorm2d):
            tm.eval()
    x, y = _image_data(rng, n=12)
    opt = optim.SGD(model.parameters(), lr=0.5)
    h = fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=1, batch_size=12, shuffle=False,
            verbose=0)
    topt = torch.optim.SGD([p for p in tmodel.parameters() if p.requires_grad], lr=0.5)
    tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    topt.step()
    assert h["loss"][0] == pytest.approx(float(tloss.detach()), rel=1e-5)
    for k, v in tmodel.state_dict().items():
        assert_close(model.state_dict()[k], v.numpy(), rtol=1e-5, atol=1e-6, param=k)
    model.eval(), tmodel.eval()
    assert_close(model(x), tmodel(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_save_load_keeps_the_pinned_batchnorms(tmp_path, rng):
    model = _bn_net(rng)
    model[:4].freeze()
    model.train()
    pycnn.save(model, tmp_path / "m.npz")
    loaded = pycnn.load(tmp_path / "m.npz")
    assert [n for n, m in loaded.named_modules() if m._eval_pinned] == ["1"]
    assert loaded.training and not loaded[1].training and loaded[4].bn1.training
    loaded.unfreeze()
    assert loaded[1].training
