"""What a source that cuts beats from records writes: the four Kaggle-format CSVs, provenance.parquet
and windows.npy.

The physionet source (real PhysioNet records) and the demo source (synthetic records) both end in
:func:`write_beat_files`, so their ``data/raw`` folders have the same files with the same columns,
and preprocess treats them alike (R-R and record features, ``split: patient``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from heartbeat.core.atomic import atomic_path, write_npy
from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.beatcsv import write_beats_csv
from heartbeat.core.layout import RAW_FILES, WINDOWS_FILE
from heartbeat.core.splits import split_stratified
from heartbeat.signal import segment
from heartbeat.signal.context import RR_COLUMNS
from heartbeat.signal.patient import PATIENT_COLUMNS, WINDOW_SHAPE
from heartbeat.signal.record_beats import RecordBeats

PROVENANCE_COLUMNS: tuple[str, ...] = (
    "file",
    "row",
    "database",
    "record",
    "patient",
    "sample",
    "symbol",
    "label",
    *RR_COLUMNS,
    *PATIENT_COLUMNS,
)
"""The columns of ``provenance.parquet``: one row per written beat, in file then row order. Each row's
two-lead window is the same row of ``windows.npy``."""


@dataclass
class RecordRows:
    """The beats of one record, labelled, with everything provenance.parquet needs."""

    database: str
    record: str
    patient: str
    X: np.ndarray
    label: np.ndarray
    sample: np.ndarray
    symbol: np.ndarray
    rr: dict[str, np.ndarray]
    window: np.ndarray
    patient_features: np.ndarray

    @classmethod
    def of(
        cls, beats: RecordBeats, database: str, record: str, patient: str, label: np.ndarray
    ) -> RecordRows:
        """The rows of one record's cut beats (:func:`heartbeat.signal.record_beats.cut_record`)."""
        return cls(
            database=database,
            record=record,
            patient=patient,
            X=beats.X,
            label=np.asarray(label, dtype=np.int64),
            sample=beats.sample,
            symbol=beats.symbol,
            rr=beats.rr,
            window=beats.window,
            patient_features=beats.patient,
        )


def concat(parts: list[RecordRows]) -> dict[str, np.ndarray]:
    """The records' beats as columns, one row per beat in record order (an empty list gives empty columns)."""
    empty = RecordRows(
        database="",
        record="",
        patient="",
        X=np.zeros((0, BEAT_LENGTH), np.float32),
        label=np.zeros(0, np.int64),
        sample=np.zeros(0, np.int64),
        symbol=np.zeros(0, dtype=object),
        rr={k: np.zeros(0) for k in RR_COLUMNS},
        window=np.zeros((0, *WINDOW_SHAPE), np.float32),
        patient_features=np.zeros((0, len(PATIENT_COLUMNS)), np.float32),
    )
    parts = [empty, *parts]
    cols = {
        "X": np.concatenate([p.X for p in parts]),
        "label": np.concatenate([p.label for p in parts]),
        "sample": np.concatenate([p.sample for p in parts]).astype(np.int64),
        "symbol": np.concatenate([p.symbol for p in parts]),
        "record": np.concatenate([np.full(p.label.size, p.record, dtype=object) for p in parts]),
        "patient": np.concatenate([np.full(p.label.size, p.patient, dtype=object) for p in parts]),
        "database": np.concatenate([np.full(p.label.size, p.database, dtype=object) for p in parts]),
    }
    for key in RR_COLUMNS:
        cols[key] = np.concatenate([p.rr[key] for p in parts])
    cols["window"] = np.concatenate([p.window for p in parts]).astype(np.float32)
    features = np.concatenate([p.patient_features for p in parts]).astype(np.float32)
    for i, key in enumerate(PATIENT_COLUMNS):
        cols[key] = features[:, i]
    cols["patient_features"] = features
    return cols


def class_counts(labels: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    """Beats per class name, for the sources' report.json."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(names))
    return {name: int(c) for name, c in zip(names, counts, strict=False)}


def file_rows(cols: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    """Row order of one file: grouped by label like the Kaggle files, then by record and time."""
    idx = np.flatnonzero(mask)
    return idx[np.argsort(cols["label"][idx], kind="stable")]


def plan_files(
    mit: dict[str, np.ndarray], ptb: dict[str, np.ndarray], test_fraction: float, seed: int
) -> tuple[dict[str, tuple[dict[str, np.ndarray], np.ndarray]], np.ndarray]:
    """Which beats go into which file, in which order, and the MIT-BIH test mask.

    MIT-BIH is split ``test_fraction`` per class at random (seeded), as the Kaggle train/test files
    are; PTB goes into one file per label.
    """
    test = split_stratified(mit["label"], test_fraction, seed)
    plan = {
        "mitbih_train.csv": (mit, file_rows(mit, ~test)),
        "mitbih_test.csv": (mit, file_rows(mit, test)),
        "ptbdb_normal.csv": (ptb, file_rows(ptb, ptb["label"] == 0)),
        "ptbdb_abnormal.csv": (ptb, file_rows(ptb, ptb["label"] == 1)),
    }
    return plan, test


def write_beat_files(
    dest: Path,
    mit: dict[str, np.ndarray],
    ptb: dict[str, np.ndarray],
    test_fraction: float,
    seed: int,
    empty_error: Callable[[str], Exception],
) -> dict:
    """Write the four CSVs and ``provenance.parquet`` into ``dest``; return rows, shape stats and the test mask.

    ``mit`` and ``ptb`` are :func:`concat` columns. A file that would be empty raises
    ``empty_error(file name)`` before anything is written: an empty class file cannot be trained on.
    """
    plan, test = plan_files(mit, ptb, test_fraction, seed)
    for name, (_, rows) in plan.items():
        if rows.size == 0:
            raise empty_error(name)
    frames, shapes, windows = [], {}, []
    for name in RAW_FILES:
        cols, rows = plan[name]
        windows.append(cols["window"][rows])
        write_beats_csv(dest / name, cols["X"][rows], cols["label"][rows])
        shapes[name] = segment.beat_shape_stats(cols["X"][rows], cols["label"][rows])
        frame = {"file": name, "row": np.arange(rows.size, dtype=np.int64)}
        for key in PROVENANCE_COLUMNS[2:]:
            frame[key] = cols[key][rows]
        frames.append(pd.DataFrame(frame))
    provenance = pd.concat(frames, ignore_index=True)
    for key in ("file", "database", "record", "patient", "symbol"):
        provenance[key] = provenance[key].astype(str)
    with atomic_path(dest / "provenance.parquet") as tmp:
        provenance.to_parquet(tmp, index=False)
    write_npy(dest / WINDOWS_FILE, np.concatenate(windows))
    return {
        "rows": {name: int(plan[name][1].size) for name in RAW_FILES},
        "shape_stats": shapes,
        "test_mask": test,
    }
