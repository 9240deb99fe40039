"""Determinism: what is bitwise reproducible, and what holds across thread counts (docs/reliability.md).

* For a fixed thread count (and instruction set), every forward, backward and
  optimiser step is bitwise repeatable, and a seeded ``fit`` reproduces its
  History and weights exactly.
* Across thread counts, everything is bitwise identical *except* the
  im2col convolution's weight and bias gradients, whose per-thread partial
  sums depend on how the batch is split: they agree to float32 rounding, so a
  training run with another thread count drifts apart slowly.
"""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from pycnn import functional as F
from pycnn import nn, optim
from pycnn.train import fit

TIMING_KEYS = ("time", "images_per_s")


@pytest.fixture
def restore_threads():
    old = pycnn.get_num_threads()
    yield
    pycnn.set_num_threads(old)


def _model():
    pycnn.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, algo="im2col"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.LeakyReLU(0.1),  # depthwise: direct
        nn.Conv2d(16, 8, 1), nn.Sigmoid(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(8 * 5 * 5, 64), nn.Tanh(), nn.Linear(64, 10),
    )


def _data():
    rng = np.random.default_rng(1)
    return rng.standard_normal((24, 3, 20, 20)).astype(np.float32), rng.integers(0, 10, 24)


def _steps(nt, steps=3):
    """Every output, input gradient, parameter gradient and updated weight of a few SGD steps, with nt threads."""
    pycnn.set_num_threads(nt)
    model = _model()
    x, y = _data()
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    out = {}
    for s in range(steps):
        logits = model(x)
        out[f"logits{s}"] = logits
        out[f"loss{s}"] = np.float64(loss_fn(logits, y))
        opt.zero_grad()
        out[f"dx{s}"] = model.backward(loss_fn.backward())
        for name, p in model.named_parameters():
            out[f"grad{s}.{name}"] = p.grad.copy()
        opt.step()
    out.update({f"weight.{k}": v for k, v in model.state_dict().items()})
    return out


@pytest.mark.parametrize("nt", [1, 2, 3])
def test_repeated_training_steps_are_bitwise_identical(nt, restore_threads):
    a = _steps(nt)
    b = _steps(nt)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_across_thread_counts_only_im2col_weight_grads_differ(restore_threads):
    """First step from identical weights: what matches bitwise for 1, 2 and 3 threads."""
    runs = {nt: _steps(nt, steps=1) for nt in (1, 2, 3)}
    im2col_grads = {"grad0.0.weight", "grad0.0.bias", "grad0.5.weight", "grad0.5.bias"}  # the im2col convs
    for nt in (2, 3):
        for k, v in runs[1].items():
            if k.startswith("weight."):
                continue  # after a step: inherits the gradient differences
            if k in im2col_grads:
                np.testing.assert_allclose(runs[nt][k], v, rtol=1e-4, atol=1e-6, err_msg=f"{k} nt={nt}")
            else:
                np.testing.assert_array_equal(runs[nt][k], v, err_msg=f"{k} nt={nt}")


def test_inference_is_identical_for_any_thread_count(restore_threads):
    x, _ = _data()
    outs = []
    for nt in (1, 2, 3, 4):
        pycnn.set_num_threads(nt)
        model = _model().eval()
        outs.append(model(x))
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32) * 0.3
    x[np.arange(n), 0, 2 + 2 * y, 2 + 2 * y] += 2.0
    return x, y


@pytest.mark.parametrize("nt", [1, 2])
def test_seeded_fit_reproduces_history_for_a_thread_count(nt, restore_threads):
    pycnn.set_num_threads(nt)
    x, y = _blobs(256, 0)
    val = _blobs(64, 1)
    runs = []
    for _ in range(2):
        pycnn.manual_seed(11)
        model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(6 * 16, 3))
        h = fit(model, x, y, loss_fn=nn.CrossEntropyLoss(),
                optimizer=optim.SGD(model.parameters(), lr=0.05, momentum=0.9), epochs=2, batch_size=32,
                validation_data=val, verbose=0)
        runs.append((h.history, model.state_dict()))
    (h1, w1), (h2, w2) = runs
    for key in h1:
        if key not in TIMING_KEYS:
            assert h1[key] == h2[key], key
    for k in w1:
        np.testing.assert_array_equal(w1[k], w2[k], err_msg=k)


@pytest.mark.parametrize("algo", ["im2col", "direct"])
def test_nan_does_not_poison_other_images(algo):
    """A NaN in one image stays in that image's outputs and gradients' own rows (no cross-image mixing)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    x[2, 1, 3, 3] = np.nan
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    y = F.conv2d(x, w, padding=1, algo=algo)
    assert np.isnan(y[2]).any() and not np.isnan(y[[0, 1, 3]]).any()
    dx, dw, _ = F.conv2d_backward(np.ones_like(y), x, w, padding=1, algo=algo)
    assert not np.isnan(dx).any()  # dx depends on w and dy only
    assert np.isnan(dw).any()  # dw sums over every image: the NaN reaches it, as it must
