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
