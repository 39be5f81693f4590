"""What the four training stages share: load splits, build, train, write the model and its history."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from heartbeat.core import layout
from heartbeat.core.atomic import write_json, write_text
from heartbeat.core.beat_spec import DATASET_CLASSES
from heartbeat.core.config import TrainConfig, stage_params
from heartbeat.core.errors import ParamsError, first_line
from heartbeat.core.layout import read_json, sidecar_file
from heartbeat.core.registry import ARCHITECTURES, MODEL_SPECS, model_of_stage
from heartbeat.core.stored import RecordSmoothing
from heartbeat.model.architectures import (
    WINDOW_INPUT,
    build_ensemble,
    has_representation,
    model_inputs,
    takes_rhythm,
)
from heartbeat.model.builders import BUILDERS
from heartbeat.model.calibration import fit_temperature
from heartbeat.model.saving import load_model, save_model
from heartbeat.model.smoothing import SIDECAR_KEY, smooth_over_records
from heartbeat.prepare.arrays import Split, load_split
from heartbeat.signal.context import input_width
from heartbeat.signal.patient import PATIENT_COLUMNS
from heartbeat.train import devices
from heartbeat.train.classical import fit_classical
from heartbeat.train.fit import make_deterministic, train
from heartbeat.train.history import ensemble_history, history_csv

log = logging.getLogger("heartbeat")


def input_plan(stage: str, cfg: TrainConfig, tr: Split, va: Split) -> tuple[str, int]:
    """What the stage's model will read: ``(architecture, w)``, the architecture (the section's
    ``architecture`` key, else the registry's for the stage's model: heartbeat/core/registry.py) and
    the width ``w`` of its rhythm input (0: none).

    A model asked for inputs the prepared data lacks (only the physionet and demo sources know each
    beat's record) falls back to the paper's beat-only ResNet, with a warning.
    """
    architecture = getattr(cfg, "architecture", None) or model_of_stage(stage).architecture
    if ARCHITECTURES[architecture].reads_patient:
        if all(s.W is not None and s.P is not None for s in (tr, va)):
            return architecture, 0
        log.warning(
            "%s.architecture: %s needs each beat's window and patient features, which the prepared "
            "data has none of (only the physionet and demo sources give them); training the paper's ResNet",
            stage,
            architecture,
        )
        return "resnet", 0
    if not getattr(cfg, "rhythm", False):
        return architecture, 0
    if tr.R is None or va.R is None:
        log.warning(
            "%s.rhythm: the prepared data has no R-R features (the Kaggle CSVs have no R-peak times; "
            "the physionet and demo sources do); training a beat-only model",
            stage,
        )
        return architecture, 0
    return architecture, input_width(cfg.template)


def build_model(
    stage: str,
    cfg: TrainConfig,
    n_classes: int,
    plan: tuple[str, int] = ("resnet", 0),
    base: keras.Model | None = None,
    n_features: int = len(PATIENT_COLUMNS),
) -> keras.Model:
    """A fresh, untrained model for ``stage`` (seed the run before calling it): the builder of the
    architecture ``plan`` names (heartbeat/model/builders.py).

    ``plan`` is :func:`input_plan`'s answer. ``base`` is the trained model the stage starts from (the
    MIT-BIH model, for the transfer stage). It is loaded before the seeding: loading builds layers, which
    draws random numbers, so a base loaded after it would make the transfer model depend on how many
    members the base has, not only on their weights.
    """
    architecture, width = plan
    if architecture not in BUILDERS:
        raise ValueError(
            f"{stage}: architecture {architecture!r} has no builder in heartbeat/model/builders.py"
        )
    return BUILDERS[architecture](cfg, n_classes, rhythm_width=width, base=base, n_features=n_features)


@contextlib.contextmanager
def _out_of_memory(stage: str) -> Iterator[None]:
    """A model or batch too large for the memory is a params problem: one line, not a traceback."""
    import tensorflow as tf

    try:
        yield
    except (MemoryError, tf.errors.ResourceExhaustedError) as exc:
        detail = first_line(exc, 120) if isinstance(exc, MemoryError) else "the device ran out of memory"
        raise ParamsError(
            f"{stage}: out of memory building or training the model ({detail}); lower {stage}.batch_size "
            "or the model's size (hidden, filters, dense) in params.yaml"
        ) from None


@dataclass
class Trained:
    """What :func:`fit_stage` returns: the model to save, its history and the figures for its sidecar."""

    model: keras.Model
    history: list[dict[str, float]]
    temperature: float | None
    info: dict[str, Any]
    """What models/<name>.json keeps: only what the same params and data reproduce exactly."""
    seconds: float = 0.0
    """Training wall time: logged, never written to a tracked file (it differs on every run)."""


def fit_stage(
    stage: str,
    cfg: TrainConfig,
    tr: Split,
    va: Split,
    n_classes: int,
    placement: devices.Placement | None = None,
    base: keras.Model | None = None,
) -> Trained:
    """Build and train ``stage``'s model on ``tr``, validating on ``va``; nothing is written.

    With ``ensemble: k`` (ResNet stages) it trains ``k`` models, seeds ``seed`` to ``seed + k - 1``,
    each exactly as a single run with that seed would, and returns their mean as one model.
    ``placement`` defaults to TensorFlow's default strategy on whatever device it picked.
    """
    k = getattr(cfg, "ensemble", 1)
    seeds = [cfg.seed + i for i in range(k)]
    scope = placement.strategy.scope if placement is not None else contextlib.nullcontext
    replicas = placement.replicas if placement is not None else 1
    plan = input_plan(stage, cfg, tr, va)
    results = []
    if ARCHITECTURES[plan[0]].fitted:
        if k > 1:
            raise ParamsError(
                f"{stage}.ensemble: {k} seeds of {plan[0]} would be {k} copies of one model (it is fitted "
                "without random draws that matter); set ensemble: 1"
            )
        make_deterministic(cfg.seed)
        results.append(fit_classical(plan[0], cfg, tr, va, n_classes))
    for i, seed in enumerate(seeds if not results else []):
        if k > 1:
            log.info("ensemble member %d/%d (seed %d)", i + 1, k, seed)
        make_deterministic(seed)
        with scope(), _out_of_memory(stage):  # variables, optimizer and fit under the chosen strategy
            member = cfg.model_copy(update={"seed": seed})
            model = build_model(stage, member, n_classes, plan, base)
            results.append(train(model, tr, va, member, replicas=replicas, section=stage))
    if getattr(cfg, "with_trees", False) and plan[0] != "patient_net":
        log.warning(
            "%s.with_trees: only a patient_net takes the trees beside it; training %s alone", stage, plan[0]
        )
    elif getattr(cfg, "with_trees", False):
        # The trees join as one more member of the mean, after the network(s): the transfer stage
        # fine-tunes member 1, the network.
        make_deterministic(cfg.seed)
        results.append(fit_classical("gbt", cfg, tr, va, n_classes))
    info: dict[str, Any] = {"epochs_run": sum(len(r.history) for r in results)}
    if len(results) == 1:
        result = results[0]
        model, history = devices.for_saving(result.model), result.history
        info["best_epoch"] = result.best_epoch
    else:
        names = [r.model.name for r in results]  # build_ensemble renames them member_0, member_1, ...
        model = build_ensemble(
            [devices.for_saving(r.model) for r in results], f"{results[0].model.name}_ensemble"
        )
        history = ensemble_history([r.history for r in results])
        info["ensemble"] = {
            "members": names,
            "seeds": seeds,
            "epochs_run": [len(r.history) for r in results],
            "best_epoch": [r.best_epoch for r in results],
        }
    info["weight_count"] = int(model.count_params())
    info["rhythm_input"] = takes_rhythm(model)
    smoothing = getattr(cfg, "record_smoothing", None)
    if smoothing is None or smoothing.weight == 0 or all(t.name != WINDOW_INPUT for t in model.inputs):
        smoothing = None
    temperature = None
    if cfg.calibration == "temperature":
        temperature = calibrate(model, va, smoothing)
        info["temperature"] = round(temperature, 6)  # applied to the probabilities by evaluate and predict
    if smoothing is not None:
        info[SIDECAR_KEY] = smoothing.as_dict()  # applied after the temperature by evaluate and predict
    return Trained(model, history, temperature, info, seconds=sum(r.seconds for r in results))


def calibrate(model: keras.Model, va: Split, smoothing: RecordSmoothing | None = None) -> float:
    """The softmax temperature of the final ``model`` (a network, an ensemble or a classical model),
    fitted once on the validation split. With ``smoothing`` the probabilities are smoothed over each
    validation recording after the temperature, as evaluate and predict do, and the temperature is
    fitted to what comes out of that: smoothing blends probabilities, and so changes how sure they are."""
    proba = model.predict(model_inputs(model, va), batch_size=1024, verbose=0)
    then = None
    if smoothing is not None and va.W is not None and va.G is not None:

        def then(p: np.ndarray) -> np.ndarray:
            return smooth_over_records(p, va.W, va.G, smoothing)

    temperature = fit_temperature(np.asarray(va.y), proba, then)
    log.info(
        "temperature scaling: T = %.3f (fitted on %d validation beats%s)",
        temperature,
        len(va.y),
        ", smoothed over each recording" if then else "",
    )
    return temperature


def trained_on(prepared: dict, dataset: str) -> dict:
    """What trained a model, for its sidecar and ``heartbeat predict``'s summary: the source, whether
    the data was synthetic, the split, and the records (the training records, for a patient split)."""
    groups = (prepared.get("groups") or {}).get(dataset)
    records = groups.get("train") if groups else (prepared.get("records") or {}).get(dataset)
    return {
        "source": prepared.get("source"),
        "synthetic": bool(prepared.get("synthetic")),
        "reference": prepared.get("reference", "median"),
        "dataset": dataset,
        "split": prepared.get("split"),
        "records": {dataset: records} if records else None,
    }


def run_training(name: str, params: str = "params.yaml") -> None:
    """Train model ``name`` (a key of heartbeat/core/registry.py's ``MODEL_SPECS``) with its stage's
    section of ``params`` and save it."""
    spec = MODEL_SPECS[name]
    cfg = stage_params(spec.stage, params)
    n_classes = len(DATASET_CLASSES[spec.dataset])
    folder = layout.PREPARED / spec.dataset
    placement = devices.setup(stage_params("train", params))  # before TensorFlow touches a device
    tr, va = load_split(folder, "train"), load_split(folder, "val")
    base = None
    if spec.base is not None:
        source = layout.model_file(spec.base)
        with placement.strategy.scope():  # its variables are fine-tuned: they belong to the strategy
            base = load_model(source, len(DATASET_CLASSES[MODEL_SPECS[spec.base].dataset]))
        if not has_representation(base):
            log.warning(
                "%s is a %s model: it has no learnt representation to transfer, so %s trains "
                "the paper's ResNet on %s from scratch",
                source,
                base.name,
                spec.stage,
                spec.dataset.upper(),
            )
    trained = fit_stage(spec.stage, cfg, tr, va, n_classes, placement, base)
    info = {
        "model": name,
        "stage": spec.stage,
        "trained_on": trained_on(read_json(layout.PREPARED / "info.json", "preprocess"), spec.dataset),
        "device": placement.device,
        "replicas": placement.replicas,
        "global_batch_size": placement.global_batch(cfg.batch_size),
        "mixed_precision": placement.mixed_precision,
        **trained.info,
    }
    save_model(trained.model, layout.model_file(name))
    write_text(layout.history_file(name), history_csv(trained.history))
    write_json(sidecar_file(layout.model_file(name)), info)
    log.info("saved %s (%d epochs, %.1f s)", layout.model_file(name), info["epochs_run"], trained.seconds)
