"""A bound on the parameter and buffer elements the modules built in a ``with element_budget(...)`` block may hold.

:func:`pycnn.load` builds a network from the constructor arguments written
in a file. A file of a few hundred bytes can name ``Linear(16384, 16384)``
(a gigabyte of weights, plus its gradient, plus seconds of random
initialisation) and hold none of those weights, so the loader builds the
network inside ``element_budget(n)``, where ``n`` is the number of elements
the file's weight arrays declare: a correct file builds exactly that many.
``Parameter`` and ``Module.register_buffer`` :func:`reserve` their elements,
and pycnn's layers :func:`check` theirs before allocating anything, so an
architecture larger than the file's weights is refused at its first
oversized layer, before that layer's memory exists.

Inside the block the initialisers of :mod:`pycnn.nn.init` also leave their
arrays as they are (:func:`initialising` is False): the loader overwrites
every parameter, so drawing random values would only cost time and touch
memory (``np.empty`` and ``np.zeros`` arrays take no memory until written),
and a file refused after building costs almost nothing.

Outside such a block (the normal case) the calls return at once. The bound
lives in a ``ContextVar``: other threads building models are not affected.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Optional

__all__ = ["BudgetExceeded", "element_budget", "reserve", "check", "initialising"]


class BudgetExceeded(ValueError):
    """The modules under construction would hold more elements than the budget allows."""


class _Budget:
    __slots__ = ("limit", "used", "source")

    def __init__(self, limit: int, source: str) -> None:
        self.limit, self.used, self.source = limit, 0, source


_CURRENT: ContextVar[Optional[_Budget]] = ContextVar("pycnn_element_budget", default=None)


@contextmanager
def element_budget(limit: int, source: str) -> Iterator[None]:
    """Modules built inside may hold at most ``limit`` parameter and buffer elements in all.

    ``source`` says where the limit comes from, for the message (e.g. "the
    weight arrays of model.npz hold 1,234 elements").
    """
    token = _CURRENT.set(_Budget(int(limit), source))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def initialising() -> bool:
    """False inside :func:`element_budget`: initial values will be overwritten, so initialisers skip them."""
    return _CURRENT.get() is None


def _refuse(b: _Budget, elements: int, what: str) -> BudgetExceeded:
    return BudgetExceeded(f"{what} of {elements:,} elements would bring the network to {b.used + elements:,} "
                          f"elements, more than {b.source} ({b.limit:,} allowed)")


def check(elements: int, what: str) -> None:
    """Raise :class:`BudgetExceeded` if ``elements`` more would not fit (nothing is reserved)."""
    b = _CURRENT.get()
    if b is not None and b.used + elements > b.limit:
        raise _refuse(b, elements, what)


def reserve(elements: int, what: str) -> None:
    """Count ``elements`` against the budget; :class:`BudgetExceeded` if they do not fit."""
    b = _CURRENT.get()
    if b is None:
        return
    if b.used + elements > b.limit:
        raise _refuse(b, elements, what)
    b.used += elements
