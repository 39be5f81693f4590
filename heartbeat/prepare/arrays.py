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
from heartbeat.core.errors import DataError
from heartbeat.core.npyfile import load_npy

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    X: np.ndarray
    y: np.ndarray
    R: np.ndarray | None = None
    """Rhythm features ``(n, 6)`` (heartbeat/signal/context.py) when the source knows R-peak times, else None."""


def save_dataset(folder: Path, splits: dict[str, Split]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        write_npy(folder / f"X_{name}.npy", np.ascontiguousarray(split.X, dtype=np.float32))
        write_npy(folder / f"y_{name}.npy", np.asarray(split.y, dtype=np.int64))
        if split.R is not None:
            write_npy(folder / f"R_{name}.npy", np.ascontiguousarray(split.R, dtype=np.float32))


def load_split(folder: str | os.PathLike[str], split: str, mmap: bool = False) -> Split:
    """Load one split; a missing file tells which stage to run. ``R`` is loaded when ``R_<split>.npy`` exists."""
    folder = Path(folder)
    arrays = []
    for kind in ("X", "y"):
        path = folder / f"{kind}_{split}.npy"
        try:
            arrays.append(load_npy(path, mmap=mmap))
        except FileNotFoundError:
            raise DataError(
                f"{path}: not found; run the preprocess stage first (dvc repro preprocess)"
            ) from None
    X, y = arrays
    if X.ndim != 2 or len(X) != len(y):
        raise DataError(f"{folder}: X_{split} has shape {X.shape} but y_{split} has {y.shape}")
    R = None
    r_path = folder / f"R_{split}.npy"
    if r_path.is_file():
        R = load_npy(r_path, mmap=mmap)
        if R.ndim != 2 or len(R) != len(y):
            raise DataError(f"{folder}: R_{split} has shape {R.shape} but y_{split} has {y.shape}")
    return Split(X=X, y=y, R=R)
