"""fork() after pycnn ran threaded kernels: the child works (single-threaded) or fails loudly, never hangs.

libgomp's worker threads do not survive fork(); without care the child's first
multi-threaded region waits forever for them. pycnn's fork handler makes such a
child single-threaded, and asking it for more threads raises RuntimeError
(docs/reliability.md). Every child here runs under a timeout, so a regression
shows up as a failure, not a hung test run.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pycnn
from pycnn import _core
from pycnn import functional as F

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()"),
    pytest.mark.skipif(os.environ.get("PYCNN_SANITIZED_RUN") == "1",
                       reason="forking an ASan-instrumented interpreter is slow and tested without it"),
]

TIMEOUT = 60  # seconds: generous on a loaded 2-core machine; a hang never finishes


def _work(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 16, 24, 24)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    y = F.conv2d(x, w, padding=1)
    dx, dw, db = F.conv2d_backward(y, x, w, padding=1)
    p = F.max_pool2d(F.relu(y), 2)
    return [y, dx, dw, db, p]


def _child_compute(queue):
    try:
        out = _work()
        queue.put(("ok", pycnn.get_num_threads(), _core.forked_single_threaded(), out))
    except BaseException as e:  # pragma: no cover - reported to the parent
        queue.put(("error", repr(e), None, None))


def _child_ask_threads(queue):
    try:
        pycnn.set_num_threads(2)
        queue.put(("no error", None))
    except RuntimeError as e:
        queue.put(("RuntimeError", str(e)))
    except BaseException as e:  # pragma: no cover
        queue.put(("other", repr(e)))


def _run_forked(target):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(q,))
    p.start()
    try:
        result = q.get(timeout=TIMEOUT)
    except Exception:
        p.kill()
        p.join(5)
        pytest.fail(f"forked child did not answer within {TIMEOUT} s: it hangs")
    p.join(TIMEOUT)
    if p.is_alive():  # pragma: no cover
        p.kill()
        pytest.fail("forked child did not exit")
    assert p.exitcode == 0
    return result


@pytest.fixture
def threaded_parent():
    """The parent has run kernels on 2 threads, so libgomp's pool exists."""
    old = pycnn.get_num_threads()
    pycnn.set_num_threads(2)
    expected = _work()
    yield expected
    pycnn.set_num_threads(old)


def test_child_forked_after_threaded_use_works_single_threaded(threaded_parent):
    status, nthreads, forked_flag, out = _run_forked(_child_compute)
    assert status == "ok", nthreads
    assert nthreads == 1 and forked_flag
    # The forward, dx and pooling do not depend on the thread count at all; the
    # im2col dW and db sum per-thread partials, so they agree to rounding.
    for i, (a, b) in enumerate(zip(out, threaded_parent)):
        if i in (2, 3):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
        else:
            np.testing.assert_array_equal(a, b)
    # The parent itself is unaffected.
    assert pycnn.get_num_threads() == 2 and not _core.forked_single_threaded()


def test_child_asking_for_threads_gets_a_clear_error(threaded_parent):
    status, msg = _run_forked(_child_ask_threads)
    assert status == "RuntimeError", msg
    assert "fork" in msg and "spawn" in msg and "single-threaded" in msg


def test_spawned_children_use_threads(threaded_parent):
    # The recommended start method: a fresh interpreter, a fresh thread pool.
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        r = pool.apply_async(_spawn_child_threads)
        nthreads, forked_flag = r.get(timeout=TIMEOUT)
    assert nthreads == 2 and not forked_flag


def _spawn_child_threads():
    pycnn.set_num_threads(2)
    _work()
    return pycnn.get_num_threads(), _core.forked_single_threaded()


def test_fork_before_any_threaded_kernel_keeps_threads():
    # A process that imported pycnn but never ran a threaded kernel has no
    # pool to lose: its forked children may use threads. Fresh interpreter, so
    # this test's own earlier kernels do not count.
    code = textwrap.dedent("""
        import os, sys
        import numpy as np
        import pycnn
        from pycnn import _core, functional as F
        pycnn.set_num_threads(2)
        pid = os.fork()
        if pid == 0:
            x = np.ones((4, 8, 32, 32), np.float32); w = np.ones((8, 8, 3, 3), np.float32)
            y = F.conv2d(x, w, padding=1)
            ok = pycnn.get_num_threads() == 2 and not _core.forked_single_threaded() and float(y[0, 0, 5, 5]) == 72.0
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-S", "-c", code], env=env, timeout=TIMEOUT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
