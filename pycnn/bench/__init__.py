"""Side-by-side benchmark: pycnn vs the NumPy baseline vs PyTorch.

``python -m pycnn bench`` (or ``python benchmarks/compare.py``) times each
case for every implementation in one run and prints one table: median
milliseconds, GFLOP/s for GEMM and convolution, and how many times faster
pycnn is than NumPy (:mod:`pycnn.reference`, NumPy + its BLAS) and PyTorch
(when importable; its columns are left out otherwise).

* :mod:`~pycnn.bench.suite`: the cases, defined once (:func:`cases`) and
  reused by the pytest-benchmark suite in ``benchmarks/test_bench.py``;
  :mod:`~pycnn.bench.cnn`: the Fashion-MNIST CNN as NumPy and PyTorch write it;
* :mod:`~pycnn.bench.timing`: :func:`measure` and the method (warm-up,
  interleaved rounds, pauses against other libraries' spinning threads);
* :mod:`~pycnn.bench.cli`: the options and :func:`main`;
  :mod:`~pycnn.bench.report` formats the table;
* :mod:`~pycnn.bench.memory`: ``--memory``, the peak RSS of one training
  epoch, measured by :mod:`~pycnn.bench.rss_probe` in a fresh process.

The names below are imported on first use: the probe runs as ``python -m
pycnn.bench.rss_probe``, which imports this package first, and the memory it
measures should not include the option parser and the case table. Nothing
here imports NumPy either: :func:`main` does, after reading ``--threads``.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what __getattr__ below imports lazily, for type checkers and IDEs
    from .cli import main
    from .memory import memory_table, peak_rss_mib
    from .suite import IMPLS, Case, cases, torch_or_none
    from .timing import measure

__all__ = ["Case", "cases", "IMPLS", "torch_or_none", "measure", "main"]

# Each name importable from pycnn.bench, and the module that defines it.
_EXPORTS = {
    "main": "cli",
    "memory_table": "memory",
    "peak_rss_mib": "memory",
    "Case": "suite",
    "cases": "suite",
    "IMPLS": "suite",
    "torch_or_none": "suite",
    "measure": "timing",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
