"""pycnn.metrics against scikit-learn (a test-only dependency; skipped without it).

Every function is compared on many random label vectors (with and without a
``labels`` subset, every ``average`` and ``zero_division``), on string
labels, and on the corner cases where a score divides by zero.
"""
import warnings

import numpy as np
import pytest

from pycnn import metrics

skm = pytest.importorskip("sklearn.metrics")

AVERAGES = [None, "micro", "macro", "weighted"]
ZERO_DIVISION = ["warn", 0.0, 1.0, np.nan]


def cases(n_cases=40, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_cases):
        k = int(rng.integers(2, 7))
        n = int(rng.integers(1, 60))
        t = rng.integers(0, k, n)
        p = rng.integers(0, k, n)
        if i % 2:  # mostly right, as a trained classifier
            p = np.where(rng.random(n) < 0.75, t, p)
        labels = None
        if i % 4 == 3:  # a subset, in another order, maybe with an absent class
            labels = [int(v) for v in rng.permutation(k + 1)[: max(1, k - 1)]]
        out.append((t, p, labels))
    return out


CASES = cases()


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def assert_same(a, b, context):
    if a is None or b is None:
        assert a is None and b is None, context
        return
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                               rtol=1e-12, atol=0, equal_nan=True, err_msg=str(context))


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("zero_division", ZERO_DIVISION, ids=str)
def test_precision_recall_f1_support_match_sklearn(average, zero_division):
    for i, (t, p, labels) in enumerate(CASES):
        ours = quiet(metrics.precision_recall_fscore_support, t, p, labels=labels, average=average,
                     zero_division=zero_division)
        theirs = quiet(skm.precision_recall_fscore_support, t, p, labels=labels, average=average,
                       zero_division=zero_division)
        for name, a, b in zip(("precision", "recall", "f1", "support"), ours, theirs):
            assert_same(a, b, (i, name, t, p, labels))


@pytest.mark.parametrize("fn", ["precision_score", "recall_score", "f1_score"])
@pytest.mark.parametrize("average", AVERAGES)
def test_scores_match_sklearn(fn, average):
    for i, (t, p, labels) in enumerate(CASES):
        ours = quiet(getattr(metrics, fn), t, p, labels=labels, average=average, zero_division=0.0)
        theirs = quiet(getattr(skm, fn), t, p, labels=labels, average=average, zero_division=0.0)
        assert_same(ours, theirs, (fn, i, labels))


def test_binary_average_matches_sklearn():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 2, 50)
    p = np.where(rng.random(50) < 0.7, t, 1 - t)
    for fn in ("precision_score", "recall_score", "f1_score"):
        for pos_label in (0, 1):
            assert getattr(metrics, fn)(t, p, pos_label=pos_label) == pytest.approx(
                getattr(skm, fn)(t, p, pos_label=pos_label), abs=1e-15)
    # The default average is 'binary', as scikit-learn's: multiclass targets are an error there too.
    with pytest.raises(ValueError, match="average"):
        metrics.f1_score([0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError):
        skm.f1_score([0, 1, 2], [0, 1, 1])


def test_accuracy_matches_sklearn():
    for t, p, _ in CASES:
        assert metrics.accuracy_score(t, p) == pytest.approx(skm.accuracy_score(t, p), abs=1e-15)
        assert metrics.accuracy_score(t, p, normalize=False) == skm.accuracy_score(t, p, normalize=False)


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_matches_sklearn(normalize):
    for i, (t, p, labels) in enumerate(CASES):
        if labels is not None and not np.isin(t, labels).any():
            continue
        ours = metrics.confusion_matrix(t, p, labels=labels, normalize=normalize)
        theirs = quiet(skm.confusion_matrix, t, p, labels=labels, normalize=normalize)
        assert ours.shape == theirs.shape, i
        if normalize is None:
            assert ours.dtype == np.int64
            np.testing.assert_array_equal(ours, theirs, err_msg=str(i))
        else:
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, err_msg=str(i))


def test_confusion_matrix_layout():
    cm = metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2])
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])  # rows true, columns predicted
    cm = metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], labels=[2, 0])
    np.testing.assert_array_equal(cm, [[2, 1], [0, 1]])


@pytest.mark.parametrize("digits", [2, 4])
def test_classification_report_text_and_dict_match_sklearn(digits):
    for i, (t, p, labels) in enumerate(CASES):
        if not np.any(t == p):  # scikit-learn prints float supports in this corner; not worth copying
            continue
        ours = quiet(metrics.classification_report, t, p, labels=labels, digits=digits)
        theirs = quiet(skm.classification_report, t, p, labels=labels, digits=digits)
        assert ours == theirs, f"case {i}:\n{ours}\n{theirs}"
        d_ours = quiet(metrics.classification_report, t, p, labels=labels, output_dict=True)
        d_theirs = quiet(skm.classification_report, t, p, labels=labels, output_dict=True)
        assert list(d_ours) == list(d_theirs)
        for key, value in d_theirs.items():
            if isinstance(value, dict):
                assert list(d_ours[key]) == list(value)
                for h, v in value.items():
                    assert d_ours[key][h] == pytest.approx(v, abs=1e-12, nan_ok=True), (i, key, h)
            else:
                assert d_ours[key] == pytest.approx(value, abs=1e-12)


def test_classification_report_with_names_matches_sklearn():
    from pycnn.data import FASHION_MNIST_CLASSES

    rng = np.random.default_rng(3)
    t = rng.integers(0, 10, 500)
    p = np.where(rng.random(500) < 0.8, t, rng.integers(0, 10, 500))
    names = list(FASHION_MNIST_CLASSES)
    ours = metrics.classification_report(t, p, target_names=names, digits=4)
    assert ours == skm.classification_report(t, p, target_names=names, digits=4)
    assert "Ankle boot" in ours and "weighted avg" in ours and "accuracy" in ours


def test_string_labels_match_sklearn():
    t = np.array(["cat", "dog", "dog", "bird", "cat", "dog"])
    p = np.array(["cat", "cat", "dog", "bird", "bird", "dog"])
    np.testing.assert_array_equal(metrics.confusion_matrix(t, p), skm.confusion_matrix(t, p))
    for avg in AVERAGES:
        assert_same(metrics.f1_score(t, p, average=avg), skm.f1_score(t, p, average=avg), avg)
    assert metrics.classification_report(t, p) == skm.classification_report(t, p)


def test_zero_division_warns_like_sklearn():
    t, p = [0, 0, 1], [0, 0, 0]  # class 1 is never predicted: its precision is undefined
    with pytest.warns(metrics.UndefinedMetricWarning, match="Precision is ill-defined"):
        per_class = metrics.precision_score(t, p, average=None)
    np.testing.assert_array_equal(per_class, [2 / 3, 0.0])
    assert metrics.precision_score(t, p, average=None, zero_division=1.0)[1] == 1.0
    assert np.isnan(metrics.precision_score(t, p, average=None, zero_division=np.nan)[1])
    # nan scores are left out of the averages
    assert metrics.precision_score(t, p, average="macro", zero_division=np.nan) == pytest.approx(2 / 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics.precision_score(t, p, average=None, zero_division=0.0)  # no warning when told


def test_metric_input_errors():
    with pytest.raises(ValueError, match="lengths"):
        metrics.accuracy_score([0, 1], [0])
    with pytest.raises(ValueError, match="1-D class labels.*argmax"):
        metrics.f1_score([0, 1], np.array([[0.2, 0.8], [0.6, 0.4]]), average="macro")
    with pytest.raises(ValueError, match="average"):
        metrics.f1_score([0, 1], [0, 1], average="samples")
    with pytest.raises(TypeError, match="mix"):
        metrics.accuracy_score(["a", "b"], [0, 1])
    with pytest.raises(ValueError, match="target_names"):
        metrics.classification_report([0, 1], [0, 1], target_names=["a"])
    with pytest.raises(ValueError, match="normalize"):
        metrics.confusion_matrix([0], [0], normalize="rows")
    # a column vector is accepted, as scikit-learn does
    assert metrics.accuracy_score(np.array([[0], [1]]), [0, 0]) == 0.5
