#!/usr/bin/env python3
"""Winograd vs im2col (vs PyTorch) on ResNet-like 3x3 layers, forward and backward-data.

    python benchmarks/winograd_layers.py                 # 1 and 2 threads, all layers
    python benchmarks/winograd_layers.py --threads 1 --reps 15 --only 1x64x56

Every layer is padded by 1. The candidates of one layer run interleaved in
one process (im2col, winograd, torch, im2col, ...), so a slow phase of a
shared machine hits them alike; the table shows medians in milliseconds and
im2col's median divided by each other one. PyTorch's column needs torch
(torch.set_num_threads is set to pycnn's thread count); its backward-data is
``torch.nn.grad.conv2d_input``. On a shared machine the 2-thread rows are
only meaningful while the second core is idle: check that e.g. a large
pycnn.sgemm runs ~2x faster at 2 threads just before.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

# NumPy's BLAS threads spin after each call (5-8% of a profile here) and
# would steal the second core from the kernels being timed.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import pycnn
from pycnn import functional as F

LAYERS = [  # (N, C, H, W, K), passes
    ((32, 64, 32, 32, 64), ("fwd", "bwd_data")),
    ((32, 128, 16, 16, 128), ("fwd", "bwd_data")),
    ((32, 256, 8, 8, 256), ("fwd", "bwd_data")),
    ((1, 64, 56, 56, 64), ("fwd",)),
    ((1, 128, 28, 28, 128), ("fwd",)),
    ((1, 256, 14, 14, 256), ("fwd",)),
    ((1, 512, 7, 7, 512), ("fwd",)),
]


def _runners(shape, pas, torch):
    N, C, H, W, K = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = (rng.standard_normal((K, C, 3, 3)) / np.sqrt(9 * C)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    dy = rng.standard_normal((N, K, H, W)).astype(np.float32)
    run = {}
    for algo in ("im2col", "winograd"):
        if pas == "fwd":
            run[algo] = lambda a=algo: F.conv2d(x, w, b, padding=1, algo=a)
        else:
            run[algo] = lambda a=algo: F.conv2d_backward(dy, x, w, padding=1, algo=a, weight_grad=False)
    if torch is not None:
        xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
        if pas == "fwd":
            run["torch"] = lambda: torch.nn.functional.conv2d(xt, wt, bt, padding=1)
        else:
            run["torch"] = lambda: torch.nn.grad.conv2d_input(xt.shape, wt, dyt, padding=1)
    return run


def measure(shape, pas, threads, reps, torch):
    pycnn.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    run = _runners(shape, pas, torch)
    for f in run.values():  # warm-up: caches, scratch, thread pools
        f()
    times = {name: [] for name in run}
    for _ in range(reps):
        for name, f in run.items():
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--only", default="", help="substring of the layer name, e.g. 1x64x56")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            pass
    cols = ["im2col", "winograd"] + (["torch"] if torch is not None else [])
    print(f"{'layer':<22}{'pass':<10}{'thr':>4}" + "".join(f"{c + ' ms':>13}" for c in cols)
          + "".join(f"{'im2col/' + c:>16}" for c in cols[1:]))
    for shape, passes in LAYERS:
        name = "x".join(map(str, shape[:4])) + f"->{shape[4]}"
        if args.only not in name:
            continue
        for pas in passes:
            for nt in args.threads:
                t = measure(shape, pas, nt, args.reps, torch)
                print(f"{name:<22}{pas:<10}{nt:>4}" + "".join(f"{t[c]:>13.2f}" for c in cols)
                      + "".join(f"{t['im2col'] / t[c]:>16.2f}" for c in cols[1:]), flush=True)


if __name__ == "__main__":
    main()
