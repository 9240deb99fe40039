"""Optimisers in PyTorch's vocabulary: ``opt = optim.SGD(model.parameters(), lr=0.05); opt.step()``.

An optimiser holds a list of :class:`pycnn.nn.Parameter` and updates their
``.data`` in place from their ``.grad`` (so the model's arrays stay the same
objects). Parameters with ``requires_grad=False`` are held but skipped.
There is one parameter group; ``param_groups`` exists so code that adjusts
``group["lr"]`` (learning-rate schedules written for PyTorch) works.
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from . import functional as F
from . import lr_scheduler
from ._checks import check_bool, check_real, is_int
from .lr_scheduler import (
    CosineAnnealingLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    SequentialLR,
    StepLR,
)
from .nn.parameter import Parameter

# The learning-rate schedulers live in pycnn.lr_scheduler and are re-exported
# here, as torch.optim.lr_scheduler is reachable from torch.optim.
__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR",
           "LinearLR", "SequentialLR", "LambdaLR"]


class Optimizer:
    """Base class: holds the parameters, per-parameter state and hyper-parameters (``defaults``).

    Subclasses implement :meth:`step`. ``params`` may be any iterable
    (e.g. the generator ``model.parameters()``); it is materialised once.
    """

    def __init__(self, params: Iterable[Parameter], defaults: Dict[str, Any]) -> None:
        if isinstance(params, Parameter):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Parameters, got a single Parameter (wrap it in a list)")
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"optimizer can only optimize nn.Parameter objects, but element {i} "
                                f"is a {type(p).__name__}")
        unique = list({id(p): p for p in params}.values())
        if len(unique) != len(params):
            # Stepping a parameter twice per step() is never what was meant.
            warnings.warn("optimizer was given duplicate parameters; each is updated once", stacklevel=3)
        self.defaults = dict(defaults)
        self.param_groups: List[Dict[str, Any]] = [dict(self.defaults, params=unique)]
        # Per-parameter state, keyed by id(param) (Parameters are not hashed by value).
        self.state: Dict[int, Dict[str, Any]] = {}

    @property
    def params(self) -> List[Parameter]:
        """The parameters this optimiser updates (frozen ones included, skipped by step)."""
        return self.param_groups[0]["params"]

    def zero_grad(self) -> None:
        """Fill every parameter's ``.grad`` with zeros in place (one parallel pass over all of them)."""
        F.zero_many([p.grad for p in self.params])

    def step(self) -> None:
        """Update the parameters from their ``.grad`` (implemented by subclasses)."""
        raise NotImplementedError

    def state_dict(self) -> Dict[str, Any]:
        """PyTorch's layout: ``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``."""
        index = {id(p): i for i, p in enumerate(self.params)}
        state = {index[pid]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for pid, s in self.state.items() if pid in index}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": list(range(len(self.params)))}
                  for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def _check_hyperparameters(self, group: Dict[str, Any]) -> Dict[str, Any]:
        """The hyper-parameters of ``group`` checked as the constructor checks them (subclasses)."""
        return group

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore hyper-parameters and per-parameter state saved by :meth:`state_dict`.

        The hyper-parameters are checked as the constructor checks them (a
        negative ``lr`` would ascend the gradient) and state indices must
        name parameters (0 to n - 1; -1 is not "the last one"). Nothing
        changes when a check fails.
        """
        op = f"{type(self).__name__}.load_state_dict"
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError(f"loaded state dict has {sum(len(g['params']) for g in groups)} parameters in "
                             f"{len(groups)} group(s); this optimizer has {len(self.params)} in 1")
        hyper = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        hyper.update((k, v) for k, v in groups[0].items() if k != "params")
        hyper = self._check_hyperparameters(hyper)
        new_state = {}
        for i, s in state_dict["state"].items():
            index = int(i) if isinstance(i, str) and i.isdigit() else i  # (keys that went through JSON)
            if not is_int(index) or not 0 <= index < len(self.params):
                raise ValueError(f"{op}: state index {i!r} does not name a parameter (0 to {len(self.params) - 1})")
            p = self.params[int(index)]
            if id(p) in new_state:
                raise ValueError(f"{op}: parameter {int(index)} has two state entries")
            entry = {}
            for k, v in s.items():
                if k.endswith("_buffer") or isinstance(v, np.ndarray) or hasattr(v, "numpy"):
                    # (np.array, not np.ascontiguousarray: that turns a 0-d parameter's state into 1-d)
                    a = np.array(np.asarray(v), dtype=np.float32, order="C", copy=True)
                    if a.shape != p.shape:
                        raise ValueError(f"state {k!r} of parameter {i} has shape {a.shape}, the "
                                         f"parameter has {p.shape}")
                    v = a
                entry[k] = v
            new_state[id(p)] = entry
        self.param_groups[0].update(hyper)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for k, v in self.param_groups[0].items():
            if k != "params":
                lines.append(f"    {k}: {v}")
        return "\n".join(lines) + "\n)"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, exactly PyTorch's ``torch.optim.SGD`` rule.

    ``g = grad + weight_decay * param``; with momentum ``buf = g`` on the
    first step, then ``buf = momentum * buf + (1 - dampening) * g``;
    ``g = g + momentum * buf`` if ``nesterov`` else ``buf``;
    ``param -= lr * g``. One fused C++ pass per parameter.
    """

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, self._check_hyperparameters(dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)))

    def _check_hyperparameters(self, group: Dict[str, Any]) -> Dict[str, Any]:
        op = type(self).__name__
        lr = check_real(group["lr"], "lr", op)
        momentum = check_real(group["momentum"], "momentum", op)
        dampening = check_real(group["dampening"], "dampening", op)
        weight_decay = check_real(group["weight_decay"], "weight_decay", op)
        nesterov = check_bool(group["nesterov"], "nesterov", op)
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        return dict(group, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                    nesterov=nesterov)

    @property
    def lr(self) -> float:
        """The learning rate (settable; same as ``param_groups[0]["lr"]``)."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        value = check_real(value, "lr", type(self).__name__)
        if value < 0.0:
            raise ValueError(f"Invalid learning rate: {value}")
        self.param_groups[0]["lr"] = value

    def step(self) -> None:
        """Update every parameter with ``requires_grad`` from its ``.grad``."""
        g = self.param_groups[0]
        momentum = g["momentum"]
        stepped: List[Parameter] = []
        datas: List[np.ndarray] = []
        grads: List[np.ndarray] = []
        bufs: List[Optional[np.ndarray]] = []
        firsts: List[bool] = []
        for p in g["params"]:
            if not p.requires_grad:
                continue
            buf, first = None, False
            if momentum != 0.0:
                st = self.state.setdefault(id(p), {})
                buf = st.get("momentum_buffer")
                if buf is None or buf.shape != p.shape:
                    # The kernel initialises the buffer from the gradient on the first step.
                    buf = st["momentum_buffer"] = np.empty_like(p.data)
                    first = True
            stepped.append(p)
            datas.append(p.data)
            grads.append(p.grad)
            bufs.append(buf)
            firsts.append(first)
        if stepped:
            # One call and one pass of the threads over every parameter (F.sgd_step_many).
            F.sgd_step_many(datas, grads, bufs, g["lr"], momentum, g["dampening"], g["weight_decay"], g["nesterov"],
                            firsts)
        for p in stepped:
            p._version += 1


class _AdamBase(Optimizer):
    _decoupled = False

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, self._check_hyperparameters(dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)))

    def _check_hyperparameters(self, group: Dict[str, Any]) -> Dict[str, Any]:
        op = type(self).__name__
        lr = check_real(group["lr"], "lr", op)
        eps = check_real(group["eps"], "eps", op)
        weight_decay = check_real(group["weight_decay"], "weight_decay", op)
        amsgrad = check_bool(group["amsgrad"], "amsgrad", op)
        betas = group["betas"]
        try:
            beta1, beta2 = (check_real(b, "betas", op) for b in betas)
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair of real numbers, got {betas!r}") from None
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {beta1}")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {beta2}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        return dict(group, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)

    lr = SGD.lr

    def step(self) -> None:
        """Update every parameter with ``requires_grad`` from its ``.grad`` (state: step, exp_avg, exp_avg_sq)."""
        g = self.param_groups[0]
        beta1, beta2 = g["betas"]
        for p in g["params"]:
            if not p.requires_grad:
                continue
            st = self.state.setdefault(id(p), {})
            if "exp_avg" not in st or st["exp_avg"].shape != p.shape:
                st["step"] = 0
                st["exp_avg"] = np.zeros_like(p.data)
                st["exp_avg_sq"] = np.zeros_like(p.data)
                if g["amsgrad"]:
                    st["max_exp_avg_sq"] = np.zeros_like(p.data)
            if g["amsgrad"] and "max_exp_avg_sq" not in st:
                st["max_exp_avg_sq"] = np.zeros_like(p.data)
            st["step"] += 1
            F.adam_step(p.data, p.grad, st["exp_avg"], st["exp_avg_sq"],
                        st["max_exp_avg_sq"] if g["amsgrad"] else None, st["step"], g["lr"], beta1, beta2,
                        g["eps"], g["weight_decay"], self._decoupled)
            p._version += 1


class Adam(_AdamBase):
    """Adam, exactly ``torch.optim.Adam``'s rule (bias-corrected moments; L2 weight decay added to the gradient).

    ``g = grad + weight_decay * param``; ``m = beta1 m + (1 - beta1) g``;
    ``v = beta2 v + (1 - beta2) g^2``; ``param -= lr / (1 - beta1^t) * m /
    (sqrt(v) / sqrt(1 - beta2^t) + eps)``. ``amsgrad`` uses the running
    maximum of v. Defaults as PyTorch: lr=1e-3, betas=(0.9, 0.999), eps=1e-8.
    """


class AdamW(_AdamBase):
    """AdamW, exactly ``torch.optim.AdamW``: decoupled weight decay ``param *= 1 - lr * weight_decay``, then Adam.

    Defaults as PyTorch: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01.
    """

    _decoupled = True

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)



def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
