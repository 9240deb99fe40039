#!/usr/bin/env python3
"""Each forward algorithm on ResNet-18's convolution shapes (and the Fashion-MNIST CNN's), prepared weights.

    python benchmarks/conv_algos.py                          # batch 1, 2 threads
    python benchmarks/conv_algos.py --batch 16 --threads 2 --reps 11
    python benchmarks/conv_algos.py --isa avx2 --algos im2col,direct --only k7s2

Every algorithm a shape can run (im2col, direct, winograd) runs interleaved
with the others in one process (im2col, direct, winograd, im2col, ...), so a
slow phase of a shared machine hits them alike; the table shows medians in
ms and GFLOP/s, the algorithm ``auto`` picks and the fastest one. This is
what the forward rule in ops/conv.cpp (conv2d_resolve_fwd_algo) was measured
with (docs/performance.md).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import pycnn
from pycnn import _core

# (C, H = W, K, kernel, stride, padding)
LAYERS = [(3, 224, 64, 7, 2, 3), (64, 56, 64, 3, 1, 1), (64, 56, 128, 3, 2, 1), (64, 56, 128, 1, 2, 0),
          (128, 28, 128, 3, 1, 1), (128, 28, 256, 3, 2, 1), (128, 28, 256, 1, 2, 0), (256, 14, 256, 3, 1, 1),
          (256, 14, 512, 3, 2, 1), (256, 14, 512, 1, 2, 0), (512, 7, 512, 3, 1, 1),
          (1, 28, 32, 3, 1, 1), (32, 14, 64, 3, 1, 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=31)
    ap.add_argument("--algos", default="im2col,direct,winograd")
    ap.add_argument("--isa", default=None, help="force an instruction set (scalar, avx2, avx512)")
    ap.add_argument("--only", default=None, help="run only layers whose name contains this text")
    a = ap.parse_args()
    if a.isa:
        _core.set_isa(a.isa)
    pycnn.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    print(f"ISA {_core.isa()}, {a.threads} threads, batch {a.batch}, {a.reps} interleaved rounds")
    for C, H, K, k, st, pd in LAYERS:
        name = f"{C}x{H}x{H}->{K} k{k}s{st}"
        if a.only and a.only not in name.replace(" ", ""):
            continue
        w = (rng.standard_normal((K, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
        b = rng.standard_normal(K).astype(np.float32)
        x = rng.standard_normal((a.batch, C, H, H)).astype(np.float32)
        args = ((st, st), (pd,) * 4, (1, 1), 1)
        shape = list(x.shape)
        prepared = {al: _core.PreparedConv2d(w, b, *args, al) for al in a.algos.split(",")}
        prepared = {al: p for al, p in prepared.items() if p.resolve_algo(shape) == al}  # what can run it
        auto = _core.PreparedConv2d(w, b, *args, "auto").resolve_algo(shape)
        for p in prepared.values():
            for _ in range(3):
                p.forward(x, None, True)
        times = {al: [] for al in prepared}
        for _ in range(a.reps):
            for al, p in prepared.items():
                t0 = time.perf_counter()
                p.forward(x, None, True)
                times[al].append(time.perf_counter() - t0)
        ho = (H + 2 * pd - k) // st + 1
        flops = 2.0 * K * C * k * k * ho * ho * a.batch
        med = {al: statistics.median(v) * 1e3 for al, v in times.items()}
        cells = "  ".join(f"{al} {m:8.3f} ms {flops / m / 1e6:6.1f} GF/s" for al, m in med.items())
        print(f"{name:24s} auto={auto:9s} {cells}  fastest={min(med, key=med.get)}")


if __name__ == "__main__":
    main()
