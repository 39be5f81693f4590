"""What the real Kaggle files look like, to check a download or a local copy against."""

from __future__ import annotations

from pathlib import Path

from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.hashing import sha256_file

KAGGLE_DATASET = "shayanfazeli/heartbeat"

KAGGLE_ROWS: dict[str, int] = {
    "mitbih_train.csv": 87_554,
    "mitbih_test.csv": 21_892,
    "ptbdb_normal.csv": 4_046,
    "ptbdb_abnormal.csv": 10_506,
}
"""Rows per file."""

KAGGLE_ROW_BYTES = (BEAT_LENGTH + 1) * 25 + 1
"""The widest row of the originals: 188 cells of ``%.18e`` (24 characters) and a separator each, CRLF."""

MAX_CSV_BYTES: dict[str, int] = {name: 2 * rows * KAGGLE_ROW_BYTES for name, rows in KAGGLE_ROWS.items()}
"""The most a beat CSV in an archive may unpack to: twice its Kaggle original at its widest. An
archive claiming more (a zip bomb: a few MB that unpack to GB) is refused before extraction."""

KAGGLE_MITBIH_CLASSES: dict[str, int] = {"N": 90_589, "S": 2_779, "V": 7_236, "F": 803, "Q": 8_039}
"""MIT-BIH beats per AAMI class (train + test)."""

KAGGLE_SHA256: dict[str, str] = {
    "mitbih_train.csv": "ae4c80504ad1d0be5c3f1b3c6ef02851e4d1b05d05805fce2a73374f083a700e",
    "mitbih_test.csv": "f3fdb3fd318275e653fac082b617d8c1ef09fca619a0606dc22c863451c77333",
    "ptbdb_normal.csv": "033d355e76e9f65f692fa398c5b24e357d004fab328c97db5160591a2eafe48c",
    "ptbdb_abnormal.csv": "27b4a37cd6dbcede0900cde3df02291f21e7538085d54e6b33abb91f4a5cf912",
}
"""sha256 of the originals with LF line endings; CRLF copies differ, which is only a warning."""


def count_differences(counts: dict[str, int]) -> list[str]:
    """Describe each file whose row count differs from the Kaggle original."""
    return [
        f"{name}: {counts[name]:,} rows, the Kaggle set has {KAGGLE_ROWS[name]:,} ({counts[name] - KAGGLE_ROWS[name]:+,})"
        for name in KAGGLE_ROWS
        if name in counts and counts[name] != KAGGLE_ROWS[name]
    ]


def sha_differences(folder: Path) -> list[str]:
    out = []
    for name, want in KAGGLE_SHA256.items():
        got = sha256_file(folder / name)
        if got != want:
            out.append(
                f"{name}: sha256 {got[:12]}… differs from the Kaggle original {want[:12]}… (CRLF copy or re-serialised?)"
            )
    return out
