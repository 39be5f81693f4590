"""No S beat whose QRS is unlike the patient's: an output step for MIT-BIH models that take the
features against the patient.

A supraventricular beat is conducted to the ventricles by the normal path, so its QRS is the
patient's usual one; a ventricular beat's is wide and of another shape. A network that reads
prematurity above all calls an early ventricular beat S when its shape features are less unusual
than those it learnt from (MIT-BIH 106's PVCs, left out of training: 128 false S an hour). Where
the beat's QRS is far from the patient's reference beat in both shape and size
(:func:`heartbeat.signal.patient.unlike_qrs`), its probabilities are taken given that it is not S,
as the irregular-rhythm gate does (:func:`heartbeat.model.rhythm_gate.gate_irregular`). Aberrated
supraventricular beats are the price: their QRS is unlike too.
"""

from __future__ import annotations

import numpy as np

from heartbeat.model.rhythm_gate import gate_irregular

SIDECAR_KEY = "unlike_qrs_gate"
"""Where the training stage stores it in ``models/<name>.json`` (true when it applies)."""


def gate_unlike_qrs(proba: np.ndarray, patient: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``proba`` ``(n, 5)`` with each beat whose QRS is unlike its patient's (from the ``patient``
    features ``(n, 80)``) given its probabilities conditioned on not being S; and those beats."""
    # Imported here: the patient module loads scipy, which scoring a table of beats does not need.
    from heartbeat.signal.patient import unlike_qrs

    flags = unlike_qrs(patient)
    return gate_irregular(proba, flags), flags
