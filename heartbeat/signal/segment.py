"""Cut single heartbeats out of a continuous ECG lead (Kachuee et al. 2018, Section III-A).

This module is pure (arrays in, arrays out, no files, no network) because it is
shared by the ``physionet`` source and by ``heartbeat predict``, which segments
WFDB records a user hands it. Every function validates its input and raises
:class:`DataError` for anything it cannot segment, never a bare numpy error.

The method, step by step as in the paper:

1. resample the lead to 125 Hz (``scipy.signal.resample_poly``);
2. split it into 10 s windows and min-max normalise each window to [0, 1];
3. R-peaks: either given (the .atr beat annotations, mapped to 125 Hz), or the
   paper's detector: local maxima (zero crossings of the first derivative)
   whose normalised value is at least 0.9, plus an optional refractory period
   so that a notched R wave does not count twice;
4. the nominal period T of a window is the median R-R interval inside it;
5. each beat is the 1.2·T samples that start at its R-peak, zero-padded (or
   truncated) to 187 samples.

One deliberate addition, ``scaling="beat"`` (the default): each 1.2·T segment is
min-max scaled on its own, over the whole 1.2·T before truncation. The Kaggle set
was made that way: 98% of its MIT-BIH rows reach exactly 1.0 and 93% reach
exactly 0.0 inside the beat, which a per-window normalisation cannot give (only
the tallest beat of a window reaches 1.0). Min-max scaling is affine-invariant,
so for a segment inside one window this equals scaling the window-normalised
segment; cutting from the un-normalised signal just avoids a step where a
segment crosses a window boundary. ``scaling="window"`` keeps the paper's
literal variant (segments cut from the window-normalised signal).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
from scipy.signal import find_peaks, resample_poly

from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.errors import DataError
from heartbeat.signal.checks import check_fs, check_peaks, check_signal

TARGET_FS = 125.0
"""Sampling rate of every beat (Hz)."""
WINDOW_S = 10.0
"""Length of the normalisation/period windows (s)."""
PERIOD_FACTOR = 1.2
"""A beat spans this many nominal periods T from its R-peak."""
DETECTOR_THRESHOLD = 0.9
"""The paper's R-peak threshold on the window-normalised signal."""
REFRACTORY_S = 0.2
"""Two detections closer than this are one beat (the taller wins); 0 turns it off."""
DEFAULT_PERIOD_S = 1.0
"""T used when a whole signal has fewer than two R-peaks (no R-R interval at all)."""
BLOCK_BEATS = 4096
"""Beats cut at a time: every beat's arithmetic is its own, so the result is the same as all at once,
while the float64 temporaries (a few of ``(block, 187)``) stay a few MB on a 24-hour recording."""

Scaling = Literal["beat", "window"]
Polarity = Literal["as_recorded", "auto"]


def _ratio(fs: float, target_fs: float) -> Fraction:
    return Fraction(target_fs / fs).limit_denominator(1000)


def resample(signal: np.ndarray, fs: float, target_fs: float = TARGET_FS) -> np.ndarray:
    """Resample with a polyphase anti-aliasing filter, so 360 Hz and 1000 Hz records give the same beats."""
    x = check_signal(signal)
    ratio = _ratio(check_fs(fs), check_fs(target_fs))
    if ratio == 1:
        return x.copy()
    return resample_poly(x, ratio.numerator, ratio.denominator)


def resample_peaks(samples: np.ndarray, fs: float, n_out: int, target_fs: float = TARGET_FS) -> np.ndarray:
    """Map sample indices at ``fs`` onto the resampled grid (nearest sample, inside ``[0, n_out)``)."""
    s = np.asarray(samples)
    if s.ndim != 1 or (s.size and not np.issubdtype(s.dtype, np.integer)):
        raise DataError("R-peak positions must be a 1-D array of integer sample indices")
    ratio = _ratio(check_fs(fs), check_fs(target_fs))
    mapped = np.rint(s.astype(np.float64) * float(ratio)).astype(np.int64)
    return np.clip(mapped, 0, max(int(n_out) - 1, 0))


def normalise_windows(signal: np.ndarray, fs: float = TARGET_FS, window_s: float = WINDOW_S) -> np.ndarray:
    """Min-max normalise each ``window_s`` window to [0, 1] (a flat window becomes 0).

    Per-window scaling is what makes one fixed threshold (0.9) work across
    records with different gains and slow baseline drift.
    """
    x = check_signal(signal)
    window = max(1, round(window_s * check_fs(fs)))
    n_windows = -(-x.size // window)
    padded = np.full(n_windows * window, np.nan)
    padded[: x.size] = x
    blocks = padded.reshape(n_windows, window)
    low = np.nanmin(blocks, axis=1, keepdims=True)
    with np.errstate(over="ignore"):
        span = np.nanmax(blocks, axis=1, keepdims=True) - low
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.divide(blocks - low, span, out=np.zeros_like(blocks), where=span > 0)
    out = out.reshape(-1)[: x.size]
    if not np.isfinite(out).all():  # amplitudes near the float64 limit overflow when scaled
        raise DataError("the ECG lead's amplitudes are too large to scale; check the record's units")
    return np.clip(out, 0.0, 1.0)


def detect_peaks(
    normalised: np.ndarray,
    fs: float = TARGET_FS,
    threshold: float = DETECTOR_THRESHOLD,
    refractory_s: float = REFRACTORY_S,
) -> np.ndarray:
    """The paper's R-peak detector on a window-normalised lead; returns sample indices.

    It only finds beats whose R wave reaches 90% of its window's range, so it
    misses inverted, small or ectopic beats (about 40% of MIT-BIH beats); that
    is the published method, kept as is so results stay comparable.
    """
    x = check_signal(normalised)
    distance = round(refractory_s * check_fs(fs))
    peaks, _ = find_peaks(x, height=threshold, distance=distance if distance >= 1 else None)
    return peaks.astype(np.int64)


def qrs_points_down(normalised: np.ndarray, fs: float = TARGET_FS, window_s: float = WINDOW_S) -> bool:
    """Guess whether a window-normalised lead is upside down (QRS mostly negative).

    In a window scaled to [0, 1] the isoelectric baseline sits low when the
    QRS points up and high when it points down, so the median over windows of
    each window's median tells the polarity without any filtering. The
    threshold detector needs upright R waves: on an inverted lead (common in
    PTB leads of infarction patients) it would pick T waves or noise instead.
    """
    x = check_signal(normalised)
    window = max(1, round(window_s * check_fs(fs)))
    n_full = x.size // window
    if n_full:
        level = np.median(np.median(x[: n_full * window].reshape(n_full, window), axis=1))
    else:
        level = np.median(x)
    return bool(level > 0.5)


def nominal_periods(
    peaks: np.ndarray,
    n_samples: int,
    fs: float = TARGET_FS,
    window_s: float = WINDOW_S,
    default_period_s: float = DEFAULT_PERIOD_S,
) -> np.ndarray:
    """Nominal period T (in samples) for each peak: the median R-R inside the peak's window.

    A window with fewer than two peaks has no R-R of its own and borrows the
    whole signal's median R-R, so one missed beat does not give a beat of
    arbitrary length; a signal with fewer than two peaks uses ``default_period_s``.
    """
    fs = check_fs(fs)
    p = check_peaks(peaks, max(int(n_samples), 1))
    window = max(1, round(window_s * fs))
    fallback = default_period_s * fs
    if p.size < 2:
        return np.full(p.size, fallback)
    rr = np.diff(p).astype(np.float64)
    overall = float(np.median(rr)) if np.median(rr) > 0 else fallback
    win = p // window
    same = win[1:] == win[:-1]
    per_window = np.full(int(win.max()) + 1, overall)
    rr_win, rr_in = win[1:][same], rr[same]
    if rr_in.size:
        order = np.lexsort((rr_in, rr_win))
        rr_sorted, win_sorted = rr_in[order], rr_win[order]
        keys, starts, counts = np.unique(win_sorted, return_index=True, return_counts=True)
        lo = rr_sorted[starts + (counts - 1) // 2]
        hi = rr_sorted[starts + counts // 2]
        per_window[keys] = (lo + hi) / 2
    per_window[per_window <= 0] = overall
    return per_window[win]


def _range_reduce(ufunc: np.ufunc, x: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """ufunc over x[start:stop] for many (possibly overlapping) ranges, in one vectorised call."""
    padded = np.append(x, x[-1])
    bounds = np.empty(2 * start.size, dtype=np.int64)
    bounds[0::2], bounds[1::2] = start, stop
    return ufunc.reduceat(padded, bounds)[0::2]


def segment_beats(
    signal: np.ndarray,
    peaks: np.ndarray,
    periods: np.ndarray,
    factor: float = PERIOD_FACTOR,
    length: int = BEAT_LENGTH,
    scaling: Scaling = "beat",
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``factor``·T samples from each peak, scale to [0, 1], pad/truncate to ``length``.

    Returns ``(X, kept)``: float32 beats and a boolean mask over ``peaks``. A
    beat whose segment would run past the end of the signal is dropped rather
    than padded, because its zero tail would look like a short beat. With
    ``scaling="beat"`` the min and max come from the whole segment, before
    truncation, as in the Kaggle set; ``signal`` must then be the resampled lead.
    With ``scaling="window"`` it must be the window-normalised lead.
    """
    x = check_signal(signal)
    p = check_peaks(peaks, x.size)
    T = np.asarray(periods, dtype=np.float64)
    if T.shape != p.shape or not np.isfinite(T).all():
        raise DataError(f"need one finite period per R-peak, got {T.shape} periods for {p.size} peaks")
    if scaling not in ("beat", "window"):
        raise DataError(f"scaling must be 'beat' or 'window', got {scaling!r}")
    seg_len = np.maximum(np.rint(factor * T).astype(np.int64), 1)
    kept = p + seg_len <= x.size
    p, seg_len = p[kept], seg_len[kept]
    cols = np.arange(length)
    if p.size == 0:
        return np.zeros((0, length), dtype=np.float32), kept
    if scaling == "beat":
        low_all = _range_reduce(np.minimum, x, p, p + seg_len)
        with np.errstate(over="ignore", invalid="ignore"):
            span_all = _range_reduce(np.maximum, x, p, p + seg_len) - low_all
    out = np.empty((p.size, length), dtype=np.float32)
    # Beat by beat the same arithmetic; in blocks of rows, so the float64 temporaries stay a block's.
    for start in range(0, p.size, BLOCK_BEATS):
        rows = slice(start, start + BLOCK_BEATS)
        idx = np.minimum(p[rows, None] + cols[None, :], x.size - 1)
        inside = cols[None, :] < seg_len[rows, None]
        values = x[idx]
        if scaling == "beat":
            low, span = low_all[rows, None], span_all[rows, None]
            with np.errstate(over="ignore", invalid="ignore"):
                values = np.divide(values - low, span, out=np.zeros_like(values), where=span > 0)
        beats = np.where(inside, np.clip(values, 0.0, 1.0), 0.0)
        if not np.isfinite(beats).all():  # amplitudes near the float64 limit overflow when scaled
            raise DataError("the ECG lead's amplitudes are too large to scale; check the record's units")
        out[rows] = beats
    return out, kept


@dataclass(frozen=True)
class Segmented:
    """Beats cut from one lead, with where each came from.

    ``index`` points into the R-peaks that went in (the given ``peaks``, or the
    detector's output), so callers can carry labels and R-R features along;
    ``peaks`` are those R-peaks at the input rate and ``periods`` the T used (s);
    ``inverted`` says whether the lead was flipped upright first.
    """

    X: np.ndarray
    index: np.ndarray
    peaks: np.ndarray
    periods: np.ndarray
    inverted: bool


def extract_beats(
    signal: np.ndarray,
    fs: float,
    peaks: np.ndarray | None = None,
    *,
    window_s: float = WINDOW_S,
    threshold: float = DETECTOR_THRESHOLD,
    refractory_s: float = REFRACTORY_S,
    scaling: Scaling = "beat",
    polarity: Polarity = "as_recorded",
    require_next: bool = True,
) -> Segmented:
    """Resample, normalise, find or map R-peaks, and cut beats from one lead.

    ``peaks`` are R-peak sample indices at ``fs`` (for example from an .atr
    file); ``None`` runs the detector. ``require_next`` drops the last R-peak,
    which has no following R-R interval (it has no post-RR feature, and in MIT-BIH
    its segment usually runs off the record): this is the one edge beat per
    record that the Kaggle set also lacks. ``polarity="auto"`` flips a lead
    whose QRS points down (see :func:`qrs_points_down`) before detecting and
    cutting, so the beats start at an upright R wave as the detector assumes.
    """
    fs = check_fs(fs)
    x = resample(signal, fs)
    normalised = normalise_windows(x, TARGET_FS, window_s)
    inverted = polarity == "auto" and qrs_points_down(normalised, TARGET_FS, window_s)
    if inverted:
        x = -x
        normalised = normalise_windows(x, TARGET_FS, window_s)
    if peaks is None:
        p125 = detect_peaks(normalised, TARGET_FS, threshold, refractory_s)
        original = np.rint(p125 * (fs / TARGET_FS)).astype(np.int64)
        original = np.clip(original, 0, np.asarray(signal).size - 1)
    else:
        original = check_peaks(peaks, np.asarray(signal).size)
        p125 = resample_peaks(original, fs, x.size)
    T = nominal_periods(p125, x.size, TARGET_FS, window_s)
    source = x if scaling == "beat" else normalised
    X, kept = segment_beats(source, p125, T, scaling=scaling)
    if require_next and kept.size and kept[-1]:
        kept[-1] = False
        X = X[:-1]
    index = np.flatnonzero(kept)
    return Segmented(X=X, index=index, peaks=original, periods=T[index] / TARGET_FS, inverted=inverted)


def _shape_stats(X: np.ndarray) -> dict[str, float | int]:
    if X.shape[0] == 0:
        return {"n": 0}
    nonzero = X != 0
    last = X.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    length = np.where(nonzero.any(axis=1), last, 0)
    p10, p50, p90 = np.percentile(length, [10, 50, 90])
    return {
        "n": int(X.shape[0]),
        "share_max_one": float((X.max(axis=1) == 1.0).mean()),
        "share_start_one": float((X[:, 0] == 1.0).mean()),
        "length_p10": float(p10),
        "length_median": float(p50),
        "length_p90": float(p90),
    }


def beat_shape_stats(X: np.ndarray, y: np.ndarray | None = None) -> dict[str, dict[str, float | int]]:
    """Shape statistics used to compare our beats with the Kaggle rows, overall and per label.

    ``share_max_one`` (rows reaching exactly 1.0), ``share_start_one`` (rows
    whose first sample is 1.0, i.e. the R-peak is the segment maximum) and the
    percentiles of the non-zero length (index of the last non-zero sample + 1,
    which is 1.2·T unless the segment ends at its own minimum) together pin down
    scaling, alignment and segment length, the three things that differ
    between segmentation recipes.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"expected beats as a 2-D array, got shape {X.shape}")
    out = {"all": _shape_stats(X)}
    if y is not None:
        y = np.asarray(y)
        for label in np.unique(y):
            out[str(int(label))] = _shape_stats(X[y == label])
    return out
