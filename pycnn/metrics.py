"""Classification metrics with scikit-learn's names, arguments and results, in plain NumPy.

::

    from pycnn import metrics
    y_pred = pycnn.train.predict(model, x_test)
    metrics.accuracy_score(y_test, y_pred)
    metrics.f1_score(y_test, y_pred, average="macro")
    metrics.confusion_matrix(y_test, y_pred)          # rows: true class, columns: predicted
    print(metrics.classification_report(y_test, y_pred, target_names=data.FASHION_MNIST_CLASSES))

Labels are any 1-D arrays of class values (ints or strings); the classes are
the sorted union of those in ``y_true`` and ``y_pred`` unless ``labels``
names them. ``average`` is, as in scikit-learn:

* ``None``: one score per class (in ``labels`` order);
* ``"binary"`` (the default of precision/recall/F1): the score of class
  ``pos_label``; only for two classes;
* ``"micro"``: from the true/false positives summed over classes (equals
  accuracy when every class is counted);
* ``"macro"``: the unweighted mean of the per-class scores;
* ``"weighted"``: their mean weighted by each class's support (true count).

When a score divides by zero (a class never predicted has no precision),
``zero_division`` decides: ``"warn"`` (0.0 and an
:class:`UndefinedMetricWarning`), ``0.0``, ``1.0`` or ``np.nan`` (left out of
averages).
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ._checks import check_int

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

#: ``"warn"``, ``0.0``, ``1.0`` or ``np.nan`` (see the module docstring).
ZeroDivision = Union[str, float]

__all__ = [
    "UndefinedMetricWarning",
    "accuracy_score",
    "top_k_accuracy_score",
    "confusion_matrix",
    "precision_recall_fscore_support",
    "precision_score",
    "recall_score",
    "f1_score",
    "classification_report",
]

_AVERAGES = (None, "binary", "micro", "macro", "weighted")


class UndefinedMetricWarning(UserWarning):
    """A score was ill-defined (a division by zero) and was set by ``zero_division``."""


def _targets(y_true: ArrayLike, y_pred: ArrayLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, y_pred, sorted classes present) as 1-D arrays; raises on bad input."""
    arrays = []
    for name, a in (("y_true", y_true), ("y_pred", y_pred)):
        a = np.asarray(a)
        if a.ndim == 2 and a.shape[1] == 1:  # a column vector
            a = a[:, 0]
        if a.ndim != 1:
            hint = (" (scores? take argmax(axis=1), or use pycnn.train.predict)"
                    if a.ndim == 2 and a.dtype.kind == "f" else "")
            raise ValueError(f"{name} must be 1-D class labels, got shape {a.shape}{hint}")
        if a.dtype.kind not in "biufUSO":
            raise TypeError(f"{name} must hold class labels (ints or strings), got dtype {a.dtype}")
        if a.dtype.kind == "f" and a.size and not np.all(a == np.round(a)):
            raise ValueError(f"{name} holds non-integer values: classification metrics need class labels")
        arrays.append(a)
    t, p = arrays
    if len(t) != len(p):
        raise ValueError(f"y_true and y_pred have different lengths: {len(t)} and {len(p)}")
    if len(t) and (t.dtype.kind in "USO") != (p.dtype.kind in "USO"):
        raise TypeError(f"y_true and y_pred mix string and number labels ({t.dtype} and {p.dtype})")
    classes = np.unique(np.concatenate([t, p]))
    return t, p, classes


def _labels(labels: Optional[ArrayLike], classes: np.ndarray) -> np.ndarray:
    if labels is None:
        return classes
    lab = np.asarray(labels)
    if lab.ndim != 1 or len(lab) == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence, got {labels!r}")
    if len(np.unique(lab)) != len(lab):
        raise ValueError(f"labels contains duplicates: {labels!r}")
    return lab


def _index(a: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(position of each element of ``a`` in ``labels``, whether it is there at all)."""
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    pos = np.clip(np.searchsorted(ordered, a), 0, len(ordered) - 1)
    found = ordered[pos] == a
    return order[pos], found


def _counts(t: np.ndarray, p: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per label: true positives, predicted count, true count (int64 arrays)."""
    n = len(labels)
    ti, t_in = _index(t, labels)
    pi, p_in = _index(p, labels)
    true = np.bincount(ti[t_in], minlength=n).astype(np.int64)
    pred = np.bincount(pi[p_in], minlength=n).astype(np.int64)
    hit = t_in & p_in & (ti == pi)
    tp = np.bincount(ti[hit], minlength=n).astype(np.int64)
    return tp, pred, true


def _zero_division_value(zero_division: ZeroDivision) -> float:
    if isinstance(zero_division, str):
        if zero_division != "warn":
            raise ValueError(f"zero_division must be 'warn', 0.0, 1.0 or np.nan, got {zero_division!r}")
        return 0.0
    z = float(zero_division)
    if not (np.isnan(z) or z in (0.0, 1.0)):
        raise ValueError(f"zero_division must be 'warn', 0.0, 1.0 or np.nan, got {zero_division!r}")
    return z


def _divide(num: ArrayLike, den: ArrayLike, metric: str, modifier: str, zero_division: ZeroDivision,
            warn: bool) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    zero = den == 0
    out = np.divide(num, np.where(zero, 1.0, den))
    if np.any(zero):
        out[zero] = _zero_division_value(zero_division)
        if warn and zero_division == "warn":
            warnings.warn(f"{metric.capitalize()} is ill-defined and being set to 0.0 in labels with no "
                          f"{modifier} samples. Use `zero_division` parameter to control this behavior.",
                          UndefinedMetricWarning, stacklevel=4)
    return out


def _nanaverage(a: np.ndarray, weights: Optional[np.ndarray] = None) -> float:
    if len(a) == 0:
        return float("nan")
    keep = ~np.isnan(a)
    if not np.any(keep):
        return float("nan")
    if weights is None:
        return float(np.mean(a[keep]))
    w = np.asarray(weights, dtype=np.float64)[keep]
    if w.sum() == 0:
        return float(np.mean(a[keep]))
    return float(np.average(a[keep], weights=w))


def accuracy_score(y_true: ArrayLike, y_pred: ArrayLike, normalize: bool = True) -> float:
    """Fraction of samples whose predicted label equals the true one (their count if ``normalize=False``)."""
    t, p, _ = _targets(y_true, y_pred)
    correct = int(np.count_nonzero(t == p))
    if not normalize:
        return float(correct)
    if len(t) == 0:
        return float("nan")
    return correct / len(t)


def top_k_accuracy_score(y_true: ArrayLike, y_score: ArrayLike, *, k: int = 5, normalize: bool = True) -> float:
    """Fraction of samples whose true class is among the ``k`` highest of their scores (their count if not ``normalize``).

    ``y_true`` holds class indices ``0 .. C-1``, ``y_score`` is ``(N, C)``
    (logits or probabilities: only their order matters). Ties are broken as
    scikit-learn's ``top_k_accuracy_score`` breaks them (the later class
    ranks first); ``k >= C`` counts every sample as correct.
    """
    k = check_int(k, "k", "top_k_accuracy_score", 1)
    t = np.asarray(y_true)
    s = np.asarray(y_score)
    if t.ndim != 1 or s.ndim != 2 or len(t) != len(s):
        raise ValueError(f"top_k_accuracy_score: expected y_true (N,) and y_score (N, classes), got shapes "
                         f"{t.shape} and {s.shape}")
    if t.dtype.kind not in "iu" or (len(t) and (t.min() < 0 or t.max() >= s.shape[1])):
        raise ValueError(f"top_k_accuracy_score: y_true must hold class indices in [0, {s.shape[1]})")
    top = np.argsort(s, axis=1, kind="mergesort")[:, ::-1][:, :k]
    hits = int(np.count_nonzero((top == t[:, None]).any(axis=1)))
    if not normalize:
        return float(hits)
    return hits / len(t) if len(t) else float("nan")


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, labels: Optional[ArrayLike] = None,
                     normalize: Optional[str] = None) -> np.ndarray:
    """``C[i, j]``: samples of true class ``labels[i]`` predicted as ``labels[j]``.

    Args:
        y_true, y_pred: 1-D class labels.
        labels: the classes, in row/column order (default: sorted union of
            both); samples of other classes are left out.
        normalize: None (counts, int64), ``"true"`` (each row sums to 1),
            ``"pred"`` (each column sums to 1) or ``"all"`` (the matrix sums to 1).
    """
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be one of None, 'true', 'pred', 'all', got {normalize!r}")
    t, p, classes = _targets(y_true, y_pred)
    lab = _labels(labels, classes)
    if labels is not None and len(t) and not _index(t, lab)[1].any():
        raise ValueError("At least one label specified must be in y_true")
    n = len(lab)
    ti, t_in = _index(t, lab)
    pi, p_in = _index(p, lab)
    keep = t_in & p_in
    cm = np.bincount(ti[keep] * n + pi[keep], minlength=n * n).reshape(n, n).astype(np.int64)
    if normalize is None:
        return cm
    with np.errstate(all="ignore"):
        if normalize == "true":
            out = cm / cm.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            out = cm / cm.sum(axis=0, keepdims=True)
        else:
            out = cm / cm.sum()
    return np.nan_to_num(out)


def precision_recall_fscore_support(y_true: ArrayLike, y_pred: ArrayLike, *, beta: float = 1.0,
                                    labels: Optional[ArrayLike] = None, pos_label: Any = 1,
                                    average: Optional[str] = None, zero_division: ZeroDivision = "warn",
                                    _warn_for: Sequence[str] = ("precision", "recall", "f-score")
                                    ) -> Tuple[Union[float, np.ndarray], Union[float, np.ndarray],
                                               Union[float, np.ndarray], Optional[np.ndarray]]:
    """Precision, recall, F-beta and support, per class or averaged (scikit-learn's function).

    Returns ``(precision, recall, fbeta, support)``: arrays over ``labels``
    when ``average`` is None, else floats with ``support`` None.
    ``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)``,
    ``F = (1 + beta^2) tp / ((1 + beta^2) tp + beta^2 fn + fp)``.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average has to be one of {_AVERAGES}, got {average!r}")
    if beta < 0:
        raise ValueError(f"beta should be >= 0, got {beta}")
    _zero_division_value(zero_division)
    t, p, classes = _targets(y_true, y_pred)
    if average == "binary":
        if len(classes) > 2:
            raise ValueError("Target is multiclass but average='binary'. Please choose another average "
                             "setting, one of [None, 'micro', 'macro', 'weighted'].")
        present = [c.item() if hasattr(c, "item") else c for c in classes]
        if pos_label not in present and len(present) >= 2:
            raise ValueError(f"pos_label={pos_label!r} is not a valid label. It should be one of {present}")
        lab = np.asarray([pos_label])
    else:
        lab = _labels(labels, classes)
    tp, pred, true = _counts(t, p, lab)
    if average == "micro":
        tp, pred, true = np.array([tp.sum()]), np.array([pred.sum()]), np.array([true.sum()])
    precision = _divide(tp, pred, "precision", "predicted", zero_division, "precision" in _warn_for)
    recall = _divide(tp, true, "recall", "true", zero_division, "recall" in _warn_for)
    beta2 = float(beta) ** 2
    if np.isposinf(beta):
        f = recall
    elif beta == 0:
        f = precision
    else:
        f = _divide((1 + beta2) * tp, beta2 * true + pred, "f-score", "true nor predicted", zero_division,
                    "f-score" in _warn_for)
    if average is None:
        return precision, recall, f, true
    weights = true if average == "weighted" else None
    return _nanaverage(precision, weights), _nanaverage(recall, weights), _nanaverage(f, weights), None


def precision_score(y_true: ArrayLike, y_pred: ArrayLike, *, labels: Optional[ArrayLike] = None,
                    pos_label: Any = 1, average: Optional[str] = "binary",
                    zero_division: ZeroDivision = "warn") -> Union[float, np.ndarray]:
    """``tp / (tp + fp)``: of the samples predicted as a class, the fraction that are of it."""
    p, _, _, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, pos_label=pos_label,
                                                 average=average, zero_division=zero_division,
                                                 _warn_for=("precision",))
    return p


def recall_score(y_true: ArrayLike, y_pred: ArrayLike, *, labels: Optional[ArrayLike] = None,
                 pos_label: Any = 1, average: Optional[str] = "binary",
                 zero_division: ZeroDivision = "warn") -> Union[float, np.ndarray]:
    """``tp / (tp + fn)``: of the samples of a class, the fraction predicted as it."""
    _, r, _, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, pos_label=pos_label,
                                                 average=average, zero_division=zero_division,
                                                 _warn_for=("recall",))
    return r


def f1_score(y_true: ArrayLike, y_pred: ArrayLike, *, labels: Optional[ArrayLike] = None,
             pos_label: Any = 1, average: Optional[str] = "binary",
             zero_division: ZeroDivision = "warn") -> Union[float, np.ndarray]:
    """The harmonic mean of precision and recall: ``2 tp / (2 tp + fp + fn)``."""
    _, _, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, pos_label=pos_label,
                                                 average=average, zero_division=zero_division,
                                                 _warn_for=("f-score",))
    return f


def classification_report(y_true: ArrayLike, y_pred: ArrayLike, *, labels: Optional[ArrayLike] = None,
                          target_names: Optional[Sequence[str]] = None,
                          digits: int = 2, output_dict: bool = False,
                          zero_division: ZeroDivision = "warn") -> Union[str, Dict[str, object]]:
    """Precision, recall, F1 and support per class, then accuracy and the macro and weighted averages.

    The text is laid out as scikit-learn's::

                      precision    recall  f1-score   support

             Trouser       0.97      0.96      0.97      1000
                 ...
            accuracy                           0.89     10000
           macro avg       0.89      0.89      0.89     10000
        weighted avg       0.89      0.89      0.89     10000

    ``output_dict=True`` returns ``{class name: {"precision": ..., "recall":
    ..., "f1-score": ..., "support": ...}, "accuracy": float, "macro avg":
    {...}, "weighted avg": {...}}`` instead. The "accuracy" row becomes
    "micro avg" when ``labels`` leaves some present classes out.
    """
    t, p, classes = _targets(y_true, y_pred)
    labels_given = labels is not None
    lab = _labels(labels, classes)
    micro_is_accuracy = not labels_given or set(np.asarray(classes).tolist()) <= set(np.asarray(lab).tolist())
    if target_names is None:
        names = [f"{v}" for v in np.asarray(lab).tolist()]
    else:
        names = [str(n) for n in target_names]
        if len(names) != len(lab):
            raise ValueError(f"Number of classes, {len(lab)}, does not match size of target_names, {len(names)}. "
                             "Try specifying the labels parameter")
    headers = ["precision", "recall", "f1-score", "support"]
    prec, rec, f1, sup = precision_recall_fscore_support(t, p, labels=lab, average=None,
                                                         zero_division=zero_division)
    rows = list(zip(names, np.asarray(prec), np.asarray(rec), np.asarray(f1), np.asarray(sup)))
    averages = []
    for avg in ("micro", "macro", "weighted"):
        heading = "accuracy" if avg == "micro" and micro_is_accuracy else f"{avg} avg"
        ap, ar, af, _ = precision_recall_fscore_support(t, p, labels=lab, average=avg, zero_division=zero_division)
        averages.append((heading, ap, ar, af, int(np.sum(np.asarray(sup)))))

    if output_dict:
        report: Dict[str, object] = {}
        for name, *scores in rows:
            report[name] = dict(zip(headers, [float(v) for v in scores]))
        for heading, *scores in averages:
            if heading == "accuracy":
                report[heading] = float(scores[2])
            else:
                report[heading] = dict(zip(headers, [float(v) for v in scores]))
        return report

    width = max(max((len(n) for n in names), default=0), len("weighted avg"), digits)
    head_fmt = "{:>{width}s} " + " {:>9}" * len(headers)
    text = head_fmt.format("", *headers, width=width) + "\n\n"
    row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    for name, pr, rc, fs, s in rows:
        text += row_fmt.format(name, pr, rc, fs, int(s), width=width, digits=digits)
    text += "\n"
    for heading, pr, rc, fs, s in averages:
        if heading == "accuracy":
            acc_fmt = "{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f}" + " {:>9}\n"
            text += acc_fmt.format(heading, "", "", fs, s, width=width, digits=digits)
        else:
            text += row_fmt.format(heading, pr, rc, fs, s, width=width, digits=digits)
    return text


def __dir__() -> list[str]:
    """The public names (``__all__``) only, for ``dir()`` and tab completion."""
    return sorted(__all__)
