"""Long recordings in bounded memory and linear time, with the results of the whole-recording code.

Each faster or leaner path here is checked against the plain one it replaces, to the bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_dir

from heartbeat.signal import detect


def _wfdb_r_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    """:func:`heartbeat.signal.detect.r_peaks` as it was: wfdb's own XQRS, then ``correct_peaks``."""
    from wfdb import processing

    xqrs = processing.XQRS(sig=x, fs=fs)
    xqrs.detect(verbose=False)
    found = np.asarray(xqrs.qrs_inds, dtype=np.int64)
    snapped = processing.correct_peaks(
        x,
        found,
        search_radius=max(1, round(detect.SNAP_S * fs)),
        smooth_window_size=max(1, round(detect.SNAP_WINDOW_S * fs)),
        peak_dir="compare",
    )
    snapped = np.asarray(snapped, dtype=np.int64)
    return np.unique(np.clip(snapped[snapped >= 0], 0, x.size - 1))


@pytest.mark.parametrize("block", [5, 37, detect.PEAK_BLOCK])
@pytest.mark.parametrize("seed", range(3))
def test_local_peaks_are_wfdbs_to_the_sample(seed: int, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Noise, plateaus (ties within a window), short signals, every small radius, and blocks shorter
    than a window, so that peaks fall on the blocks' edges."""
    from wfdb.processing import peaks

    monkeypatch.setattr(detect, "PEAK_BLOCK", block)
    rng = np.random.default_rng(seed)
    for _ in range(150):
        n, radius = int(rng.integers(1, 300)), int(rng.integers(1, 14))
        x = rng.integers(0, 3, n).astype(np.float64) if rng.random() < 0.5 else rng.normal(size=n)
        try:
            want = peaks.find_local_peaks(x, radius)
        except IndexError:
            with pytest.raises(IndexError):
                detect.local_peaks(x, radius)
            continue
        got = detect.local_peaks(x, radius)
        assert got.dtype == want.dtype and np.array_equal(got, want), (n, radius)


@pytest.mark.parametrize("record", ["208", "203"])
def test_r_peaks_are_wfdbs_xqrs_on_real_records(record: str) -> None:
    """Both leads of a record with many ectopic beats (208) and a noisy, irregular one (203)."""
    import wfdb

    folder = shared_dir("mitdb")
    if not (folder / f"{record}.hea").is_file():
        pytest.skip(f"record {record} is not among the shared records in {folder}")
    rec = wfdb.rdrecord(str(folder / record))
    for lead in range(2):
        x = np.ascontiguousarray(rec.p_signal[:, lead], dtype=np.float64)
        np.testing.assert_array_equal(detect.r_peaks(x, rec.fs), _wfdb_r_peaks(x, rec.fs))


def _blocks(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    """Every module that works in blocks of beats, set to blocks of ``size``."""
    from heartbeat.signal import context, patient, segment

    for module in (segment, patient, context):
        monkeypatch.setattr(module, "BLOCK_BEATS", size)


def test_blocks_of_beats_change_no_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beats, windows and template features cut in blocks (of 1, 7 and 64 beats, so blocks end inside
    and at the end) are those cut all at once."""
    from heartbeat.signal.context import template_features
    from heartbeat.signal.patient import centred_windows
    from heartbeat.signal.segment import nominal_periods, segment_beats

    rng = np.random.default_rng(3)
    x = np.cumsum(rng.normal(size=20_000))
    peaks = np.sort(rng.choice(np.arange(10, 19_900), 150, replace=False))
    periods = nominal_periods(peaks, x.size)

    def all_of_them() -> tuple[np.ndarray, ...]:
        X, kept = segment_beats(x, peaks, periods)
        groups = np.repeat([0, 1], [100, len(X) - 100])
        return X, kept, centred_windows(x, peaks, 96, 96), template_features(X, groups)

    _blocks(monkeypatch, 10**9)
    whole = all_of_them()
    for size in (1, 7, 64):
        _blocks(monkeypatch, size)
        for got, want in zip(all_of_them(), whole, strict=True):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def test_a_real_record_is_cut_to_the_same_bits_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record 208 (two leads, many PVCs) through detection, cutting, windows, patient features and
    context, in blocks of 100 beats and all at once."""
    import wfdb

    from heartbeat.signal.record_beats import cut_record

    folder = shared_dir("mitdb")
    rec = wfdb.rdrecord(str(folder / "208"))
    lead, second = (np.ascontiguousarray(rec.p_signal[:, i], dtype=np.float64) for i in range(2))
    peaks = detect.r_peaks(lead, rec.fs)

    def cut() -> dict[str, np.ndarray]:
        beats = cut_record(lead, rec.fs, peaks, second=second)
        return {
            "X": beats.X,
            "window": beats.window,
            "patient": beats.patient,
            "context": beats.context(),
        }

    _blocks(monkeypatch, 10**9)
    whole = cut()
    _blocks(monkeypatch, 100)
    for name, got in cut().items():
        assert got.dtype == whole[name].dtype, name
        np.testing.assert_array_equal(got, whole[name], err_msg=name)


def _part_features_at_once(W: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """:func:`heartbeat.signal.patient.part_features` as it was: every window at once."""
    from heartbeat.signal.patient import PARTS_S, TARGET_FS, WIDE

    W = np.asarray(W, dtype=np.float64)
    ref = slice(None) if reference is None else reference
    T = np.median(W[ref], axis=0)
    out = []
    for a, b in PARTS_S.values():
        lo, hi = max(WIDE + round(a * TARGET_FS), 0), min(WIDE + round(b * TARGET_FS), W.shape[1])
        S, t = W[:, lo:hi], T[lo:hi]
        Sc, tc = S - S.mean(axis=1, keepdims=True), t - t.mean()
        den = np.linalg.norm(Sc, axis=1) * np.linalg.norm(tc)
        corr = np.where(den > 1e-12, (Sc @ tc) / np.maximum(den, 1e-12), 0.0)
        rms = np.sqrt(np.mean((S - t) ** 2, axis=1))
        typical = max(float(np.median(rms[ref])), 1e-9)
        out += [corr, np.clip(np.log2(np.maximum(rms, 1e-9) / typical), -3.0, 3.0)]
    return np.stack(out, axis=1).astype(np.float32)


@pytest.mark.parametrize("size", [1, 7, 100, 10**9])
def test_part_features_in_blocks_are_those_of_every_window_at_once(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """The median beat a column at a time and the parts in blocks: the same bits as the code that held
    every window's copies at once, on record 208's windows (both leads, with and without a reference
    mask) and on noise with an even and an odd count of reference rows."""
    import wfdb

    from heartbeat.signal.patient import WIDE, centred_windows, part_features, remove_baseline
    from heartbeat.signal.segment import TARGET_FS, resample

    rng = np.random.default_rng(5)
    cases = [
        (rng.normal(size=(301, 2 * WIDE)), None),
        (rng.normal(size=(300, 2 * WIDE)), rng.random(300) < 0.5),
    ]
    folder = shared_dir("mitdb")
    rec = wfdb.rdrecord(str(folder / "208"))
    peaks = detect.r_peaks(rec.p_signal[:, 0], rec.fs)
    for i in range(2):
        x = remove_baseline(resample(np.ascontiguousarray(rec.p_signal[:, i]), rec.fs))
        W = centred_windows(x, np.rint(peaks * (TARGET_FS / rec.fs)).astype(np.int64), WIDE, WIDE)
        cases += [(W, None), (W, rng.random(len(W)) < 0.8)]
    _blocks(monkeypatch, size)
    for W, reference in cases:
        np.testing.assert_array_equal(
            part_features(W, reference=reference), _part_features_at_once(W, reference)
        )
