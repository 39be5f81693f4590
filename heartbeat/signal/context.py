"""Rhythm context for a beat: its R-R intervals, as a second model input.

A 187-sample window shows one beat's shape but not when it came: premature
beats (S, V) are told apart from normal ones largely by timing, and that is
what carries over to new patients. The physionet source writes six R-R
features per beat into ``provenance.parquet`` (see
:func:`heartbeat.signal.segment.rr_features`); this module turns them into a clean
``(n, 6)`` float32 matrix, the first columns of the ``R_<split>.npy`` files of
``data/prepared``. The Kaggle CSVs have no R-peak times, so a model trained on
them is beat-only.

Three more columns compare each beat with its own record's median beat
(:func:`template_features`): the median is the patient's usual beat, found
without labels, so "unlike this patient's usual beat" can carry over to new
patients where absolute shapes do not. The rhythm input of a model takes the
first 6 (R-R only) or all 9 (``template: true``) columns of the ``(n, 9)``
context matrix that preprocess writes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from heartbeat.signal.checks import check_fs
from heartbeat.signal.segment import BLOCK_BEATS

RR_COLUMNS: tuple[str, ...] = (
    "rr_pre",
    "rr_post",
    "rr_local",
    "rr_pre_norm",
    "rr_post_norm",
    "rr_local_norm",
)
"""Pre-RR, post-RR and local mean RR in seconds, then each divided by the record's mean RR."""

TEMPLATE_COLUMNS: tuple[str, ...] = ("tpl_corr", "tpl_rms", "tpl_rms_norm")
"""Correlation with the record's median beat, RMS difference from it, and that RMS divided by the
record's median RMS difference (how unusual the beat is for this patient)."""
CONTEXT_COLUMNS: tuple[str, ...] = (*RR_COLUMNS, *TEMPLATE_COLUMNS)
"""The columns of ``R_<split>.npy``: R-R features first, so a 6-feature model reads a prefix."""
TEMPLATE_CLIP = 10.0

LOCAL_RR_BEATS = 10
"""How many R-R intervals around a beat make up its local mean R-R."""

RR_CLIP = 3.0
"""Upper bound of every feature: 3 s (20 bpm) or 3× the record's mean. Longer gaps are annotation
breaks (noise, a flutter episode), not rhythm, and would otherwise dominate the input scale."""


def rr_features(samples: np.ndarray, fs: float, n_local: int = LOCAL_RR_BEATS) -> dict[str, np.ndarray]:
    """Rhythm features per R-peak, in seconds and relative to the record's mean R-R.

    Premature beats (S, V) are told apart from normal ones largely by timing,
    which a 187-sample window loses, so we keep it alongside. ``rr_local`` is
    the mean of the ``n_local`` R-R intervals centred on the beat (fewer at the
    record's edges). The first beat has no ``rr_pre`` and the last no
    ``rr_post``: those are NaN rather than invented.
    """
    fs = check_fs(fs)
    s = np.asarray(samples, dtype=np.float64)
    n = s.size
    nan = np.full(n, np.nan)
    if n < 2:
        return {k: nan.copy() for k in RR_COLUMNS}
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
    values = (pre, post, local, pre / scale, post / scale, local / scale)
    return dict(zip(RR_COLUMNS, values, strict=True))


def input_width(template: bool) -> int:
    """Columns a rhythm input takes: the R-R features, plus the template ones with ``template``."""
    return len(CONTEXT_COLUMNS) if template else len(RR_COLUMNS)


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


def template_features(X: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``(n, 3)`` float32: each beat against the median beat of its group (its record).

    The physionet source centres every beat on its R-peak, so the beats of one record align and
    their sample-wise median is the record's usual beat. Columns: see :data:`TEMPLATE_COLUMNS`.
    """
    X = np.asarray(X)
    groups = np.asarray(groups)
    if len(groups) != len(X):
        raise ValueError(f"template_features: {len(X)} beats but {len(groups)} group labels")
    out = np.empty((len(X), len(TEMPLATE_COLUMNS)), dtype=np.float64)
    for group in np.unique(groups):
        idx = np.flatnonzero(groups == group)
        B = np.empty((idx.size, X.shape[1]), dtype=np.float64)
        for r in range(
            0, idx.size, BLOCK_BEATS
        ):  # float32 to float64 is exact: X[idx]'s bits, without its copy
            B[r : r + BLOCK_BEATS] = X[idx[r : r + BLOCK_BEATS]]
        # Column by column and row by row the same arithmetic as on the whole matrix at once, in
        # blocks, so a 24-hour recording's 100,000 beats need one float64 copy of them, not five.
        T = np.concatenate([np.median(B[:, c : c + 16], axis=0) for c in range(0, B.shape[1], 16)])
        rows = [slice(r, r + BLOCK_BEATS) for r in range(0, len(B), BLOCK_BEATS)]
        rms = np.concatenate([np.sqrt(np.mean((B[r] - T) ** 2, axis=1)) for r in rows])
        B -= B.mean(axis=1, keepdims=True)  # centred, in place
        Tc = T - T.mean()
        norms = np.concatenate([np.linalg.norm(B[r], axis=1) for r in rows])
        corr = (B @ Tc) / (norms * np.linalg.norm(Tc) + 1e-9)
        del B
        out[idx] = np.stack([corr, rms, rms / (np.median(rms) + 1e-9)], axis=1)
    return np.clip(out, -1.0, TEMPLATE_CLIP).astype(np.float32)


def context_matrix(rr: np.ndarray | pd.DataFrame, X: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The ``(n, 9)`` matrix of :data:`CONTEXT_COLUMNS`: :func:`rhythm_matrix` then :func:`template_features`."""
    return np.hstack([rhythm_matrix(rr), template_features(X, groups)])
