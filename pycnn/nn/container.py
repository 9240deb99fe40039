"""Containers: compose modules' forward and backward passes."""
from __future__ import annotations

import inspect
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Union, overload

from . import fused, grad_mode
from .activation import ReLU
from .conv import Conv1d, Conv2d, Conv3d
from .linear import Linear
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .pooling import MaxPool2d
from .registry import config_is_children

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Sequential", "call_backward"]

# Layers that can apply a following ReLU in their own output write.
_RELU_PRODUCERS = (Conv2d, Linear, Conv1d, Conv3d, BatchNorm1d, BatchNorm2d, BatchNorm3d)


def call_backward(module: Module, grad_output: Any, input_grad: bool) -> Any:
    """``module.backward``, passing ``input_grad=False`` only when its signature accepts it."""
    if input_grad:
        return module.backward(grad_output)
    try:
        params = inspect.signature(module.backward).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "input_grad" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return module.backward(grad_output, input_grad=False)
    module.backward(grad_output)
    return None


class Sequential(Module):
    """Modules applied in order; ``backward`` runs their backwards in reverse.

    Built from modules (named "0", "1", ... as PyTorch, so state_dict keys
    match a ``torch.nn.Sequential``) or from an ``OrderedDict`` of named
    modules. Supports ``len``, iteration, indexing (an int gives the module, a
    slice a new Sequential sharing the modules) and ``append``.
    """

    @config_is_children
    def __init__(self, *args: Any) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, m in args[0].items():
                self._add(name, m)
        else:
            for i, m in enumerate(args):
                self._add(str(i), m)

    def _add(self, name: str, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: element {name!r} is a {type(module).__name__}, not an nn.Module")
        self.add_module(name, module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def _index(self, idx: int) -> str:
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for a Sequential of length {n}")
        return list(self._modules)[idx % n]

    @overload
    def __getitem__(self, idx: int) -> Module: ...

    @overload
    def __getitem__(self, idx: slice) -> Sequential: ...

    def __getitem__(self, idx: Union[int, slice]) -> Union[Module, Sequential]:
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._index(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: cannot set a {type(module).__name__}, not an nn.Module")
        self._modules[self._index(idx)] = module

    def __delitem__(self, idx: Union[int, slice]) -> None:
        keys = list(self._modules)
        for k in (keys[idx] if isinstance(idx, slice) else [self._index(idx)]):
            del self._modules[k]
        # PyTorch renumbers so the names stay 0..n-1.
        items = list(self._modules.values())
        self._modules.clear()
        for i, m in enumerate(items):
            self._modules[str(i)] = m

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end (named by its position). Returns self."""
        self._add(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> Sequential:
        """Append each of ``modules``. Returns self."""
        for m in modules:
            self.append(m)
        return self

    def forward(self, x: Any) -> Any:
        """Apply the modules in order, fusing where a layer sequence allows it.

        Fusions (exact module types only, so subclasses that override
        forward run as written):
          * Conv2d, Conv1d, Conv3d, Linear or BatchNorm followed by ReLU: the ReLU is applied in the
            layer's output write, saving one pass over the activations (bitwise the same);
          * ReLU followed by MaxPool2d: the pooling's backward applies the
            ReLU's gradient mask while it scatters, so the ReLU's backward is
            a pass-through (bitwise the same);
          * in eval mode, Conv2d followed by BatchNorm2d (and ReLU): the
            BatchNorm is folded into the convolution's prepared weights
            (pycnn.nn.fused; equal to float32 rounding).

        In training mode the children run inside ``nn.enable_grad()``, so an
        eval-mode child (a frozen BatchNorm) saves for the backward that follows.
        """
        if self.training:
            with grad_mode.enable_grad():
                return self._chain(x, fuse=True)
        return self._chain(x, fuse=True)

    def _chain(self, x: Any, fuse: bool, residual: Optional[np.ndarray] = None, relu_after: bool = False) -> Any:
        # The one walk over the modules. fuse=False calls every module's own
        # forward (pycnn.summary's record_outputs needs each layer's output).
        # `residual` (eval mode, from Residual): the chain's output is
        # relu?(chain(x) + residual); when the chain ends in an eval-mode
        # Conv2d (+ BatchNorm2d), that add and ReLU go into its output write
        # and the call returns (y, True); otherwise (chain(x), False).
        mods = list(self._modules.values())
        n = len(mods)
        fuse_eval = fuse and fused.enabled()
        i = 0
        while i < n:
            m = mods[i]
            prev = mods[i - 1] if fuse and i > 0 else None
            nxt = mods[i + 1] if fuse and i + 1 < n else None
            kind = type(m)
            if fuse_eval and kind is Conv2d and not m.training:
                bn = nxt if nxt is not None and fused.can_fold(m, nxt) else None
                j = i + (2 if bn is not None else 1)  # the module after the fused run
                relu = j < n and type(mods[j]) is ReLU
                if relu:
                    j += 1
                last = j == n and residual is not None and not relu
                x = fused.fused_conv2d(m, x, bn, relu=relu_after if last else relu,
                                       residual=residual if last else None)
                for k in range(i, j):
                    mods[k]._mark_eval_forward()  # fused.enabled(): outside enable_grad
                if last:
                    return x, True
                i = j
                continue
            if kind is ReLU and type(prev) in _RELU_PRODUCERS:
                m._record(x, gradient_applied_by_next=type(nxt) is MaxPool2d)
            elif kind in _RELU_PRODUCERS and type(nxt) is ReLU:
                x = m._forward(x, relu=True)
            elif kind is ReLU and type(nxt) is MaxPool2d:
                x = m(x)
                m._record(x, gradient_applied_by_next=True)
            elif kind is MaxPool2d and type(prev) is ReLU:
                x = m._forward(x, after_relu=True)
            else:
                x = m(x)
            i += 1
        return (x, False) if residual is not None else x

    def backward(self, grad_output: Any, input_grad: bool = True) -> Optional[np.ndarray]:
        """Backward through the chain in reverse; returns dL/d(input), or None when ``input_grad`` is False.

        ``input_grad=False`` is passed only to the first module, which then
        skips its input gradient (a first convolution's dX is the most
        expensive one nobody needs).
        """
        mods = list(self._modules.values())
        first = 0
        if not input_grad:
            # Nothing before the first trainable module needs a gradient (a
            # frozen feature extractor when fine-tuning): stop there.
            while first < len(mods) - 1 and not any(p.requires_grad for p in mods[first].parameters()):
                first += 1
        g = grad_output
        for i in range(len(mods) - 1, first - 1, -1):
            g = call_backward(mods[i], g, input_grad or i > first)
        return None if not input_grad else g
