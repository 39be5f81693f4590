"""Export trained ``.keras`` models to TFLite and ONNX, and check that the exports agree with Keras.

Why export at all: the TFLite and ONNX runtimes import in a fraction of the
3 s TensorFlow needs, run without TensorFlow installed, and TFLite's XNNPACK
kernels are among the fastest fp32 CPU paths for this small 1-D ResNet.

Converters, as tried with TensorFlow 2.21 / Keras 3.15 / numpy 2.4:

* TFLite: Keras' ``model.export(format="litert")`` (a SavedModel round trip
  through ``tf.lite.TFLiteConverter``) works. Converter options pass through
  it, which is how the quantised variants are made.
* ONNX: Keras' ``model.export(format="onnx")`` works; it drives tf2onnx 1.17
  and patches tf2onnx's numpy-1 leftovers. ``tf2onnx.convert.from_function``
  directly is the fallback.

Parity is the gate: an fp32 export whose argmax agrees with Keras on fewer than
``min_agreement`` of the test beats, or whose probabilities differ by more than
``max_abs_diff``, is an error (the stage fails and the previous exports stay).
A quantised variant is only *shipped* (written) when it keeps ``min_agreement``
and moves the test macro-F1 by less than ``max_f1_change``; its figures are
reported either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from heartbeat.atomic import atomic_path
from heartbeat.classes import BEAT_LENGTH
from heartbeat.errors import ModelError

log = logging.getLogger("heartbeat")

FORMATS: tuple[str, ...] = ("tflite", "onnx")
QUANTIZATIONS: tuple[str, ...] = ("dynamic", "int8", "float16")
"""TFLite post-training quantisation variants:

* ``dynamic``: int8 weights, activations quantised on the fly per batch (no calibration data);
* ``int8``: int8 weights and activations, ranges calibrated on training beats; float input/output;
* ``float16``: fp16 weights, computed in fp32 on x86 (smaller file, no speed-up on this CPU).
"""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keras/tf2onnx print progress to stdout during export; stage logs only need our own lines.

    Keras' tf2onnx patch also probes ``np.object``, which numpy 2.4 answers with
    a FutureWarning that means nothing to a user.
    """
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _input_spec(model: Any) -> list[Any]:
    import tensorflow as tf

    shape = [None, *model.inputs[0].shape[1:]]
    return [tf.TensorSpec(shape, tf.float32, name="beat")]


def _converter_options(quantize: str | None, calibration: np.ndarray | None) -> dict[str, Any]:
    import tensorflow as tf

    if quantize in (None, "none"):
        return {}
    if quantize == "dynamic":
        return {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantize == "float16":
        return {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": {"supported_types": [tf.float16]}}
    if quantize == "int8":
        if calibration is None or len(calibration) == 0:
            raise ModelError("int8 quantisation needs calibration beats (the training split)")
        beats = np.ascontiguousarray(calibration, dtype=np.float32)

        def representative() -> Iterator[list[np.ndarray]]:
            for start in range(0, len(beats), 32):
                yield [beats[start : start + 32]]

        return {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": representative}
    raise ModelError(f"unknown quantisation {quantize!r}; expected one of {', '.join(QUANTIZATIONS)}")


def tflite_bytes(model: Any, quantize: str | None = None, calibration: np.ndarray | None = None) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer (optionally quantised) and return its bytes."""
    options = _converter_options(quantize, calibration)
    with tempfile.TemporaryDirectory(prefix="heartbeat-tflite-") as tmp:
        target = Path(tmp) / "model.tflite"
        try:
            with _quiet():
                model.export(str(target), format="litert", verbose=False, **options)
        except Exception as exc:
            raise ModelError(f"TFLite conversion failed ({_first_line(exc)})") from None
        return target.read_bytes()


def export_tflite(
    model: Any,
    path: str | os.PathLike[str],
    quantize: str | None = None,
    calibration: np.ndarray | None = None,
) -> None:
    """Write ``model`` as a TFLite flatbuffer to ``path``, atomically."""
    content = tflite_bytes(model, quantize, calibration)
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)


def export_onnx(model: Any, path: str | os.PathLike[str]) -> str:
    """Write ``model`` as ONNX to ``path`` atomically; return the converter that worked.

    Keras' own exporter first, tf2onnx directly second; if both fail the
    :class:`ModelError` carries both reasons, so the stage log says why.
    """
    errors = []
    with atomic_path(path) as tmp:
        try:
            with _quiet():
                model.export(str(tmp), format="onnx", verbose=False, input_signature=_input_spec(model))
            return "keras.export"
        except ImportError as exc:
            errors.append(f"keras: {_first_line(exc)} (pip install tf2onnx onnx)")
        except Exception as exc:
            errors.append(f"keras: {_first_line(exc)}")
        try:
            import tensorflow as tf
            import tf2onnx

            fn = tf.function(lambda x: model(x, training=False))
            with _quiet():
                tf2onnx.convert.from_function(fn, input_signature=_input_spec(model), output_path=str(tmp))
            return "tf2onnx"
        except Exception as exc:
            errors.append(f"tf2onnx: {_first_line(exc)}")
        raise ModelError(f"ONNX conversion failed: {'; '.join(errors)}")


@dataclass(frozen=True)
class Parity:
    """How closely an export's probabilities follow Keras' on the same beats."""

    n: int
    agreement: float
    disagreements: int
    max_abs_diff: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "argmax_agreement": self.agreement,
            "disagreements": self.disagreements,
            "max_abs_prob_diff": self.max_abs_diff,
        }


def parity(reference: np.ndarray, other: np.ndarray) -> Parity:
    """Argmax agreement and max |Δprob| of ``other`` against ``reference`` (both ``(n, classes)``)."""
    reference, other = np.asarray(reference), np.asarray(other)
    if reference.shape != other.shape or reference.ndim != 2:
        raise ModelError(f"cannot compare probabilities of shapes {reference.shape} and {other.shape}")
    same = reference.argmax(axis=1) == other.argmax(axis=1)
    return Parity(
        n=int(reference.shape[0]),
        agreement=float(same.mean()) if same.size else 1.0,
        disagreements=int((~same).sum()),
        max_abs_diff=float(np.abs(reference.astype(np.float64) - other).max()) if same.size else 0.0,
    )


def macro_f1(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    labels = list(range(proba.shape[1]))
    return float(f1_score(y, proba.argmax(axis=1), labels=labels, average="macro", zero_division=0))


@dataclass(frozen=True)
class Thresholds:
    """The gates of the export stage (params.yaml ``export``)."""

    min_agreement: float = 0.999
    max_abs_diff: float = 1e-4
    max_f1_change: float = 0.002


def export_model(
    name: str,
    keras_path: Path,
    out_dir: Path,
    X_test: np.ndarray,
    y_test: np.ndarray,
    formats: tuple[str, ...] | list[str] = FORMATS,
    quantize: tuple[str, ...] | list[str] = (),
    calibration: np.ndarray | None = None,
    thresholds: Thresholds = Thresholds(),
    batch_size: int = 1024,
) -> dict[str, Any]:
    """Export one model in every format, check parity on the test split, return the figures.

    Writes ``out_dir/<name>.tflite`` and ``.onnx`` (and passing quantised
    variants as ``<name>.<variant>.tflite``). Raises :class:`ModelError` when
    an fp32 export fails parity; a converter that does not work is reported
    (``"error"``) rather than fatal, because the other format is still useful.
    """
    from heartbeat.modelio import load_model
    from heartbeat.predict import (
        check_beats,
        default_threads,
        load_keras,
        load_onnx,
        load_tflite,
        predict_proba,
    )

    model = load_model(keras_path)
    if len(model.inputs) != 1:
        reason = f"the model takes {len(model.inputs)} inputs; only beat-only models are exported"
        log.warning("%s: not exported: %s", name, reason)
        return {"skipped": reason}
    X = check_beats(X_test, f"test split of {name}")
    y = np.asarray(y_test)
    # The reference is the keras backend of `heartbeat predict`: the same model call as
    # model.predict, traced once for any batch size instead of once per shape.
    reference = predict_proba(load_keras(keras_path, default_threads()), X, batch_size, progress=False)
    ref_f1 = macro_f1(y, reference)
    result: dict[str, Any] = {"keras": {"macro_f1": ref_f1, "n": len(y)}}
    loaders = {"tflite": load_tflite, "onnx": load_onnx}
    for fmt in formats:
        target = out_dir / f"{name}.{fmt}"
        try:
            converter = "keras.export" if fmt == "tflite" else ""
            if fmt == "tflite":
                export_tflite(model, target)
            else:
                converter = export_onnx(model, target)
        except ModelError as exc:
            log.warning("%s: %s export failed: %s", name, fmt, exc)
            result[fmt] = {"error": str(exc)}
            continue
        proba = predict_proba(loaders[fmt](target, 2), X, batch_size, progress=False)
        check = parity(reference, proba)
        result[fmt] = {
            **check.as_dict(),
            "macro_f1": macro_f1(y, proba),
            "converter": converter,
            "bytes": target.stat().st_size,
        }
        if check.agreement < thresholds.min_agreement or check.max_abs_diff > thresholds.max_abs_diff:
            raise ModelError(
                f"{target}: export does not match Keras on the test split: argmax agreement "
                f"{check.agreement:.5f} (need >= {thresholds.min_agreement}), max |Δprob| "
                f"{check.max_abs_diff:.2e} (need <= {thresholds.max_abs_diff:g})"
            )
        log.info(
            "%s.%s: argmax agreement %.5f, max |Δprob| %.2e on %d test beats",
            name,
            fmt,
            check.agreement,
            check.max_abs_diff,
            check.n,
        )
    for variant in quantize:
        result[f"tflite_{variant}"] = _quantised(
            name, model, variant, out_dir, X, y, reference, ref_f1, calibration, thresholds, batch_size
        )
    return result


def _quantised(
    name: str,
    model: Any,
    variant: str,
    out_dir: Path,
    X: np.ndarray,
    y: np.ndarray,
    reference: np.ndarray,
    ref_f1: float,
    calibration: np.ndarray | None,
    thresholds: Thresholds,
    batch_size: int,
) -> dict[str, Any]:
    from heartbeat.predict import load_tflite, predict_proba

    try:
        content = tflite_bytes(model, variant, calibration)
    except ModelError as exc:
        log.warning("%s: %s quantisation failed: %s", name, variant, exc)
        return {"error": str(exc), "shipped": False}
    runner = load_tflite(Path(f"{name}.{variant}.tflite"), 2, content=content)
    proba = predict_proba(runner, X, batch_size, progress=False)
    check = parity(reference, proba)
    f1 = macro_f1(y, proba)
    ok = check.agreement >= thresholds.min_agreement and abs(f1 - ref_f1) < thresholds.max_f1_change
    figures = {
        **check.as_dict(),
        "macro_f1": f1,
        "macro_f1_change": f1 - ref_f1,
        "bytes": len(content),
        "shipped": ok,
    }
    if ok:
        with atomic_path(out_dir / f"{name}.{variant}.tflite") as tmp:
            tmp.write_bytes(content)
    log.info(
        "%s.%s.tflite: argmax agreement %.5f, macro-F1 %+.4f: %s",
        name,
        variant,
        check.agreement,
        f1 - ref_f1,
        "shipped" if ok else "not shipped (below the gate)",
    )
    return figures


def calibration_beats(X_train: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A fixed random sample of training beats to calibrate int8 activation ranges."""
    rng = np.random.default_rng(seed)
    take = rng.choice(len(X_train), size=min(n, len(X_train)), replace=False)
    return np.ascontiguousarray(np.asarray(X_train)[np.sort(take)], dtype=np.float32).reshape(-1, BEAT_LENGTH)


def inputs_key(source_sha256: str, params: dict[str, Any], data_dir: Path) -> str:
    """One hash of everything an export of one model depends on: the ``.keras`` file, the
    export params and the prepared split it is checked (and int8-calibrated) on."""
    digest = hashlib.sha256(source_sha256.encode())
    digest.update(json.dumps(params, sort_keys=True).encode())
    for f in sorted(data_dir.glob("*.npy")):
        digest.update(f.name.encode())
        with open(f, "rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()


def reuse_previous(
    name: str, key: str, previous_dir: Path, out_dir: Path, previous: dict[str, Any]
) -> dict | None:
    """Copy ``name``'s files from the previous export if it was made from exactly the same inputs.

    The export stage exports every model, since it checks them all; after one model is retrained,
    the other three are copied, not converted and checked again (bench/bench_dvc.py). Returns the
    previous parity figures, or None when anything differs or a file is missing.
    """
    entry = previous.get("manifest", {}).get("models", {}).get(name, {})
    figures = previous.get("report", {}).get("models", {}).get(name)
    files = entry.get("files")
    if entry.get("inputs") != key or figures is None or not isinstance(files, list):
        return None
    sources = [previous_dir / f for f in files]
    if not all(f.is_file() and f.name.startswith(f"{name}.") for f in sources):
        return None
    for f in sources:
        shutil.copy2(f, out_dir / f.name)
    return figures
