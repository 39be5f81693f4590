"""``heartbeat score``: predictions against reference annotations, beat by beat, as EC57 defines it.

The scoring is :mod:`heartbeat.evaluate.ec57`; this module finds the records (one file each, or
a folder or RECORDS file of many), pairs each reference with its test file, and formats the
result as text (``bxb``/``sumstats``-like tables) or JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heartbeat.core.errors import DataError
from heartbeat.evaluate import ec57
from heartbeat.evaluate.annotations import TABLE_SUFFIXES, BeatList, read_beats

log = logging.getLogger("heartbeat")

REFERENCE_ANNOTATOR = "atr"
TEST_ANNOTATOR = "heartbeat"
"""The annotator name (file suffix) of ``heartbeat predict --format wfdb``'s annotation files."""
DEFAULT_RATE = 1000.0
"""Ticks per second when neither file gives a sampling rate: times in seconds are kept to 1 ms."""

SCORE_DESCRIPTION = """\
Compare beat predictions with reference annotations beat by beat, as ANSI/AAMI EC57 and WFDB's
bxb and sumstats do: beats match within 150 ms; QRS sensitivity (Se) and positive predictivity
(+P); the N S V F Q confusion matrix with its unmatched row (O: test beats with no reference
beat) and column (o: reference beats with no test beat); Se, +P and F1 of each class over
matched beats; and for ventricular (VEB) and supraventricular (SVEB) ectopic beats Se, +P and
false-positive rate (FPR), gross (over all beats) and averaged over records.

REFERENCE is a WFDB annotation file (101.atr), a record (mitdb/101, its .atr), a CSV/TSV of beat
times (time_s, seconds; or sample) and labels (AAMI classes N S V F Q or WFDB beat symbols), a
folder of records (its RECORDS file, else every *.atr), or a RECORDS file.

TEST is `heartbeat predict` output (CSV or JSON, from a recording), a WFDB annotation file, or a
CSV of times and labels; with many records, one or more folders (the outputs of several
--shard runs) holding <record>.csv, .json or .heartbeat for each record."""

SCORE_EPILOG = """\
examples:
  heartbeat predict mitdb/208 --peaks detector -o 208.csv && heartbeat score mitdb/208 208.csv
  heartbeat predict mitdb --peaks detector --output-dir preds && heartbeat score mitdb preds
  heartbeat score mitdb shard0/ shard1/ shard2/ --format json -o ec57.json
  heartbeat score mitdb preds --start 300      # EC57's 5-minute learning period, as bxb

exit status: 0 ok, 1 the report could not be written, 2 bad input."""


@dataclass(frozen=True)
class Pair:
    """One record to score: its name, the reference and the test annotation files."""

    name: str
    reference: Path
    test: Path


def add_parser(sub) -> None:
    """The ``score`` subcommand's arguments."""
    p = sub.add_parser(
        "score",
        help="score predictions against reference annotations (EC57, like WFDB's bxb)",
        description=SCORE_DESCRIPTION,
        epilog=SCORE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "reference", metavar="REFERENCE", help="reference annotations: a file, record, folder or RECORDS"
    )
    p.add_argument("test", metavar="TEST", nargs="+", help="test annotations: a file, or folders of them")
    p.add_argument(
        "-f", "--format", choices=("text", "json"), default="text", help="report format (default: text)"
    )
    p.add_argument("-o", "--output", help="write the report to this file (atomically) instead of stdout")
    p.add_argument(
        "--window",
        type=_seconds,
        default=ec57.WINDOW_S,
        help=f"match window in seconds (default: EC57's {ec57.WINDOW_S})",
    )
    p.add_argument(
        "--start",
        type=_seconds,
        default=0.0,
        help="score beats from this time on, in seconds (default: 0; EC57's learning period, which bxb "
        f"leaves out by default, is {ec57.LEARNING_PERIOD_S:.0f})",
    )
    p.add_argument(
        "--reference-annotator",
        default=REFERENCE_ANNOTATOR,
        help=f"suffix of the reference annotation files of a folder or RECORDS (default: {REFERENCE_ANNOTATOR})",
    )
    p.add_argument(
        "--test-annotator",
        default=TEST_ANNOTATOR,
        help=f"suffix of WFDB test annotation files in a folder (default: {TEST_ANNOTATOR})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no warnings about records without predictions")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not np.isfinite(value) or value < 0 or value > 1e7:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0 to 1e7, got {text}")
    return value


# ---------------------------------------------------------------- finding the records


def reference_records(reference: str, annotator: str) -> list[tuple[str, Path]]:
    """(record name, annotation file) of every reference record ``reference`` names."""
    path = Path(reference)
    if path.is_dir():
        listing = path / "RECORDS"
        if listing.is_file():
            return _listed(listing, annotator)
        found = sorted(path.glob(f"*.{annotator}"))
        if not found:
            raise DataError(
                f"{reference}: the folder has no RECORDS file and no *.{annotator} annotation files"
            )
        return [(f.stem, f) for f in found]
    if path.name == "RECORDS" and path.is_file():
        return _listed(path, annotator)
    if path.is_file():
        return [(path.stem, path)]
    record = path.parent / f"{path.name}.{annotator}"
    if record.is_file():
        return [(path.name, record)]
    raise DataError(
        f"{reference}: is neither an annotation file, a record with a .{annotator} file, a folder nor a RECORDS file"
    )


def _listed(listing: Path, annotator: str) -> list[tuple[str, Path]]:
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{listing}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    names = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not names:
        raise DataError(f"{listing}: lists no records")
    bad = next((n for n in names if n.startswith("/") or ".." in Path(n).parts), None)
    if bad is not None:
        raise DataError(f"{listing}: lists {bad!r}, which is not a record inside its folder")
    return [(Path(n).name, listing.parent / f"{n}.{annotator}") for n in names]


def test_files(folders: Sequence[str], annotator: str) -> dict[str, Path]:
    """Record name -> test file, over the folders (the outputs of several shards)."""
    found: dict[str, Path] = {}
    suffixes = {*TABLE_SUFFIXES, ".json", f".{annotator.lower()}"}
    for folder in folders:
        path = Path(folder)
        if not path.is_dir():
            raise DataError(
                f"{folder}: is not a folder; with many reference records, TEST names folders of predictions"
            )
        for f in sorted(path.iterdir()):
            if f.is_file() and f.suffix.lower() in suffixes:
                if f.stem in found and found[f.stem] != f:
                    raise DataError(
                        f"{f}: record {f.stem} also has predictions in {found[f.stem]}; keep one of them"
                    )
                found[f.stem] = f
    return found


def pair_records(
    reference: str, tests: Sequence[str], ref_annotator: str, test_annotator: str
) -> tuple[list[Pair], list[str]]:
    """The records to score and the names of reference records that have no predictions."""
    records = reference_records(reference, ref_annotator)
    if len(records) == 1 and len(tests) == 1 and not Path(tests[0]).is_dir():
        name, ref = records[0]
        return [Pair(name, ref, Path(tests[0]))], []
    found = test_files(tests, test_annotator)
    pairs = [Pair(name, ref, found[name]) for name, ref in records if name in found]
    missing = [name for name, _ in records if name not in found]
    if not pairs:
        raise DataError(
            f"{', '.join(tests)}: holds predictions for none of the {len(records)} reference records "
            f"(e.g. {records[0][0]}.csv); name each output after its record"
        )
    return pairs, missing


# ---------------------------------------------------------------- scoring


def score_pair(pair: Pair, window_s: float, start_s: float) -> ec57.RecordScore:
    ref = read_beats(pair.reference, "reference")
    test = read_beats(pair.test, "test")
    rate = _rate(ref, test)
    return ec57.score_record(
        pair.name,
        ref.ticks(rate),
        ref.labels,
        test.ticks(rate),
        test.labels,
        window=round(window_s * rate),
        start=round(start_s * rate),
    )


def _rate(ref: BeatList, test: BeatList) -> float:
    """The time unit both are compared in: the reference's sampling rate, else the test's, else 1 ms."""
    return ref.fs or test.fs or DEFAULT_RATE


def score_records(pairs: Sequence[Pair], window_s: float, start_s: float) -> ec57.Score:
    return ec57.summarize([score_pair(p, window_s, start_s) for p in pairs], window_s, start_s)


# ---------------------------------------------------------------- formatting

LABELS = {
    "qrs_se": "QRS Se",
    "qrs_pp": "QRS +P",
    "veb_se": "VEB Se",
    "veb_pp": "VEB +P",
    "veb_fpr": "VEB FPR",
    "sveb_se": "SVEB Se",
    "sveb_pp": "SVEB +P",
    "sveb_fpr": "SVEB FPR",
}


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def format_text(score: ec57.Score, missing: Sequence[str] = ()) -> str:
    """Readable tables: one row per record, gross and average rows, the confusion matrix and the
    per-class figures. Statistics in percent; '-' where a denominator is 0."""
    keys = ec57.STATISTICS
    width = max([7, *(len(r.name) for r in score.records)])
    head = f"{'Record':<{width}} {'beats':>7} {'tested':>7} " + " ".join(f"{LABELS[k]:>8}" for k in keys)
    lines = [
        f"EC57 beat-by-beat comparison: {len(score.records)} record(s), match window "
        f"{score.window_s * 1000:g} ms, beats from {score.start_s:g} s on; statistics in %",
        "",
        head,
        "-" * len(head),
    ]
    for r in score.records:
        ref_beats = int(r.matrix[: ec57.UNMATCHED].sum())
        test_beats = int(r.matrix[:, : ec57.UNMATCHED].sum())
        lines.append(
            f"{r.name:<{width}} {ref_beats:>7,} {test_beats:>7,} "
            + " ".join(f"{_pct(r.stats[k].value, 3 if 'fpr' in k else 2):>8}" for k in keys)
        )
    lines.append("-" * len(head))
    total_ref = int(score.matrix[: ec57.UNMATCHED].sum())
    total_test = int(score.matrix[:, : ec57.UNMATCHED].sum())
    lines.append(
        f"{'Gross':<{width}} {total_ref:>7,} {total_test:>7,} "
        + " ".join(f"{_pct(score.gross[k].value, 3 if 'fpr' in k else 2):>8}" for k in keys)
    )
    lines.append(
        f"{'Average':<{width}} {'':>7} {'':>7} "
        + " ".join(f"{_pct(score.average[k], 3 if 'fpr' in k else 2):>8}" for k in keys)
    )
    lines += [
        "",
        "Confusion matrix (rows: reference, O = test beat with no reference beat;",
        "columns: test, o = reference beat with no test beat)",
        "",
    ]
    lines.append("     " + "".join(f"{c:>8}" for c in ec57.COLS))
    for i, row in enumerate(ec57.ROWS):
        cells = [f"{int(v):>8,}" for v in score.matrix[i]]
        if row == "O":
            cells[-1] = f"{'':>8}"
        lines.append(f"  {row}  " + "".join(cells))
    lines += [
        "",
        "Per class, over matched beats:",
        f"  {'class':<6}{'Se':>8}{'+P':>8}{'F1':>8}{'reference':>11}{'test':>8}",
    ]
    for name, c in score.classes.items():
        lines.append(
            f"  {name:<6}{_pct(c['se']):>8}{_pct(c['pp']):>8}{_pct(c['f1']):>8}{c['reference']:>11,}{c['test']:>8,}"
        )
    m = score.matrix
    lines += [
        "",
        f"Total QRS complexes: {total_ref:,}  VEBs: {int(m[ec57.V, :].sum()):,}  SVEBs: {int(m[ec57.S, :].sum()):,}",
        "Gross: over all beats; Average: the mean over the records where a statistic is defined "
        "(" + ", ".join(f"{LABELS[k]} {score.average_n[k]}" for k in keys) + " records).",
    ]
    if missing:
        lines.append(f"Not scored (no predictions): {', '.join(missing)}")
    return "\n".join(lines) + "\n"


def _matrix_dict(matrix: np.ndarray) -> dict[str, dict[str, int]]:
    return {
        row: {col: int(matrix[i, j]) for j, col in enumerate(ec57.COLS) if not (row == "O" and col == "o")}
        for i, row in enumerate(ec57.ROWS)
    }


def format_json(score: ec57.Score, missing: Sequence[str] = ()) -> str:
    """The same figures as JSON: fractions (not percent), each statistic with its counts."""
    out = {
        "window_s": score.window_s,
        "start_s": score.start_s,
        "records": [
            {
                "record": r.name,
                "matrix": _matrix_dict(r.matrix),
                "statistics": {k: r.stats[k].as_dict() for k in ec57.STATISTICS},
            }
            for r in score.records
        ],
        "gross": {k: score.gross[k].as_dict() for k in ec57.STATISTICS},
        "average": {k: {"value": score.average[k], "records": score.average_n[k]} for k in ec57.STATISTICS},
        "matrix": _matrix_dict(score.matrix),
        "classes": score.classes,
        "not_scored": list(missing),
    }
    return json.dumps(out, indent=1) + "\n"


def cmd_score(args: argparse.Namespace) -> None:
    from heartbeat.serve.output import plan_output, write_output

    pairs, missing = pair_records(args.reference, args.test, args.reference_annotator, args.test_annotator)
    read = [p.reference for p in pairs] + [p.test for p in pairs]
    output = plan_output(args.output, read)
    score = score_records(pairs, args.window, args.start)
    if missing and not args.quiet:
        log.warning(
            "%d reference record(s) have no predictions and are not scored: %s",
            len(missing),
            ", ".join(missing),
        )
    text = format_json(score, missing) if args.format == "json" else format_text(score, missing)
    write_output(output, text)
