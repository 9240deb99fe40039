"""Plots written as PNG files: training curves, first-layer filters, feature maps, confusion matrix, video clips.

Needs matplotlib, the optional extra ``pip install "pycnn[viz]"``. It is
imported only when a plot is drawn (``import pycnn`` never loads it), and the
figures are drawn with its Agg renderer straight to files: no window opens,
no display is needed, and pyplot's global state (your backend, open figures)
is left alone.

::

    from pycnn import viz
    viz.plot_history(history, "out/history.png")
    viz.plot_filters(model, "out/filters.png")
    viz.plot_feature_maps(model, x_test[0], "out/feature_maps.png")
    viz.plot_confusion_matrix(metrics.confusion_matrix(y_test, y_pred), "out/confusion.png",
                              class_names=data.FASHION_MNIST_CLASSES)
    viz.plot_clips(clips[:4], "out/clips.png", labels=y[:4], class_names=data.MOVING_FASHION_MNIST_CLASSES)

Every function returns the path it wrote (a ``pathlib.Path``) and creates
missing parent directories.
"""
from __future__ import annotations

import math
import os
import pathlib
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .nn import Module
    from .train import History

__all__ = ["plot_history", "plot_filters", "plot_feature_maps", "plot_confusion_matrix", "plot_clips"]

PathLike = Union[str, "os.PathLike[str]"]
#: What :func:`plot_history` takes: a History, its ``.history`` dict, or a JSON file of one.
HistoryLike = Union["History", Mapping[str, Sequence[float]], PathLike]


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure on the Agg canvas (pyplot untouched)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("pycnn.viz needs matplotlib, which is not installed: "
                          "pip install \"pycnn[viz]\" (or pip install matplotlib)") from None
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: PathLike) -> pathlib.Path:
    p = pathlib.Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, format="png", bbox_inches="tight")
    return p


def _history_dict(history: HistoryLike) -> Mapping[str, Sequence[float]]:
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        return history.history
    if isinstance(history, Mapping):
        return history
    if isinstance(history, (str, os.PathLike)):
        from .train import History

        return History.from_json(history).history
    raise TypeError(f"plot_history: expected a History, a dict of lists or a JSON file, got {type(history).__name__}")


def plot_history(history: HistoryLike, path: PathLike, title: Optional[str] = None) -> pathlib.Path:
    """Training curves: loss, and accuracy and learning rate when recorded, train vs validation, per epoch.

    Args:
        history: what :func:`pycnn.train.fit` returned, its ``.history``
            dict, or a file written by ``History.to_json``.
        path: the PNG to write.
        title: above the plots.
    """
    h = _history_dict(history)
    panels = [key for key in ("loss", "accuracy", "lr") if key in h or f"val_{key}" in h]
    if not panels:
        raise ValueError(f"plot_history: nothing to plot; the history has {sorted(h)}")
    fig = _figure(4.2 * len(panels), 3.4)
    for i, key in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for name, style in ((key, "o-"), (f"val_{key}", "s--")):
            if name in h and len(h[name]):
                values = np.asarray(h[name], dtype=np.float64)
                ax.plot(np.arange(1, len(values) + 1), values, style, label=name.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel({"lr": "learning rate"}.get(key, key))
        n = max(len(h.get(key, [])), len(h.get(f"val_{key}", [])))
        ax.set_xticks(range(1, n + 1) if n <= 20 else np.linspace(1, n, 10).round().astype(int))
        ax.grid(True, alpha=0.3)
        if key != "lr":
            ax.legend()
    fig.suptitle(title or "Training history")
    return _save(fig, path)


def _first_conv(model: Module) -> Module:
    from .nn.module import Module

    if not isinstance(model, Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    for _, m in model.named_modules():
        w = getattr(m, "weight", None)
        if w is not None and getattr(w, "ndim", 0) == 4:
            return m
    raise ValueError(f"no convolution layer (a 4-D weight) in {type(model).__name__}")


def _grid(n: int) -> Tuple[int, int]:
    cols = int(math.ceil(math.sqrt(n)))
    return int(math.ceil(n / cols)), cols


def plot_filters(model: Module, path: PathLike, max_filters: int = 64) -> pathlib.Path:
    """A grid of the first convolution layer's filters (or of ``model`` itself if it is one).

    Each filter is scaled to its own range; 3-channel filters are shown in
    colour, others as the mean over their input channels in grey.
    """
    conv = _first_conv(model)
    w = np.asarray(conv.weight.data, dtype=np.float64)[:max_filters]
    k, c = w.shape[:2]
    rows, cols = _grid(k)
    fig = _figure(1.1 * cols + 0.5, 1.1 * rows + 0.6)
    for i in range(k):
        ax = fig.add_subplot(rows, cols, i + 1)
        f = w[i]
        if c == 3:
            img = np.transpose(f, (1, 2, 0))
            lo, hi = img.min(), img.max()
            ax.imshow((img - lo) / (hi - lo) if hi > lo else np.zeros_like(img), interpolation="nearest")
        else:
            img = f.mean(axis=0)
            ax.imshow(img, cmap="gray", interpolation="nearest")
        ax.set_axis_off()
    kh, kw = w.shape[2:]
    fig.suptitle(f"{type(conv).__name__} filters ({conv.weight.shape[0]} x {c} x {kh} x {kw})")
    return _save(fig, path)


def plot_feature_maps(model: Module, x: ArrayLike, path: PathLike, max_channels: int = 16) -> pathlib.Path:
    """The feature maps of one input through each convolution layer of ``model``.

    Row 0 shows the input; then one row per convolution layer (in the order
    they run) with its first ``max_channels`` output channels.

    Args:
        model: the network (run in ``eval()`` mode; its mode is restored).
        x: one input, ``(C, H, W)`` or ``(1, C, H, W)``.
        path: the PNG to write.
        max_channels: channels shown per layer.
    """
    from ._summary import record_outputs

    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"plot_feature_maps: expected one input (C, H, W) or (1, C, H, W), got {x.shape}")
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with record_outputs(model) as records:
            model(x)
    finally:
        if was_training:
            model.train()
    maps = [(name, type(m).__name__, out) for name, m, out in records
            if getattr(getattr(m, "weight", None), "ndim", 0) == 4 and isinstance(out, np.ndarray) and out.ndim == 4]
    if not maps:
        raise ValueError(f"plot_feature_maps: {type(model).__name__} has no convolution layer producing feature maps")
    cols = max(1, min(max_channels, max(out.shape[1] for _, _, out in maps)))
    rows = len(maps) + 1
    fig = _figure(1.2 * cols + 1.5, 1.3 * rows + 0.4)
    ax = fig.add_subplot(rows, cols, 1)
    img = x[0].transpose(1, 2, 0) if x.shape[1] == 3 else x[0, 0]
    ax.imshow(img, cmap=None if x.shape[1] == 3 else "gray", interpolation="nearest")
    ax.set_title("input", fontsize=8)
    ax.set_axis_off()
    for r, (name, kind, out) in enumerate(maps, start=1):
        for ch in range(min(cols, out.shape[1])):
            ax = fig.add_subplot(rows, cols, r * cols + ch + 1)
            ax.imshow(out[0, ch], cmap="viridis", interpolation="nearest")
            ax.set_axis_off()
            if ch == 0:
                ax.set_title(f"{name} ({kind}) {out.shape[1]}x{out.shape[2]}x{out.shape[3]}", fontsize=8, loc="left")
    fig.suptitle("Feature maps")
    return _save(fig, path)


def plot_confusion_matrix(cm: ArrayLike, path: PathLike, class_names: Optional[Sequence[str]] = None,
                          normalize: bool = False, title: Optional[str] = None) -> pathlib.Path:
    """The confusion matrix as an image: rows are true classes, columns predicted ones.

    Args:
        cm: a square matrix of counts, e.g. :func:`pycnn.metrics.confusion_matrix`.
        path: the PNG to write.
        class_names: tick labels (default 0, 1, ...).
        normalize: show each row as fractions of its true class.
        title: above the matrix.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"plot_confusion_matrix: expected a square matrix, got shape {cm.shape}")
    n = cm.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(n))]
    if len(names) != n:
        raise ValueError(f"plot_confusion_matrix: {len(names)} class names for a {n}x{n} matrix")
    values = cm.astype(np.float64)
    if normalize:
        with np.errstate(all="ignore"):
            values = np.nan_to_num(values / values.sum(axis=1, keepdims=True))
    size = max(4.0, 0.6 * n + 2.5)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(values, cmap="Blues", interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        top = values.max() if values.size else 0
        for i in range(n):
            for j in range(n):
                text = f"{values[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if values[i, j] > 0.5 * top else "black")
    ax.set_title(title or ("Confusion matrix" + (" (normalised by true class)" if normalize else "")))
    return _save(fig, path)


def plot_clips(clips: ArrayLike, path: PathLike, labels: Optional[ArrayLike] = None,
               class_names: Optional[Sequence[str]] = None, max_clips: int = 8) -> pathlib.Path:
    """Video clips as a film strip: one row per clip, one column per frame (grey, one shared range).

    Args:
        clips: ``(N, 1, T, H, W)`` (what ``nn.Conv3d`` takes) or ``(N, T, H, W)``.
        path: the PNG to write.
        labels: one class per clip, shown at the start of its row.
        class_names: names for the labels (default: the numbers).
        max_clips: rows drawn at most.
    """
    v = np.asarray(clips, dtype=np.float64)
    if v.ndim == 5 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 4 or v.shape[0] == 0 or v.shape[1] == 0:
        raise ValueError(f"plot_clips: expected clips (N, 1, T, H, W) or (N, T, H, W), got {np.shape(clips)}")
    v = v[:max_clips]
    n, frames = v.shape[:2]
    names = None
    if labels is not None:
        lab = np.asarray(labels).reshape(-1)
        if len(lab) < n:
            raise ValueError(f"plot_clips: {len(lab)} labels for {n} clips")
        names = [str(class_names[int(c)]) if class_names is not None else str(int(c)) for c in lab[:n]]
    lo, hi = float(v.min()), float(v.max())
    fig = _figure(1.0 * frames + 0.4, 1.05 * n + 0.5)
    for i in range(n):
        for t in range(frames):
            ax = fig.add_subplot(n, frames, i * frames + t + 1)
            ax.imshow(v[i, t], cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
            ax.set_axis_off()
            if t == 0 and names is not None:
                ax.set_title(names[i], fontsize=7, loc="left")
    fig.suptitle(f"{n} clips of {frames} frames (time runs left to right)")
    return _save(fig, path)


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
