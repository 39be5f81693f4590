"""Where the pipeline reads and writes, relative to the project root (DVC runs stages from there).

Each model's files are named after it; the models, their stages and datasets are in
heartbeat/core/registry.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from heartbeat.core.errors import DataError, ModelError, first_line, input_file
from heartbeat.core.registry import MODEL_SPECS

RAW = Path("data/raw")
PREPARED = Path("data/prepared")
CACHE = Path(".cache")
MODELS = Path("models")
METRICS = Path("metrics")
PLOTS = Path("plots")
OUTPUT_ROOTS = (Path("data"), MODELS, METRICS, PLOTS)
"""The folders every stage output lives under."""

RAW_FILES: tuple[str, ...] = (
    "mitbih_train.csv",
    "mitbih_test.csv",
    "ptbdb_normal.csv",
    "ptbdb_abnormal.csv",
)
"""The four CSVs every source writes into data/raw, in the same format as the Kaggle set."""

FILE_CLASSES: dict[str, tuple[int, ...]] = {
    "mitbih_train.csv": (0, 1, 2, 3, 4),
    "mitbih_test.csv": (0, 1, 2, 3, 4),
    "ptbdb_normal.csv": (0,),
    "ptbdb_abnormal.csv": (1,),
}
"""The labels each raw file may hold."""

WINDOWS_FILE = "windows.npy"
"""Beside provenance.parquet in data/raw (sources that cut beats from records): each beat's two-lead
window (heartbeat/signal/patient.py), one per provenance row, in its order."""

EXPORT_DIR = "export"
"""Exported files live in ``<models>/export/`` next to the ``.keras`` they came from."""
MANIFEST = "manifest.json"
"""The export folder's index: the sha256 of each source ``.keras`` and the files made from it."""


def output_folders() -> tuple[Path, ...]:
    """The folders the stages' writers write into (each output's parent), and no other: each stage
    recovers exactly these at start (:func:`heartbeat.core.atomic.recover_folders`) from a writer
    that was killed. Folders below them (a user's ``data/mystudy``) are never searched."""
    per_model = [PLOTS / name for name in MODEL_SPECS]
    return (Path("data"), PREPARED, MODELS, METRICS, METRICS / "details", PLOTS, *per_model)


def model_file(name: str) -> Path:
    return MODELS / f"{name}.keras"


def metrics_file(name: str) -> Path:
    """The model's headline test metrics: a DVC metric, numbers only."""
    return METRICS / f"{name}.json"


def details_file(name: str) -> Path:
    """What the model and its test data are, and its per-class figures: beside the metrics, not one."""
    return METRICS / "details" / f"{name}.json"


def sidecar_file(model_path: str | os.PathLike[str]) -> Path:
    """The model's sidecar json (``models/<name>.json`` beside ``models/<name>.keras``): what trained
    it, its temperature and its smoothing. Written by the training stage; read by :func:`read_sidecar`."""
    return Path(model_path).with_suffix(".json")


MAX_SIDECAR_BYTES = 1 << 20
"""A sidecar is about 1 KB (temperature, smoothing, what the model learnt from); anything near this is
not one."""


def read_sidecar(model_path: str | os.PathLike[str], stage: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The sidecar json beside a model (:func:`sidecar_file`: temperature, smoothing, training data)
    and what it holds; ``{}`` when there is none, since a model may come without one, unless ``stage``
    (the pipeline's stage that writes it) says it must be there: then a missing one is a
    :class:`DataError` naming the stage to rerun. The one reader of it: callers check the values
    they take.

    A sidecar that is there but damaged (not UTF-8 JSON, not an object, a folder, nested beyond
    Python's recursion, a number beyond the digit limit, larger than :data:`MAX_SIDECAR_BYTES`) is a
    :class:`ModelError`: ignoring it would drop the temperature and smoothing without a word, and
    change the classes."""
    path = sidecar_file(model_path)

    def damaged(reason: str) -> ModelError:
        return ModelError(
            f"{path}: the model's sidecar is damaged ({reason}); it holds the model's temperature and "
            "smoothing, without which the classes change: restore it (retrain, or reinstall the package), "
            "or delete it to use the model uncalibrated"
        )

    try:
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            raise damaged(f"{path.stat().st_size:,} bytes, a sidecar is about 1 KB")
        text = path.read_bytes().decode("utf-8")
        data = json.loads(text)
    except FileNotFoundError:
        if stage is not None:
            raise DataError(
                f"{path}: file not found; run the {stage} stage first (dvc repro {stage})"
            ) from None
        return path, {}
    except IsADirectoryError:
        raise damaged("a folder, not a file") from None
    except OSError as exc:
        raise damaged(f"cannot be read: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError as exc:
        raise damaged(f"not UTF-8: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise damaged(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except (ValueError, RecursionError) as exc:
        raise damaged(f"not usable JSON: {first_line(exc, 120)}") from None
    if not isinstance(data, dict):
        raise damaged(f"a JSON {type(data).__name__}, expected an object")
    return path, data


def history_file(name: str) -> Path:
    return PLOTS / name / "history.csv"


def read_json(path: Path, stage: str) -> dict[str, Any]:
    """Read a JSON output of an earlier ``stage``; a missing or broken file says which stage to rerun."""
    with input_file(path, "a JSON file", f"run the {stage} stage first (dvc repro {stage})"):
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); rerun dvc repro {stage}"
        ) from None
