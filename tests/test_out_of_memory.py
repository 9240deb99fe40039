"""Issue 12, item 1: running out of memory inside a threaded kernel is a MemoryError, never an abort.

An exception that leaves an OpenMP parallel region (or one iteration of a
worksharing loop) makes the runtime call std::terminate: the interpreter died
with `terminate called after throwing an instance of 'std::bad_alloc'`
(exit 134). Every region now opens in csrc/runtime/parallel.h and runs each
item inside an ExceptionTrap that rethrows the first exception after the
region. Three tests hold that:

* no file but runtime/parallel.h opens a region or a worksharing loop;
* under an address-space limit (RLIMIT_AS), each threaded kernel family at
  2 threads raises MemoryError when its scratch (or, for families without
  scratch, its output) does not fit, and the process carries on;
* every request a kernel makes for per-thread scratch, in whichever thread,
  is made to fail in turn (`_core._fail_scratch_request`): MemoryError each
  time, and the next call computes the same result.

Each runs in a child process, so a regression aborts the child, not pytest.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import textwrap

import pytest

CSRC = pathlib.Path(__file__).resolve().parent.parent / "csrc"


def test_parallel_regions_open_only_in_the_runtime():
    """Any `omp parallel` / `omp for` / `omp barrier` outside runtime/parallel.h would bypass the trap."""
    if not CSRC.is_dir():
        pytest.skip("the C++ sources are not next to the tests (installed package)")
    allowed = CSRC / "runtime" / "parallel.h"
    pattern = re.compile(r"#\s*pragma\s+omp\s+(parallel|for|sections|single|barrier|task|critical)\b")
    found = []
    for path in sorted(CSRC.rglob("*")):
        if path.suffix not in {".h", ".cpp", ".inc"} or path == allowed:
            continue
        for no, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(CSRC)}:{no}: {line.strip()}")
    assert not found, "parallel regions must go through parallel_items/parallel_ranges:\n" + "\n".join(found)


def run_child(source: str) -> list:
    """Runs ``source`` at 2 threads; returns the JSON records it printed, one per line."""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYCNN_ISA": os.environ.get("PYCNN_ISA", "")}
    # cwd: not the checkout, whose pycnn/ (without a built _core) would shadow the installed one
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True,
                       timeout=300, env=env, cwd=tempfile.gettempdir())
    records = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    started = [rec["case"] for rec in records if "started" in rec]
    assert r.returncode == 0, (f"child exited with {r.returncode} during {started[-1] if started else 'setup'}:\n"
                               f"{r.stderr[-3000:]}")
    return records


_COMMON = """
    import json, resource, sys
    import numpy as np
    import pycnn
    from pycnn import _core, functional as F
    pycnn.set_num_threads(2)
    assert pycnn.get_num_threads() == 2

    def say(**record):
        print(json.dumps(record), flush=True)

    def z(*shape):  # never touched unless the kernel runs: costs address space only
        return np.zeros(shape, np.float32)

    def r(*shape, seed=0):
        return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)

    # Start the thread pool (and its threads' malloc arenas) before any limit.
    F.conv2d_backward(r(4, 16, 32, 32), r(4, 16, 32, 32), r(16, 16, 3, 3), padding=1, algo="im2col")
    _core.sgemm(r(256, 256), r(256, 256))
"""

# name, setup code defining `call` (and `extra`: bytes of output the call may legitimately
# allocate), and which allocation runs out. The limit is the address space after setup +
# extra + HEADROOM; every case needs hundreds of MiB (or more) beyond that.
_LIMIT_CASES = [
    ("conv2d im2col backward-data (col2im): each thread's column buffer, inside the region",
     # issue 12's reproducer: 1e6 x 2.5e5 floats per thread
     "dy, x, w = z(2, 1, 500, 500), z(2, 1, 1, 1), z(1, 1, 1000, 1000); extra = 0\n"
     "call = lambda: F.conv2d_backward(dy, x, w, stride=2, padding=999, algo='im2col', weight_grad=False)"),
    ("sgemm with 2 rows: each thread's row accumulators (32 MiB), inside the region",
     "a, b = z(2, 1), z(1, 1 << 24); extra = 2 * (1 << 24) * 4\n"
     "call = lambda: _core.sgemm(a, b)"),
    ("conv2d im2col forward: the packed weights (64 MiB)",
     "x, w = z(2, 4096, 2, 2), z(4096, 4096, 1, 1); extra = 2 * 4096 * 4 * 4\n"
     "call = lambda: F.conv2d(x, w, algo='im2col')"),
    ("conv2d im2col backward-weight: per-thread partial weight gradients (2 x 64 MiB)",
     "x, dy, w = z(2, 4096, 8, 8), z(2, 4096, 8, 8), z(4096, 4096, 1, 1); extra = 4096 * 4097 * 4\n"
     "call = lambda: F.conv2d_backward(dy, x, w, algo='im2col', input_grad=False)"),
    ("conv2d winograd forward: the transformed weights (151 MiB)",
     # 128 tiles: several tile blocks, so the whole U is transformed first
     "x, w = z(8, 1024, 16, 16), z(1024, 1024, 3, 3); extra = 8 * 1024 * 16 * 16 * 4\n"
     "call = lambda: F.conv2d(x, w, padding=1, algo='winograd')"),
    ("conv2d winograd forward, weights transformed piece by piece: the input tiles (302 MiB)",
     "x, w = z(1, 65536, 4, 4), z(8, 65536, 3, 3); extra = 8 * 16 * 4\n"
     "call = lambda: F.conv2d(x, w, padding=1, algo='winograd')"),
    ("conv2d on small planes (columns spanning images): the column block (115 MiB)",
     "x, w = z(2, 65536, 7, 7), z(1, 65536, 3, 3); extra = 2 * 49 * 4\n"
     "call = lambda: F.conv2d(x, w, padding=1, algo='im2col')"),
    ("PreparedConv2d forward: the weights packed on first use (64 MiB)",
     "prepared = _core.PreparedConv2d(z(4096, 4096, 1, 1), None, (1, 1), (0, 0, 0, 0), (1, 1), 1, 'im2col')\n"
     "x = z(2, 4096, 2, 2); extra = 2 * 4096 * 4 * 4\n"
     "call = lambda: prepared.forward(x)"),
    ("conv2d direct forward (no scratch): the output (64 MiB)",
     "x, w = z(1, 1, 4096, 4096), z(1, 1, 1, 1); extra = 0\n"
     "call = lambda: F.conv2d(x, w, algo='direct')"),
    ("max_pool2d with indices (no scratch): the outputs",
     "x = z(4, 16, 1024, 1024); extra = 0\n"
     "call = lambda: F.max_pool2d(x, 2, return_indices=True)"),
    ("avg_pool2d backward (no scratch): the input gradient",
     "dy = z(4, 16, 512, 512); extra = 0\n"
     "call = lambda: F.avg_pool2d_backward(dy, (4, 16, 1024, 1024), 2)"),
    ("batch_norm training forward (no scratch): the output",
     "x, m, v = z(4, 16, 1024, 1024), z(16), z(16) + 1; extra = 0\n"
     "call = lambda: F.batch_norm(x, m, v, training=True)"),
]


def test_out_of_memory_in_each_threaded_kernel_is_a_memory_error():
    cases = json.dumps(_LIMIT_CASES)
    records = run_child(_COMMON + f"""
    HEADROOM = 16 << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    for name, setup in json.loads({cases!r}):
        scope = {{"z": z, "F": F, "_core": _core}}
        exec(setup, scope)
        with open("/proc/self/status") as f:
            vm = [int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize")][0]
        say(case=name, started=True)
        resource.setrlimit(resource.RLIMIT_AS, (vm + scope["extra"] + HEADROOM, hard))
        try:
            scope["call"]()
            outcome = "returned"
        except MemoryError:
            outcome = "MemoryError"
        except Exception as e:
            outcome = f"{{type(e).__name__}}: {{e}}"
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        del scope
        say(case=name, outcome=outcome)
    # The process carries on, and the scratch buffers whose growth failed work (they once kept their
    # old size with no memory behind it: a segfault): the kernels above agree with one thread.
    x, w, dy = r(4, 16, 32, 32), r(16, 16, 3, 3, seed=1), r(4, 16, 16, 16, seed=2)
    a, b = r(2, 300), r(300, 50000, seed=3)
    def run():
        return (F.conv2d(x, w, padding=1, algo="im2col"), F.conv2d(x, w, padding=1, algo="winograd"),
                F.conv2d_backward(dy, x, w, stride=2, padding=1, algo="im2col", weight_grad=False)[0],
                _core.sgemm(a, b))
    two = run()
    pycnn.set_num_threads(1)
    say(case="after", equal=[bool(np.array_equal(p, q)) for p, q in zip(two, run())])
    """)
    outcomes = {rec["case"]: rec["outcome"] for rec in records if "outcome" in rec}
    assert list(outcomes) == [name for name, _ in _LIMIT_CASES]
    bad = [f"{name}: {o}" for name, o in outcomes.items() if o != "MemoryError"]
    assert not bad, "\n".join(bad)
    assert records[-1] == {"case": "after", "equal": [True] * 4}


# Every threaded family that takes per-thread scratch, at 2 threads with sizes that use both threads.
_SCRATCH_CASES = {
    "sgemm": "a, b = r(300, 200), r(200, 400, seed=1)\ncall = lambda: (_core.sgemm(a, b),)",
    "sgemm with 3 rows": "a, b = r(3, 300), r(300, 70000, seed=1)\ncall = lambda: (_core.sgemm(a, b),)",
    "linear backward": "x, w, dy = r(64, 300), r(200, 300, seed=1), r(64, 200, seed=2)\n"
                       "call = lambda: F.linear_backward(dy, x, w)",
    "conv2d im2col forward": "x, w = r(2, 16, 32, 32), r(16, 16, 3, 3, seed=1)\n"
                             "call = lambda: (F.conv2d(x, w, padding=1, algo='im2col'),)",
    "conv2d im2col forward, batch 1 (split inside the image)":
        "x, w = r(1, 32, 32, 32), r(32, 32, 3, 3, seed=1)\ncall = lambda: (F.conv2d(x, w, padding=1, algo='im2col'),)",
    "conv2d im2col backward, stride 2 (col2im)":
        "x, w, dy = r(2, 16, 32, 32), r(16, 16, 3, 3, seed=1), r(2, 16, 16, 16, seed=2)\n"
        "call = lambda: F.conv2d_backward(dy, x, w, stride=2, padding=1, algo='im2col')",
    "conv2d im2col backward, stride 1 (data as a forward)":
        "x, w, dy = r(2, 16, 32, 32), r(16, 16, 3, 3, seed=1), r(2, 16, 32, 32, seed=2)\n"
        "call = lambda: F.conv2d_backward(dy, x, w, padding=1, algo='im2col')",
    "conv2d im2col backward, batch 1": "x, w, dy = r(1, 32, 32, 32), r(32, 32, 3, 3, seed=1), r(1, 32, 32, 32, seed=2)\n"
                                       "call = lambda: F.conv2d_backward(dy, x, w, padding=1, algo='im2col')",
    "conv2d winograd forward and backward-data":
        "x, w, dy = r(2, 16, 32, 32), r(16, 16, 3, 3, seed=1), r(2, 16, 32, 32, seed=2)\n"
        "call = lambda: (F.conv2d(x, w, padding=1, algo='winograd'),\n"
        "                F.conv2d_backward(dy, x, w, padding=1, algo='winograd', weight_grad=False)[0])",
    "conv2d on small planes (columns spanning images)":
        "x, w, dy = r(16, 64, 4, 4), r(64, 64, 3, 3, seed=1), r(16, 64, 4, 4, seed=2)\n"
        "call = lambda: (F.conv2d(x, w, padding=1, algo='im2col'),) + F.conv2d_backward(dy, x, w, padding=1, algo='im2col')",
    "PreparedConv2d forward, im2col and winograd":
        "x, w = r(2, 16, 32, 32), r(16, 16, 3, 3, seed=1)\n"
        "p1 = _core.PreparedConv2d(w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, 'im2col')\n"
        "p2 = _core.PreparedConv2d(w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, 'winograd')\n"
        "call = lambda: (p1.forward(x), p2.forward(x))",
}


def test_every_scratch_request_of_a_threaded_kernel_can_fail_cleanly():
    """The k-th scratch request fails (k = 1..6, in whichever thread makes it): MemoryError, then the same
    results as before. Every case must make at least two requests, so both threads' are covered."""
    cases = json.dumps(_SCRATCH_CASES)
    records = run_child(_COMMON + f"""
    for name, setup in json.loads({cases!r}).items():
        scope = {{"r": r, "F": F, "_core": _core}}
        exec(setup, scope)
        call = scope["call"]
        say(case=name, started=True)
        expected = call()
        _core._fail_scratch_request(1 << 40)
        call()
        requests = (1 << 40) - _core._fail_scratch_request(0)
        failed = []
        for k in range(1, min(requests, 6) + 1):
            _core._fail_scratch_request(k)
            try:
                call()
                failed.append("returned")
            except MemoryError:
                failed.append("MemoryError")
            finally:
                _core._fail_scratch_request(0)
        again = call()
        same = all(np.array_equal(a, b) for a, b in zip(expected, again))
        say(case=name, requests=requests, outcomes=failed, same_after=same)
    """)
    results = {rec["case"]: rec for rec in records if "requests" in rec}
    assert list(results) == list(_SCRATCH_CASES)
    bad = []
    for name, rec in results.items():
        if rec["requests"] < 2:
            bad.append(f"{name}: only {rec['requests']} scratch requests (the case no longer covers threads)")
        if any(o != "MemoryError" for o in rec["outcomes"]):
            bad.append(f"{name}: {rec['outcomes']}")
        if not rec["same_after"]:
            bad.append(f"{name}: results changed after a failed call")
    assert not bad, "\n".join(bad)
