"""The packed SGEMM (pycnn._core.sgemm) against NumPy in float64, for every ISA.

Sizes straddle every blocking boundary: the microkernel tiles (6x16, 12x32),
the KC slices (a few hundred) and the NC blocks, plus 1-row/1-column
products and the small-product path. Tolerance: each output is a K-term dot
product of unit-variance float32 values, whose float32 round-off grows like
eps32 * sqrt(K); 1e-5 * sqrt(K) leaves ~50x headroom for any blocking order.
"""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from pycnn import _core

pytestmark = pytest.mark.usefixtures("isa")

SHAPES = [
    (1, 1, 1), (7, 13, 5), (6, 16, 64), (12, 32, 64), (13, 33, 65), (1, 500, 400), (500, 1, 400),
    (100, 37, 300), (257, 129, 511), (37, 700, 1031), (96, 1000, 9), (64, 196, 288), (31, 45, 2000),
    # On AVX-512 the GEMM picks 8-row tiles where they pad less than 12-row ones
    # (GemmPlan::for_product): full 8-row tiles, and a 5-row edge tile.
    (40, 64, 130), (21, 50, 77),
    # at most 4 rows: the no-packing path (dot products or row accumulation)
    (2, 300, 129), (3, 257, 300), (4, 33, 1000), (1, 3, 5000),
]


def _operands(rng, m, n, k, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    a64 = (a.T if trans_a else a).astype(np.float64)
    b64 = (b.T if trans_b else b).astype(np.float64)
    return a, b, a64 @ b64


@pytest.mark.parametrize("trans", [(False, False), (False, True), (True, False), (True, True)],
                         ids=["nn", "nt", "tn", "tt"])
@pytest.mark.parametrize("m,n,k", SHAPES, ids=lambda v: str(v))
def test_sgemm_matches_numpy(m, n, k, trans):
    rng = np.random.default_rng(m * 1000 + n * 7 + k)
    a, b, expected = _operands(rng, m, n, k, *trans)
    c = _core.sgemm(a, b, *trans)
    assert c.shape == (m, n) and c.dtype == np.float32
    np.testing.assert_allclose(c, expected, rtol=0, atol=1e-5 * np.sqrt(k) * 3,
                               err_msg=f"m={m} n={n} k={k} trans={trans} isa={_core.isa()}")


@pytest.mark.parametrize("m,n,k", [(5, 7, 3), (29, 67, 300), (200, 90, 700)], ids=str)
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, -2.0), (2.0, 0.0)])
@pytest.mark.parametrize("relu", [False, True])
def test_sgemm_alpha_beta_relu_epilogue(m, n, k, alpha, beta, relu):
    rng = np.random.default_rng(1)
    a, b, ab = _operands(rng, m, n, k, False, False)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    if beta == 0.0:
        c0[...] = np.nan  # beta == 0 must not read C at all
    c = c0.copy()
    out = _core.sgemm(a, b, alpha=alpha, beta=beta, c=c, relu=relu)
    assert out is c
    expected = alpha * ab + (beta * c0.astype(np.float64) if beta != 0.0 else 0.0)
    if relu:
        expected = np.maximum(expected, 0.0)
    np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-5 * np.sqrt(k) * 3)


def test_sgemm_relu_propagates_nan():
    a = np.ones((13, 40), np.float32)
    a[3, 5] = np.nan
    b = np.ones((40, 37), np.float32)
    c = _core.sgemm(a, b, relu=True)
    assert np.isnan(c[3]).all() and not np.isnan(np.delete(c, 3, axis=0)).any()


def test_sgemm_threads_give_the_same_bits():
    """Threads split rows of C; every element is summed in the same order."""
    rng = np.random.default_rng(2)
    a, b, _ = _operands(rng, 300, 200, 700, False, False)
    old = pycnn.get_num_threads()
    try:
        results = []
        for nt in (1, 2, 3):
            pycnn.set_num_threads(nt)
            results.append(_core.sgemm(a, b))
    finally:
        pycnn.set_num_threads(old)
    for r in results[1:]:
        np.testing.assert_array_equal(results[0], r)


def test_sgemm_rejects_bad_input():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"inner dimensions differ"):
        _core.sgemm(a, a)
    with pytest.raises(TypeError, match="float32"):
        _core.sgemm(a.astype(np.float64), a.T.copy())
    with pytest.raises(ValueError, match="share memory"):
        c = np.ones((3, 3), np.float32)
        _core.sgemm(c, c, c=c)


def test_isa_table():
    assert _core.supported_isas()[0] == "scalar"
    assert _core.isa() in _core.supported_isas()
    with pytest.raises(ValueError, match="unknown ISA"):
        _core.set_isa("sse9")
