"""Side-by-side benchmark: pycnn vs the NumPy baseline vs PyTorch.

``python -m pycnn bench`` (or ``python benchmarks/compare.py``) times each
case for every implementation in one run and prints one table: median
milliseconds, GFLOP/s for GEMM and convolution, and how many times faster
pycnn is than NumPy (:mod:`pycnn.reference`, NumPy + its BLAS) and PyTorch
(when importable; its columns are left out otherwise).

Method: every implementation of a case is warmed up first (PyTorch's first
calls are several times slower than its steady state), then timed in
interleaved rounds -- one call of each implementation per round, the order
rotating -- so that the machine's drift and noise hit all of them alike. The
median over rounds is reported. Each timed call is preceded by a short pause
and, for calls under 20 ms, one untimed call: after a call, a library's idle
threads keep spinning on the cores for a while (libgomp about 10 ms,
OpenBLAS about 100 ms by default), which would slow whichever library runs
next, so the pause lets them stop and the untimed call wakes the timed
library's own threads. OpenBLAS's spin is also cut to almost nothing
(``OPENBLAS_THREAD_TIMEOUT``) when NumPy is imported after the options are
read; without both measures PyTorch, which most often ran right after the
NumPy baseline, measured up to 2x slower than it is. The NumPy baseline can be slow on large
cases, so its rounds are capped by a time budget (at least 3).

The cases are defined once here (:func:`cases`) and reused by the
pytest-benchmark suite in ``benchmarks/test_bench.py``.

NumPy is imported only after the options are read, so ``--threads N`` also
sets the NumPy BLAS thread count (through ``OPENBLAS_NUM_THREADS`` and
friends) when nothing imported NumPy before.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

__all__ = ["Case", "cases", "IMPLS", "torch_or_none", "measure", "main"]

#: Implementations, in table order.
IMPLS = ("pycnn", "numpy", "torch")

_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def torch_or_none():
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
    builders: Dict[str, Callable[[], Callable[[], object]]] = field(default_factory=dict)
    #: Largest number of NumPy-baseline rounds worth spending on this case.
    numpy_budget_s: float = 2.0


# ---------------------------------------------------------------------------
# Case definitions
# ---------------------------------------------------------------------------

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


def _rng(seed=0):
    import numpy as np

    return np.random.default_rng(seed)


def _randn(*shape, seed=0):
    import numpy as np

    return _rng(seed).standard_normal(shape, dtype=np.float32)


def _conv_out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def _conv_name(N, C, H, W, K, k, s, p):
    extra = f" s{s}" if s != 1 else ""
    return f"conv{k}x{k}{extra} {N}x{C}x{H}x{W}->{K}"


def _gemm_case(m: int, n: int, k: int, note: str = "") -> Case:
    """C (m x n) = A (m x k) B (k x n), all row-major."""

    def operands():
        return _randn(m, k, seed=1), _randn(k, n, seed=2)

    def pycnn_():
        from . import _core

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


def _conv_case(shape, backward: bool) -> Case:
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
        from . import nn

        from ._random import manual_seed

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
        from . import reference as ref

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
        from . import nn

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
        from . import reference as ref

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
        from . import nn

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
        from . import reference as ref

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


# --- the Fashion-MNIST CNN ---------------------------------------------------

TRAIN_BATCH = 128
INFER_IMAGES = 1000


def _cnn_flops(n: int) -> float:
    """Multiply-adds x 2 of the CNN's forward pass on n images."""
    conv1 = 2.0 * 32 * 28 * 28 * 1 * 9
    conv2 = 2.0 * 64 * 14 * 14 * 32 * 9
    fc = 2.0 * (3136 * 128 + 128 * 10)
    return n * (conv1 + conv2 + fc)


def _images(n: int, seed=5):
    import numpy as np

    x = _rng(seed).random((n, 1, 28, 28), dtype=np.float32)
    y = _rng(seed + 1).integers(0, 10, size=n).astype(np.int64)
    return x, y


class _NumpyCNN:
    """The Fashion-MNIST CNN written with :mod:`pycnn.reference` (the NumPy baseline)."""

    def __init__(self):
        import numpy as np

        def init(fan_in, *shape):  # PyTorch's default (Kaiming-uniform with a=sqrt(5)) bound
            bound = 1.0 / np.sqrt(fan_in)
            return _rng(len(shape)).uniform(-bound, bound, shape).astype(np.float32)

        self.p = {
            "w1": init(9, 32, 1, 3, 3), "b1": init(9, 32),
            "w2": init(288, 64, 32, 3, 3), "b2": init(288, 64),
            "w3": init(3136, 128, 3136), "b3": init(3136, 128),
            "w4": init(128, 10, 128), "b4": init(128, 10),
        }
        self.buf = {k: None for k in self.p}

    def forward(self, x):
        from . import reference as ref

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

    def train_step(self, x, y, lr=0.05, momentum=0.9):
        from . import reference as ref

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


def _torch_cnn(torch):
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def _train_step_case() -> Case:
    def pycnn_():
        from . import nn, optim
        from ._random import manual_seed
        from .models import fashion_mnist_cnn
        from .train import Trainer

        manual_seed(0)
        model = fashion_mnist_cnn()
        model.train()
        trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
        x, y = _images(TRAIN_BATCH)
        return lambda: trainer.train_step(x, y)

    def numpy_():
        model = _NumpyCNN()
        x, y = _images(TRAIN_BATCH)
        return lambda: model.train_step(x, y)

    def torch_():
        torch = torch_or_none()
        model = _torch_cnn(torch)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x, y = (torch.from_numpy(a) for a in _images(TRAIN_BATCH))

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
        f"Fashion-MNIST CNN train step, batch {TRAIN_BATCH}", "train-step", 3 * _cnn_flops(TRAIN_BATCH),
        {"pycnn": pycnn_, "numpy": numpy_, "torch": torch_}, numpy_budget_s=4.0,
    )


def _inference_case(images: int) -> Case:
    """Forward pass of the Fashion-MNIST CNN; images=1 measures latency (per-call overhead, small-batch threading)."""

    def pycnn_():
        from ._random import manual_seed
        from .models import fashion_mnist_cnn

        manual_seed(0)
        model = fashion_mnist_cnn()
        model.eval()
        x, _ = _images(images)
        return lambda: model(x)

    def numpy_():
        model = _NumpyCNN()
        x, _ = _images(images)
        return lambda: model.forward(x)[0]

    def torch_():
        torch = torch_or_none()
        model = _torch_cnn(torch).eval()
        x = torch.from_numpy(_images(images)[0])

        def fwd():
            with torch.no_grad():
                return model(x)

        return fwd

    return Case(
        f"Fashion-MNIST CNN inference, {images} image{'s' if images > 1 else ''}", "inference", _cnn_flops(images),
        {"pycnn": pycnn_, "numpy": numpy_, "torch": torch_}, numpy_budget_s=4.0,
    )


def cases() -> List[Case]:
    """Every benchmark case, in table order."""
    out = [_gemm_case(n, n, n) for n in GEMM_SIZES]
    out += [_gemm_case(*shape) for shape in GEMM_CONV_SHAPES]
    out += [_conv_case(s, backward=False) for s in CONV_SHAPES]
    out += [_conv_case(s, backward=True) for s in CONV_SHAPES]
    out += [_pool_case(False), _pool_case(True), _relu_case(False), _relu_case(True)]
    out += [_train_step_case(), _inference_case(INFER_IMAGES), _inference_case(1)]
    return out


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------


#: Calls shorter than this get an untimed call right before the timed one (see measure).
_WAKE_CALL_BELOW_S = 0.02


def _time_once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(
    fns: Dict[str, Callable[[], object]],
    rounds: int,
    warmup_s: float = 0.3,
    min_warmup: int = 2,
    budgets_s: Optional[Dict[str, float]] = None,
    settle_s: float = 0.015,
) -> Dict[str, List[float]]:
    """Time each callable in interleaved rounds; return {impl: [seconds per round]}.

    Each callable is first warmed up for ``min_warmup`` calls and at least
    ``warmup_s`` seconds (at most 20 calls). ``budgets_s[impl]`` caps the
    rounds of a slow implementation to about that many seconds (at least 3
    rounds, or ``rounds`` if fewer). Before each timed call the thread
    sleeps ``settle_s`` (so other libraries' idle threads stop spinning) and,
    when the call takes under ``_WAKE_CALL_BELOW_S``, makes one untimed call
    (so this library's own threads are awake, as in a steady loop).
    """
    budgets_s = budgets_s or {}
    limit, warm = {}, {}
    for name, fn in fns.items():
        start = time.perf_counter()
        calls, last = 0, 0.0
        while calls < min_warmup or (time.perf_counter() - start < warmup_s and calls < 20):
            last = _time_once(fn)
            calls += 1
            if name in budgets_s and last * min_warmup > budgets_s[name]:
                break  # a very slow baseline: its warm-up already cost enough
        warm[name] = last < _WAKE_CALL_BELOW_S
        limit[name] = rounds
        if name in budgets_s and last > 0:
            limit[name] = max(min(3, rounds), min(rounds, int(budgets_s[name] / last)))
    times: Dict[str, List[float]] = {name: [] for name in fns}
    names = list(fns)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            # Rotate the order so no implementation always runs first (or right after another).
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                if len(times[name]) < limit[name]:
                    if settle_s > 0:
                        time.sleep(settle_s)
                    if warm[name]:
                        fns[name]()
                    times[name].append(_time_once(fns[name]))
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def _fmt_ms(t: Optional[float]) -> str:
    return "-" if t is None else (f"{t * 1e3:.3f}" if t < 0.01 else f"{t * 1e3:.2f}" if t < 1 else f"{t * 1e3:.0f}")


def _fmt_gflops(flops: float, t: Optional[float]) -> str:
    return "" if (t is None or not flops) else f"{flops / t / 1e9:.1f}"


def _fmt_ratio(a: Optional[float], b: Optional[float]) -> str:
    return "-" if (a is None or b is None) else f"{a / b:.2f}x"


def _table(rows: List[List[str]], header: List[str]) -> str:
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    def fmt(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def _parse(argv, prog):
    p = argparse.ArgumentParser(
        prog=prog,
        description="Time pycnn against the NumPy baseline (pycnn.reference) and PyTorch (if installed), "
        "in one run, and print one table.",
        epilog="Times are medians over interleaved rounds after warm-up. 'vs numpy' and 'vs torch' are "
        "how many times faster pycnn is (above 1x: pycnn is faster).",
    )
    p.add_argument("--quick", action="store_true", help="fewer rounds (about a minute in all)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per case (default: 15, --quick: 5)")
    p.add_argument("--threads", type=int, default=None, help="threads for pycnn, PyTorch and (if possible) NumPy's BLAS")
    p.add_argument("--only", default=None, metavar="TEXT", help="run only cases whose name or group contains TEXT")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if it is installed")
    p.add_argument("--no-numpy", action="store_true", help="leave the NumPy baseline out")
    p.add_argument("--memory", action="store_true",
                   help="also measure the peak memory (RSS) of one training epoch of the Fashion-MNIST CNN, "
                   "pycnn vs PyTorch, each in a fresh process (about a minute)")
    args = p.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    if args.rounds is not None and args.rounds < 1:
        p.error(f"--rounds must be >= 1, got {args.rounds}")
    return args


def main(argv=None, prog: str = "python -m pycnn bench") -> int:
    args = _parse(sys.argv[1:] if argv is None else argv, prog)
    numpy_threads_note = "BLAS default threads"
    if args.threads is not None:
        if "numpy" in sys.modules:
            numpy_threads_note = "BLAS threads unchanged: NumPy was imported before --threads was read"
        else:
            for var in _BLAS_THREAD_VARS:
                os.environ[var] = str(args.threads)
            numpy_threads_note = f"{args.threads} BLAS threads"
    if "numpy" not in sys.modules:
        # 2**4 cycles: OpenBLAS's idle threads sleep at once instead of spinning ~100 ms (see module doc).
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

    import numpy as np

    import pycnn

    if args.threads is not None:
        pycnn.set_num_threads(args.threads)
    torch = None if args.no_torch else torch_or_none()
    if torch is not None and args.threads is not None:
        torch.set_num_threads(args.threads)
    rounds = args.rounds or (5 if args.quick else 15)
    warmup_s = 0.1 if args.quick else 0.3

    impls = ["pycnn"] + ([] if args.no_numpy else ["numpy"]) + (["torch"] if torch is not None else [])
    print(f"pycnn {pycnn.__version__}: {pycnn.get_num_threads()} threads")
    print(f"NumPy {np.__version__}: {numpy_threads_note}")
    if torch is not None:
        print(f"PyTorch {torch.__version__}: {torch.get_num_threads()} threads")
    else:
        print("PyTorch: " + ("left out (--no-torch)" if args.no_torch else "not installed; its columns are left out"))
    print(f"{rounds} interleaved rounds per case after warm-up; the NumPy baseline is capped by a time budget\n", flush=True)

    header = ["case", "pycnn ms", "GFLOP/s"]
    if "numpy" in impls:
        header += ["numpy ms", "GFLOP/s"]
    if "torch" in impls:
        header += ["torch ms", "GFLOP/s"]
    if "numpy" in impls:
        header.append("vs numpy")
    if "torch" in impls:
        header.append("vs torch")

    selected = [c for c in cases() if not args.only or args.only in c.name or args.only in c.group]
    if not selected:
        print(f"no case matches --only {args.only!r}", file=sys.stderr)
        return 2
    rows = []
    for case in selected:
        fns = {}
        errors = {}
        for impl in impls:
            try:
                fns[impl] = case.builders[impl]()
            except Exception as exc:  # a case one library cannot run must not sink the table
                errors[impl] = f"{type(exc).__name__}: {exc}"
        times = measure(fns, rounds, warmup_s=warmup_s, budgets_s={"numpy": case.numpy_budget_s * (0.5 if args.quick else 1)})
        med = {impl: statistics.median(t) for impl, t in times.items() if t}
        row = [case.name, _fmt_ms(med.get("pycnn")), _fmt_gflops(case.flops, med.get("pycnn"))]
        if "numpy" in impls:
            row += [_fmt_ms(med.get("numpy")), _fmt_gflops(case.flops, med.get("numpy"))]
        if "torch" in impls:
            row += [_fmt_ms(med.get("torch")), _fmt_gflops(case.flops, med.get("torch"))]
        if "numpy" in impls:
            row.append(_fmt_ratio(med.get("numpy"), med.get("pycnn")))
        if "torch" in impls:
            row.append(_fmt_ratio(med.get("torch"), med.get("pycnn")))
        rows.append(row)
        for impl, err in errors.items():
            print(f"  {case.name}: {impl} failed: {err}", file=sys.stderr)
        # Progress on stderr so stdout holds just the table.
        print(f"  measured {case.name}", file=sys.stderr, flush=True)
        del fns
    print(_table(rows, header))
    if args.memory:
        print()
        print(memory_table(args.threads, include_torch=torch is not None))
    return 0


# One training epoch (batch 128, SGD momentum 0.9) of the Fashion-MNIST CNN on
# 60,000 images -- the real ones when pycnn finds them, else random ones of the
# same shape -- in a fresh interpreter. After the data is loaded the kernel's
# peak-RSS counter is reset (/proc/self/clear_refs), so the printed peak (KiB)
# is that of training alone, with the data set resident; "data" stops there.
_EPOCH_SCRIPT = r"""
import gc, sys
import numpy as np
which, threads = sys.argv[1], int(sys.argv[2])
from pycnn import data
try:
    (x, y), _ = data.load_fashion_mnist(download=False)
except data.DatasetNotFoundError:
    rng = np.random.default_rng(0)
    x = rng.random((60000, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 60000)
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current RSS
if which == "pycnn":
    import pycnn
    from pycnn import models, nn, optim
    pycnn.set_num_threads(threads)
    model = models.fashion_mnist_cnn()
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for i in range(0, len(x), 128):
        loss_fn(model(x[i:i + 128]), y[i:i + 128])
        opt.zero_grad()
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
elif which == "torch":
    import torch
    torch.set_num_threads(threads)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(np.asarray(y, dtype=np.int64))
    for i in range(0, len(x), 128):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt[i:i + 128]), yt[i:i + 128]).backward()
        opt.step()
status = open("/proc/self/status").read()
print(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM:")))
"""


def peak_rss_mib(which: str, threads: Optional[int] = None) -> float:
    """Peak RSS (MiB) of one training epoch in a fresh process (Linux); which is 'pycnn', 'torch' or 'data'."""
    import subprocess

    threads = threads or os.cpu_count() or 1
    out = subprocess.run([sys.executable, "-c", _EPOCH_SCRIPT, which, str(threads)], check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[-1]) / 1024.0


def memory_table(threads: Optional[int] = None, include_torch: bool = True) -> str:
    """The peak-RSS comparison as a small table."""
    runs = ["data", "pycnn"] + (["torch"] if include_torch else [])
    rss = {w: peak_rss_mib(w, threads) for w in runs}
    rows = [["data only (60,000 images resident)", f"{rss['data']:.0f}", "-"]]
    for w in runs[1:]:
        rows.append([f"{w}: one training epoch", f"{rss[w]:.0f}", f"{rss[w] - rss['data']:.0f}"])
    return _table(rows, ["peak RSS", "MiB", "over data"])


if __name__ == "__main__":
    sys.exit(main())
