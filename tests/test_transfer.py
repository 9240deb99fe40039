"""Transfer learning: freeze, swap the head, fine-tune; optimisers and backward skip frozen parameters."""
import numpy as np
import pytest

import pycnn
from pycnn import nn, optim
from pycnn.models import fashion_mnist_cnn
from pycnn.train import fit


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
