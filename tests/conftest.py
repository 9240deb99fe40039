"""Shared test helpers.

Tolerances: pycnn computes in float32, the oracle (pycnn.reference) in
float64 on the same (float32-representable) inputs. Each float32 rounding
contributes ~6e-8 relative error, and a sum of L terms accumulates about
sqrt(L) to L of them, so comparisons use rtol ~1e-4 and an atol scaled by the
reduction length (see ``tol``) -- loose enough for any summation order or
blocking the kernels pick, tight enough that a wrong tap, index or factor
(an O(1) error) fails.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from pycnn import reference as ref  # noqa: F401  (re-exported for tests: `from conftest import ref`)

try:
    import torch
except ImportError:  # torch is an optional second oracle: its tests skip without it
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")


def f64(a):
    """a as float64 (None stays None): the precision the reference computes in."""
    return None if a is None else np.asarray(a, dtype=np.float64)


def tol(reduction_length: int = 1, rtol: float = 1e-4, atol: float = 1e-5):
    """rtol/atol for float32 vs float64 when each output sums ``reduction_length`` products of O(1) terms."""
    scale = math.sqrt(max(1, reduction_length))
    return dict(rtol=rtol, atol=atol * scale)


def assert_close(actual, expected, rtol: float = 1e-4, atol: float = 1e-5, **context):
    """np.allclose with a failure message listing ``context`` and the max abs/rel errors and where."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    ctx = ", ".join(f"{k}={v!r}" for k, v in context.items())
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape} ({ctx})"
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    if np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
        return
    err = np.abs(a - e)
    err = np.where(np.isnan(a) & np.isnan(e), 0.0, err)
    err = np.where(np.isnan(err), np.inf, err)
    i = np.unravel_index(np.argmax(err - (atol + rtol * np.abs(e))), err.shape) if err.size else ()
    rel = err / np.maximum(np.abs(e), 1e-30)
    raise AssertionError(
        f"arrays differ ({ctx}): max abs err {err.max():.3g}, max rel err {rel.max():.3g}, "
        f"rtol={rtol}, atol={atol}; worst at {tuple(int(j) for j in i)}: actual {a[i]!r} expected {e[i]!r}")


def assert_step_matches_torch(model, tmodel, x, dy, rtol: float = 1e-4, atol: float = 1e-5,
                              grad_atol: float = 1e-4):
    """One forward and backward of a pycnn model and of its PyTorch twin (same weights) on ``x`` and
    output gradient ``dy``: outputs, input gradients and every parameter's gradient agree (parameter
    gradients within ``rtol`` and ``grad_atol``)."""
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = tmodel(tx)
    ty.backward(torch.from_numpy(dy))
    y = model(x)
    dx = model.backward(dy)
    assert_close(y, ty.detach().numpy(), rtol=rtol, atol=atol)
    assert_close(dx, tx.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        assert_close(p.grad, tparams[name].grad.numpy(), rtol=rtol, atol=grad_atol, param=name)


def run_benchmark_script(name: str, args, cwd, timeout: float = 300) -> str:
    """Run benchmarks/<name> with ``args`` (a smoke test: no timing checked); its stdout. Skips outside a checkout."""
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / name
    if not script.is_file():
        pytest.skip("not running from a checkout")
    r = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout,
                       cwd=cwd, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout


def case_id(case: dict) -> str:
    """A readable pytest id from a dict of parameters."""
    return "-".join(f"{k}={v}".replace(" ", "") for k, v in case.items())


@pytest.fixture
def rng():
    """A fixed-seed generator: every test sees the same data on every run."""
    return np.random.default_rng(12345)


def f32(rng, *shape, scale=1.0):
    """Standard-normal float32 test data."""
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _supported_isas():
    from pycnn import _core

    return list(_core.supported_isas())


@pytest.fixture(params=_supported_isas(), ids=lambda s: f"isa={s}")
def isa(request):
    """Runs the test once per instruction set this CPU supports (scalar, avx2, avx512).

    Kernel test modules apply it to every test with
    ``pytestmark = pytest.mark.usefixtures("isa")``.
    """
    from pycnn import _core

    previous = _core.isa()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(previous)


@pytest.fixture(params=[1, 2], ids=lambda n: f"threads={n}")
def threads(request):
    """Runs the test with pycnn set to 1 and to 2 threads (the setting is restored afterwards)."""
    import pycnn

    old = pycnn.get_num_threads()
    pycnn.set_num_threads(request.param)
    yield request.param
    pycnn.set_num_threads(old)


def optimizer_params(rng):
    """Three pycnn Parameters of awkward shapes, for the optimiser tests."""
    from pycnn import nn

    return [nn.Parameter(f32(rng, 7, 3)), nn.Parameter(f32(rng, 11)), nn.Parameter(f32(rng, 2, 3, 3, 5))]


def check_optimizer_tracks_torch(opt, topt, params, tparams, rng, steps, schedulers=(), **context):
    """Feed pycnn's and torch's optimisers the same random gradients for `steps`
    steps (stepping each (pycnn, torch) scheduler pair after them); the
    parameters must agree after every step (float32 in another order: 1e-5)."""
    for step in range(steps):
        for p, tp in zip(params, tparams):
            g = f32(rng, *p.shape)
            p.grad[...] = g
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        for sched, tsched in schedulers:
            sched.step()
            tsched.step()
        for i, (p, tp) in enumerate(zip(params, tparams)):
            assert_close(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6, step=step, param=i, **context)
