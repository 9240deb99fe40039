"""The benchmark cases, defined once: :func:`cases` and the :class:`Case` each is.

GEMM, convolution (forward, forward + backward), pooling, ReLU, the
Fashion-MNIST CNN's training step and inference, and ResNet-18 (inference
and training at 224x224, training at CIFAR's 32x32), each built for pycnn,
the NumPy baseline (:mod:`pycnn.reference`; not for ResNet-18, where it
would take minutes), PyTorch and, for ResNet-18 inference, ONNX Runtime. ``python -m pycnn
bench`` and ``benchmarks/test_bench.py`` both time these.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Tuple

from . import resnet as rn
from .cnn import NumpyCNN, cnn_flops, random_images, torch_cnn

if TYPE_CHECKING:  # NumPy is imported when a case is built, not with this module (see cli)
    import numpy as np

#: What a case's builder returns: one call of the operation.
RunOnce = Callable[[], object]

#: Implementations, in table order.
IMPLS = ("pycnn", "numpy", "torch", "onnxruntime")


def torch_or_none() -> Any:
    """``torch`` if it imports, else None (PyTorch is an optional peer)."""
    try:
        import torch
    except Exception:  # ImportError, or a broken install (OSError from a missing .so)
        return None
    return torch


@dataclass
class Case:
    """One benchmark case.

    ``builders[impl]()`` allocates the inputs and returns a zero-argument
    callable that runs the operation once; ``flops`` is the arithmetic of one
    call (0 when GFLOP/s is not meaningful, e.g. memory-bound ops).
    """

    name: str
    group: str
    flops: float
    builders: Dict[str, Callable[[], RunOnce]] = field(default_factory=dict)
    #: Largest number of NumPy-baseline rounds worth spending on this case.
    numpy_budget_s: float = 2.0


#: (N, C, H, W, K, kernel, stride, padding) of the convolution cases.
CONV_SHAPES = [
    (64, 1, 28, 28, 32, 3, 1, 1),
    (64, 32, 14, 14, 64, 3, 1, 1),
    (32, 64, 32, 32, 64, 3, 1, 1),
    (32, 128, 16, 16, 128, 3, 1, 1),
    (32, 256, 8, 8, 256, 3, 1, 1),
    (32, 256, 14, 14, 64, 1, 1, 0),
    (32, 64, 32, 32, 128, 3, 2, 1),
]

GEMM_SIZES = [256, 512, 1024, 2048]
#: Conv-shaped products (m x n x k): one image's im2col GEMM of the ResNet
#: layers (output channels x pixels x C*9) and the CNN's first Linear layer
#: on a batch (batch x out x in).
GEMM_CONV_SHAPES = [
    (64, 1024, 576, "conv C=64 32x32"),
    (128, 256, 1152, "conv C=128 16x16"),
    (256, 64, 2304, "conv C=256 8x8"),
    (128, 128, 3136, "Linear 3136->128"),
]


def _rng(seed: int = 0) -> np.random.Generator:
    import numpy as np

    return np.random.default_rng(seed)


def _randn(*shape: int, seed: int = 0) -> np.ndarray:
    import numpy as np

    return _rng(seed).standard_normal(shape, dtype=np.float32)


def _conv_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _conv_name(N: int, C: int, H: int, W: int, K: int, k: int, s: int, p: int) -> str:
    extra = f" s{s}" if s != 1 else ""
    return f"conv{k}x{k}{extra} {N}x{C}x{H}x{W}->{K}"


def _gemm_case(m: int, n: int, k: int, note: str = "") -> Case:
    """C (m x n) = A (m x k) B (k x n), all row-major."""

    def operands():
        return _randn(m, k, seed=1), _randn(k, n, seed=2)

    def pycnn_():
        from .. import _core

        a, b = operands()
        return lambda: _core.sgemm(a, b)

    def numpy_():
        a, b = operands()
        return lambda: a @ b

    def torch_():
        torch = torch_or_none()
        a, b = (torch.from_numpy(t) for t in operands())
        return lambda: torch.mm(a, b)

    name = f"sgemm {m}x{n}x{k}" + (f" ({note})" if note else "")
    return Case(name, "gemm", 2.0 * m * n * k, {"pycnn": pycnn_, "numpy": numpy_, "torch": torch_})


def _conv_case(shape: Tuple[int, ...], backward: bool) -> Case:
    N, C, H, W, K, k, s, p = shape
    Ho, Wo = _conv_out(H, k, s, p), _conv_out(W, k, s, p)
    fwd_flops = 2.0 * N * K * Ho * Wo * C * k * k
    # Backward = data gradient + weight gradient, each as much arithmetic as forward.
    flops = 3 * fwd_flops if backward else fwd_flops

    def inputs():
        x = _randn(N, C, H, W, seed=1)
        dy = _randn(N, K, Ho, Wo, seed=3)
        return x, dy

    def pycnn_():
        from .. import nn

        from .._random import manual_seed

        manual_seed(0)
        conv = nn.Conv2d(C, K, k, stride=s, padding=p)
        x, dy = inputs()
        if not backward:
            conv.eval()
            return lambda: conv(x)

        def step():
            conv(x)
            return conv.backward(dy)

        conv.train()
        return step

    def numpy_():
        from .. import reference as ref

        x, dy = inputs()
        w = _randn(K, C, k, k, seed=2) * 0.1
        b = _randn(K, seed=4)
        if not backward:
            return lambda: ref.conv2d(x, w, b, stride=s, padding=p)

        def step():
            ref.conv2d(x, w, b, stride=s, padding=p)
            return ref.conv2d_backward(dy, x, w, stride=s, padding=p)

        return step

    def torch_():
        torch = torch_or_none()
        F = torch.nn.functional
        x, dy = (torch.from_numpy(a) for a in inputs())
        w = torch.from_numpy(_randn(K, C, k, k, seed=2) * 0.1)
        b = torch.from_numpy(_randn(K, seed=4))
        if not backward:

            def fwd():
                with torch.no_grad():
                    return F.conv2d(x, w, b, stride=s, padding=p)

            return fwd
        xg, wg, bg = (t.clone().requires_grad_(True) for t in (x, w, b))

        def step():
            y = F.conv2d(xg, wg, bg, stride=s, padding=p)
            return torch.autograd.grad(y, (xg, wg, bg), dy)

        return step

    budget = 2.0
    group = "conv-bwd" if backward else "conv-fwd"
    label = _conv_name(*shape) + (" fwd+bwd" if backward else " fwd")
    return Case(label, group, flops, {"pycnn": pycnn_, "numpy": numpy_, "torch": torch_}, budget)


_POOL_SHAPE = (128, 32, 28, 28)  # the CNN's first ReLU + pooling, batch 128


def _pool_case(backward: bool) -> Case:
    shape = _POOL_SHAPE
    out_shape = shape[:2] + (shape[2] // 2, shape[3] // 2)

    def pycnn_():
        from .. import nn

        pool = nn.MaxPool2d(2)
        x, dy = _randn(*shape, seed=1), _randn(*out_shape, seed=2)
        if not backward:
            pool.eval()
            return lambda: pool(x)

        def step():
            pool(x)
            return pool.backward(dy)

        pool.train()
        return step

    def numpy_():
        from .. import reference as ref

        x, dy = _randn(*shape, seed=1), _randn(*out_shape, seed=2)
        if not backward:
            return lambda: ref.max_pool2d(x, 2)

        def step():
            ref.max_pool2d(x, 2)
            return ref.max_pool2d_backward(dy, x, 2)

        return step

    def torch_():
        torch = torch_or_none()
        F = torch.nn.functional
        x, dy = torch.from_numpy(_randn(*shape, seed=1)), torch.from_numpy(_randn(*out_shape, seed=2))
        if not backward:

            def fwd():
                with torch.no_grad():
                    return F.max_pool2d(x, 2)

            return fwd
        xg = x.clone().requires_grad_(True)
        return lambda: torch.autograd.grad(F.max_pool2d(xg, 2), xg, dy)

    name = "maxpool2x2 " + "x".join(map(str, shape)) + (" fwd+bwd" if backward else " fwd")
    return Case(name, "pool", 0.0, {"pycnn": pycnn_, "numpy": numpy_, "torch": torch_})


def _relu_case(backward: bool) -> Case:
    shape = _POOL_SHAPE

    def pycnn_():
        from .. import nn

        relu = nn.ReLU()
        x, dy = _randn(*shape, seed=1), _randn(*shape, seed=2)
        if not backward:
            relu.eval()
            return lambda: relu(x)

        def step():
            relu(x)
            return relu.backward(dy)

        relu.train()
        return step

    def numpy_():
        from .. import reference as ref

        x, dy = _randn(*shape, seed=1), _randn(*shape, seed=2)
        if not backward:
            return lambda: ref.relu(x)

        def step():
            ref.relu(x)
            return ref.relu_backward(dy, x)

        return step

    def torch_():
        torch = torch_or_none()
        x, dy = torch.from_numpy(_randn(*shape, seed=1)), torch.from_numpy(_randn(*shape, seed=2))
        if not backward:

            def fwd():
                with torch.no_grad():
                    return torch.relu(x)

            return fwd
        xg = x.clone().requires_grad_(True)
        return lambda: torch.autograd.grad(torch.relu(xg), xg, dy)

    name = "relu " + "x".join(map(str, shape)) + (" fwd+bwd" if backward else " fwd")
    return Case(name, "activation", 0.0, {"pycnn": pycnn_, "numpy": numpy_, "torch": torch_})


TRAIN_BATCH = 128
INFER_IMAGES = 1000


def _train_step_case() -> Case:
    def pycnn_():
        from .. import nn, optim
        from .._random import manual_seed
        from ..models import fashion_mnist_cnn
        from ..train import Trainer

        manual_seed(0)
        model = fashion_mnist_cnn()
        model.train()
        trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
        x, y = random_images(TRAIN_BATCH)
        return lambda: trainer.train_step(x, y)

    def numpy_():
        model = NumpyCNN()
        x, y = random_images(TRAIN_BATCH)
        return lambda: model.train_step(x, y)

    def torch_():
        torch = torch_or_none()
        model = torch_cnn(torch)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x, y = (torch.from_numpy(a) for a in random_images(TRAIN_BATCH))

        def step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        return step

    # forward + backward (data and weight gradients) ~ 3x forward; the first
    # layer's data gradient is not needed, but this is a rate, not a count.
    return Case(
        f"Fashion-MNIST CNN train step, batch {TRAIN_BATCH}", "train-step", 3 * cnn_flops(TRAIN_BATCH),
        {"pycnn": pycnn_, "numpy": numpy_, "torch": torch_}, numpy_budget_s=4.0,
    )


def _inference_case(images: int) -> Case:
    """Forward pass of the Fashion-MNIST CNN; images=1 measures latency (per-call overhead, small-batch threading)."""

    def pycnn_():
        from .._random import manual_seed
        from ..models import fashion_mnist_cnn

        manual_seed(0)
        model = fashion_mnist_cnn()
        model.eval()
        x, _ = random_images(images)
        return lambda: model(x)

    def numpy_():
        model = NumpyCNN()
        x, _ = random_images(images)
        return lambda: model.forward(x)[0]

    def torch_():
        torch = torch_or_none()
        model = torch_cnn(torch).eval()
        x = torch.from_numpy(random_images(images)[0])

        def fwd():
            with torch.no_grad():
                return model(x)

        return fwd

    return Case(
        f"Fashion-MNIST CNN inference, {images} image{'s' if images > 1 else ''}", "inference", cnn_flops(images),
        {"pycnn": pycnn_, "numpy": numpy_, "torch": torch_}, numpy_budget_s=4.0,
    )


#: ResNet-18 cases: inference batch sizes at 224x224, the training batch at
#: 224x224, and the training batch at CIFAR's 32x32 (10 classes).
RESNET_INFER_BATCHES = (1, 16)
RESNET_TRAIN_BATCH = 8
RESNET_CIFAR_BATCH = 32


def _resnet18_inference_case(batch: int) -> Case:
    """Eval-mode forward pass of ResNet-18 at 224x224: the network people deploy, and the peers they use."""

    def pycnn_():
        model = rn.pycnn_resnet18()
        model.eval()
        x, _ = rn.random_batch(batch, 224)
        return lambda: model(x)

    def torch_():
        torch = torch_or_none()
        tmodel = rn.torch_copy(torch, rn.pycnn_resnet18()).eval()
        x = torch.from_numpy(rn.random_batch(batch, 224)[0])

        def fwd():
            with torch.no_grad():
                return tmodel(x)

        return fwd

    def onnxruntime_():
        torch = torch_or_none()
        tmodel = rn.torch_copy(torch, rn.pycnn_resnet18())
        from .. import get_num_threads

        run = rn.onnxruntime_session(torch, tmodel, (1, 3, 224, 224), get_num_threads())
        x, _ = rn.random_batch(batch, 224)
        return lambda: run(x)

    return Case(f"ResNet-18 inference 224x224, batch {batch}", "resnet", batch * rn.resnet18_flops(224),
                {"pycnn": pycnn_, "torch": torch_, "onnxruntime": onnxruntime_})


def _resnet18_train_case(batch: int, size: int, num_classes: int) -> Case:
    """One SGD step (forward, loss, backward, update) of ResNet-18 in training mode."""

    def pycnn_():
        from .. import nn, optim
        from ..train import Trainer

        model = rn.pycnn_resnet18(num_classes)
        model.train()
        trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
        x, y = rn.random_batch(batch, size, num_classes)
        return lambda: trainer.train_step(x, y)

    def torch_():
        torch = torch_or_none()
        tmodel = rn.torch_copy(torch, rn.pycnn_resnet18(num_classes), num_classes).train()
        opt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
        x, y = (torch.from_numpy(a) for a in rn.random_batch(batch, size, num_classes))

        def step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tmodel(x), y)
            loss.backward()
            opt.step()
            return loss

        return step

    return Case(f"ResNet-18 train step {size}x{size}, batch {batch}", "resnet",
                3 * batch * rn.resnet18_flops(size, num_classes), {"pycnn": pycnn_, "torch": torch_})


def cases() -> List[Case]:
    """Every benchmark case, in table order."""
    out = [_gemm_case(n, n, n) for n in GEMM_SIZES]
    out += [_gemm_case(*shape) for shape in GEMM_CONV_SHAPES]
    out += [_conv_case(s, backward=False) for s in CONV_SHAPES]
    out += [_conv_case(s, backward=True) for s in CONV_SHAPES]
    out += [_pool_case(False), _pool_case(True), _relu_case(False), _relu_case(True)]
    out += [_train_step_case(), _inference_case(INFER_IMAGES), _inference_case(1)]
    out += [_resnet18_inference_case(b) for b in RESNET_INFER_BATCHES]
    out += [_resnet18_train_case(RESNET_TRAIN_BATCH, 224, 1000), _resnet18_train_case(RESNET_CIFAR_BATCH, 32, 10)]
    return out
