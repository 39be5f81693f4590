"""Long recordings in bounded memory and linear time, with the results of the whole-recording code.

Each faster or leaner path here is checked against the plain one it replaces, to the bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_dir

from heartbeat.signal import detect


def _wfdb_r_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    """:func:`heartbeat.signal.detect.xqrs_peaks` the slow way: wfdb's own XQRS, then ``correct_peaks``."""
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


@pytest.mark.parametrize("block", [1, 2, 7, 64, detect.FIR_BLOCK])
def test_the_moving_wave_integration_in_blocks_is_scipys_to_the_bit(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``filtfilt(taps, [1], x) ** 2`` (scipy's, and the leaner whole-array one) against the blocks:
    short signals just over the padding, blocks of 1 (every block's edge inside the padding's reach),
    the tap counts of XQRS at 50 to 500 Hz, and a reversed view (XQRS's ``sig_f`` is one)."""
    from scipy.signal import filtfilt
    from wfdb.processing.qrs import ricker

    monkeypatch.setattr(detect, "FIR_BLOCK", block)
    rng = np.random.default_rng(block)
    for width in (3, 12, 25, 36, 50):
        taps = ricker(width, 4)
        for n in (3 * width + 1, 3 * width + 2, 3 * width + 9, 1000, 4099):
            x = rng.normal(size=n)
            for signal in (x, x[::-1]):
                want = filtfilt(taps, [1], signal, axis=0) ** 2
                assert np.array_equal(detect._filtfilt(taps, [1], signal, axis=0) ** 2, want)
                got = detect.fir_filtfilt_squared(taps, signal)
                assert got.dtype == want.dtype and np.array_equal(got, want), (width, n)


def test_the_moving_wave_integration_refuses_what_wfdb_does_not_do() -> None:
    x = np.ones(100)
    assert np.array_equal(
        detect._FiltfiltToSquare([1.0, 2.0], [1], x, axis=0) ** 2, detect.fir_filtfilt_squared([1.0, 2.0], x)
    )
    with pytest.raises(TypeError, match="not wfdb's moving-wave integration"):
        detect._FiltfiltToSquare([1.0, 2.0], [1, 0.5], x, axis=0) ** 2
    with pytest.raises(TypeError, match="not wfdb's moving-wave integration"):
        detect._FiltfiltToSquare([1.0, 2.0], [1], x, axis=0) ** 3


@pytest.mark.parametrize("record", ["208", "203"])
def test_r_peaks_are_wfdbs_xqrs_on_real_records(record: str) -> None:
    """XQRS's R-peaks are wfdb's, on both leads of a record with many ectopic beats (208) and a noisy,
    irregular one (203)."""
    import wfdb

    folder = shared_dir("mitdb")
    if not (folder / f"{record}.hea").is_file():
        pytest.skip(f"record {record} is not among the shared records in {folder}")
    from wfdb import processing

    rec = wfdb.rdrecord(str(folder / record))
    for lead in range(2):
        x = np.ascontiguousarray(rec.p_signal[:, lead], dtype=np.float64)
        xqrs = detect.xqrs_peaks(x, rec.fs)
        np.testing.assert_array_equal(xqrs, _wfdb_r_peaks(x, rec.fs))
        assert np.isin(xqrs, detect.r_peaks(x, rec.fs)).all()  # the wide beats only add to them
        ours, theirs = detect._xqrs_class()(sig=x, fs=rec.fs), processing.XQRS(sig=x, fs=rec.fs)
        for xqrs in (ours, theirs):  # the first steps of XQRS.detect
            xqrs.sampfrom, xqrs.sampto = 0, x.size
            xqrs._set_conf()
            xqrs._bandpass()
            xqrs._mwi()
        assert np.array_equal(ours.sig_f, theirs.sig_f) and np.array_equal(ours.sig_i, theirs.sig_i)
        assert np.array_equal(ours.peak_inds_i, theirs.peak_inds_i) and ours.mwi_gain == theirs.mwi_gain


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


@pytest.mark.parametrize("block", [7, 250, 1 << 20])
def test_a_second_lead_kept_compact_decodes_to_the_same_bits(tmp_path, block, monkeypatch) -> None:
    """A table's second lead stays float32 and an EDF's undecoded until the beats are cut, so neither
    sits beside the detector's copies as float64; decoded, they are the float64 leads the readers gave."""
    import edfio
    import pandas as pd

    from heartbeat.signal import user_recordings

    monkeypatch.setattr(user_recordings, "EDF_BLOCK", block)  # an EDF is decoded in blocks of samples
    rng = np.random.default_rng(5)
    x = np.round(rng.normal(size=(3000, 2)), 4)
    pd.DataFrame(x, columns=["MLII", "V1"]).to_csv(tmp_path / "r.csv", index=False)
    table = user_recordings.read_table(tmp_path / "r.csv", 250)
    assert table.signal.dtype == np.float64 and table.second.dtype == np.float32
    was = pd.read_csv(tmp_path / "r.csv", dtype=np.float32).to_numpy().astype(np.float64)
    assert np.array_equal(table.signal, was[:, 0]) and np.array_equal(table.second_lead(), was[:, 1])

    signals = [
        edfio.EdfSignal(x[:, i], 250, label=n, physical_dimension="uV") for i, n in enumerate(["MLII", "V1"])
    ]
    edfio.Edf(signals).write(tmp_path / "r.edf")
    edf = user_recordings.read_edf(tmp_path / "r.edf")
    assert callable(edf.second)
    decoded = [
        np.asarray(s.data, dtype=np.float64) * 1e-3 for s in edfio.read_edf(tmp_path / "r.edf").signals
    ]
    assert np.array_equal(edf.signal, decoded[0]) and np.array_equal(edf.second_lead(), decoded[1])
    assert (
        user_recordings.read_edf(tmp_path / "r.edf", lead="V1").second_lead().tobytes()
        == decoded[0].tobytes()
    )


def _template_features_at_once(X: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """:func:`heartbeat.signal.context.template_features` as it was: each group's beats copied, then widened."""
    from heartbeat.signal.context import TEMPLATE_CLIP, TEMPLATE_COLUMNS

    out = np.empty((len(X), len(TEMPLATE_COLUMNS)), dtype=np.float64)
    for group in np.unique(groups):
        idx = np.flatnonzero(groups == group)
        B = X[idx].astype(np.float64)
        T = np.concatenate([np.median(B[:, c : c + 16], axis=0) for c in range(0, B.shape[1], 16)])
        rms = np.sqrt(np.mean((B - T) ** 2, axis=1))
        B -= B.mean(axis=1, keepdims=True)
        Tc = T - T.mean()
        corr = (B @ Tc) / (np.linalg.norm(B, axis=1) * np.linalg.norm(Tc) + 1e-9)
        out[idx] = np.stack([corr, rms, rms / (np.median(rms) + 1e-9)], axis=1)
    return np.clip(out, -1.0, TEMPLATE_CLIP).astype(np.float32)


@pytest.mark.parametrize("size", [1, 7, 10**9])
def test_template_features_widen_in_blocks_to_the_same_bits(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Each group's beats widened to float64 block by block, without the float32 copy of them all."""
    from heartbeat.signal import context

    _blocks(monkeypatch, size)
    rng = np.random.default_rng(size)
    X = rng.normal(size=(301, 187)).astype(np.float32)
    for groups in (np.zeros(301, dtype=np.int8), rng.integers(0, 4, 301)):
        got = context.template_features(X, groups)
        assert got.dtype == np.float32 and np.array_equal(got, _template_features_at_once(X, groups))


@pytest.mark.parametrize("size", [1, 7, 10**9])
def test_patient_windows_in_blocks_and_a_second_lead_decoded_late_change_no_bit(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """The two-lead windows divided by the record's amplitude block by block, and a second lead given
    as a function (decoded when the features reach it): the windows as every window at once gave them,
    and the features of the second lead given as an array."""
    from heartbeat.signal import patient
    from heartbeat.signal.segment import resample

    rng = np.random.default_rng(3)
    fs, n = 250.0, 40
    t = np.arange(int(fs * n)) / fs
    leads = [np.sin(2 * np.pi * 1.1 * t) ** 15 + 0.05 * rng.normal(size=t.size) for _ in range(2)]
    samples = np.flatnonzero(np.diff(np.sign(np.diff(leads[0]))) < 0)[::4] + 1
    _blocks(monkeypatch, 10**9)
    whole_window, whole_patient = patient.patient_inputs(leads, fs, samples)
    _blocks(monkeypatch, size)
    calls = []
    window, features = patient.patient_inputs([leads[0], lambda: calls.append(1) or leads[1]], fs, samples)
    assert calls == [1]
    assert np.array_equal(window, whole_window) and np.array_equal(features, whole_patient)
    for i, lead in enumerate(leads):
        x = patient.remove_baseline(resample(lead, fs))
        peaks = np.clip(np.rint(samples * (patient.TARGET_FS / fs)).astype(np.int64), 0, x.size - 1)
        W = patient.centred_windows(x, peaks, patient.WIDE, patient.WIDE)
        at_once = W[:, patient.WIDE - patient.WINDOW_BEFORE : patient.WIDE + patient.WINDOW_AFTER] / (
            patient.record_amplitude(W)
        )
        assert np.array_equal(window[:, :, i], at_once.astype(np.float32))
