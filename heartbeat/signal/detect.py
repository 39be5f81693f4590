"""Finding R-peaks in a lead that has no annotations, and scoring a detector against annotations.

:func:`r_peaks` is wfdb's XQRS followed by ``correct_peaks``, which moves each detection onto the
local extremum of the QRS within 50 ms, where MIT-BIH's annotations sit. Chosen by measured
accuracy on the 26 shared MIT-BIH records (BENCHMARKS.md, "R-peak detection"): among wfdb's XQRS,
neurokit2's detectors, biosppy's Hamilton and sleepecg it is among the best at 50 ms and 150 ms
tolerance, keeps its accuracy from 125 to 500 Hz, and adds no dependency (wfdb reads the records).

A detection and an annotated beat match when each is the other's nearest neighbour and they are at
most ``tolerance_s`` apart (AAMI EC57 uses 150 ms).
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from functools import cache

import numpy as np

from heartbeat.core.errors import DataError
from heartbeat.signal.checks import check_fs, check_signal

TOLERANCE_S = 0.150
"""A detection within this distance of an annotated beat counts as a hit (AAMI EC57)."""
MIN_DETECTOR_FS = 50.0
"""XQRS band-passes 5-20 Hz; below 50 Hz that band is not there to find."""
SNAP_S = 0.05
"""How far ``correct_peaks`` may move a detection onto the QRS extremum."""
SNAP_WINDOW_S = 0.15
"""The smoothing window ``correct_peaks`` subtracts before looking for the extremum (baseline)."""
PEAK_BLOCK = 1 << 20
"""Samples searched for local peaks at a time (:func:`local_peaks`)."""
FIR_BLOCK = 1 << 18
"""Output samples of :func:`fir_filtfilt_squared` computed at a time."""
WIDE_QRS_HALF_S = 0.06
"""±60 ms around a point: the QRS that :func:`wide_beats` measures there (peak-to-peak, steepest slope)."""
WIDE_MIN_SIZE, WIDE_MIN_SLOPE = 0.5, 0.25
"""A wide beat's QRS peak-to-peak and steepest slope, at least these shares of the median detected
beat's: on the shared MIT-BIH records the beats XQRS misses stand far above the other deflections
between beats (T and P waves, noise) on both (``python bench/bench_detector.py --missed``)."""
WIDE_AFTER_S, WIDE_BEFORE_S = 0.3, 0.2
"""A wide beat lies at least this long after the beat before it and before the next detected one:
closer, a deflection is that beat's own QRS or T wave."""
WIDE_BLOCK = 1 << 20
"""Samples of the lead baseline-filtered at a time by :func:`wide_beats` (plus a margin each side)."""


def local_peaks(sig: np.ndarray, radius: int) -> np.ndarray:
    """wfdb's ``find_local_peaks``, vectorised, with the same result to the sample.

    wfdb walks the signal in Python: sample ``i`` is a peak when it equals the maximum of
    ``sig[max(i - radius, 0) : i + radius]``, and after a peak it skips to ``i + radius``; XQRS walks
    its two filtered copies of the lead so, about 2.5 s an hour of recording. Here the window maxima come from
    one sliding maximum (a window of ``2 * radius`` samples whose ends clamp to the signal's, as the
    slices do), and only the samples that equal theirs are walked, keeping each that lies at least
    ``radius`` after the last one kept: the samples wfdb skips are exactly those. Signals the
    sliding maximum cannot stand for (too short for wfdb's walk, non-finite, a radius below 1) go
    to wfdb's own function, so its errors stay its own."""
    from scipy.ndimage import maximum_filter1d
    from wfdb.processing import peaks as wfdb_peaks

    x = np.asarray(sig)
    if radius < 1 or x.ndim != 1 or x.size <= 2 * radius + 1 or not np.isfinite(x).all():
        return wfdb_peaks.find_local_peaks(sig, radius)
    if np.min(x) == np.max(x):
        return np.empty(0)
    # In blocks with ``radius`` samples of margin on each side: every window lies inside its
    # block, so the maxima are the whole signal's, and the temporaries stay a block's.
    found = []
    for start in range(0, x.size, PEAK_BLOCK):
        lo, hi = max(start - radius, 0), min(start + PEAK_BLOCK + radius, x.size)
        block = x[lo:hi]
        hit = np.flatnonzero(block == maximum_filter1d(block, 2 * radius, mode="nearest")) + lo
        found.append(hit[(hit >= start) & (hit < start + PEAK_BLOCK)])
    candidates = np.concatenate(found)
    if candidates.size > 1 and np.diff(candidates).min() < radius:  # plateaus: walk them
        kept, last = [], -radius
        for i in candidates.tolist():
            if i >= last + radius:
                kept.append(i)
                last = i
        candidates = np.array(kept, dtype=candidates.dtype)
    return candidates.astype(np.int64) if candidates.size else np.array([])


def _lfilter(b: np.ndarray, a: np.ndarray, x: np.ndarray, zi: np.ndarray) -> np.ndarray:
    """``scipy.signal.lfilter(b, a, x, zi=zi)[0]`` for a 1-D float64 ``x``. An FIR filter (``a`` of
    length 1) is run as lfilter runs it, by ``np.convolve``, without the copy of the whole output
    that lfilter's ``apply_along_axis`` makes."""
    from scipy.signal import lfilter

    if len(a) != 1:
        return lfilter(b, a, x, zi=zi)[0]
    taps = np.array(b, dtype=np.float64)
    taps /= np.asarray(a, dtype=np.float64)[0]
    full = np.convolve(taps, x)
    full[: zi.size] += zi
    return full[: full.size - taps.size + 1]


def _filtfilt(b: np.ndarray, a: np.ndarray, x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``scipy.signal.filtfilt(b, a, x)`` with its defaults (odd padding of three times the taps,
    method "pad"), step for step, for the 1-D float64 leads XQRS filters: the padded copy is dropped
    before the backward pass and FIR passes skip a copy (:func:`_lfilter`), so at its peak it holds
    two arrays as long as the lead where scipy's holds four. Anything else goes to scipy's own."""
    from scipy.signal import filtfilt, lfilter_zi
    from scipy.signal._arraytools import odd_ext

    b, a, x = np.atleast_1d(b), np.atleast_1d(a), np.asarray(x)
    edge = 3 * max(len(a), len(b))
    if x.ndim != 1 or axis not in (0, -1) or x.dtype != np.float64 or x.size <= edge:
        return filtfilt(b, a, x, axis=axis)
    zi = lfilter_zi(b, a)
    ext = odd_ext(x, edge)
    y = _lfilter(b, a, ext, zi * ext[:1])
    del ext
    start = zi * y[-1:]
    y = y[::-1].copy()  # the filters copy a reversed view anyway; this way the forward pass can go first
    y = _lfilter(b, a, y, start)
    return y[::-1][edge:-edge]


def fir_filtfilt_squared(taps: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``_filtfilt(taps, [1], x) ** 2`` for a 1-D float64 ``x``, to the bit, computed
    :data:`FIR_BLOCK` samples at a time into the one output array (XQRS's moving-wave integration).

    With ``a = [1]`` both passes of filtfilt are convolutions, and no output sample depends on the
    passes' initial states: those touch only the first ``len(taps) - 1`` samples of each pass, inside
    the ``3 * len(taps)`` samples of odd padding that are cut off. Output ``j`` is the backward pass
    over forward outputs ``j .. j + len(taps) - 1``, each the forward pass over ``len(taps)`` padded
    input samples; so a block needs its input with ``len(taps) - 1`` samples of margin each side, and
    each sample is the same dot product of the same numbers as in the whole-array passes. The
    whole-array version holds the padded copy, both passes and the square (four arrays as long as the
    lead at its peak); this holds the output and a block's temporaries."""
    from scipy.signal._arraytools import odd_ext

    taps = np.asarray(taps, dtype=np.float64) / 1.0  # as _lfilter divides by a[0] = 1
    x = np.asarray(x)
    m = taps.size
    edge, reach = 3 * m, m - 1
    if x.ndim != 1 or x.dtype != np.float64 or x.size <= edge or m < 1:
        return _filtfilt(taps, np.ones(1), x) ** 2
    n = x.size
    left = odd_ext(x[: edge + 1], edge)[:edge]  # the padding's values, as odd_ext gives them for all of x
    right = odd_ext(x[-(edge + 1) :], edge)[-edge:]

    def padded(lo: int, hi: int) -> np.ndarray:
        """Samples ``lo:hi`` of the padded lead (``edge`` padding samples, the lead, ``edge`` more)."""
        if lo >= edge and hi <= edge + n:
            return x[lo - edge : hi - edge]
        parts = [left[max(lo, 0) : min(hi, edge)], x[max(lo - edge, 0) : max(min(hi - edge, n), 0)]]
        parts.append(right[max(lo - edge - n, 0) : max(hi - edge - n, 0)])
        return np.concatenate(parts)

    out = np.empty(n, dtype=np.float64)
    # At least 2 samples a block: np.convolve puts the longer array first, and a block of 1 would give
    # the backward pass an input as long as the taps, whose sums it would then take in the other order.
    block = max(FIR_BLOCK, 2)
    for start in range(0, n, block):
        j0, j1 = min(start, n - 2), min(start + block, n)
        forward = np.convolve(taps, padded(edge + j0 - reach, edge + j1 + reach), mode="valid")
        backward = np.convolve(taps, forward[::-1].copy(), mode="valid")
        np.square(backward[::-1], out=out[j0:j1])
    return out


class _FiltfiltToSquare:
    """What ``signal.filtfilt(wavelet, [1], sig_f, axis=0)`` stands for in wfdb's ``XQRS._mwi``, which
    squares it at once: ``** 2`` gives :func:`fir_filtfilt_squared`, the same bits without the
    whole-array temporaries; any other use is not what that method does, and raises."""

    def __init__(self, b: np.ndarray, a: np.ndarray, x: np.ndarray, axis: int = -1) -> None:
        self.b, self.a, self.x, self.axis = b, np.atleast_1d(a), x, axis

    def __pow__(self, power: object) -> np.ndarray:
        if power != 2 or self.axis not in (0, -1) or self.a.shape != (1,) or self.a[0] != 1:
            raise TypeError(f"not wfdb's moving-wave integration: filtfilt(..., a={self.a!r}) ** {power!r}")
        return fir_filtfilt_squared(self.b, self.x)


@cache
def _xqrs_class() -> type:
    """wfdb's XQRS with :func:`local_peaks` in place of its local-peak search, :func:`_filtfilt`
    in place of scipy's and, in the moving-wave integration, :func:`fir_filtfilt_squared` in place of
    filtfilt and the square: its own methods, run with those names bound differently, so every rule of
    the detector stays wfdb's."""
    from types import SimpleNamespace

    from scipy import signal
    from wfdb.processing import qrs

    lean_signal = SimpleNamespace(butter=signal.butter, filtfilt=_filtfilt)
    mwi_signal = SimpleNamespace(filtfilt=_FiltfiltToSquare)

    def rebound(method: types.FunctionType, lean: SimpleNamespace = lean_signal) -> types.FunctionType:
        names = {**method.__globals__, "find_local_peaks": local_peaks, "signal": lean}
        return types.FunctionType(method.__code__, names, method.__name__, method.__defaults__)

    methods = {name: rebound(getattr(qrs.XQRS, name)) for name in ("_bandpass", "_learn_init_params")}
    methods["_mwi"] = rebound(qrs.XQRS._mwi, mwi_signal)
    return type("FastXQRS", (qrs.XQRS,), methods)


def _qrs_measures(xb: np.ndarray, at: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Peak-to-peak and steepest slope (per sample) of ``xb`` within ±``half`` samples of each of ``at``."""
    from heartbeat.signal.patient import centred_windows

    W = centred_windows(xb, at, half, half + 1)
    return W.max(axis=1) - W.min(axis=1), np.abs(np.diff(W, axis=1)).max(axis=1)


def wide_candidates(x: np.ndarray, fs: float, found: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The places between the detections ``found`` (sorted samples of the lead ``x`` at ``fs``) where a
    beat could hide: every largest deflection of the baseline-free lead (the largest within 200 ms
    each side) at least :data:`WIDE_AFTER_S` after the detection before it and :data:`WIDE_BEFORE_S`
    before the next. Their samples, and their QRS peak-to-peak and steepest slope (±60 ms) as shares
    of the median detected beat's. The lead is baseline-filtered a block at a time, so a day's
    recording costs a block's temporaries."""
    from scipy.ndimage import maximum_filter1d

    from heartbeat.signal.patient import remove_baseline

    found = np.asarray(found, dtype=np.int64)
    if found.size < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    half, radius = max(1, round(WIDE_QRS_HALF_S * fs)), max(1, round(0.2 * fs))
    margin = round(1.0 * fs)  # past the reach of the baseline filters' 0.2 s and 0.6 s windows
    sizes, slopes, cand, cand_size, cand_slope = [], [], [], [], []
    for start in range(0, x.size, WIDE_BLOCK):
        lo, hi = max(start - margin, 0), min(start + WIDE_BLOCK + margin, x.size)
        xb = remove_baseline(np.asarray(x[lo:hi], dtype=np.float64), fs)
        inside = found[(found >= start) & (found < start + WIDE_BLOCK)]
        size, slope = _qrs_measures(xb, inside - lo, half)
        sizes.append(size)
        slopes.append(slope)
        a = np.abs(xb)
        peaks = np.flatnonzero((a == maximum_filter1d(a, 2 * radius + 1, mode="nearest")) & (a > 0)) + lo
        peaks = peaks[(peaks >= start) & (peaks < start + WIDE_BLOCK)]
        after = np.searchsorted(found, peaks)  # the detection after each peak
        before_gap = peaks - found[np.maximum(after - 1, 0)]
        after_gap = found[np.minimum(after, found.size - 1)] - peaks
        far = (after > 0) & (after < found.size)
        far &= (before_gap >= WIDE_AFTER_S * fs) & (after_gap >= WIDE_BEFORE_S * fs)
        peaks = peaks[far]
        size, slope = _qrs_measures(xb, peaks - lo, half)
        cand.append(peaks)
        cand_size.append(size)
        cand_slope.append(slope)
    typical_size = max(float(np.median(np.concatenate(sizes))), 1e-12)
    typical_slope = max(float(np.median(np.concatenate(slopes))), 1e-12)
    return (
        np.concatenate(cand),
        np.concatenate(cand_size) / typical_size,
        np.concatenate(cand_slope) / typical_slope,
    )


def wide_beats(x: np.ndarray, fs: float, found: np.ndarray) -> np.ndarray:
    """Beats between the detections ``found`` (sorted samples of the lead ``x`` at ``fs``) that XQRS
    passes over: sorted samples, none of them in ``found``.

    XQRS looks for QRS energy in the 5-20 Hz band. A wide ventricular beat has little there, below
    XQRS's threshold even in its search-back: on the shared MIT-BIH records XQRS misses 11% of the
    ventricular beats (a fifth to three fifths in 106, 124 and 208), which no later step can
    classify (BENCHMARKS.md, "R-peak detection"). Such a beat is still as tall as a QRS in the
    baseline-free lead: a place :func:`wide_candidates` finds is a beat when its QRS peak-to-peak and
    steepest slope reach :data:`WIDE_MIN_SIZE` and :data:`WIDE_MIN_SLOPE` of the median detected
    beat's; taken in time order, so a beat found here is the beat before the next candidate."""
    found = np.asarray(found, dtype=np.int64)
    cand, size, slope = wide_candidates(x, fs, found)
    cand = cand[(size >= WIDE_MIN_SIZE) & (slope >= WIDE_MIN_SLOPE)]
    kept: list[int] = []
    last = -np.inf
    for p in cand.tolist():  # a beat kept here moves "the beat before" the next candidate
        previous = max(last, float(found[np.searchsorted(found, p) - 1]))
        if p - previous >= WIDE_AFTER_S * fs:
            kept.append(p)
            last = p
    return np.array(kept, dtype=np.int64)


def xqrs_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices of one lead (any rate), by wfdb's XQRS and ``correct_peaks`` alone;
    sorted, unique."""
    import logging

    from wfdb import processing

    fs = check_fs(fs)
    if fs < MIN_DETECTOR_FS:
        raise DataError(f"the R-peak detector needs at least {MIN_DETECTOR_FS:g} Hz, the lead has {fs:g} Hz")
    x = check_signal(signal)
    wfdb_log = logging.getLogger("wfdb")
    level = wfdb_log.level
    wfdb_log.setLevel(logging.ERROR)  # XQRS logs its learning phase at INFO
    try:
        xqrs = _xqrs_class()(sig=x, fs=fs)
        xqrs.detect(verbose=False)
        found = np.asarray(xqrs.qrs_inds, dtype=np.int64)
    except (ValueError, IndexError) as exc:  # too short or degenerate for its learning phase
        raise DataError(f"the R-peak detector found no usable QRS complexes ({exc})") from None
    finally:
        wfdb_log.setLevel(level)
    del xqrs  # its filtered copies of the lead are as long as the lead
    if found.size == 0:
        return found
    snapped = processing.correct_peaks(
        x,
        found,
        search_radius=max(1, round(SNAP_S * fs)),
        smooth_window_size=max(1, round(SNAP_WINDOW_S * fs)),
        peak_dir="compare",
    )
    snapped = np.asarray(snapped, dtype=np.int64)
    return np.unique(np.clip(snapped[snapped >= 0], 0, x.size - 1))


def r_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices of one lead (any rate): :func:`xqrs_peaks`, and the wide beats XQRS
    misses (:func:`wide_beats`); sorted, unique."""
    found = xqrs_peaks(signal, fs)
    return np.union1d(found, wide_beats(np.asarray(signal), check_fs(fs), found))


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
    fs = check_fs(fs)
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
