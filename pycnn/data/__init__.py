"""Data loading: IDX files, Fashion-MNIST, and mini-batch iteration.

This package uses only NumPy and the standard library, so it imports (and is
useful) without pycnn's compiled extension. Modules: :mod:`~pycnn.data.idx`,
:mod:`~pycnn.data.fashion_mnist`, :mod:`~pycnn.data.moving_fashion_mnist`, :mod:`~pycnn.data.loader`,
:mod:`~pycnn.data.transforms`.

* :func:`read_idx` / :func:`write_idx` read and write the IDX format used by
  MNIST and Fashion-MNIST, raw or gzip-compressed.
* :func:`load_fashion_mnist` finds (or downloads) Fashion-MNIST and returns
  ``((x_train, y_train), (x_test, y_test))`` ready for a CNN: ``x`` is
  ``float32`` of shape ``(N, 1, 28, 28)`` in ``[0, 1]``, ``y`` is ``int64``.
* :func:`moving_fashion_mnist` makes video clips ``(N, 1, T, H, W)`` of
  Fashion-MNIST items circling the canvas, classed by item group and
  direction of rotation (classes only motion tells apart).
* :func:`iterate_minibatches` and :class:`DataLoader` cut arrays into
  (optionally shuffled, reproducible) mini-batches.
* :class:`RandomCrop`, :class:`RandomHorizontalFlip`, :class:`Normalize` and
  :class:`Compose` transform image batches ``(N, C, H, W)``; ``fit(...,
  transform=...)`` applies them to every training batch, seeded.
"""
from __future__ import annotations

from .fashion_mnist import (DOWNLOAD_TIMEOUT, FASHION_MNIST_CLASSES, FASHION_MNIST_FILES, FASHION_MNIST_MD5,
                            FASHION_MNIST_SIZES, FASHION_MNIST_SYSTEM_DIR, FASHION_MNIST_TEST_IMAGES,
                            FASHION_MNIST_TEST_LABELS, FASHION_MNIST_TRAIN_IMAGES, FASHION_MNIST_TRAIN_LABELS,
                            FASHION_MNIST_URL, DatasetNotFoundError, fashion_mnist_cache_dir, find_fashion_mnist,
                            load_fashion_mnist)
from .idx import MAX_IDX_NDIM, read_idx, write_idx
from .loader import DataLoader, iterate_minibatches
from .moving_fashion_mnist import MOVING_FASHION_MNIST_CLASSES, MOVING_FASHION_MNIST_GROUPS, moving_fashion_mnist
from .transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip, Transform

__all__ = [
    "read_idx",
    "write_idx",
    "MAX_IDX_NDIM",
    "DatasetNotFoundError",
    "FASHION_MNIST_URL",
    "FASHION_MNIST_TRAIN_IMAGES",
    "FASHION_MNIST_TRAIN_LABELS",
    "FASHION_MNIST_TEST_IMAGES",
    "FASHION_MNIST_TEST_LABELS",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_MD5",
    "FASHION_MNIST_SIZES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_SYSTEM_DIR",
    "fashion_mnist_cache_dir",
    "find_fashion_mnist",
    "load_fashion_mnist",
    "moving_fashion_mnist",
    "MOVING_FASHION_MNIST_GROUPS",
    "MOVING_FASHION_MNIST_CLASSES",
    "iterate_minibatches",
    "DataLoader",
    "Transform",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Normalize",
    "Compose",
]


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
