#!/usr/bin/env python3
"""How much of a ResNet-18 eval forward is Python between pycnn's C++ calls.

    python benchmarks/python_overhead.py                 # batch 1, 2 threads, 224x224
    python benchmarks/python_overhead.py --rounds 301 --size 224 --batch 1

Three medians, in one process:

1. **outside**: the whole forward, minus the time spent inside every C++ call
   (each prepared convolution's ``forward`` and the max pool, average pool,
   linear, add and activation calls, timed from Python): the interpreter's
   work between kernels as it really runs.
2. **Python, warm**: the same forward with every C++ call replaced by its
   cached result, so only Python runs, on warm caches.
3. **Python, cold**: as 2, with a 4 MB buffer written before each convolution
   returns (what a layer's kernel does to the caches), its time not counted.

The timing wrappers are Python too (a few microseconds per call, counted in
2 and 3). On the development machine (docs/performance.md) 1 was 1.5-2.0 ms
of a 19-24 ms batch-1 inference, 2 was 0.25-0.5 ms and 3 was 0.8-1.4 ms: the
interpreter is cheap but runs cache-cold between kernels. Only running the
layer sequence from C++ removes that.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any, Callable, Dict, List

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import pycnn
import pycnn.nn.fused as fused
from pycnn import _core
from pycnn.bench import resnet as rn

_CALLS = ["max_pool2d_fwd_values", "linear_fwd", "adaptive_avg_pool2d_fwd", "add_fwd", "activation_fwd"]


class _Timed:
    """A prepared convolution whose forward is timed (and, with a cache, replayed)."""

    def __init__(self, prepared: Any, run: Callable[..., Any]) -> None:
        self.prepared, self.run = prepared, run

    def forward(self, *args: Any) -> Any:
        return self.run(self.prepared, args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=61)
    a = ap.parse_args()
    pycnn.set_num_threads(a.threads)
    model = rn.pycnn_resnet18().eval()
    x = np.random.default_rng(0).random((a.batch, 3, a.size, a.size), dtype=np.float32)
    model(x)

    inside = [0.0]
    cache: Dict[Any, Any] = {}
    mode = ["real"]  # "real", "warm" or "cold"
    thrash = np.zeros(1 << 20, np.float32)

    def call(key: Any, compute: Callable[[], Any], conv: bool) -> Any:
        if mode[0] == "real":
            t0 = time.perf_counter()
            r = compute()
            inside[0] += time.perf_counter() - t0
            return r
        r = cache.get(key)
        if r is None:
            r = cache[key] = compute()
        if conv and mode[0] == "cold":
            t0 = time.perf_counter()
            thrash[:] += 1.0
            inside[0] += time.perf_counter() - t0
        return r

    original_prepared = fused._prepared
    wrappers: Dict[int, _Timed] = {}

    def prepared(conv: Any, bn: Any) -> Any:
        p = original_prepared(conv, bn)
        w = wrappers.get(id(p))
        if w is None:
            w = wrappers[id(p)] = _Timed(p, lambda q, args: call((id(q), args[0].shape), lambda: q.forward(*args), True))
        return w

    originals = {name: getattr(_core, name) for name in _CALLS if hasattr(_core, name)}

    def timed_call(name: str) -> Callable[..., Any]:
        f = originals[name]
        return lambda *args, **kw: call((name, getattr(args[0], "shape", None)), lambda: f(*args, **kw), False)

    fused._prepared = prepared
    for name in originals:
        setattr(_core, name, timed_call(name))
    try:
        results: Dict[str, List[float]] = {}
        for m in ("real", "warm", "cold"):
            mode[0] = m
            for _ in range(3):
                model(x)
            times = []
            for _ in range(a.rounds):
                inside[0] = 0.0
                t0 = time.perf_counter()
                model(x)
                total = time.perf_counter() - t0
                times.append(total - inside[0] if m != "warm" else total)
                if m == "real":
                    results.setdefault("total", []).append(total)
            results[m] = times
    finally:
        fused._prepared = original_prepared
        for name, f in originals.items():
            setattr(_core, name, f)
    med = {k: statistics.median(v) * 1e3 for k, v in results.items()}
    print(f"ResNet-18 eval, batch {a.batch}, {a.size}x{a.size}, {a.threads} threads, medians of {a.rounds}")
    print(f"  whole forward                          {med['total']:8.3f} ms")
    print(f"  outside the C++ calls                  {med['real']:8.3f} ms")
    print(f"  Python alone, warm caches              {med['warm']:8.3f} ms")
    print(f"  Python alone, caches thrashed per conv {med['cold']:8.3f} ms")


if __name__ == "__main__":
    main()
