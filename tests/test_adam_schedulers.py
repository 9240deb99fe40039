"""Adam/AdamW against reference.adam_step and torch.optim; LR schedulers against closed forms and
torch.optim.lr_scheduler.

Tolerance: each step is a handful of float32 operations per element; after 8 steps
pycnn (float32) vs the reference (float64) agree to rtol 1e-5, atol 1e-6; vs torch
(float32, same operation order) to the same bound.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import (
    assert_close, case_id, check_optimizer_tracks_torch, f32, needs_torch, optimizer_params, ref, torch,
)
from pycnn import functional as F
from pycnn import nn, optim


HPS = [
    dict(cls="Adam"),
    dict(cls="Adam", lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    dict(cls="Adam", lr=0.01, amsgrad=True),
    dict(cls="AdamW"),
    dict(cls="AdamW", lr=0.02, weight_decay=0.3, betas=(0.5, 0.9)),   # beta1 0.5: lerp's other formula
    dict(cls="AdamW", lr=0.01, weight_decay=0.05, amsgrad=True),
]


def _split(hp):
    hp = dict(hp)
    return hp.pop("cls"), hp


@pytest.mark.parametrize("hp", HPS, ids=case_id)
def test_adam_matches_reference(hp, rng):
    cls, kw = _split(hp)
    params = optimizer_params(rng)
    opt = getattr(optim, cls)(params, **kw)
    d = opt.param_groups[0]
    beta1, beta2 = d["betas"]
    state = [[p.data.astype(np.float64), np.zeros(p.shape), np.zeros(p.shape),
              np.zeros(p.shape) if d["amsgrad"] else None] for p in params]
    for step in range(1, 9):
        opt.zero_grad()
        for p in params:
            p.grad += f32(rng, *p.shape, scale=0.1 * step)
        grads = [p.grad.astype(np.float64) for p in params]
        opt.step()
        for i, p in enumerate(params):
            s = state[i]
            s[0], s[1], s[2], s[3] = ref.adam_step(s[0], grads[i], s[1], s[2], step, d["lr"], beta1, beta2, d["eps"],
                                                   d["weight_decay"], cls == "AdamW", s[3])
            assert_close(p.data, s[0], rtol=1e-5, atol=1e-6, step=step, param=i, **hp)
            assert_close(opt.state[id(p)]["exp_avg_sq"], s[2], rtol=1e-5, atol=1e-9, step=step, param=i)
    assert opt.state[id(params[0])]["step"] == 8


@needs_torch
@pytest.mark.parametrize("hp", HPS, ids=case_id)
def test_adam_matches_torch_with_a_schedule(hp, rng):
    cls, kw = _split(hp)
    params = optimizer_params(rng)
    tparams = [torch.tensor(p.data, requires_grad=True) for p in params]
    opt, topt = getattr(optim, cls)(params, **kw), getattr(torch.optim, cls)(tparams, **kw)
    schedulers = [(optim.StepLR(opt, 3, gamma=0.5), torch.optim.lr_scheduler.StepLR(topt, 3, gamma=0.5))]
    check_optimizer_tracks_torch(opt, topt, params, tparams, rng, 8, schedulers, **hp)


def test_adam_validation_frozen_and_state_dict(rng):
    params = optimizer_params(rng)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        optim.Adam(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="learning rate"):
        optim.AdamW(params, lr=-1)
    params[1].requires_grad = False
    before = params[1].data.copy()
    opt = optim.AdamW(params, lr=0.1)
    for p in params:
        p.grad[...] = 1
    opt.step()
    np.testing.assert_array_equal(params[1].data, before)
    sd = opt.state_dict()
    assert sd["state"][0]["step"] == 1 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    opt2 = optim.AdamW(params, lr=0.1)
    opt2.load_state_dict(sd)
    assert opt2.state[id(params[0])]["step"] == 1
    np.testing.assert_array_equal(opt2.state[id(params[0])]["exp_avg"], opt.state[id(params[0])]["exp_avg"])
    with pytest.raises(TypeError, match="exp_avg"):
        F.adam_step(params[0].data, params[0].grad, np.zeros(params[0].shape), np.zeros(params[0].shape, np.float32),
                    None, 1, 0.1)


# ---------------------------------------------------------------------------
# schedulers
# ---------------------------------------------------------------------------

def _opt(lr=0.1):
    return optim.SGD([nn.Parameter(np.zeros(3, np.float32))], lr=lr, momentum=0.9)


def _lrs(sched, opt, epochs):
    out = [opt.param_groups[0]["lr"]]
    for _ in range(epochs):
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def test_closed_forms():
    opt = _opt()
    assert _lrs(optim.StepLR(opt, 2, gamma=0.5), opt, 5) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    opt = _opt()
    lrs = _lrs(optim.CosineAnnealingLR(opt, 4, eta_min=0.01), opt, 4)
    assert lrs == pytest.approx([0.01 + 0.09 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)])
    opt = _opt()
    assert _lrs(optim.LinearLR(opt, 0.25, 1.0, 3), opt, 4) == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])
    opt = _opt()
    assert _lrs(optim.MultiStepLR(opt, [1, 3]), opt, 3) == pytest.approx([0.1, 0.01, 0.01, 0.001])
    assert opt.param_groups[0]["initial_lr"] == 0.1
    with pytest.raises(ValueError, match="milestones"):
        optim.SequentialLR(opt, [optim.StepLR(opt, 1)], milestones=[2])


SCHEDULES = {
    "step": lambda m, o: m.StepLR(o, 3, gamma=0.3),
    "multistep": lambda m, o: m.MultiStepLR(o, [2, 5, 6], gamma=0.5),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, 7, eta_min=0.001),
    "linear": lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=4),
    "lambda": lambda m, o: m.LambdaLR(o, lambda e: 0.9 ** e),
    "warmup+cosine": lambda m, o: m.SequentialLR(o, [m.LinearLR(o, 0.1, total_iters=2),
                                                     m.CosineAnnealingLR(o, 8)], milestones=[2]),
}


@needs_torch
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedulers_match_torch(name):
    opt = _opt(0.2)
    topt = torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=0.2, momentum=0.9)
    sched = SCHEDULES[name](optim, opt)
    tsched = SCHEDULES[name](torch.optim.lr_scheduler, topt)
    for epoch in range(12):
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-9, abs=1e-12), (name, epoch)
        assert opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
