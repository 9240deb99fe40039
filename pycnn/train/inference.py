"""Inference: :func:`predict_outputs`, :func:`predict`, :func:`predict_proba` and :func:`evaluate`.

Each runs the model in ``eval()`` mode, in batches, and restores its mode
afterwards, even on error.
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, cast

import numpy as np

from .._checks import check_int, check_samples

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    #: ``f(x, rng, training)``, the form every transform is called in (see :func:`_transform_fn`).
    _BatchFn = Callable[[np.ndarray, Optional[np.random.Generator], bool], np.ndarray]

#: Batch size :func:`evaluate` and :func:`predict` use when none is given.
#: Inference needs no saved activations, so larger batches than training's
#: are cheap and amortise per-call overhead.
DEFAULT_EVAL_BATCH_SIZE = 256

#: A batch transform as :func:`fit` and the functions here take it: a
#: :class:`pycnn.data.Transform` or a plain function ``f(x)``.
TransformLike = Callable[..., np.ndarray]


def _is_classification(logits: np.ndarray, y: np.ndarray) -> bool:
    return logits.ndim == 2 and y.ndim == 1 and y.dtype.kind in "iu"


def _n_correct(logits: np.ndarray, y: np.ndarray) -> int:
    return int(np.count_nonzero(np.argmax(logits, axis=1) == y))


def _set_mode(model: Any, training: bool) -> None:
    if training:
        model.train()
    else:
        model.eval()


def _default_loss() -> Any:
    from ..nn import CrossEntropyLoss

    return CrossEntropyLoss()


def _transform_fn(transform: Optional[TransformLike]) -> Optional[_BatchFn]:
    """``f(x, rng, training)`` for a transform (see :mod:`pycnn.data`), or None."""
    if transform is None:
        return None
    if not callable(transform):
        raise TypeError(f"transform must be callable, got {type(transform).__name__}")
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(transform).parameters
    except (TypeError, ValueError):
        params = {}
    has_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if has_kw or ("rng" in params and "training" in params):
        return lambda x, rng, training: transform(x, rng=rng, training=training)

    # A plain function f(x) is an augmentation: training batches only.
    def plain(x: np.ndarray, rng: Optional[np.random.Generator], training: bool) -> np.ndarray:
        return transform(x) if training else x

    return plain


def predict_outputs(model: Any, x: ArrayLike, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                    transform: Optional[TransformLike] = None) -> np.ndarray:
    """Run ``model`` on ``x`` in batches in ``eval()`` mode; return all its raw outputs (logits, values).

    The model's mode (train/eval) is restored afterwards, even on error.

    Args:
        model: anything callable on a batch with ``train()``/``eval()``,
            e.g. an ``nn.Sequential``.
        x: inputs ``(N, ...)``, e.g. float32 images ``(N, C, H, W)``.
        batch_size: samples per forward call.
        transform: preprocessing applied to every batch in evaluation mode
            (e.g. the ``data.Normalize`` used in training; random
            augmentations do nothing here).

    Returns:
        The outputs stacked along the first axis, e.g. logits ``(N, classes)``;
        for an empty ``x`` (N = 0) the model's output for the empty batch,
        e.g. ``(0, classes)``.
    """
    batch_size = check_int(batch_size, "batch_size", "predict", 1)
    tf = _transform_fn(transform)
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"predict: x must have a leading sample dimension, got shape {x.shape}")
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        if len(x) == 0:  # pycnn's layers take empty batches: the output has the right shape
            return np.asarray(model(x))
        out: Optional[np.ndarray] = None
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            if tf is not None:
                xb = tf(xb, None, False)
            yb = np.asarray(model(xb))
            if out is None:
                out = np.empty((len(x),) + yb.shape[1:], dtype=yb.dtype)
            out[start : start + len(yb)] = yb
        return cast(np.ndarray, out)  # set by the first batch: len(x) > 0
    finally:
        _set_mode(model, was_training)


def _class_scores(model: Any, x: ArrayLike, batch_size: int, transform: Optional[TransformLike],
                  who: str) -> np.ndarray:
    out = predict_outputs(model, x, batch_size, transform)
    if out.ndim != 2:
        raise ValueError(f"{who} is for classifiers, whose outputs are (N, classes) scores; this model gives "
                         f"outputs of shape {out.shape}: use predict_outputs() for raw outputs")
    return out


def predict(model: Any, x: ArrayLike, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
            transform: Optional[TransformLike] = None) -> np.ndarray:
    """Predicted class labels, ``(N,)`` int64: the argmax of the model's ``(N, classes)`` outputs.

    Runs in ``eval()`` mode in batches (see :func:`predict_outputs`, which
    returns the raw outputs, and :func:`predict_proba`).
    """
    return np.argmax(_class_scores(model, x, batch_size, transform, "predict"), axis=1).astype(np.int64)


def predict_proba(model: Any, x: ArrayLike, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                  transform: Optional[TransformLike] = None) -> np.ndarray:
    """Class probabilities, ``(N, classes)`` float32: the softmax of the model's outputs (logits).

    Each row sums to 1; ``predict_proba(...).argmax(1) == predict(...)``.
    """
    from .. import functional as F

    return F.softmax(_class_scores(model, x, batch_size, transform, "predict_proba"), axis=1)


def evaluate(model: Any, x: ArrayLike, y: ArrayLike, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
             loss_fn: Any = None, transform: Optional[TransformLike] = None) -> Dict[str, float]:
    """Loss and accuracy of ``model`` on ``(x, y)``, in ``eval()`` mode, in batches.

    The model's mode is restored afterwards, even on error.

    Args:
        model: the network (see :func:`predict_outputs`).
        x: inputs ``(N, ...)``.
        y: targets ``(N, ...)``; class indices ``(N,)`` for classification.
        batch_size: samples per forward call.
        loss_fn: a loss module called as ``loss_fn(outputs, y_batch)``
            returning the batch mean; ``nn.CrossEntropyLoss()`` if None.
        transform: preprocessing in evaluation mode (see :func:`predict_outputs`).

    Returns:
        ``{"loss": mean loss over all samples, "accuracy": fraction of
        correct argmax predictions}``; ``accuracy`` only for classification
        (2-D outputs and integer labels). For precision, recall, F1 and the
        confusion matrix, see :mod:`pycnn.metrics` on :func:`predict`'s labels.
    """
    batch_size = check_int(batch_size, "batch_size", "predict", 1)
    tf = _transform_fn(transform)
    x, y = check_samples(x, y, allow_empty=False)
    if loss_fn is None:
        loss_fn = _default_loss()
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        total_loss = 0.0
        correct = 0
        classification = True
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            yb = y[start : start + batch_size]
            if tf is not None:
                xb = tf(xb, None, False)
            out = model(xb)
            total_loss += float(loss_fn(out, yb)) * len(xb)
            if classification and _is_classification(out, yb):
                correct += _n_correct(out, yb)
            else:
                classification = False
    finally:
        _set_mode(model, was_training)
    result = {"loss": total_loss / len(x)}
    if classification:
        result["accuracy"] = correct / len(x)
    return result
