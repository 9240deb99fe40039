"""Data sources for :func:`fit`, :func:`evaluate` and :func:`predict`: arrays, or an iterable of batches.

Arrays (NumPy arrays, and lists or tuples, converted with ``np.asarray``)
are cut into batches by the loop itself. Anything else iterable is a *data
source* that yields the batches: a :class:`pycnn.data.DataLoader`, an object
whose ``__iter__`` starts a new pass (a dataset class streaming from disk), a
generator, or a function taking no argument that returns one of those (a
*factory*, called once per pass).

A generator can be read once only. Training for several epochs on one is a
mistake that would silently train on an empty second epoch, so it is refused
up front with a message naming the two fixes (a factory such as ``lambda:
batches(path)``, or an object with ``__iter__``); so is a generator given as
``validation_data``, which is read after every epoch.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Optional, Tuple

import numpy as np

Batch = Tuple[np.ndarray, np.ndarray]


def is_data_source(x: Any) -> bool:
    """True for an iterable of batches or a factory of one; False for array data (arrays, lists, tuples)."""
    if isinstance(x, (np.ndarray, np.generic, list, tuple, str, bytes, int, float, complex)) or x is None:
        return False
    return callable(x) or hasattr(x, "__iter__")


def _is_one_shot(source: Any) -> bool:
    """An iterator (generator): iter() gives back the object itself, so a second pass is empty."""
    try:
        return iter(source) is source
    except TypeError:
        return False


class DataSource:
    """A checked data source: ``passes()`` starts a new pass over its items.

    Args:
        source: the iterable or factory (see the module docstring).
        what: how messages name it (``"fit: x"``).
        passes_needed: how many passes the caller will make; more than one
            refuses a one-shot iterator.
    """

    def __init__(self, source: Any, what: str, passes_needed: int) -> None:
        self.what = what
        self._factory: Optional[Callable[[], Any]] = None
        if callable(source) and not hasattr(source, "__iter__"):
            self._factory = source
            self._source = None
        else:
            if not hasattr(source, "__iter__"):
                raise TypeError(f"{what} must be arrays, an iterable of batches or a function returning one, "
                                f"got {type(source).__name__}")
            if passes_needed > 1 and _is_one_shot(source):
                raise ValueError(
                    f"{what} is a one-shot iterator ({type(source).__name__}): it can be read once, but "
                    f"it would be read {passes_needed} times (once per epoch). "
                    f"Pass a function that returns a new iterator each time, e.g. `lambda: batches(path)`, "
                    f"or an object whose __iter__ starts over (such as pycnn.data.DataLoader)")
            self._source = source

    def known_length(self) -> Optional[int]:
        """Batches per pass when the source knows it (``len()``, as a DataLoader does), else None."""
        try:
            return len(self._source) if self._source is not None else None
        except TypeError:
            return None

    def passes(self) -> Iterator[Any]:
        source = self._source
        if self._factory is not None:
            source = self._factory()
            if not hasattr(source, "__iter__"):
                raise TypeError(f"{self.what}: the function must return an iterable of batches, "
                                f"got {type(source).__name__}")
        return iter(source)  # type: ignore[arg-type]


def source_of(x: Any, y: Any, op: str, passes_needed: int, distributed: bool,
              usage: str) -> Optional[DataSource]:
    """The checked DataSource when ``x`` is one (``y`` must then be None; no ``distributed``), else None.

    ``usage`` shows the call with a data source, for the message about ``y``.
    """
    if not is_data_source(x):
        return None
    if y is not None:
        raise ValueError(f"{op}: x is an iterable of (x, y) batches ({type(x).__name__}), which holds the "
                         f"targets; pass y=None: {usage}")
    if distributed:
        raise ValueError(f"{op}(distributed=True) splits arrays over the ranks; pass arrays, or give each rank "
                         f"its own data source and run without distributed=True (see docs/distributed.md)")
    return DataSource(x, f"{op}: x", passes_needed)


def as_batch(item: Any, what: str, index: int) -> Batch:
    """An ``(x, y)`` batch as two arrays of equal length, or a TypeError/ValueError naming the batch."""
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise TypeError(f"{what}: batch {index} must be a pair (x, y) of arrays, got "
                        f"{type(item).__name__}{f' of length {len(item)}' if isinstance(item, (tuple, list)) else ''}")
    xb, yb = np.asarray(item[0]), np.asarray(item[1])
    if xb.ndim == 0 or yb.ndim == 0 or len(xb) != len(yb):
        raise ValueError(f"{what}: batch {index} must be arrays with the same number of samples, got shapes "
                         f"{xb.shape} and {yb.shape}")
    return xb, yb


def inputs_of(item: Any) -> np.ndarray:
    """The inputs of a prediction batch: the batch itself, or ``x`` of an ``(x, y)`` pair."""
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return np.asarray(item[0])
    return np.asarray(item)


def iter_batches(source: DataSource) -> Iterable[Batch]:
    for i, item in enumerate(source.passes()):
        yield as_batch(item, source.what, i)
