"""The prepared arrays on disk: one folder per dataset, one ``.npy`` per array and split.

Plain ``.npy`` float32 files load in milliseconds (memory-mapped if wanted)
and cannot carry code, unlike pickles; they are always read with
``allow_pickle=False``, and only after their header's shape is checked against
the file's size (:mod:`heartbeat.core.npyfile`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heartbeat.core.atomic import write_npy
from heartbeat.core.errors import DataError, input_file
from heartbeat.core.npyfile import load_npy

SPLITS = ("train", "val", "test")


SIDE_ARRAYS = ("R", "W", "P", "G", "I")
"""Arrays a split has when its source knows each beat's record (physionet, demo), beside X and y."""

INTEGER_ARRAYS = ("y", "G", "I")
"""Written as int64; every other array as float32."""


@dataclass(frozen=True)
class Split:
    X: np.ndarray
    y: np.ndarray
    R: np.ndarray | None = None
    """Rhythm context ``(n, 9)`` (heartbeat/signal/context.py) when the source knows R-peak times, else None."""
    W: np.ndarray | None = None
    """Centred two-lead windows ``(n, 125, 2)`` (heartbeat/signal/patient.py), else None."""
    P: np.ndarray | None = None
    """Features against the beat's own patient ``(n, 80)`` (heartbeat/signal/patient.py), else None."""
    G: np.ndarray | None = None
    """The record each beat came from ``(n,)``, as an index into the dataset's sorted records, else None:
    evaluation smooths a model's probabilities record by record (heartbeat/model/smoothing.py)."""
    I: np.ndarray | None = None  # noqa: E741 (one letter per array, as on disk: I_<split>.npy)
    """1 where the beat is in an irregularly irregular stretch of its recording ``(n,)``
    (heartbeat/signal/irregular.py), else 0; None without R-peak times: evaluation's irregular-rhythm
    gate reads it (heartbeat/model/rhythm_gate.py)."""

    def take(self, idx: np.ndarray) -> Split:
        """The rows ``idx`` of every array."""
        sides = {k: None if getattr(self, k) is None else getattr(self, k)[idx] for k in SIDE_ARRAYS}
        return Split(X=self.X[idx], y=self.y[idx], **sides)

    def joined(self, other: Split) -> Split:
        """This split's rows, then ``other``'s; a side array only where both have it."""

        def both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            return None if a is None or b is None else np.concatenate([a, b])

        sides = {k: both(getattr(self, k), getattr(other, k)) for k in SIDE_ARRAYS}
        return Split(X=np.concatenate([self.X, other.X]), y=np.concatenate([self.y, other.y]), **sides)


def save_dataset(folder: Path, splits: dict[str, Split]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        write_npy(folder / f"X_{name}.npy", np.ascontiguousarray(split.X, dtype=np.float32))
        write_npy(folder / f"y_{name}.npy", np.asarray(split.y, dtype=np.int64))
        for kind in SIDE_ARRAYS:
            if getattr(split, kind) is not None:
                dtype = np.int64 if kind in INTEGER_ARRAYS else np.float32
                write_npy(
                    folder / f"{kind}_{name}.npy", np.ascontiguousarray(getattr(split, kind), dtype=dtype)
                )


def load_split(folder: str | os.PathLike[str], split: str, mmap: bool = False) -> Split:
    """Load one split; a missing file tells which stage to run. ``R``, ``W`` and ``P`` are loaded when
    their files exist."""
    folder = Path(folder)
    arrays = []
    for kind in ("X", "y"):
        path = folder / f"{kind}_{split}.npy"
        with input_file(path, "a .npy file", "run the preprocess stage first (dvc repro preprocess)"):
            arrays.append(load_npy(path, mmap=mmap))
    X, y = arrays
    if X.ndim != 2 or len(X) != len(y):
        raise DataError(f"{folder}: X_{split} has shape {X.shape} but y_{split} has {y.shape}")
    sides = {}
    for kind in SIDE_ARRAYS:
        path = folder / f"{kind}_{split}.npy"
        if not path.is_file():
            sides[kind] = None
            continue
        sides[kind] = load_npy(path, mmap=mmap)
        ndim_ok = sides[kind].ndim == 1 if kind in INTEGER_ARRAYS else sides[kind].ndim >= 2
        if not ndim_ok or len(sides[kind]) != len(y):
            raise DataError(
                f"{folder}: {kind}_{split} has shape {sides[kind].shape} but y_{split} has {y.shape}"
            )
    return Split(X=X, y=y, **sides)
