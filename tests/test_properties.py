"""Property-based tests (hypothesis) for the three places that take arbitrary input apart.

* the CSV validator: any bytes give either valid ``Beats`` or a :class:`DataError`, never
  another exception, and it accepts exactly the files the documented format allows;
* the beat segmenter (heartbeat/signal/segment.py): random signals, peaks and periods give beats
  of the documented shape and range, or a :class:`DataError`;
* the splitter, through ``prepare()``: splits never overlap and cover every row.

Example counts are modest and there is no deadline, so the suite stays fast on 2 cores.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.beatcsv import RANGE_TOLERANCE, Beats, format_beats_csv, read_beats_csv
from heartbeat.core.config import AugmentConfig, PatientSplitConfig, PreprocessConfig
from heartbeat.core.errors import DataError
from heartbeat.prepare.preprocess import prepare
from heartbeat.signal import checks
from heartbeat.signal import segment as sg
from tests.conftest import examples

MIT = (0, 1, 2, 3, 4)
SETTINGS = settings(max_examples=examples(60))  # deadline and health checks: the profile (conftest.py)


# ---------------------------------------------------------------- the CSV validator


def _read(
    data: bytes, allowed: tuple[int, ...] | None = MIT, labelled: bool | None = True, engine: str = "auto"
) -> Beats:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "beats.csv"
        path.write_bytes(data)
        return read_beats_csv(path, allowed, labelled, engine=engine)


def _check_beats(beats: Beats, allowed: tuple[int, ...] | None, labelled: bool | None) -> None:
    assert beats.X.ndim == 2 and beats.X.shape[1] == BEAT_LENGTH and beats.X.dtype == np.float32
    assert len(beats) >= 1
    assert np.isfinite(beats.X).all()
    assert beats.X.min() >= -RANGE_TOLERANCE and beats.X.max() <= 1 + RANGE_TOLERANCE
    if labelled is True:
        assert beats.y is not None
    if labelled is False:
        assert beats.y is None
    if beats.y is not None:
        assert beats.y.shape == (len(beats),) and beats.y.dtype == np.int64
        if allowed is not None:
            assert set(beats.y.tolist()) <= set(allowed)


def _read_or_data_error(
    data: bytes, allowed=MIT, labelled: bool | None = True, engine: str = "auto"
) -> Beats | None:
    try:
        beats = _read(data, allowed, labelled, engine)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)  # one line, for the stage's one-line error
        event("DataError")
        return None
    event("valid beats")
    _check_beats(beats, allowed, labelled)
    return beats


@SETTINGS
@given(data=st.binary(max_size=4000), labelled=st.sampled_from([True, False, None]))
def test_random_bytes_give_beats_or_data_error(data: bytes, labelled: bool | None) -> None:
    _read_or_data_error(data, MIT, labelled)


CSV_ALPHABET = "0123456789.,,,,,-+eE\n\r\t ;\"'naifNAIF<>x\x00\u00e9\ufeff"


@SETTINGS
@given(text=st.text(alphabet=CSV_ALPHABET, max_size=3000))
def test_random_csv_like_text_gives_beats_or_data_error(text: str) -> None:
    _read_or_data_error(text.encode("utf-8"))


GOOD_VALUE = st.floats(0, 1, width=32)
# How writers format a number: the Kaggle %.18e, shortest repr, %g, padded, with a sign.
FORMATS = (
    lambda v: f"{v:.18e}",
    repr,
    lambda v: f"{v:g}",
    lambda v: f" {v} ",
    lambda v: f"+{v}",
)
BAD_CELL = st.one_of(
    st.sampled_from(["", " ", "nan", "NaN", "-inf", "inf", "Infinity", "NA", "null", "abc", "True", "0,5"]),
    # Words and spellings that pandas reads as booleans or Python's float() as numbers.
    st.sampled_from(["True", "False", "true", "FALSE", "yes", "0_1", "1_0", "\u0661", "0x1", "1d0"]),
    st.sampled_from(["1.5", "-0.1", "2", "1e39", "-1e39", "0.5.5", "--1", "1e", "\x00", "0.5\u00e9", '"0.5'])
    | st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not 0 <= v <= 1).map(repr),
)


def _cell_is_valid(cell: str, is_label: bool) -> bool:
    """The documented format, written independently of the reader: ASCII digits, a sign, a point and
    an exponent, with spaces around; what Python's float() makes of it, rounded to float32."""
    if not set(cell.strip(" \t")) <= set("0123456789+-.eE"):
        return False
    try:
        with np.errstate(over="ignore"):
            value = float(np.float32(float(cell)))  # the reader keeps float32, as the Kaggle set needs
    except (ValueError, OverflowError):
        return False
    if not math.isfinite(value):
        return False
    if is_label:
        return value in MIT
    return -RANGE_TOLERANCE <= value <= 1 + RANGE_TOLERANCE


@st.composite
def beat_files(draw: st.DrawFn) -> tuple[bytes, bool, list[list[str]]]:
    """A file of 1..5 rows, most of them valid, with now and then one bad cell, row width or line."""
    n_rows = draw(st.integers(1, 5))
    rows = []
    for _ in range(n_rows):
        values = draw(hnp.arrays(np.float32, BEAT_LENGTH, elements=GOOD_VALUE))
        fmt = draw(st.sampled_from(FORMATS))
        cells = [fmt(float(v)) for v in values]
        cells.append(draw(st.sampled_from(["0", "1", "2", "3", "4", "0.0", "4.000000000000000000e+00"])))
        rows.append(cells)
    kind = draw(st.sampled_from(["valid", "valid", "bad cell", "bad label", "width", "header"]))
    r = draw(st.integers(0, n_rows - 1))
    if kind == "bad cell":
        rows[r][draw(st.integers(0, BEAT_LENGTH - 1))] = draw(BAD_CELL)
    elif kind == "bad label":
        rows[r][-1] = draw(st.sampled_from(["5", "-1", "2.5", "nan", "", "x", "1e30"]))
    elif kind == "width":
        rows[r] = rows[r][: draw(st.integers(1, BEAT_LENGTH))] if draw(st.booleans()) else [*rows[r], "0.5"]
    elif kind == "header":
        rows.insert(0, [f"c{i}" for i in range(BEAT_LENGTH + 1)])
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(",".join(row) for row in rows) + (newline if draw(st.booleans()) else "")
    return text.encode("utf-8"), kind.startswith("valid"), rows


def _one_row(cell: str) -> tuple[bytes, bool, list[list[str]]]:
    """A file of one row whose fourth sample is ``cell``: the whole column is that cell."""
    row = ["0.5"] * BEAT_LENGTH + ["1"]
    row[3] = cell
    return (",".join(row) + "\n").encode(), False, [row]


@SETTINGS
@given(sample=beat_files(), engine=st.sampled_from(["auto", "pandas"]))
# A column that is all True: pandas reads it as booleans, then 1.0. Drawn only now and then, so
# tried every run.
@example(sample=_one_row("True"), engine="auto")
@example(sample=_one_row("False"), engine="pandas")
def test_validator_accepts_exactly_the_documented_format(
    sample: tuple[bytes, bool, list[list[str]]], engine: str
) -> None:
    """Both readers: the pyarrow path, with pandas behind it, and the pandas path alone."""
    data, _, rows = sample
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    valid = all(
        len(row) == BEAT_LENGTH + 1 and all(_cell_is_valid(c, i == BEAT_LENGTH) for i, c in enumerate(row))
        for row in parsed
        if row
    )
    beats = _read_or_data_error(data, engine=engine)
    assert (beats is not None) == valid, (valid, data[:200])
    if beats is not None:
        expected = np.array([[float(c) for c in row[:BEAT_LENGTH]] for row in rows], dtype=np.float32)
        np.testing.assert_array_equal(beats.X, expected)
        assert beats.y.tolist() == [int(float(row[-1])) for row in rows]


@SETTINGS
@given(
    X=hnp.arrays(np.float32, st.tuples(st.integers(1, 20), st.just(BEAT_LENGTH)), elements=GOOD_VALUE),
    labels=st.data(),
    crlf=st.booleans(),
)
def test_written_beats_read_back_identically(X: np.ndarray, labels: st.DataObject, crlf: bool) -> None:
    y = np.array(labels.draw(st.lists(st.sampled_from(MIT), min_size=len(X), max_size=len(X))))
    text = format_beats_csv(X, y)
    beats = _read((text.replace("\n", "\r\n") if crlf else text).encode())
    np.testing.assert_array_equal(beats.X, X)
    np.testing.assert_array_equal(beats.y, y)


# ---------------------------------------------------------------- the beat segmenter


@st.composite
def signals(draw: st.DrawFn) -> np.ndarray:
    """A lead of 1..2500 samples, flat stretches included; one time in ten a NaN or inf somewhere."""
    x = draw(hnp.arrays(np.float64, st.integers(1, 2500), elements=st.floats(-10, 10) | st.just(0.0)))
    if draw(st.integers(0, 9)) == 0:
        x[draw(st.integers(0, x.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return x


SIGNAL = signals()
FS = st.one_of(
    st.sampled_from([125.0, 250.0, 360.0, 500.0, 1000.0]), st.floats(-100, 2e5) | st.just(float("nan"))
)


@SETTINGS
@given(signal=SIGNAL, fs=FS, window_s=st.floats(0.01, 30))
def test_resample_and_normalise_give_unit_range_or_data_error(
    signal: np.ndarray, fs: float, window_s: float
) -> None:
    try:
        x = sg.resample(signal, fs)
        norm = sg.normalise_windows(x, sg.TARGET_FS, window_s)
    except DataError:
        assert not np.isfinite(signal).all() or not (checks.MIN_FS <= fs <= checks.MAX_FS)
        return
    assert np.isfinite(signal).all()
    assert x.ndim == 1 and x.size >= 1 and np.isfinite(x).all()
    assert norm.shape == x.shape and (norm >= 0).all() and (norm <= 1).all()


@SETTINGS
@given(
    n=st.integers(1, 3000),
    peaks=st.lists(st.integers(-5, 3100), max_size=30),
    sort=st.booleans(),
    window_s=st.floats(0.5, 20),
)
def test_nominal_periods_are_positive_per_peak_or_data_error(
    n: int, peaks: list[int], sort: bool, window_s: float
) -> None:
    p = np.asarray(sorted(peaks) if sort else peaks, dtype=np.int64)
    try:
        T = sg.nominal_periods(p, n, sg.TARGET_FS, window_s)
    except DataError:
        assert p.size and (p.min() < 0 or p.max() >= n or (np.diff(p) < 0).any())
        return
    assert T.shape == p.shape and np.isfinite(T).all() and (T > 0).all()


@st.composite
def peaks_and_periods(draw: st.DrawFn, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted R-peaks mostly inside a signal of ``n`` samples (now and then one outside), one period each."""
    peaks = draw(st.lists(st.integers(0, n - 1), max_size=25))
    if draw(st.integers(0, 9)) == 0:
        peaks.append(draw(st.sampled_from([-1, n, n + 100])))
    periods = draw(st.lists(st.floats(1, 300), min_size=len(peaks), max_size=len(peaks)))
    if periods and draw(st.integers(0, 9)) == 0:
        periods[draw(st.integers(0, len(periods) - 1))] = draw(st.sampled_from([np.nan, np.inf, -5.0, 0.0]))
    return np.asarray(sorted(peaks), dtype=np.int64), np.asarray(periods, dtype=np.float64)


@SETTINGS
@given(
    signal=SIGNAL,
    data=st.data(),
    factor=st.floats(0.1, 3),
    scaling=st.sampled_from(["beat", "beat", "window", "window", "other"]),
)
def test_segment_beats_shape_range_and_padding(
    signal: np.ndarray, data: st.DataObject, factor: float, scaling: str
) -> None:
    p, T = data.draw(peaks_and_periods(signal.size))
    try:
        X, kept = sg.segment_beats(signal, p, T, factor=factor, scaling=scaling)  # type: ignore[arg-type]
    except DataError:
        bad_peaks = p.size and (p.min() < 0 or p.max() >= signal.size)
        assert bad_peaks or not np.isfinite(signal).all() or not np.isfinite(T).all() or scaling == "other"
        event("DataError")
        return
    event(f"{int(kept.sum())} beats" if kept.sum() < 3 else "3+ beats")
    assert kept.shape == p.shape and kept.dtype == bool
    assert X.shape == (int(kept.sum()), BEAT_LENGTH) and X.dtype == np.float32
    assert np.isfinite(X).all() and (X >= 0).all() and (X <= 1).all()
    seg_len = np.maximum(np.rint(factor * T[kept]).astype(np.int64), 1)
    assert (p[kept] + seg_len <= signal.size).all()  # no beat runs off the end of the signal
    for row, length in zip(X, seg_len, strict=True):
        assert not row[length:].any()  # zero padding after 1.2·T samples


@settings(max_examples=examples(30))
@given(
    rate_bpm=st.floats(40, 180),
    fs=st.sampled_from([125.0, 360.0, 500.0, 1000.0]),
    seconds=st.floats(3, 40),
    noise=st.floats(0, 0.05),
    seed=st.integers(0, 2**16),
    annotated=st.booleans(),
)
def test_extract_beats_on_synthetic_ecg(
    rate_bpm: float, fs: float, seconds: float, noise: float, seed: int, annotated: bool
) -> None:
    """A spiky synthetic lead: beats come out one per usable R-peak, in range, traceable to their peak."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    r_peaks = np.arange(int(0.3 * fs), n, int(60 / rate_bpm * fs))
    signal = rng.normal(0, noise, n)
    for r in r_peaks:
        lo, hi = max(r - int(0.02 * fs), 0), min(r + int(0.02 * fs), n)
        signal[lo:hi] += np.hanning(hi - lo) * 1.0
    assume(r_peaks.size >= 1)
    seg = sg.extract_beats(signal, fs, r_peaks if annotated else None)
    assert seg.X.shape == (seg.index.size, BEAT_LENGTH)
    assert np.isfinite(seg.X).all() and (seg.X >= 0).all() and (seg.X <= 1).all()
    assert seg.periods.shape == seg.index.shape and (seg.periods > 0).all()
    assert (np.diff(seg.index) > 0).all() and (seg.index < seg.peaks.size).all()
    if annotated:
        np.testing.assert_array_equal(seg.peaks, r_peaks)
        assert (
            seg.X.shape[0] >= r_peaks.size - 3
        )  # only edge beats (no next R-R, running off the end) dropped
        np.testing.assert_allclose(seg.periods, 60 / rate_bpm, rtol=0.05)


# ---------------------------------------------------------------- the splitter, through prepare()


def _raw_from_counts(
    counts: dict[str, list[int]], seed: int
) -> tuple[dict[str, Beats], dict[bytes, tuple[str, int]]]:
    """Random beats (every row unique) with the given class counts per file, and row -> (file, label)."""
    rng = np.random.default_rng(seed)
    raw, where = {}, {}
    for name, per_class in counts.items():
        y = np.repeat(np.arange(len(per_class)), per_class).astype(np.int64)
        if name == "ptbdb_abnormal.csv":
            y = np.ones(sum(per_class), dtype=np.int64)
        X = rng.random((len(y), BEAT_LENGTH), dtype=np.float32)
        raw[name] = Beats(X=X, y=y)
        for row, label in zip(X, y, strict=True):
            where[row.tobytes()] = (name, int(label))
    return raw, where


def _rows(split) -> list[bytes]:
    return [row.tobytes() for row in split.X]


CLASS_COUNTS = st.lists(st.integers(0, 40), min_size=5, max_size=5)


@SETTINGS
@given(
    train=CLASS_COUNTS,
    test=CLASS_COUNTS,
    normal=st.integers(0, 60),
    abnormal=st.integers(0, 60),
    val_fraction=st.floats(0.05, 0.45),
    ptb_test_fraction=st.floats(0.05, 0.45),
    seed=st.integers(0, 2**32 - 1),
    rebalance=st.sampled_from(["none", "oversample"]),
    copies=st.integers(0, 2),
)
def test_prepare_beat_splits_never_overlap_and_cover_every_row(
    train, test, normal, abnormal, val_fraction, ptb_test_fraction, seed, rebalance, copies
) -> None:
    counts = {
        "mitbih_train.csv": train,
        "mitbih_test.csv": test,
        "ptbdb_normal.csv": [normal],
        "ptbdb_abnormal.csv": [abnormal],
    }
    raw, where = _raw_from_counts(counts, seed % 1000)
    cfg = PreprocessConfig(
        seed=seed,
        val_fraction=val_fraction,
        ptb_test_fraction=ptb_test_fraction,
        rebalance=rebalance,
        augment=AugmentConfig(copies=copies),
    )
    try:
        prepared = prepare(raw, cfg)
    except DataError:
        event("too few rows to split")
        return  # a documented outcome
    event("split")
    mit, ptb = prepared.mitbih, prepared.ptb
    # Labels travel with their rows; every split row comes from the right file.
    for splits in (mit, ptb):
        for name, split in splits.items():
            assert len(split.X) == len(split.y)
            for row, label in zip(_rows(split), split.y, strict=True):
                if row in where:
                    assert where[row][1] == label, name
    # MIT-BIH: test is the test file, untouched; train (its real rows) and val split the train file.
    assert _rows(mit["test"]) == _rows(Beats(raw["mitbih_test.csv"].X, None))
    real_train = {r for r in _rows(mit["train"]) if r in where}
    val = _rows(mit["val"])
    assert len(set(val)) == len(val) and all(where[r][0] == "mitbih_train.csv" for r in val)
    assert real_train.isdisjoint(val)
    assert real_train | set(val) == {r for r, (f, _) in where.items() if f == "mitbih_train.csv"}
    if rebalance == "none" and copies == 0:
        assert len(mit["train"].y) + len(val) == sum(train)
    else:  # only train grows (oversampled or augmented rows); val and test keep the real distribution
        assert len(mit["train"].y) >= len(real_train)
    # PTB: train, val and test are disjoint and together are exactly the two PTB files.
    parts = {name: _rows(split) for name, split in ptb.items()}
    assert sum(len(v) for v in parts.values()) == normal + abnormal
    union = set().union(*parts.values())
    assert len(union) == normal + abnormal
    assert union == {r for r, (f, _) in where.items() if f.startswith("ptbdb")}


@settings(max_examples=examples(40))
@given(
    records=st.lists(st.integers(0, 11), min_size=4, max_size=160),
    patients=st.lists(st.integers(0, 9), min_size=4, max_size=120),
    labels=st.data(),
    seed=st.integers(0, 10_000),
)
def test_prepare_patient_split_keeps_every_record_and_patient_on_one_side(
    records, patients, labels, seed
) -> None:
    """With provenance, no record (MIT-BIH) or patient (PTB) is on two sides, and no row is lost."""
    rng = np.random.default_rng(seed)
    n_mit = len(records)
    y_mit = np.asarray(labels.draw(st.lists(st.integers(0, 4), min_size=n_mit, max_size=n_mit)))
    half = n_mit // 2
    y_ptb = np.asarray(
        labels.draw(st.lists(st.integers(0, 1), min_size=len(patients), max_size=len(patients)))
    )
    raw = {
        "mitbih_train.csv": Beats(rng.random((half, BEAT_LENGTH), dtype=np.float32), y_mit[:half]),
        "mitbih_test.csv": Beats(rng.random((n_mit - half, BEAT_LENGTH), dtype=np.float32), y_mit[half:]),
        "ptbdb_normal.csv": Beats(
            rng.random(((y_ptb == 0).sum(), BEAT_LENGTH), dtype=np.float32), y_ptb[y_ptb == 0]
        ),
        "ptbdb_abnormal.csv": Beats(
            rng.random(((y_ptb == 1).sum(), BEAT_LENGTH), dtype=np.float32), y_ptb[y_ptb == 1]
        ),
    }
    rec_names = [f"r{r}" for r in records]
    pat_by_file = {"ptbdb_normal.csv": [], "ptbdb_abnormal.csv": []}
    for p, label in zip(patients, y_ptb, strict=True):
        pat_by_file["ptbdb_abnormal.csv" if label else "ptbdb_normal.csv"].append(f"p{p}")
    prov = pd.DataFrame(
        [{"file": "mitbih_train.csv", "row": i, "record": rec_names[i], "patient": ""} for i in range(half)]
        + [
            {"file": "mitbih_test.csv", "row": i, "record": rec_names[half + i], "patient": ""}
            for i in range(n_mit - half)
        ]
        + [
            {"file": f, "row": i, "record": "", "patient": p}
            for f, names in pat_by_file.items()
            for i, p in enumerate(names)
        ]
    )
    train_records = [f"r{r}" for r in range(0, 12, 2)]
    test_records = [f"r{r}" for r in range(1, 12, 2) if r != 11]  # r11: excluded (a "paced" record)
    cfg = PreprocessConfig(
        seed=seed,
        split="patient",
        patient=PatientSplitConfig(
            mitbih_train_records=train_records, mitbih_test_records=test_records, exclude_records=["r11"]
        ),
    )
    try:
        prepared = prepare(raw, cfg, prov)
    except DataError:
        event("too few records or patients")
        return
    event("split")
    X_all = np.concatenate([raw["mitbih_train.csv"].X, raw["mitbih_test.csv"].X])
    record_of = {row.tobytes(): name for row, name in zip(X_all, rec_names, strict=True)}
    sides = {name: {record_of[r.tobytes()] for r in split.X} for name, split in prepared.mitbih.items()}
    assert sides["train"].isdisjoint(sides["val"]) and sides["train"].isdisjoint(sides["test"])
    assert sides["val"].isdisjoint(sides["test"])
    assert sides["test"] <= set(test_records) and (sides["train"] | sides["val"]) <= set(train_records)
    kept = sum(len(s.y) for s in prepared.mitbih.values())
    assert kept == sum(1 for r in rec_names if r != "r11")  # every row of a listed record, none of r11
    X_ptb = np.concatenate([raw["ptbdb_normal.csv"].X, raw["ptbdb_abnormal.csv"].X])
    pats = pat_by_file["ptbdb_normal.csv"] + pat_by_file["ptbdb_abnormal.csv"]
    patient_of = {row.tobytes(): p for row, p in zip(X_ptb, pats, strict=True)}
    psides = {name: {patient_of[r.tobytes()] for r in split.X} for name, split in prepared.ptb.items()}
    assert psides["train"].isdisjoint(psides["val"]) and psides["train"].isdisjoint(psides["test"])
    assert psides["val"].isdisjoint(psides["test"])
    assert sum(len(s.y) for s in prepared.ptb.values()) == len(patients)
