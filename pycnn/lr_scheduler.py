"""Learning-rate schedules with PyTorch's semantics (``torch.optim.lr_scheduler``).

A scheduler sets ``group["lr"]`` of its optimiser's parameter groups.
Construction records ``initial_lr`` in each group and applies the epoch-0
rate; call ``scheduler.step()`` once per epoch, *after* ``optimizer.step()``
(per iteration works too: an "epoch" is whatever you count). Rates are
computed in closed form from ``last_epoch``, so they do not drift; they agree
with PyTorch's (recursive) values to rounding.

* ``StepLR(opt, step_size, gamma=0.1)``: ``base * gamma ** (epoch // step_size)``
* ``MultiStepLR(opt, milestones, gamma=0.1)``
* ``CosineAnnealingLR(opt, T_max, eta_min=0)``:
  ``eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``
* ``LinearLR(opt, start_factor=1/3, end_factor=1.0, total_iters=5)``: the
  linear warm-up, factor going from start to end over ``total_iters`` epochs
* ``SequentialLR(opt, schedulers, milestones)``: e.g. LinearLR warm-up then cosine
* ``LambdaLR(opt, lr_lambda)``: ``base * lr_lambda(epoch)``
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Sequence, Tuple

from ._checks import check_int

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR", "SequentialLR", "LambdaLR"]


class LRScheduler:
    """Base class: subclasses implement ``_lr_at(base_lr, epoch)``."""

    def __init__(self, optimizer: Any, last_epoch: int = -1) -> None:
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{type(optimizer).__name__} is not an optimizer (no param_groups)")
        self.optimizer = optimizer
        if last_epoch == -1:
            for g in optimizer.param_groups:
                g.setdefault("initial_lr", g["lr"])
        else:
            for i, g in enumerate(optimizer.param_groups):
                if "initial_lr" not in g:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                                   f"an optimizer")
        self.base_lrs: List[float] = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def get_last_lr(self) -> List[float]:
        """The rates set by the last ``step()``."""
        return list(self._last_lr)

    def get_lr(self) -> List[float]:
        """The rates for ``last_epoch``."""
        return [self._lr_at(b, self.last_epoch) for b in self.base_lrs]

    def step(self) -> None:
        """Advance one epoch and set the optimiser's rates."""
        self.last_epoch += 1
        self._apply(self.get_lr())

    def _apply(self, lrs: Sequence[float]) -> None:
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> Dict[str, Any]:
        """Everything but the optimiser (as PyTorch)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.__dict__.update(state_dict)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={self.get_last_lr()})"


class StepLR(LRScheduler):
    """Decay by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size = check_int(step_size, "step_size", "StepLR", 1)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def closed_form(base_lr: float, epoch: int, step_size: int, gamma: float) -> float:
        """The rate at ``epoch``: ``base_lr * gamma ** (epoch // step_size)`` (also ``train.StepDecay``'s)."""
        return base_lr * gamma ** (epoch // step_size)

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        return self.closed_form(base_lr, epoch, self.step_size, self.gamma)


class MultiStepLR(LRScheduler):
    """Decay by ``gamma`` at each of the epochs in ``milestones``."""

    def __init__(self, optimizer: Any, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.milestones = sorted(check_int(m, "milestones", "MultiStepLR", 0) for m in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** sum(1 for m in self.milestones if m <= epoch)


class CosineAnnealingLR(LRScheduler):
    """Cosine from the base rate down to ``eta_min`` over ``T_max`` epochs (SGDR without restarts)."""

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max = check_int(T_max, "T_max", "CosineAnnealingLR", 1)
        self.eta_min = float(eta_min)
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def closed_form(base_lr: float, epoch: int, T_max: int, eta_min: float) -> float:
        """The rate at ``epoch``: ``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``.

        Also ``train.CosineDecay``'s (which holds ``eta_min`` after ``T_max`` epochs).
        """
        return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        return self.closed_form(base_lr, epoch, self.T_max, self.eta_min)


class LinearLR(LRScheduler):
    """Linear warm-up: factor from ``start_factor`` to ``end_factor`` over ``total_iters`` epochs, then constant."""

    def __init__(self, optimizer: Any, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        if not 0.0 < start_factor <= 1.0:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0.0 <= end_factor <= 1.0:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = check_int(total_iters, "total_iters", "LinearLR", 0)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        t = min(epoch, self.total_iters)
        frac = t / self.total_iters if self.total_iters else 1.0
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class LambdaLR(LRScheduler):
    """``base_lr * lr_lambda(epoch)``."""

    def __init__(self, optimizer: Any, lr_lambda: Callable[[int], float], last_epoch: int = -1) -> None:
        if not callable(lr_lambda):
            raise TypeError(f"LambdaLR: lr_lambda must be callable, got {lr_lambda!r}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.lr_lambda(epoch)

    def state_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambda")}


class SequentialLR(LRScheduler):
    """Run ``schedulers[i]`` from ``milestones[i-1]`` on, each restarted at its own epoch 0 (PyTorch's)."""

    def __init__(self, optimizer: Any, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1) -> None:
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("SequentialLR: expects at least one scheduler")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or s.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: scheduler {i} does not belong to this optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expects {len(schedulers) - 1} milestones for {len(schedulers)} "
                             f"schedulers, got {len(milestones)}")
        self._schedulers = schedulers
        self._milestones = [int(m) for m in milestones]
        self.optimizer = optimizer
        self.last_epoch = last_epoch + 1
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        # Undo the sub-schedulers' construction steps, then start the first one (as PyTorch).
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"]
        for s in schedulers:
            s.last_epoch -= 1
        schedulers[0].step()
        self._last_lr = schedulers[0].get_last_lr()

    def _current(self) -> Tuple[LRScheduler, int]:
        i = sum(1 for m in self._milestones if m <= self.last_epoch)
        start = self._milestones[i - 1] if i > 0 else 0
        return self._schedulers[i], self.last_epoch - start

    def step(self) -> None:
        self.last_epoch += 1
        sched, local = self._current()
        sched.last_epoch = local
        sched._apply(sched.get_lr())
        self._last_lr = sched.get_last_lr()

    def state_dict(self) -> Dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        d["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return d

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        subs = state_dict.pop("_schedulers")
        self.__dict__.update(state_dict)
        for s, d in zip(self._schedulers, subs):
            s.load_state_dict(d)


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
