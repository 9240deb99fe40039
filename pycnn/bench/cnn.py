"""The Fashion-MNIST CNN of the train-step, inference and ``--memory`` benchmarks, as each peer writes it.

pycnn's is :func:`pycnn.models.fashion_mnist_cnn`; here are the NumPy
baseline's (:class:`NumpyCNN`, on :mod:`pycnn.reference`) and PyTorch's
(:func:`torch_cnn`), the random images they run on and the arithmetic of a
forward pass. Small on purpose: :mod:`pycnn.bench.rss_probe` imports it into
the process whose memory it measures.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

if TYPE_CHECKING:
    import numpy as np


def cnn_flops(n: int) -> float:
    """Multiply-adds x 2 of the CNN's forward pass on n images."""
    conv1 = 2.0 * 32 * 28 * 28 * 1 * 9
    conv2 = 2.0 * 64 * 14 * 14 * 32 * 9
    fc = 2.0 * (3136 * 128 + 128 * 10)
    return n * (conv1 + conv2 + fc)


def random_images(n: int, seed: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    """``n`` random images ``(n, 1, 28, 28)`` float32 in [0, 1) and labels ``(n,)`` int64 in 0..9."""
    import numpy as np

    x = np.random.default_rng(seed).random((n, 1, 28, 28), dtype=np.float32)
    y = np.random.default_rng(seed + 1).integers(0, 10, size=n).astype(np.int64)
    return x, y


class NumpyCNN:
    """The Fashion-MNIST CNN written with :mod:`pycnn.reference` (the NumPy baseline)."""

    def __init__(self) -> None:
        import numpy as np

        def init(fan_in, *shape):  # PyTorch's default (Kaiming-uniform with a=sqrt(5)) bound
            bound = 1.0 / np.sqrt(fan_in)
            return np.random.default_rng(len(shape)).uniform(-bound, bound, shape).astype(np.float32)

        self.p = {
            "w1": init(9, 32, 1, 3, 3), "b1": init(9, 32),
            "w2": init(288, 64, 32, 3, 3), "b2": init(288, 64),
            "w3": init(3136, 128, 3136), "b3": init(3136, 128),
            "w4": init(128, 10, 128), "b4": init(128, 10),
        }
        self.buf: Dict[str, Optional[np.ndarray]] = {k: None for k in self.p}

    def forward(self, x: np.ndarray) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        from .. import reference as ref

        p = self.p
        c = {"x": x}
        c["a1"] = ref.conv2d(x, p["w1"], p["b1"], padding=1)
        c["r1"] = ref.relu(c["a1"])
        c["p1"] = ref.max_pool2d(c["r1"], 2)
        c["a2"] = ref.conv2d(c["p1"], p["w2"], p["b2"], padding=1)
        c["r2"] = ref.relu(c["a2"])
        c["p2"] = ref.max_pool2d(c["r2"], 2)
        c["f"] = c["p2"].reshape(len(x), -1)
        c["a3"] = ref.linear(c["f"], p["w3"], p["b3"])
        c["r3"] = ref.relu(c["a3"])
        logits = ref.linear(c["r3"], p["w4"], p["b4"])
        return logits, c

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float = 0.05, momentum: float = 0.9) -> float:
        from .. import reference as ref

        p = self.p
        logits, c = self.forward(x)
        loss = ref.cross_entropy(logits, y)
        g = {}
        d = ref.cross_entropy_backward(logits, y)
        d, g["w4"], g["b4"] = ref.linear_backward(d, c["r3"], p["w4"])
        d = ref.relu_backward(d, c["a3"])
        d, g["w3"], g["b3"] = ref.linear_backward(d, c["f"], p["w3"])
        d = ref.max_pool2d_backward(d.reshape(c["p2"].shape), c["r2"], 2)
        d = ref.relu_backward(d, c["a2"])
        d, g["w2"], g["b2"] = ref.conv2d_backward(d, c["p1"], p["w2"], padding=1)
        d = ref.max_pool2d_backward(d, c["r1"], 2)
        d = ref.relu_backward(d, c["a1"])
        _, g["w1"], g["b1"] = ref.conv2d_backward(d, x, p["w1"], padding=1)
        for k in p:
            p[k], self.buf[k] = ref.sgd_step(p[k], g[k], self.buf[k], lr, momentum)
        return loss


def torch_cnn(torch: Any) -> Any:
    """The CNN as a ``torch.nn.Sequential``, initialised from ``torch.manual_seed(0)``."""
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10),
    )
