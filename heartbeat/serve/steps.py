"""The steps of ``heartbeat predict`` on one recording: read it, classify it, render the rows, and what
the summary says about it. The single-recording command (:mod:`heartbeat.serve.cli`) and the
many-recordings one (:mod:`heartbeat.serve.batch`) both run these, so they cannot drift apart."""

from __future__ import annotations

import argparse
import glob
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from heartbeat.core.errors import ModelError, ParamsError
from heartbeat.core.layout import EXPORT_DIR, MANIFEST

if TYPE_CHECKING:
    from heartbeat.core.stored import RecordSmoothing

log = logging.getLogger("heartbeat")

PROG = "heartbeat"


def result_table(beats, runner, proba: np.ndarray) -> dict[str, np.ndarray | list]:
    """The output columns, in order: beat, [sample, time_s], [label], predicted, p_<class>..."""
    names = runner.class_names
    cols: dict[str, np.ndarray | list] = {"beat": np.arange(len(beats))}
    if beats.sample is not None:
        cols["sample"] = np.asarray(beats.sample, dtype=np.int64)
        if beats.fs:
            cols["time_s"] = np.round(cols["sample"] / beats.fs, 3)
    y = _usable_labels(beats, runner)
    if y is not None:
        cols["label"] = [names[int(i)] for i in y]
    cols["predicted"] = [names[int(i)] for i in proba.argmax(axis=1)]
    for i, name in enumerate(names):
        cols[f"p_{name}"] = proba[:, i]
    return cols


def format_rows(cols: dict[str, np.ndarray | list], fmt: str, about: dict | None = None) -> str:
    """CSV with a header, or a JSON object: ``about`` (the model, its training data, the input) beside
    ``beats``, one object per beat; probabilities to 6 decimals."""
    import json

    import pandas as pd

    frame = pd.DataFrame(cols)
    if fmt == "csv":
        return frame.to_csv(index=False, float_format="%.6f", lineterminator="\n")
    prob_cols = [c for c in frame.columns if c.startswith("p_")]
    frame[prob_cols] = frame[prob_cols].astype(np.float64).round(6)
    beats = json.loads(frame.to_json(orient="records", double_precision=6))
    return json.dumps({**(about or {}), "beats": beats}, indent=1, ensure_ascii=False) + "\n"


def describe(beats, runner, input_path: str, smoothing: RecordSmoothing | None = None) -> dict:
    """What the JSON output says beside the beats: the model, what trained it, the input, and the
    smoothing over the recording when it was applied."""
    source = {"path": str(input_path), "kind": beats.kind}
    if beats.fs:
        source |= {"fs": beats.fs, "lead": beats.lead, "r_peaks": beats.peaks}
    source["leads"] = leads_given(beats, runner)
    return {
        "model": {"path": str(runner.path), "backend": runner.backend, "classes": list(runner.class_names)},
        "trained_on": runner.trained_on,
        "input": source,
        "record_smoothing": smoothing.as_dict() if smoothing is not None else None,
    }


def leads_given(beats, runner) -> int:
    """How many leads the model got: 2 when its two-lead input holds a second lead, 1 when it takes
    one lead or the recording has one (lead 1 then fills both channels, heartbeat/signal/patient.py)."""
    if "window" not in runner.inputs or beats.window is None:
        return 1
    return 1 if np.array_equal(beats.window[..., 0], beats.window[..., 1]) else 2


def training_data(trained_on: dict | None) -> str:
    """One phrase for what trained a model, from its sidecar's ``trained_on``."""
    if not trained_on:
        return "unknown data (its sidecar json does not say)"
    source = trained_on.get("source", "unknown source")
    if trained_on.get("synthetic"):
        return f"SYNTHETIC {source} data"
    records = trained_on.get("records") or {}
    n = sum(len(v) for v in records.values()) if isinstance(records, dict) else 0
    split = trained_on.get("split")
    parts = [f"{source} data"]
    if n:
        parts.append(f"{n} records")
    if split:
        parts.append(f"{split} split")
    return ", ".join(parts)


def _usable_labels(beats, runner) -> np.ndarray | None:
    """Labels that use the model's class set; None when there are none or they are another dataset's."""
    if beats.y is None:
        return None
    if beats.label_dataset is not None and beats.label_dataset != runner.dataset:
        return None
    return beats.y


def check_labels(beats, runner, where: str) -> None:
    """Labels from a CSV name no dataset: they must at least fit the model's classes."""
    if beats.y is None or beats.label_dataset is not None or len(beats.y) == 0:
        return
    top = int(np.max(beats.y))
    if top >= runner.n_classes or int(np.min(beats.y)) < 0:
        raise ModelError(
            f"{where}: labels go up to {top} but the model predicts {runner.n_classes} classes "
            f"({runner.dataset}: {' '.join(runner.class_names)}); is it the right model for this file?"
        )


def dataset_warning(beats, runner, where: str) -> str | None:
    """A warning when the input looks like the other dataset's beats, or None.

    A bare CSV names no dataset, so a PTB file (labels 0 normal, 1 abnormal) runs on a MIT-BIH
    model without error and its accuracy reads the labels as N and S. The file name
    (``ptbdb_*``, ``mitbih_*``, as in the Kaggle set) or labels that are only 0 and 1 give it away.
    """
    name = Path(where).name.lower()
    labels = beats.y if beats.y is not None and beats.label_dataset is None and len(beats.y) else None
    binary = labels is not None and set(np.unique(labels).tolist()) <= {0, 1}
    if runner.dataset == "mitbih" and (name.startswith("ptb") or (binary and not name.startswith("mitbih"))):
        why = (
            "is named like a PTB file" if name.startswith("ptb") else "has only labels 0 and 1, as a PTB file"
        )
        return (
            f"{where}: {why} (normal, abnormal), but the model predicts the MIT-BIH classes "
            f"({' '.join(runner.class_names)}), so its labels are read as N and S; for PTB beats use a "
            "PTB model (--dataset ptb)"
        )
    if runner.dataset == "ptb" and name.startswith("mitbih"):
        return (
            f"{where}: is named like a MIT-BIH file, but the model predicts the PTB classes "
            f"({' '.join(runner.class_names)}); for MIT-BIH beats use a MIT-BIH model (--dataset mitbih)"
        )
    return None


def summary_lines(
    beats, runner, proba: np.ndarray, seconds: float, smoothing: RecordSmoothing | None = None
) -> list[str]:
    names = runner.class_names
    pred = proba.argmax(axis=1)
    counts = np.bincount(pred, minlength=len(names))
    n = len(pred)
    where = f" (lead {beats.lead}, R-peaks from {beats.peaks})" if beats.lead else ""
    via = f", {runner.source}" if runner.source else ""
    rate = n / seconds if seconds > 0 else math.inf
    lines = [
        f"{n:,} beats{where}; model {runner.path.name} on {runner.backend}{via}, "
        f"{runner.threads} threads: {seconds:.2f} s ({rate:,.0f} beats/s)",
        f"model trained on {training_data(runner.trained_on)}",
        *(
            [
                f"each beat's probabilities blended (weight {smoothing.weight:g}) with the mean of its "
                f"{smoothing.neighbours} most alike beats of the recording (--each-beat-alone turns it off)"
            ]
            if smoothing is not None
            else []
        ),
        "predicted: "
        + ", ".join(f"{name} {c:,} ({c / n:.1%})" for name, c in zip(names, counts, strict=True)),
    ]
    y = _usable_labels(beats, runner)
    if y is not None:
        from heartbeat.evaluate.metrics import macro_f1_present

        f1, present = macro_f1_present(y, pred)
        lines.append(
            f"labelled: accuracy {float(np.mean(y == pred)):.4f}, macro-F1 {f1:.4f} over the classes in the "
            f"labels or predictions ({' '.join(names[i] for i in present)}) on {n:,} beats"
        )
    elif beats.y is not None:
        lines.append(
            f"the input's labels are {beats.label_dataset} classes, the model predicts {runner.dataset}: "
            "no accuracy"
        )
    return lines


def synthetic_warning(runner) -> str | None:
    """A warning when the model learnt from synthetic data: its classes mean little on a real ECG."""
    if not (runner.trained_on or {}).get("synthetic"):
        return None
    return (
        f"{runner.path}: this model was trained on SYNTHETIC data (the demo source); its classes mean "
        "little on a real ECG. Leave out --model to use the pretrained model, or train on real data "
        "(dvc exp run -S data.source=physionet)"
    )


def files_read(input_path: str, model_path: str) -> list[Path]:
    """Every file ``heartbeat predict`` may read for this input and model: ``-o`` may be none of them.

    The input (a record's ``.hea``, ``.dat`` and ``.atr`` too), the model, its sidecar with the
    temperature, and its exports with their manifest.
    """
    paths = []
    for given in (Path(input_path), Path(model_path)):
        paths += [given, *given.parent.glob(glob.escape(given.name) + ".*")]
    model = Path(model_path)
    export = model.parent / EXPORT_DIR
    paths += [model.with_suffix(".json"), export / MANIFEST, *export.glob(glob.escape(model.stem) + ".*")]
    return paths


# ---------------------------------------------------------------- commands


def default_model(backend: str) -> tuple[str, str]:
    """The pretrained model and the backend to run it on: its TFLite export, which starts without
    TensorFlow, unless another backend is asked for."""
    from heartbeat.serve import pretrained

    if not pretrained.MODEL.is_file():
        raise ModelError(
            f"{pretrained.MODEL}: the pretrained model is missing from this installation; reinstall the "
            "package, or pass --model with a model you trained (models/resnet_mitbih.keras)"
        )
    return str(pretrained.MODEL), "tflite" if backend == "auto" else backend


def check_model(runner, model: str, dataset: str | None) -> None:
    """``--dataset``: the model must predict that dataset's classes."""
    if dataset and runner.dataset != dataset:
        raise ModelError(
            f"{model}: the model predicts {runner.n_classes} classes ({runner.dataset}), "
            f"--dataset {dataset} needs a {dataset} model"
        )


def read_beats(
    path: str, args: argparse.Namespace, reference: str = "median", amplitude_stretch_s: float = 0.0
):
    """INPUT read as the options say, with the patient features' ``reference`` and amplitude stretch
    the model was trained with (:attr:`~heartbeat.serve.runners.Runner.patient_options`); ``--format
    wfdb`` needs beat times."""
    from heartbeat.serve.inputs import read_input

    beats = read_input(
        path,
        args.input_kind,
        lead=args.lead,
        peaks=args.peaks,
        fs=args.fs,
        reference=reference,
        amplitude_stretch_s=amplitude_stretch_s,
    )
    if args.format == "wfdb" and beats.sample is None:
        raise ParamsError(
            f"--format wfdb: {path} holds beats, not a recording; there are no times to annotate"
        )
    return beats


def classify(
    beats, runner, args: argparse.Namespace, progress: bool | None
) -> tuple[np.ndarray, RecordSmoothing | None]:
    """The probabilities of ``beats`` through the model and the steps its training stored, and the
    smoothing over the recording when it was applied (only a recording gives the windows it needs,
    the irregular-rhythm flags its gate needs, and the features its QRS gate reads)."""
    from heartbeat.serve.runners import probabilities

    proba = probabilities(
        runner,
        beats.X,
        args.batch_size,
        progress=progress,
        rhythm=beats.context,
        window=beats.window,
        patient=beats.patient,
        each_beat_alone=args.each_beat_alone,
        irregular=beats.irregular,
    )
    if proba.irregular is not None and proba.irregular.any():
        log.info(
            "%d of %d beats are in irregularly irregular stretches (atrial fibrillation or flutter?): "
            "none of them is called S",
            int(proba.irregular.sum()),
            len(proba.irregular),
        )
    if proba.unlike_qrs is not None and proba.unlike_qrs.any():
        log.info(
            "%d of %d beats have a QRS unlike the recording's usual beat: none of them is called S",
            int(proba.unlike_qrs.sum()),
            len(proba.unlike_qrs),
        )
    return proba.final, proba.smoothing


def render(beats, runner, proba: np.ndarray, smoothing, fmt: str, input_path: str) -> bytes:
    """The output file's bytes: CSV, JSON or a WFDB annotation file."""
    from heartbeat.serve.annotate import annotation_bytes

    if fmt == "wfdb":
        names = [runner.class_names[int(i)] for i in proba.argmax(axis=1)]
        return annotation_bytes(beats.sample, names, beats.fs, runner.class_names)
    about = describe(beats, runner, input_path, smoothing) if fmt == "json" else None
    return format_rows(result_table(beats, runner, proba), fmt, about).encode("utf-8")
