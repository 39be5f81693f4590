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

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
from scipy.signal import find_peaks, resample_poly

from heartbeat.classes import BEAT_LENGTH
from heartbeat.errors import DataError

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
TOLERANCE_S = 0.150
"""A detection within this distance of an annotated beat counts as a hit (AAMI EC57)."""
LOCAL_RR_BEATS = 10
"""How many R-R intervals around a beat make up its local mean R-R."""
MIN_FS, MAX_FS = 10.0, 100_000.0
"""Sampling rates we accept; outside them the resampling ratio is meaningless."""

Scaling = Literal["beat", "window"]
Polarity = Literal["as_recorded", "auto"]

SYMBOL_TO_AAMI: dict[str, int] = {
    **dict.fromkeys("NLRej", 0),
    **dict.fromkeys("AaJS", 1),
    **dict.fromkeys("VE", 2),
    "F": 3,
    **dict.fromkeys("/fQ", 4),
}
"""MIT-BIH beat symbols to AAMI labels 0..4 (N S V F Q), the mapping the Kaggle set used."""


def aami_labels(symbols: Sequence[str]) -> np.ndarray:
    """Map annotation symbols to AAMI labels; -1 marks a non-beat annotation (rhythm, noise, ...)."""
    return np.fromiter((SYMBOL_TO_AAMI.get(s, -1) for s in symbols), dtype=np.int64, count=len(symbols))


def _check_fs(fs: float) -> float:
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise DataError(f"sampling rate {fs!r} is not a number") from None
    if not np.isfinite(fs) or not MIN_FS <= fs <= MAX_FS:
        raise DataError(
            f"sampling rate {fs!r} Hz is outside {MIN_FS:g}..{MAX_FS:g} Hz; check the record header"
        )
    return fs


def _check_signal(signal: np.ndarray) -> np.ndarray:
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


def _ratio(fs: float, target_fs: float) -> Fraction:
    return Fraction(target_fs / fs).limit_denominator(1000)


def resample(signal: np.ndarray, fs: float, target_fs: float = TARGET_FS) -> np.ndarray:
    """Resample with a polyphase anti-aliasing filter, so 360 Hz and 1000 Hz records give the same beats."""
    x = _check_signal(signal)
    ratio = _ratio(_check_fs(fs), _check_fs(target_fs))
    if ratio == 1:
        return x.copy()
    return resample_poly(x, ratio.numerator, ratio.denominator)


def resample_peaks(samples: np.ndarray, fs: float, n_out: int, target_fs: float = TARGET_FS) -> np.ndarray:
    """Map sample indices at ``fs`` onto the resampled grid (nearest sample, inside ``[0, n_out)``)."""
    s = np.asarray(samples)
    if s.ndim != 1 or (s.size and not np.issubdtype(s.dtype, np.integer)):
        raise DataError("R-peak positions must be a 1-D array of integer sample indices")
    ratio = _ratio(_check_fs(fs), _check_fs(target_fs))
    mapped = np.rint(s.astype(np.float64) * float(ratio)).astype(np.int64)
    return np.clip(mapped, 0, max(int(n_out) - 1, 0))


def normalise_windows(signal: np.ndarray, fs: float = TARGET_FS, window_s: float = WINDOW_S) -> np.ndarray:
    """Min-max normalise each ``window_s`` window to [0, 1] (a flat window becomes 0).

    Per-window scaling is what makes one fixed threshold (0.9) work across
    records with different gains and slow baseline drift.
    """
    x = _check_signal(signal)
    window = max(1, round(window_s * _check_fs(fs)))
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
    x = _check_signal(normalised)
    distance = round(refractory_s * _check_fs(fs))
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
    x = _check_signal(normalised)
    window = max(1, round(window_s * _check_fs(fs)))
    n_full = x.size // window
    if n_full:
        level = np.median(np.median(x[: n_full * window].reshape(n_full, window), axis=1))
    else:
        level = np.median(x)
    return bool(level > 0.5)


def _check_peaks(peaks: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(peaks)
    if p.ndim != 1 or (p.size and not np.issubdtype(p.dtype, np.integer)):
        raise DataError("R-peak positions must be a 1-D array of integer sample indices")
    p = p.astype(np.int64)
    if p.size and (p.min() < 0 or p.max() >= n):
        raise DataError(f"R-peak positions must lie inside the signal (0..{n - 1}), got {p.min()}..{p.max()}")
    if p.size > 1 and (np.diff(p) < 0).any():
        raise DataError("R-peak positions must be sorted in time")
    return p


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
    fs = _check_fs(fs)
    p = _check_peaks(peaks, max(int(n_samples), 1))
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
    x = _check_signal(signal)
    p = _check_peaks(peaks, x.size)
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
    idx = np.minimum(p[:, None] + cols[None, :], x.size - 1)
    inside = cols[None, :] < seg_len[:, None]
    values = x[idx]
    if scaling == "beat":
        low = _range_reduce(np.minimum, x, p, p + seg_len)[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            span = _range_reduce(np.maximum, x, p, p + seg_len)[:, None] - low
            values = np.divide(values - low, span, out=np.zeros_like(values), where=span > 0)
    beats = np.where(inside, np.clip(values, 0.0, 1.0), 0.0)
    if not np.isfinite(beats).all():  # amplitudes near the float64 limit overflow when scaled
        raise DataError("the ECG lead's amplitudes are too large to scale; check the record's units")
    return beats.astype(np.float32), kept


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
    fs = _check_fs(fs)
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
        original = _check_peaks(peaks, np.asarray(signal).size)
        p125 = resample_peaks(original, fs, x.size)
    T = nominal_periods(p125, x.size, TARGET_FS, window_s)
    source = x if scaling == "beat" else normalised
    X, kept = segment_beats(source, p125, T, scaling=scaling)
    if require_next and kept.size and kept[-1]:
        kept[-1] = False
        X = X[:-1]
    index = np.flatnonzero(kept)
    return Segmented(X=X, index=index, peaks=original, periods=T[index] / TARGET_FS, inverted=inverted)


def rr_features(samples: np.ndarray, fs: float, n_local: int = LOCAL_RR_BEATS) -> dict[str, np.ndarray]:
    """Rhythm features per R-peak, in seconds and relative to the record's mean R-R.

    Premature beats (S, V) are told apart from normal ones largely by timing,
    which a 187-sample window loses, so we keep it alongside. ``rr_local`` is
    the mean of the ``n_local`` R-R intervals centred on the beat (fewer at the
    record's edges). The first beat has no ``rr_pre`` and the last no
    ``rr_post``: those are NaN rather than invented.
    """
    fs = _check_fs(fs)
    s = np.asarray(samples, dtype=np.float64)
    n = s.size
    nan = np.full(n, np.nan)
    if n < 2:
        return {
            k: nan.copy()
            for k in ("rr_pre", "rr_post", "rr_local", "rr_pre_norm", "rr_post_norm", "rr_local_norm")
        }
    rr = np.diff(s) / fs
    pre, post = nan.copy(), nan.copy()
    pre[1:], post[:-1] = rr, rr
    half = max(n_local // 2, 1)
    i = np.arange(n)
    lo = np.clip(i - half, 0, rr.size)
    hi = np.clip(i + half, 0, rr.size)
    csum = np.concatenate([[0.0], np.cumsum(rr)])
    local = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)
    mean_rr = rr.mean()
    scale = mean_rr if mean_rr > 0 else np.nan
    return {
        "rr_pre": pre,
        "rr_post": post,
        "rr_local": local,
        "rr_pre_norm": pre / scale,
        "rr_post_norm": post / scale,
        "rr_local_norm": local / scale,
    }


@dataclass(frozen=True)
class DetectorScore:
    """Beat-by-beat agreement of a detector with reference annotations."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def sensitivity(self) -> float:
        """Share of annotated beats found (Se)."""
        total = self.true_positives + self.false_negatives
        return self.true_positives / total if total else float("nan")

    @property
    def positive_predictivity(self) -> float:
        """Share of detections that are real beats (+P)."""
        total = self.true_positives + self.false_positives
        return self.true_positives / total if total else float("nan")

    def as_dict(self) -> dict[str, float | int]:
        return {
            "tp": self.true_positives,
            "fp": self.false_positives,
            "fn": self.false_negatives,
            "sensitivity": self.sensitivity,
            "positive_predictivity": self.positive_predictivity,
        }


def _nearest(sorted_ref: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index into ``sorted_ref`` of the nearest element to each query value."""
    right = np.clip(np.searchsorted(sorted_ref, query), 0, sorted_ref.size - 1)
    left = np.clip(right - 1, 0, sorted_ref.size - 1)
    use_left = np.abs(query - sorted_ref[left]) <= np.abs(sorted_ref[right] - query)
    return np.where(use_left, left, right)


def match_peaks(
    detected: np.ndarray, reference: np.ndarray, fs: float, tolerance_s: float = TOLERANCE_S
) -> np.ndarray:
    """For each detection, the index of its matched reference beat, or -1.

    A pair matches when each is the other's nearest neighbour and they are at
    most ``tolerance_s`` apart, so each reference beat is matched at most once.
    """
    fs = _check_fs(fs)
    det = np.asarray(detected, dtype=np.int64)
    ref = np.asarray(reference, dtype=np.int64)
    out = np.full(det.size, -1, dtype=np.int64)
    if det.size == 0 or ref.size == 0:
        return out
    d_order, r_order = np.argsort(det, kind="stable"), np.argsort(ref, kind="stable")
    det_s, ref_s = det[d_order], ref[r_order]
    to_ref = _nearest(ref_s, det_s)
    to_det = _nearest(det_s, ref_s)
    mutual = to_det[to_ref] == np.arange(det_s.size)
    close = np.abs(det_s - ref_s[to_ref]) <= tolerance_s * fs
    hit = mutual & close
    out[d_order[hit]] = r_order[to_ref[hit]]
    return out


def score_detector(
    detected: np.ndarray, reference: np.ndarray, fs: float, tolerance_s: float = TOLERANCE_S
) -> DetectorScore:
    """Sensitivity and positive predictivity of ``detected`` against ``reference`` (same rate ``fs``)."""
    matched = match_peaks(detected, reference, fs, tolerance_s)
    tp = int((matched >= 0).sum())
    return DetectorScore(
        true_positives=tp,
        false_positives=int(np.asarray(detected).size - tp),
        false_negatives=int(np.asarray(reference).size - tp),
    )


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
