#!/usr/bin/env python3
"""Float32 error of Winograd F(4x4, 3x3) and of im2col against a float64 reference, per channel count.

    python benchmarks/winograd_error.py            # the table of docs/performance.md
    python benchmarks/winograd_error.py --seeds 5

For each 3x3 stride-1 layer (padding 1, unit-variance input and He-scaled
weights, as in a trained network's forward pass) it prints the largest
absolute error of forward, backward-data and backward-weight divided by the result's RMS
(a relative error), for im2col and Winograd, and their ratio. The reference
is ``pycnn.reference`` in float64 on the same float32 data.
"""
from __future__ import annotations

import argparse

import numpy as np

from pycnn import functional as F
from pycnn import reference as ref

LAYERS = [  # N, C, K, H (= W)
    (4, 16, 32, 16),
    (4, 64, 64, 16),
    (2, 128, 128, 14),
    (2, 256, 256, 8),
    (1, 512, 512, 7),
]


def _rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(expected ** 2)))
    return float(np.abs(actual.astype(np.float64) - expected).max()) / rms


def measure(seeds: int) -> None:
    print("| layer (N, C, K, HxW) | pass | im2col max err / RMS | Winograd max err / RMS | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for N, C, K, H in LAYERS:
        rows: dict = {"forward": ([], []), "backward-data": ([], []), "backward-weight": ([], [])}
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            x = rng.standard_normal((N, C, H, H)).astype(np.float32)
            w = (rng.standard_normal((K, C, 3, 3)) * np.sqrt(2.0 / (9 * C))).astype(np.float32)
            dy = rng.standard_normal((N, K, H, H)).astype(np.float32)
            y_ref = ref.conv2d(x.astype(np.float64), w.astype(np.float64), None, padding=1)
            dx_ref, dw_ref, _ = ref.conv2d_backward(dy.astype(np.float64), x.astype(np.float64),
                                                    w.astype(np.float64), padding=1)
            for i, algo in enumerate(("im2col", "winograd")):
                y = F.conv2d(x, w, None, padding=1, algo=algo)
                dx, dw, _ = F.conv2d_backward(dy, x, w, padding=1, algo=algo, bias=False)
                rows["forward"][i].append(_rel_err(y, y_ref))
                rows["backward-data"][i].append(_rel_err(dx, dx_ref))
                rows["backward-weight"][i].append(_rel_err(dw, dw_ref))
        for name, (im2col, wino) in rows.items():
            a, b = max(im2col), max(wino)
            print(f"| {N}, {C}, {K}, {H}x{H} | {name} | {a:.1e} | {b:.1e} | {b / a:.1f}x |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="random inputs per layer; the table shows the worst")
    measure(p.parse_args().seeds)


if __name__ == "__main__":
    main()
