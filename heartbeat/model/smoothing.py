"""Smoothing over a recording: each beat's probabilities blended with those of its look-alikes.

A patient's beats of one kind look alike, and the network errs on a new patient beat by beat: a
few of the patient's normal beats called S, a few of its PVCs called S or N. Averaging each beat's probabilities with those of its nearest beats *in the same recording*
(nearest by the two-lead window the network sees, which holds the beat, its neighbours' T and P
waves and so its prematurity) lets the patient's other beats of that shape outvote those slips.
It needs no label, only the recording, so evaluation and ``heartbeat predict`` apply it alike; the
blend is linear in the probabilities, so a mean of models smoothed is the smoothed mean.
"""

from __future__ import annotations

import json

import numpy as np

from heartbeat.core.budget import SMOOTHING_WORKING_MEMORY_MB
from heartbeat.core.errors import DataError, ModelError
from heartbeat.core.stored import RecordSmoothing

SIDECAR_KEY = "record_smoothing"
"""Where the training stage stores it in ``models/<name>.json``."""


def smooth_over_records(
    proba: np.ndarray,
    windows: np.ndarray,
    records: np.ndarray | None,
    smoothing: RecordSmoothing,
) -> np.ndarray:
    """``(1 − weight) × p + weight × mean(p over the beat's nearest beats of its record)``.

    ``proba`` is ``(n, classes)``; ``windows`` ``(n, ...)`` the windows the model took, compared by
    Euclidean distance; ``records`` ``(n,)`` says which recording each beat is from (None: all from
    one). A recording with fewer beats than ``neighbours`` averages all of them; one longer than
    ``span`` is smoothed stretch by stretch. Rows still sum to 1.
    """
    proba = np.asarray(proba)
    n = len(proba)
    if proba.ndim != 2 or len(windows) != n or (records is not None and len(records) != n):
        got = f"{len(windows)} windows" + (f" and {len(records)} record ids" if records is not None else "")
        raise DataError(f"record smoothing: {n} rows of probabilities but {got}; expected one per beat")
    if smoothing.weight == 0 or smoothing.neighbours == 1 or n == 0:
        return proba.copy()
    import sklearn

    flat = np.asarray(windows, dtype=np.float32).reshape(n, -1)
    groups = [np.arange(n)] if records is None else [np.flatnonzero(records == r) for r in np.unique(records)]
    groups = [part for g in groups for part in np.array_split(g, -(-len(g) // smoothing.span))]
    p = proba.astype(np.float64)
    out = np.empty_like(p)
    with sklearn.config_context(working_memory=SMOOTHING_WORKING_MEMORY_MB):
        _smooth_groups(p, flat, groups, smoothing, out)
    return out.astype(proba.dtype)


def _smooth_groups(
    p: np.ndarray, flat: np.ndarray, groups: list[np.ndarray], smoothing: RecordSmoothing, out: np.ndarray
) -> None:
    from sklearn.neighbors import NearestNeighbors

    for idx in groups:
        k = min(smoothing.neighbours, len(idx))
        if k == 1:
            out[idx] = p[idx]
            continue
        # Asked without the points themselves, kneighbors leaves each beat out: add it back, so that
        # a beat with exact copies still counts once as itself.
        _, near = NearestNeighbors(n_neighbors=k - 1).fit(flat[idx]).kneighbors()
        mean = (p[idx] + p[idx][near].sum(axis=1)) / k
        out[idx] = (1 - smoothing.weight) * p[idx] + smoothing.weight * mean


def check_smoothing(value: object, where: str) -> RecordSmoothing | None:
    """A stored smoothing as :class:`RecordSmoothing`, None when there is none (``value`` None).

    Built by the type's own check, the one params.yaml's schema uses, and with every key present as
    training writes them; anything else is a :class:`ModelError` naming ``where``, the key and why.
    """
    if value is None:
        return None
    try:
        missing = (
            [k for k in RecordSmoothing.__dataclass_fields__ if k not in value]
            if isinstance(value, dict)
            else []
        )
        if missing:
            raise ValueError(f"{missing[0]} is missing")
        return RecordSmoothing.from_mapping(value)
    except ValueError as exc:
        raise ModelError(
            f"{where}: {SIDECAR_KEY} {json.dumps(value, default=str)[:80]} is not as training writes it "
            f"({exc}); retrain the model (dvc repro) or remove the key"
        ) from None
