"""Dropout, Dropout1d/2d: inverted scaling, seeded masks, eval identity, channel-wise masks."""
from __future__ import annotations

import numpy as np
import pytest

import pycnn
from conftest import assert_close, f32, f64, ref
from pycnn import nn


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------

def test_dropout_is_inverted_seeded_and_identity_in_eval(rng):
    x = f32(rng, 64, 1000) + 3.0  # no zeros in x, so zeros in y are dropped units
    d = nn.Dropout(0.3)
    pycnn.manual_seed(7)
    y = d(x)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01  # 64000 Bernoulli(0.7) draws: sd 0.0018
    assert_close(y[kept], x[kept] / 0.7, rtol=1e-6, atol=0)
    dy = f32(rng, *x.shape)
    dx = d.backward(dy)
    np.testing.assert_array_equal(dx != 0, kept)
    assert_close(dx, ref.dropout_apply(f64(dy), kept, 0.3), rtol=1e-6, atol=0)
    pycnn.manual_seed(7)
    np.testing.assert_array_equal(nn.Dropout(0.3)(x), y)  # manual_seed reproduces the mask
    assert d.eval()(x) is x  # identity, no copy


def check_drops_whole_channels(d, x, rng):
    """``d`` (in training mode) zeroes whole (n, c) channels of x (> 0) and scales the rest, forward and backward."""
    y = d(x)
    per_channel = (y != 0).reshape(x.shape[0], x.shape[1], -1)
    assert (per_channel.all(axis=2) | ~per_channel.any(axis=2)).all()
    kept = per_channel.all(axis=2)
    assert 0 < kept.sum() < kept.size
    assert_close(y, ref.dropout_apply(f64(x), kept, 0.5), rtol=1e-6, atol=0)
    dy = f32(rng, *x.shape)
    assert_close(d.backward(dy), ref.dropout_apply(f64(dy), kept, 0.5), rtol=1e-6, atol=0)


def test_dropout2d_drops_whole_channels(rng):
    x = f32(rng, 8, 16, 5, 5) + 5.0
    d = nn.Dropout2d(0.5)
    check_drops_whole_channels(d, x, rng)
    y1 = nn.Dropout1d(0.5)(f32(rng, 4, 6, 9) + 5.0)
    pc = (y1 != 0)
    assert (pc.all(axis=2) | ~pc.any(axis=2)).all()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        d(f32(rng, 4, 6, 9))


def test_dropout_edge_probabilities_and_errors(rng):
    x = f32(rng, 10, 10)
    np.testing.assert_array_equal(nn.Dropout(1.0)(x), 0)
    assert nn.Dropout(0.0)(x) is x
    assert nn.Dropout(0.0).backward is not None
    d = nn.Dropout(0.0)
    d(x)
    assert d.backward(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)
    with pytest.raises(TypeError, match="uint8"):
        pycnn._core.dropout_apply(x, np.ones(x.shape, np.int32), 1.0, False)
    with pytest.raises(ValueError, match="dropout mask"):
        pycnn._core.dropout_apply(x, np.ones((3, 3), np.uint8), 1.0, False)
