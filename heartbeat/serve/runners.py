"""Inference with a trained model: three backends behind one call, arrays in, probabilities out.

A *runner* is a loaded model that maps one batch of beats ``(b, 187)`` float32
to class probabilities ``(b, n_classes)`` float32. :func:`load_runner` builds
one from a file, picking the backend from the suffix unless told otherwise:

=========  ============  ==========================================================
backend    file          runtime
=========  ============  ==========================================================
keras      ``.keras``    TensorFlow, loaded with ``safe_mode=True``
tflite     ``.tflite``   the LiteRT interpreter (``ai_edge_litert``) with XNNPACK
onnx       ``.onnx``     ONNX Runtime, CPU execution provider
=========  ============  ==========================================================

Why three: the ``.keras`` file is the pipeline's source of truth, but TensorFlow
takes about 3 s to import, which dominates the cold start of a one-record
prediction; the TFLite and ONNX runtimes import in well under a second and are
what a deployment without TensorFlow would use. The export stage checks that
they agree with Keras (see :mod:`heartbeat.serve.export`).

Heavy imports (TensorFlow, the runtimes) happen inside the loaders, so choosing
one backend never pays for another. Every load failure becomes a one-line
:class:`ModelError`: a file that is not a model must never produce a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from heartbeat.core.beat_spec import BEAT_LENGTH, DATASET_CLASSES
from heartbeat.core.errors import DataError, ModelError, first_line
from heartbeat.core.hashing import sha256_file
from heartbeat.core.layout import EXPORT_DIR, MANIFEST, read_sidecar
from heartbeat.core.native import quiet_native_stderr
from heartbeat.core.registry import signatures
from heartbeat.model.calibration import check_temperature
from heartbeat.model.outputs import OutputSteps, Probabilities

if TYPE_CHECKING:
    import keras

log = logging.getLogger("heartbeat")

BACKENDS: tuple[str, ...] = ("keras", "tflite", "onnx")
SUFFIX_BACKEND: dict[str, str] = {".keras": "keras", ".tflite": "tflite", ".onnx": "onnx"}
BACKEND_SUFFIX: dict[str, str] = {b: s for s, b in SUFFIX_BACKEND.items()}
PRECISIONS: tuple[str, ...] = ("fp32", "dynamic", "int8", "float16")
"""fp32, or a quantised TFLite variant of the export stage (see heartbeat.serve.export.QUANTIZATIONS)."""

DEFAULT_BATCH = 1024
"""Beats per call. Past about 256 every backend is compute-bound on this model; 1024 keeps the
per-call overhead (Python, thread wake-ups) under 1% while the activations (about 25 MB for the
ResNet) still fit in cache-friendly chunks. bench/bench_predict.py measures the effect."""

PROGRESS_MIN_BEATS = 5000
"""Below this a prediction takes well under a second and a progress bar is only noise."""


def default_threads() -> int:
    """CPU cores this process may use (respects taskset/cgroups affinity, unlike ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def cap_threads(requested: int | None) -> int:
    """The threads to use: ``requested`` (``--threads``), at most the cores this process may use, with
    a warning when it asked for more. More threads than cores only add memory (each keeps its
    buffers: 100,000 passed 4 GB) and switching; a count past int32 is not even a valid setting."""
    cores = default_threads()
    if requested is None:
        return cores
    if requested > cores:
        shown = str(requested) if len(str(requested)) <= 24 else f"{str(requested)[:20]}..."
        log.warning("--threads %s: this process may use %d CPU core(s); using %d", shown, cores, cores)
        return cores
    return requested


def dataset_for(n_classes: int, where: str = "model") -> str:
    """The dataset a model was trained on follows from its number of outputs (5 MIT-BIH, 2 PTB)."""
    for name, classes in DATASET_CLASSES.items():
        if len(classes) == n_classes:
            return name
    known = ", ".join(f"{len(c)} ({n})" for n, c in DATASET_CLASSES.items())
    raise ModelError(f"{where}: the model predicts {n_classes} classes; heartbeat models predict {known}")


@dataclass
class Runner:
    """A loaded model: ``run(batch) -> probabilities``, plus what the CLI reports about it."""

    backend: str
    path: Path
    n_classes: int
    run: Callable[[np.ndarray], np.ndarray]
    threads: int
    source: str = ""
    """How the model got here when not loaded as is, e.g. 'converted from x.keras'."""
    inputs: tuple[str, ...] = ("beat",)
    """The model's inputs, in the order ``run`` takes them (:func:`heartbeat.core.registry.signatures`)."""
    rhythm_width: int = 0
    """How many columns of the context matrix (heartbeat/signal/context.py) the rhythm input takes: 6 (R-R)
    or 9 (R-R and the record-template features); 0 without one."""
    steps: OutputSteps = field(default_factory=OutputSteps)
    """What the training stage stored to apply to the model's outputs (its sidecar's softmax
    temperature and smoothing over a recording), applied by :func:`probabilities`; none for a file
    without a sidecar."""
    reference: str = "median"
    """Which beats stood for each recording in the patient features the model was trained on
    (:data:`heartbeat.signal.patient.REFERENCES`): ``heartbeat predict`` computes them the same way."""
    amplitude_stretch_s: float = 0.0
    """Over how long a stretch of each recording those features took its amplitude (0: the whole
    recording; :func:`heartbeat.signal.patient.patient_inputs`): ``heartbeat predict`` does the same."""
    trained_on: dict | None = None
    """What trained the model (its sidecar json's ``trained_on``: source, synthetic or not, records and
    split); None when the model came without a sidecar."""

    @property
    def rhythm(self) -> bool:
        """Whether the model also takes the R-R rhythm context (only a record gives it)."""
        return "rhythm" in self.inputs

    @property
    def dataset(self) -> str:
        return dataset_for(self.n_classes, str(self.path))

    @property
    def class_names(self) -> tuple[str, ...]:
        return DATASET_CLASSES[self.dataset]

    @property
    def patient_options(self) -> dict[str, str | float]:
        """How a recording's patient features are computed for this model (``read_input``'s keywords)."""
        return {"reference": self.reference, "amplitude_stretch_s": self.amplitude_stretch_s}


def _input_shapes() -> dict[str, set[tuple[int, ...]]]:
    from heartbeat.signal.context import CONTEXT_COLUMNS, RR_COLUMNS
    from heartbeat.signal.patient import PATIENT_COLUMNS, WINDOW_SHAPE

    return {
        "beat": {(BEAT_LENGTH,), (BEAT_LENGTH, 1)},
        "rhythm": {(len(RR_COLUMNS),), (len(CONTEXT_COLUMNS),)},
        "window": {WINDOW_SHAPE},
        "patient": {(len(PATIENT_COLUMNS),)},
    }


def _signature(path: Path, names: list[str], shapes: list[tuple]) -> tuple[list[int], tuple[str, ...]]:
    """Which input is which, by name (converted files keep the names, not Keras' order: TFLite sorts
    them), checked against the signatures of the registry's architectures
    (:func:`heartbeat.core.registry.signatures`) and the shapes each input must have. Returns the
    positions of the inputs in signature order, and the signature."""
    allowed = _input_shapes()
    roles = {}
    for i, name in enumerate(names):
        found = [r for r in allowed if r in name.lower()]
        role = found[0] if len(found) == 1 else (names[0] if len(names) == 1 else None)
        if len(names) == 1 and role not in allowed:
            role = "beat"  # a one-input model from elsewhere: it must take beats
        if role is None or tuple(shapes[i][1:]) not in allowed[role]:
            break
        roles[role] = i
    else:
        for signature in signatures():
            if set(signature) == set(roles):
                return [roles[r] for r in signature], signature
    described = ", ".join(f"{n} {tuple(s)}" for n, s in zip(names, shapes, strict=True))
    raise ModelError(
        f"{path}: the model takes {len(names)} input(s) ({described}); heartbeat predict supports "
        f"beats ({BEAT_LENGTH}), beats with the R-R rhythm context, and two-lead windows with patient features"
    )


def _check_output(path: Path, out_shape: tuple) -> int:
    """Check a model returns (batch, n) probabilities for a known dataset; return n."""
    n = out_shape[-1] if len(out_shape) == 2 else None
    if not isinstance(n, int | np.integer) or n < 1:
        raise ModelError(f"{path}: the model returns shape {tuple(out_shape)}, expected (batch, classes)")
    dataset_for(int(n), str(path))
    return int(n)


# ---------------------------------------------------------------- keras


def _check_inputs(path: Path, model: object) -> tuple[tuple[str, ...], int]:
    """A Keras model's signature (:func:`heartbeat.core.registry.signatures`) and its rhythm input's width (0: none)."""
    inputs = list(getattr(model, "inputs", []))
    names = [getattr(t, "name", "?") for t in inputs]
    shapes = [(None, *t.shape[1:]) for t in inputs]
    order, signature = _signature(path, names, shapes)
    if order != list(range(len(order))):
        raise ModelError(f"{path}: the model's inputs are in the order {names}, expected {list(signature)}")
    width = int(inputs[order[1]].shape[1]) if "rhythm" in signature else 0
    return signature, width


def _set_tf_threads(threads: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow was already initialised in this process; keep its setting
        pass


def load_keras(path: Path, threads: int) -> Runner:
    """A ``.keras`` model called through one traced graph (what ``model.predict`` does per batch,
    without its tf.data pipeline and callbacks, which cost about 2 ms per batch)."""
    from heartbeat.model.saving import load_model

    _set_tf_threads(threads)
    return keras_runner(load_model(path), path, threads)


def keras_runner(
    model: keras.Model, path: Path, threads: int | None = None, steps: OutputSteps | None = None
) -> Runner:
    """A runner of a Keras ``model`` already loaded from ``path``, with the stored ``steps`` to apply
    to its outputs (None: none)."""
    threads = default_threads() if threads is None else threads
    signature, width = _check_inputs(path, model)
    n = _check_output(path, tuple(model.outputs[0].shape))
    import tensorflow as tf

    shapes = [tuple(t.shape[1:]) for t in model.inputs]
    specs = [
        tf.TensorSpec([None, *(s if name != "beat" else (BEAT_LENGTH,))], tf.float32)
        for name, s in zip(signature, shapes, strict=True)
    ]

    def forward(*xs: tf.Tensor) -> tf.Tensor:
        # a (187, 1) beat input takes the same beats, reshaped
        xs = [tf.reshape(x, (-1, *s)) for x, s in zip(xs, shapes, strict=True)]
        return model(xs if len(xs) > 1 else xs[0], training=False)

    call = tf.function(forward, input_signature=specs)

    def run(*arrays: np.ndarray) -> np.ndarray:
        return np.asarray(call(*arrays), dtype=np.float32)

    return Runner(
        "keras", path, n, run, threads, inputs=signature, rhythm_width=width, steps=steps or OutputSteps()
    )


# ---------------------------------------------------------------- tflite


def _tflite_interpreter(**kwargs):
    """LiteRT's standalone interpreter (no TensorFlow import), else TensorFlow's deprecated copy."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            import tensorflow as tf
        except ImportError:
            raise ModelError(
                "the tflite backend needs ai-edge-litert or tensorflow; pip install ai-edge-litert"
            ) from None
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return Interpreter(**kwargs)


def load_tflite(path: Path, threads: int, content: bytes | None = None) -> Runner:
    """A TFLite flatbuffer; quantised ones with int8 input/output are (de)quantised here."""
    try:
        if content is not None:
            interp = _tflite_interpreter(model_content=content, num_threads=threads)
        else:
            interp = _tflite_interpreter(model_path=str(path), num_threads=threads)
        inp, out = interp.get_input_details(), interp.get_output_details()
    except ModelError:
        raise
    except Exception as exc:  # the interpreter raises ValueError/RuntimeError for a bad flatbuffer
        raise ModelError(f"{path}: not a TFLite model ({first_line(exc)})") from None
    if len(inp) not in (1, 2) or len(out) != 1:
        raise ModelError(
            f"{path}: the model has {len(inp)} inputs and {len(out)} outputs, expected 1 or 2 and 1"
        )
    shapes = [tuple(int(d) for d in i.get("shape_signature", i["shape"])) for i in inp]
    order, signature = _signature(path, [str(i.get("name", "")) for i in inp], shapes)
    width = shapes[order[1]][1] if "rhythm" in signature else 0
    n = _check_output(path, tuple(int(d) for d in out[0].get("shape_signature", out[0]["shape"])))
    details = [inp[i] for i in order]  # in run()'s argument order
    out_index, out_dtype = out[0]["index"], out[0]["dtype"]
    out_scale, out_zero = out[0]["quantization"]
    state = {"rows": -1}

    def run(*arrays: np.ndarray) -> np.ndarray:
        rows = arrays[0].shape[0]
        if rows != state["rows"]:
            # Re-planning costs a few ms; it happens for the first batch and the last, short one.
            for d in details:
                shape = d.get("shape_signature", d["shape"])
                interp.resize_tensor_input(d["index"], [rows, *(int(s) for s in shape[1:])])
            with quiet_native_stderr():  # LiteRT announces its XNNPACK delegate here
                interp.allocate_tensors()
            state["rows"] = rows
        for d, a in zip(details, arrays, strict=True):
            x = a.reshape((rows, *(int(s) for s in d.get("shape_signature", d["shape"])[1:])))
            if d["dtype"] != np.float32:
                scale, zero = d["quantization"]
                info = np.iinfo(d["dtype"])
                x = np.clip(np.rint(x / scale + zero), info.min, info.max).astype(d["dtype"])
            interp.set_tensor(d["index"], x)
        interp.invoke()
        y = interp.get_tensor(out_index)
        if out_dtype != np.float32:
            y = (y.astype(np.float32) - out_zero) * out_scale
        return np.array(y, dtype=np.float32)  # a copy: the interpreter reuses its buffer

    return Runner("tflite", path, n, run, threads, inputs=signature, rhythm_width=int(width))


# ---------------------------------------------------------------- onnx


def load_onnx(path: Path, threads: int) -> Runner:
    """An ONNX model on ONNX Runtime's CPU provider, all graph optimisations on, one thread pool."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError(
            "the onnx backend needs onnxruntime, which is not installed; pip install onnxruntime"
        ) from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # InvalidProtobuf, Fail, NoSuchFile...
        raise ModelError(f"{path}: not an ONNX model ({first_line(exc)})") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) not in (1, 2) or len(outputs) < 1:
        raise ModelError(f"{path}: the model has {len(inputs)} inputs, expected 1 or 2")
    shapes = [tuple(d if isinstance(d, int) else None for d in i.shape) for i in inputs]
    order, signature = _signature(path, [i.name for i in inputs], shapes)
    width = shapes[order[1]][1] if "rhythm" in signature else 0
    n = _check_output(path, tuple(d if isinstance(d, int) else None for d in outputs[0].shape))
    names = [inputs[i].name for i in order]
    tails = [tuple(shapes[i][1:]) for i in order]
    out_name = outputs[0].name

    def run(*arrays: np.ndarray) -> np.ndarray:
        feed = {
            name: a.reshape((a.shape[0], *tail)) for name, a, tail in zip(names, arrays, tails, strict=True)
        }
        return np.asarray(session.run([out_name], feed)[0], dtype=np.float32)

    return Runner("onnx", path, n, run, threads, inputs=signature, rhythm_width=int(width))


# ---------------------------------------------------------------- choosing a file and backend


def _manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("models"), dict) else {}


def _listed_sha256(path: Path, manifest: dict) -> str | None:
    """The sha256 the export manifest records for the file ``path``, or None when it records none."""
    for entry in manifest.get("models", {}).values():
        hashes = entry.get("file_sha256") if isinstance(entry, dict) else None
        if isinstance(hashes, dict) and isinstance(hashes.get(path.name), str):
            return hashes[path.name]
    return None


def verify_export(path: Path, manifest: dict | None = None) -> None:
    """Refuse an exported file whose bytes differ from the sha256 its folder's manifest records.

    A damaged ``.tflite`` or ``.onnx`` often still loads and then serves wrong probabilities; a
    file the manifest does not list (one a user made) is not checked.
    """
    manifest = _manifest(path.parent) if manifest is None else manifest
    want = _listed_sha256(path, manifest)
    if want is not None and sha256_file(path) != want:
        raise ModelError(
            f"{path}: its sha256 differs from the one in {path.parent / MANIFEST}; the exported file is "
            f"damaged or was replaced; {_remedy(path)}"
        )


def _remedy(path: Path) -> str:
    """What to do about a damaged export: the packaged model's comes with the package (a pip user has
    no DVC pipeline to rerun); a project's is remade by its export stage."""
    from heartbeat.serve import pretrained

    if pretrained.FOLDER in Path(os.path.realpath(path)).parents:
        return "reinstall the package (pip install --force-reinstall heartbeat, or git checkout of the file in a clone) to restore the pretrained model"
    return "rerun the export stage (dvc repro export)"


def exported_for(keras_path: Path, backend: str, precision: str = "fp32") -> Path | None:
    """The export stage's file for ``keras_path`` and ``backend``, if it was made from this very file.

    The manifest records the sha256 of each source ``.keras`` and of each file exported from it;
    a retrained model whose export was not rerun has a different hash, so we never silently serve
    a stale export, and a listed file whose own hash differs is refused (:func:`verify_export`).
    ``precision`` other than fp32 names a quantised TFLite variant, which exists only if it passed
    the export stage's gate.
    """
    folder = keras_path.parent / EXPORT_DIR
    variant = "" if precision == "fp32" else f".{precision}"
    candidate = folder / f"{keras_path.stem}{variant}{BACKEND_SUFFIX[backend]}"
    manifest = _manifest(folder)
    entry = manifest.get("models", {}).get(keras_path.stem, {})
    if (
        not isinstance(entry, dict)
        or not candidate.is_file()
        or entry.get("sha256") != sha256_file(keras_path)
    ):
        return None
    if _listed_sha256(candidate, {"models": {keras_path.stem: entry}}) is None:
        return None  # a manifest that does not vouch for the file's bytes: not an export we can trust
    verify_export(candidate, {"models": {keras_path.stem: entry}})
    return candidate


def _convert_on_the_fly(path: Path, backend: str, threads: int) -> Runner:
    """Convert a ``.keras`` file in memory when there is no up-to-date export of it."""
    from heartbeat.model.saving import load_model
    from heartbeat.serve import convert

    _set_tf_threads(threads)
    model = load_model(path)
    _check_inputs(path, model)
    if backend == "tflite":
        runner = load_tflite(path, threads, content=convert.tflite_bytes(model))
    else:
        with tempfile.TemporaryDirectory(prefix="heartbeat-onnx-") as tmp:
            target = Path(tmp) / f"{path.stem}.onnx"
            convert.export_onnx(model, target)
            runner = load_onnx(target, threads)
        runner.path = path
    runner.source = f"converted from {path.name}"
    return runner


def check_amplitude_stretch(value: object, where: str) -> float:
    """A stored ``trained_on.amplitude_stretch_s`` as a float (absent: 0, as models trained before it
    existed were); anything but seconds in [0, 86400] is a :class:`ModelError` naming ``where``."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 86_400:
        raise ModelError(
            f"{where}: trained_on.amplitude_stretch_s {json.dumps(value, default=str)[:40]} is not as "
            "training writes it (seconds, 0 to 86400); retrain the model (dvc repro) or remove the key"
        )
    return float(value)


def patient_options(trained_on: object, where: str) -> dict[str, str | float]:
    """How the model's training data computed each recording's patient features, from its sidecar's
    ``trained_on`` (checked): the keywords :func:`heartbeat.serve.inputs.read_input` takes."""
    trained = trained_on if isinstance(trained_on, dict) else {}
    return {
        "reference": check_reference(trained.get("reference"), where),
        "amplitude_stretch_s": check_amplitude_stretch(trained.get("amplitude_stretch_s"), where),
    }


def check_reference(value: object, where: str) -> str:
    """A stored ``trained_on.reference``: one of :data:`heartbeat.signal.patient.REFERENCES`, or
    ``median`` when the sidecar has none (models trained before the choice existed)."""
    from heartbeat.signal.patient import REFERENCES

    if value is None:
        return "median"
    if value not in REFERENCES:
        raise ModelError(
            f"{where}: trained_on.reference {str(value)[:40]!r} is not one of {', '.join(REFERENCES)} as "
            "training writes it; retrain the model (dvc repro) or remove the key"
        )
    return str(value)


def load_runner(
    path: str | os.PathLike[str],
    backend: str = "auto",
    threads: int | None = None,
    precision: str = "fp32",
) -> Runner:
    """Load ``path`` for ``backend`` (``auto``: from the suffix), with its stored temperature.

    A ``.keras`` file with ``backend='tflite'`` or ``'onnx'`` uses the export
    stage's file made from it (``models/export/<name>.tflite``) when that is up
    to date, else converts it in memory. ``precision`` (``dynamic``, ``int8``,
    ``float16``) picks a quantised TFLite variant the export stage shipped; it is
    never converted on the fly, because only the stage checks its accuracy.
    Any other mismatch is a :class:`ModelError`.
    """
    runner = _load_runner(Path(path), backend, threads, precision)
    sidecar = _sidecar_for(Path(path))
    folded: list[float] = []
    if sidecar is not None:  # read once; each value is checked as the stage that wrote it would
        where, data = read_sidecar(sidecar)
        runner.steps = OutputSteps.from_sidecar(data, str(where))
        trained = data.get("trained_on")
        runner.trained_on = trained if isinstance(trained, dict) else None
        options = patient_options(runner.trained_on, str(where))
        runner.reference, runner.amplitude_stretch_s = options["reference"], options["amplitude_stretch_s"]
        folded = folded_temperatures(data, str(where))
    if runner.steps.temperature is not None:
        log.info(
            "%s: calibrated probabilities (temperature %.4g, fitted on validation)",
            path,
            runner.steps.temperature,
        )
    elif folded:
        log.info(
            "%s: calibrated probabilities (%d networks averaged, each with its own temperature inside it: "
            "%s, fitted on the records it left out)",
            path,
            len(folded),
            ", ".join(f"{t:.4g}" for t in folded),
        )
    return runner


def folded_temperatures(data: dict, where: str) -> list[float]:
    """The temperatures a held-out-records ensemble's members carry inside them (heartbeat/train/
    bagging.py), from its sidecar's ``ensemble.temperature``; checked as a stored temperature is."""
    ensemble = data.get("ensemble")
    values = ensemble.get("temperature") if isinstance(ensemble, dict) else None
    if values is None:
        return []
    if not isinstance(values, list):
        raise ModelError(f"{where}: ensemble.temperature is not a list of numbers; retrain the model")
    return [check_temperature(t, f"{where}: ensemble") for t in values]


def stored_patient_options(path: str | os.PathLike[str]) -> dict[str, str | float]:
    """How the model at ``path`` was trained to see each recording's patient features (its sidecar's
    ``trained_on``: :func:`patient_options`), read without loading the model: ``heartbeat predict``
    cuts the recording first, so that a bad input is named before the model is loaded."""
    sidecar = _sidecar_for(Path(path))
    if sidecar is None:
        return patient_options(None, str(path))
    where, data = read_sidecar(sidecar)
    return patient_options(data.get("trained_on"), str(where))


def _sidecar_for(p: Path) -> Path | None:
    """The ``.keras`` model whose sidecar (``<name>.json``: temperature, training data) describes ``p``:
    ``p`` itself, or for a file in ``models/export/`` the model it was exported from, only while that
    export is up to date with it (the manifest's hash): a retrained model has a new sidecar."""
    if p.suffix.lower() == ".keras":
        return p
    if p.parent.name != EXPORT_DIR:
        return None
    keras_path = p.parent.parent / f"{p.name.split('.')[0]}.keras"
    if not keras_path.is_file() or exported_for(keras_path, SUFFIX_BACKEND.get(p.suffix.lower(), "")) is None:
        return None
    return keras_path


def _load_runner(
    p: Path,
    backend: str = "auto",
    threads: int | None = None,
    precision: str = "fp32",
) -> Runner:
    threads = cap_threads(threads)
    if not p.exists():
        raise ModelError(f"{p}: model file not found; train it first (dvc repro) or check the path")
    if p.is_dir():
        raise ModelError(f"{p}: is a folder, expected a .keras, .tflite or .onnx model file")
    kind = SUFFIX_BACKEND.get(p.suffix.lower())
    if kind is None:
        raise ModelError(f"{p}: unknown model type {p.suffix!r}; expected .keras, .tflite or .onnx")
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if backend == "auto":
        backend = "tflite" if precision != "fp32" else kind
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if kind != backend and kind != "keras":
        raise ModelError(
            f"{p}: a {kind} model cannot run on the {backend} backend; use --backend {kind} or auto"
        )
    if precision != "fp32":
        return _load_quantised(p, kind, backend, precision, threads)
    if kind != "keras":
        verify_export(p)
    exported = exported_for(p, backend) if kind != backend else None
    if kind != backend and exported is None:
        log.info(
            "%s: no up-to-date export for the %s backend; converting now (run `dvc repro export` to skip this)",
            p,
            backend,
        )
    with quiet_native_stderr():
        if kind == backend:
            return {"keras": load_keras, "tflite": load_tflite, "onnx": load_onnx}[backend](p, threads)
        if exported is None:
            return _convert_on_the_fly(p, backend, threads)
        runner = load_tflite(exported, threads) if backend == "tflite" else load_onnx(exported, threads)
        runner.source = f"exported from {p.name}"
        return runner


def _load_quantised(p: Path, kind: str, backend: str, precision: str, threads: int) -> Runner:
    if kind != "keras":
        raise ModelError(
            f"{p}: --precision {precision} picks the export of a .keras model; "
            "to run a quantised .tflite file, pass that file as the model"
        )
    if backend != "tflite":
        raise ModelError(
            f"--precision {precision} needs the tflite backend (quantised models are TFLite files)"
        )
    exported = exported_for(p, "tflite", precision)
    if exported is None:
        raise ModelError(
            f"{p}: no shipped {precision} variant: the export stage writes "
            f"{EXPORT_DIR}/{p.stem}.{precision}.tflite only when it keeps the test argmax agreement "
            "and macro-F1 gates (see metrics/export.json), and only for an up-to-date export"
        )
    with quiet_native_stderr():
        runner = load_tflite(exported, threads)
    runner.source = f"{precision}-quantised export of {p.name}"
    return runner


# ---------------------------------------------------------------- batching


def check_beats(X: np.ndarray, where: str = "input") -> np.ndarray:
    """Return ``X`` as contiguous float32 ``(n, 187)``, or raise :class:`DataError` saying what is wrong."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != BEAT_LENGTH:
        raise DataError(f"{where}: beats must have shape (n, {BEAT_LENGTH}), got {X.shape}")
    if X.shape[0] == 0:
        raise DataError(f"{where}: no beats to predict (0 rows)")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise DataError(f"{where}: beats must be real numbers, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    finite = np.isfinite(X)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise DataError(f"{where}: row {row + 1}, column {col + 1}: {X[row, col]} is not a finite number")
    return X


def probabilities(
    runner: Runner,
    X: np.ndarray | None,
    batch_size: int = DEFAULT_BATCH,
    progress: bool | None = None,
    rhythm: np.ndarray | None = None,
    window: np.ndarray | None = None,
    patient: np.ndarray | None = None,
    records: np.ndarray | None = None,
    each_beat_alone: bool = False,
    irregular: np.ndarray | None = None,
) -> Probabilities:
    """A model and its inputs to the probabilities a user sees: the network's outputs in batches
    (:func:`network_outputs`), then the steps its training stored (``runner.steps``: the temperature,
    the smoothing over each recording, which needs the beats' ``window``, and the irregular-rhythm
    gate, which needs the beats' ``irregular`` flags, and the QRS gate, which reads their ``patient``
    features); each step's result is kept. ``records``
    ``(n,)`` says which recording each beat is from (None: all from one); ``each_beat_alone`` skips
    the smoothing and the gate. Evaluate, ``heartbeat predict``, the export stage's parity check and
    bench all call this."""
    network = network_outputs(runner, X, batch_size, progress, rhythm, window, patient)
    return runner.steps.apply(network, str(runner.path), window, records, each_beat_alone, irregular, patient)


def predict_proba(
    runner: Runner,
    X: np.ndarray | None,
    batch_size: int = DEFAULT_BATCH,
    progress: bool | None = None,
    rhythm: np.ndarray | None = None,
    window: np.ndarray | None = None,
    patient: np.ndarray | None = None,
    records: np.ndarray | None = None,
    each_beat_alone: bool = False,
    irregular: np.ndarray | None = None,
) -> np.ndarray:
    """The final probabilities ``(n, n_classes)`` of :func:`probabilities`."""
    return probabilities(
        runner, X, batch_size, progress, rhythm, window, patient, records, each_beat_alone, irregular
    ).final


def network_outputs(
    runner: Runner,
    X: np.ndarray | None,
    batch_size: int = DEFAULT_BATCH,
    progress: bool | None = None,
    rhythm: np.ndarray | None = None,
    window: np.ndarray | None = None,
    patient: np.ndarray | None = None,
) -> np.ndarray:
    """The network's own class probabilities ``(n, n_classes)`` for ``n`` beats, in batches, before
    any stored step (:func:`probabilities` applies them).

    The model takes what its signature says (``runner.inputs``): the beats ``X`` ``(n, 187)``; with
    them ``rhythm``, the ``(n, 9)`` context matrix (heartbeat/signal/context.py), of which the model
    reads the first ``runner.rhythm_width`` columns; or ``window`` ``(n, 125, 2)`` and ``patient``
    ``(n, 80)`` (heartbeat/signal/patient.py). Only a recording gives the last three.

    ``progress=None`` shows a tqdm bar on stderr only for inputs of at least
    :data:`PROGRESS_MIN_BEATS` beats when stderr is a terminal.
    """
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, got {batch_size}")
    given = {"beat": X, "rhythm": rhythm, "window": window, "patient": patient}
    arrays = []
    for name in runner.inputs:
        array = given[name]
        if array is None:
            what = "R-R rhythm features" if name == "rhythm" else f"{name} input"
            raise DataError(
                f"{runner.path}: the model takes {what}, which only a recording (a WFDB record or a signal "
                "with its sampling rate) provides; give a recording, or use a beat-only model"
            )
        if name == "beat":
            array = check_beats(array)
        elif name == "rhythm":
            if array.shape[1] < runner.rhythm_width:
                raise DataError(
                    f"{runner.path}: the model takes {runner.rhythm_width} rhythm features, "
                    f"got {array.shape[1]}; build them with heartbeat.signal.record_beats.cut_record(...).context()"
                )
            array = array[:, : runner.rhythm_width]
        arrays.append(np.ascontiguousarray(array, dtype=np.float32))
    n = len(arrays[0])
    if n == 0:
        raise DataError(f"{runner.path}: no beats to predict (0 rows)")
    if any(len(a) != n for a in arrays):
        raise DataError(f"{runner.path}: the inputs have {[len(a) for a in arrays]} rows, expected {n} each")
    if progress is None:
        progress = n >= PROGRESS_MIN_BEATS and sys.stderr.isatty()
    out = np.empty((n, runner.n_classes), dtype=np.float32)
    from tqdm import tqdm

    with tqdm(
        total=n, unit="beat", unit_scale=True, file=sys.stderr, disable=not progress, desc="predict"
    ) as bar:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            proba = runner.run(*(a[start:stop] for a in arrays))
            if proba.shape != (stop - start, runner.n_classes):
                raise ModelError(
                    f"{runner.path}: the model returned shape {proba.shape} for {stop - start} beats"
                )
            out[start:stop] = proba
            bar.update(stop - start)
    return out
