"""Input checks every signal function shares: a sampling rate, one finite lead, sorted R-peak indices.

Each raises a one-line :class:`DataError` (never a bare numpy error), so a bad record reaches the
user as a message, not a traceback.
"""

from __future__ import annotations

import numpy as np

from heartbeat.core.errors import DataError

MIN_FS, MAX_FS = 10.0, 100_000.0
"""Sampling rates we accept; outside them the resampling ratio is meaningless."""


def check_fs(fs: float) -> float:
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise DataError(f"sampling rate {fs!r} is not a number") from None
    if not np.isfinite(fs) or not MIN_FS <= fs <= MAX_FS:
        raise DataError(
            f"sampling rate {fs!r} Hz is outside {MIN_FS:g}..{MAX_FS:g} Hz; check the record header"
        )
    return fs


def check_signal(signal: np.ndarray) -> np.ndarray:
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise DataError(f"expected one ECG lead (a 1-D array), got shape {x.shape}")
    if x.size == 0:
        raise DataError("the ECG lead is empty (0 samples)")
    if not np.isfinite(x).all():
        bad = int(np.argmax(~np.isfinite(x)))
        raise DataError(
            f"the ECG lead has a non-finite value at sample {bad}; the record has gaps or is corrupt"
        )
    return x


def check_peaks(peaks: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(peaks)
    if p.ndim != 1 or (p.size and not np.issubdtype(p.dtype, np.integer)):
        raise DataError("R-peak positions must be a 1-D array of integer sample indices")
    p = p.astype(np.int64)
    if p.size and (p.min() < 0 or p.max() >= n):
        raise DataError(f"R-peak positions must lie inside the signal (0..{n - 1}), got {p.min()}..{p.max()}")
    if p.size > 1 and (np.diff(p) < 0).any():
        raise DataError("R-peak positions must be sorted in time")
    return p
