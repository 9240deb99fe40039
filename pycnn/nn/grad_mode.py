"""When a forward saves what its backward needs: ``train()`` always, ``eval()`` only inside :class:`enable_grad`.

pycnn's eval mode is inference: by default an eval-mode forward saves
nothing (no activation outlives the call) and ``pycnn.nn.fused`` folds and
fuses layers, so a ``backward`` after it raises. Gradients of a model in
eval mode are still wanted -- saliency maps and adversarial examples (input
gradients of a trained model), fine-tuning with frozen BatchNorm statistics
-- and PyTorch gives them, since there ``eval()`` only changes what BatchNorm
and Dropout compute. Inside ``with nn.enable_grad():`` pycnn does the same:
eval-mode layers run unfused and save what their backward needs, and that
backward is the eval-mode function's gradient (BatchNorm with its running
statistics is an affine map per channel, Dropout the identity)::

    model.eval()
    with nn.enable_grad():
        logits = model(x)
    saliency = model.backward(dlogits)

Recording in eval mode is also on, without asking, wherever a backward is
sure to follow: inside a container in training mode (``Sequential``,
``Residual``, ``Model`` run their children inside ``enable_grad``, so a
BatchNorm put in eval mode inside a training network -- frozen statistics --
saves what it needs) and inside ``fit``'s training step.

The setting is per thread and nests.
"""
from __future__ import annotations

import threading
from typing import Any

__all__ = ["enable_grad", "enabled"]

_local = threading.local()


class enable_grad:  # noqa: N801  (PyTorch's name for the same context manager)
    """Within this block (on this thread), forwards of eval-mode modules save what backward needs.

    Eval-mode results are unchanged (running statistics, no dropout); only
    the fusions of :mod:`pycnn.nn.fused` are off, since a folded layer keeps
    nothing to differentiate. See :mod:`pycnn.nn.grad_mode`.
    """

    def __enter__(self) -> None:
        _local.depth = getattr(_local, "depth", 0) + 1

    def __exit__(self, *exc: Any) -> None:
        _local.depth -= 1


def enabled() -> bool:
    """Whether eval-mode forwards save for backward here (inside :class:`enable_grad`)."""
    return getattr(_local, "depth", 0) > 0
