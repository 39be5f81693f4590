"""Saving and loading ``.keras`` models safely.

Models are loaded with ``safe_mode=True``, which refuses Lambda layers and
other serialized Python code, so a model file from someone else cannot run
code on load. A file that is not a Keras zip (a pickle renamed ``.keras``, an
HTML page) is rejected with a one-line :class:`ModelError`.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras

from heartbeat.core.atomic import atomic_path
from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.errors import ModelError
from heartbeat.signal.patient import WINDOW_SHAPE

# What a .keras archive records about the process that wrote it, pinned so that the same weights
# give the same bytes: DVC then sees an unchanged file after a rerun that reproduced the model
# exactly, and skips what depends on it.
_SAVED_DATE = "1980-01-01@00:00:00"  # metadata.json "date_saved", in Keras' own format
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold


def save_model(model: keras.Model, path: str | os.PathLike[str]) -> None:
    """Save ``model`` atomically as a byte-deterministic ``.keras`` file (see :func:`_normalise_archive`)."""
    with atomic_path(path) as tmp:
        model.save(tmp)
        _normalise_archive(tmp)


def _normalise_archive(path: Path) -> None:
    """Rewrite a ``.keras`` zip without what differs between two saves of the same model.

    - the save time: ``date_saved`` in metadata.json, and every zip entry's date;
    - in config.json, ``shared_object_id``: Keras numbers an object serialised more than once
      (the layers' shared dtype policy) by its memory address. Renumbering them 1, 2, ... in order
      of appearance keeps which configs share an object, which is all loading uses them for.

    Entries, their order and compression are kept; the weights file is already deterministic.
    """
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in entries:
            if info.filename == "metadata.json":
                meta = json.loads(data)
                if "date_saved" in meta:
                    meta["date_saved"] = _SAVED_DATE
                data = json.dumps(meta).encode()
            elif info.filename == "config.json":
                data = json.dumps(_renumber_shared_objects(json.loads(data), {})).encode()
            pinned = zipfile.ZipInfo(info.filename, date_time=_ZIP_DATE)
            pinned.compress_type = info.compress_type
            pinned.external_attr = info.external_attr
            dst.writestr(pinned, data)


def _renumber_shared_objects(node: object, ids: dict[int, int]) -> object:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "shared_object_id" and isinstance(value, int):
                out[key] = ids.setdefault(value, len(ids) + 1)
            else:
                out[key] = _renumber_shared_objects(value, ids)
        return out
    if isinstance(node, list):
        return [_renumber_shared_objects(v, ids) for v in node]
    return node


def load_model(path: str | os.PathLike[str], n_classes: int | None = None) -> keras.Model:
    """Load a trained model and check that it takes 187-sample beats or two-lead windows (and has
    ``n_classes`` outputs)."""
    from heartbeat.model import (
        architectures,  # registers LeadDropout before Keras looks it up
        classical,  # noqa: F401  (registers TreeEnsemble and WindowSamples)
    )

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
    if shape not in ((BEAT_LENGTH,), (BEAT_LENGTH, 1), WINDOW_SHAPE) or (
        shape == WINDOW_SHAPE and model.inputs[0].name != architectures.WINDOW_INPUT
    ):
        raise ModelError(
            f"{p}: the model takes input of shape {shape}, expected ({BEAT_LENGTH},) beats or {WINDOW_SHAPE} windows"
        )
    outputs = int(model.outputs[0].shape[-1])
    if n_classes is not None and outputs != n_classes:
        raise ModelError(f"{p}: the model predicts {outputs} classes, expected {n_classes} for this data")
    return model
