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
import logging
import math
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from heartbeat import __version__
from heartbeat.core.errors import DataError, HeartbeatError, ModelError, ParamsError
from heartbeat.serve.steps import (
    PROG,
    check_labels,
    check_model,
    classify,
    dataset_warning,
    default_model,
    files_read,
    read_beats,
    render,
    summary_lines,
    synthetic_warning,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger("heartbeat")

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
(heartbeat/signal/record_beats.py), at the R-peaks of its .atr annotations when it has
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
        help="classify each beat without its recording: no blend of its probabilities with those of its "
        "look-alikes, as a model trained with record_smoothing does by default (the pretrained model: 20 "
        "beats, weight 0.5), and no irregular-rhythm gate (no S in atrial fibrillation)",
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


def cmd_predict(args: argparse.Namespace) -> None:
    from heartbeat.serve.annotate import check_wfdb_output
    from heartbeat.serve.output import plan_output, plan_plot, write_output_bytes
    from heartbeat.serve.runners import load_runner, stored_patient_options

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
    beats = read_beats(path, args, **stored_patient_options(model))  # cut as the model's training data was
    if plot is not None and beats.signal is None:
        raise ParamsError(f"--plot: {path} holds beats, not a recording; there is no signal to draw")
    runner = load_runner(model, backend, args.threads, args.precision)
    check_model(runner, model, args.dataset)
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
