"""Training: seeding, the paper's optimiser recipe, early stopping and per-epoch progress.

Determinism: the same params and data on the same machine must give identical
weights, so every run seeds Python, numpy and TensorFlow from the stage's
``seed`` and turns on TensorFlow's op determinism. Results still differ
across CPU types and TensorFlow builds (float sums in another order).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

from heartbeat.config import TrainConfig
from heartbeat.datasets import Split

log = logging.getLogger("heartbeat")

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def make_deterministic(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclass
class TrainResult:
    model: keras.Model
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    best_epoch: int = 0


class EpochLog(keras.callbacks.Callback):
    """One short line per epoch through our logger, instead of Keras' progress bars."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self.t0 = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        parts = " ".join(f"{k}={v:.4f}" for k, v in logs.items() if k in HISTORY_COLUMNS)
        log.info("epoch %d/%d %s (%.1f s)", epoch + 1, self.epochs, parts, time.perf_counter() - self.t0)


def learning_rate(cfg: TrainConfig) -> keras.optimizers.schedules.LearningRateSchedule:
    """The paper's schedule: ``lr`` decayed by ``lr_decay`` every ``lr_decay_steps`` iterations."""
    return keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=cfg.lr, decay_steps=cfg.lr_decay_steps, decay_rate=cfg.lr_decay, staircase=True
    )


def class_weights(y: np.ndarray, mode: str) -> dict[int, float] | None:
    if mode == "none":
        return None
    classes = np.unique(y)
    weights = compute_class_weight("balanced", classes=classes, y=y)
    return {int(c): float(w) for c, w in zip(classes, weights, strict=True)}


def compile_model(model: keras.Model, cfg: TrainConfig) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate(cfg)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def train(model: keras.Model, train: Split, val: Split, cfg: TrainConfig, replicas: int = 1) -> TrainResult:
    """Fit ``model`` (already built under the same seed) and return it with its per-epoch history.

    Call it inside the strategy's scope (heartbeat/devices.py). ``cfg.batch_size`` is per replica:
    each step sees ``cfg.batch_size × replicas`` beats.
    """
    compile_model(model, cfg)
    callbacks: list[keras.callbacks.Callback] = [EpochLog(cfg.epochs)]
    if cfg.patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=cfg.patience, restore_best_weights=True
            )
        )
    log.info(
        "training %s (%s parameters) on %d beats, validating on %d, batch %d",
        model.name,
        f"{model.count_params():,}",
        len(train.y),
        len(val.y),
        cfg.batch_size * replicas,
    )
    t0 = time.perf_counter()
    hist = model.fit(
        np.asarray(train.X, dtype=np.float32),
        np.asarray(train.y),
        validation_data=(np.asarray(val.X, dtype=np.float32), np.asarray(val.y)),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size * replicas,
        shuffle=True,
        class_weight=class_weights(train.y, cfg.class_weight),
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - t0
    n = len(hist.history["loss"])
    history = [
        {"epoch": i + 1, **{k: float(hist.history[k][i]) for k in HISTORY_COLUMNS[1:] if k in hist.history}}
        for i in range(n)
    ]
    best = int(np.argmin(hist.history["val_loss"])) + 1
    return TrainResult(model=model, history=history, seconds=seconds, best_epoch=best)
