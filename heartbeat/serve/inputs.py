"""Read what a user hands ``heartbeat predict``: a beat CSV, a ``.npy`` array, or a WFDB record.

Every reader returns :class:`Beats`: float32 beats ``(n, 187)`` in [0, 1], the
true labels when the input carries them, and for a record the R-peak sample of
each beat. Anything unusable is a :class:`DataError` with one line that names
the file and the problem, which the CLI turns into exit code 2.

WFDB records are read by :mod:`heartbeat.signal.records` and cut by
:func:`heartbeat.signal.segment.extract_beats`, the code the ``physionet``
source uses, so a model sees beats cut exactly as in training.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heartbeat.core.beatcsv import RANGE_TOLERANCE, read_beats_csv
from heartbeat.core.beats import BEAT_LENGTH
from heartbeat.core.errors import DataError, about
from heartbeat.core.npyfile import load_npy
from heartbeat.core.streams import display_name, is_stream, read_stream

log = logging.getLogger("heartbeat")

KINDS: tuple[str, ...] = ("auto", "csv", "npy", "wfdb")
DEFAULT_LEADS: tuple[str, ...] = ("MLII", "II", "V5")
"""Tried in order, case-insensitively: MIT-BIH's MLII (the training lead), PTB's lead ii, then V5,
the physionet source's fallback for the MIT-BIH records that lack MLII."""
PEAK_MODES: tuple[str, ...] = ("auto", "annotations", "detector")


@dataclass(frozen=True)
class Beats:
    """Beats to classify and what the input said about them."""

    X: np.ndarray
    y: np.ndarray | None = None
    label_dataset: str | None = None
    """Which class set ``y`` uses (``mitbih`` or ``ptb``); None when unknown (a bare CSV)."""
    sample: np.ndarray | None = None
    """R-peak of each beat, in samples at the record's own rate (records only)."""
    fs: float | None = None
    lead: str | None = None
    peaks: str | None = None
    """How R-peaks were found (records only): ``annotations`` or ``detector``."""
    context: np.ndarray | None = None
    """The ``(n, 9)`` context matrix of a record's beats (R-R and record-template features), as the
    physionet source and preprocess compute it for training; None for beats without a record."""
    window: np.ndarray | None = None
    """``(n, 125, 2)`` two-lead windows of a record's beats (heartbeat/signal/patient.py); else None."""
    patient: np.ndarray | None = None
    """``(n, 40)`` features of a record's beats against their patient (heartbeat/signal/patient.py)."""

    def __len__(self) -> int:
        return int(self.X.shape[0])


_NPY_MAGIC = b"\x93NUMPY"


def detect_kind(path: Path, data: bytes | None = None) -> str:
    """``csv``, ``npy`` or ``wfdb`` from the name, falling back to the first bytes (``data``, for
    an input already read from a pipe, or the file's)."""
    if data is not None:
        return "npy" if data.startswith(_NPY_MAGIC) else "csv"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".npy":
        return "npy"
    if suffix in (".hea", ".dat", ".atr") or (
        not path.exists() and path.with_name(path.name + ".hea").exists()
    ):
        return "wfdb"
    if path.is_file():
        with open(path, "rb") as fh:
            head = fh.read(8)
        return "npy" if head.startswith(_NPY_MAGIC) else "csv"
    raise DataError(
        f"{path}: not found (for a WFDB record give its path without suffix, e.g. mitdb/100, "
        "with mitdb/100.hea next to it)"
    )


def read_input(
    path: str | os.PathLike[str],
    kind: str = "auto",
    lead: str | None = None,
    peaks: str = "auto",
) -> Beats:
    """Read ``path`` as ``kind`` (``auto``: :func:`detect_kind`).

    ``-`` is standard input; it, and any other pipe (``/dev/stdin``, a process substitution),
    is read once, whole, and parsed from memory: a pipe cannot be opened twice.
    """
    p = Path(path)
    data = read_stream(path) if is_stream(path) else None
    if kind == "auto":
        kind = detect_kind(p, data)
    if kind == "csv":
        beats = read_beats_csv(path, labelled=None, data=data)
        return Beats(X=beats.X, y=beats.y)
    if kind == "npy":
        return read_npy(p, data)
    if kind == "wfdb":
        if data is not None:
            raise DataError(
                f"{display_name(path)}: a WFDB record is several files (.hea, .dat, .atr) and cannot be read "
                "from a pipe; give the record's path"
            )
        return read_record(p, lead=lead, peaks=peaks)
    raise DataError(f"unknown input kind {kind!r}; expected one of {', '.join(KINDS)}")


def read_npy(path: Path, data: bytes | None = None) -> Beats:
    """An ``(n, 187)`` array of beats in [0, 1]; a single ``(187,)`` beat is accepted as one row.

    ``data`` is the file's content when it was read from a pipe; ``path`` then only names it.
    """
    path = display_name(path)
    try:
        X = load_npy(path, data)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a .npy file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if X.ndim == 1 and X.shape[0] == BEAT_LENGTH:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != BEAT_LENGTH:
        raise DataError(f"{path}: array has shape {X.shape}, expected (n, {BEAT_LENGTH}): one beat per row")
    if X.shape[0] == 0:
        raise DataError(f"{path}: array has no rows; expected at least one beat")
    if not (np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.floating)):
        raise DataError(f"{path}: array has dtype {X.dtype}, expected real numbers")
    X = np.ascontiguousarray(X, dtype=np.float32)
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{path}: row {row + 1}, column {col + 1}: {X[row, col]} is not a finite number")
    out = (X < -RANGE_TOLERANCE) | (X > 1 + RANGE_TOLERANCE)
    if out.any():
        row, col = np.argwhere(out)[0]
        raise DataError(
            f"{path}: row {row + 1}, column {col + 1}: value {X[row, col]:.6g} is outside [0, 1]; "
            "beats must be normalised to [0, 1] as in the Kaggle set"
        )
    return Beats(X=X)


# ---------------------------------------------------------------- WFDB records


def _record_base(path: Path) -> Path:
    return path.with_suffix("") if path.suffix.lower() in (".hea", ".dat", ".atr") else path


def read_record(path: Path, lead: str | None = None, peaks: str = "auto") -> Beats:
    """Segment one WFDB record into beats.

    ``peaks``: ``annotations`` uses the record's ``.atr`` beat annotations (and
    so yields AAMI labels), ``detector`` runs the paper's R-peak detector,
    ``auto`` uses annotations when a ``.atr`` file exists. A PTB record whose
    header names its diagnosis yields PTB labels for every beat.
    """
    if peaks not in PEAK_MODES:
        raise DataError(f"unknown peaks mode {peaks!r}; expected one of {', '.join(PEAK_MODES)}")
    base = _record_base(path)
    where = str(base)
    if not base.with_name(base.name + ".hea").is_file():
        raise DataError(f"{where}: no WFDB header {base.name}.hea; give the record path without suffix")
    try:
        return _cut(base, where, lead, peaks)
    except DataError as exc:  # the segmenter's checks do not know which record they are about
        raise about(exc, where) from None


def _cut(base: Path, where: str, lead: str | None, peaks: str) -> Beats:
    from heartbeat.signal import records
    from heartbeat.signal.beats import cut_record

    header = records.read_header(base, where)
    names = [str(n) for n in (header.sig_name or [])]
    chosen = records.pick_lead(names, (lead,) if lead else DEFAULT_LEADS)
    if chosen is None:
        wanted = lead or " or ".join(DEFAULT_LEADS)
        raise DataError(
            f"{where}: no usable lead: wanted {wanted}, the record has {', '.join(names) or 'no signals'}; "
            "pass --lead NAME to choose one (the models were trained on MLII / lead II beats)"
        )
    if lead is None and chosen.lower() not in ("mlii", "ii"):
        log.warning("%s: no MLII or II lead; using %s, a lead the models were not trained on", where, chosen)
    signal = records.read_lead(base, header, chosen, where)
    other = records.second_lead(header, chosen)
    second = None if other is None else records.read_lead(base, header, other, where)
    fs = float(header.fs)
    has_atr = base.with_name(base.name + ".atr").is_file()
    mode = ("annotations" if has_atr else "detector") if peaks == "auto" else peaks
    y = None
    label_dataset = None
    if mode == "annotations":
        if not has_atr:
            raise DataError(f"{where}: --peaks annotations needs {base.name}.atr next to the header")
        ref, symbols = records.read_beat_annotations(base, where, int(header.sig_len))
        if ref.size == 0:
            raise DataError(f"{where}: {base.name}.atr has no beat annotations; use --peaks detector")
        beats = cut_record(signal, fs, ref, symbols, second=second)
        y = records.aami_labels(beats.symbol)
        label_dataset = "mitbih"
    else:
        beats = cut_record(signal, fs, None, second=second, polarity="auto")
        label = records.diagnosis_label(header.comments)
        if label is not None:
            y = np.full(len(beats), label, dtype=np.int64)
            label_dataset = "ptb"
    if len(beats) == 0:
        raise DataError(f"{where}: no beats found in lead {chosen} ({mode}); is it an ECG?")
    return Beats(
        X=np.ascontiguousarray(beats.X, dtype=np.float32),
        y=y,
        label_dataset=label_dataset,
        sample=beats.sample,
        fs=fs,
        lead=chosen,
        peaks=mode,
        context=beats.context(),
        window=beats.window,
        patient=beats.patient,
    )
