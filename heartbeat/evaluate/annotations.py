"""Reading beat annotations to score (``heartbeat score``): a WFDB annotation file, a CSV/TSV of
times and labels, or ``heartbeat predict``'s output (CSV or JSON).

Every reader returns :class:`BeatList`: beat times and AAMI labels 0..4 (N S V F Q). WFDB beat
symbols map as the training data does (heartbeat/signal/wfdb_records.py), plus the three beat codes
that ``bxb`` counts and MIT-BIH never uses: B (bundle branch block) as N, r (R-on-T) as V, n
(supraventricular escape) as S. Non-beat annotations (rhythm, noise, comments) are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heartbeat.core.errors import DataError, first_line
from heartbeat.signal.wfdb_records import SYMBOL_TO_AAMI

SCORED_SYMBOLS: dict[str, int] = {**SYMBOL_TO_AAMI, "B": 0, "n": 1, "r": 2}
"""WFDB beat symbols (and the AAMI class letters, which are beat symbols too) to classes 0..4."""

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
TIME_COLUMNS = ("time_s", "time")
REFERENCE_LABELS = ("label", "symbol", "class", "predicted")
TEST_LABELS = ("predicted", "label", "symbol", "class")
MAX_BEATS = 50_000_000
"""More beats than a month-long recording has: a file claiming more is refused before parsing."""


@dataclass(frozen=True)
class BeatList:
    """Beats of one record: times (``samples`` at ``fs`` and/or ``seconds``) and AAMI labels."""

    labels: np.ndarray
    samples: np.ndarray | None
    seconds: np.ndarray | None
    fs: float | None
    where: str

    def ticks(self, rate: float) -> np.ndarray:
        """Beat times as integer samples at ``rate`` Hz."""
        if self.samples is not None and self.fs is not None and self.fs == rate:
            return self.samples
        if self.samples is not None and self.seconds is not None and _consistent(self, rate):
            return self.samples  # predict's CSV: samples at the record's rate, times rounded to 1 ms
        if self.seconds is not None:
            return np.round(self.seconds * rate).astype(np.int64)
        if self.samples is not None and self.fs is not None:
            return np.round(self.samples * (rate / self.fs)).astype(np.int64)
        raise DataError(
            f"{self.where}: gives beat samples without a sampling rate; add a time_s column, or score "
            "it against a WFDB reference whose header gives the rate"
        )


def _consistent(beats: BeatList, rate: float) -> bool:
    return bool(np.all(np.abs(beats.samples / rate - beats.seconds) <= 0.0005 + 1e-9))


def read_beats(path: Path, role: str) -> BeatList:
    """The beats of one annotation file; ``role`` (reference or test) picks the label column of a
    table that has several (a reference's ``label`` before a test's ``predicted``)."""
    where = str(path)
    if not path.is_file():
        raise DataError(f"{where}: is not a file (the {role} annotations)")
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return _read_table(path, TABLE_SUFFIXES[suffix], role, where)
    if suffix == ".json":
        return _read_json(path, where)
    return read_wfdb_annotations(path, where)


def read_wfdb_annotations(path: Path, where: str) -> BeatList:
    """A WFDB annotation file ``record.ext``; its rate comes from the file or the record's header."""
    import wfdb

    if not path.suffix or not path.suffix[1:].replace("_", "").isalnum():
        raise DataError(f"{where}: is not named as a WFDB annotation file (record.annotator, e.g. 101.atr)")
    try:
        ann = wfdb.rdann(str(path.with_suffix("")), path.suffix[1:])
    except Exception as exc:  # wfdb raises anything on a damaged file
        raise DataError(f"{where}: is not a readable WFDB annotation file ({first_line(exc, 160)})") from None
    symbols = np.asarray(ann.symbol, dtype=object)
    labels = np.fromiter((SCORED_SYMBOLS.get(s, -1) for s in symbols), dtype=np.int64, count=len(symbols))
    beat = labels >= 0
    fs = float(ann.fs) if ann.fs else _header_rate(path)
    samples = np.asarray(ann.sample, dtype=np.int64)[beat]
    if samples.size and samples.min() < 0:
        raise DataError(
            f"{where}: has a beat at a negative sample ({int(samples.min())}); the file is damaged"
        )
    return BeatList(labels[beat], samples, None, fs, where)


def _header_rate(path: Path) -> float | None:
    header = path.with_suffix(".hea")
    if not header.is_file():
        return None
    import wfdb

    try:
        fs = wfdb.rdheader(str(header.with_suffix(""))).fs
    except Exception:  # a damaged header only costs the rate: the caller says what is missing
        return None
    return float(fs) if fs and np.isfinite(fs) and fs > 0 else None


def _read_table(path: Path, sep: str, role: str, where: str) -> BeatList:
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, nrows=MAX_BEATS + 1)
    except Exception as exc:
        raise DataError(f"{where}: is not a readable table ({first_line(exc, 160)})") from None
    if len(frame) > MAX_BEATS:
        raise DataError(f"{where}: has more than {MAX_BEATS:,} rows; split it by record")
    columns = {str(c).strip().lower(): c for c in frame.columns}
    label_col = next(
        (columns[c] for c in (REFERENCE_LABELS if role == "reference" else TEST_LABELS) if c in columns), None
    )
    time_col = next((columns[c] for c in TIME_COLUMNS if c in columns), None)
    sample_col = columns.get("sample")
    if label_col is None or (time_col is None and sample_col is None):
        raise DataError(
            f"{where}: needs a header row with a time_s (seconds) or sample column and a label column "
            f"({', '.join(REFERENCE_LABELS if role == 'reference' else TEST_LABELS)}); it has "
            f"{', '.join(map(str, frame.columns[:8])) or 'none'}"
        )
    labels = _labels(frame[label_col].tolist(), where, row_offset=2)
    keep = labels >= 0
    seconds = _numbers(frame[time_col], where, time_col) if time_col is not None else None
    samples = _numbers(frame[sample_col], where, sample_col, integer=True) if sample_col is not None else None
    return BeatList(
        labels[keep],
        samples[keep] if samples is not None else None,
        seconds[keep] if seconds is not None else None,
        None,
        where,
    )


def _read_json(path: Path, where: str) -> BeatList:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise DataError(f"{where}: is not readable JSON ({first_line(exc, 160)})") from None
    beats = data.get("beats") if isinstance(data, dict) else None
    if not isinstance(beats, list) or not all(isinstance(b, dict) for b in beats):
        raise DataError(f"{where}: is not `heartbeat predict --format json` output (no list of beats)")
    if beats and not all("predicted" in b and ("sample" in b or "time_s" in b) for b in beats):
        raise DataError(
            f"{where}: its beats have no time (sample or time_s) or no predicted class; score needs the "
            "predictions of a recording, not of cut beats"
        )
    source = data.get("input") if isinstance(data.get("input"), dict) else {}
    fs = source.get("fs")
    fs = float(fs) if isinstance(fs, int | float) and np.isfinite(fs) and fs > 0 else None
    labels = _labels([b["predicted"] for b in beats], where, row_offset=0, what="beat")
    samples = _array([b.get("sample") for b in beats], where, "sample", integer=True)
    seconds = _array([b.get("time_s") for b in beats], where, "time_s")
    return BeatList(labels, samples, seconds, fs if samples is not None else None, where)


def _array(values: list, where: str, key: str, integer: bool = False) -> np.ndarray | None:
    if any(v is None for v in values):
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in values):
        raise DataError(f"{where}: a beat's {key} is not a number")
    return np.asarray(values, dtype=np.int64 if integer else np.float64)


def _numbers(column, where: str, name: str, integer: bool = False) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(column.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0)
    if integer:
        bad |= values != np.round(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{where}: row {row + 2}, column {name}: {column.iloc[row]!r} is not a "
            f"{'sample number' if integer else 'time in seconds'}"
        )
    return values.astype(np.int64) if integer else values


def _labels(values: list, where: str, row_offset: int, what: str = "row") -> np.ndarray:
    """AAMI labels of beat symbols or class letters; -1 for WFDB's non-beat symbols; else an error."""
    from wfdb.io.annotation import ann_label_table

    non_beats = set(ann_label_table["symbol"]) - set(SCORED_SYMBOLS)
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        text = str(value).strip()
        label = SCORED_SYMBOLS.get(text)
        if label is None:
            if text not in non_beats:
                raise DataError(
                    f"{where}: {what} {i + row_offset}: label {text[:40]!r} is neither an AAMI class "
                    "(N S V F Q) nor a WFDB annotation symbol"
                )
            label = -1
        out[i] = label
    return out
