"""From a model's outputs to the probabilities a user sees: the one path evaluate, ``heartbeat predict``,
the export stage's parity check and bench all take.

1. The network's outputs must be finite probabilities. A model whose training diverged computes NaN
   for every beat; argmax then says class 0 for all of them and the metrics come out as numbers or
   as a traceback, so such a model is refused with one line.
2. The softmax temperature its training stage stored (heartbeat/model/calibration.py), if any.
3. The smoothing over each recording it stored (heartbeat/model/smoothing.py), if any, and only
   where the beats' windows are given (only a recording has them).
4. The irregular-rhythm gate it stored (heartbeat/model/rhythm_gate.py), if any, and only where the
   beats' flags are given (only a recording's R-peaks give them): no S in atrial fibrillation.
5. The QRS gate it stored (heartbeat/model/qrs_gate.py), if any, and only where the beats' features
   against their patient are given: no S where the QRS is unlike the patient's.

:class:`OutputSteps` holds 2 to 5 as read from the model's sidecar; :meth:`OutputSteps.apply` runs
1 to 5 in that order. The network call itself is the caller's (:func:`heartbeat.serve.runners.probabilities`
for a model file on any backend).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from heartbeat.core.beat_spec import MITBIH_CLASSES
from heartbeat.core.errors import ModelError
from heartbeat.core.stored import RecordSmoothing
from heartbeat.model.calibration import apply_temperature, check_temperature
from heartbeat.model.qrs_gate import SIDECAR_KEY as QRS_GATE_KEY
from heartbeat.model.qrs_gate import gate_unlike_qrs
from heartbeat.model.rhythm_gate import SIDECAR_KEY as GATE_KEY
from heartbeat.model.rhythm_gate import check_gate, gate_irregular
from heartbeat.model.smoothing import SIDECAR_KEY, check_smoothing, smooth_over_records


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


@dataclass(frozen=True)
class Probabilities:
    """Each step's probabilities ``(n, classes)``, so that evaluate can report what each step adds."""

    network: np.ndarray
    """The model's own outputs."""
    calibrated: np.ndarray
    """After the stored temperature (``network`` when there is none)."""
    final: np.ndarray
    """After the stored smoothing over each recording and the irregular-rhythm gate (``calibrated``
    when neither was applied): what a user sees and what the metrics score."""
    temperature: float | None
    """The temperature that was applied; None when there is none."""
    smoothing: RecordSmoothing | None
    """The smoothing that was applied; None when none was."""
    irregular: np.ndarray | None = None
    """The beats the irregular-rhythm gate took S from (a boolean mask); None when it was not applied."""
    before_gate: np.ndarray | None = None
    """The probabilities the gate was given (after the smoothing); None when it was not applied."""
    unlike_qrs: np.ndarray | None = None
    """The beats the QRS gate took S from (a boolean mask); None when it was not applied."""
    before_qrs_gate: np.ndarray | None = None
    """The probabilities the QRS gate was given; None when it was not applied."""


@dataclass(frozen=True)
class OutputSteps:
    """What the training stage stored to apply to the model's outputs: temperature, smoothing, gates."""

    temperature: float | None = None
    smoothing: RecordSmoothing | None = None
    irregular_gate: bool = False
    qrs_gate: bool = False

    @classmethod
    def from_sidecar(cls, data: dict[str, Any], where: str) -> OutputSteps:
        """The steps a sidecar (:func:`heartbeat.core.layout.read_sidecar`) holds, each value checked
        as the stage that wrote it would; ``where`` names the sidecar in errors."""
        return cls(
            check_temperature(data.get("temperature"), where),
            check_smoothing(data.get(SIDECAR_KEY), where),
            check_gate(data.get(GATE_KEY), where),
            check_gate(data.get(QRS_GATE_KEY), where, QRS_GATE_KEY),
        )

    def apply(
        self,
        network: np.ndarray,
        where: str,
        windows: np.ndarray | None = None,
        records: np.ndarray | None = None,
        each_beat_alone: bool = False,
        irregular: np.ndarray | None = None,
        patient: np.ndarray | None = None,
    ) -> Probabilities:
        """The network's outputs ``(n, classes)`` through the stored steps. ``windows`` ``(n, ...)``
        are what the smoothing compares beats by (None: it is not applied, as for beats without a
        recording, or with ``each_beat_alone``); ``records`` ``(n,)`` which recording each beat is
        from (None: all from one); ``irregular`` ``(n,)`` which beats are in an irregularly irregular
        stretch of their recording (None, or ``each_beat_alone``: the gate is not applied);
        ``patient`` ``(n, 80)`` the beats' features against their patient, which the QRS gate reads
        (None, or ``each_beat_alone``: it is not applied)."""
        network = check_probabilities(network, where)
        calibrated = network if self.temperature is None else apply_temperature(network, self.temperature)
        smoothing = None if each_beat_alone or windows is None else self.smoothing
        final = (
            calibrated if smoothing is None else smooth_over_records(calibrated, windows, records, smoothing)
        )
        gated, before_gate = None, None
        if self.irregular_gate and irregular is not None and not each_beat_alone:
            _mitbih_only(network, where, GATE_KEY)
            gated, before_gate = np.asarray(irregular, dtype=bool), final
            final = gate_irregular(final, gated)
        unlike, before_qrs = None, None
        if self.qrs_gate and patient is not None and not each_beat_alone:
            _mitbih_only(network, where, QRS_GATE_KEY)
            before_qrs = final
            try:
                final, unlike = gate_unlike_qrs(final, patient)
            except ValueError as exc:
                raise ModelError(f"{where}: {QRS_GATE_KEY} is set, but {exc}; retrain the model") from None
        return Probabilities(
            network, calibrated, final, self.temperature, smoothing, gated, before_gate, unlike, before_qrs
        )


def _mitbih_only(network: np.ndarray, where: str, key: str) -> None:
    """A gate moves S: a :class:`ModelError` when the model has other classes than MIT-BIH's."""
    if network.shape[1] != len(MITBIH_CLASSES):
        raise ModelError(
            f"{where}: {key} is set but the model has {network.shape[1]} classes; only a "
            "MIT-BIH model (N, S, V, F, Q) takes it; retrain the model or remove the key"
        )
