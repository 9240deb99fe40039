"""pytest-benchmark suite: pycnn, the NumPy baseline and PyTorch, case by case.

Run (not part of the test run: pytest's testpaths is tests/):

    python -m pytest benchmarks --benchmark-only
    python -m pytest benchmarks --benchmark-only -k "conv and pycnn"
    python -m pytest benchmarks --benchmark-only --benchmark-group-by=group \
        --benchmark-save=mine          # then --benchmark-compare to diff runs

Groups: gemm, conv-fwd, conv-bwd, pool, activation, train-step, inference,
resnet. Each case runs once per implementation it has ("pycnn", "numpy",
"torch", and "onnxruntime" for ResNet-18 inference), so pytest-benchmark's
table for a group ranks them side by side. The PyTorch and ONNX Runtime
cases skip when those are not installed. The cases themselves are
defined once in ``pycnn/bench/suite.py`` (``python -m pycnn bench`` prints the same
comparison as a single table, with GFLOP/s and ratios).

Thread counts: pycnn and PyTorch follow OMP_NUM_THREADS, NumPy's BLAS
OPENBLAS_NUM_THREADS; set them in the environment to compare at equal threads.
"""
from typing import Any, Iterator

import pytest

from pycnn import bench
from pycnn.bench.resnet import onnxruntime_or_none

CASES = bench.cases()
TORCH = bench.torch_or_none()
ORT = onnxruntime_or_none() if TORCH is not None else None

#: The NumPy baseline can take seconds per call on large cases; a few rounds suffice.
NUMPY_ROUNDS = 3
WARMUP_CALLS = 3  # PyTorch's first calls are several times slower than its steady state


def _params() -> Iterator[Any]:
    for case in CASES:
        for impl in bench.IMPLS:
            if impl not in case.builders:
                continue
            marks = [pytest.mark.benchmark(group=case.group)]
            if impl == "torch" and TORCH is None:
                marks.append(pytest.mark.skip(reason="PyTorch is not installed (optional peer)"))
            if impl == "onnxruntime" and ORT is None:
                marks.append(pytest.mark.skip(reason="ONNX Runtime (and PyTorch, to export) not installed"))
            yield pytest.param(case, impl, id=f"{case.name.replace(' ', '_')}-{impl}", marks=marks)


@pytest.mark.parametrize("case, impl", list(_params()))
def test_bench(benchmark: Any, case: bench.Case, impl: str) -> None:
    fn = case.builders[impl]()
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["flops"] = case.flops
    if impl == "numpy":
        benchmark.pedantic(fn, rounds=NUMPY_ROUNDS, iterations=1, warmup_rounds=1)
    else:
        for _ in range(WARMUP_CALLS):
            fn()
        benchmark(fn)
    if case.flops and benchmark.stats is not None:  # None under --benchmark-disable (a smoke run)
        benchmark.extra_info["gflops"] = case.flops / benchmark.stats.stats.median / 1e9
