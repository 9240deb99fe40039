"""``SymbolicValue``: what ``nn.Input`` returns and what a module called on symbolic values returns.

Apart from :mod:`pycnn.nn.graph` (which builds and runs graphs) so that
``Module.__call__`` can recognise one without importing the graph machinery:
``graph`` imports ``module``, not the other way round.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

__all__ = ["SymbolicValue"]


class SymbolicValue:
    """A placeholder for an array in a graph being built (Keras' ``KerasTensor``); it holds no data.

    ``shape`` has None for the batch dimension, e.g. ``(None, 3, 32, 32)``.
    ``node`` is the call of a layer that produces it (None for a value made
    by ``nn.Input``) and ``index`` which of that call's outputs it is.
    Converting one to an array raises ``TypeError``: call layers on it, build
    ``nn.Model(inputs, outputs)``, then call the model on arrays.
    """

    __slots__ = ("shape", "node", "index", "__weakref__")

    def __init__(self, shape: Tuple[Optional[int], ...], node: Any = None, index: int = 0) -> None:
        self.shape = shape
        self.node = node
        self.index = index

    def __repr__(self) -> str:
        if self.node is None:
            return f"SymbolicValue(shape={self.shape}, from nn.Input)"
        which = "" if len(self.node.outputs) == 1 else f" (output {self.index})"
        return f"SymbolicValue(shape={self.shape}, from {self.node.describe()}{which})"

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self!r} has no data: it stands for an array in a graph being built. Call layers on "
                        f"symbolic values only, then build nn.Model(inputs, outputs) and call the model on arrays")
