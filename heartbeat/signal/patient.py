"""Each beat against its own patient: the inputs of the model that has to work on patients it never saw.

A network trained on some patients' beats learns their shapes; on a new patient the shapes differ
while the relations hold: a premature beat comes early *for this patient's rhythm*, an ectopic beat
looks unlike *this patient's usual beat*. So every input here is taken relative to the record
itself, with no labels (de Chazal et al. 2004; Llamedo and Martínez 2011; measured on the shared
DS1 records in BENCHMARKS.md, "New patients"):

* ``window``: ``(n, 125, 2)``, each beat from 0.4 s before its R-peak to 0.6 s after (the P wave,
  QRS and T), both leads, at 125 Hz, baseline removed, divided by the record's typical QRS amplitude;
* ``patient``: ``(n, 80)`` features (:data:`PATIENT_COLUMNS`): 40 of the beat (:data:`BEAT_COLUMNS`):
  R-R intervals against the record's median and the local median, local irregularity and
  prematurity; each beat's P, QRS, ST-T and whole window against the record's median beat, per
  lead; QRS amplitude against the record's; the previous and next beat's values of a few of them.
  Then each of the 40 as a robust z-score over the record (:func:`record_standardised`).

One record with one lead gets its first lead twice, the way the model saw 30% of its training beats
(:class:`heartbeat.model.architectures.LeadDropout`). Every function is pure and works on ONE record:
its leads and the R-peak samples of all its beats, sorted.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import median_filter

from heartbeat.signal.checks import check_fs
from heartbeat.signal.segment import BLOCK_BEATS, TARGET_FS, resample

WINDOW_BEFORE, WINDOW_AFTER = 50, 75
"""The model's window: R-50 .. R+74 samples at 125 Hz (-0.400 s .. +0.592 s), R-peak at index 50."""
WIDE = 96
"""Half-width of the window the template and amplitude features are measured on (±0.77 s)."""
QRS_HALF = 12
"""±12 samples at 125 Hz (±96 ms) around the R-peak: where the QRS amplitude is measured."""
LOCAL_HALF = 10
"""The local rhythm of a beat: the 20 R-R intervals around it."""
PREVIOUS = 10
"""The rhythm just before a beat: the 10 R-R intervals before its own."""
LEADS = 2
"""Leads the model takes; a record with one lead repeats it."""

RR_COLUMNS: tuple[str, ...] = (
    "pre_s",
    "post_s",
    "pre_rec",
    "post_rec",
    "pre_loc",
    "post_loc",
    "pre_prev",
    "post_pre",
    "pre_prevpre",
    "nextpost_post",
    "loc_rec",
    "loc_irreg",
    "pre_z",
    "post_z",
)
"""R-R features: pre/post R-R in seconds, then log2 ratios against the record's median R-R (rec),
the local median (loc), the previous 10 intervals (prev), each other and the neighbours'; the local
irregularity; pre/post as robust z-scores of the local rhythm."""

PARTS_S: dict[str, tuple[float, float]] = {
    "p": (-0.30, -0.064),
    "qrs": (-0.064, 0.096),
    "t": (0.096, 0.45),
    "all": (-0.30, 0.45),
}
"""Parts of a beat, in seconds from its R-peak: P wave and PR, QRS, ST-T, and all of it."""
PART_COLUMNS: tuple[str, ...] = tuple(f"{m}_{p}" for p in PARTS_S for m in ("corr", "rms"))
NEIGHBOUR_OF: tuple[str, ...] = ("pre_rec", "lead1_rms_all", "lead1_rms_p", "lead1_rms_qrs")
"""The features whose previous- and next-beat values are inputs too (a run of ectopic beats)."""

BEAT_COLUMNS: tuple[str, ...] = (
    *RR_COLUMNS,
    *(f"lead1_{c}" for c in PART_COLUMNS),
    *(f"lead2_{c}" for c in PART_COLUMNS),
    "lead1_qrs_amp",
    "lead2_qrs_amp",
    *(f"prev_{c}" for c in NEIGHBOUR_OF),
    *(f"next_{c}" for c in NEIGHBOUR_OF),
)
"""The 40 features of a beat, before they are standardised over its record."""
STANDARDISED = "_rz"
"""Suffix of a feature's robust z-score over its record (:func:`record_standardised`)."""
PATIENT_COLUMNS: tuple[str, ...] = (*BEAT_COLUMNS, *(f"{c}{STANDARDISED}" for c in BEAT_COLUMNS))
"""The columns of the ``patient`` input, in order: the 40 features, then each one's z-score over the record."""
Z_SCALE, Z_FLOOR, Z_CLIP = 5.0, 1e-2, 10.0
"""A z-score is clipped to ±``Z_CLIP`` and divided by ``Z_SCALE`` (inputs within ±2); a feature whose
spread over the record is below ``Z_FLOOR`` is measured against that floor."""
WINDOW_SHAPE = (WINDOW_BEFORE + WINDOW_AFTER, LEADS)
LATE_QUANTILE, ON_TIME, REGULAR, LEAST_REGULAR, LEAST_REFERENCE = 0.8, 0.85, 0.15, 1 / 3, 0.03
""":func:`rhythm_reference`: a beat is regular when its pre- and post-R-R differ by at most 0.15 in
log2 (about 11%), and on time when its pre-R-R is at least 85% of the 80th percentile of pre-R-R
(below it, a premature beat or a faster ectopic run). A recording needs a third of its beats regular
for a rhythm reference: in the 22 DS1 records, sinus rhythm with ectopy has 41-100%, atrial
fibrillation, flutter and runs of ventricular couplets 21-29%. A reference holds at least 3% of the
beats it is chosen among."""


def second_lead_columns() -> tuple[np.ndarray, np.ndarray]:
    """Indices of the lead-2 columns of :data:`PATIENT_COLUMNS` and of their lead-1 counterparts,
    for repeating lead 1 where a record has no second lead."""
    two = [i for i, c in enumerate(PATIENT_COLUMNS) if c.startswith("lead2_")]
    one = [PATIENT_COLUMNS.index("lead1_" + PATIENT_COLUMNS[i].removeprefix("lead2_")) for i in two]
    return np.array(two), np.array(one)


def remove_baseline(x: np.ndarray, fs: float = TARGET_FS) -> np.ndarray:
    """Baseline wander removed as de Chazal et al. 2004 do: subtract a 200 ms then a 600 ms median filter."""
    short, long = round(0.2 * fs) | 1, round(0.6 * fs) | 1
    return x - median_filter(median_filter(x, short, mode="nearest"), long, mode="nearest")


def centred_windows(x: np.ndarray, peaks: np.ndarray, before: int, after: int) -> np.ndarray:
    """``(n, before + after)``: ``x[p - before : p + after]`` for each peak; outside the lead counts as 0,
    the isoelectric level of a baseline-free lead."""
    peaks = np.asarray(peaks, dtype=np.int64)
    offsets = np.arange(-before, after)[None, :]
    out = np.empty((peaks.size, before + after), dtype=np.result_type(x, 0.0))
    for start in range(0, peaks.size, BLOCK_BEATS):  # the index temporaries stay a block's
        idx = peaks[start : start + BLOCK_BEATS, None] + offsets
        inside = (idx >= 0) & (idx < x.size)
        out[start : start + BLOCK_BEATS] = np.where(inside, x[np.clip(idx, 0, max(x.size - 1, 0))], 0.0)
    return out


def wide_windows(lead: np.ndarray, fs: float, samples: np.ndarray) -> np.ndarray:
    """``(n, 2 * WIDE)`` float64: the baseline-free ``lead`` (at ``fs``) resampled to 125 Hz, around each
    R-peak of ``samples`` (at ``fs``). The resampled lead is let go on return: the windows are all that
    is measured from here."""
    x = remove_baseline(resample(lead, fs))
    peaks = np.clip(np.rint(np.asarray(samples) * (TARGET_FS / fs)).astype(np.int64), 0, max(x.size - 1, 0))
    return centred_windows(x, peaks, WIDE, WIDE)


def record_amplitude(
    W: np.ndarray, centre: int = WIDE, half: int = QRS_HALF, reference: np.ndarray | None = None
) -> float:
    """The record's typical QRS amplitude: the median over its beats (the ``reference`` rows, if given)
    of the peak-to-peak range within ±``half`` samples of the R-peak (1.0 for a record without any)."""
    W = W if reference is None else W[reference]
    if len(W) == 0:
        return 1.0
    seg = W[:, centre - half : centre + half + 1]
    amp = float(np.median(seg.max(axis=1) - seg.min(axis=1)))
    return amp if amp > 1e-6 else 1.0


def _log_ratio(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    return np.clip(np.log2(np.maximum(a, 1e-3) / np.maximum(b, 1e-3)), -2.0, 2.0)


def _windowed_median(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, centre: np.ndarray | None = None
) -> np.ndarray:
    """``median(values[lo[i]:hi[i]])`` for every i, or with ``centre`` the median absolute deviation
    from ``centre[i]``; NaN where a window is empty. Grouped by window length, one call per length."""
    out = np.full(lo.size, np.nan)
    lengths = hi - lo
    for length in np.unique(lengths[lengths > 0]):
        rows = np.flatnonzero(lengths == length)
        windows = sliding_window_view(values, int(length))[lo[rows]]
        if centre is not None:
            windows = np.abs(windows - centre[rows, None])
        out[rows] = np.median(windows, axis=1)
    return out


def rr_features(samples: np.ndarray, fs: float, reference: np.ndarray | None = None) -> np.ndarray:
    """``(n, 14)`` R-R features of one record's beats (:data:`RR_COLUMNS`), from its R-peak samples at ``fs``.

    The record's median R-R is that of the ``reference`` beats' pre-R-R (all beats by default); the
    local medians are always the beat's true neighbours.

    The first beat's missing pre-R-R takes its post-R-R and the last beat's missing post-R-R its
    pre-R-R; a record with fewer than three beats has no rhythm to compare with and gets zeros.
    """
    fs = check_fs(fs)
    s = np.asarray(samples, dtype=np.float64)
    n = s.size
    if n < 3:
        return np.zeros((n, len(RR_COLUMNS)), dtype=np.float32)
    rr = np.diff(s) / fs  # rr[j]: from beat j to beat j+1
    pre = np.concatenate([[rr[0]], rr])
    post = np.concatenate([rr, [rr[-1]]])
    rec_med = float(np.median(rr if reference is None else pre[reference]))
    i = np.arange(n)
    lo, hi = np.clip(i - LOCAL_HALF, 0, rr.size), np.clip(i + LOCAL_HALF, 0, rr.size)
    loc_med = _windowed_median(rr, lo, hi)
    loc_med = np.where(np.isfinite(loc_med), loc_med, rec_med)
    prev_med = _windowed_median(rr, np.clip(i - 1 - PREVIOUS, 0, rr.size), np.clip(i - 1, 0, rr.size))
    prev_med = np.where(np.isfinite(prev_med), prev_med, loc_med)
    step = np.abs(np.diff(rr))
    irregular = _windowed_median(
        step, np.clip(i - LOCAL_HALF, 0, step.size), np.clip(i + LOCAL_HALF - 1, 0, step.size)
    )
    irregular = np.where(np.isfinite(irregular), irregular, 0.0) / np.maximum(loc_med, 1e-3)
    # The spread of the local intervals, at least 2% of them (a perfectly regular rhythm).
    mad = np.nan_to_num(_windowed_median(rr, lo, hi, centre=loc_med), nan=0.0)
    spread = np.maximum(mad, 0.02 * loc_med)
    prev_pre = np.concatenate([pre[:1], pre[:-1]])
    next_post = np.concatenate([post[1:], post[-1:]])
    columns = (
        np.clip(pre, 0, 3),
        np.clip(post, 0, 3),
        _log_ratio(pre, rec_med),
        _log_ratio(post, rec_med),
        _log_ratio(pre, loc_med),
        _log_ratio(post, loc_med),
        _log_ratio(pre, prev_med),
        _log_ratio(post, pre),
        _log_ratio(pre, prev_pre),
        _log_ratio(next_post, post),
        _log_ratio(loc_med, rec_med),
        np.clip(irregular, 0.0, 2.0),
        np.clip((pre - loc_med) / spread, -10.0, 10.0) / 5.0,
        np.clip((post - loc_med) / spread, -10.0, 10.0) / 5.0,
    )
    return np.stack(columns, axis=1).astype(np.float32)


def part_features(
    W: np.ndarray, centre: int = WIDE, fs: float = TARGET_FS, reference: np.ndarray | None = None
) -> np.ndarray:
    """``(n, 8)`` (:data:`PART_COLUMNS`): each beat's parts against the same parts of the record's median
    beat: Pearson correlation, and log2 of the RMS difference over the record's median RMS difference
    (how unusual the beat is for this patient), clipped to [-3, 3]. The median beat and the median RMS
    difference are those of the ``reference`` rows (all beats by default).

    The median beat is taken a column at a time and the rest :data:`BLOCK_BEATS` beats at a time, each
    beat's arithmetic its own: the same bits as all at once, without the copies of every window
    (the reference rows, np.median's partition, a few per part) that took 0.3 GB on a day's Holter."""
    W = np.asarray(W, dtype=np.float64)
    if len(W) == 0:
        return np.zeros((0, len(PART_COLUMNS)), dtype=np.float32)
    ref = slice(None) if reference is None else reference
    T = np.array([np.median(W[ref, j]) for j in range(W.shape[1])])
    bounds = [
        (max(centre + round(a * fs), 0), min(centre + round(b * fs), W.shape[1])) for a, b in PARTS_S.values()
    ]
    corr, rms = np.empty((len(W), len(bounds))), np.empty((len(W), len(bounds)))
    for start in range(0, len(W), BLOCK_BEATS):
        rows = slice(start, start + BLOCK_BEATS)
        for k, (lo, hi) in enumerate(bounds):
            S, t = W[rows, lo:hi], T[lo:hi]
            Sc, tc = S - S.mean(axis=1, keepdims=True), t - t.mean()
            den = np.linalg.norm(Sc, axis=1) * np.linalg.norm(tc)
            corr[rows, k] = np.where(den > 1e-12, (Sc @ tc) / np.maximum(den, 1e-12), 0.0)
            rms[rows, k] = np.sqrt(np.mean((S - t) ** 2, axis=1))
    out = []
    for k in range(len(bounds)):
        typical = max(float(np.median(rms[ref, k])), 1e-9)
        out += [corr[:, k], np.clip(np.log2(np.maximum(rms[:, k], 1e-9) / typical), -3.0, 3.0)]
    return np.stack(out, axis=1).astype(np.float32)


def qrs_amplitude(W: np.ndarray, amp: float, centre: int = WIDE, half: int = QRS_HALF) -> np.ndarray:
    """``(n,)``: log2 of each beat's QRS peak-to-peak over the record's typical one, clipped to [-3, 3]."""
    seg = np.asarray(W)[:, centre - half : centre + half + 1]
    return np.clip(np.log2(np.maximum(seg.max(axis=1) - seg.min(axis=1), 1e-6) / amp), -3.0, 3.0).astype(
        np.float32
    )


UNLIKE_QRS_CORR, UNLIKE_QRS_RMS = 0.7, 1.0
""":func:`unlike_qrs`: a QRS is unlike the patient's when, averaged over the two leads, its correlation
with the reference beat's QRS is below 0.7 and its RMS difference from it is more than 2^1.0 times
the typical beat's. On the 22 DS1 records at their annotated R-peaks (rhythm reference) that is 65%
of V beats, 1.6% of N beats and 73 of 943 S beats, 65 of them the aberrated beats of 201."""


def unlike_qrs(patient: np.ndarray) -> np.ndarray:
    """``(n,)`` booleans: the beats of the ``patient`` features ``(n, 80)`` (:data:`PATIENT_COLUMNS`)
    whose QRS is unlike the patient's reference beat in shape and size (:data:`UNLIKE_QRS_CORR`,
    :data:`UNLIKE_QRS_RMS`, the mean of the two leads; a one-lead recording's lead counts twice).

    A supraventricular beat reaches the ventricles by the normal path, so its QRS is the patient's
    usual one (aberrant conduction aside); a QRS far from it is ventricular, whatever its timing."""
    P = np.asarray(patient)
    if P.ndim != 2 or P.shape[1] != len(PATIENT_COLUMNS):
        raise ValueError(
            f"unlike_qrs: expected patient features of shape (n, {len(PATIENT_COLUMNS)}), got {P.shape}"
        )
    corr = P[:, [PATIENT_COLUMNS.index(f"lead{k}_corr_qrs") for k in (1, 2)]].mean(axis=1)
    rms = P[:, [PATIENT_COLUMNS.index(f"lead{k}_rms_qrs") for k in (1, 2)]].mean(axis=1)
    return (corr < UNLIKE_QRS_CORR) & (rms > UNLIKE_QRS_RMS)


def neighbours(F: np.ndarray) -> np.ndarray:
    """``(n, 2k)``: the previous and the next beat's row of ``F`` (n, k); the first beat's previous and
    the last beat's next are its own row."""
    F = np.asarray(F, dtype=np.float32)
    if len(F) == 0:
        return np.zeros((0, 2 * F.shape[1]), dtype=np.float32)
    return np.hstack([np.concatenate([F[:1], F[:-1]]), np.concatenate([F[1:], F[-1:]])])


def record_standardised(F: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """``(n, k)``: every column of one record's features ``F`` as a robust z-score over the record:
    (value - median) / (1.4826 × median absolute deviation), clipped and scaled (:data:`Z_SCALE`);
    median and deviation are those of the ``reference`` rows (all beats by default).

    What is unusual differs from patient to patient: in atrial fibrillation no beat has a P wave and
    every R-R interval is irregular, so a beat without a P wave that comes early is that patient's
    normal beat, while in sinus rhythm it is a premature supraventricular one. Against the record's
    own spread the first scores near 0 and the second far from it.
    """
    F = np.asarray(F, dtype=np.float64)
    if len(F) == 0:
        return np.zeros(F.shape, dtype=np.float32)
    ref = F if reference is None else F[reference]
    centre = np.median(ref, axis=0)
    spread = 1.4826 * np.median(np.abs(ref - centre), axis=0)
    Z = (F - centre) / np.maximum(spread, Z_FLOOR)
    return (np.clip(Z, -Z_CLIP, Z_CLIP) / Z_SCALE).astype(np.float32)


def regular_beats(samples: np.ndarray, fs: float) -> np.ndarray:
    """A boolean mask over the R-peaks ``samples``: the beats whose pre- and post-R-R agree within
    ``REGULAR`` (log2). The first and last beats lack one of the two and are never regular."""
    rr = np.maximum(np.diff(np.asarray(samples, dtype=np.float64)) / check_fs(fs), 1e-3)
    out = np.zeros(rr.size + 1, dtype=bool)
    out[1:-1] = np.abs(np.log2(rr[1:] / rr[:-1])) <= REGULAR
    return out


def rhythm_reference(samples: np.ndarray, fs: float, among: np.ndarray | None = None) -> np.ndarray:
    """The beats that stand for the patient's own rhythm: a boolean mask over the R-peaks ``samples``,
    chosen among the beats ``among`` (a boolean mask; all by default).

    A recording's median R-R and median beat are its usual beat's only while most beats are sinus
    beats. In a patient whose rhythm is mostly ectopic (runs of atrial ectopy between long sinus
    cycles, frequent PVCs) the median is an ectopic beat, and every premature beat looks on time and
    usual. Ectopic beats come early, and a sinus beat is regular (:func:`regular_beats`), so the
    reference is, in this order:

    1. the regular beats that are on time: pre-R-R at least ``ON_TIME`` of the ``LATE_QUANTILE``
       quantile of ``among``'s pre-R-R. A sinus beat after a pause comes late too, but the pause
       (after a run of ectopic beats, or a PVC's compensatory one) makes it irregular;
    2. when fewer than ``LEAST_REFERENCE`` of ``among`` (or 10) are both, as in bigeminy, where
       the pauses set the quantile: the regular beats that are on time among the regular beats;
    3. all of ``among`` when the recording has too little regular rhythm to tell (under
       ``LEAST_REGULAR`` of its beats, or fewer than 10 regular beats among ``among``): in atrial
       fibrillation, flutter or runs of couplets the beats that happen to be regular are not a
       rhythm, and the recording is measured against itself.
    """
    s = np.asarray(samples, dtype=np.float64)
    among = np.ones(s.size, dtype=bool) if among is None else np.asarray(among, dtype=bool)
    if among.sum() < 10:
        return among.copy()
    regular = regular_beats(s, fs)
    if regular.mean() < LEAST_REGULAR or (regular & among).sum() < 10:
        return among.copy()
    regular &= among
    pre = np.concatenate([[0.0], np.diff(s) / check_fs(fs)])  # regular beats are never the first
    on_time = regular & (pre >= ON_TIME * float(np.quantile(pre[1:][among[1:]], LATE_QUANTILE)))
    if on_time.sum() >= max(10.0, LEAST_REFERENCE * among.sum()):
        return on_time
    return regular & (pre >= ON_TIME * float(np.quantile(pre[regular], LATE_QUANTILE)))


REFERENCES: tuple[str, ...] = ("median", "rhythm")
"""How the beats that stand for a recording are chosen (:func:`reference_mask`): ``median``, all of
them (the recording's median R-R and beat); ``rhythm``, the beats of the patient's own rhythm
(:func:`rhythm_reference`)."""


def reference_mask(reference: str | np.ndarray | None, samples: np.ndarray, fs: float) -> np.ndarray | None:
    """The reference beats of a recording with R-peaks ``samples``: ``reference`` names a method of
    :data:`REFERENCES`, or is the mask itself; None means every beat."""
    if reference is None or isinstance(reference, np.ndarray):
        return reference
    if reference not in REFERENCES:
        raise ValueError(f"reference {reference!r} is not one of {', '.join(REFERENCES)}")
    return None if reference == "median" else rhythm_reference(samples, fs)


LOCAL_MIN_BEATS = 60
"""Reference beats a stretch needs to stand for itself (:func:`stretches`); a shorter one joins the next."""


def stretches(
    samples: np.ndarray, fs: float, seconds: float | None, reference: np.ndarray | None
) -> list[slice]:
    """Consecutive runs of the beats at ``samples`` (sorted, at ``fs``), each about ``seconds`` long and
    holding at least :data:`LOCAL_MIN_BEATS` of the ``reference`` beats (all beats by default): a
    stretch with fewer joins the next one, and the last such joins the one before. One run of every
    beat when ``seconds`` is None or 0, or when the recording has too few reference beats to split."""
    n = len(samples)
    if not seconds or n == 0:
        return [slice(0, n)]
    starts = np.searchsorted(samples, np.arange(samples[0], samples[-1] + 1, seconds * fs)).tolist()
    counts = np.ones(n, dtype=np.int64) if reference is None else np.asarray(reference, dtype=np.int64)
    total = np.concatenate([[0], np.cumsum(counts)])
    cuts = [0]
    for start in starts[1:]:
        if total[start] - total[cuts[-1]] >= LOCAL_MIN_BEATS:
            cuts.append(start)
    cuts.append(n)
    if len(cuts) > 2 and total[n] - total[cuts[-2]] < LOCAL_MIN_BEATS:
        del cuts[-2]
    return [slice(a, b) for a, b in itertools.pairwise(cuts)]


def patient_inputs(
    leads: Sequence[np.ndarray | Callable[[], np.ndarray]],
    fs: float,
    samples: np.ndarray,
    reference: np.ndarray | None = None,
    amplitude_stretch_s: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs for ONE record: ``window (n, 125, 2)`` and ``patient (n, 80)``, float32, one row per
    R-peak of ``samples`` (at ``fs``, sorted). ``leads`` holds the primary lead (MLII, else V5) and,
    where the record has one, a second lead, in physical units at ``fs``. A lead may be given as a
    function that returns it: it is then called when its turn comes and let go once resampled, so a
    day's second lead is not held as float64 while the first is worked on.

    ``reference`` (a boolean mask over the beats; all of them by default) names the beats whose
    statistics stand for the record: its median R-R, median beat, QRS amplitude and the centres and
    spreads of the z-scores. Every beat is still measured, against them.

    ``amplitude_stretch_s`` scales each stretch of the recording (:func:`stretches`) to the recording's QRS
    amplitude first, by the reference beats in it: a recording's beats grow and shrink over hours
    (posture, electrode contact), and against the whole recording's median beat a stretch of larger
    normal beats looks ventricular. Their shape is still measured against the whole recording's, so a
    stretch where ectopic beats outnumber the normal ones cannot make them the norm."""
    if not 1 <= len(leads) <= LEADS:
        raise ValueError(f"patient_inputs: expected 1 or {LEADS} leads, got {len(leads)}")
    samples = np.asarray(samples, dtype=np.int64)
    if reference is not None:
        reference = np.asarray(reference, dtype=bool)
        if reference.shape != samples.shape or not reference.any():
            raise ValueError(
                f"patient_inputs: the reference mask must hold {samples.size} booleans, at least one true"
            )
    parts, amplitudes = [], []
    window = np.empty((samples.size, *WINDOW_SHAPE), dtype=np.float32)
    runs = stretches(samples, fs, amplitude_stretch_s, reference)  # the same for every lead
    for i, lead in enumerate(leads):
        W = wide_windows(lead() if callable(lead) else lead, fs, samples)
        amp = record_amplitude(W, reference=reference)
        for run in runs if len(runs) > 1 else []:
            # Each stretch brought to the recording's QRS amplitude, in place (W is this loop's own).
            W[run] *= amp / record_amplitude(W[run], reference=None if reference is None else reference[run])
        for start in range(0, len(W), BLOCK_BEATS):  # not a float64 copy of every window at once
            rows = slice(start, start + BLOCK_BEATS)
            window[rows, :, i] = W[rows, WIDE - WINDOW_BEFORE : WIDE + WINDOW_AFTER] / amp
        parts.append(part_features(W, reference=reference))
        amplitudes.append(qrs_amplitude(W, amp))
        del W
    if len(leads) == 1:
        window[:, :, 1] = window[:, :, 0]
        parts, amplitudes = parts * 2, amplitudes * 2
    rr = rr_features(samples, fs, reference)
    rms = [PART_COLUMNS.index(c.removeprefix("lead1_")) for c in NEIGHBOUR_OF[1:]]
    watched = np.column_stack([rr[:, RR_COLUMNS.index("pre_rec")], parts[0][:, rms]])
    beat = np.hstack(
        [rr, parts[0], parts[1], amplitudes[0][:, None], amplitudes[1][:, None], neighbours(watched)]
    )
    patient = np.hstack([beat, record_standardised(beat, reference)])
    return window, patient.astype(np.float32)
