"""Training: seeding, the paper's optimiser recipe, early stopping and per-epoch progress.

Determinism: the same params and data on the same machine must give identical
weights, so every run seeds Python, numpy and TensorFlow from the stage's
``seed`` and turns on TensorFlow's op determinism. Results still differ
across CPU types and TensorFlow builds (float sums in another order).

The quality options of :class:`~heartbeat.core.config.TrainConfig` (class weights,
label smoothing, focal loss, the learning-rate schedule, early stopping on validation
macro-F1, temperature scaling) all default to the paper's recipe.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
from sklearn.metrics import f1_score
from sklearn.utils.class_weight import compute_class_weight

from heartbeat.core.config import TrainConfig
from heartbeat.core.errors import ParamsError
from heartbeat.core.interrupts import deferred_interrupts
from heartbeat.model.architectures import model_inputs
from heartbeat.prepare.arrays import Split
from heartbeat.train.history import HISTORY_COLUMNS

log = logging.getLogger("heartbeat")


def make_deterministic(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":  # the pipeline's backend; others only in bench/compare.py
        import tensorflow as tf

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
        parts = " ".join(f"{k}={v:.4f}" for k, v in logs.items() if k in (*HISTORY_COLUMNS, "val_macro_f1"))
        log.info("epoch %d/%d %s (%.1f s)", epoch + 1, self.epochs, parts, time.perf_counter() - self.t0)


class TrainingDiverged(ParamsError):
    """The loss became NaN, infinite or far beyond chance: the weights are garbage, nothing may be saved."""


DIVERGED_FACTOR = 100.0
"""A loss (or validation loss) above this many times ln(classes), the loss of a model that guesses
uniformly, is divergence: class weights average 1 per beat, so a model that learns anything scores
below ln(classes) after its first epoch, and even a model wrong with full confidence on every beat
stays near -ln(Keras' epsilon), about 16. An ``lr`` of 1e8 gave a finite 6.8e27, and a model that
put every beat in one class."""


class StopOnDivergence(keras.callbacks.Callback):
    """Ends training after the first epoch whose loss or validation loss is not a finite number, or is
    above :data:`DIVERGED_FACTOR` × ln(``n_classes``).

    It only reads the epoch's logs, so a run that stays sane trains exactly as without it.
    """

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.limit = DIVERGED_FACTOR * math.log(max(n_classes, 2))
        self.diverged: tuple[int, str, float] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key in ("loss", "val_loss"):
            value = (logs or {}).get(key)
            if value is not None and not (math.isfinite(float(value)) and float(value) <= self.limit):
                self.diverged = (epoch + 1, key, float(value))
                self.model.stop_training = True
                return


COLLAPSED_SPREAD = 1e-3
"""Outputs that move less than this over every validation beat do not depend on the beat: with
``lr: 1`` a tiny MLP's loss settles near a uniform guess's (under :data:`DIVERGED_FACTOR`'s limit)
while every class's probability varies by about 1e-7 and every beat gets one class. A model that
learned anything, even badly, moves its probabilities far more than this between beats."""


def collapsed(proba: np.ndarray, y: np.ndarray) -> int | None:
    """The one class every beat was given, when ``y`` holds several classes and the outputs
    ``proba`` (beats × classes) are the same for every beat within :data:`COLLAPSED_SPREAD`; else None.

    Both conditions: a live model may put every beat of a tiny or lopsided split in one class, but
    one whose outputs ignore its input has diverged, whatever its loss."""
    proba, y = np.asarray(proba), np.asarray(y)
    if len(y) == 0 or len(np.unique(y)) < 2:
        return None
    pred = np.argmax(proba, axis=1)
    if np.any(pred != pred[0]) or float(np.ptp(proba, axis=0).max()) > COLLAPSED_SPREAD:
        return None
    return int(pred[0])


class StopOnInterrupt(keras.callbacks.Callback):
    """Raises a Ctrl-C or SIGTERM held back by :func:`~heartbeat.core.interrupts.deferred_interrupts`
    between two batches or epochs, where Keras' loop is plain Python and no TensorFlow object is
    half released. Before a batch, not after: Keras hands batch-end hooks to a thread of their own
    only while no callback has one, and otherwise fetches every batch's logs from the device first."""

    def __init__(self, check: Callable[[], None]) -> None:
        super().__init__()
        self.check = check

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.check()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.check()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.check()


class ValMacroF1(keras.callbacks.Callback):
    """Adds ``val_macro_f1`` (scikit-learn, over the classes present) to each epoch's logs.

    It must come before the callbacks that monitor it (early stopping, plateau). With
    ``label_smoothing`` set (not None), it also writes ``val_loss`` (the training loss: cross-entropy,
    or focal with ``focal_gamma``) and ``val_accuracy`` from the same predictions, so that ``fit``
    needs no ``validation_data``: one pass over the validation beats per epoch instead of two
    (bench/bench_train.py).
    """

    def __init__(
        self,
        inputs: np.ndarray | list[np.ndarray],
        y: np.ndarray,
        batch_size: int,
        label_smoothing: float | None = None,
        focal_gamma: float = 0.0,
    ) -> None:
        super().__init__()
        self.inputs, self.y, self.batch_size = inputs, np.asarray(y), batch_size
        self.label_smoothing, self.focal_gamma = label_smoothing, focal_gamma

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        proba = self.model.predict(self.inputs, batch_size=self.batch_size, verbose=0)
        pred = np.argmax(proba, axis=1)
        if logs is None:
            return
        logs["val_macro_f1"] = float(f1_score(self.y, pred, average="macro", zero_division=0))
        if self.label_smoothing is not None:
            logs["val_loss"] = crossentropy(self.y, proba, self.label_smoothing, self.focal_gamma)
            logs["val_accuracy"] = float(np.mean(pred == self.y))


def crossentropy(
    y: np.ndarray, proba: np.ndarray, label_smoothing: float = 0.0, focal_gamma: float = 0.0
) -> float:
    """Keras' categorical cross-entropy of probabilities (clipped at its epsilon), in float64; with
    ``focal_gamma`` its focal cross-entropy (``alpha`` 1), each term × (1 − p)^γ."""
    p = np.asarray(proba, dtype=np.float64)
    p = np.clip(p / p.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7)
    n_classes = p.shape[1]
    target = (1 - label_smoothing) * np.eye(n_classes)[np.asarray(y)] + label_smoothing / n_classes
    return float(-np.mean(np.sum(target * (1 - p) ** focal_gamma * np.log(p), axis=1)))


def learning_rate(
    cfg: TrainConfig, steps_per_epoch: int = 1
) -> keras.optimizers.schedules.LearningRateSchedule | float:
    """``step``: the paper's schedule, ``lr`` decayed by ``lr_decay`` every ``lr_decay_steps`` iterations;
    ``cosine``: from ``lr`` to 0 over ``epochs``; ``plateau``: a plain ``lr`` that a callback lowers."""
    if cfg.lr_schedule == "plateau":
        return cfg.lr
    if cfg.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            cfg.lr, decay_steps=max(1, cfg.epochs * steps_per_epoch)
        )
    return keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=cfg.lr, decay_steps=cfg.lr_decay_steps, decay_rate=cfg.lr_decay, staircase=True
    )


def class_weights(y: np.ndarray, mode: str) -> dict[int, float] | None:
    """Loss weight per class: ``balanced`` n/(k·count), ``sqrt`` ∝ 1/√count scaled to a mean of 1 per beat."""
    if mode == "none":
        return None
    classes = np.unique(y)
    weights = compute_class_weight("balanced", classes=classes, y=y)
    if mode == "sqrt":
        counts = np.array([np.sum(y == c) for c in classes], dtype=np.float64)
        weights = 1 / np.sqrt(counts)
        weights *= len(y) / np.sum(weights * counts)
    return {int(c): float(w) for c, w in zip(classes, weights, strict=True)}


def one_hot_targets(cfg: TrainConfig) -> bool:
    """Keras 3's sparse loss has neither label smoothing nor a focal form: with either, labels go in one-hot."""
    return bool(cfg.label_smoothing or cfg.focal_gamma)


def loss_function(cfg: TrainConfig) -> keras.losses.Loss | str:
    """The training loss: cross-entropy, smoothed with ``label_smoothing``, focal with ``focal_gamma``
    (``alpha`` 1: the class weights are ``class_weight``'s job)."""
    if cfg.focal_gamma:
        return keras.losses.CategoricalFocalCrossentropy(
            alpha=1.0, gamma=cfg.focal_gamma, label_smoothing=cfg.label_smoothing
        )
    if cfg.label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    return "sparse_categorical_crossentropy"


def compile_model(model: keras.Model, cfg: TrainConfig, steps_per_epoch: int = 1) -> None:
    loss = loss_function(cfg)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate(cfg, steps_per_epoch)),
        loss=loss,
        metrics=["accuracy"],
    )


def train(
    model: keras.Model,
    train: Split,
    val: Split,
    cfg: TrainConfig,
    replicas: int = 1,
    section: str = "train",
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    """Fit ``model`` (already built under the same seed) and return it with its per-epoch history.

    Call it inside the strategy's scope (heartbeat/train/devices.py). ``cfg.batch_size`` is per replica:
    each step sees ``cfg.batch_size × replicas`` beats. A loss that becomes NaN, infinite or far beyond
    chance (:class:`StopOnDivergence`) stops training with :class:`TrainingDiverged`, naming ``section``
    (params.yaml's) and its learning rate; so does a model that ends :func:`collapsed` on the validation
    beats. ``callbacks`` (Keras callbacks of the caller's: bench/bench_train.py times epochs with one)
    are called after the loop's own.
    """
    batch = cfg.batch_size * replicas
    compile_model(model, cfg, steps_per_epoch=-(-len(train.y) // batch))
    x_train, x_val = model_inputs(model, train), model_inputs(model, val)
    n_classes = int(model.outputs[0].shape[-1])

    def targets(y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        return np.eye(n_classes, dtype=np.float32)[y] if one_hot_targets(cfg) else y

    mode = "min" if cfg.monitor == "val_loss" else "max"
    own: list[keras.callbacks.Callback] = []
    # Monitoring macro-F1 needs the validation predictions anyway: the same pass gives val_loss
    # and val_accuracy, and Keras' own validation pass is skipped.
    single_pass = cfg.monitor == "val_macro_f1"
    if single_pass:
        own.append(ValMacroF1(x_val, val.y, max(batch, 1024), cfg.label_smoothing, cfg.focal_gamma))
    own.append(EpochLog(cfg.epochs))
    guard = StopOnDivergence(n_classes)
    own.append(guard)  # after ValMacroF1, which writes val_loss when Keras does not
    if cfg.lr_schedule == "plateau":
        own.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=cfg.monitor, mode=mode, factor=cfg.lr_decay, patience=cfg.plateau_patience
            )
        )
    if cfg.patience:
        own.append(
            keras.callbacks.EarlyStopping(
                monitor=cfg.monitor, mode=mode, patience=cfg.patience, restore_best_weights=True
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
    with deferred_interrupts() as check:
        hist = model.fit(
            x_train,
            targets(train.y),
            validation_data=None if single_pass else (x_val, targets(val.y)),
            epochs=cfg.epochs,
            batch_size=batch,
            shuffle=True,
            class_weight=class_weights(train.y, cfg.class_weight),
            callbacks=[StopOnInterrupt(check), *own, *callbacks],  # first: before an epoch's validation pass
            verbose=0,
        )
    seconds = time.perf_counter() - t0
    if guard.diverged is not None:
        epoch, key, value = guard.diverged
        beyond = (
            "" if not math.isfinite(value) else f" (over {guard.limit:.0f}, {DIVERGED_FACTOR:g} x a guess's)"
        )
        raise TrainingDiverged(
            f"training diverged: the {key.replace('_', ' ')} became {value:.4g}{beyond} at epoch {epoch}; nothing "
            f"was written; lower {section}.lr in params.yaml (now {cfg.lr:g}), or check the prepared data"
        )
    proba = model.predict(x_val, batch_size=max(batch, 1024), verbose=0)
    one = collapsed(proba, val.y)
    if one is not None:
        raise TrainingDiverged(
            f"training collapsed: every one of the {len(val.y)} validation beats, of "
            f"{len(np.unique(val.y))} classes, is given class {one} and the outputs do not depend on the "
            f"beat; nothing was written; lower {section}.lr in params.yaml (now {cfg.lr:g}), or check the "
            "prepared data"
        )
    n = len(hist.history["loss"])
    history = [
        {"epoch": i + 1, **{k: float(hist.history[k][i]) for k in HISTORY_COLUMNS[1:] if k in hist.history}}
        for i in range(n)
    ]
    monitored = hist.history[cfg.monitor]
    best = int(np.argmax(monitored) if mode == "max" else np.argmin(monitored)) + 1
    return TrainResult(model=model, history=history, seconds=seconds, best_epoch=best)
