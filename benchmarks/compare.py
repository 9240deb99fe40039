#!/usr/bin/env python3
"""pycnn vs the NumPy baseline vs PyTorch, side by side, in one table.

    python benchmarks/compare.py            # full run (a few minutes)
    python benchmarks/compare.py --quick    # about a minute
    python benchmarks/compare.py --threads 1 --only conv

The same as ``python -m pycnn bench``; the cases and the method are in
``pycnn/bench/`` (so the installed package can run them too). Prints median
milliseconds, GFLOP/s for GEMM and convolution, and how many times faster
pycnn is than each peer. PyTorch's columns appear only when it is importable.
"""
import sys

# Nothing here imports NumPy before pycnn.bench has read --threads, so that the
# option can still set NumPy's BLAS thread count.
from pycnn.bench import main

if __name__ == "__main__":
    sys.exit(main(prog="python benchmarks/compare.py"))
