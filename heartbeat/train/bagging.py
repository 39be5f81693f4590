"""Ensemble members that learn from different patients.

An ensemble whose members all see the same records agrees with itself about the patients it has not
seen: on new patients it measured no better than one network (BENCHMARKS.md, "New patients"). Here
each member holds out its own few records, drawn with its seed, from the training and validation
records together: it trains on the rest, stops early on those records and fits its temperature on
them, so each member's calibration is measured on patients it never learnt from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from heartbeat.prepare.arrays import Split


def held_out_records(records: Sequence, n: int, entropy: Sequence[int]) -> list:
    """``n`` of ``records``, drawn without replacement by a generator seeded with ``entropy``.

    One draw for the pipeline's members (``entropy`` = the member's seed) and bench/new_patients.py's
    validation records (the seed and the test record), so the bench's single runs are members."""
    rng = np.random.default_rng(list(entropy))
    return sorted(rng.choice(np.asarray(records), size=n, replace=False).tolist())


def pool_records(pool: Split) -> np.ndarray | None:
    """The records (``G`` values) that ``pool`` holds, sorted; None where it does not say."""
    return None if pool.G is None else np.unique(pool.G)


def member_splits(pool: Split, n: int, seed: int) -> tuple[Split, Split, list[int]]:
    """One member's training and validation beats from ``pool``: validation is every beat of ``n``
    records drawn with ``seed`` (:func:`held_out_records`), training the rest. Also the drawn records."""
    out = held_out_records(pool_records(pool), n, [seed])
    mask = np.isin(pool.G, out)
    return pool.take(np.flatnonzero(~mask)), pool.take(np.flatnonzero(mask)), [int(r) for r in out]
