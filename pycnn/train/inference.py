"""Inference: :func:`predict_outputs`, :func:`predict`, :func:`predict_proba` and :func:`evaluate`.

Each runs the model in ``eval()`` mode, in batches, and restores its mode
afterwards, even on error.
"""
from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, cast

import numpy as np

from .._checks import check_int, check_samples
from ._epoch_metrics import Accumulator
from ._epoch_metrics import resolve as resolve_metrics
from ._input_range import as_input_array as _as_input_array
from ._sources import DataSource, inputs_of, iter_batches, source_of

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


def _my_rows(n: int, batch_size: int, world: Any) -> slice:
    """This rank's share of ``n`` samples for distributed inference: a contiguous run of whole batches.

    Whole batches, so every batch is the one a single process would run and
    the results do not depend on the number of ranks.
    """
    batches = -(-n // batch_size)
    first, last = (batches * r // world.size for r in (world.rank, world.rank + 1))
    return slice(min(first * batch_size, n), min(last * batch_size, n))


def _check_same_samples(x: np.ndarray, op: str) -> None:
    from ..distributed.world import check_alike

    check_alike(f"{op}(distributed=True): every rank must pass the same samples",
                [("x", tuple(x.shape), x.dtype.str)])


def predict_outputs(model: Any, x: Any, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                    transform: Optional[TransformLike] = None, distributed: bool = False) -> np.ndarray:
    """Run ``model`` on ``x`` in batches in ``eval()`` mode; return all its raw outputs (logits, values).

    The model's mode (train/eval) is restored afterwards, even on error.

    Args:
        model: anything callable on a batch with ``train()``/``eval()``,
            e.g. an ``nn.Sequential``.
        x: inputs ``(N, ...)``, e.g. float32 images ``(N, C, H, W)``
            (float64, integers and lists converted to float32; see
            docs/training.md for uint8), or an iterable of batches, each an
            array of inputs or an ``(x, y)`` pair whose ``y`` is ignored: a
            :class:`pycnn.data.DataLoader`, a generator, or a function
            returning one (see :func:`fit`).
        batch_size: samples per forward call (arrays only).
        transform: preprocessing applied to every batch in evaluation mode
            (e.g. the ``data.Normalize`` used in training; random
            augmentations do nothing here).
        distributed: split the batches over the ranks of
            :mod:`pycnn.distributed` (joined if needed) and gather the
            outputs: every rank passes the same ``x`` and gets all ``N``
            outputs, the same as one process computes.

    Returns:
        The outputs stacked along the first axis, e.g. logits ``(N, classes)``;
        for an empty ``x`` (N = 0) the model's output for the empty batch,
        e.g. ``(0, classes)``.
    """
    batch_size = check_int(batch_size, "batch_size", "predict", 1)
    tf = _transform_fn(transform)
    source = source_of(x, None, "predict", 1, distributed, "")
    if source is not None:
        return _predict_source(model, source, tf)
    x = _as_input_array(x, model)
    if x.ndim == 0:
        raise ValueError(f"predict: x must have a leading sample dimension, got shape {x.shape}")
    if distributed:
        from ..distributed.world import joined

        world = joined()
        if world.size > 1:
            _check_same_samples(x, "predict")
            mine = predict_outputs(model, x[_my_rows(len(x), batch_size, world)], batch_size, transform)
            return world.allgatherv(mine)
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


def _predict_source(model: Any, source: DataSource, tf: Optional[_BatchFn]) -> np.ndarray:
    """predict_outputs over the batches of a data source (each an array of inputs or an (x, y) pair)."""
    outs: List[np.ndarray] = []
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        for item in source.passes():
            xb = _as_input_array(inputs_of(item), model)
            if tf is not None:
                xb = tf(xb, None, False)
            outs.append(np.array(model(xb), copy=True))
    finally:
        _set_mode(model, was_training)
    if not outs:
        raise ValueError("predict: the iterable of batches yielded no batch")
    return np.concatenate(outs)


def _class_scores(model: Any, x: Any, batch_size: int, transform: Optional[TransformLike],
                  who: str, distributed: bool) -> np.ndarray:
    out = predict_outputs(model, x, batch_size, transform, distributed)
    if out.ndim != 2:
        raise ValueError(f"{who} is for classifiers, whose outputs are (N, classes) scores; this model gives "
                         f"outputs of shape {out.shape}: use predict_outputs() for raw outputs")
    return out


def predict(model: Any, x: Any, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
            transform: Optional[TransformLike] = None, distributed: bool = False) -> np.ndarray:
    """Predicted class labels, ``(N,)`` int64: the argmax of the model's ``(N, classes)`` outputs.

    Runs in ``eval()`` mode in batches (see :func:`predict_outputs`, which
    returns the raw outputs and explains ``distributed``, and :func:`predict_proba`).
    """
    return np.argmax(_class_scores(model, x, batch_size, transform, "predict", distributed),
                     axis=1).astype(np.int64)


def predict_proba(model: Any, x: Any, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                  transform: Optional[TransformLike] = None, distributed: bool = False) -> np.ndarray:
    """Class probabilities, ``(N, classes)`` float32: the softmax of the model's outputs (logits).

    Each row sums to 1; ``predict_proba(...).argmax(1) == predict(...)``.
    """
    from .. import functional as F

    return F.softmax(_class_scores(model, x, batch_size, transform, "predict_proba", distributed), axis=1)


def evaluate(model: Any, x: Any, y: Optional[ArrayLike] = None, batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
             loss_fn: Any = None, transform: Optional[TransformLike] = None,
             distributed: bool = False, metrics: Optional[Sequence[Any]] = None) -> Dict[str, float]:
    """Loss and accuracy of ``model`` on ``(x, y)``, in ``eval()`` mode, in batches.

    The model's mode is restored afterwards, even on error.

    Args:
        model: the network (see :func:`predict_outputs`).
        x: inputs ``(N, ...)``, or (with ``y=None``) an iterable of
            ``(x, y)`` batches: a :class:`pycnn.data.DataLoader`, a
            generator, or a function returning one (see :func:`fit`).
        y: targets ``(N, ...)``; class indices ``(N,)`` for classification.
        batch_size: samples per forward call (arrays only: a data source
            makes its own batches).
        loss_fn: a loss module called as ``loss_fn(outputs, y_batch)``
            returning the batch mean; ``nn.CrossEntropyLoss()`` if None.
        transform: preprocessing in evaluation mode (see :func:`predict_outputs`).
        distributed: split the batches over the ranks of
            :mod:`pycnn.distributed` (joined if needed) and combine their
            results: every rank passes the same data and gets the same
            result, equal to what one process computes (the per-batch sums
            are added exactly, with ``math.fsum``, whatever their order).
        metrics: extra scores, e.g. ``["f1", "top3_accuracy"]`` (see
            :func:`fit`; not with ``distributed``).

    Returns:
        ``{"loss": mean loss over all samples, "accuracy": fraction of
        correct argmax predictions}`` and one entry per metric; ``accuracy``
        only for classification (2-D outputs and integer labels). For the
        confusion matrix, see :mod:`pycnn.metrics` on :func:`predict`'s labels.
    """
    batch_size = check_int(batch_size, "batch_size", "evaluate", 1)
    tf = _transform_fn(transform)
    extra = Accumulator(resolve_metrics(metrics, "evaluate"))
    if loss_fn is None:
        loss_fn = _default_loss()
    world = None
    batches: Iterable[Tuple[np.ndarray, np.ndarray]]
    source = source_of(x, y, "evaluate", 1, distributed, "evaluate(model, loader)")
    if source is not None:
        batches = iter_batches(source)
    else:
        if y is None:
            raise ValueError("evaluate: y is None: pass the targets y with the inputs x, or x as an iterable of "
                             "(x, y) batches (e.g. a pycnn.data.DataLoader)")
        x, y = check_samples(_as_input_array(x, model), y, allow_empty=False)
        rows = slice(0, len(x))
        if distributed:
            from ..distributed.world import joined

            world = joined()
            if world.size > 1:
                if extra.metrics:
                    raise ValueError("evaluate: metrics are not available with distributed=True")
                _check_same_samples(x, "evaluate")
                rows = _my_rows(len(x), batch_size, world)
        batches = ((x[s : min(s + batch_size, rows.stop)], y[s : min(s + batch_size, rows.stop)])
                   for s in range(rows.start, rows.stop, batch_size))
    # Per batch: (loss x samples, correct predictions or None when not classification, samples).
    results: List[Tuple[float, Optional[int], int]] = []
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        for xb, yb in batches:
            xb = _as_input_array(xb, model)
            if tf is not None:
                xb = tf(xb, None, False)
            out = model(xb)
            results.append((float(loss_fn(out, yb)) * len(xb),
                            _n_correct(out, yb) if _is_classification(out, yb) else None, len(xb)))
            extra.add(yb, out)
    finally:
        _set_mode(model, was_training)
    if world is not None and world.size > 1:
        results = [r for rank_results in world.allgather_object(results) for r in rank_results]
    n = sum(size for _, _, size in results)
    if n == 0:
        raise ValueError("evaluate: the iterable of batches yielded no sample")
    result = {"loss": math.fsum(loss for loss, _, _ in results) / n}
    if all(correct is not None for _, correct, _ in results):
        result["accuracy"] = sum(cast(int, correct) for _, correct, _ in results) / n
    result.update(extra.scores())
    return result
