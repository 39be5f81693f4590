"""Training the classical models, ``architecture: lda`` and ``gbt``, on the features against the patient.

They read only the 80 features of heartbeat/signal/patient.py (a beat's R-R intervals and shape
against its own recording), as de Chazal et al. 2004 (linear discriminants) and Shi et al. 2019
(gradient-boosted trees) do with theirs. scikit-learn fits them; heartbeat/model/classical.py
writes the fitted model into a Keras model, so everything after training treats them as it treats
a network. The history has one row per boosting iteration (the trees) or a single row (the
discriminants), with the training and validation loss and accuracy, as a network's has per epoch.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from heartbeat.core.config import ResNetConfig
from heartbeat.model.calibration import nll
from heartbeat.model.classical import gbt_model, lda_model, tree_features
from heartbeat.prepare.arrays import Split
from heartbeat.signal.patient import WINDOW_SHAPE
from heartbeat.train.fit import TrainResult, class_weights

log = logging.getLogger("heartbeat")

ARCHITECTURES = ("lda", "gbt")


def _row(i: int, y_tr: np.ndarray, p_tr: np.ndarray, y_va: np.ndarray, p_va: np.ndarray) -> dict[str, float]:
    def accuracy(y: np.ndarray, p: np.ndarray) -> float:
        return float(np.mean(np.argmax(p, axis=1) == y)) if len(y) else 0.0

    return {
        "epoch": i,
        "loss": nll(y_tr, p_tr),
        "accuracy": accuracy(y_tr, p_tr),
        "val_loss": nll(y_va, p_va) if len(y_va) else 0.0,
        "val_accuracy": accuracy(y_va, p_va),
    }


def _all_classes(proba: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(proba), n_classes))
    out[:, np.asarray(classes, dtype=int)] = proba
    return out


def training_rows(y: np.ndarray, share: float, seed: int) -> np.ndarray:
    """The rows of the training split a classical model learns from: every beat of the minority
    classes and a seeded random ``share`` of class 0 (N), which is nine in ten beats of a recording
    and, past a few thousand, teaches the trees little more while costing time."""
    y = np.asarray(y)
    keep = y != 0
    if share >= 1:
        return np.arange(len(y))
    keep |= np.random.default_rng(seed).random(len(y)) < share
    return np.flatnonzero(keep)


def fit_classical(architecture: str, cfg: ResNetConfig, tr: Split, va: Split, n_classes: int) -> TrainResult:
    """Fit ``architecture`` (``lda`` or ``gbt``) on ``tr``'s patient features and return it as a Keras
    model with its history; ``va`` only measures it."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.ensemble import HistGradientBoostingClassifier

    if architecture not in ARCHITECTURES:
        raise ValueError(f"fit_classical: architecture {architecture!r} is not one of {ARCHITECTURES}")
    rows = training_rows(tr.y, cfg.trees.normal_share if architecture == "gbt" else 1.0, cfg.seed)
    stride = cfg.trees.window_stride if architecture == "gbt" else 0
    X, y = tree_features(tr.W[rows], tr.P[rows], stride), np.asarray(tr.y)[rows]
    X_va, y_va = tree_features(va.W, va.P, stride), np.asarray(va.y)
    if np.unique(y).size < 3:
        raise ValueError(f"{architecture}: the training split holds fewer than three classes")
    weights = class_weights(y, cfg.class_weight)
    log.info(
        "training %s on %d beats (%d features), validating on %d", architecture, len(y), X.shape[1], len(y_va)
    )
    t0 = time.perf_counter()
    if architecture == "lda":
        # Class weights become the priors: a class's prior ∝ its count × its weight, as the loss
        # weight does for a network (none: the counts; balanced: equal, de Chazal's weighting).
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)[np.unique(y)]
        w = np.array([weights[c] for c in np.unique(y)]) if weights else np.ones(counts.size)
        lda = LinearDiscriminantAnalysis(priors=counts * w / np.sum(counts * w)).fit(X, y)
        p_tr, p_va = (_all_classes(lda.predict_proba(a), lda.classes_, n_classes) for a in (X, X_va))
        history = [_row(1, y, p_tr, y_va, p_va)]
        model = lda_model(lda, n_classes, WINDOW_SHAPE, X.shape[1])
    else:
        t = cfg.trees
        gbt = HistGradientBoostingClassifier(
            max_iter=t.iterations,
            learning_rate=t.learning_rate,
            max_leaf_nodes=t.leaves,
            max_depth=t.depth,
            min_samples_leaf=t.min_leaf,
            l2_regularization=t.l2,
            early_stopping=False,
            random_state=cfg.seed,
        )
        gbt.fit(X, y, sample_weight=None if weights is None else np.array([weights[c] for c in y]))
        history = []
        staged = zip(gbt.staged_predict_proba(X), gbt.staged_predict_proba(X_va), strict=True)
        for i, (p_tr, p_va) in enumerate(staged, 1):
            if i % max(1, t.iterations // 50) == 0 or i == t.iterations:  # at most about 50 rows
                history.append(
                    _row(
                        i,
                        y,
                        _all_classes(p_tr, gbt.classes_, n_classes),
                        y_va,
                        _all_classes(p_va, gbt.classes_, n_classes),
                    )
                )
        model = gbt_model(gbt, n_classes, WINDOW_SHAPE, np.asarray(tr.P).shape[1], stride)
    seconds = time.perf_counter() - t0
    last = history[-1]
    log.info(
        "%s: training loss %.4f, accuracy %.4f; validation loss %.4f, accuracy %.4f (%.1f s)",
        architecture,
        last["loss"],
        last["accuracy"],
        last["val_loss"],
        last["val_accuracy"],
        seconds,
    )
    return TrainResult(model=model, history=history, seconds=seconds, best_epoch=int(last["epoch"]))
