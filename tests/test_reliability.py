"""Issue 12 (Reliability II): each reproducer of items 2, 3, 4, 6, 7, 8 and 9 as a test.

Every test here failed before its fix. They are grouped by the item of the
issue; docs/reliability.md ("Hostile and careless inputs") lists each input
class, what happens now and the test that holds it.
"""
from __future__ import annotations

import io as _io
import json
import os
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile
import zlib

import numpy as np
import pytest

import pycnn
from pycnn import functional as F
from pycnn import io as pio
from pycnn import nn, optim


def f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------
# Item 4: products of user sizes are checked int64 arithmetic
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kernel,padding", [((2 ** 32 + 1, 2 ** 31 + 1), (2 ** 31, 2 ** 30)),
                                            (2 ** 32, 2 ** 31)])
def test_avg_pool_divisor_overflow_is_refused(kernel, padding):
    # Returned -5.42e-19 and inf (forward and backward) instead of an error.
    x = np.full((1, 1, 1, 1), 5, np.float32)
    with pytest.raises(OverflowError, match="avg_pool2d: kernel_size .* 64-bit"):
        F.avg_pool2d(x, kernel, stride=1, padding=padding)
    with pytest.raises(OverflowError, match="avg_pool2d"):
        F.avg_pool2d_backward(x, (1, 1, 1, 1), kernel, stride=1, padding=padding)
    # the largest window that fits still divides correctly
    np.testing.assert_allclose(F.avg_pool2d(x, (2 ** 31, 2), stride=1, padding=(2 ** 30, 1)),
                               np.full((1, 1, 2, 2), 5 / 2 ** 32, np.float32))


def test_empty_shapes_cannot_hide_an_overflowing_product():
    # (0, 2^40, 2^16, 2^16): no elements, but C*H*W overflows int64 (the kernels index by it).
    dy = np.zeros((0, 2 ** 40, 1, 1), np.float32)
    with pytest.raises(OverflowError, match="64-bit"):
        F.avg_pool2d_backward(dy, (0, 2 ** 40, 2 ** 16, 2 ** 16), 2 ** 16)
    with pytest.raises(OverflowError, match="64-bit"):
        F.adaptive_avg_pool2d_backward(dy, (0, 2 ** 40, 2 ** 16, 2 ** 16))
