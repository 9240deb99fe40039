"""Memory: a long training loop keeps a flat resident set size.

10,000 forward + backward + SGD iterations of a tiny CNN (every layer kind
that allocates in C++: convolution (both algorithms), pooling with indices,
activations, linear, the loss), plus a rejected call per iteration, so the
error paths are soaked too. A leak of 128 bytes per iteration would add
about 1 MiB over the measured stretch, which is the bound. The model is tiny
and runs on one thread, so the loop costs Python overhead only (~3 s; waking
OpenMP threads for such tiny convolutions would cost ten times more on a busy
machine); PYCNN_SOAK_ITERATIONS changes the count.
"""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import pycnn
from pycnn import functional as F
from pycnn import nn, optim

ITERATIONS = int(os.environ.get("PYCNN_SOAK_ITERATIONS", "10000"))
WARMUP = 500
BOUND = 1 << 20  # bytes of RSS growth allowed after warm-up

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc"),
    pytest.mark.skipif(os.environ.get("PYCNN_SANITIZED_RUN") == "1", reason="RSS means nothing under ASan"),
]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def one_thread():
    old = pycnn.get_num_threads()
    pycnn.set_num_threads(1)
    yield
    pycnn.set_num_threads(old)


def test_training_loop_rss_is_flat(one_thread):
    pycnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(2, 2, 3, groups=2, algo="direct"), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
    y = np.array([0, 1, 2, 0])
    bad_w = np.zeros((2, 3, 3, 3), np.float32)

    def step():
        loss_fn(model(x), y)
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
        try:
            F.conv2d(x, bad_w)  # channel mismatch: raised from C++
        except ValueError:
            pass

    for _ in range(WARMUP):
        step()
    gc.collect()
    start = _rss()
    samples = []
    for i in range(ITERATIONS):
        step()
        if i % 1000 == 999:
            samples.append(_rss() - start)
    gc.collect()
    growth = _rss() - start
    assert growth <= BOUND, f"RSS grew by {growth / 1024:.0f} KiB over {ITERATIONS} iterations; samples {samples}"
    assert np.isfinite(model[-1].weight.data).all()
