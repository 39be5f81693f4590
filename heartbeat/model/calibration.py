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

import json
import os
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

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


def fit_temperature(y: np.ndarray, proba: np.ndarray) -> float:
    """The ``T`` in ``T_BOUNDS`` that minimises the NLL of ``proba`` on labels ``y`` (searched in log T)."""
    if len(y) == 0:
        return 1.0
    res = minimize_scalar(
        lambda logt: nll(y, apply_temperature(proba, float(np.exp(logt)))),
        bounds=tuple(np.log(T_BOUNDS)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    t = float(np.exp(res.x))
    # Keep 1.0 unless the fit really lowers the NLL: a no-op must stay an exact no-op.
    return t if nll(y, apply_temperature(proba, t)) < nll(y, proba) - 1e-9 else 1.0


def stored_temperature(model_path: str | os.PathLike[str]) -> float | None:
    """The temperature the training stage stored beside ``models/<name>.keras``, or None.

    For inference code (``heartbeat predict``): ``apply_temperature(proba, t)`` when it is not None.
    """
    info = Path(model_path).with_suffix(".json")
    try:
        t = json.loads(info.read_text(encoding="utf-8")).get("temperature")
    except (OSError, ValueError, AttributeError):
        return None
    return float(t) if isinstance(t, int | float) and t > 0 else None
