"""Reading WFDB records: the header, one lead chosen by name, the beat annotations, the PTB diagnosis.

One copy of these rules serves the physionet source (training data) and ``heartbeat predict`` (a
user's record), so a model sees a record read exactly as in training. Leads are chosen by name,
never by position: MIT-BIH record 114 has MLII second, 102 and 104 have none.

Every function takes ``where``, the name of the record in messages, and raises a one-line
:class:`DataError` that starts with it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from heartbeat.core.errors import DataError, first_line

SYMBOL_TO_AAMI: dict[str, int] = {
    **dict.fromkeys("NLRej", 0),
    **dict.fromkeys("AaJS", 1),
    **dict.fromkeys("VE", 2),
    "F": 3,
    **dict.fromkeys("/fQ", 4),
}
"""MIT-BIH beat symbols to AAMI labels 0..4 (N S V F Q), the mapping the Kaggle set used."""

PTB_DIAGNOSES: dict[str, int] = {"healthy control": 0, "myocardial infarction": 1}
"""PTB 'Reason for admission' values (lower case) the Kaggle PTB set was built from, and their labels."""


def aami_labels(symbols: Sequence[str]) -> np.ndarray:
    """Map annotation symbols to AAMI labels; -1 marks a non-beat annotation (rhythm, noise, ...)."""
    return np.fromiter((SYMBOL_TO_AAMI.get(s, -1) for s in symbols), dtype=np.int64, count=len(symbols))


def read_header(base: Path, where: str):
    """The parsed header ``base.hea`` (a ``wfdb.Record`` without samples)."""
    import wfdb

    try:
        header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises anything from ValueError to its own HeaderSyntaxError
        raise DataError(f"{where}: header {base.name}.hea does not parse ({first_line(exc, 120)})") from None
    if isinstance(header, wfdb.MultiRecord) or not hasattr(header, "file_name"):
        raise DataError(
            f"{where}: header {base.name}.hea describes a multi-segment record "
            f"({getattr(header, 'n_seg', '?')} segments), which heartbeat does not read; join its segments "
            "into one record first (wfdb.rdrecord then wfdb.wrsamp), or give one segment"
        )
    _check_rate_field(base, header, where)
    if not header.n_sig or not header.fs or not header.sig_len:
        raise DataError(f"{where}: header {base.name}.hea has no signals, rate or length")
    for name in header.file_name or []:
        if str(name) in ("", ".", "..") or "/" in str(name) or "\\" in str(name):
            raise DataError(
                f"{where}: header {base.name}.hea names the signal file {str(name)[:60]!r}, which is not a "
                "file name (a folder or a path); the header is damaged"
            )
    return header


_RATE = re.compile(r"^(?P<fs>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:/[^\s(]+)?(?:\([^)]*\))?$")
"""The record line's sampling-frequency field as the WFDB format writes it: a positive decimal,
optionally ``/counter frequency`` and ``(base counter value)``."""


def _check_rate_field(base: Path, header, where: str) -> None:
    """Refuse a record line whose rate field wfdb misreads: ``-360`` or ``+360`` fall back to its default
    250 Hz and ``3.6e2`` reads as 3.6, so every beat time would be wrong without a word."""
    try:
        with open(base.with_name(base.name + ".hea"), encoding="latin-1") as fh:
            lines = (line.strip() for _, line in zip(range(10_000), fh, strict=False))
            record_line = next((line for line in lines if line and not line.startswith("#")), "")
    except OSError as exc:
        raise DataError(f"{where}: header {base.name}.hea cannot be read ({exc.strerror})") from None
    fields = record_line.split()
    if len(fields) < 3:
        return  # no rate given: the length is missing too, which read_header refuses
    match = _RATE.match(fields[2])
    if match is None or float(match["fs"]) != float(header.fs or 0):
        raise DataError(
            f"{where}: header {base.name}.hea gives the sampling rate {fields[2][:40]!r}, which is not a sampling rate as WFDB "
            "writes one (a positive decimal number of Hz); the header is damaged"
        )


def pick_lead(names: Sequence[str], wanted: Sequence[str | None]) -> str | None:
    """The first name of ``wanted`` the record has (case-insensitive), as the record spells it."""
    lower = {str(n).lower(): str(n) for n in names}
    for candidate in wanted:
        if candidate is not None and candidate.lower() in lower:
            return lower[candidate.lower()]
    return None


def second_lead(header, chosen: str) -> str | None:
    """The record's other lead beside ``chosen``, for the two-lead inputs (heartbeat/signal/patient.py):
    the first other signal stored in the same file, so that reading it costs no other download
    (MIT-BIH's second channel; PTB's lead i). None when the record has one lead."""
    names = list(header.sig_name)
    files = list(header.file_name)
    home = files[names.index(chosen)]
    others = [n for n, f in zip(names, files, strict=True) if n != chosen and f == home]
    return others[0] if others else None


def read_lead(base: Path, header, lead: str, where: str) -> np.ndarray:
    """Lead ``lead`` of the record in physical units (float64); gaps and flat leads are errors."""
    import wfdb

    channel = list(header.sig_name).index(lead)
    signal_file = base.parent / str(header.file_name[channel])
    if not signal_file.is_file():
        raise DataError(
            f"{where}: lead {lead} is in {signal_file.name}, which is "
            f"{'not a file' if signal_file.exists() else 'missing'} next to the header"
        )
    try:
        record = wfdb.rdrecord(str(base), channels=[channel], physical=True)
    except Exception as exc:
        raise DataError(f"{where}: cannot read lead {lead} ({first_line(exc, 160)})") from None
    signal = np.asarray(record.p_signal[:, 0], dtype=np.float64)
    finite = np.isfinite(signal)
    if not finite.all():
        raise DataError(
            f"{where}: lead {lead} has an invalid sample at {int(np.argmax(~finite))}; the record has gaps"
        )
    if signal.size == 0 or np.ptp(signal) == 0:
        raise DataError(f"{where}: lead {lead} is flat; no beats to find")
    return signal


def read_beat_annotations(base: Path, where: str, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Beat annotations of ``base.atr`` only (symbols with an AAMI class), sorted by time: (samples, symbols).

    Every beat must lie inside the signal's ``length`` samples: garbage bytes often parse, as
    positions far outside it.
    """
    import wfdb

    try:
        ann = wfdb.rdann(str(base), "atr")
    except Exception as exc:
        raise DataError(
            f"{where}: annotations {base.name}.atr do not parse ({first_line(exc, 160)})"
        ) from None
    samples = np.asarray(ann.sample, dtype=np.int64)
    symbols = np.asarray(ann.symbol, dtype=object)
    beat = aami_labels(symbols) >= 0
    outside = beat & ((samples < 0) | (samples >= length))
    if outside.any():
        raise DataError(
            f"{where}: annotations {base.name}.atr place {int(outside.sum()):,} of {int(beat.sum()):,} beats "
            f"outside the signal's {length:,} samples (e.g. at {int(samples[outside][0]):,}); the file is "
            "damaged or not this record's"
        )
    order = np.argsort(samples[beat], kind="stable")
    return samples[beat][order], symbols[beat][order]


def diagnosis(comments: Sequence[str] | None) -> str | None:
    """The 'Reason for admission' a PTB header comment gives, as written; None when there is none."""
    for comment in comments or []:
        key, _, value = comment.partition(":")
        if key.strip().lower() == "reason for admission":
            return value.strip() or None
    return None


def diagnosis_label(comments: Sequence[str] | None) -> int | None:
    """The PTB label (0 healthy control, 1 myocardial infarction) of a header, or None for any other."""
    found = diagnosis(comments)
    return None if found is None else PTB_DIAGNOSES.get(found.lower())
