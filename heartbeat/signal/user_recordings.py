"""Continuous ECG recordings a user brings: WFDB records, EDF/EDF+, CSV/TSV columns, 1-D NumPy arrays.

Each reader returns a :class:`Recording`: one lead as float64 samples, its sampling rate and name,
and, for a WFDB record with a ``.atr`` file, its beat annotations. :func:`check_lead` then refuses
what cannot give trustworthy beats (too short, flat, gaps, clipped) with one line that names the
file, so nothing downstream ever sees such a lead.

EDF is read with edfio: small (numpy only), maintained, reads and writes EDF and EDF+, and keeps the
16-bit quantisation error at its ideal half step (BENCHMARKS.md, "EDF").
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from heartbeat.core.errors import DataError, empty_file, first_line, input_file
from heartbeat.signal import wfdb_records
from heartbeat.signal.checks import MAX_FS

log = logging.getLogger("heartbeat")

DEFAULT_LEADS: tuple[str, ...] = ("MLII", "II", "V5")
"""Tried in order, case-insensitively: MIT-BIH's MLII (the training lead), PTB's lead ii, then V5,
the physionet source's fallback for the MIT-BIH records that lack MLII."""

MIN_SIGNAL_FS = 50.0
"""The lowest rate a user's signal may have: the R-peak detector's 5-20 Hz band needs it, and beats
are resampled to 125 Hz."""
MIN_SECONDS = 3.0
"""Shorter than this a lead holds too few beats for an R-R interval on each side of a beat."""
MIN_RR_S, MAX_RR_S = 0.25, 2.5
"""A median R-R outside these (240 and 24 beats per minute) is not a heart at rest or at work: the
lead is not an ECG, or ``--fs`` is wrong."""
MIN_LIKENESS = 0.4
"""A heart's beats look alike: the median correlation of each detected QRS (±0.2 s) with their median
is above 0.8 in every shared MIT-BIH record (0.56 in the first minutes of 207, a flutter episode),
and about 0.25 for the "beats" a detector finds in noise."""
CLIPPED_SHARE = 0.01
"""A lead with more than this share of its samples stuck at an extreme value was clipped by the
recorder (a saturated amplifier): the QRS tops are cut off, and the beats would be misread. An
extreme that is also the lead's median is its flat baseline (a synthetic or filtered lead), not a rail."""
UNITS_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "": 1.0}
"""Physical units an EDF signal may be stored in, to millivolts (MIT-BIH's unit)."""


@dataclass(frozen=True)
class Recording:
    """One lead of a recording, and what the input said about it."""

    signal: np.ndarray
    fs: float
    lead: str
    where: str
    """The input's name, for messages."""
    annotations: tuple[np.ndarray, np.ndarray] | None = None
    """Beat annotations (samples, symbols) of a WFDB record with a ``.atr`` file."""
    comments: list[str] = field(default_factory=list)
    """WFDB header comments (a PTB record's diagnosis)."""
    second: np.ndarray | Callable[[], np.ndarray] | None = None
    """The recording's other lead, same rate and length, for the two-lead inputs
    (heartbeat/signal/patient.py); None when it has one lead. A reader may keep it compact until the
    beats are cut (:meth:`second_lead`): a table's as the float32 numbers it parsed, an EDF's undecoded,
    a WFDB record's unread (its gaps and flatness are checked when it is read). As float64 it would
    sit beside the detector's copies of the first lead and the first lead's patient features."""

    def second_lead(self) -> np.ndarray | None:
        """The other lead as float64 samples, decoded now if the reader kept it compact (the same
        numbers: float32 widens to float64 exactly, and an EDF's or a WFDB record's is read as the
        first lead is)."""
        second = self.second() if callable(self.second) else self.second
        return None if second is None else np.asarray(second, dtype=np.float64)


def choose_lead(names: Sequence[str], lead: str | None, where: str) -> int:
    """The column to use: ``lead`` by name (case-insensitive) or 0-based index, else the first of
    :data:`DEFAULT_LEADS` present, else the only column there is."""
    names = [str(n) for n in names]
    if lead is not None:
        found = wfdb_records.pick_lead(names, (lead,))
        if found is not None:
            return names.index(found)
        if lead.strip().lstrip("-").isdigit():
            index = int(lead)
            if 0 <= index < len(names):
                return index
            raise DataError(f"{where}: --lead {lead}: there are {len(names)} leads (0..{len(names) - 1})")
        raise DataError(f"{where}: --lead {lead}: no such lead; the input has {', '.join(names) or 'none'}")
    found = wfdb_records.pick_lead(names, DEFAULT_LEADS)
    if found is not None:
        return names.index(found)
    if len(names) == 1:
        return 0
    raise DataError(
        f"{where}: no usable lead: wanted {' or '.join(DEFAULT_LEADS)}, the input has {', '.join(names)}; "
        "pass --lead NAME or --lead INDEX (the models were trained on MLII / lead II beats)"
    )


def check_fs_arg(fs: float | None, where: str) -> float:
    """A sampling rate the user gave (``--fs``): required for inputs that do not carry one."""
    if fs is None:
        raise DataError(f"{where}: this input has no sampling rate; pass --fs HZ (e.g. --fs 250)")
    if not np.isfinite(fs) or not MIN_SIGNAL_FS <= fs <= MAX_FS:
        raise DataError(
            f"{where}: --fs {fs:g} is outside {MIN_SIGNAL_FS:g}..{MAX_FS:g} Hz; give the signal's sampling rate"
        )
    return float(fs)


def given_rate(rec: Recording, fs: float | None) -> Recording:
    """``rec``, after checking ``--fs`` against the rate its header gives (WFDB, EDF): an option that
    disagrees is refused rather than silently ignored, since either the option or the file is wrong."""
    if fs is not None and not np.isclose(fs, rec.fs, rtol=1e-6, atol=0):
        raise DataError(
            f"{rec.where}: --fs {fs:g} disagrees with the {rec.fs:g} Hz its header gives; leave --fs out, "
            "this input carries its sampling rate"
        )
    return rec


def check_lead(rec: Recording) -> Recording:
    """Refuse a lead that cannot give trustworthy beats, with one line naming the input and the lead."""
    x = rec.signal
    what = f"{rec.where}: lead {rec.lead}"
    if not (np.isfinite(rec.fs) and MIN_SIGNAL_FS <= rec.fs <= MAX_FS):
        raise DataError(
            f"{what}: sampling rate {rec.fs:g} Hz is outside {MIN_SIGNAL_FS:g}..{MAX_FS:g} Hz; the input's "
            "header is damaged, or --fs is wrong"
        )
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(
            f"{what} has {int(bad.sum()):,} missing or non-finite samples (the first at {first / rec.fs:.2f} s); "
            "cut the recording to a stretch without gaps"
        )
    seconds = x.size / rec.fs
    if seconds < MIN_SECONDS:
        raise DataError(
            f"{what} is {seconds:.2f} s long ({x.size} samples at {rec.fs:g} Hz); at least {MIN_SECONDS:g} s "
            "are needed for one beat with its R-R intervals (is --fs right?)"
        )
    if np.ptp(x) == 0:
        raise DataError(f"{what} is flat (every sample is {x[0]:g}); is the electrode connected?")
    baseline = np.median(x)
    rails = [v for v in (x.min(), x.max()) if v != baseline]
    at_rail = np.isin(x, rails)
    if at_rail.mean() > CLIPPED_SHARE:
        raise DataError(
            f"{what} is clipped: {at_rail.mean():.1%} of its samples sit at its extreme "
            f"value{'s' if len(rails) > 1 else ''} {' and '.join(f'{v:g}' for v in rails)}; "
            "the recorder saturated, record again with a lower gain"
        )
    return rec


def check_detected(rec: Recording, peaks: np.ndarray) -> None:
    """Refuse a lead whose detected beats cannot be a heart's: too few, a median R-R no heart has
    (the lead is not an ECG, or ``--fs`` is wrong by a large factor), or beats that do not look alike
    (noise, a signal that is not an ECG)."""
    from heartbeat.signal.patient import centred_windows, remove_baseline
    from heartbeat.signal.segment import TARGET_FS, resample

    what = f"{rec.where}: lead {rec.lead}"
    seconds = rec.signal.size / rec.fs
    if peaks.size < 3:
        raise DataError(
            f"{what}: found {peaks.size} heartbeat(s) in {seconds:.1f} s; it does not look like an ECG "
            "(check --lead and --fs)"
        )
    rr = float(np.median(np.diff(peaks))) / rec.fs
    if not MIN_RR_S <= rr <= MAX_RR_S:
        raise DataError(
            f"{what}: the detected beats come every {rr:.2f} s ({60 / rr:.0f} per minute), which no heart "
            f"does; it is not an ECG, or --fs {rec.fs:g} is wrong"
        )
    x = remove_baseline(resample(rec.signal, rec.fs))
    half = round(0.2 * TARGET_FS)
    W = centred_windows(x, np.rint(peaks * (TARGET_FS / rec.fs)).astype(np.int64), half, half)
    W -= W.mean(axis=1, keepdims=True)
    T = np.median(W, axis=0)
    corr = (W @ T) / (np.linalg.norm(W, axis=1) * np.linalg.norm(T) + 1e-12)
    likeness = float(np.median(corr))
    if likeness < MIN_LIKENESS:
        raise DataError(
            f"{what}: the {peaks.size:,} detected beats do not look alike (median correlation {likeness:.2f} "
            f"with their median, below {MIN_LIKENESS}); it does not look like an ECG, or it is mostly noise"
        )


# ---------------------------------------------------------------- readers


def read_wfdb(base: Path, lead: str | None = None, annotations: bool = True) -> Recording:
    """A WFDB record (``base.hea`` + signal files), at its own rate; its ``.atr`` beats when asked and present."""
    where = str(base)
    if not base.with_name(base.name + ".hea").is_file():
        raise DataError(f"{where}: no WFDB header {base.name}.hea; give the record path without suffix")
    header = wfdb_records.read_header(base, where)
    names = [str(n) for n in (header.sig_name or [])]
    chosen = names[choose_lead(names, lead, where)]
    signal = wfdb_records.read_lead(base, header, chosen, where)
    other = wfdb_records.second_lead(header, chosen)
    # Read when the beats are cut (Recording.second), not beside the detector's copies of the first.
    second = None if other is None else lambda: wfdb_records.read_lead(base, header, other, where)
    ann = None
    if annotations and base.with_name(base.name + ".atr").is_file():
        ann = wfdb_records.read_beat_annotations(base, where, int(header.sig_len))
    return Recording(signal, float(header.fs), chosen, where, ann, list(header.comments or []), second)


def read_edf(path: Path, lead: str | None = None, data: bytes | None = None) -> Recording:
    """An EDF or EDF+ file (continuous only), the chosen signal converted to millivolts; the first
    other voltage signal at the same rate is the second lead (docs/predict.md).

    A file holding fewer (or more) data records than its header declares is refused: it is an
    incomplete copy, and classifying the part that is there would give counts and times that are not
    the recording's. (edfio reads it with a warning; a header count of -1, "still recording", is the
    format's way to say the count is unknown, and is accepted.)
    """
    import edfio

    where = str(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            edf = edfio.read_edf(io.BytesIO(data) if data is not None else path)
            signals = list(edf.signals)
    except Exception as exc:  # edfio raises ValueError/IndexError/UnicodeDecodeError on a bad header
        raise DataError(f"{where}: not a valid EDF file ({first_line(exc, 160)})") from None
    for warning in caught:
        _edf_warning(str(warning.message), where)
    if not edf.is_continuous:
        raise DataError(f"{where}: an EDF+D file (with gaps); export a continuous EDF or EDF+C instead")
    if not signals:
        raise DataError(f"{where}: the EDF file holds no signals")
    chosen = signals[choose_lead([s.label for s in signals], lead, where)]
    values = _edf_millivolts(chosen, where)
    others = [
        s
        for s in signals
        if s is not chosen
        and s.sampling_frequency == chosen.sampling_frequency
        and s.physical_dimension.strip().lower() in UNITS_TO_MV
    ]
    # The second lead's 16-bit samples are read now (so the file's map is let go) and decoded to
    # millivolts, as the first, only when the beats are cut (Recording.second).
    other = others[0] if others and others[0].digital.size == values.size else None
    second = None if other is None else lambda: _edf_millivolts(other, where)
    return Recording(values, float(chosen.sampling_frequency), chosen.label or "0", where, second=second)


_EDF_COUNT = re.compile(r"header indicates (-?\d+) data records, but file contains (\d+) records")


def _edf_warning(message: str, where: str) -> None:
    """edfio's warnings about the file, as our one line: a truncated file is an error, the rest a log line."""
    count = _EDF_COUNT.search(message)
    if count is not None and int(count[1]) == -1:
        return
    if count is not None or "Incomplete data record" in message:
        said = (
            f"its header declares {int(count[1]):,} data records but the file holds {int(count[2]):,}"
            if count
            else ("its last data record is incomplete")
        )
        raise DataError(
            f"{where}: the EDF file is truncated or damaged: {said}; copy or export it again (classifying "
            "the part that is there would give beat counts and times that are not the recording's)"
        )
    log.warning("%s: %s", where, first_line(message, 200))


def _edf_millivolts(signal, where: str) -> np.ndarray:
    """One EDF signal in millivolts; a rate of 0 (0 samples per data record) or a unit that is not a
    voltage is refused."""
    unit = signal.physical_dimension.strip().lower()
    if unit not in UNITS_TO_MV:
        raise DataError(
            f"{where}: signal {signal.label}: unit {signal.physical_dimension!r} is not a voltage"
        )
    fs = float(signal.sampling_frequency)
    if not np.isfinite(fs) or fs <= 0:
        raise DataError(
            f"{where}: signal {signal.label}: {fs:g} samples per second (its header gives 0 samples per data "
            "record); the file is damaged, or pick another signal with --lead"
        )
    # edfio's own calibration, EDF_BLOCK samples at a time into one array, then scaled in place: the
    # same bits as ``signal.data * scale``, without its two whole-lead float64 temporaries.
    n = signal.digital.size
    values = np.empty(n, dtype=np.float64)
    for lo in range(0, n, EDF_BLOCK):
        hi = min(lo + EDF_BLOCK, n)
        values[lo:hi] = signal.get_data_slice(lo / fs, hi / fs)  # edfio rounds seconds x rate back to lo, hi
    values *= UNITS_TO_MV[unit]
    return values


EDF_BLOCK = 1 << 20
"""Samples of an EDF signal decoded to physical units at a time (:func:`_edf_millivolts`)."""

TABLE_CHUNK_ROWS = 1 << 20
"""Rows parsed at a time: a chunk's cells never exist as Python strings, so a 24-hour table costs its
float32 columns plus one chunk, not every cell as a string (about 12x the file)."""


def read_table(
    path: str | Path, fs: float | None, lead: str | None = None, data: bytes | None = None
) -> Recording:
    """A CSV or TSV of samples, one column per lead, with or without a header row; ``fs`` is required.

    The separator and header come from the first line that is not blank; only the chosen lead and
    the next one are parsed, as float32 numbers, chunk by chunk (pandas' C parser). A cell that is
    not a number is found in a second pass, which names its row.
    """
    path = Path(path)
    where = str(path)
    rate = check_fs_arg(fs, where)
    first = _first_line(path, data, where)
    if first is None:
        raise empty_file(where, "rows of samples, one column per lead")
    sep = "\t" if "\t" in first else ";" if ";" in first and "," not in first else ","
    cells = first.split(sep)
    has_header = any(not _is_number(cell) for cell in cells if cell.strip())
    names = [c.strip() for c in cells] if has_header else [str(i) for i in range(len(cells))]
    column = choose_lead(names, lead, where)
    others = [i for i in range(len(names)) if i != column]
    wanted = [column, *others[:1]]
    values = _parse_columns(path, data, sep, has_header, wanted, names, where)
    if values[0].size == 0:
        raise DataError(f"{where}: the table has no rows of samples")
    second = values[1] if len(values) > 1 else None  # float32 until the beats are cut (Recording.second)
    return Recording(values[0].astype(np.float64), rate, names[column], where, second=second)


def _source(path: Path, data: bytes | None) -> io.BytesIO | Path:
    return io.BytesIO(data) if data is not None else path


def _first_line(path: Path, data: bytes | None, where: str) -> str | None:
    """The first line that is not blank (a byte-order mark dropped), read line by line, past any number
    of blank lines (pandas skips them too)."""
    with input_file(where, "a CSV or TSV of samples"):
        fh = io.BytesIO(data) if data is not None else open(path, "rb")
    with fh:
        for raw in fh:
            line = raw.decode("utf-8", errors="replace").lstrip("\ufeff").strip("\r\n")
            if line.strip():
                return line
    return None


def _parse_columns(
    path: Path,
    data: bytes | None,
    sep: str,
    has_header: bool,
    wanted: list[int],
    names: list[str],
    where: str,
) -> list[np.ndarray]:
    """Columns ``wanted`` (in that order) as float32 arrays, parsed chunk by chunk."""
    import pandas as pd

    options = {"sep": sep, "header": 0 if has_header else None, "usecols": wanted, "encoding": "utf-8-sig"}
    at = [sorted(wanted).index(col) for col in wanted]  # usecols keeps the file's column order
    parts: list[list[np.ndarray]] = [[] for _ in wanted]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # 1e39 overflows float32 to inf: refused later
            reader = pd.read_csv(
                _source(path, data),
                dtype=np.float32,
                skipinitialspace=True,
                chunksize=TABLE_CHUNK_ROWS,
                **options,
            )
            with reader:
                for chunk in reader:
                    block = chunk.to_numpy(np.float32)
                    for i, position in enumerate(at):
                        parts[i].append(np.ascontiguousarray(block[:, position]))
                    del block, chunk
    except ValueError as exc:
        _name_the_cell(path, data, options, at, [names[c] for c in wanted], has_header, where)
        raise DataError(
            f"{where}: not a readable CSV/TSV table of numbers ({first_line(exc, 160)})"
        ) from None
    except Exception as exc:
        raise DataError(f"{where}: not a readable CSV/TSV table ({first_line(exc, 160)})") from None
    columns = []
    for i in range(len(wanted)):
        joined = np.concatenate(parts[i]) if parts[i] else np.empty(0, np.float32)
        parts[i] = []
        columns.append(joined)
    return columns


def _name_the_cell(
    path: Path,
    data: bytes | None,
    options: dict,
    at: list[int],
    labels: list[str],
    has_header: bool,
    where: str,
) -> None:
    """After a parse error, find the first cell that is not a number and raise its one line (row and
    column): a second pass, chunk by chunk, as text."""
    import pandas as pd

    try:
        reader = pd.read_csv(_source(path, data), dtype=str, chunksize=TABLE_CHUNK_ROWS, **options)
        offset = 0
        with reader:
            for chunk in reader:
                for position, label in zip(at, labels, strict=True):
                    cells = chunk.iloc[:, position]
                    stripped = cells.str.strip()
                    values = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64)
                    text = (
                        np.isnan(values)
                        & cells.notna().to_numpy()
                        & (stripped.str.lower() != "nan").to_numpy()
                    )
                    if text.any():
                        row = int(np.argmax(text))
                        raise DataError(
                            f"{where}: row {offset + row + 1 + int(has_header)}, column {label}: "
                            f"{cells.iloc[row]!r} is not a number"
                        )
                offset += len(chunk)
    except DataError:
        raise
    except Exception:
        return


def signal_array(x: np.ndarray, fs: float | None, where: str | Path) -> Recording:
    """A 1-D array of samples (one lead, loaded from a ``.npy``); ``fs`` is required."""
    where = str(where)
    rate = check_fs_arg(fs, where)
    if x.ndim != 1:
        raise DataError(f"{where}: expected a 1-D array of samples (one lead) with --fs, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{where}: the array has dtype {x.dtype}, expected numbers")
    return Recording(x.astype(np.float64), rate, "0", where)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
