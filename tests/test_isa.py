"""Every instruction set the CPU has gives the reference's answers, in a fresh process per PYCNN_ISA.

PYCNN_ISA is read once, when pycnn is first imported, so each ISA needs its own
process. Run from a temporary directory, the child imports the *installed*
pycnn (CI installs the wheel with `pip install .`), so this checks the
per-ISA kernels a wheel ships: the AVX-512, AVX2 and baseline x86-64 paths,
whichever this CPU can run. Each child runs a small CNN (convolutions by every
algorithm, batch norm, ReLU, max pooling, linear) forward and backward and
compares with pycnn.reference.
"""
import os
import subprocess
import sys
import textwrap

import pytest

import pycnn

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import pycnn
    from pycnn import _core, functional as F, reference as R

    want = sys.argv[1]
    assert _core.isa() == want, (_core.isa(), want)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 14, 14)).astype(np.float32)
    w1 = (rng.standard_normal((16, 3, 3, 3)) * 0.3).astype(np.float32)
    b1 = rng.standard_normal(16).astype(np.float32)
    w2 = (rng.standard_normal((8, 16, 3, 3)) * 0.1).astype(np.float32)
    wl = (rng.standard_normal((5, 8 * 7 * 7)) * 0.05).astype(np.float32)
    bl = rng.standard_normal(5).astype(np.float32)

    def close(a, b, what):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        err = np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b)))
        assert err < 2e-5, f"{want} {what}: relative error {err:.2e}"

    for algo in ("im2col", "direct", "winograd"):
        y1 = F.conv2d(x, w1, b1, padding=1, algo=algo)
        close(y1, R.conv2d(x, w1, b1, padding=1), f"conv2d {algo}")
        a1 = F.relu(y1)
        p, idx = F.max_pool2d(a1, 2, return_indices=True)
        close(p, R.max_pool2d(R.relu(R.conv2d(x, w1, b1, padding=1)), 2), f"max_pool2d after {algo}")
        y2 = F.conv2d(p, w2, None, padding=1, algo=algo)
        close(y2, R.conv2d(p, w2, None, padding=1), f"second conv2d {algo}")
        flat = y2.reshape(len(x), -1)
        out = F.linear(flat, wl, bl)
        close(out, R.linear(flat, wl, bl), "linear")
        dout = rng.standard_normal(out.shape).astype(np.float32)
        got = F.linear_backward(dout, flat, wl)
        for g, r, n in zip(got, R.linear_backward(dout, flat, wl), ("dx", "dw", "db")):
            close(g, r, f"linear_backward {n}")
        dy2 = got[0].reshape(y2.shape)
        got = F.conv2d_backward(dy2, p, w2, padding=1, algo=algo, bias=False)
        ref = R.conv2d_backward(dy2, p, w2, padding=1)
        close(got[0], ref[0], f"conv2d_backward {algo} dx")
        close(got[1], ref[1], f"conv2d_backward {algo} dw")
        da1 = F.max_pool2d_backward(got[0], idx, a1.shape, 2)
        close(da1, R.max_pool2d_backward(got[0], a1, 2), "max_pool2d_backward")
        dy1 = F.relu_backward(da1, a1)
        got = F.conv2d_backward(dy1, x, w1, padding=1, algo=algo)
        for g, r, n in zip(got, R.conv2d_backward(dy1, x, w1, padding=1), ("dx", "dw", "db")):
            close(g, r, f"first conv2d_backward {algo} {n}")
    bn_x = rng.standard_normal((8, 16, 5, 5)).astype(np.float32)
    gamma, beta = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    rm, rv = np.zeros(16, np.float32), np.ones(16, np.float32)
    y = F.batch_norm(bn_x, rm.copy(), rv.copy(), gamma, beta, training=True)
    close(y, R.batch_norm_train(bn_x, gamma, beta)[0], "batch_norm")
    print("ok", want)
""")


def _supported():
    from pycnn import _core

    return _core.supported_isas()


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_forced_isa_matches_reference(isa, tmp_path):
    if isa not in _supported():
        pytest.skip(f"this CPU cannot run {isa} (supported: {', '.join(_supported())})")
    env = {**os.environ, "PYCNN_ISA": isa, "OMP_NUM_THREADS": "2"}
    # The child imports the pycnn this process imported (the installed one, or a dev checkout's).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(pycnn.__file__)),
                                                      env.get("PYTHONPATH")]))
    r = subprocess.run([sys.executable, "-c", CHILD, isa], cwd=tmp_path, env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == f"ok {isa}"


def test_build_flags_target_no_particular_cpu():
    """Only the per-ISA kernel files (name__avx2.cpp, name__avx512.cpp) are compiled with AVX flags.

    -march=native (or any -march/-mtune, or -mavx on every file) would let the
    compiler put AVX instructions in code every CPU runs, and a wheel built on
    an AVX-512 machine would crash with SIGILL on an AVX2-only or older CPU.
    """
    from pathlib import Path

    cmake = Path(__file__).resolve().parent.parent / "CMakeLists.txt"
    if not cmake.exists():
        pytest.skip("not run from a source checkout")
    lines = cmake.read_text().splitlines()
    code = [line.split("#")[0] for line in lines]
    assert not [line for line in code if "-march" in line or "-mtune" in line or "native" in line]
    isa_flag_lines = [line.strip() for line in code if "-mavx" in line or "/arch:" in line]
    assert isa_flag_lines and all(line.startswith("set_source_files_properties(${PYCNN_AVX") for line in isa_flag_lines), \
        isa_flag_lines
