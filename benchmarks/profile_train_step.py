#!/usr/bin/env python3
"""Where the time of a ResNet-18 training step goes: pycnn per layer and pass, next to PyTorch.

    python benchmarks/profile_train_step.py                     # both configurations
    python benchmarks/profile_train_step.py --config cifar      # 32x32, batch 32, 10 classes
    python benchmarks/profile_train_step.py --config imagenet   # 224x224, batch 8, 1000 classes
    python benchmarks/profile_train_step.py --steps 15 --cprofile --layers --json out.json

One training step is what ``python -m pycnn bench`` times: forward,
CrossEntropy, backward, SGD step (momentum 0.9) -- pycnn through
:class:`pycnn.train.Trainer`, PyTorch as ``zero_grad; cross_entropy(model(x),
y).backward(); step`` on a copy of the same weights
(:func:`pycnn.bench.resnet.torch_copy`). Both run at ``--threads`` (default
2). Four measurements, all medians, the two libraries interleaved step by
step in one process so a noisy phase of the machine hits both alike:

1. **Step**: the un-instrumented step of each library (what the bench
   reports).
2. **Per layer and pass** (instrumented steps). pycnn: every module's
   ``forward`` / ``_forward`` / ``backward`` and every ``pycnn._core`` call
   is wrapped with a timer; a core call is charged to the innermost module
   running, so a convolution's backward shows as ``bwd_data``
   (``conv2d_bwd_data``) and ``bwd_weight`` (``conv2d_bwd_weight``), and what
   a module spends outside core calls and its children (Python, NumPy: a
   Residual's add) is its ``self`` time. The optimiser's ``zero_grad`` and
   ``step`` and the loss are rows of their own. PyTorch:
   ``torch.autograd.profiler`` with a ``record_function`` around every leaf
   module's forward (forward hooks); each backward node is charged to the
   layer whose forward op has its ``sequence_nr``, so rows carry the same
   module names (torchvision's). A convolution's backward is one node in
   PyTorch (data and weight together). The profiler costs PyTorch a few
   microseconds per op, so instrumented totals are slightly above (1).
3. **Convolutions in isolation** (``--no-conv`` skips): every distinct
   convolution of the network, replayed with the exact arguments the step
   used, forward, backward-data and backward-weight separately in both
   libraries (PyTorch: ``aten.convolution_backward`` with one output mask
   at a time, and both together). This splits PyTorch's backward.
4. ``--cprofile``: the pycnn step under cProfile, the top functions by own
   time, and the share of the step not spent in ``_core`` calls.

The report: the step medians, the 10 largest pycnn costs (layer, pass) with
their PyTorch counterparts, the costs grouped by kind (conv fwd / bwd_data /
bwd_weight, BatchNorm, ReLU, add, pooling, loss, SGD, zero_grad, Python),
``--layers`` the full per-layer table, the isolated convolutions, and the CPU
time other processes used meanwhile ("busy": 1.0 = another process held a
core; numbers measured busy are not worth much on a 2-core machine). Every
median is taken over *quiet* rounds only: a round (one step of each library,
or one call of each convolution variant) is kept when other processes used
under ``--max-busy`` cores (default 0.25) while it ran; up to 3x the rounds
run to find enough, and the report says NOISY when there were too few.
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import io
import json
import os
import pstats
import re
import resource
import statistics
import sys
import time
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Tuple

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # NumPy's BLAS threads would spin on pycnn's cores

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pycnn  # noqa: E402
from pycnn import _core, nn, optim  # noqa: E402
from pycnn.bench import resnet as rn  # noqa: E402
from pycnn.bench.timing import OtherLoad  # noqa: E402
from pycnn.train import Trainer  # noqa: E402

CONFIGS = {"cifar": (32, 32, 10), "imagenet": (224, 8, 1000)}  # size, batch, classes

Key = Tuple[str, str]  # (layer, pass)

# --------------------------------------------------------------------------- pycnn instrumentation

# The pass a core call counts as.
_CORE_PASS = {
    "conv2d_fwd": "fwd", "conv2d_bwd_data": "bwd_data", "conv2d_bwd_weight": "bwd_weight",
    "batch_norm_fwd_train": "fwd", "batch_norm_fwd_eval": "fwd", "batch_norm_bwd": "bwd",
    "activation_fwd": "fwd", "activation_bwd": "bwd", "max_pool2d_fwd": "fwd", "max_pool2d_bwd": "bwd",
    "adaptive_avg_pool2d_fwd": "fwd", "adaptive_avg_pool2d_bwd": "bwd", "linear_fwd": "fwd",
    "linear_bwd_data": "bwd_data", "linear_bwd_weight": "bwd_weight", "cross_entropy_fwd": "fwd",
    "cross_entropy_bwd": "bwd", "sgd_step": "step",
}


class PycnnProfiler:
    """Wraps a pycnn model's modules and the ``_core`` functions with timers (see the module docstring)."""

    def __init__(self, model: nn.Module, trainer: Trainer) -> None:
        self.model, self.trainer = model, trainer
        self.stack: List[List[Any]] = []  # [name, phase, t_start, child_time]
        self.times: Dict[Key, float] = defaultdict(float)
        self.calls: List[Tuple[str, str, Tuple[Any, ...]]] = []  # (layer, core fn, args) when recording
        self.record_calls = False
        self._undo: List[Callable[[], None]] = []

    # Every timed region adds its wall time to its parent's child_time, so self time = total - children.
    def _enter(self, name: str, phase: str) -> None:
        self.stack.append([name, phase, time.perf_counter(), 0.0])

    def _exit(self, self_key: Optional[Key]) -> None:
        name, phase, t0, child = self.stack.pop()
        dt = time.perf_counter() - t0
        if self_key is not None:
            self.times[self_key] += dt - child
        if self.stack:
            self.stack[-1][3] += dt

    def _wrap_core(self, fname: str) -> None:
        fn = getattr(_core, fname)
        pas = _CORE_PASS.get(fname, fname)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            layer = self.stack[-1][0] if self.stack else "(top)"
            if self.record_calls:
                self.calls.append((layer, fname, args))
            self._enter(layer, pas)
            try:
                return fn(*args, **kwargs)
            finally:
                self._exit((layer, pas))

        setattr(_core, fname, wrapped)
        self._undo.append(lambda: setattr(_core, fname, fn))

    def _wrap_method(self, obj: Any, attr: str, name: str, phase: str) -> None:
        fn = getattr(obj, attr)

        @functools.wraps(fn)  # keeps the signature (container.call_backward inspects backward's)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if self.stack and self.stack[-1][0] == name:  # forward -> _forward of one module: one region
                return fn(*args, **kwargs)
            self._enter(name, phase)
            try:
                return fn(*args, **kwargs)
            finally:
                self._exit((name, "self_" + phase))

        object.__setattr__(obj, attr, wrapped)
        self._undo.append(lambda: obj.__dict__.pop(attr, None))

    def install(self) -> None:
        for fname in dir(_core):
            if fname in _CORE_PASS or fname.startswith(("conv2d_", "batch_norm_", "linear_")):
                if callable(getattr(_core, fname)) and not isinstance(getattr(_core, fname), type):
                    self._wrap_core(fname)
        for name, m in self.model.named_modules():
            name = name or "(model)"
            for attr, phase in (("forward", "fwd"), ("_forward", "fwd"), ("_record", "fwd"),
                                ("backward", "bwd")):
                if hasattr(m, attr):
                    self._wrap_method(m, attr, name, phase)
        tr = self.trainer
        self._wrap_method(tr.loss_fn, "forward", "loss", "fwd")
        self._wrap_method(tr.loss_fn, "backward", "loss", "bwd")
        self._wrap_method(tr.optimizer, "zero_grad", "optim.zero_grad", "step")
        self._wrap_method(tr.optimizer, "step", "optim.step", "step")

    def uninstall(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def step(self, x: np.ndarray, y: np.ndarray) -> Tuple[float, Dict[Key, float]]:
        """One instrumented training step -> (wall seconds, {(layer, pass): seconds})."""
        self.times = defaultdict(float)
        self._enter("(step)", "step")
        self.trainer.train_step(x, y)
        self._exit(("(step)", "self_step"))
        total = sum(self.times.values())
        return total, dict(self.times)


# --------------------------------------------------------------------------- torch instrumentation

def torch_step_fn(torch: Any, tmodel: Any, x: Any, y: Any) -> Tuple[Callable[[], Any], Any]:
    opt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)

    def step() -> Any:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tmodel(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, opt


class TorchProfiler:
    """Per-layer times of a PyTorch step from ``torch.autograd.profiler`` (see the module docstring)."""

    def __init__(self, torch: Any, tmodel: Any, opt: Any, x: Any, y: Any) -> None:
        self.torch, self.tmodel, self.opt, self.x, self.y = torch, tmodel, opt, x, y
        rf = torch.autograd.profiler.record_function
        self._open: Dict[int, List[Any]] = defaultdict(list)
        self.handles = []
        for name, m in tmodel.named_modules():
            if not name or (list(m.children()) and not name.count(".") == 1):
                continue  # leaves, and blocks (layerX.Y: their own op is the residual add)

            def pre(mod: Any, inp: Any, name: str = name) -> None:
                r = rf("fwd::" + name)
                r.__enter__()
                self._open[id(mod)].append(r)

            def post(mod: Any, inp: Any, out: Any) -> None:
                self._open[id(mod)].pop().__exit__(None, None, None)

            self.handles.append(m.register_forward_pre_hook(pre))
            self.handles.append(m.register_forward_hook(post))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def step(self) -> Tuple[float, Dict[Key, float]]:
        torch, rf = self.torch, self.torch.autograd.profiler.record_function
        with torch.autograd.profiler.profile(record_shapes=False) as prof:
            with rf("step::zero_grad"):
                self.opt.zero_grad()
            out = self.tmodel(self.x)
            with rf("fwd::loss"):
                loss = torch.nn.functional.cross_entropy(out, self.y)
            with rf("step::backward"):
                loss.backward()
            with rf("step::step"):
                self.opt.step()
        return self._attribute(prof.function_events)

    @staticmethod
    def _region(e: Any) -> Optional[str]:
        p = e.cpu_parent
        while p is not None:
            if p.name.startswith(("fwd::", "step::")):
                return p.name
            p = p.cpu_parent
        return None

    def _attribute(self, events: Any) -> Tuple[float, Dict[Key, float]]:
        times: Dict[Key, float] = defaultdict(float)
        seq_layer: Dict[int, str] = {}
        dur = lambda e: (e.time_range.end - e.time_range.start) * 1e-6  # noqa: E731
        regions = {}
        for e in events:
            if e.name.startswith(("fwd::", "step::")):
                regions[e.id] = e
        # Self time of each forward region (nested regions: a block contains its convolutions).
        for e in regions.values():
            if not e.name.startswith("fwd::"):
                continue
            child = sum(dur(c) for c in _descendant_regions(e))
            times[(e.name[5:], "fwd")] += dur(e) - child
        for e in events:
            if e.sequence_nr >= 0 and not e.name.startswith("autograd::") and e.fwd_thread is not None:
                r = self._region(e)
                if r is not None and r.startswith("fwd::") and e.sequence_nr not in seq_layer:
                    seq_layer[e.sequence_nr] = r[5:]
        for e in events:
            if e.name.startswith("autograd::engine::evaluate_function: "):
                node = e.name.split(": ", 1)[1]
                if "AccumulateGrad" in node:
                    times[("autograd", "accumulate_grad")] += dur(e)
                    continue
                layer = seq_layer.get(e.sequence_nr, "(other)")
                times[(layer, "bwd")] += dur(e)
        for e in regions.values():
            if e.name == "step::zero_grad":
                times[("optim.zero_grad", "step")] += dur(e)
            elif e.name == "step::step":
                times[("optim.step", "step")] += dur(e)
        total_bwd = sum(dur(e) for e in regions.values() if e.name == "step::backward")
        attributed_bwd = sum(v for (k, p), v in times.items() if p == "bwd" or p == "accumulate_grad")
        times[("autograd", "engine")] += total_bwd - attributed_bwd
        return sum(times.values()), dict(times)


def _descendant_regions(e: Any) -> List[Any]:
    """The outermost fwd:: regions nested inside region ``e``."""
    out, todo = [], list(e.cpu_children)
    while todo:
        c = todo.pop()
        if c.name.startswith("fwd::"):
            out.append(c)
        else:
            todo.extend(c.cpu_children)
    return out


# --------------------------------------------------------------------------- categories

def pycnn_kind(layer: str, pas: str, modules: Dict[str, Any]) -> str:
    if layer == "optim.step":
        return "SGD step"
    if layer == "optim.zero_grad":
        return "zero_grad" if pas == "self_step" else "zero_grad"
    if layer == "loss":
        return "loss" if not pas.startswith("self") else "python"
    if layer in ("(step)", "(top)"):
        return "python"
    m = modules.get(layer)
    t = type(m).__name__ if m is not None else ""
    if pas.startswith("self"):
        if t == "BasicBlock":
            return "residual add/relu (numpy)"
        return "python"
    if t == "Conv2d":
        return "conv " + pas
    if t.startswith("BatchNorm"):
        return "BatchNorm " + pas
    if t == "ReLU" or (t == "BasicBlock" and pas == "bwd"):
        return "ReLU " + pas
    if "Pool" in t:
        return t + " " + pas
    if t == "Linear":
        return "fc"
    return f"{t} {pas}"


def torch_kind(layer: str, pas: str, tmodules: Dict[str, Any]) -> str:
    if layer == "optim.step":
        return "SGD step"
    if layer == "optim.zero_grad":
        return "zero_grad"
    if layer == "autograd":
        return "autograd " + pas
    if layer == "loss":
        return "loss"
    m = tmodules.get(layer)
    t = type(m).__name__ if m is not None else layer
    if t == "Conv2d":
        return "conv " + pas
    if t.startswith("BatchNorm"):
        return "BatchNorm " + pas
    if t == "ReLU":
        return "ReLU " + pas
    if t == "BasicBlock":
        return "residual add " + pas
    if "Pool" in t:
        return t + " " + pas
    if t == "Linear":
        return "fc"
    return f"{t} {pas}"


# --------------------------------------------------------------------------- convolutions in isolation

def conv_cases(calls: List[Tuple[str, str, Tuple[Any, ...]]]) -> List[Dict[str, Any]]:
    """The distinct convolutions of one recorded step, with the layers that have them and their arguments."""
    cases: Dict[Tuple[Any, ...], Dict[str, Any]] = {}
    for layer, fname, args in calls:
        if fname != "conv2d_fwd":
            continue
        x, w, _b, stride, pads, dil, groups, algo = args[:8]
        key = (x.shape, w.shape, tuple(stride), tuple(pads))
        c = cases.setdefault(key, dict(layers=[], x=x.copy(), w=w.copy(), stride=tuple(stride),
                                       pads=tuple(pads), dilation=tuple(dil), groups=groups, algo=algo))
        c["layers"].append(layer)
    return list(cases.values())


class Rounds:
    """Repeats a measurement round, keeping the rounds during which other processes stayed quiet.

    A round is kept when other processes used less than ``max_busy`` cores while it ran (on a shared
    2-core machine, a round during which another process held a core measures the scheduler, not the
    code). Rounds run until ``n`` are kept or ``3 n`` have run; if fewer than ``n`` were kept, the
    quietest ``n`` are used and ``noisy`` is set.
    """

    def __init__(self, max_busy: float) -> None:
        self.max_busy = max_busy
        self.kept_total = self.run_total = 0
        self.noisy = False

    def run(self, one_round: Callable[[], Any], n: int) -> List[Any]:
        got: List[Tuple[float, Any]] = []
        for _ in range(3 * n):
            load = OtherLoad()
            load.start()
            r = one_round()
            busy = load.stop() or 0.0
            got.append((busy, r))
            if sum(1 for b, _ in got if b < self.max_busy) >= n:
                break
        quiet = [r for b, r in got if b < self.max_busy]
        self.run_total += len(got)
        if len(quiet) < n:
            self.noisy = True
            quiet = [r for _, r in sorted(got, key=lambda br: br[0])[:n]]
        self.kept_total += len(quiet)
        return quiet


ROUNDS = Rounds(0.25)


def time_interleaved(fns: Dict[str, Callable[[], Any]], reps: int, settle_s: float = 0.005) -> Dict[str, float]:
    """Median seconds of each callable over ``reps`` quiet interleaved rounds (two warm-up calls each)."""
    for fn in fns.values():
        fn(), fn()
    names = list(fns)
    state = {"r": 0}

    def one_round() -> Dict[str, float]:
        r = state["r"]
        state["r"] += 1
        out = {}
        for k in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(settle_s)
            t0 = time.perf_counter()
            fns[k]()
            out[k] = time.perf_counter() - t0
        return out

    rounds = ROUNDS.run(one_round, reps)
    return {k: statistics.median(r[k] for r in rounds) for k in names}


def bench_convs(torch: Any, cases: List[Dict[str, Any]], reps: int) -> List[Dict[str, Any]]:
    rows = []
    for c in cases:
        x, w = c["x"], c["w"]
        stride, pads, dil, groups, algo = c["stride"], c["pads"], c["dilation"], c["groups"], c["algo"]
        y = _core.conv2d_fwd(x, w, None, stride, pads, dil, groups, algo, False)
        dy = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
        gw = np.zeros_like(w)
        fns: Dict[str, Callable[[], Any]] = {
            "p_fwd": lambda: _core.conv2d_fwd(x, w, None, stride, pads, dil, groups, algo, False),
            "p_bwd_data": lambda: _core.conv2d_bwd_data(dy, w, x.shape, stride, pads, dil, groups, algo),
            "p_bwd_weight": lambda: _core.conv2d_bwd_weight(dy, x, gw, None, stride, pads, dil, groups, algo),
        }
        algo_used = _core.conv2d_resolve_algo(x.shape, w.shape, stride, pads, dil, groups, algo)
        if algo_used == "winograd":  # what the other algorithm would take
            fns["p_fwd_im2col"] = lambda: _core.conv2d_fwd(x, w, None, stride, pads, dil, groups, "im2col", False)
            fns["p_bwd_data_im2col"] = lambda: _core.conv2d_bwd_data(dy, w, x.shape, stride, pads, dil, groups,
                                                                     "im2col")
        # The weight gradient as one GEMM over the whole batch, dW (K x R) = dY (K x N*P) . col (N*P x R), with
        # the column matrix already built: the GEMM alone, what a batched weight gradient would cost at least.
        K, R, NP = w.shape[0], int(np.prod(w.shape[1:])), y.shape[0] * y.shape[2] * y.shape[3]
        ga = np.random.default_rng(1).standard_normal((K, NP)).astype(np.float32)
        gb = np.random.default_rng(2).standard_normal((NP, R)).astype(np.float32)
        gc_ = np.zeros((K, R), np.float32)
        fns["p_gemm_bwd_weight"] = lambda: _core.sgemm(ga, gb, False, False, 1.0, 1.0, gc_)
        # One image of the batch: what a call costs whatever the batch size (per-call packing, scratch, reductions).
        x1, dy1 = x[:1].copy(), dy[:1].copy()
        fns["p_bwd_weight_n1"] = lambda: _core.conv2d_bwd_weight(dy1, x1, gw, None, stride, pads, dil, groups, algo)
        fns["p_bwd_data_n1"] = lambda: _core.conv2d_bwd_data(dy1, w, x1.shape, stride, pads, dil, groups, algo)
        if torch is not None:
            xt, wt, dyt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(dy)
            pad = (pads[0], pads[2])
            cb = torch.ops.aten.convolution_backward

            def tb(mask: List[bool]) -> Callable[[], Any]:
                return lambda: cb(dyt, xt, wt, None, list(stride), list(pad), list(dil), False, [0, 0], groups, mask)

            fns.update({"t_fwd": lambda: torch.nn.functional.conv2d(xt, wt, None, stride, pad, dil, groups),
                        "t_bwd_data": tb([True, False, False]), "t_bwd_weight": tb([False, True, False]),
                        "t_bwd_both": tb([True, True, False])})
        med = time_interleaved(fns, reps)
        rows.append(dict(layers=c["layers"], x=list(x.shape), w=list(w.shape), stride=list(stride),
                         pads=list(pads), algo=algo_used, **{k: v * 1e3 for k, v in med.items()}))
    return rows


# --------------------------------------------------------------------------- report

def ms(v: Optional[float]) -> str:
    return "-" if v is None else f"{v * 1e3:8.2f}"


def median_table(samples: List[Dict[Key, float]]) -> Dict[Key, float]:
    keys = set().union(*samples) if samples else set()
    return {k: statistics.median(s.get(k, 0.0) for s in samples) for k in keys}


_TORCH_PASS = {"fwd": "fwd", "self_fwd": "fwd", "bwd": "bwd", "bwd_data": "bwd", "bwd_weight": "bwd",
               "self_bwd": "bwd", "step": "step", "self_step": "step"}


def report(cfg: str, res: Dict[str, Any], layers: bool, top: int) -> None:
    size, batch, classes = CONFIGS[cfg]
    p: Dict[Key, float] = res["pycnn"]
    t: Dict[Key, float] = res.get("torch", {})
    pmods, tmods = res["pmods"], res.get("tmods", {})
    print(f"\n=== ResNet-18 training step {size}x{size}, batch {batch}, {classes} classes, "
          f"{res['threads']} threads ===")
    st = res["step"]
    line = f"step (un-instrumented median of {res['steps']}): pycnn {st['pycnn'] * 1e3:.1f} ms"
    if "torch" in st:
        line += f", torch {st['torch'] * 1e3:.1f} ms, pycnn/torch = {st['pycnn'] / st['torch']:.2f}x time"
    print(line)
    print("minor page faults per step: " + ", ".join(f"{k} {v:.0f}" for k, v in res["faults"].items()))
    print(f"instrumented step totals (median): pycnn {res['pycnn_total'] * 1e3:.1f} ms"
          + (f", torch {res['torch_total'] * 1e3:.1f} ms" if t else "")
          + f"; other processes used {res['busy']:.2f} cores on average; medians over {res['kept']} of "
          f"{res['run']} rounds (those with other processes under {ROUNDS.max_busy} cores)"
          + (" -- NOISY: too few quiet rounds, the quietest used" if res["noisy"] else ""))

    # pycnn rows at (layer, pass); torch counterpart at (layer, fwd|bwd)
    def torch_of(layer: str, pas: str) -> Optional[float]:
        if not t:
            return None
        return t.get((layer, _TORCH_PASS.get(pas, pas)))

    rows = sorted(p.items(), key=lambda kv: -kv[1])
    print(f"\nTop {top} pycnn costs (layer, pass) and PyTorch's same layer and pass "
          "(PyTorch's conv backward is data + weight in one node; split in the conv table below)")
    print(f"{'layer':28s} {'pass':12s} {'kind':22s} {'pycnn ms':>9s} {'torch ms':>9s}")
    for (layer, pas), v in rows[:top]:
        print(f"{layer:28s} {pas:12s} {pycnn_kind(layer, pas, pmods):22s} {ms(v)} {ms(torch_of(layer, pas))}")

    kinds_p: Dict[str, float] = defaultdict(float)
    for (layer, pas), v in p.items():
        kinds_p[pycnn_kind(layer, pas, pmods)] += v
    kinds_t: Dict[str, float] = defaultdict(float)
    for (layer, pas), v in t.items():
        kinds_t[torch_kind(layer, pas, tmods)] += v
    print("\nBy kind (sum over layers of the per-layer medians), ms")
    print(f"{'pycnn kind':28s} {'ms':>8s}   {'torch kind':28s} {'ms':>8s}")
    pk = sorted(kinds_p.items(), key=lambda kv: -kv[1])
    tk = sorted(kinds_t.items(), key=lambda kv: -kv[1])
    for i in range(max(len(pk), len(tk))):
        a = f"{pk[i][0]:28s} {ms(pk[i][1])}" if i < len(pk) else " " * 37
        b = f"{tk[i][0]:28s} {ms(tk[i][1])}" if i < len(tk) else ""
        print(f"{a}   {b}")

    if layers:
        print("\nEvery layer: pycnn fwd, bwd (bwd_data + bwd_weight for convs), self = Python/NumPy outside "
              "core calls; torch fwd, bwd; ms")
        names = [n or "(model)" for n in pmods] + ["loss", "optim.zero_grad", "optim.step"]
        print(f"{'layer':28s} {'p fwd':>8s} {'p bwd':>8s} {'p bwd_d':>8s} {'p bwd_w':>8s} {'p self':>8s}"
              f" {'t fwd':>8s} {'t bwd':>8s}")
        for n in names:
            pf = p.get((n, "fwd"))
            pb = p.get((n, "bwd"))
            pd, pw = p.get((n, "bwd_data")), p.get((n, "bwd_weight"))
            ps = sum(v for (ln, pas), v in p.items() if ln == n and pas.startswith("self")) or None
            if n.startswith("optim"):
                pf = p.get((n, "step"))
            tf, tb = t.get((n, "fwd")), t.get((n, "bwd"))
            if n.startswith("optim"):
                tf = t.get((n, "step"))
            if all(v is None or v < 5e-6 for v in (pf, pb, pd, pw, ps, tf, tb)):
                continue
            print(f"{n:28s} {ms(pf)} {ms(pb)} {ms(pd)} {ms(pw)} {ms(ps)} {ms(tf)} {ms(tb)}")

    if res.get("convs"):
        print("\nConvolutions in isolation (same arguments as in the step), medians in ms. n: layers with this "
              "shape; 'gemm W' is pycnn's sgemm of the whole batch's weight gradient, dW(K x R) = dY(K x NP) . "
              "col(NP x R), column matrix given (a floor for a batched bwd_weight); 'N=1': the same call on the "
              "batch's first image only (a cost that does not scale with the batch); '(im2col)': auto's other choice")
        hdr = (f"{'x':>14s} {'w':>14s} {'s':>1s} {'algo':>8s} {'n':>1s} | {'p fwd':>6s} {'t fwd':>6s} |"
               f" {'p bwdD':>6s} {'t bwdD':>6s} | {'p bwdW':>6s} {'t bwdW':>6s} {'gemm W':>6s} | {'t both':>6s} |"
               f" {'p/t':>5s} | {'bwdD N=1':>8s} {'bwdW N=1':>8s} | {'fwd(im2col)':>11s} {'bwdD(im2col)':>12s}")
        print(hdr)
        tot_p = tot_t = 0.0
        nan = float("nan")
        for r in res["convs"]:
            n = len(r["layers"])
            pa = r["p_fwd"] + r["p_bwd_data"] + r["p_bwd_weight"]
            ta = r.get("t_fwd", 0) + r.get("t_bwd_both", 0)
            tot_p += n * pa
            tot_t += n * ta
            alt = (f"{r['p_fwd_im2col']:11.2f} {r['p_bwd_data_im2col']:12.2f}" if "p_fwd_im2col" in r else "")
            print(f"{'x'.join(map(str, r['x'])):>14s} {'x'.join(map(str, r['w'])):>14s} {r['stride'][0]:1d} "
                  f"{r['algo']:>8s} {n:1d} | {r['p_fwd']:6.2f} {r.get('t_fwd', nan):6.2f} |"
                  f" {r['p_bwd_data']:6.2f} {r.get('t_bwd_data', nan):6.2f} |"
                  f" {r['p_bwd_weight']:6.2f} {r.get('t_bwd_weight', nan):6.2f} {r['p_gemm_bwd_weight']:6.2f} |"
                  f" {r.get('t_bwd_both', nan):6.2f} | {pa / ta if ta else nan:4.2f}x |"
                  f" {r['p_bwd_data_n1']:8.2f} {r['p_bwd_weight_n1']:8.2f} | {alt}")
        print(f"all convolutions of one step (sum of n x (fwd + bwd_data + bwd_weight)): pycnn {tot_p:.1f} ms, "
              f"torch {tot_t:.1f} ms (p/t: pycnn time / torch time)")

    if res.get("cprofile"):
        print("\n" + res["cprofile"])


def run_config(cfg: str, args: argparse.Namespace, torch: Any) -> Dict[str, Any]:
    size, batch, classes = CONFIGS[cfg]
    model = rn.pycnn_resnet18(classes)
    model.train()
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    x, y = rn.random_batch(batch, size, classes)
    fns: Dict[str, Callable[[], Any]] = {"pycnn": lambda: trainer.train_step(x, y)}
    tstep = tprof = None
    if torch is not None:
        tmodel = rn.torch_copy(torch, rn.pycnn_resnet18(classes), classes).train()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        tstep, topt = torch_step_fn(torch, tmodel, xt, yt)
        fns["torch"] = tstep
    load = OtherLoad()
    load.start()
    ROUNDS.kept_total = ROUNDS.run_total = 0
    ROUNDS.noisy = False
    # 1. un-instrumented steps
    med = time_interleaved(fns, args.steps, settle_s=0.02)
    # Minor page faults per step: fresh memory the kernel must zero and map (see pycnn's buffer cache).
    faults = {}
    for name, fn in fns.items():
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(3):
            fn()
        faults[name] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 3
    # 2. instrumented steps, interleaved
    prof = PycnnProfiler(model, trainer)
    prof.install()
    if torch is not None:
        tprof = TorchProfiler(torch, tmodel, topt, xt, yt)
    p_samples, t_samples, p_tot, t_tot = [], [], [], []
    prof.step(x, y)
    if tprof is not None:
        tprof.step()

    def one_round() -> Tuple[Any, ...]:
        time.sleep(0.02)
        pt, ps = prof.step(x, y)
        if tprof is None:
            return pt, ps, None, None
        time.sleep(0.02)
        return (pt, ps) + tprof.step()

    gc.disable()
    for pt, ps, tt, ts in ROUNDS.run(one_round, args.steps):
        p_samples.append(ps)
        p_tot.append(pt)
        if tt is not None:
            t_samples.append(ts)
            t_tot.append(tt)
    gc.enable()
    prof.record_calls = True
    prof.step(x, y)
    prof.record_calls = False
    calls = prof.calls
    prof.uninstall()
    if tprof is not None:
        tprof.remove()
    res: Dict[str, Any] = dict(
        step=med, faults=faults, steps=args.steps, threads=args.threads, pycnn=median_table(p_samples),
        pycnn_total=statistics.median(p_tot), pmods=dict(model.named_modules()))
    if tprof is not None:
        res.update(torch=median_table(t_samples), torch_total=statistics.median(t_tot),
                   tmods=dict(tmodel.named_modules()))
    # 3. convolutions in isolation
    if not args.no_conv:
        res["convs"] = bench_convs(torch, conv_cases(calls), args.conv_reps)
    # 4. cProfile
    if args.cprofile:
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(3):
            trainer.train_step(x, y)
        pr.disable()
        out = io.StringIO()
        st = pstats.Stats(pr, stream=out)
        stats: Dict[Any, Any] = getattr(st, "stats")  # {(file, line, name): (cc, nc, own, cum, callers)}
        total = sum(v[2] for v in stats.values())  # own time of every function
        core = sum(v[2] for k, v in stats.items() if k[2].startswith("<built-in method pycnn._core."))
        st.sort_stats("tottime").print_stats(args.top * 2)
        text = out.getvalue()
        text = text[text.find("   ncalls"):] if "   ncalls" in text else text
        res["cprofile"] = (f"cProfile, 3 steps: {total:.3f} s of own time in all, {core:.3f} s in _core calls, "
                           f"{total - core:.3f} s ({(total - core) / 3 * 1e3:.1f} ms per step) elsewhere "
                           f"(Python, NumPy)\n" + re.sub(r"/\S*/pycnn/", "pycnn/", text))
    res["busy"] = load.stop() or 0.0
    res.update(kept=ROUNDS.kept_total, run=ROUNDS.run_total, noisy=ROUNDS.noisy)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=["cifar", "imagenet", "both"], default="both")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=9, help="interleaved steps per measurement (default 9)")
    ap.add_argument("--conv-reps", type=int, default=7, help="rounds per isolated convolution (default 7)")
    ap.add_argument("--no-conv", action="store_true", help="skip the convolutions in isolation")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--cprofile", action="store_true", help="also run cProfile over 3 pycnn steps")
    ap.add_argument("--layers", action="store_true", help="print the full per-layer table")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--max-busy", type=float, default=0.25,
                    help="keep rounds during which other processes used fewer cores than this (default 0.25)")
    ap.add_argument("--json", help="write the medians to this file")
    args = ap.parse_args()
    pycnn.set_num_threads(args.threads)
    ROUNDS.max_busy = args.max_busy
    torch = None
    if not args.no_torch:
        try:
            import torch as torch_mod
            torch_mod.set_num_threads(args.threads)
            torch = torch_mod
        except ImportError:
            print("PyTorch not installed: pycnn only")
    print(f"pycnn {pycnn.__version__} isa {_core.isa()}, {args.threads} threads"
          + (f"; PyTorch {torch.__version__}" if torch is not None else ""))
    out = {}
    for cfg in (["cifar", "imagenet"] if args.config == "both" else [args.config]):
        res = run_config(cfg, args, torch)
        report(cfg, res, args.layers, args.top)
        out[cfg] = {k: ({f"{a}|{b}": v for (a, b), v in res[k].items()} if k in ("pycnn", "torch") else res[k])
                    for k in ("step", "pycnn", "torch", "convs", "busy", "pycnn_total", "torch_total") if k in res}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
