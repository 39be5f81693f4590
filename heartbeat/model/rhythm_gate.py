"""No S beats in atrial fibrillation: the last output step for MIT-BIH models on a recording.

An S beat is premature against the patient's regular rhythm, and in atrial fibrillation there is none:
AAMI labels the beats there N, however short their R-R interval. A model that reads prematurity
raises S alarms wherever fibrillation gives a short interval (hundreds an hour in MIT-BIH 203). So
where the rhythm around a beat is irregularly irregular (:func:`heartbeat.signal.irregular.irregular_beats`),
the beat's probabilities are taken given that it is not S: S's share is spread over the other
classes in proportion. A beat called V stays V; one called S takes its next likeliest class.
Frequent ectopy is regularly irregular and is not touched.
"""

from __future__ import annotations

import json

import numpy as np

from heartbeat.core.beat_spec import MITBIH_CLASSES
from heartbeat.core.errors import DataError, ModelError

SIDECAR_KEY = "irregular_rhythm_gate"
"""Where the training stage stores it in ``models/<name>.json`` (true when it applies)."""
FROM, TO = MITBIH_CLASSES.index("S"), MITBIH_CLASSES.index("N")


def gate_irregular(proba: np.ndarray, irregular: np.ndarray) -> np.ndarray:
    """``proba`` ``(n, 5)`` (MIT-BIH classes) with each beat flagged in ``irregular`` ``(n,)`` given
    its probabilities conditioned on not being S (a beat the model was sure is S becomes N)."""
    proba = np.asarray(proba)
    flags = np.asarray(irregular).astype(bool)
    if proba.ndim != 2 or proba.shape[1] != len(MITBIH_CLASSES) or flags.shape != (len(proba),):
        raise DataError(
            f"irregular-rhythm gate: probabilities of shape {proba.shape} and {flags.shape[0]} flags; "
            f"expected ({len(flags)}, {len(MITBIH_CLASSES)}) MIT-BIH probabilities and one flag per beat"
        )
    out = proba.copy()
    rows = out[flags]
    rows[:, FROM] = 0
    rest = rows.sum(axis=1, keepdims=True)
    sure = rest[:, 0] <= 0
    rows[sure, TO] = rest[sure, 0] = 1
    out[flags] = rows / rest
    return out


def check_gate(value: object, where: str, key: str = SIDECAR_KEY) -> bool:
    """A stored gate (sidecar ``key``) as a bool (absent: False); anything but true or false is a
    :class:`ModelError` naming ``where``, as a damaged temperature or smoothing is."""
    if value is None or isinstance(value, bool):
        return bool(value)
    raise ModelError(
        f"{where}: {key} {json.dumps(value, default=str)[:80]} is not as training writes it "
        "(true or false); retrain the model (dvc repro) or remove the key"
    )
