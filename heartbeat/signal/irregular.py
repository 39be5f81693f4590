"""Where a recording's rhythm is irregularly irregular (atrial fibrillation, or flutter with varying
conduction), from its R-R intervals alone.

An S beat is an atrial beat that comes early against the patient's regular rhythm. In atrial
fibrillation there is no regular rhythm to come early against: every R-R interval differs, and a
model that reads prematurity calls S wherever a short interval happens, while AAMI labels those
beats N. Ectopy, even frequent, is regularly irregular: bigeminy and trigeminy repeat a pattern, and
a run of ectopic beats is regular within the run. Sample entropy tells the two apart: in a repeated
pattern two intervals that match are followed by two that match again; in fibrillation they rarely
are. Short runs of ectopic atrial beats between sinus pauses (sick sinus syndrome, as in MIT-BIH 232,
where most beats are S) mix the two rates at random and score high too; but their pauses are many
and long, while fibrillation's intervals scatter around one rate. So a window where more than
``MOST_PAUSES`` of the intervals are pauses (``PAUSE`` times its median or longer) is not called
irregularly irregular.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

WINDOW = 48
"""R-R intervals in each window: about 40 s at a normal rate, short enough for paroxysmal episodes."""
TOLERANCE = 0.1
"""Two intervals match when they differ by at most this share of their window's median interval."""
THRESHOLD = 1.0
"""Sample entropy (m = 1) above which a window is irregular."""
PAUSE = 1.5
"""An interval this many times its window's median, or longer, is a pause."""
MOST_PAUSES = 0.15
"""The share of a window's intervals that may be pauses in fibrillation (bench/irregular_rhythm.py
measures all these settings on the MIT-BIH records and the demo's synthetic patients)."""
BLOCK = 512
"""Windows compared at once: a block's differences are ``BLOCK × WINDOW²`` floats (9.4 MB)."""


def _normalised_blocks(windows: np.ndarray):
    """``(start, rows)`` of ``windows`` ``(n, w)``, :data:`BLOCK` rows at a time, each row divided by
    its median: both measures below compare intervals with their window's median."""
    for start in range(0, len(windows), BLOCK):
        x = np.asarray(windows[start : start + BLOCK], dtype=np.float64)
        yield start, x / np.median(x, axis=1, keepdims=True)


def _entropy(x: np.ndarray, tolerance: float) -> np.ndarray:
    """Sample entropy (m = 1) of each row of the normalised block ``x``."""
    match = np.abs(x[:, :, None] - x[:, None, :]) <= tolerance
    head = match[:, :-1, :-1]
    off_diagonal = head.shape[1]
    b = head.sum(axis=(1, 2)) - off_diagonal
    a = (head & match[:, 1:, 1:]).sum(axis=(1, 2)) - off_diagonal
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, -np.log(a / np.maximum(b, 1)), np.inf)


def sample_entropy(windows: np.ndarray, tolerance: float = TOLERANCE) -> np.ndarray:
    """Sample entropy (m = 1) of each row of ``windows`` ``(n, w)``, with the tolerance a share of the
    row's median: -ln(A / B), B the pairs of intervals that match, A those whose next intervals match
    too. ``inf`` where no pair does (nothing repeats)."""
    out = np.empty(len(windows))
    for start, x in _normalised_blocks(windows):
        out[start : start + len(x)] = _entropy(x, tolerance)
    return out


def irregular_beats(
    peaks: np.ndarray,
    window: int = WINDOW,
    threshold: float = THRESHOLD,
    tolerance: float = TOLERANCE,
    most_pauses: float = MOST_PAUSES,
) -> np.ndarray:
    """A boolean mask over the R-peak times ``peaks`` (in samples or seconds: each window is measured
    against its own median, so the unit cancels): the beats in an irregularly irregular stretch, whose
    ``window`` surrounding R-R intervals have a sample entropy above ``threshold`` and at most
    ``most_pauses`` of them pauses. Each beat takes the window centred on it (or the first or last
    window, near the recording's ends); a recording with fewer than ``window`` intervals is too short
    to tell, and nothing is flagged.
    """
    s = np.asarray(peaks, dtype=np.float64)
    n = s.size
    if np.any(np.diff(s) <= 0):
        raise ValueError("R-peak times must increase: peaks are out of order or repeated")
    if window < 3:
        raise ValueError(f"window must be at least 3 R-R intervals, got {window}")
    rr = np.diff(s)
    if rr.size < window:
        return np.zeros(n, dtype=bool)
    windows = sliding_window_view(rr, window)
    irregular = np.empty(len(windows), dtype=bool)
    for start, x in _normalised_blocks(windows):
        pauses = (x >= PAUSE).mean(axis=1)
        irregular[start : start + len(x)] = (_entropy(x, tolerance) > threshold) & (pauses <= most_pauses)
    first = np.clip(np.arange(n) - window // 2, 0, rr.size - window)
    return irregular[first]
