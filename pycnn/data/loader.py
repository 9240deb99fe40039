"""Mini-batches of in-memory arrays: :func:`iterate_minibatches` and :class:`DataLoader`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Optional, Tuple, Union

import numpy as np

from .._checks import check_int, check_samples

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    #: What ``np.random.default_rng`` takes: an int, None (fresh entropy) or a Generator to draw from.
    Seed = Union[int, np.random.Generator, None]


def _check_batch_args(x: ArrayLike, y: ArrayLike, batch_size: Any,
                      op: str) -> Tuple[np.ndarray, np.ndarray, int]:
    batch_size = check_int(batch_size, "batch_size", op, 1)
    xa, ya = check_samples(x, y)
    return xa, ya, batch_size


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, order: Optional[np.ndarray],
             drop_last: bool) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    n = len(x) if order is None else len(order)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            yield x[idx], y[idx]


def iterate_minibatches(
    x: ArrayLike,
    y: ArrayLike,
    batch_size: int,
    shuffle: bool = True,
    seed: Seed = None,
    drop_last: bool = False,
) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Iterate over ``(x, y)`` in mini-batches along the first axis.

    Args:
        x: array of shape ``(N, ...)``, e.g. images ``(N, C, H, W)``.
        y: array of shape ``(N, ...)``, e.g. labels ``(N,)``.
        batch_size: samples per batch, >= 1.
        shuffle: visit samples in a random order (one permutation for the
            whole pass); otherwise in order.
        seed: seed for ``np.random.default_rng`` (int, None for fresh entropy,
            or a ``np.random.Generator`` to draw from). The same int seed
            gives the same order.
        drop_last: drop the final batch if it has fewer than ``batch_size``
            samples; otherwise it is yielded as a smaller batch.

    Returns:
        An iterator of ``(xb, yb)`` with ``xb.shape == (B,) + x.shape[1:]`` and
        the dtypes of ``x`` and ``y``; ``B == batch_size`` except possibly for
        the last batch. Unshuffled batches are views into ``x``/``y``;
        shuffled ones are copies. Every sample appears exactly once per pass
        (apart from those dropped by ``drop_last``).

    Raises:
        ValueError: ``batch_size < 1`` or ``len(x) != len(y)`` (raised at call
            time, not at the first ``next``).
        TypeError: ``batch_size`` is not an integer.
    """
    x, y, batch_size = _check_batch_args(x, y, batch_size, "iterate_minibatches")
    order = np.random.default_rng(seed).permutation(len(x)) if shuffle else None
    return _batches(x, y, batch_size, order, drop_last)


class DataLoader:
    """Re-iterable mini-batches over in-memory arrays, PyTorch-style.

    Each ``for xb, yb in loader`` is one epoch. With ``shuffle=True`` every
    epoch uses a new permutation drawn from a single generator seeded once
    with ``seed``: epochs differ from each other, but the whole sequence of
    epochs is reproducible for a given seed.

    Args:
        x: array of shape ``(N, ...)``, e.g. float32 images ``(N, 1, 28, 28)``.
        y: array of shape ``(N, ...)``, e.g. int64 labels ``(N,)``.
        batch_size: samples per batch, >= 1.
        shuffle: reshuffle every epoch.
        seed: seed for ``np.random.default_rng`` (int, None, or a Generator).
        drop_last: drop each epoch's final batch if it is smaller than
            ``batch_size``.
        num_replicas, rank: for data-parallel training (PyTorch's
            ``DistributedSampler``): every process builds the loader with the
            same ``seed`` and its own ``rank``; each epoch's order (the same
            in every process) is padded to a multiple of ``num_replicas`` by
            repeating its first samples, and ``rank`` takes every
            ``num_replicas``-th sample from position ``rank`` on. So every
            shard has the same length and number of batches, and batch ``k``
            of all shards together is batch ``k`` of a single loader with
            ``num_replicas * batch_size`` on the same order.

    Yields ``(xb, yb)`` as :func:`iterate_minibatches` does; ``len(loader)``
    is the number of batches per epoch (of this shard).
    """

    def __init__(self, x: ArrayLike, y: ArrayLike, batch_size: int = 32, shuffle: bool = True, seed: Seed = None,
                 drop_last: bool = False, num_replicas: int = 1, rank: int = 0) -> None:
        self.x, self.y, self.batch_size = _check_batch_args(x, y, batch_size, "DataLoader")
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.num_replicas = check_int(num_replicas, "num_replicas", "DataLoader", 1)
        self.rank = check_int(rank, "rank", "DataLoader", 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"DataLoader: rank must be below num_replicas={self.num_replicas}, got {self.rank}")
        self._rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        if self.num_replicas == 1:
            return iterate_minibatches(
                self.x, self.y, self.batch_size, self.shuffle, seed=self._rng, drop_last=self.drop_last
            )
        n = len(self.x)
        order = self._rng.permutation(n) if self.shuffle else np.arange(n)
        order = np.resize(order, self._shard_length() * self.num_replicas)  # (np.resize repeats from the start)
        return _batches(self.x, self.y, self.batch_size, order[self.rank :: self.num_replicas], self.drop_last)

    def _shard_length(self) -> int:
        return -(-len(self.x) // self.num_replicas)

    def __len__(self) -> int:
        n = self._shard_length()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __repr__(self) -> str:
        shard = f", num_replicas={self.num_replicas}, rank={self.rank}" if self.num_replicas > 1 else ""
        return (
            f"DataLoader(n={len(self.x)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}{shard})"
        )
