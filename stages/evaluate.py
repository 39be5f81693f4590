"""Stage evaluate: metrics, confusion data and figures for the four models on their test splits.

``python stages/evaluate.py NAME...`` evaluates only those models; DVC runs one stage per
model (``evaluate@mlp_ptb``, ... in dvc.yaml), so a model retrained alone is evaluated alone.
With no name, all four are evaluated in one process.

Each model gets ``metrics/<name>.json`` (a DVC metric: accuracy, macro-F1, for MIT-BIH the AAMI
macro-F1 over N, S, V, F, for PTB ROC- and PR-AUC, and ECE) and ``metrics/details/<name>.json``
(data source, split, weights, and per class sensitivity, positive predictivity, F1 and support).

A model trained with ``calibration: temperature`` has its temperature in
``models/<name>.json``; its probabilities are scaled by it before the metrics
(accuracy and F1 do not change; ``ece`` does). The details file keeps the temperature and the
uncalibrated ECE (``calibration``): a fitted parameter is no metric to compare across runs.

A model whose sidecar has ``record_smoothing`` (patient_net) then has its probabilities smoothed
over each test record (heartbeat/model/smoothing.py), as ``heartbeat predict`` does on a recording;
the details file keeps what each beat alone scores (``record_smoothing.each_beat_alone``).
One whose sidecar has ``irregular_rhythm_gate`` then calls no beat S in an irregularly irregular
stretch of its record (heartbeat/model/rhythm_gate.py); the details file keeps how many beats that
was, how many S calls it took, and what the probabilities before it score; one with
``unlike_qrs_gate`` calls no beat S whose QRS is unlike its patient's (heartbeat/model/qrs_gate.py),
kept the same way.

The probabilities come from :func:`heartbeat.serve.runners.probabilities`, the function
``heartbeat predict`` calls: the same network call, temperature, smoothing and gates.
"""

import logging
import sys
from typing import Any

import numpy as np

from heartbeat.core import layout
from heartbeat.core.atomic import write_json, write_text
from heartbeat.core.beat_spec import DATASET_CLASSES
from heartbeat.core.config import stage_params
from heartbeat.core.entry import run
from heartbeat.core.errors import DataError, ParamsError
from heartbeat.core.layout import read_json, read_sidecar
from heartbeat.core.registry import MODEL_SPECS
from heartbeat.evaluate.metrics import (
    classification_metrics,
    confusion,
    expected_calibration_error,
    per_class_metrics,
    weighted_f1,
)
from heartbeat.evaluate.plots import accuracy_figure, confusion_csv, confusion_figure, save_png
from heartbeat.model.outputs import OutputSteps, Probabilities
from heartbeat.model.qrs_gate import SIDECAR_KEY as QRS_GATE_KEY
from heartbeat.model.rhythm_gate import FROM
from heartbeat.model.rhythm_gate import SIDECAR_KEY as GATE_KEY
from heartbeat.model.smoothing import SIDECAR_KEY
from heartbeat.prepare.arrays import Split, load_split
from heartbeat.train.history import read_history_csv

log = logging.getLogger("heartbeat")


def split_probabilities(name: str, split: Split, batch_size: int) -> tuple[Any, Probabilities]:
    """Model ``name`` (loaded, with its sidecar's steps) and its probabilities on ``split``, each of
    the split's records smoothed as one recording: the path ``heartbeat predict`` takes on its keras
    backend (:func:`heartbeat.serve.runners.probabilities`)."""
    # Keras (TensorFlow) is imported here, under run(), so that its C++ log lines are filtered.
    from heartbeat.model.saving import load_model
    from heartbeat.serve.runners import keras_runner, probabilities

    spec = MODEL_SPECS[name]
    path = layout.model_file(name)
    model = load_model(path, len(DATASET_CLASSES[spec.dataset]))
    where, sidecar = read_sidecar(path, spec.stage)
    steps = OutputSteps.from_sidecar(sidecar, str(where))
    if steps.smoothing is not None and (split.W is None or split.G is None):
        raise DataError(
            f"{where}: the model smooths over each recording, but the test split has no windows or "
            "record ids; rerun preprocess (dvc repro preprocess)"
        )
    if steps.irregular_gate and split.I is None:
        raise DataError(
            f"{where}: the model has the irregular-rhythm gate, but the test split has no irregular-rhythm "
            "flags (I_test.npy); rerun preprocess (dvc repro preprocess)"
        )
    if steps.qrs_gate and split.P is None:
        raise DataError(
            f"{where}: the model has the QRS gate, but the test split has no features against the patient "
            "(P_test.npy); rerun preprocess (dvc repro preprocess)"
        )
    runner = keras_runner(model, path, steps=steps)
    given = {
        "rhythm": split.R,
        "window": split.W,
        "patient": split.P,
        "records": split.G,
        "irregular": split.I,
    }
    return model, probabilities(runner, split.X, batch_size, progress=False, **given)


def main(models: list[str] | None = None) -> None:
    """Evaluate the named models (``dvc.yaml`` runs one per ``evaluate@<model>``), or all four."""
    models = models or []
    unknown = [m for m in models if m not in MODEL_SPECS]
    if unknown:
        raise ParamsError(
            f"stages/evaluate.py: unknown model {unknown[0]!r}; expected any of {', '.join(MODEL_SPECS)}"
        )
    cfg = stage_params("evaluate")
    info = read_json(layout.PREPARED / "info.json", "preprocess")
    tests = {}  # only the test splits of the models asked for, each loaded once
    for name in models or list(MODEL_SPECS):
        spec = MODEL_SPECS[name]
        names = DATASET_CLASSES[spec.dataset]
        if spec.dataset not in tests:
            tests[spec.dataset] = load_split(layout.PREPARED / spec.dataset, "test")
        test = tests[spec.dataset]
        model, proba = split_probabilities(name, test, cfg.batch_size)
        applied = {}  # what changed        applied = {}  # what changed the network's probabilities before the metrics
        if proba.temperature is not None:
            applied["calibration"] = {
                "temperature": proba.temperature,
                "ece_uncalibrated": expected_calibration_error(test.y, proba.network),
            }
        if proba.smoothing is not None:
            # What each beat alone scores, beside the smoothing that ships: the gain it brings.
            alone = classification_metrics(test.y, proba.calibrated, names)
            applied[SIDECAR_KEY] = {**proba.smoothing.as_dict(), "each_beat_alone": alone}
        if proba.irregular is not None:
            # What the gate took S from, beside what the probabilities it was given score.
            applied[GATE_KEY] = {
                "irregular_beats": int(proba.irregular.sum()),
                "s_calls_taken": int((proba.before_gate[proba.irregular].argmax(axis=1) == FROM).sum()),
                "before_gate": classification_metrics(test.y, proba.before_gate, names),
            }
        if proba.unlike_qrs is not None:
            applied[QRS_GATE_KEY] = {
                "unlike_qrs_beats": int(proba.unlike_qrs.sum()),
                "s_calls_taken": int((proba.before_qrs_gate[proba.unlike_qrs].argmax(axis=1) == FROM).sum()),
                "before_gate": classification_metrics(test.y, proba.before_qrs_gate, names),
            }
        proba = proba.final
        y_pred = np.argmax(proba, axis=1)
        metrics = classification_metrics(test.y, proba, names)
        details = {
            "model": name,
            "dataset": spec.dataset,
            "data_source": info.get("source"),
            "synthetic_data": bool(info.get("synthetic")),
            "split": info.get("split"),
            "weight_count": int(model.count_params()),
            "test_beats": len(test.y),
            "weighted_f1": weighted_f1(test.y, y_pred, len(names)),
            "per_class": per_class_metrics(test.y, y_pred, names),
            **applied,
        }
        history = read_history_csv(layout.history_file(name).read_text(encoding="utf-8"))
        write_json(layout.metrics_file(name), metrics)
        write_json(layout.details_file(name), details)
        cm = confusion(test.y, y_pred, len(names))
        write_text(layout.PLOTS / name / "confusion.csv", confusion_csv(cm, names))
        save_png(accuracy_figure(history, spec.title), layout.PLOTS / name / "accuracy.png")
        save_png(confusion_figure(cm, names, spec.title), layout.PLOTS / name / "confusion.png")
        nsvf = f" (N S V F: {metrics['macro_f1_nsvf']:.4f})" if "macro_f1_nsvf" in metrics else ""
        log.info(
            "%s: accuracy %.4f, macro-F1 %.4f%s on %d test beats",
            name,
            metrics["accuracy"],
            metrics["macro_f1"],
            nsvf,
            len(test.y),
        )


if __name__ == "__main__":
    run("evaluate", lambda: main(sys.argv[1:]))
