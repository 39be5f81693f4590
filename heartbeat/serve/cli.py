"""The ``heartbeat`` command. ``heartbeat predict`` classifies beats with a trained model.

Results (one row per beat) go to stdout or ``--output``; everything meant for a
person (the summary, accuracy, progress, errors) goes to stderr, so
``heartbeat predict ... > beats.csv`` stays a clean file. ``--output`` never
destroys what the user owns (:mod:`heartbeat.serve.output`). Exit codes: 0 ok,
1 the rows could not be written (a full disk, a closed pipe), 2 bad input
(data, model or options), 130 interrupted.
"""

from __future__ import annotations

import argparse
import glob
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from heartbeat import __version__
from heartbeat.core.errors import DataError, HeartbeatError, ModelError, ParamsError
from heartbeat.core.layout import EXPORT_DIR, MANIFEST

if TYPE_CHECKING:
    from heartbeat.model.smoothing import RecordSmoothing

log = logging.getLogger("heartbeat")

PROG = "heartbeat"
EXIT_BAD_INPUT = 2

PREDICT_DESCRIPTION = """\
Classify single heartbeats and print one row per beat: its index (and, for a
recording, its R-peak sample and time), the predicted class and the probability
of every class. A summary of counts per class goes to stderr, with accuracy and
macro-F1 when the input carries labels.

Without --model it uses the pretrained MIT-BIH model that comes with the
package (trained on real MIT-BIH records; see its model card,
heartbeat/serve/pretrained/MODEL_CARD.md): research use, not a medical device.

INPUT is one of:
  path/to/record   a WFDB record (record.hea + .dat, optionally .atr) at any
                   sampling rate, given without suffix
  recording.edf    an EDF or EDF+ recording
  signal.csv       a CSV or TSV of samples, one column per lead, with or
                   without a header row; needs --fs (and --lead to pick one)
  signal.npy       a 1-D array of samples; needs --fs
  beats.csv        Kaggle-format beats: 187 samples in [0, 1] per row,
                   optionally a label column, no header (no --fs)
  beats.npy        an array of shape (n, 187), samples in [0, 1]
  -                any of the files above on standard input; it, /dev/stdin and
                   other pipes (<(...)) are read once, whole, up to 1 GiB

Several recordings, a folder (its RECORDS file, else its WFDB records and .edf
files) or a RECORDS file, with --output-dir: one output per recording and a
summary table (DIR/summary.csv); the model is loaded once, --jobs recordings run
at a time, and a recording that fails gets its error while the others go on.

A recording's beats are cut exactly as the training data was
(heartbeat/signal/beats.py), at the R-peaks of its .atr annotations when it has
them (which also gives AAMI labels), else at those wfdb's XQRS detector finds.
The lead is MLII (else II, else V5) unless --lead names one; a second lead, where
the recording has one, feeds the model's two-lead inputs.

-o FILE replaces FILE atomically and keeps its permissions; a symlink is
written through; a device or FIFO (/dev/null, /dev/stdout) is written in place,
never replaced; -o naming one of the inputs (the data, the model) is refused.

The model decides the classes: 5 outputs are MIT-BIH (N S V F Q), 2 are PTB
(normal abnormal)."""

PREDICT_EPILOG = """\
examples:
  heartbeat predict mitdb/208                                   # the pretrained model
  heartbeat predict my_ecg.edf --plot my_ecg.png --format json -o beats.json
  heartbeat predict holter.csv --fs 250 --lead II
  heartbeat predict mitdb/208 --format wfdb -o 208.heartbeat       # a WFDB annotation file
  heartbeat predict mitdb --output-dir preds --jobs 2             # every record of a folder
  heartbeat predict archive --output-dir preds --shard 3/16       # one task of a job array
  heartbeat predict --model models/resnet_mitbih.keras mitdb/208   # a model you trained
  heartbeat predict --model models/resnet_ptb.keras data/raw/ptbdb_normal.csv -o pred.csv
  heartbeat predict --model models/export/resnet_ptb.tflite beats.npy --format json
  heartbeat predict --model models/mlp_ptb.keras --backend onnx data/raw/ptbdb_abnormal.csv

backends:
  keras    the .keras file on TensorFlow (the default for .keras)
  tflite   LiteRT/XNNPACK; a .tflite file, or the export of a .keras file
           (models/export/<name>.tflite, made by `dvc repro export`)
  onnx     ONNX Runtime; a .onnx file or the export of a .keras file
  A .keras model with --backend tflite/onnx uses its up-to-date export, or
  converts it on the fly (a few seconds) when there is none.

exit status: 0 ok, 1 the rows could not be written (a full disk, a closed
pipe), 2 bad input (unreadable or malformed data, a file that is not a model,
a model with the wrong number of classes, a record with no usable lead, bad
options, -o naming an input; with many recordings: any of them failed), 130
interrupted."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in the same one-line form as ours (still exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of Hz") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of Hz, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from heartbeat.serve.inputs import KINDS, PEAK_MODES
    from heartbeat.serve.runners import BACKENDS, DEFAULT_BATCH, PRECISIONS, PROGRESS_MIN_BEATS

    parser = _Parser(
        prog=PROG,
        description="ECG heartbeat classification (Kachuee et al. 2018): use the trained models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    p = sub.add_parser(
        "predict",
        help="classify beats from a CSV, .npy or WFDB record",
        description=PREDICT_DESCRIPTION,
        epilog=PREDICT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "input",
        metavar="INPUT",
        nargs="+",
        help="a recording (WFDB record without suffix, .edf, a signal .csv/.tsv/.npy with --fs) or beats "
        "(.csv, .npy); - for standard input; several, a folder or a RECORDS file with --output-dir",
    )
    p.add_argument(
        "-m",
        "--model",
        help="a trained model: models/<name>.keras, or an exported .tflite/.onnx (default: the pretrained "
        "MIT-BIH model)",
    )
    p.add_argument(
        "--fs",
        type=_rate,
        help="sampling rate in Hz of a signal given as a CSV/TSV or a 1-D .npy (required for those)",
    )
    p.add_argument(
        "--plot",
        metavar="PNG",
        help="also draw the recording with each beat's class, and a few beats of each class, to this PNG",
    )
    p.add_argument(
        "-b",
        "--backend",
        choices=("auto", *BACKENDS),
        default="auto",
        help="inference runtime (default: auto, from the model file's suffix)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32, or a quantised TFLite export of a .keras model (dynamic: int8 weights, about 2x "
        "faster); only variants the export stage shipped, i.e. that kept >= 99.9%% argmax agreement "
        "and macro-F1 within 0.002 on the test split (see metrics/export.json)",
    )
    p.add_argument(
        "-f",
        "--format",
        choices=("csv", "json", "wfdb"),
        default="csv",
        help="output format (default: csv); wfdb: a WFDB annotation file of a recording's beats, named "
        "record.annotator (-o 101.heartbeat), classes as WFDB beat codes N S V F Q",
    )
    p.add_argument(
        "-o",
        "--output",
        help="write the rows to this file (atomically, keeping its permissions) instead of stdout",
    )
    p.add_argument(
        "--output-dir",
        metavar="DIR",
        help="many recordings: one output per recording, DIR/<name>.csv (.json, .heartbeat), and "
        "DIR/summary.csv; the model is loaded once",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive,
        default=1,
        help="with --output-dir: recordings classified at once (default: 1)",
    )
    p.add_argument(
        "--parallel",
        choices=("threads", "processes"),
        default="threads",
        help="with --jobs: threads sharing one model (default: faster on the 26 MIT-BIH records, "
        "BENCHMARKS.md) or worker processes, each loading the model once",
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="with --output-dir: only every N-th recording of the list, from the I-th (0 <= I < N), "
        "for a job array (docs/scaling.md)",
    )
    p.add_argument(
        "--input-kind",
        choices=KINDS,
        default="auto",
        help="how to read INPUT (default: from its name/content)",
    )
    p.add_argument(
        "--lead",
        help="the lead to use, by name or 0-based column index (default: the first of MLII, II, V5 the "
        "recording has, or its only one)",
    )
    p.add_argument(
        "--peaks",
        choices=PEAK_MODES,
        default="auto",
        help="R-peaks of a recording: its .atr annotations, wfdb's XQRS detector, or the paper's threshold "
        "detector (default: auto, annotations when a .atr exists, else the detector)",
    )
    p.add_argument(
        "--each-beat-alone",
        action="store_true",
        help="do not blend each beat's probabilities with those of its look-alikes in the recording, as "
        "a model trained with record_smoothing does by default (the pretrained model: 20 beats, weight 0.5)",
    )
    p.add_argument(
        "--dataset",
        choices=("mitbih", "ptb"),
        help="fail unless the model predicts this dataset's classes (5 for mitbih, 2 for ptb)",
    )
    p.add_argument(
        "--batch-size",
        type=_positive,
        default=DEFAULT_BATCH,
        help=f"beats per call (default: {DEFAULT_BATCH})",
    )
    p.add_argument("--threads", type=_positive, help="CPU threads (default: all cores this process may use)")
    p.add_argument(
        "--progress",
        choices=("auto", "on", "off"),
        default="auto",
        help=f"progress bar on stderr (auto: for {PROGRESS_MIN_BEATS:,}+ beats on a terminal)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr, errors only")
    from heartbeat.serve import score

    score.add_parser(sub)
    return parser


# ---------------------------------------------------------------- output


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


def read_beats(path: str, args: argparse.Namespace, reference: str = "median"):
    """INPUT read as the options say, with the patient features' ``reference`` the model was trained
    with (:attr:`~heartbeat.serve.runners.Runner.reference`); ``--format wfdb`` needs beat times."""
    from heartbeat.serve.inputs import read_input

    beats = read_input(
        path, args.input_kind, lead=args.lead, peaks=args.peaks, fs=args.fs, reference=reference
    )
    if args.format == "wfdb" and beats.sample is None:
        raise ParamsError(
            f"--format wfdb: {path} holds beats, not a recording; there are no times to annotate"
        )
    return beats


def classify(
    beats, runner, args: argparse.Namespace, progress: bool | None
) -> tuple[np.ndarray, RecordSmoothing | None]:
    """The probabilities of ``beats``, smoothed over the recording as the model's training was."""
    from heartbeat.model.smoothing import smooth_over_records
    from heartbeat.serve.runners import predict_proba

    proba = predict_proba(
        runner,
        beats.X,
        args.batch_size,
        progress=progress,
        rhythm=beats.context,
        window=beats.window,
        patient=beats.patient,
    )
    # Only a recording gives the windows to compare its beats by.
    smoothing = None if args.each_beat_alone or beats.window is None else runner.smoothing
    if smoothing is not None:
        proba = smooth_over_records(proba, beats.window, None, smoothing)
    return proba, smoothing


def render(beats, runner, proba: np.ndarray, smoothing, fmt: str, input_path: str) -> bytes:
    """The output file's bytes: CSV, JSON or a WFDB annotation file."""
    from heartbeat.serve.annotate import annotation_bytes

    if fmt == "wfdb":
        names = [runner.class_names[int(i)] for i in proba.argmax(axis=1)]
        return annotation_bytes(beats.sample, names, beats.fs, runner.class_names)
    about = describe(beats, runner, input_path, smoothing) if fmt == "json" else None
    return format_rows(result_table(beats, runner, proba), fmt, about).encode("utf-8")


def cmd_predict(args: argparse.Namespace) -> None:
    from heartbeat.serve.annotate import check_wfdb_output
    from heartbeat.serve.output import plan_output, plan_plot, write_output_bytes
    from heartbeat.serve.runners import load_runner

    if args.quiet:  # errors only: no INFO about the model, no warnings
        log.setLevel(logging.ERROR)
    from heartbeat.serve import batch

    if batch.is_batch(args):
        batch.run(args)
        return
    (path,) = args.input
    model, backend = (args.model, args.backend) if args.model else default_model(args.backend)
    read = files_read(path, model)
    output = plan_output(args.output, read)  # before any work
    plot = plan_plot(args.plot, output, read) if args.plot is not None else None
    if args.format == "wfdb":
        check_wfdb_output(args.output)
    runner = load_runner(model, backend, args.threads, args.precision)
    check_model(runner, model, args.dataset)
    beats = read_beats(path, args, runner.reference)  # as the model's training data was cut
    if plot is not None and beats.signal is None:
        raise ParamsError(f"--plot: {path} holds beats, not a recording; there is no signal to draw")
    check_labels(beats, runner, path)
    for warning in (dataset_warning(beats, runner, path), synthetic_warning(runner)):
        if warning:
            log.warning("%s", warning)
    progress = {"auto": None, "on": True, "off": False}[args.progress]
    start = time.perf_counter()
    proba, smoothing = classify(beats, runner, args, progress and not args.quiet)
    seconds = time.perf_counter() - start
    write_output_bytes(output, render(beats, runner, proba, smoothing, args.format, path))
    if plot is not None:
        from heartbeat.evaluate.plots import png_bytes, recording_figure

        figure = recording_figure(beats.signal, beats.fs, beats.sample, proba, runner.class_names)
        write_output_bytes(plot, png_bytes(figure))
    if not args.quiet:
        for line in summary_lines(beats, runner, proba, seconds, smoothing):
            print(f"{PROG} predict: {line}", file=sys.stderr)


def _exit_code(exc: HeartbeatError) -> int:
    return EXIT_BAD_INPUT if isinstance(exc, DataError | ModelError | ParamsError) else exc.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``heartbeat`` console script; returns the exit status."""
    from heartbeat.core.entry import guarded

    args = build_parser().parse_args(argv)
    from heartbeat.serve.score import cmd_score

    commands = {"predict": cmd_predict, "score": cmd_score}

    return guarded(f"{PROG} {args.command}", lambda: commands[args.command](args), exit_code=_exit_code)


if __name__ == "__main__":
    sys.exit(main())
