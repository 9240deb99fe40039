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


# ---------------------------------------------------------------------------
# Item 6: a gradient accumulator aliasing the weight is refused
# ---------------------------------------------------------------------------

def test_grad_weight_aliasing_the_weight_is_refused():
    x, w, dy = f32(2, 3, 5, 5), f32(4, 3, 3, 3, seed=1), f32(2, 4, 3, 3, seed=2)
    w0 = w.copy()
    with pytest.raises(ValueError, match="grad_weight must not share memory with weight"):
        F.conv2d_backward(dy, x, w, grad_weight=w)
    with pytest.raises(ValueError, match="grad_bias must not share memory with weight"):
        F.conv2d_backward(dy, x, w, grad_bias=w.reshape(-1)[:4])
    with pytest.raises(ValueError, match="grad_weight must not share memory with weight"):
        w1 = f32(4, 3, 3)
        F.conv1d_backward(f32(2, 4, 3), f32(2, 3, 5), w1, grad_weight=w1)
    np.testing.assert_array_equal(w, w0)  # nothing was written
    lw = f32(3, 4)
    with pytest.raises(ValueError, match="grad_weight must not share memory with weight"):
        F.linear_backward(f32(2, 3), f32(2, 4), lw, grad_weight=lw)
    bw = np.ones(3, np.float32)
    xb = f32(4, 3)
    with pytest.raises(ValueError, match="grad_weight must not share memory with weight"):
        F.batch_norm_backward(xb, xb, np.zeros(3, np.float32), np.ones(3, np.float32), bw, grad_weight=bw)
    # disjoint accumulators still work
    gw = np.zeros_like(w)
    F.conv2d_backward(dy, x, w, grad_weight=gw)
    assert gw.any()


# ---------------------------------------------------------------------------
# Item 7: a gradient of the wrong shape is refused, not reshaped
# ---------------------------------------------------------------------------

def test_flatten_backward_checks_the_gradient_shape():
    m = nn.Flatten()
    y = m(f32(2, 3, 2))
    assert y.shape == (2, 6)
    with pytest.raises(ValueError, match="Flatten: expected grad_output of the forward output's shape \\(2, 6\\), "
                                         "got \\(3, 4\\)"):
        m.backward(np.ones((3, 4), np.float32))
    m(f32(2, 3, 2))
    assert m.backward(np.ones((2, 6), np.float32)).shape == (2, 3, 2)


@pytest.mark.parametrize("layer,shape", [(lambda: nn.Dropout(0.0), (2, 6)), (lambda: nn.Dropout(0.5), (2, 6)),
                                         (lambda: nn.Dropout2d(0.5), (2, 3, 2, 2))])
def test_dropout_backward_checks_the_gradient_shape(layer, shape):
    m = layer()
    m(f32(*shape))
    with pytest.raises(ValueError, match="expected grad_output of the forward output's shape"):
        m.backward(np.ones((int(np.prod(shape)),), np.float32))


# ---------------------------------------------------------------------------
# Item 8: clear errors
# ---------------------------------------------------------------------------

def test_clear_errors_for_out_of_range_ints():
    with pytest.raises(ValueError, match="set_num_threads: expected n <= "):
        pycnn.set_num_threads(2 ** 64)
    with pytest.raises(ValueError, match="softmax: axis 18446744073709551616 is out of range"):
        F.softmax(f32(2, 3), axis=2 ** 64)
    with pytest.raises(ValueError, match="softmax: axis -18446744073709551616 is out of range"):
        F.softmax_backward(f32(2, 3), f32(2, 3), axis=-2 ** 64)


def test_adam_beta_of_one_is_a_value_error():
    p = np.zeros(3, np.float32)
    bufs = [np.zeros(3, np.float32) for _ in range(2)]
    for b1, b2 in [(1.0, 0.999), (0.9, 1.0), (-0.1, 0.9)]:
        with pytest.raises(ValueError, match="adam_step: beta"):
            F.adam_step(p, np.ones(3, np.float32), *bufs, None, 1, 0.1, b1, b2)
    opt = optim.Adam([nn.Parameter(np.zeros(2))])
    sd = opt.state_dict()
    sd["param_groups"][0]["betas"] = (1.0, 0.999)
    with pytest.raises(ValueError, match="beta"):
        opt.load_state_dict(sd)
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)


def test_batch_norm_backward_names_save_mean():
    x = f32(4, 3)
    with pytest.raises(ValueError, match="save_mean of shape \\(3,\\), got \\(2,\\)"):
        F.batch_norm_backward(x, x, np.zeros(2, np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="save_rstd of shape \\(3,\\), got \\(4,\\)"):
        F.batch_norm_backward(x, x, np.zeros(3, np.float32), np.ones(4, np.float32))


def test_dropout_backward_names_the_gradient():
    _, mask = F.dropout(f32(4, 5), 0.5, return_mask=True)
    with pytest.raises(ValueError, match="grad_output .*of shape \\(4, 5\\), got \\(5, 4\\)"):
        F.dropout_backward(f32(5, 4), mask, 0.5)
    _, mask = F.dropout(f32(4, 5, 2), 0.5, channelwise=True, return_mask=True)
    with pytest.raises(ValueError, match="grad_output of shape \\(4, 5, ...\\) .*got \\(5, 4, 2\\)"):
        F.dropout_backward(f32(5, 4, 2), mask, 0.5, channelwise=True)


def test_unaligned_grad_says_what_is_wrong():
    p = nn.Parameter(np.zeros(4, np.float32))
    raw = np.zeros(17, np.uint8)
    unaligned = raw[1:].view(np.float32)
    assert not unaligned.flags.aligned
    with pytest.raises(TypeError, match="not aligned"):
        p.grad = unaligned
    with pytest.raises(TypeError, match="not aligned"):
        F.sgd_step(unaligned, np.zeros(4, np.float32), None, 0.1)


def test_idx_header_with_huge_dims_names_the_file(tmp_path):
    from pycnn.data import read_idx

    p = tmp_path / "huge.idx"
    p.write_bytes(bytes([0, 0, 0x08, 16]) + struct.pack(">16I", 0, *[2 ** 32 - 1] * 15))
    with pytest.raises(ValueError, match=f"{p}: IDX header claims shape"):
        read_idx(p)


def test_optimizer_load_state_dict_checks_what_it_loads():
    params = [nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(3))]
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    sd = opt.state_dict()
    bad = json.loads(json.dumps({"param_groups": sd["param_groups"], "state": {}}))
    bad["param_groups"][0]["lr"] = -1
    with pytest.raises(ValueError, match="learning rate"):
        opt.load_state_dict(bad)
    assert opt.lr == 0.1
    sd = {"param_groups": opt.state_dict()["param_groups"],
          "state": {-1: {"momentum_buffer": np.zeros(3, np.float32)}}}
    with pytest.raises(ValueError, match="state index -1 does not name a parameter"):
        opt.load_state_dict(sd)
    sd["state"] = {2: {"momentum_buffer": np.zeros(3, np.float32)}}
    with pytest.raises(ValueError, match="state index 2"):
        opt.load_state_dict(sd)
    sd["state"] = {"1": {"momentum_buffer": np.ones(3, np.float32)}}  # (keys that went through JSON)
    opt.load_state_dict(sd)
    np.testing.assert_array_equal(opt.state[id(params[1])]["momentum_buffer"], np.ones(3))


FLAG_CALLS = [
    ("conv2d relu", lambda v: F.conv2d(f32(1, 1, 3, 3), f32(1, 1, 1, 1), relu=v)),
    ("conv2d_backward input_grad", lambda v: F.conv2d_backward(f32(1, 1, 3, 3), f32(1, 1, 3, 3), f32(1, 1, 1, 1),
                                                               input_grad=v)),
    ("conv1d relu", lambda v: F.conv1d(f32(1, 1, 3), f32(1, 1, 1), relu=v)),
    ("linear relu", lambda v: F.linear(f32(1, 2), f32(2, 2), relu=v)),
    ("linear_backward weight_grad", lambda v: F.linear_backward(f32(1, 2), f32(1, 2), f32(2, 2), weight_grad=v)),
    ("max_pool2d return_indices", lambda v: F.max_pool2d(f32(1, 1, 2, 2), 2, return_indices=v)),
    ("avg_pool2d count_include_pad", lambda v: F.avg_pool2d(f32(1, 1, 2, 2), 2, count_include_pad=v)),
    ("avg_pool1d count_include_pad", lambda v: F.avg_pool1d(f32(1, 1, 2), 2, count_include_pad=v)),
    ("batch_norm training", lambda v: F.batch_norm(f32(2, 2), np.zeros(2, np.float32), np.ones(2, np.float32),
                                                   training=v)),
    ("dropout training", lambda v: F.dropout(f32(2, 2), 0.5, training=v)),
    ("dropout channelwise", lambda v: F.dropout(f32(2, 2), 0.5, channelwise=v)),
    ("sgd_step nesterov", lambda v: F.sgd_step(np.zeros(2, np.float32), np.zeros(2, np.float32), None, 0.1,
                                               nesterov=v)),
    ("adam_step decoupled_weight_decay", lambda v: F.adam_step(*[np.zeros(2, np.float32) for _ in range(4)], None,
                                                               1, 0.1, decoupled_weight_decay=v)),
    ("SGD nesterov", lambda v: optim.SGD([nn.Parameter(np.zeros(1))], lr=0.1, momentum=0.9, nesterov=v)),
    ("Adam amsgrad", lambda v: optim.Adam([nn.Parameter(np.zeros(1))], amsgrad=v)),
    ("Dropout inplace", lambda v: nn.Dropout(0.5, inplace=v)),
    ("Parameter requires_grad", lambda v: nn.Parameter(np.zeros(1), requires_grad=v)),
    ("requires_grad_", lambda v: nn.Linear(1, 1).requires_grad_(v)),
    ("ResNet zero_init_residual", lambda v: pycnn.models.resnet.resnet8(width=1, zero_init_residual=v)),
]


@pytest.mark.parametrize("call", [c[1] for c in FLAG_CALLS], ids=[c[0] for c in FLAG_CALLS])
def test_flags_must_be_bools(call):
    # relu='no' meant relu=True: bool("no") is True.
    for v in ("no", 0, None, 1.0):
        with pytest.raises(TypeError, match="must be a bool"):
            call(v)
    call(True)
    call(np.bool_(False))


def test_a_float_dropout_mask_is_refused():
    with pytest.raises(TypeError, match="mask must be the bool array"):
        F.dropout_backward(f32(2, 2), np.array([[0.2, 0.0], [1.0, 0.5]], np.float32), 0.5)
    y, mask = F.dropout(f32(2, 2), 0.5, return_mask=True)
    F.dropout_backward(f32(2, 2), mask, 0.5)
