"""Read what a user hands ``heartbeat predict``: beats (a Kaggle-format CSV, an ``(n, 187)`` array)
or a continuous recording (a WFDB record at any rate, EDF/EDF+, a CSV/TSV of signal columns or a
1-D array, the last two with ``--fs``).

Every reader returns :class:`Beats`: float32 beats ``(n, 187)`` in [0, 1], the true labels when the
input carries them, and for a recording the R-peak sample of each beat, its context and the lead
itself. A recording is read by :mod:`heartbeat.signal.user_recordings` and cut by
:func:`heartbeat.signal.record_beats.cut_record`, the code the physionet and demo sources use, so a model
sees beats cut exactly as in training. R-peaks come from the record's ``.atr`` annotations where it
has them, else from wfdb's XQRS detector (:func:`heartbeat.signal.detect.r_peaks`). Anything
unusable is a :class:`DataError` with one line that names the file and the problem, which the CLI
turns into exit code 2.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.beatcsv import RANGE_TOLERANCE, read_beats_csv
from heartbeat.core.errors import DataError, about, input_file
from heartbeat.core.npyfile import load_npy
from heartbeat.core.streams import display_name, is_stream, read_stream

log = logging.getLogger("heartbeat")

KINDS: tuple[str, ...] = ("auto", "csv", "npy", "wfdb", "edf", "signal")
"""``csv``/``npy``: beats; ``wfdb``, ``edf``: recordings; ``signal``: a CSV/TSV of samples or a 1-D
``.npy``, with ``--fs``. ``auto`` decides from the name and content, and from whether ``--fs`` is given."""
PEAK_MODES: tuple[str, ...] = ("auto", "annotations", "detector", "paper")
"""Where a recording's R-peaks come from: its ``.atr`` annotations, wfdb's XQRS (``detector``), or the
paper's threshold detector (``paper``); ``auto`` takes annotations where there are any."""


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
    signal: np.ndarray | None = None
    """The lead the beats were cut from (recordings only), for ``--plot``."""
    kind: str | None = None
    """How the input was read: one of :data:`KINDS` but ``auto``."""
    context: np.ndarray | None = None
    """The ``(n, 9)`` context matrix of a record's beats (R-R and record-template features), as the
    physionet source and preprocess compute it for training; None for beats without a record."""
    window: np.ndarray | None = None
    """``(n, 125, 2)`` two-lead windows of a record's beats (heartbeat/signal/patient.py); else None."""
    patient: np.ndarray | None = None
    """``(n, 80)`` features of a record's beats against their patient (heartbeat/signal/patient.py)."""
    irregular: np.ndarray | None = None
    """``(n,)`` whether each of a record's beats is in an irregularly irregular stretch
    (heartbeat/signal/irregular.py), as preprocess flags them for evaluation; None without a record."""

    def __len__(self) -> int:
        return int(self.X.shape[0])


def _irregular(sample: np.ndarray, where: str) -> np.ndarray | None:
    """The irregular-rhythm flags of a recording's beats; None, with a warning, where its R-peaks do
    not increase (annotations that repeat a time), which leave the rhythm unknown."""
    from heartbeat.signal.irregular import irregular_beats

    try:
        return irregular_beats(sample)
    except ValueError as exc:
        log.warning("%s: %s; no beat is taken as atrial fibrillation", where, exc)
        return None


_NPY_MAGIC = b"\x93NUMPY"


def detect_kind(path: Path, data: bytes | None = None, fs: float | None = None) -> str:
    """``csv``, ``npy``, ``wfdb``, ``edf`` or ``signal`` from the name, else the first bytes (``data``,
    for an input already read from a pipe, or the file's); a table with ``--fs`` is a ``signal``."""
    suffix = path.suffix.lower()
    if data is None:
        if suffix in (".hea", ".dat", ".atr") or (
            not path.exists() and path.with_name(path.name + ".hea").exists()
        ):
            return "wfdb"
        missing = (
            "for a WFDB record give its path without suffix, e.g. mitdb/100, with mitdb/100.hea next to it"
        )
        with input_file(path, "a recording or beats file", missing):
            if path.exists() and not path.is_file() and not path.is_dir():
                raise DataError(f"{path}: is not a file")  # a FIFO or a device: sniffing it would eat it
            with open(path, "rb") as fh:
                data_head = fh.read(256)
    else:
        data_head = data[:256]
    if suffix in (".edf", ".rec") or data_head.startswith(b"0       "):
        return "edf"
    if suffix == ".npy" or data_head.startswith(_NPY_MAGIC):
        return "npy"
    return "signal" if fs is not None else "csv"


def read_input(
    path: str | os.PathLike[str],
    kind: str = "auto",
    lead: str | None = None,
    peaks: str = "auto",
    fs: float | None = None,
    reference: str = "median",
    amplitude_stretch_s: float = 0.0,
) -> Beats:
    """Read ``path`` as ``kind`` (``auto``: :func:`detect_kind`); a recording's patient features take
    ``reference`` beats for it, and its amplitude by stretches of ``amplitude_stretch_s``, as the
    model's training data did (:class:`~heartbeat.serve.runners.Runner`).

    ``-`` is standard input; it, and any other pipe (``/dev/stdin``, a process substitution),
    is read once, whole, and parsed from memory: a pipe cannot be opened twice.
    """
    if kind not in KINDS:
        raise DataError(f"unknown input kind {kind!r}; expected one of {', '.join(KINDS)}")
    if peaks not in PEAK_MODES:
        raise DataError(f"unknown peaks mode {peaks!r}; expected one of {', '.join(PEAK_MODES)}")
    p = Path(path)
    data = read_stream(path) if is_stream(path) else None
    if kind == "auto":
        kind = detect_kind(p, data, fs)
        if kind == "csv":
            _not_a_signal(p, data)
    if kind == "csv":
        if fs is not None:
            raise DataError(
                f"{display_name(path)}: --fs is for a signal; a beat CSV (187 samples per row) has no "
                "sampling rate (use --input-kind signal for a CSV of samples)"
            )
        beats = read_beats_csv(path, labelled=None, data=data)
        return Beats(X=beats.X, y=beats.y, kind="csv")
    if kind == "npy":
        return read_npy(p, data, fs, lead, peaks, reference, amplitude_stretch_s)
    if kind == "wfdb":
        if data is not None:
            raise DataError(
                f"{display_name(path)}: a WFDB record is several files (.hea, .dat, .atr) and cannot be read "
                "from a pipe; give the record's path"
            )
        return read_record(
            p, lead=lead, peaks=peaks, fs=fs, reference=reference, amplitude_stretch_s=amplitude_stretch_s
        )
    from heartbeat.signal import user_recordings

    name = display_name(path)
    if kind == "edf":
        edf = user_recordings.given_rate(user_recordings.read_edf(name, lead, data), fs)
        return from_recording(edf, peaks, "edf", reference, amplitude_stretch_s)
    table = user_recordings.read_table(name, fs, lead, data)
    return from_recording(table, peaks, "signal", reference, amplitude_stretch_s)


def _not_a_signal(path: Path, data: bytes | None) -> None:
    """A table with a few columns and no ``--fs`` is a signal given without its rate, not beats: say so,
    rather than that its rows are too short."""
    if data is None:
        with open(path, "rb") as fh:
            data = fh.read(1 << 16)
    lines = data.lstrip(b"\xef\xbb\xbf").splitlines()
    first = lines[0].decode("utf-8", errors="replace") if lines else ""
    if not first.strip():
        return  # an empty file: the CSV reader says so
    columns = max(len(first.split(sep)) for sep in (",", "\t", ";"))
    if 0 < columns < BEAT_LENGTH:
        raise DataError(
            f"{display_name(path)}: {columns} column(s) per row: a signal, not Kaggle-format beats (187 samples "
            "per row); pass its sampling rate with --fs HZ"
        )


def read_npy(
    path: Path,
    data: bytes | None = None,
    fs: float | None = None,
    lead: str | None = None,
    peaks: str = "auto",
    reference: str = "median",
    amplitude_stretch_s: float = 0.0,
) -> Beats:
    """An ``(n, 187)`` array of beats in [0, 1] (a single ``(187,)`` beat is one row), or with ``fs`` a
    1-D array of samples: one lead of a recording.

    ``data`` is the file's content when it was read from a pipe; ``path`` then only names it.
    """
    path = display_name(path)
    with input_file(path, "a .npy file"):
        X = load_npy(path, data, work=1.0 if fs is None else 3.0)  # a signal: + its float64 copy
    if fs is not None:
        from heartbeat.signal import user_recordings

        rec = user_recordings.signal_array(X, fs, path)
        del X  # the float64 copy is the lead from here; the array as read would stay beside it
        return from_recording(rec, peaks, "signal", reference, amplitude_stretch_s)
    if X.ndim == 1 and X.shape[0] != BEAT_LENGTH:
        raise DataError(
            f"{path}: a 1-D array of {X.shape[0]} values is a signal, not a beat: pass its sampling rate "
            "with --fs HZ"
        )
    if X.ndim == 1:
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
    return Beats(X=X, kind="npy")


# ---------------------------------------------------------------- recordings


def _record_base(path: Path) -> Path:
    return path.with_suffix("") if path.suffix.lower() in (".hea", ".dat", ".atr") else path


def read_record(
    path: Path,
    lead: str | None = None,
    peaks: str = "auto",
    fs: float | None = None,
    reference: str = "median",
    amplitude_stretch_s: float = 0.0,
) -> Beats:
    """Segment one WFDB record into beats.

    ``peaks``: ``annotations`` uses the record's ``.atr`` beat annotations (and so yields AAMI
    labels), ``detector`` runs wfdb's XQRS, ``paper`` the paper's threshold detector, ``auto`` uses
    annotations when a ``.atr`` file exists. A PTB record whose header names its diagnosis yields
    PTB labels for every beat. ``fs`` (``--fs``) must agree with the header's rate.
    """
    from heartbeat.signal import user_recordings

    base = _record_base(path)
    if peaks == "annotations" and not base.with_name(base.name + ".atr").is_file():
        raise DataError(f"{base}: --peaks annotations needs {base.name}.atr next to the header")
    rec = user_recordings.read_wfdb(base, lead, annotations=peaks in ("auto", "annotations"))
    return from_recording(user_recordings.given_rate(rec, fs), peaks, "wfdb", reference, amplitude_stretch_s)


def from_recording(
    rec,
    peaks: str = "auto",
    kind: str = "signal",
    reference: str = "median",
    amplitude_stretch_s: float = 0.0,
) -> Beats:
    """The beats of a :class:`~heartbeat.signal.user_recordings.Recording`, cut as the sources cut them."""
    from heartbeat.signal import detect, user_recordings, wfdb_records
    from heartbeat.signal.record_beats import cut_record

    where = rec.where
    try:
        user_recordings.check_lead(rec)
        symbols, y, label_dataset = None, None, None
        if rec.annotations is not None and peaks in ("auto", "annotations"):
            mode = "annotations"
            found, symbols = rec.annotations
            if found.size == 0:
                raise DataError(f"{where}: the annotations hold no beats; use --peaks detector")
        elif peaks == "paper":
            mode, found = "paper", None
        else:
            mode, found = "detector", detect.r_peaks(rec.signal, rec.fs)
            user_recordings.check_detected(rec, found)
        options = {"polarity": "auto"} if found is None else {}
        beats = cut_record(
            rec.signal,
            rec.fs,
            found,
            symbols,
            second=None if rec.second is None else rec.second_lead,  # decoded when the features reach it
            reference=reference,
            amplitude_stretch_s=amplitude_stretch_s,
            **options,
        )
    except DataError as exc:  # the segmenter's checks do not know which input they are about
        raise about(exc, where) from None
    if len(beats) == 0:
        raise DataError(f"{where}: no beats found in lead {rec.lead} ({mode}); is it an ECG?")
    if mode == "annotations":
        y, label_dataset = wfdb_records.aami_labels(beats.symbol), "mitbih"
    else:
        label = wfdb_records.diagnosis_label(rec.comments)
        if label is not None:
            y, label_dataset = np.full(len(beats), label, dtype=np.int64), "ptb"
    return Beats(
        X=np.ascontiguousarray(beats.X, dtype=np.float32),
        y=y,
        label_dataset=label_dataset,
        sample=beats.sample,
        fs=rec.fs,
        lead=rec.lead,
        peaks=mode,
        signal=rec.signal,
        kind=kind,
        context=beats.context(),
        window=beats.window,
        patient=beats.patient,
        irregular=_irregular(beats.sample, where),
    )
