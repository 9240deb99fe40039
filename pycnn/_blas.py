"""NumPy's BLAS threads against pycnn's: limit them while pycnn trains, or warn once.

pycnn never calls BLAS, but after any NumPy matrix product (a user's
transform, a callback, a metric) OpenBLAS's idle threads keep spinning on the
cores for about 100 ms, and pycnn's OpenMP threads then share the cores with
them: training ran up to 2x slower with no sign of why (docs/performance.md).

:func:`blas_limited` is what :func:`pycnn.train.fit` wraps its loop in:

* with ``threadpoolctl`` installed (scikit-learn brings it), NumPy's BLAS is
  limited to one thread for the duration of the loop and restored after;
* without it, when NumPy's BLAS is OpenBLAS, neither ``OPENBLAS_NUM_THREADS``
  nor ``OPENBLAS_THREAD_TIMEOUT`` is set and pycnn runs more than one thread,
  a ``RuntimeWarning`` once per process says what to set.

``python -m pycnn train`` sets ``OPENBLAS_NUM_THREADS=1`` itself before NumPy
loads, and a single-threaded pycnn has nothing to compete for, so neither
needs this.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from typing import Iterator

_warned = False


def _numpy_blas_name() -> str:
    try:
        import numpy as np

        return str(np.__config__.CONFIG["Build Dependencies"]["blas"]["name"]).lower()
    except Exception:  # NumPy < 1.26 has no CONFIG; a missing entry means unknown
        return ""


@contextlib.contextmanager
def blas_limited(pycnn_threads: int) -> Iterator[None]:
    """Run the body with NumPy's BLAS on one thread (threadpoolctl), else warn once if it may spin."""
    global _warned
    if pycnn_threads <= 1:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if not _warned and "openblas" in _numpy_blas_name() \
                and not any(v in os.environ for v in ("OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT")):
            _warned = True
            warnings.warn(
                "NumPy's OpenBLAS threads, if anything calls a NumPy matrix product during training, keep "
                "spinning on the cores pycnn's threads use and can slow training up to 2x: set "
                "OPENBLAS_NUM_THREADS=1 before NumPy is imported, or install threadpoolctl (pycnn then limits "
                "BLAS to one thread while fit runs). Shown once", RuntimeWarning, stacklevel=4)
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
