"""Saving and loading ``.keras`` models safely.

Models are loaded with ``safe_mode=True``, which refuses Lambda layers and
other serialized Python code, so a model file from someone else cannot run
code on load. A file that is not a Keras zip (a pickle renamed ``.keras``, an
HTML page) is rejected with a one-line :class:`ModelError`.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import keras

from heartbeat.atomic import atomic_path
from heartbeat.classes import BEAT_LENGTH
from heartbeat.errors import ModelError


def save_model(model: keras.Model, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)


def load_model(path: str | os.PathLike[str], n_classes: int | None = None) -> keras.Model:
    """Load a trained model and check that it takes 187-sample beats (and has ``n_classes`` outputs)."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: model file not found; train it first (dvc repro)")
    if not zipfile.is_zipfile(p):
        raise ModelError(f"{p}: not a Keras model (.keras zip archive); refusing to load it")
    try:
        model = keras.saving.load_model(p, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, KeyError, OSError... for a bad archive
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ModelError(f"{p}: could not load the model ({detail})") from None
    shape = tuple(model.inputs[0].shape[1:])
    if shape not in ((BEAT_LENGTH,), (BEAT_LENGTH, 1)):
        raise ModelError(f"{p}: the model takes input of shape {shape}, expected ({BEAT_LENGTH},) beats")
    outputs = int(model.outputs[0].shape[-1])
    if n_classes is not None and outputs != n_classes:
        raise ModelError(f"{p}: the model predicts {outputs} classes, expected {n_classes} for this data")
    return model
