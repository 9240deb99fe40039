"""The one random number generator pycnn draws from (initialisation, shuffling, dropout)."""
from __future__ import annotations

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: expected an int, got {type(seed).__name__}")
    _rng = np.random.default_rng(int(seed))


def generator() -> np.random.Generator:
    """The current generator; re-read after manual_seed, so do not cache it."""
    return _rng


class preserved:
    """``with preserved():`` draws inside (e.g. throw-away weight initialisation) leave pycnn's generator untouched."""

    def __enter__(self):
        global _rng
        self._saved = _rng
        _rng = np.random.default_rng(0)
        return _rng

    def __exit__(self, *exc):
        global _rng
        _rng = self._saved
        return False
