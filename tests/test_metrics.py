"""Metrics on a known confusion matrix, checked by hand and against sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from heartbeat.evaluate.metrics import classification_metrics, confusion, per_class_metrics, weighted_f1

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
    per_class = per_class_metrics(y_true, y_pred, NAMES)
    assert m["accuracy"] == pytest.approx(84 / 100)
    # class a: precision 50/55, recall 50/55; b: 30/32, 30/40; c: 4/13, 4/5
    prec = {"a": 50 / 55, "b": 30 / 32, "c": 4 / 13}
    rec = {"a": 50 / 55, "b": 30 / 40, "c": 4 / 5}
    for name in NAMES:
        f1 = 2 * prec[name] * rec[name] / (prec[name] + rec[name])
        assert per_class[name]["positive_predictivity"] == pytest.approx(prec[name])
        assert per_class[name]["sensitivity"] == pytest.approx(rec[name])
        assert per_class[name]["f1"] == pytest.approx(f1)
    assert per_class["c"]["support"] == 5
    macro = np.mean([2 * prec[n] * rec[n] / (prec[n] + rec[n]) for n in NAMES])
    assert m["macro_f1"] == pytest.approx(macro)
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert weighted_f1(y_true, y_pred, 3) == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    np.testing.assert_array_equal(confusion(y_true, y_pred, 3), KNOWN)
    assert "roc_auc" not in m and "macro_f1_nsvf" not in m
    assert all(isinstance(v, float) for v in m.values())  # a DVC metrics file: numbers only


def test_binary_metrics_have_auc() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    p1 = np.array([0.1, 0.6, 0.7, 0.9, 0.4, 0.2])
    m = classification_metrics(y, np.column_stack([1 - p1, p1]), ("normal", "abnormal"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p1))
    assert 0 < m["pr_auc"] <= 1


def test_absent_class_scores_zero_without_warning() -> None:
    y_true = np.array([0, 0, 1])
    proba = np.eye(3)[[0, 0, 1]]
    assert per_class_metrics(y_true, np.argmax(proba, axis=1), NAMES)["c"] == {
        "sensitivity": 0.0,
        "positive_predictivity": 0.0,
        "f1": 0.0,
        "support": 0,
    }


def test_aami_macro_f1_leaves_out_q() -> None:
    """MIT-BIH: macro-F1 over N, S, V, F beside the 5-class one (ANSI/AAMI EC57's classes)."""
    names = ("N", "S", "V", "F", "Q")
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 3, 4, 4])
    y_pred = np.array([0, 0, 1, 1, 0, 2, 2, 3, 0, 0])  # Q never found: its F1 is 0
    m = classification_metrics(y_true, np.eye(5)[y_pred], names)
    assert m["macro_f1_nsvf"] == pytest.approx(f1_score(y_true, y_pred, labels=[0, 1, 2, 3], average="macro"))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=[0, 1, 2, 3, 4], average="macro"))
    assert m["macro_f1_nsvf"] > m["macro_f1"]
