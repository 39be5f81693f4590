"""What a model's outputs must be before anyone reads them as results: finite probabilities.

A model whose training diverged computes NaN for every beat; argmax then says class 0 for all of
them and the metrics come out as numbers or as a traceback. Evaluate and predict check the outputs
first and refuse such a model with one line.
"""

from __future__ import annotations

import numpy as np

from heartbeat.core.errors import ModelError


def check_probabilities(proba: np.ndarray, where: str) -> np.ndarray:
    """``proba`` ``(n, k)`` when every output is a finite number; else a :class:`ModelError` naming
    ``where`` (the model) and the first beat whose output is not."""
    proba = np.asarray(proba)
    finite = np.isfinite(proba)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        bad = int((~finite).any(axis=1).sum())
        raise ModelError(
            f"{where}: the model outputs {proba[row, col]} for beat {row + 1} ({bad:,} of {len(proba):,} "
            "beats have a non-finite output); the model is broken (did its training diverge?), retrain it"
        )
    return proba
