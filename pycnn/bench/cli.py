"""``python -m pycnn bench``: options, the run over the cases, the table.

NumPy is imported only after the options are read, so ``--threads N`` also
sets the NumPy BLAS thread count (through ``OPENBLAS_NUM_THREADS`` and
friends) when nothing imported NumPy before; so is ``OPENBLAS_THREAD_TIMEOUT``
(see :mod:`pycnn.bench.timing`).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Optional, Sequence

from .memory import memory_table
from .report import format_gflops, format_ms, format_ratio, format_table
from .resnet import onnxruntime_or_none
from .suite import cases, torch_or_none
from .timing import OtherLoad, measure, spread

#: A case is flagged when other processes used more than this many cores while it ran,
#: or when a median's spread (half the interquartile range) exceeds BUSY_SPREAD.
BUSY_CORES = 0.1
BUSY_SPREAD = 0.25

_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def _parse(argv: Sequence[str], prog: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Time pycnn against the NumPy baseline (pycnn.reference) and PyTorch (if installed), "
        "in one run, and print one table.",
        epilog="Times are medians over interleaved rounds after warm-up, each with its spread (half the "
        "interquartile range, in percent). 'vs numpy' and 'vs torch' are how many times faster pycnn is "
        "(above 1x: pycnn is faster). 'busy' is how many cores other processes used while the case ran; "
        "'!' marks a case measured on a busy machine.",
    )
    p.add_argument("--quick", action="store_true", help="fewer rounds (about a minute in all)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per case (default: 15, --quick: 5)")
    p.add_argument("--threads", type=int, default=None, help="threads for pycnn, PyTorch and (if possible) NumPy's BLAS")
    p.add_argument("--only", default=None, metavar="TEXT", help="run only cases whose name or group contains TEXT")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if it is installed")
    p.add_argument("--no-numpy", action="store_true", help="leave the NumPy baseline out")
    p.add_argument("--no-onnxruntime", action="store_true",
                   help="leave ONNX Runtime out of the ResNet-18 cases even if it (and PyTorch, which exports "
                   "the model) are installed")
    p.add_argument("--memory", action="store_true",
                   help="also measure the peak memory (RSS) of one training epoch of the Fashion-MNIST CNN, "
                   "pycnn vs PyTorch, each in a fresh process (about a minute)")
    args = p.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    if args.rounds is not None and args.rounds < 1:
        p.error(f"--rounds must be >= 1, got {args.rounds}")
    return args


def main(argv: Optional[Sequence[str]] = None, prog: str = "python -m pycnn bench") -> int:
    """Run the benchmark with the command-line options ``argv`` (default: ``sys.argv[1:]``); the exit status."""
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
        # 2**4 cycles: OpenBLAS's idle threads sleep at once instead of spinning ~100 ms (see pycnn.bench.timing).
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

    ort = None if (args.no_onnxruntime or torch is None) else onnxruntime_or_none()
    impls = ["pycnn"] + ([] if args.no_numpy else ["numpy"]) + (["torch"] if torch is not None else [])
    impls += ["onnxruntime"] if ort is not None else []
    print(f"pycnn {pycnn.__version__}: {pycnn.get_num_threads()} threads")
    print(f"NumPy {np.__version__}: {numpy_threads_note}")
    if torch is not None:
        print(f"PyTorch {torch.__version__}: {torch.get_num_threads()} threads")
    else:
        print("PyTorch: " + ("left out (--no-torch)" if args.no_torch else "not installed; its columns are left out"))
    if ort is not None:
        print(f"ONNX Runtime {ort.__version__}: {pycnn.get_num_threads()} threads, no spinning (ResNet-18 inference)")
    print(f"{rounds} interleaved rounds per case after warm-up; the NumPy baseline is capped by a time budget\n", flush=True)

    header = ["case", "pycnn ms", "GFLOP/s"]
    if "numpy" in impls:
        header += ["numpy ms", "GFLOP/s"]
    if "torch" in impls:
        header += ["torch ms", "GFLOP/s"]
    if "onnxruntime" in impls:
        header += ["ort ms", "GFLOP/s"]
    if "numpy" in impls:
        header.append("vs numpy")
    if "torch" in impls:
        header.append("vs torch")
    if "onnxruntime" in impls:
        header.append("vs ort")
    header.append("busy")

    selected = [c for c in cases() if not args.only or args.only in c.name or args.only in c.group]
    if not selected:
        print(f"no case matches --only {args.only!r}", file=sys.stderr)
        return 2
    rows = []
    busy_cases = 0
    for case in selected:
        fns = {}
        errors = {}
        for impl in impls:
            if impl not in case.builders:  # e.g. no NumPy baseline for ResNet-18: that cell reads "-"
                continue
            try:
                fns[impl] = case.builders[impl]()
            except Exception as exc:  # a case one library cannot run must not sink the table
                errors[impl] = f"{type(exc).__name__}: {exc}"
        load = OtherLoad()
        load.start()
        times = measure(fns, rounds, warmup_s=warmup_s, budgets_s={"numpy": case.numpy_budget_s * (0.5 if args.quick else 1)})
        busy = load.stop()
        med = {impl: statistics.median(t) for impl, t in times.items() if t}
        spreads = {impl: spread(t) for impl, t in times.items() if t}

        def cell(impl: str) -> str:
            if impl not in med:
                return "-"
            return f"{format_ms(med[impl])} ±{spreads[impl] * 100:.0f}%" if len(times[impl]) >= 4 else format_ms(med[impl])

        flagged = (busy is not None and busy > BUSY_CORES) or any(v > BUSY_SPREAD for v in spreads.values())
        busy_cases += flagged
        row = [case.name + (" !" if flagged else ""), cell("pycnn"), format_gflops(case.flops, med.get("pycnn"))]
        if "numpy" in impls:
            row += [cell("numpy"), format_gflops(case.flops, med.get("numpy"))]
        if "torch" in impls:
            row += [cell("torch"), format_gflops(case.flops, med.get("torch"))]
        if "onnxruntime" in impls:
            row += [cell("onnxruntime"), format_gflops(case.flops, med.get("onnxruntime"))]
        if "numpy" in impls:
            row.append(format_ratio(med.get("numpy"), med.get("pycnn")))
        if "torch" in impls:
            row.append(format_ratio(med.get("torch"), med.get("pycnn")))
        if "onnxruntime" in impls:
            row.append(format_ratio(med.get("onnxruntime"), med.get("pycnn")))
        row.append("-" if busy is None else f"{busy:.2f}")
        rows.append(row)
        for impl, err in errors.items():
            print(f"  {case.name}: {impl} failed: {err}", file=sys.stderr)
        # Progress on stderr so stdout holds just the table.
        print(f"  measured {case.name}", file=sys.stderr, flush=True)
        del fns
    print(format_table(rows, header))
    if busy_cases:
        print(f"\n! {busy_cases} case(s) ran while other processes used more than {BUSY_CORES:.1f} core(s) or with a "
              f"spread over {BUSY_SPREAD:.0%}: when another process holds a core, threaded kernels wait for "
              "whole scheduler time slices (see pycnn.bench.timing). Re-run them on a quiet machine.")
    if args.memory:
        print()
        print(memory_table(args.threads, include_torch=torch is not None))
    return 0
