"""Classification metrics, all computed by scikit-learn.

Accuracy is dominated by class N on MIT-BIH (83% of beats), so macro-F1 and
the per-class figures are what separate models; every metrics file has both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, Any]:
    """Accuracy, macro/weighted F1, per-class precision/recall/F1/support; ROC-AUC and PR-AUC if binary."""
    labels = list(range(len(class_names)))
    y_pred = np.argmax(proba, axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    out: dict[str, Any] = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "n": len(y_true),
        "ece": expected_calibration_error(y_true, proba),
    }
    if len(class_names) == 2 and len(np.unique(y_true)) == 2:
        out["roc_auc"] = float(roc_auc_score(y_true, proba[:, 1]))
        out["pr_auc"] = float(average_precision_score(y_true, proba[:, 1]))
    out["per_class"] = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    return out


def macro_f1(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Macro-F1 over every class the model predicts (absent classes count as 0)."""
    labels = list(range(proba.shape[1]))
    return float(f1_score(y_true, np.argmax(proba, axis=1), labels=labels, average="macro", zero_division=0))


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence, in ``bins`` equal-width bins (Guo et al. 2017).

    The beat-weighted mean of |accuracy - mean confidence| over the bins: 0 when
    a model that says 90% is right 90% of the time.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if len(y_true) == 0:
        return 0.0
    conf = proba.max(axis=1)
    correct = (np.argmax(proba, axis=1) == np.asarray(y_true)).astype(np.float64)
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in np.unique(which):
        members = which == b
        total += members.sum() * abs(correct[members].mean() - conf[members].mean())
    return float(total / len(conf))


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))
