"""Batch transforms of images ``(N, C, H, W)``: augmentation and normalisation.

:class:`RandomCrop`, :class:`RandomHorizontalFlip`, :class:`Normalize` and
:class:`Compose`; ``fit(..., transform=...)`` applies them to every training
batch, seeded.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Sequence, Tuple, Union, cast

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


class Transform:
    """A transform of a batch of images ``(N, C, H, W)``: ``t(x, rng=None, training=True)``.

    In training mode random transforms draw from ``rng`` (a
    ``np.random.Generator``; None uses pycnn's generator, which
    :func:`pycnn.manual_seed` seeds); in evaluation mode
    (``training=False``) they do their deterministic part only: no flip, a
    centre crop. Deterministic transforms (:class:`Normalize`) act the same
    in both modes. The input is never modified; the result is a new array
    (or the input itself when there is nothing to do).
    """

    def __call__(self, x: ArrayLike, rng: Optional[np.random.Generator] = None, training: bool = True) -> np.ndarray:
        x = np.asarray(x)
        if rng is None and training:
            from .._random import generator

            rng = generator()
        return self.apply(x, rng, bool(training))

    def apply(self, x: np.ndarray, rng: Optional[np.random.Generator], training: bool) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def _images(x: np.ndarray, who: str) -> np.ndarray:
    if x.ndim != 4:
        raise ValueError(f"{who}: expected a batch of images (N, C, H, W), got shape {x.shape}")
    return x


def _size_pair(size: Any, who: str) -> Tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)):
        raise TypeError(f"{who}: size must be an int or a pair of ints, got {size!r}")
    if min(size) < 1:
        raise ValueError(f"{who}: size must be positive, got {tuple(size)}")
    return int(size[0]), int(size[1])


class RandomCrop(Transform):
    """Pad each image by ``padding`` pixels of ``fill`` on every side, then cut a random ``size`` window.

    The classic CIFAR/Fashion-MNIST augmentation is ``RandomCrop(28,
    padding=2)``: the image moves by up to 2 pixels in each direction. Each
    image of the batch gets its own offset. In evaluation mode the window is
    the centre one (the identity when ``size`` is the input size).

    Args:
        size: output height and width (int or pair).
        padding: pixels added on each side before cropping (>= 0).
        fill: value of the padding.
    """

    def __init__(self, size: Union[int, Tuple[int, int]], padding: int = 0, fill: float = 0.0) -> None:
        self.size = _size_pair(size, "RandomCrop")
        if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"RandomCrop: padding must be an int >= 0, got {padding!r}")
        self.padding = int(padding)
        self.fill = float(fill)

    def apply(self, x: np.ndarray, rng: Optional[np.random.Generator], training: bool) -> np.ndarray:
        x = _images(x, "RandomCrop")
        n, c, h_in, w_in = x.shape
        h, w = self.size
        p = self.padding
        hp, wp = h_in + 2 * p, w_in + 2 * p
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image ({hp}, {wp})")
        if not training and (h, w) == (h_in, w_in):
            return x
        padded = x if p == 0 else np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.fill)
        if not training:  # the centre window
            oy, ox = (hp - h) // 2, (wp - w) // 2
            return padded[:, :, oy:oy + h, ox:ox + w].copy()
        gen = cast(np.random.Generator, rng)  # training mode: __call__ supplies one
        oy = gen.integers(0, hp - h + 1, size=n)
        ox = gen.integers(0, wp - w + 1, size=n)
        rows = (oy[:, None] + np.arange(h))[:, None, :, None]
        cols = (ox[:, None] + np.arange(w))[:, None, None, :]
        return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p`` (training mode only)."""

    def __init__(self, p: float = 0.5) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def apply(self, x: np.ndarray, rng: Optional[np.random.Generator], training: bool) -> np.ndarray:
        x = _images(x, "RandomHorizontalFlip")
        if not training:
            return x
        flip = cast(np.random.Generator, rng).random(len(x)) < self.p  # training mode: __call__ supplies one
        out = x.copy()
        out[flip] = x[flip, :, :, ::-1]
        return out


class Normalize(Transform):
    """``(x - mean) / std`` per channel, in training and evaluation mode alike; float32 out.

    ``mean`` and ``std`` are numbers (all channels) or one value per
    channel. Fashion-MNIST's training set has mean 0.2860 and std 0.3530.
    """

    def __init__(self, mean: Union[float, Sequence[float]], std: Union[float, Sequence[float]]) -> None:
        m = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        s = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if m.ndim != 1 or s.ndim != 1:
            raise ValueError(f"Normalize: mean and std must be numbers or 1-D sequences, got {mean!r}, {std!r}")
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(s)) and np.all(s > 0)):
            raise ValueError(f"Normalize: mean must be finite and std finite and > 0, got {mean!r}, {std!r}")
        self.mean = tuple(float(v) for v in m)
        self.std = tuple(float(v) for v in s)

    def apply(self, x: np.ndarray, rng: Optional[np.random.Generator], training: bool) -> np.ndarray:
        if x.ndim < 2:
            raise ValueError(f"Normalize: expected a batch (N, C, ...), got shape {x.shape}")
        c = x.shape[1]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if len(v) not in (1, c):
                raise ValueError(f"Normalize: {name} has {len(v)} values for input with {c} channels "
                                 f"(shape {x.shape})")
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = np.asarray(self.mean, np.float32).reshape(shape)
        inv_std = (1.0 / np.asarray(self.std, np.float64)).astype(np.float32).reshape(shape)
        return ((x.astype(np.float32, copy=False) - mean) * inv_std).astype(np.float32, copy=False)


class Compose(Transform):
    """Apply ``transforms`` in order (one generator for all, so the whole chain is seeded)."""

    def __init__(self, transforms: Iterable[Callable[..., np.ndarray]]) -> None:
        transforms = list(transforms)
        for t in transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")
        self.transforms = transforms

    def apply(self, x: np.ndarray, rng: Optional[np.random.Generator], training: bool) -> np.ndarray:
        for t in self.transforms:
            x = t(x, rng=rng, training=training) if isinstance(t, Transform) else (t(x) if training else x)
        return x
