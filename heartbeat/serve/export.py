"""The export stage's logic: every model to TFLite and ONNX, each copy checked against Keras on the test split.

Parity is the gate: an fp32 export whose argmax agrees with Keras on fewer than
``min_agreement`` of the test beats, or whose probabilities differ by more than
``max_abs_diff``, is an error (the stage fails and the previous exports stay).
A quantised variant is only *shipped* (written) when it keeps ``min_agreement``
and moves the test macro-F1 by less than ``max_f1_change``; its figures are
reported either way. The conversions themselves are :mod:`heartbeat.serve.convert`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from heartbeat.core.atomic import atomic_path
from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.errors import ModelError
from heartbeat.core.hashing import sha256_file
from heartbeat.evaluate.metrics import macro_f1
from heartbeat.prepare.arrays import Split
from heartbeat.serve.convert import FORMATS, Representative, export_onnx, export_tflite, parity, tflite_bytes

log = logging.getLogger("heartbeat")


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
    test: Split,
    formats: tuple[str, ...] | list[str] = FORMATS,
    quantize: tuple[str, ...] | list[str] = (),
    representative: Split | None = None,
    thresholds: Thresholds = Thresholds(),
    batch_size: int = 1024,
) -> dict[str, Any]:
    """Export one model in every format, check parity on the test split, return the figures.

    Writes ``out_dir/<name>.tflite`` and ``.onnx`` (and passing quantised
    variants as ``<name>.<variant>.tflite``). Raises :class:`ModelError` when
    an fp32 export fails parity; a converter that does not work is reported
    (``"error"``) rather than fatal, because the other format is still useful.
    A model with more inputs than the beat is checked, and its int8 ranges measured, with the splits'
    side arrays (``representative``: training beats for int8, :func:`representative_beats`).
    """
    from heartbeat.model.classical import has_trees
    from heartbeat.model.saving import load_model
    from heartbeat.serve.runners import (
        check_beats,
        default_threads,
        load_keras,
        load_onnx,
        load_tflite,
        predict_proba,
    )

    model = load_model(keras_path)
    X = check_beats(test.X, f"test split of {name}")
    y = np.asarray(test.y)
    sides = {"rhythm": test.R, "window": test.W, "patient": test.P}
    # The reference is the keras backend of `heartbeat predict`: the same model call as
    # model.predict, traced once for any batch size instead of once per shape.
    keras_runner = load_keras(keras_path, default_threads())
    reference = predict_proba(keras_runner, X, batch_size, progress=False, **sides)
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
        proba = predict_proba(loaders[fmt](target, 2), X, batch_size, progress=False, **sides)
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
    samples = None
    if representative is not None:
        samples = representative_samples(keras_runner.inputs, representative, name, keras_runner.rhythm_width)
    if quantize and has_trees(model):
        # The converter's quantiser aborts the process on the trees' integer gathers, and their
        # weights are a few kB: nothing to gain. Each variant is reported as not shipped.
        reason = "not quantised: the model holds boosted trees (heartbeat/model/classical.py)"
        log.info("%s: %s", name, reason)
        return {**result, **{f"tflite_{v}": {"error": reason, "shipped": False} for v in quantize}}
    for variant in quantize:
        result[f"tflite_{variant}"] = _quantised(
            name, model, variant, out_dir, X, y, reference, ref_f1, samples, thresholds, batch_size, sides
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
    representative: Representative | None,
    thresholds: Thresholds,
    batch_size: int,
    sides: dict[str, np.ndarray | None],
) -> dict[str, Any]:
    from heartbeat.serve.runners import load_tflite, predict_proba

    try:
        content = tflite_bytes(model, variant, representative)
    except ModelError as exc:
        log.warning("%s: %s quantisation failed: %s", name, variant, exc)
        return {"error": str(exc), "shipped": False}
    runner = load_tflite(Path(f"{name}.{variant}.tflite"), 2, content=content)
    proba = predict_proba(runner, X, batch_size, progress=False, **sides)
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


def representative_samples(
    inputs: tuple[str, ...], beats: Split, name: str, rhythm_width: int = 0
) -> Representative:
    """int8 representative data for a model with ``inputs``: the beats of a one-input model, else one
    array per input name, from the representative split's arrays."""
    R = None if beats.R is None else np.asarray(beats.R)[:, :rhythm_width]
    arrays = {"beat": beats.X, "rhythm": R, "window": beats.W, "patient": beats.P}
    missing = [i for i in inputs if arrays[i] is None]
    if missing:
        raise ModelError(
            f"{name}: the model takes {', '.join(missing)}, which the representative beats have none of"
        )
    if inputs == ("beat",):
        return beats.X
    return {i: np.asarray(arrays[i]) for i in inputs}


def representative_beats(train: Split, n: int, seed: int) -> Split:
    """A fixed random sample of training beats (and their context rows) on which the int8 converter
    measures activation ranges (params.yaml ``export.calibration_beats`` of them)."""
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(train.y), size=min(n, len(train.y)), replace=False))
    X = np.ascontiguousarray(np.asarray(train.X)[take], dtype=np.float32).reshape(-1, BEAT_LENGTH)
    picked = train.take(take)
    return Split(X=X, y=picked.y, R=picked.R, W=picked.W, P=picked.P, G=picked.G)


CONVERTERS = ("tensorflow-cpu", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert")
"""The libraries that write and check the exported files: another version may write other bytes."""


def converter_fingerprint() -> str:
    """The code and library versions that make the exported files, so that a previous export made by
    other code (an older ``canonical_onnx``, another tf2onnx) is converted again, not copied."""
    from importlib.metadata import PackageNotFoundError, version

    from heartbeat.serve import convert

    digest = hashlib.sha256()
    for path in (Path(convert.__file__), Path(__file__)):
        digest.update(path.read_bytes())
    for package in CONVERTERS:
        try:
            digest.update(f"{package}=={version(package)}".encode())
        except PackageNotFoundError:
            digest.update(f"{package} absent".encode())
    return digest.hexdigest()


def inputs_key(source_sha256: str, params: dict[str, Any], data_dir: Path) -> str:
    """One hash of everything an export of one model depends on: the ``.keras`` file, the
    export params, the prepared split it is checked on (and takes int8 representative beats from), and the converter
    code and libraries (:func:`converter_fingerprint`)."""
    digest = hashlib.sha256(source_sha256.encode())
    digest.update(json.dumps(params, sort_keys=True).encode())
    digest.update(converter_fingerprint().encode())
    for f in sorted(data_dir.glob("*.npy")):
        digest.update(f.name.encode())
        digest.update(bytes.fromhex(sha256_file(f)))
    return digest.hexdigest()


def reuse_previous(
    name: str, key: str, previous_dir: Path, out_dir: Path, previous: dict[str, Any]
) -> dict | None:
    """Copy ``name``'s files from the previous export if it was made from exactly the same inputs.

    The export stage exports every model, since it checks them all; after one model is retrained,
    the other three are copied, not converted and checked again (bench/bench_dvc.py). Returns the
    previous parity figures, or None when anything differs or a file is missing or damaged.
    """
    entry = previous.get("manifest", {}).get("models", {}).get(name, {})
    figures = previous.get("report", {}).get("models", {}).get(name)
    files, hashes = entry.get("files"), entry.get("file_sha256")
    if (
        entry.get("inputs") != key
        or figures is None
        or not isinstance(files, list)
        or not isinstance(hashes, dict)
    ):
        return None
    sources = [previous_dir / f for f in files]
    if not all(f.is_file() and f.name.startswith(f"{name}.") for f in sources):
        return None
    if any(hashes.get(f.name) != sha256_file(f) for f in sources):  # a damaged file is made again
        return None
    for f in sources:
        shutil.copy2(f, out_dir / f.name)
    return figures
