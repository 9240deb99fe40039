"""pycnn.optim.SGD against reference.sgd_step and torch.optim.SGD; validation; frozen parameters.

Tolerance: each step is a few float32 multiply-adds per element, compared with
float64 (reference) or float32 in another order (torch): rtol 1e-5, atol 1e-6.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import (
    assert_close, case_id, check_optimizer_tracks_torch, f32, needs_torch, optimizer_params, ref, torch,
)
from pycnn import nn, optim


HPS = [
    dict(lr=0.1),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.5),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.02, momentum=0.7, dampening=0.2, weight_decay=0.1),
    dict(lr=0.02, momentum=0.95, weight_decay=0.05, nesterov=True),
    dict(lr=0.0, momentum=0.9),
]


@pytest.mark.parametrize("hp", HPS, ids=case_id)
def test_sgd_matches_reference(hp, rng):
    params = optimizer_params(rng)
    opt = optim.SGD(iter(params), **hp)  # a generator is materialised
    expected = [p.data.astype(np.float64) for p in params]
    bufs = [None] * len(params)
    for step in range(6):
        opt.zero_grad()
        for p in params:
            p.grad += f32(rng, *p.shape)
        grads = [p.grad.astype(np.float64) for p in params]
        opt.step()
        for i, p in enumerate(params):
            expected[i], bufs[i] = ref.sgd_step(expected[i], grads[i], bufs[i], **hp)
            assert_close(p.data, expected[i], rtol=1e-5, atol=1e-6, step=step, param=i, **hp)


@needs_torch
@pytest.mark.parametrize("hp", HPS, ids=case_id)
def test_sgd_matches_torch(hp, rng):
    params = optimizer_params(rng)
    tparams = [torch.tensor(p.data, requires_grad=True) for p in params]
    opt, topt = optim.SGD(params, **hp), torch.optim.SGD(tparams, **hp)
    check_optimizer_tracks_torch(opt, topt, params, tparams, rng, 6, **hp)


def test_step_updates_in_place_and_skips_frozen(rng):
    params = optimizer_params(rng)
    params[1].requires_grad = False
    arrays = [p.data for p in params]
    before = [a.copy() for a in arrays]
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad[...] = 1
    opt.step()
    assert all(p.data is a for p, a in zip(params, arrays))  # the model's arrays stay the same objects
    assert not np.array_equal(params[0].data, before[0])
    np.testing.assert_array_equal(params[1].data, before[1])
    assert id(params[1]) not in opt.state  # no momentum buffer for a frozen parameter
    params[1].requires_grad = True  # unfreezing takes effect at the next step
    opt.step()
    assert not np.array_equal(params[1].data, before[1])
    opt.zero_grad()
    assert not any(p.grad.any() for p in params)


def test_first_step_initialises_the_momentum_buffer(rng):
    p = nn.Parameter(np.zeros(4, np.float32))
    opt = optim.SGD([p], lr=1.0, momentum=0.5)
    p.grad[...] = 2
    opt.step()  # buf = g = 2
    np.testing.assert_array_equal(p.data, -2)
    opt.step()  # buf = 0.5 * 2 + 2 = 3
    np.testing.assert_array_equal(p.data, -5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (dict(lr=0.1, weight_decay=-1e-4), "Invalid weight_decay value: -0.0001"),
    (dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum requires"),
], ids=["lr", "momentum", "weight_decay", "nesterov_no_momentum", "nesterov_dampening"])
def test_sgd_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.SGD([nn.Parameter(np.zeros(2))], **kwargs)


def test_sgd_bad_params():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD(nn.ReLU().parameters(), lr=0.1)
    with pytest.raises(TypeError, match="nn.Parameter"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="single Parameter"):
        optim.SGD(nn.Parameter(np.zeros(3)), lr=0.1)
    with pytest.raises(TypeError, match="lr"):
        optim.SGD([nn.Parameter(np.zeros(3))], lr="0.1")
    p = nn.Parameter(np.zeros(3))
    with pytest.warns(UserWarning, match="duplicate"):
        opt = optim.SGD([p, p], lr=1.0)
    p.grad[...] = 1
    opt.step()
    np.testing.assert_array_equal(p.data, -1)  # updated once


def test_lr_can_be_changed_and_state_dict_round_trips(rng):
    params = optimizer_params(rng)
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad[...] = 1
    opt.step()
    opt.param_groups[0]["lr"] = 0.01  # what PyTorch-style schedules do
    assert opt.lr == 0.01
    sd = opt.state_dict()
    assert sd["param_groups"][0]["lr"] == 0.01 and sd["param_groups"][0]["params"] == [0, 1, 2]
    twin = [nn.Parameter(p.data.copy()) for p in params]
    opt2 = optim.SGD(twin, lr=0.5, momentum=0.9)
    opt2.load_state_dict(sd)
    assert opt2.lr == 0.01
    for p, q in zip(params, twin):
        q.grad[...] = p.grad
    opt.step()
    opt2.step()
    for p, q in zip(params, twin):
        np.testing.assert_array_equal(p.data, q.data)
    with pytest.raises(ValueError):
        optim.SGD(twin[:1], lr=0.1).load_state_dict(sd)


# ---------------------------------------------------------------- multi-tensor kernels

# Sizes: tiny arrays (BatchNorm's vectors), an empty one, and arrays large enough that the
# threads' shares of the concatenated elements start and end inside them.
MANY_SIZES = [(7,), (0,), (3, 5), (70001,), (1,), (64, 3, 3, 3), (40000,), (2,)]


def _many_arrays(rng, sizes=MANY_SIZES):
    params = [f32(rng, *s) for s in sizes]
    grads = [f32(rng, *s) for s in sizes]
    bufs = [f32(rng, *s) for s in sizes]
    return params, grads, bufs


@pytest.mark.parametrize("hp", HPS, ids=case_id)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_sgd_step_many_is_bitwise_a_loop_of_sgd_step(hp, threads, rng):
    import pycnn
    from pycnn import functional as F

    params, grads, bufs = _many_arrays(rng)
    firsts = [i % 3 == 0 for i in range(len(params))]
    momentum = hp.get("momentum", 0.0)
    if momentum == 0.0:
        bufs = [None if i % 2 else b for i, b in enumerate(bufs)]  # buffers are optional then
    eparams, ebufs = [p.copy() for p in params], [None if b is None else b.copy() for b in bufs]
    args = (hp["lr"], momentum, hp.get("dampening", 0.0), hp.get("weight_decay", 0.0), hp.get("nesterov", False))
    for p, g, b, first in zip(eparams, grads, ebufs, firsts):
        F.sgd_step(p, g, b, *args, first_step=first)
    old = pycnn.get_num_threads()
    pycnn.set_num_threads(threads)
    try:
        F.sgd_step_many(params, grads, bufs, *args, first_steps=firsts)
    finally:
        pycnn.set_num_threads(old)
    for i in range(len(params)):
        np.testing.assert_array_equal(params[i], eparams[i], err_msg=f"param {i}")
        if bufs[i] is not None:
            np.testing.assert_array_equal(bufs[i], ebufs[i], err_msg=f"buffer {i}")


def test_sgd_step_many_shared_memory_runs_in_order(rng):
    """Two parameters over one array are stepped twice, one after the other, as the loop would."""
    from pycnn import functional as F

    shared = f32(rng, 50000)
    g1, g2 = f32(rng, 50000), f32(rng, 50000)
    b1, b2 = np.zeros(50000, np.float32), np.zeros(50000, np.float32)
    expected = shared.copy()
    e1, e2 = b1.copy(), b2.copy()
    F.sgd_step(expected, g1, e1, 0.1, 0.9, first_step=True)
    F.sgd_step(expected, g2, e2, 0.1, 0.9, first_step=True)
    F.sgd_step_many([shared, shared], [g1, g2], [b1, b2], 0.1, 0.9, first_steps=[True, True])
    np.testing.assert_array_equal(shared, expected)
    np.testing.assert_array_equal(b2, e2)


def test_sgd_step_many_errors(rng):
    from pycnn import functional as F

    p, g, b = f32(rng, 4), f32(rng, 4), f32(rng, 4)
    with pytest.raises(ValueError, match="of one length"):
        F.sgd_step_many([p], [g, g], [b], 0.1, 0.9)
    with pytest.raises(TypeError, match=r"params\[0\]: expected a float32 ndarray, got list"):
        F.sgd_step_many([[1.0, 2.0]], [g], [b], 0.1, 0.9)
    with pytest.raises(TypeError, match="param"):
        F.sgd_step_many([p.astype(np.float64)], [g], [b], 0.1, 0.9)
    with pytest.raises(ValueError, match="sgd gradient"):
        F.sgd_step_many([p], [f32(rng, 5)], [b], 0.1, 0.9)
    with pytest.raises(ValueError, match="momentum buffer"):
        F.sgd_step_many([p], [g], [None], 0.1, 0.9)
    with pytest.raises(ValueError, match="must not share memory"):
        F.sgd_step_many([p], [p], [b], 0.1, 0.9)
    ro = p.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        F.sgd_step_many([ro], [g], [b], 0.1, 0.9)
    F.sgd_step_many([], [], [], 0.1, 0.9)  # nothing to do


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_zero_many(threads, rng):
    import pycnn
    from pycnn import functional as F

    arrays = [f32(rng, *s) for s in MANY_SIZES]
    shared = f32(rng, 30000)
    old = pycnn.get_num_threads()
    pycnn.set_num_threads(threads)
    try:
        F.zero_many(arrays + [shared, shared[10:]])  # overlapping arrays too
    finally:
        pycnn.set_num_threads(old)
    for a in arrays + [shared]:
        assert not a.any()
    with pytest.raises(TypeError, match="float32"):
        F.zero_many([np.ones(3)])
    with pytest.raises(TypeError, match="C-contiguous"):
        F.zero_many([np.ones((4, 4), np.float32)[:, 1]])
    F.zero_many([])


def test_zero_grad_of_optimizer_and_module_clears_every_gradient(rng):
    model = nn.Sequential(nn.Linear(300, 200), nn.BatchNorm1d(200), nn.Linear(200, 3))
    for p in model.parameters():
        p.grad[...] = 1.0
    optim.SGD(model.parameters(), lr=0.1).zero_grad()
    assert all(not p.grad.any() for p in model.parameters())
    for p in model.parameters():
        p.grad[...] = 1.0
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.1)])
def test_state_of_a_0d_parameter_round_trips_and_stays_0d(make):
    """load_state_dict keeps a scalar parameter's state 0-d (np.ascontiguousarray would make it (1,))."""
    from pycnn.nn import Parameter

    def scalar():
        p = Parameter(np.array(1.5, dtype=np.float32))
        p.grad = np.array(0.5, dtype=np.float32)
        return p

    p, q = scalar(), scalar()
    opt, twin = make([p]), make([q])
    opt.step()
    twin.load_state_dict(opt.state_dict())
    q.data[...] = p.data
    for s in twin.state.values():
        for v in s.values():
            if isinstance(v, np.ndarray):
                assert v.shape == ()
    opt.step()
    twin.step()
    assert p.data.shape == q.data.shape == ()
    assert p.data == q.data
