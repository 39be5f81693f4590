"""Temperature scaling (Guo et al. 2017): one scalar that makes softmax confidences honest.

A network trained to a low loss is often over-confident: its top probability
is higher than how often it is right. Dividing the log-probabilities by a
temperature ``T`` fitted on the validation split (minimising the negative
log-likelihood) fixes much of that without changing any prediction: the
argmax, and so accuracy and F1, stay the same. ``T`` is stored with the
model (``models/<name>.json``, key ``temperature``) and applied by evaluate
and predict; expected calibration error (heartbeat/evaluate/metrics.py) measures it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from heartbeat.core.errors import ModelError

EPS = 1e-12
T_BOUNDS = (0.05, 20.0)


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(proba) / T)``; ``T == 1`` returns ``proba`` unchanged."""
    proba = np.asarray(proba, dtype=np.float64)
    if temperature == 1.0:
        return proba.astype(np.float32)
    logits = np.log(np.clip(proba, EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def nll(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    p = np.clip(np.asarray(proba, dtype=np.float64)[np.arange(len(y)), np.asarray(y, dtype=np.int64)], EPS, 1)
    return float(-np.mean(np.log(p)))


def fit_temperature(
    y: np.ndarray, proba: np.ndarray, then: Callable[[np.ndarray], np.ndarray] | None = None
) -> float:
    """The ``T`` in ``T_BOUNDS`` that minimises the NLL of ``proba`` on labels ``y`` (searched in log T).

    ``then`` is what the model's probabilities go through after the temperature (the smoothing over
    each recording, which blends them and so changes their confidence): the NLL is measured after it,
    so the temperature makes the probabilities a user finally sees honest."""
    if len(y) == 0:
        return 1.0
    from scipy.optimize import minimize_scalar  # here, not at the top: heartbeat predict never fits one

    def final(t: float) -> np.ndarray:
        scaled = apply_temperature(proba, t)
        return scaled if then is None else then(scaled)

    res = minimize_scalar(
        lambda logt: nll(y, final(float(np.exp(logt)))),
        bounds=tuple(np.log(T_BOUNDS)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    t = float(np.exp(res.x))
    # Keep 1.0 unless the fit really lowers the NLL: a no-op must stay an exact no-op.
    return t if nll(y, final(t)) < nll(y, final(1.0)) - 1e-9 else 1.0


def check_temperature(value: object, where: str) -> float | None:
    """A stored temperature as a float, None when there is none (``value`` None).

    Only what :func:`fit_temperature` can give is accepted: a finite number in ``T_BOUNDS``. Anything
    else (``Infinity``, 0, a string) is a :class:`ModelError` naming ``where``: an infinite
    temperature would flatten every probability to 1/k and make every beat class 0.
    """
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not T_BOUNDS[0] <= value <= T_BOUNDS[1]:
        raise ModelError(
            f"{where}: temperature {str(value)[:40]!r} is not a number in [{T_BOUNDS[0]:g}, {T_BOUNDS[1]:g}] "
            "as training fits it; retrain the model (dvc repro) or remove the key"
        )
    return float(value)
