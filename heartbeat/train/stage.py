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
from heartbeat.core.beat_spec import DATASET_CLASSES, MITBIH_CLASSES
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
    with_temperature,
)
from heartbeat.model.builders import BUILDERS
from heartbeat.model.calibration import fit_temperature
from heartbeat.model.qrs_gate import SIDECAR_KEY as QRS_GATE_KEY
from heartbeat.model.rhythm_gate import SIDECAR_KEY as GATE_KEY
from heartbeat.model.saving import load_model, save_model
from heartbeat.model.smoothing import SIDECAR_KEY, smooth_over_records
from heartbeat.prepare.arrays import Split, load_split
from heartbeat.signal.context import input_width
from heartbeat.signal.patient import PATIENT_COLUMNS
from heartbeat.train import devices
from heartbeat.train.bagging import member_splits, pool_records
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
    each exactly as a single run with that seed would, and returns their mean as one model. With
    ``ensemble_holdout: n`` each member trains on other records (heartbeat/train/bagging.py) and
    carries its own temperature, so the mean needs none.
    ``placement`` defaults to TensorFlow's default strategy on whatever device it picked.
    """
    k = getattr(cfg, "ensemble", 1)
    seeds = [cfg.seed + i for i in range(k)]
    scope = placement.strategy.scope if placement is not None else contextlib.nullcontext
    replicas = placement.replicas if placement is not None else 1
    plan = input_plan(stage, cfg, tr, va)
    if ARCHITECTURES[plan[0]].fitted and k > 1:
        log.warning(
            "%s.ensemble: %d seeds of %s would be %d copies of one model (it is fitted without random "
            "draws that matter); training one",
            stage,
            k,
            plan[0],
            k,
        )
        k, seeds = 1, seeds[:1]
    pool = _bagging_pool(stage, cfg, plan, tr, va) if k > 1 else None
    smoothing = getattr(cfg, "record_smoothing", None)
    if smoothing is not None and smoothing.weight == 0:
        smoothing = None
    held_out: list[list[int]] = []
    member_temperatures: list[float] = []
    results = []
    if ARCHITECTURES[plan[0]].fitted:
        make_deterministic(cfg.seed)
        results.append(fit_classical(plan[0], cfg, tr, va, n_classes))
    for i, seed in enumerate(seeds if not results else []):
        member_tr, member_va = tr, va
        if pool is not None:
            member_tr, member_va, out = member_splits(pool, cfg.ensemble_holdout, seed)
            held_out.append(out)
            log.info("ensemble member %d/%d (seed %d), records %s held out", i + 1, k, seed, out)
        elif k > 1:
            log.info("ensemble member %d/%d (seed %d)", i + 1, k, seed)
        make_deterministic(seed)
        with scope(), _out_of_memory(stage):  # variables, optimizer and fit under the chosen strategy
            member = cfg.model_copy(update={"seed": seed})
            model = build_model(stage, member, n_classes, plan, base)
            results.append(train(model, member_tr, member_va, member, replicas=replicas, section=stage))
        if pool is not None and cfg.calibration == "temperature":
            # Fitted on the member's own held-out records, as a single network's on its validation.
            t = calibrate(results[-1].model, member_va, _smoothing_for(results[-1].model, smoothing))
            with_temperature(results[-1].model, t)
            member_temperatures.append(round(t, 6))
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
        if pool is not None:
            info["ensemble"]["held_out_records"] = held_out  # G values: indices into the sorted records
            if member_temperatures:
                info["ensemble"]["temperature"] = member_temperatures  # folded into each member
    info["weight_count"] = int(model.count_params())
    info["rhythm_input"] = takes_rhythm(model)
    smoothing = _smoothing_for(model, smoothing)
    temperature = None
    # A held-out-records ensemble has no records that none of its members learnt from to fit one
    # more temperature on; each member carries its own.
    if cfg.calibration == "temperature" and pool is None:
        temperature = calibrate(model, va, smoothing)
        info["temperature"] = round(temperature, 6)  # applied to the probabilities by evaluate and predict
    if smoothing is not None:
        info[SIDECAR_KEY] = smoothing.as_dict()  # applied after the temperature by evaluate and predict
    if getattr(cfg, "irregular_rhythm_gate", False) and _gate_applies(stage, n_classes, va):
        info[GATE_KEY] = True  # applied after the smoothing by evaluate and predict
    if getattr(cfg, "unlike_qrs_gate", False) and _qrs_gate_applies(stage, n_classes, plan[0]):
        info[QRS_GATE_KEY] = True  # applied last by evaluate and predict
    return Trained(model, history, temperature, info, seconds=sum(r.seconds for r in results))


def _qrs_gate_applies(stage: str, n_classes: int, architecture: str) -> bool:
    """Whether ``unlike_qrs_gate`` can apply: a MIT-BIH model that takes the features against the
    patient (the QRS gate reads them, and only such a model's data has them wherever it runs);
    else a warning says why it is left out."""
    if n_classes != len(MITBIH_CLASSES):
        log.warning("%s.unlike_qrs_gate: only a MIT-BIH model has S beats; left out", stage)
        return False
    if not ARCHITECTURES[architecture].reads_patient:
        log.warning(
            "%s.unlike_qrs_gate: %s takes no features against the patient; left out", stage, architecture
        )
        return False
    return True


def _gate_applies(stage: str, n_classes: int, va: Split) -> bool:
    """Whether ``irregular_rhythm_gate`` can apply: a MIT-BIH model (it moves S to N) on data with
    R-peak times (the irregular-rhythm flags); else a warning says why it is left out."""
    if n_classes != len(MITBIH_CLASSES):
        log.warning("%s.irregular_rhythm_gate: only a MIT-BIH model has S beats; left out", stage)
        return False
    if va.I is None:
        log.warning(
            "%s.irregular_rhythm_gate: the prepared data has no R-peak times (the Kaggle CSVs); left out",
            stage,
        )
        return False
    return True


def _smoothing_for(model: keras.Model, smoothing: RecordSmoothing | None) -> RecordSmoothing | None:
    """The record smoothing that applies to ``model``: only a model that reads the beat's window has
    the windows that neighbours are found by."""
    if smoothing is None or all(t.name != WINDOW_INPUT for t in model.inputs):
        return None
    return smoothing


def _bagging_pool(stage: str, cfg: TrainConfig, plan: tuple[str, int], tr: Split, va: Split) -> Split | None:
    """The beats that an ensemble's members draw their held-out records from (the training and
    validation splits together), or None when the members all see the same records: ``ensemble_holdout``
    is 0, or the prepared data has no records (the Kaggle CSVs), which is warned about."""
    n = getattr(cfg, "ensemble_holdout", 0)
    if not n:
        return None
    if getattr(cfg, "with_trees", False) and plan[0] == "patient_net":
        raise ParamsError(
            f"{stage}.ensemble_holdout: {n} gives each network its own records, but the trees of "
            "with_trees: true would learn from them all; set with_trees: false or ensemble_holdout: 0"
        )
    if tr.G is None or va.G is None:
        log.warning(
            "%s.ensemble_holdout: the prepared data does not say which record each beat came from (the "
            "Kaggle CSVs do not; the physionet and demo sources do), so every member sees the same records",
            stage,
        )
        return None
    pool = tr.joined(va)
    records = pool_records(pool)
    if n >= len(records):
        raise ParamsError(
            f"{stage}.ensemble_holdout: {n} records held out of the {len(records)} that the training and "
            f"validation splits hold leaves none to train on; set it below {len(records)}"
        )
    return pool


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
        "amplitude_stretch_s": prepared.get("amplitude_stretch_s", 0.0),
        "dataset": dataset,
        "split": prepared.get("split"),
        "records": {dataset: records} if records else None,
    }


def record_names(groups: list[list[int]], prepared: dict, dataset: str) -> list[list[str]] | list[list[int]]:
    """Record indices (``G`` values: positions in the dataset's sorted records, which preprocess's
    info.json lists) as the records' names; the indices themselves where it lists none."""
    names = (prepared.get("records") or {}).get(dataset)
    if not names or any(i >= len(names) for g in groups for i in g):
        return groups
    return [[str(names[i]) for i in g] for g in groups]


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
    prepared = read_json(layout.PREPARED / "info.json", "preprocess")
    ensemble = trained.info.get("ensemble") or {}
    if "held_out_records" in ensemble:
        ensemble["held_out_records"] = record_names(ensemble["held_out_records"], prepared, spec.dataset)
    info = {
        "model": name,
        "stage": spec.stage,
        "trained_on": trained_on(prepared, spec.dataset),
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
