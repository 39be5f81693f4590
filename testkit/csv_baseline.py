"""The earlier CSV code paths, kept as the baselines the benchmarks (and the perf-path tests) measure against.

- :func:`read_beats_csv_before`: the reader's fast path as it was: one ``read_csv`` of the whole
  file, ``to_numpy``, then masks the size of the whole array (finite, range) and a contiguous copy.
  Error handling is left out: the benchmarks read valid files only.
- :func:`pandas_chunks_only`: ``heartbeat.core.beatcsv.read_beats_csv`` without its pyarrow path, i.e. the
  chunked pandas reader it used before (and still falls back to).
- :func:`format_beats_csv_before`: ``np.savetxt(fmt="%.18e")``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.beatcsv import RANGE_TOLERANCE, read_beats_csv


def read_beats_csv_before(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(path, header=None, dtype=np.float32, engine="c")
    data = frame.to_numpy(dtype=np.float32, copy=False)
    del frame
    bad = ~np.isfinite(data)
    if bad.any():
        raise ValueError(f"{path}: non-finite cell")
    X = data[:, :BEAT_LENGTH]
    out = (X < -RANGE_TOLERANCE) | (X > 1 + RANGE_TOLERANCE)
    if out.any():
        raise ValueError(f"{path}: value out of range")
    labels = data[:, BEAT_LENGTH]
    y = labels.astype(np.int64)
    if (y != labels).any():
        raise ValueError(f"{path}: label not an integer")
    return np.ascontiguousarray(X), y


def format_beats_csv_before(X: np.ndarray, y: np.ndarray | None) -> str:
    data = np.asarray(X, dtype=np.float64)
    if y is not None:
        data = np.column_stack([data, np.asarray(y, dtype=np.float64)])
    buf = io.StringIO()
    np.savetxt(buf, data, fmt="%.18e", delimiter=",", newline="\n")
    return buf.getvalue()


def pandas_chunks_only(path: str | Path, allowed: tuple[int, ...]):
    return read_beats_csv(path, allowed, engine="pandas")
