"""Read, validate and write beat CSVs in the Kaggle ``shayanfazeli/heartbeat`` format.

Each row is 187 samples in [0, 1] then the label, no header. The original files
write every number as ``%.18e``; re-serialised copies (such as the shared
kaggle-sample) use Python's shortest repr; both may have LF or CRLF line
endings. pandas' C parser reads all of these at close to disk speed, so the fast
path is one ``read_csv`` call plus vectorised checks. Only when something is
wrong do we re-scan the file line by line, to name the exact row and problem.

Values outside [0, 1] are rejected, not clipped: every source in this project
normalises beats to [0, 1], so a value outside it means the file is not what it
claims to be (a different normalisation, a shifted column), and training on it
silently would give numbers nobody can compare. ``RANGE_TOLERANCE`` absorbs
float round-off only.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from heartbeat.atomic import atomic_path
from heartbeat.classes import BEAT_LENGTH
from heartbeat.errors import DataError

RANGE_TOLERANCE = 1e-6
_SNIFF_BYTES = 1 << 16  # well over one row (4,700 bytes in the originals)


@dataclass(frozen=True)
class Beats:
    """Beats as float32 samples ``X`` (n, 187) and integer labels ``y`` (n,), or no labels."""

    X: np.ndarray
    y: np.ndarray | None

    def __len__(self) -> int:
        return int(self.X.shape[0])


def _sniff(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(_SNIFF_BYTES)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the path or rerun the fetch stage") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a CSV file") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied; make the file readable") from None


def _check_head(path: Path, head: bytes) -> None:
    if not head.strip():
        raise DataError(f"{path}: file is empty; expected at least one row of {BEAT_LENGTH + 1} numbers")
    lowered = head.lstrip()[:512].lower()
    if lowered.startswith((b"<!doctype", b"<html", b"<?xml", b"<")) or b"<html" in lowered:
        raise DataError(
            f"{path}: looks like an HTML page, not a CSV (a saved web page or a login page?); "
            "download the file again, e.g. with the kaggle source"
        )
    first = head.splitlines()[0].decode("utf-8", errors="replace").split(",")[0].strip()
    try:
        float(first)
    except ValueError:
        raise DataError(
            f"{path}: row 1 starts with {first[:30]!r}, which is not a number; "
            "the file must have no header row (remove it)"
        ) from None


def _diagnose(path: Path, n_columns: set[int], allowed_labels: tuple[int, ...] | None) -> DataError:
    """Re-scan the file row by row and describe the first bad row precisely."""
    expected = " or ".join(str(c) for c in sorted(n_columns))
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        for row_no, row in enumerate(csv.reader(fh), start=1):
            if not row:
                return DataError(f"{path}: row {row_no} is blank; remove blank lines")
            if len(row) not in n_columns:
                return DataError(f"{path}: row {row_no} has {len(row)} columns, expected {expected}")
            for col_no, cell in enumerate(row, start=1):
                try:
                    value = float(cell)
                except ValueError:
                    return DataError(
                        f"{path}: row {row_no}, column {col_no}: {cell.strip()[:30]!r} is not a number"
                    )
                if not math.isfinite(value):
                    return DataError(
                        f"{path}: row {row_no}, column {col_no}: {cell.strip()!r} is not a finite number"
                    )
    return DataError(f"{path}: could not be parsed as a CSV of {expected} numeric columns")


def read_beats_csv(
    path: str | os.PathLike[str],
    allowed_labels: tuple[int, ...] | None = None,
    labelled: bool | None = True,
) -> Beats:
    """Read and validate a beat CSV.

    ``labelled=True`` requires 188 columns, ``False`` requires 187 (samples only)
    and ``None`` accepts either, as ``heartbeat predict`` does. ``allowed_labels``
    restricts the label set (for example ``(0,)`` for ptbdb_normal.csv).
    Raises :class:`DataError` naming the file, row and problem.
    """
    path = Path(path)
    head = _sniff(path)
    _check_head(path, head)
    n_columns = {BEAT_LENGTH + 1} if labelled else {BEAT_LENGTH}
    if labelled is None:
        n_columns = {BEAT_LENGTH, BEAT_LENGTH + 1}
    first_row = head.splitlines()[0].decode("utf-8", errors="replace")
    width = first_row.count(",") + 1
    if width not in n_columns:
        raise DataError(
            f"{path}: row 1 has {width} columns, expected {' or '.join(map(str, sorted(n_columns)))}"
        )
    try:
        frame = pd.read_csv(path, header=None, dtype=np.float32, engine="c")
    except (ValueError, pd.errors.ParserError):
        raise _diagnose(path, n_columns, allowed_labels) from None
    if frame.shape[1] != width:
        raise _diagnose(path, n_columns, allowed_labels)
    data = frame.to_numpy(dtype=np.float32, copy=False)
    del frame
    bad = ~np.isfinite(data)
    if bad.any():
        # A short row shows up as NaN padding; the row scan says which it was.
        raise _diagnose(path, n_columns, allowed_labels)
    X = data[:, :BEAT_LENGTH]
    _check_range(path, X)
    y = None
    if width == BEAT_LENGTH + 1:
        y = _check_labels(path, data[:, BEAT_LENGTH], allowed_labels)
    return Beats(X=np.ascontiguousarray(X), y=y)


def _check_range(path: Path, X: np.ndarray) -> None:
    low = X < -RANGE_TOLERANCE
    high = X > 1 + RANGE_TOLERANCE
    out = low | high
    if out.any():
        row, col = np.argwhere(out)[0]
        raise DataError(
            f"{path}: row {row + 1}, column {col + 1}: value {X[row, col]:.6g} is outside [0, 1]; "
            "beats must be normalised to [0, 1] as in the Kaggle set"
        )


def _check_labels(path: Path, labels: np.ndarray, allowed: tuple[int, ...] | None) -> np.ndarray:
    as_int = labels.astype(np.int64)
    not_int = as_int != labels
    if allowed is not None:
        not_int |= ~np.isin(as_int, np.asarray(allowed))
    if not_int.any():
        row = int(np.argmax(not_int))
        expected = ", ".join(str(a) for a in allowed) if allowed is not None else "an integer"
        raise DataError(
            f"{path}: row {row + 1}, column {BEAT_LENGTH + 1}: label {labels[row]:g} is not in the class set "
            f"(expected {expected})"
        )
    return as_int


def format_beats_csv(X: np.ndarray, y: np.ndarray | None) -> str:
    """Format rows exactly like the Kaggle originals: ``%.18e``, comma-separated, LF."""
    data = np.asarray(X, dtype=np.float64)
    if y is not None:
        data = np.column_stack([data, np.asarray(y, dtype=np.float64)])
    buf = io.StringIO()
    np.savetxt(buf, data, fmt="%.18e", delimiter=",", newline="\n")
    return buf.getvalue()


def write_beats_csv(path: str | os.PathLike[str], X: np.ndarray, y: np.ndarray | None) -> None:
    """Write beats atomically in the Kaggle format (see :func:`format_beats_csv`)."""
    if len(X) == 0:
        raise DataError(f"{path}: refusing to write an empty beat file; the source produced no rows")
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="ascii", newline="\n") as fh:
            fh.write(format_beats_csv(X, y))
