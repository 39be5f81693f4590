"""Metrics on a known confusion matrix, checked by hand and against sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from heartbeat.evaluate.metrics import classification_metrics, confusion

# rows: actual, columns: predicted
KNOWN = np.array([[50, 2, 3], [4, 30, 6], [1, 0, 4]])
NAMES = ("a", "b", "c")


def _from_confusion(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = [], []
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            y_true += [i] * int(matrix[i, j])
            y_pred += [j] * int(matrix[i, j])
    return np.asarray(y_true), np.asarray(y_pred)


def test_metrics_on_known_confusion_matrix() -> None:
    y_true, y_pred = _from_confusion(KNOWN)
    proba = np.eye(3)[y_pred]
    m = classification_metrics(y_true, proba, NAMES)
    assert m["n"] == 100
    assert m["accuracy"] == pytest.approx(84 / 100)
    # class a: precision 50/55, recall 50/55; b: 30/32, 30/40; c: 4/13, 4/5
    prec = {"a": 50 / 55, "b": 30 / 32, "c": 4 / 13}
    rec = {"a": 50 / 55, "b": 30 / 40, "c": 4 / 5}
    for name in NAMES:
        f1 = 2 * prec[name] * rec[name] / (prec[name] + rec[name])
        assert m["per_class"][name]["precision"] == pytest.approx(prec[name])
        assert m["per_class"][name]["recall"] == pytest.approx(rec[name])
        assert m["per_class"][name]["f1"] == pytest.approx(f1)
    assert m["per_class"]["c"]["support"] == 5
    macro = np.mean([2 * prec[n] * rec[n] / (prec[n] + rec[n]) for n in NAMES])
    assert m["macro_f1"] == pytest.approx(macro)
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    np.testing.assert_array_equal(confusion(y_true, y_pred, 3), KNOWN)
    assert "roc_auc" not in m


def test_binary_metrics_have_auc() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    p1 = np.array([0.1, 0.6, 0.7, 0.9, 0.4, 0.2])
    m = classification_metrics(y, np.column_stack([1 - p1, p1]), ("normal", "abnormal"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p1))
    assert 0 < m["pr_auc"] <= 1


def test_absent_class_scores_zero_without_warning() -> None:
    y_true = np.array([0, 0, 1])
    proba = np.eye(3)[[0, 0, 1]]
    m = classification_metrics(y_true, proba, NAMES)
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
