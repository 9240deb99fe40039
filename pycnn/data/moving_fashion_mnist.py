"""Moving Fashion-MNIST: short video clips whose classes need motion to tell apart.

:func:`moving_fashion_mnist` puts a Fashion-MNIST item on a larger black
canvas and moves it along a circle around the canvas centre, clockwise or
counter-clockwise. The class is (item group, direction of rotation):
:data:`MOVING_FASHION_MNIST_CLASSES` names the six. The start angle is
uniform, so every frame on its own -- the item and where it is -- has the
same distribution for both directions: a single frame can at best tell the
item group (a one-frame model tops out near half the clips right), and only
the motion between frames tells the rest.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["moving_fashion_mnist", "MOVING_FASHION_MNIST_GROUPS", "MOVING_FASHION_MNIST_CLASSES"]

#: The item groups: (name, Fashion-MNIST labels in it).
MOVING_FASHION_MNIST_GROUPS: Tuple[Tuple[str, Tuple[int, ...]], ...] = (
    ("top", (0, 2, 4, 6)),  # T-shirt/top, Pullover, Coat, Shirt
    ("footwear", (5, 7, 9)),  # Sandal, Sneaker, Ankle boot
    ("other", (1, 3, 8)),  # Trouser, Dress, Bag
)
_DIRECTIONS = ("clockwise", "counter-clockwise")
#: Class ``2 * group + direction`` (direction 0 clockwise on screen, 1 counter-clockwise).
MOVING_FASHION_MNIST_CLASSES: Tuple[str, ...] = tuple(
    f"{name}, {d}" for name, _ in MOVING_FASHION_MNIST_GROUPS for d in _DIRECTIONS)

# The chunk of clips placed at once (bounds the index arrays' memory to a few tens of MB).
_CHUNK = 2048


def moving_fashion_mnist(images: ArrayLike, labels: ArrayLike, num_clips: int, *, frames: int = 8,
                         size: int = 40, radius: Optional[float] = None,
                         degrees_per_frame: Tuple[float, float] = (20.0, 35.0),
                         seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Clips of Fashion-MNIST items circling the canvas centre -> ``(clips, labels)``.

    Args:
        images: the source items, ``(N, h, w)`` or ``(N, 1, h, w)`` (e.g. the
            ``x`` of :func:`load_fashion_mnist`); any real dtype, values kept.
        labels: their Fashion-MNIST labels (0-9), ``(N,)``.
        num_clips: how many clips to make (items are drawn with replacement).
        frames: frames per clip (at least 2: motion needs two).
        size: the square canvas's side; must exceed the item's by at least 4.
        radius: the circle's radius in pixels (default: as large as keeps the
            item on the canvas, ``(size - max(h, w)) / 2``).
        degrees_per_frame: the range the angular speed is drawn from, uniform;
            below 180 so that the direction is unambiguous.
        seed: the clips are a function of (the inputs, seed) alone.

    Returns:
        ``clips`` float32 of shape ``(num_clips, 1, frames, size, size)``
        (N, C, T, H, W: what ``nn.Conv3d`` takes) and ``labels`` int64 in
        ``[0, 6)``, class ``2 * group + direction`` as
        :data:`MOVING_FASHION_MNIST_CLASSES` names them.
    """
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"moving_fashion_mnist: expected images of shape (N, h, w) or (N, 1, h, w) with N > 0, "
                         f"got {np.shape(images)}")
    y = np.asarray(labels)
    if y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
        raise ValueError(f"moving_fashion_mnist: expected integer labels of shape ({x.shape[0]},), "
                         f"got {y.dtype} {y.shape}")
    group_of = np.full(10, -1, np.int64)
    for g, (_, members) in enumerate(MOVING_FASHION_MNIST_GROUPS):
        group_of[list(members)] = g
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"moving_fashion_mnist: labels must be Fashion-MNIST's 0-9, got [{y.min()}, {y.max()}]")
    for name, v, low in (("num_clips", num_clips, 0), ("frames", frames, 2), ("size", size, 1)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
            raise ValueError(f"moving_fashion_mnist: {name} must be an int >= {low}, got {v!r}")
    h, w = x.shape[1:]
    room = (size - max(h, w)) / 2
    if room < 2:
        raise ValueError(f"moving_fashion_mnist: a canvas of {size} leaves no room to move items of {h}x{w} "
                         f"(need size >= {max(h, w) + 4})")
    r = room if radius is None else float(radius)
    if not 0 < r <= room:
        raise ValueError(f"moving_fashion_mnist: radius must be in (0, {room}] for size {size}, got {radius!r}")
    lo, hi = (float(v) for v in _pair(degrees_per_frame))
    if not 0 < lo <= hi < 180:
        raise ValueError(f"moving_fashion_mnist: degrees_per_frame must satisfy 0 < low <= high < 180, "
                         f"got {degrees_per_frame!r}")

    rng = np.random.default_rng(seed)
    item = rng.integers(0, x.shape[0], size=num_clips)
    direction = rng.integers(0, 2, size=num_clips)  # 0: clockwise on screen (y grows downwards)
    start = rng.uniform(0.0, 2 * np.pi, size=num_clips)
    speed = np.deg2rad(rng.uniform(lo, hi, size=num_clips))
    angle = start[:, None] + np.where(direction == 0, 1.0, -1.0)[:, None] * speed[:, None] * np.arange(frames)
    # The item's top-left corner at each frame; rounding keeps it within [0, size - h] as r <= room.
    top = np.rint((size - h) / 2 + r * np.sin(angle)).astype(np.int64)
    left = np.rint((size - w) / 2 + r * np.cos(angle)).astype(np.int64)

    clips = np.zeros((num_clips, 1, frames, size, size), np.float32)
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    for c0 in range(0, num_clips, _CHUNK):
        c = np.arange(c0, min(c0 + _CHUNK, num_clips))
        src = x[item[c]].astype(np.float32)  # (n, h, w)
        for t in range(frames):
            clips[c[:, None, None], 0, t, top[c, t][:, None, None] + rows, left[c, t][:, None, None] + cols] = src
    out_labels = 2 * group_of[y[item]] + direction
    return clips, out_labels.astype(np.int64)


def _pair(v: Sequence[float]) -> Tuple[float, float]:
    if len(v) != 2:
        raise ValueError(f"moving_fashion_mnist: degrees_per_frame must be a (low, high) pair, got {v!r}")
    return float(v[0]), float(v[1])
