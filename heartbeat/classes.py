"""Class names and the file layout of the Kaggle set ``shayanfazeli/heartbeat``."""

from __future__ import annotations

BEAT_LENGTH = 187
"""Samples per beat: 1.5 s at 125 Hz, zero-padded."""

MITBIH_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
"""AAMI classes in label order 0..4."""

PTB_CLASSES: tuple[str, ...] = ("normal", "abnormal")
"""PTB labels: 0 healthy control, 1 myocardial infarction."""

RAW_FILES: tuple[str, ...] = (
    "mitbih_train.csv",
    "mitbih_test.csv",
    "ptbdb_normal.csv",
    "ptbdb_abnormal.csv",
)
"""The four CSVs every source writes, in the same format as the Kaggle set."""

FILE_CLASSES: dict[str, tuple[int, ...]] = {
    "mitbih_train.csv": (0, 1, 2, 3, 4),
    "mitbih_test.csv": (0, 1, 2, 3, 4),
    "ptbdb_normal.csv": (0,),
    "ptbdb_abnormal.csv": (1,),
}
"""The labels each file may hold."""

DATASET_CLASSES: dict[str, tuple[str, ...]] = {"mitbih": MITBIH_CLASSES, "ptb": PTB_CLASSES}
