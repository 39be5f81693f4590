"""Classification metrics, all computed by scikit-learn.

Accuracy is dominated by class N on MIT-BIH (83% of beats), so macro-F1 and
the per-class figures are what separate models. ``metrics/<model>.json`` (a DVC
metric) holds the few headline numbers of :func:`classification_metrics`;
``metrics/details/<model>.json`` the per-class ones of :func:`per_class_metrics`.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

AAMI_CLASSES: tuple[str, ...] = ("N", "S", "V", "F")
"""The classes the AAMI convention (ANSI/AAMI EC57) scores an arrhythmia classifier on; Q, mostly
paced beats that the inter-patient protocol excludes, is left out of ``macro_f1_nsvf``."""


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, float]:
    """The headline numbers of ``metrics/<model>.json``: few, so that ``dvc metrics show`` stays readable.

    Accuracy, macro-F1 over all classes, ``macro_f1_nsvf`` (over N, S, V, F) when the classes are
    the AAMI ones, ROC-AUC and PR-AUC when binary, and the expected calibration error ``ece``.
    """
    labels = list(range(len(class_names)))
    y_pred = np.argmax(proba, axis=1)
    out: dict[str, float] = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
    }
    if set(AAMI_CLASSES) <= set(class_names):
        nsvf = [class_names.index(c) for c in AAMI_CLASSES]
        out["macro_f1_nsvf"] = float(f1_score(y_true, y_pred, labels=nsvf, average="macro", zero_division=0))
    if len(class_names) == 2 and len(np.unique(y_true)) == 2:
        out["roc_auc"] = float(roc_auc_score(y_true, proba[:, 1]))
        out["pr_auc"] = float(average_precision_score(y_true, proba[:, 1]))
    out["ece"] = expected_calibration_error(y_true, proba)
    return out


def per_class_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, dict[str, float | int]]:
    """Per class: sensitivity (Se, recall), positive predictivity (+P, precision), F1 and support.

    Se and +P are what arrhythmia papers report per class; a class absent from the test set or
    never predicted scores 0 rather than raising a warning.
    """
    labels = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        name: {
            "sensitivity": float(recall[i]),
            "positive_predictivity": float(precision[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """F1 averaged over classes weighted by their support (dominated by N on MIT-BIH)."""
    labels = list(range(n_classes))
    return float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0))


def macro_f1(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Macro-F1 over every class the model predicts (absent classes count as 0)."""
    labels = list(range(proba.shape[1]))
    return float(f1_score(y_true, np.argmax(proba, axis=1), labels=labels, average="macro", zero_division=0))


def macro_f1_present(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, list[int]]:
    """Macro-F1 over the classes present in the labels or the predictions, and those classes.

    A record whose beats are all N and V scores over N and V only: a class that neither the labels
    nor the predictions hold has no F1 to average (over all 5 classes a perfect result reads 0.4).
    """
    present = sorted(set(np.unique(y_true).tolist()) | set(np.unique(y_pred).tolist()))
    if not present:
        return 0.0, []
    return float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)), present


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
