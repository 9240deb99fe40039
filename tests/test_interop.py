"""PyTorch weight interop on the preset network (skipped without PyTorch).

The recipe users follow: build the equivalent pycnn model and call
``model.load_state_dict({k: v.numpy() for k, v in torch_model.state_dict().items()})``.
"""
import numpy as np
import pytest

import pycnn
from pycnn import nn
from pycnn.models import fashion_mnist_cnn
from pycnn.train import predict, predict_proba

from conftest import assert_close

torch = pytest.importorskip("torch")


def torch_fashion_mnist_cnn(num_classes=10):
    t = torch.nn
    return t.Sequential(
        t.Conv2d(1, 32, 3, padding=1), t.ReLU(), t.MaxPool2d(2),
        t.Conv2d(32, 64, 3, padding=1), t.ReLU(), t.MaxPool2d(2),
        t.Flatten(), t.Linear(3136, 128), t.ReLU(), t.Linear(128, num_classes),
    )


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    tm = torch_fashion_mnist_cnn().eval()
    model = fashion_mnist_cnn()
    model.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    return tm, model


def test_torch_weights_give_the_same_outputs(pair):
    tm, model = pair
    x = np.random.default_rng(0).random((16, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        expected = tm(torch.from_numpy(x)).numpy()
    model.eval()
    assert_close(model(x), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(predict(model, x), expected.argmax(axis=1))
    with torch.no_grad():
        tp = torch.softmax(tm(torch.from_numpy(x)), dim=1).numpy()
    assert_close(predict_proba(model, x), tp, rtol=1e-4, atol=1e-6)


def test_torch_weights_survive_save_and_load(pair, tmp_path):
    tm, model = pair
    pycnn.save(model, tmp_path / "from_torch.npz")
    loaded = pycnn.load(tmp_path / "from_torch.npz")
    x = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        expected = tm(torch.from_numpy(x)).numpy()
    loaded.eval()
    assert_close(loaded(x), expected, rtol=1e-4, atol=1e-5)
    # and back into PyTorch
    tm2 = torch_fashion_mnist_cnn().eval()
    tm2.load_state_dict({k: torch.from_numpy(v) for k, v in loaded.state_dict().items()})
    with torch.no_grad():
        np.testing.assert_array_equal(tm2(torch.from_numpy(x)).numpy(), expected)


def test_fine_tune_torch_pretrained_features(pair):
    """Transfer learning from PyTorch weights: frozen features stay exactly PyTorch's."""
    tm, _ = pair
    model = fashion_mnist_cnn()
    model.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    model.freeze()
    model[-1] = nn.Linear(128, 3)
    x = np.random.default_rng(2).random((32, 1, 28, 28), dtype=np.float32)
    y = np.random.default_rng(3).integers(0, 3, 32)
    from pycnn import optim
    from pycnn.train import fit

    fit(model, x, y, loss_fn=nn.CrossEntropyLoss(), optimizer=optim.SGD(model.parameters(), lr=0.1),
        epochs=1, batch_size=16, verbose=0)
    for k, v in tm.state_dict().items():
        if not k.startswith("9."):
            np.testing.assert_array_equal(model.state_dict()[k], v.numpy(), err_msg=k)
