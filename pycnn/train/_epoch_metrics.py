"""``fit(..., metrics=[...])`` and ``evaluate(..., metrics=[...])``: extra scores recorded per epoch.

A metric is a name or a function. Names, for classifiers (outputs
``(N, classes)``, integer targets):

* ``"precision"``, ``"recall"``, ``"f1"``: macro averages over the classes
  present in the targets or the predictions (:mod:`pycnn.metrics` with
  ``average="macro"``; a class never predicted counts 0, without a warning);
* ``"top_k_accuracy"`` (k = 5) or ``"top3_accuracy"`` for another k
  (:func:`pycnn.metrics.top_k_accuracy_score`);
* ``"accuracy"`` is always recorded for classifiers; naming it changes nothing.

A function is called as ``f(y_true, outputs)`` on the whole epoch's targets
and raw model outputs (logits) and returns a float; it is recorded under its
``__name__``, or pass a pair ``("name", f)`` (needed for a lambda).

Training metrics are over the outputs the model gave during the epoch while
it was learning (Keras's convention, as for ``loss`` and ``accuracy``);
validation ones (``val_f1``, ...) over a pass in ``eval()`` mode afterwards.
"""
from __future__ import annotations

import re
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

MetricFn = Callable[[np.ndarray, np.ndarray], float]

_TOP_K = re.compile(r"top(\d*)_accuracy$")


def _classifier_labels(op: str, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    if out.ndim != 2 or y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"{op} is a classification metric: it needs (N, classes) outputs and integer class "
                         f"targets (N,), got outputs {out.shape} and targets {y.shape} {y.dtype}")
    return np.argmax(out, axis=1)


def _averaged(name: str) -> MetricFn:
    from .. import metrics

    score = {"precision": metrics.precision_score, "recall": metrics.recall_score, "f1": metrics.f1_score}[name]

    def metric(y: np.ndarray, out: np.ndarray) -> float:
        return float(score(y, _classifier_labels(name, y, out), average="macro", zero_division=0.0))

    return metric


def _top_k(name: str, k: int) -> MetricFn:
    from .. import metrics

    def metric(y: np.ndarray, out: np.ndarray) -> float:
        _classifier_labels(name, y, out)
        return metrics.top_k_accuracy_score(y, out, k=k)

    return metric


def resolve(metrics: Optional[Sequence[Any]], op: str) -> List[Tuple[str, MetricFn]]:
    """``[(name, f(y_true, outputs))]`` for ``metrics``; a clear error for an unknown name or a bad entry."""
    if metrics is None:
        return []
    if isinstance(metrics, (str, bytes)) or callable(metrics) or not isinstance(metrics, (list, tuple)):
        raise TypeError(f"{op}: metrics must be a list, e.g. metrics=['f1'], got {metrics!r}")
    resolved: List[Tuple[str, MetricFn]] = []
    for m in metrics:
        if isinstance(m, str):
            if m == "accuracy":
                continue
            if m in ("precision", "recall", "f1"):
                resolved.append((m, _averaged(m)))
                continue
            match = _TOP_K.match(m)
            if match:
                k = int(match.group(1) or 5)
                if k < 1:
                    raise ValueError(f"{op}: metric {m!r} needs k >= 1")
                resolved.append((m, _top_k(m, k)))
                continue
            raise ValueError(f"{op}: unknown metric {m!r}; names are 'accuracy', 'precision', 'recall', 'f1', "
                             f"'top_k_accuracy' (k=5) and 'top<k>_accuracy' (e.g. 'top3_accuracy'), or pass a "
                             f"function f(y_true, outputs)")
        if isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str) and callable(m[1]):
            resolved.append((m[0], m[1]))
            continue
        if callable(m):
            name = getattr(m, "__name__", None)
            if not name or name == "<lambda>":
                raise ValueError(f"{op}: the metric {m!r} has no name; pass it as a pair ('name', f)")
            resolved.append((name, m))
            continue
        raise TypeError(f"{op}: a metric must be a name, a function f(y_true, outputs) or a pair ('name', f), "
                        f"got {m!r}")
    names = [n for n, _ in resolved]
    dup = {n for n in names if names.count(n) > 1}
    if dup or {"loss", "time", "images_per_s", "lr"} & set(names):
        raise ValueError(f"{op}: metric names must be distinct and not 'loss', 'time', 'images_per_s' or 'lr', "
                         f"got {names}")
    return resolved


class Accumulator:
    """Collects a pass's targets and outputs, batch by batch, to score the metrics on all of them."""

    def __init__(self, metrics: List[Tuple[str, MetricFn]]) -> None:
        self.metrics = metrics
        self._y: List[np.ndarray] = []
        self._out: List[np.ndarray] = []

    def add(self, y: np.ndarray, out: np.ndarray) -> None:
        if self.metrics:
            self._y.append(np.asarray(y))
            self._out.append(np.array(out, copy=True))  # the model may reuse its output buffer

    def scores(self) -> dict:
        if not self.metrics or not self._y:
            return {}
        y = np.concatenate(self._y)
        out = np.concatenate(self._out)
        return {name: float(fn(y, out)) for name, fn in self.metrics}
