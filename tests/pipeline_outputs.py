"""Synthetic outputs of the pipeline's train and evaluate stages, for tests of what reads them.

Written with the same helpers and in the same formats as the stages, but from
random numbers and without training, so the report and ``dvc plots`` can be
tested in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from heartbeat.core.beat_spec import DATASET_CLASSES
from heartbeat.core.registry import MODEL_SPECS
from heartbeat.evaluate.metrics import classification_metrics, confusion, per_class_metrics, weighted_f1
from heartbeat.evaluate.plots import accuracy_figure, confusion_csv, confusion_figure, save_png
from heartbeat.train.history import history_csv


def write_outputs(root: Path, seed: int, epochs: int) -> None:
    """Synthetic outputs of the train and evaluate stages for the four models, as the stages write them."""
    rng = np.random.default_rng(seed)
    for name, spec in MODEL_SPECS.items():
        classes = DATASET_CLASSES[spec.dataset]
        acc = np.clip(np.linspace(0.6, 0.9, epochs) + rng.normal(0, 0.01, epochs), 0, 1)
        history = [
            {
                "epoch": e + 1,
                "loss": 1 - a,
                "accuracy": float(a),
                "val_loss": 1.05 - a,
                "val_accuracy": float(a) - 0.02,
            }
            for e, a in enumerate(acc)
        ]
        y_true = rng.integers(0, len(classes), 120)
        y_pred = np.where(rng.random(120) < 0.8, y_true, rng.integers(0, len(classes), 120))
        matrix = confusion(y_true, y_pred, len(classes))
        plots = root / "plots" / name
        plots.mkdir(parents=True, exist_ok=True)
        (plots / "history.csv").write_text(history_csv(history))
        (plots / "confusion.csv").write_text(confusion_csv(matrix, classes))
        save_png(accuracy_figure(history, spec.title), plots / "accuracy.png")
        save_png(confusion_figure(matrix, classes, spec.title), plots / "confusion.png")
        proba = np.full((120, len(classes)), 0.1 / len(classes))
        proba[np.arange(120), y_pred] += 0.9
        details = {
            "model": name,
            "dataset": spec.dataset,
            "data_source": "demo",
            "synthetic_data": True,
            "split": "beat",
            "weight_count": 1000 + seed,
            "test_beats": 120,
            "weighted_f1": weighted_f1(y_true, y_pred, len(classes)),
            "per_class": per_class_metrics(y_true, y_pred, classes),
        }
        (root / "metrics" / "details").mkdir(parents=True, exist_ok=True)
        (root / "metrics" / f"{name}.json").write_text(
            json.dumps(classification_metrics(y_true, proba, classes), indent=2)
        )
        (root / "metrics" / "details" / f"{name}.json").write_text(json.dumps(details, indent=2))
        (root / "models").mkdir(exist_ok=True)
        training = {
            "model": name,
            "stage": spec.stage,
            "weight_count": 1000 + seed,
            "epochs_run": epochs,
            "best_epoch": epochs,
        }
        (root / "models" / f"{name}.json").write_text(json.dumps(training, indent=2))
