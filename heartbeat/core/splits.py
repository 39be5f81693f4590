"""Train/validation/test splits, as row indices.

Splits return index arrays, not copies, so they compose (split the train part
again for validation) and are easy to check: disjoint, covering, stratified.
``beat`` splits are stratified at random, as in the Kaggle set. ``grouped``
splits keep every group (record or patient) on one side, which is what makes
an inter-patient evaluation honest.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

from heartbeat.core.errors import DataError


def stratified_split(
    y: np.ndarray, fraction: float, seed: int, what: str = "data"
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``arange(len(y))`` into (keep, holdout) with ``fraction`` of each class held out."""
    idx = np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    n_hold = round(fraction * len(y))
    if len(y) < 2 or n_hold < 1 or n_hold >= len(y):
        raise DataError(f"{what}: {len(y)} rows are too few to hold out {fraction:.0%}; use more data")
    stratify = y if counts.min() >= 2 and n_hold >= len(classes) and len(y) - n_hold >= len(classes) else None
    keep, hold = train_test_split(idx, test_size=n_hold, random_state=seed, shuffle=True, stratify=stratify)
    return np.sort(keep), np.sort(hold)


def grouped_split(
    y: np.ndarray, groups: np.ndarray, fraction: float, seed: int, what: str = "data", fold: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out about ``fraction`` of the rows by whole groups, balancing classes as far as groups allow.

    ``fold`` picks which of the about ``1 / fraction`` disjoint held-out sets to return (grouped
    cross-validation); with a class too rare to stratify, it only changes the random draw.
    """
    unique = np.unique(groups)
    n_splits = max(2, round(1 / fraction))
    if len(unique) < 2:
        raise DataError(
            f"{what}: only {len(unique)} record/patient group(s); a grouped split needs at least 2"
        )
    n_splits = min(n_splits, len(unique))
    if np.unique(y, return_counts=True)[1].min() >= n_splits:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        keep, hold = list(splitter.split(np.zeros(len(y)), y, groups))[fold % n_splits]
    else:  # a class too rare to spread over the folds: plain grouped shuffle
        shuffle = GroupShuffleSplit(n_splits=fold + 1, test_size=fraction, random_state=seed)
        keep, hold = list(shuffle.split(np.zeros(len(y)), y, groups))[fold]
    if len(keep) == 0 or len(hold) == 0:
        raise DataError(f"{what}: {len(unique)} groups are too few to hold out {fraction:.0%} by group")
    return np.sort(keep), np.sort(hold)


def split_stratified(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean test mask holding ``test_fraction`` of each class, drawn with ``seed``.

    Per class, so that rare classes (F: 803 beats in all of MIT-BIH) keep the
    same share on both sides, as in the Kaggle set's 80/20 split.
    """
    rng = np.random.default_rng(seed)
    test = np.zeros(labels.size, dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_test = round(test_fraction * members.size)
        test[rng.permutation(members)[:n_test]] = True
    return test
