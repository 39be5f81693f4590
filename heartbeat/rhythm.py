"""Rhythm context for a beat: its R-R intervals, as a second model input.

A 187-sample window shows one beat's shape but not when it came: premature
beats (S, V) are told apart from normal ones largely by timing, and that is
what carries over to new patients. The physionet source writes six R-R
features per beat into ``provenance.parquet`` (see
:func:`heartbeat.segment.rr_features`); this module turns them into a clean
``(n, 6)`` float32 matrix, the ``R_<split>.npy`` files of ``data/prepared``.
The Kaggle CSVs have no R-peak times, so a model trained on them is beat-only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RR_COLUMNS: tuple[str, ...] = (
    "rr_pre",
    "rr_post",
    "rr_local",
    "rr_pre_norm",
    "rr_post_norm",
    "rr_local_norm",
)
"""Pre-RR, post-RR and local mean RR in seconds, then each divided by the record's mean RR."""

RR_CLIP = 3.0
"""Upper bound of every feature: 3 s (20 bpm) or 3× the record's mean. Longer gaps are annotation
breaks (noise, a flutter episode), not rhythm, and would otherwise dominate the input scale."""


def rhythm_matrix(values: np.ndarray | pd.DataFrame) -> np.ndarray:
    """The six R-R features as a finite ``(n, 6)`` float32 matrix.

    A missing pre-RR (a record's first beat) takes the post-RR and vice versa;
    anything still missing takes the local mean RR, and failing that the
    record-average value (1.0 for normalised features, 0.8 s for seconds).
    Everything is clipped to ``[0, RR_CLIP]``.
    """
    if isinstance(values, pd.DataFrame):
        values = values[list(RR_COLUMNS)].to_numpy(dtype=np.float64)
    R = np.array(values, dtype=np.float64, copy=True)
    if R.ndim != 2 or R.shape[1] != len(RR_COLUMNS):
        raise ValueError(f"rhythm features must have shape (n, {len(RR_COLUMNS)}), got {R.shape}")
    for pre, post, local, default in ((0, 1, 2, 0.8), (3, 4, 5, 1.0)):
        for a, b in ((pre, post), (post, pre)):
            missing = ~np.isfinite(R[:, a])
            R[missing, a] = R[missing, b]
        for col in (pre, post, local):
            missing = ~np.isfinite(R[:, col])
            R[missing, col] = R[missing, local] if col != local else default
            R[~np.isfinite(R[:, col]), col] = default
    return np.clip(R, 0.0, RR_CLIP).astype(np.float32)


def rhythm_from_peaks(samples: np.ndarray, fs: float) -> np.ndarray:
    """The ``(n, 6)`` rhythm matrix for the R-peaks of one record (sample indices at rate ``fs``)."""
    from heartbeat.segment import rr_features

    rr = rr_features(samples, fs)
    return rhythm_matrix(np.stack([rr[k] for k in RR_COLUMNS], axis=1))
