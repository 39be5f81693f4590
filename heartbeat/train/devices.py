"""Where training runs: CPU or GPU, mixed precision, and TensorFlow's distribution strategy.

The ``train`` section of params.yaml (:class:`~heartbeat.core.config.DeviceConfig`) is read by the
four training stages. :func:`setup` must run before TensorFlow touches a device (it hides the
GPUs for ``device: cpu``), and the model must be built, compiled and fitted inside
``placement.strategy.scope()``:

- ``device``: ``auto`` uses the GPUs when TensorFlow sees any, ``cpu`` hides them,
  ``gpu`` is an error when there is none (e.g. the ``tensorflow-cpu`` wheel is installed).
- ``mixed_precision``: Keras' ``mixed_float16`` policy, on GPU only; on CPU it is ignored with
  a log line (float16 is slow there). The softmax layers are float32 (heartbeat/model/architectures.py), and
  the saved model is converted back to float32 (:func:`for_saving`) so that evaluate, predict
  and export run it in float32 anywhere.
- ``distribute``: ``none`` is TensorFlow's default strategy; ``mirrored`` is
  ``tf.distribute.MirroredStrategy`` over all visible GPUs (one replica on ``/cpu:0`` when
  there is none). ``batch_size`` in params.yaml is per replica: each step sees
  ``batch_size × replicas`` beats (:attr:`Placement.replicas`). The learning rate is not
  scaled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import keras
import tensorflow as tf

from heartbeat.core.config import DeviceConfig
from heartbeat.core.errors import ParamsError

log = logging.getLogger("heartbeat")


@dataclass(frozen=True)
class Placement:
    """The outcome of :func:`setup`: the strategy to build and fit under, and what it runs on."""

    strategy: tf.distribute.Strategy
    device: str  # "cpu" or "gpu"
    replicas: int
    mixed_precision: bool

    def global_batch(self, per_replica: int) -> int:
        return per_replica * self.replicas


def _hide_gpus() -> None:
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:
        raise ParamsError(
            "train.device: cpu must be chosen before TensorFlow starts; call heartbeat.train.devices.setup() first"
        ) from None


def _grow_memory(gpus: list) -> None:
    # Two queued experiments (dvc queue start -j 2) may share a GPU: do not grab all its memory up front.
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError):  # runtime already started: keep its setting
            pass


def setup(cfg: DeviceConfig) -> Placement:
    """Choose the device, the precision policy and the strategy for the ``train`` section ``cfg``."""
    # Each ensemble member traces its own training functions, which TensorFlow's Python logger
    # reports as "retracing" after a few: expected here, and nothing a user can act on.
    tf.get_logger().setLevel(logging.ERROR)
    gpus = tf.config.list_physical_devices("GPU")
    if cfg.device == "gpu" and not gpus:
        build = "a CPU-only TensorFlow build" if not tf.test.is_built_with_cuda() else "no CUDA device found"
        raise ParamsError(
            f"params.yaml: train.device: 'gpu' but TensorFlow sees no GPU ({build}); "
            "set train.device to auto or cpu, or see docs/scaling.md for a GPU install"
        )
    use_gpu = bool(gpus) and cfg.device != "cpu"
    if gpus and not use_gpu:
        _hide_gpus()
    if use_gpu:
        _grow_memory(gpus)

    mixed = cfg.mixed_precision and use_gpu
    if cfg.mixed_precision and not use_gpu:
        log.info("train.mixed_precision: ignored on CPU; training in float32")
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")

    if cfg.distribute == "mirrored":
        strategy: tf.distribute.Strategy = (
            tf.distribute.MirroredStrategy()
            if use_gpu
            else tf.distribute.MirroredStrategy(devices=["/cpu:0"])
        )
    else:
        strategy = tf.distribute.get_strategy()
    placement = Placement(strategy, "gpu" if use_gpu else "cpu", strategy.num_replicas_in_sync, mixed)
    log.info(
        "training on %s, distribute %s (%d replica%s), %s",
        f"{len(gpus)} GPU(s)" if use_gpu else "CPU",
        cfg.distribute,
        placement.replicas,
        "" if placement.replicas == 1 else "s",
        "mixed_float16" if mixed else "float32",
    )
    return placement


def for_saving(model: keras.Model) -> keras.Model:
    """``model`` with every layer in float32, for a model trained under ``mixed_float16``.

    A model saved as is would carry the mixed policy into evaluate and predict, and run in
    float16 on a CPU. Variables are float32 under both policies, so the weights copy exactly.
    """
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        clone = keras.models.clone_model(
            model,
            clone_function=lambda layer: layer.__class__.from_config(
                {**layer.get_config(), "dtype": "float32"}
            ),
        )
    finally:
        keras.mixed_precision.set_global_policy(previous)
    clone.set_weights(model.get_weights())
    return clone
