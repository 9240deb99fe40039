""":class:`DistributedOptimizer`: an optimiser whose step first averages the gradients over the ranks.

pycnn has no autograd hooks to start a reduction while backward is still
running (as Horovod and PyTorch's DDP do, bucket by bucket), so the whole
reduction happens once per step, after backward, as one all-reduce of one
buffer. That buffer costs no copy: the trainable parameters' ``.grad``
arrays are made views into it (each starting on a 64-byte boundary), so
backward accumulates straight into it and the all-reduce works in place.
"""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..nn.parameter import Parameter
from .world import check_alike, current

__all__ = ["DistributedOptimizer"]

_ALIGN = 16  # floats: 64 bytes, a cache line and an AVX-512 vector
#: Extra numbers :meth:`DistributedOptimizer.synchronize` can sum in the same message.
MAX_VALUES = 8


def _aligned_zeros(n: int) -> np.ndarray:
    raw = np.zeros(n + _ALIGN, np.float32)
    skip = (-(raw.ctypes.data // 4)) % _ALIGN
    return raw[skip : skip + n]


class DistributedOptimizer:
    """Wraps an optimiser so that :meth:`step` uses the gradients averaged over every rank (Horovod's class).

    ``step()`` first runs :meth:`synchronize`: one in-place all-reduce of
    one flat buffer holding the gradients of every parameter with
    ``requires_grad`` (frozen parameters are skipped: they take no space
    and no time), divided by the number of ranks; then the wrapped
    optimiser's own step. With every rank holding the same parameters
    (:func:`broadcast_parameters`) and averaging the same gradients, every
    rank makes the same update: the parameters stay identical.

    Works with :class:`pycnn.optim.SGD`, ``Adam``, ``AdamW`` and the
    learning-rate schedulers (they set ``param_groups[i]["lr"]``, which is
    the wrapped optimiser's). ``zero_grad``, ``state_dict``,
    ``load_state_dict``, ``param_groups``, ``state``, ``lr`` are the wrapped
    optimiser's.

    Every rank must call ``step()`` equally often, and freeze or unfreeze
    parameters alike: the gradient buffers of all ranks are reduced together.
    The buffer's layout is compared across ranks when it is built (first
    step, or after ``requires_grad`` changed), and a difference raises the
    same :class:`DistributedError` on every rank.
    """

    def __init__(self, optimizer: Any) -> None:
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("DistributedOptimizer: the optimizer is already a DistributedOptimizer")
        params = getattr(optimizer, "params", None)
        if not (callable(getattr(optimizer, "step", None)) and isinstance(params, list)
                and all(isinstance(p, Parameter) for p in params)):
            raise TypeError("DistributedOptimizer: expected a pycnn optimizer (optim.SGD, Adam, AdamW), got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self._flat: Optional[np.ndarray] = None  # the gradients (views of it), then MAX_VALUES extra numbers
        self._views: List[Tuple[Parameter, np.ndarray]] = []
        self._synchronized = False
        self._skip = False

    # ------------------------------------------------------------------ the wrapped optimiser's interface
    @property
    def param_groups(self) -> List[Dict[str, Any]]:
        """The wrapped optimiser's parameter groups (learning-rate schedules set ``["lr"]`` here)."""
        return self.optimizer.param_groups

    @property
    def params(self) -> List[Parameter]:
        """The parameters of the wrapped optimiser."""
        return self.optimizer.params

    @property
    def state(self) -> Dict[int, Dict[str, Any]]:
        """The wrapped optimiser's per-parameter state."""
        return self.optimizer.state

    @property
    def lr(self) -> float:
        """The learning rate of the wrapped optimiser (settable)."""
        return self.optimizer.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.optimizer.lr = value

    def zero_grad(self) -> None:
        """Zero every parameter's gradient (the wrapped optimiser's ``zero_grad``)."""
        self.optimizer.zero_grad()

    def state_dict(self) -> Dict[str, Any]:
        """The wrapped optimiser's state, so checkpoints load into a plain optimiser too."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Load into the wrapped optimiser."""
        self.optimizer.load_state_dict(state_dict)

    # ------------------------------------------------------------------ the fused all-reduce
    def _layout_current(self, trainable: List[Parameter]) -> bool:
        return (len(trainable) == len(self._views)
                and all(p is q and p.grad is v for p, (q, v) in zip(trainable, self._views)))

    def _build(self, trainable: List[Parameter]) -> None:
        """One buffer for the trainable gradients; each ``.grad`` becomes a view of it (values kept)."""
        offsets, total = [], 0
        for p in trainable:
            offsets.append(total)
            total += -(-p.size // _ALIGN) * _ALIGN
        flat = _aligned_zeros(total + MAX_VALUES)
        views = []
        for p, o in zip(trainable, offsets):
            view = flat[o : o + p.size].reshape(p.shape)
            view[...] = p.grad
            p.grad = view
            views.append((p, view))
        self._flat, self._views = flat, views
        check_alike("DistributedOptimizer: every rank must train the same parameters",
                    [(f"trainable parameter {i}", tuple(p.shape), p.dtype.str) for i, p in enumerate(trainable)])

    def synchronize(self, values: Optional[Sequence[float]] = None) -> Optional[np.ndarray]:
        """Average the gradients over the ranks now (one in-place all-reduce); :meth:`step` then does not again.

        For work between the reduction and the update, as with Horovod
        (gradient clipping)::

            opt.synchronize()
            clip(...)
            opt.step()

        Args:
            values: up to 8 numbers to sum over the ranks in the same
                message (``fit`` sends each batch's loss, correct
                predictions and size this way).

        Returns:
            The sums of ``values`` over the ranks (float64), or None.
        """
        world = current()
        trainable = [p for p in self.optimizer.params if p.requires_grad]
        if self._flat is None or not self._layout_current(trainable):
            self._build(trainable)
        flat = self._flat
        assert flat is not None
        n_values = 0 if values is None else len(values)
        if n_values > MAX_VALUES:
            raise ValueError(f"synchronize: at most {MAX_VALUES} values, got {n_values}")
        tail = flat[len(flat) - MAX_VALUES :]
        tail[:] = 0
        if values is not None:
            tail[:n_values] = values
        if world.size > 1:
            world.allreduce_sum_(flat)
            flat[: len(flat) - MAX_VALUES] *= np.float32(1.0 / world.size)
        self._synchronized = True
        return None if values is None else tail[:n_values].astype(np.float64)

    @contextlib.contextmanager
    def skip_synchronize(self) -> Iterator[None]:
        """``with opt.skip_synchronize(): opt.step()`` updates without reducing (Horovod's API).

        Not needed after :meth:`synchronize`, whose reduction :meth:`step`
        does not repeat; kept so Horovod code runs unchanged.
        """
        self._skip = True
        try:
            yield
        finally:
            self._skip = False

    def step(self) -> None:
        """Average the gradients over the ranks (unless :meth:`synchronize` just did), then step the wrapped optimiser."""
        if not (self._synchronized or self._skip):
            self.synchronize()
        self._synchronized = False
        self.optimizer.step()

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r})"
