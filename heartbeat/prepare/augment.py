"""Rebalancing and the paper's augmentation (Kachuee et al. 2018, Sec. III-B) for training splits only.

The MIT-BIH classes are very unbalanced (N is ~83% of beats). The paper
augments the minority classes with amplitude scaling and time stretching;
random oversampling is the simpler alternative. Both touch only the training
split: validation and test keep the real distribution, or the metrics lie.
"""

from __future__ import annotations

import numpy as np

from heartbeat.core.beat_spec import BEAT_LENGTH


def oversample_index(y: np.ndarray, seed: int) -> np.ndarray:
    """Row indices that repeat every class at random until each has as many as the largest, shuffled."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    target = counts.max()
    parts = [np.arange(len(y))]
    for c, n in zip(classes, counts, strict=True):
        if n < target:
            parts.append(rng.choice(np.flatnonzero(y == c), size=target - n, replace=True))
    return rng.permutation(np.concatenate(parts))


def oversample(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Repeat rows of every class at random until each has as many as the largest."""
    idx = oversample_index(y, seed)
    return X[idx], y[idx]


def stretch_and_scale(X: np.ndarray, factors: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Time-stretch each beat by ``factors`` and scale its amplitude by ``scales``, staying in [0, 1].

    Stretching resamples the whole 187-sample row with linear interpolation: a
    factor above 1 slows the beat down (the tail is cut), below 1 speeds it up
    (zeros fill the end), which mimics a change in heart rate.
    """
    n, length = X.shape
    grid = np.arange(length, dtype=np.float64)
    src = grid[None, :] / factors[:, None]
    lo = np.clip(np.floor(src).astype(np.int64), 0, length - 1)
    hi = np.clip(lo + 1, 0, length - 1)
    frac = src - np.floor(src)
    rows = np.arange(n)[:, None]
    out = X[rows, lo] * (1 - frac) + X[rows, hi] * frac
    out[src > length - 1] = 0.0
    return np.clip(out * scales[:, None], 0.0, 1.0).astype(np.float32)


def augment_minority(
    X: np.ndarray, y: np.ndarray, copies: int, amplitude: float, stretch: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Add ``copies`` augmented versions of every beat outside the majority class."""
    X_all, y_all, _ = augment_minority_rows(X, y, copies, amplitude, stretch, seed)
    return X_all, y_all


def augment_minority_rows(
    X: np.ndarray, y: np.ndarray, copies: int, amplitude: float, stretch: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`augment_minority`, plus for every output row the input row it came from.

    The source index lets per-beat side data (the rhythm features) follow the
    beats: an augmented copy keeps the R-R intervals of the beat it was made from.
    """
    if copies == 0:
        return X, y, np.arange(len(y))
    assert X.shape[1] == BEAT_LENGTH
    classes, counts = np.unique(y, return_counts=True)
    minority = np.flatnonzero(y != classes[np.argmax(counts)])
    src = np.repeat(minority, copies)
    rng = np.random.default_rng(seed)
    factors = rng.uniform(1 - stretch, 1 + stretch, size=len(src))
    scales = rng.uniform(1 - amplitude, 1 + amplitude, size=len(src))
    extra = stretch_and_scale(X[src], factors, scales)
    X_all = np.concatenate([X, extra])
    y_all = np.concatenate([y, y[src]])
    origin = np.concatenate([np.arange(len(y)), src])
    idx = rng.permutation(len(y_all))
    return X_all[idx], y_all[idx], origin[idx]
