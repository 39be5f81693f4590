"""Convert a trained ``.keras`` model to TFLite and ONNX, and measure how closely a converted copy follows it.

Why convert at all: the TFLite and ONNX runtimes import in a fraction of the
3 s TensorFlow needs, run without TensorFlow installed, and TFLite's XNNPACK
kernels are among the fastest fp32 CPU paths for this small 1-D ResNet.

Converters, as tried with TensorFlow 2.21 / Keras 3.15 / numpy 2.4:

* TFLite: Keras' ``model.export(format="litert")`` (a SavedModel round trip
  through ``tf.lite.TFLiteConverter``) works. Converter options pass through
  it, which is how the quantised variants are made.
* ONNX: Keras' ``model.export(format="onnx")`` works; it drives tf2onnx 1.17
  and patches tf2onnx's numpy-1 leftovers. ``tf2onnx.convert.from_function``
  directly is the fallback.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from heartbeat.core.atomic import atomic_path
from heartbeat.core.errors import ModelError, first_line

FORMATS: tuple[str, ...] = ("tflite", "onnx")
QUANTIZATIONS: tuple[str, ...] = ("dynamic", "int8", "float16")
"""TFLite post-training quantisation variants:

* ``dynamic``: int8 weights, activations quantised on the fly per batch (no representative beats);
* ``int8``: int8 weights and activations, ranges measured on representative training beats; float input/output;
* ``float16``: fp16 weights, computed in fp32 on x86 (smaller file, no speed-up on this CPU).
"""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keras/tf2onnx print progress to stdout during export; stage logs only need our own lines.

    Keras' tf2onnx patch also probes ``np.object``, which numpy 2.4 answers with
    a FutureWarning that means nothing to a user; the int8 range measurement runs TensorFlow's own
    ``tf.lite.Interpreter``, which announces its deprecation, a notice meant for code calling it.
    """
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated")
        yield


def input_specs(model: Any) -> list[Any]:
    """One float32 ``TensorSpec`` per model input (batch dimension free), named as the input is:
    ``beat``, and ``rhythm`` for a model that also takes the context matrix."""
    import tensorflow as tf

    return [tf.TensorSpec([None, *t.shape[1:]], tf.float32, name=t.name) for t in model.inputs]


def _signature(model: Any) -> list[Any]:
    """The ``input_signature`` Keras' exporters take: a list of specs for one input, and the list of
    all specs inside a list (one argument, the list of inputs) for several."""
    specs = input_specs(model)
    return specs if len(specs) == 1 else [specs]


Representative = np.ndarray | dict[str, np.ndarray]
"""int8 representative beats, from which the converter measures activation ranges: beats for a
one-input model, or one array per input name. (Not the softmax temperature, which is what
"calibration" means elsewhere in this package.)"""


def _converter_options(quantize: str | None, beats: Representative | None) -> dict[str, Any]:
    import tensorflow as tf

    if quantize in (None, "none"):
        return {}
    if quantize == "dynamic":
        return {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantize == "float16":
        return {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": {"supported_types": [tf.float16]}}
    if quantize == "int8":
        arrays = beats if isinstance(beats, dict) else {"": beats}
        if any(a is None or len(a) == 0 for a in arrays.values()):
            raise ModelError("int8 quantisation needs representative beats (the training split)")
        arrays = {k: np.ascontiguousarray(a, dtype=np.float32) for k, a in arrays.items()}
        n = len(next(iter(arrays.values())))

        size = min(32, n)

        def representative() -> Iterator[list[np.ndarray] | dict[str, np.ndarray]]:
            # Several inputs go by name: the converted model orders its inputs by name, not as Keras does.
            # Whole batches only: the converter resizes one input at a time, and a shorter last batch
            # left a two-input model's branches at different batch sizes.
            for start in range(0, n - size + 1, size):
                batch = {k: a[start : start + size] for k, a in arrays.items()}
                yield batch if isinstance(beats, dict) else [batch[""]]

        return {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": representative}
    raise ModelError(f"unknown quantisation {quantize!r}; expected one of {', '.join(QUANTIZATIONS)}")


def tflite_bytes(
    model: Any, quantize: str | None = None, representative: Representative | None = None
) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer (optionally quantised; int8 measures its activation
    ranges on the ``representative`` beats) and return its bytes."""
    options = _converter_options(quantize, representative)
    if len(model.inputs) > 1:
        options["input_signature"] = _signature(model)
    with tempfile.TemporaryDirectory(prefix="heartbeat-tflite-") as tmp:
        target = Path(tmp) / "model.tflite"
        try:
            with _quiet():
                model.export(str(target), format="litert", verbose=False, **options)
        except Exception as exc:
            raise ModelError(f"TFLite conversion failed ({first_line(exc)})") from None
        return target.read_bytes()


def export_tflite(
    model: Any,
    path: str | os.PathLike[str],
    quantize: str | None = None,
    representative: Representative | None = None,
) -> None:
    """Write ``model`` as a TFLite flatbuffer to ``path``, atomically."""
    content = tflite_bytes(model, quantize, representative)
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
                model.export(str(tmp), format="onnx", verbose=False, input_signature=_signature(model))
            canonical_onnx(tmp)
            return "keras.export"
        except ImportError as exc:
            errors.append(f"keras: {first_line(exc)} (pip install tf2onnx onnx)")
        except Exception as exc:
            errors.append(f"keras: {first_line(exc)}")
        try:
            import tensorflow as tf
            import tf2onnx

            fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False))
            with _quiet():
                tf2onnx.convert.from_function(fn, input_signature=input_specs(model), output_path=str(tmp))
            canonical_onnx(tmp)
            return "tf2onnx"
        except Exception as exc:
            errors.append(f"tf2onnx: {first_line(exc)}")
        raise ModelError(f"ONNX conversion failed: {'; '.join(errors)}")


_COUNTER = re.compile(r"(__\d+)+")
"""tf2onnx's process-wide name counter, as it ends a name (``const_fold_opt__337__347``)."""


def _structural_order(graph: Any) -> list[Any]:
    """The graph's nodes in a topological order fixed by what they compute, not by their names.

    A node's key hashes its operator, attributes and inputs (a graph input by name, a stored tensor
    by its bytes, another node's output by that node's key), so equal graphs give equal keys however
    tf2onnx named and ordered them; among the nodes whose inputs are ready, the smallest key comes
    first. Parallel branches (an ensemble's members) otherwise come out in either order, and a node
    tf2onnx merged from the members' equal copies keeps either member's name."""
    import hashlib
    import heapq

    from onnx import numpy_helper

    nodes = list(graph.node)
    value_key = {v.name: f"input:{v.name}" for v in graph.input}
    for tensor in graph.initializer:
        array = numpy_helper.to_array(tensor)
        digest = hashlib.sha256(array.tobytes() + f"{array.dtype}{array.shape}".encode()).hexdigest()
        value_key[tensor.name] = f"stored:{digest}"
    producer = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    parents = [{producer[x] for x in node.input if x in producer} for node in nodes]
    users: dict[int, set[int]] = {}
    for i, ps in enumerate(parents):
        for j in ps:
            users.setdefault(j, set()).add(i)

    def topological(rank: Callable[[int], Any]) -> list[int]:
        waiting = [len(ps) for ps in parents]
        ready = [(rank(i), i) for i, n in enumerate(waiting) if n == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            _, i = heapq.heappop(ready)
            order.append(i)
            for j in users.get(i, ()):
                waiting[j] -= 1
                if waiting[j] == 0:
                    heapq.heappush(ready, (rank(j), j))
        return order

    keys: dict[int, str] = {}
    for i in topological(lambda i: i):  # every node after the nodes it reads
        node = nodes[i]
        attributes = sorted(a.SerializeToString() for a in node.attribute)
        parts = [node.op_type, node.domain, hashlib.sha256(b"".join(attributes)).hexdigest()]
        for name in node.input:
            j = producer.get(name)
            parts.append(
                f"{keys[j]}:{list(nodes[j].output).index(name)}"
                if j is not None
                else value_key.get(name, f"free:{name}")
            )
        keys[i] = hashlib.sha256("|".join(parts).encode()).hexdigest()
    if len(keys) != len(nodes):  # a cycle, which ONNX forbids: leave the graph as it is
        return nodes
    order = [nodes[i] for i in topological(lambda i: keys[i])]
    return order


def canonical_onnx(path: str | os.PathLike[str]) -> None:
    """Rewrite an ONNX file so that one model always gives the same bytes.

    tf2onnx numbers the names it makes (``const_fold_opt__337``, ``unk__350``, the traced
    ``__inference___call___566``) from counters that depend on what the process converted before
    and on the order its optimiser visits constants; merging equal constants or nodes keeps either
    one's name, and parallel branches come out in either order. So two exports of one model differ.
    The nodes are put in an order fixed by what they compute (:func:`_structural_order`), every
    node and value is named by that order (``const__12`` for a stored tensor, ``value__40``,
    ``Conv__7`` for a node), initializers follow their first use, and the graph's doc string loses
    the counter; graph inputs and outputs keep their names.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    ordered = _structural_order(graph)
    graph.ClearField("node")
    graph.node.extend(ordered)
    fixed = {v.name for v in graph.input} | {v.name for v in graph.output}
    stored = {t.name for t in graph.initializer}
    first_use: dict[str, int] = {}
    for node in graph.node:
        for name in (*node.input, *node.output):
            if name and name not in fixed:
                first_use.setdefault(name, len(first_use))

    def rename(name: str) -> str:
        if name in fixed or name not in first_use:
            return name
        return f"{'const' if name in stored else 'value'}__{first_use[name]}"

    for i, node in enumerate(graph.node):
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
        node.name = f"{node.op_type}__{i}"
    initializers = sorted(graph.initializer, key=lambda t: first_use.get(t.name, len(first_use)))
    for tensor in initializers:
        tensor.name = rename(tensor.name)
    graph.ClearField("initializer")
    graph.initializer.extend(initializers)
    infos = sorted(graph.value_info, key=lambda v: first_use.get(v.name, len(first_use)))
    for info in infos:
        info.name = rename(info.name)
    graph.ClearField("value_info")
    graph.value_info.extend(infos)
    dims: dict[str, str] = {}
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param and _COUNTER.search(dim.dim_param):
                dim.dim_param = dims.setdefault(
                    dim.dim_param, f"{_COUNTER.sub('', dim.dim_param)}__{len(dims)}"
                )
    graph.doc_string = _COUNTER.sub("", re.sub(r"_\d+'", "'", graph.doc_string))
    onnx.save(model, str(path))


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
