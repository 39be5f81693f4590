"""What the four training stages share: load splits, build, train, write the model and its history."""

from __future__ import annotations

import logging

import keras
import numpy as np

from heartbeat import devices, paths
from heartbeat.atomic import write_json, write_text
from heartbeat.calibration import fit_temperature
from heartbeat.classes import DATASET_CLASSES
from heartbeat.config import TrainConfig, stage_params
from heartbeat.datasets import Split, load_split
from heartbeat.modelio import load_model, save_model
from heartbeat.models import build_ensemble, build_mlp, build_resnet, build_transfer, takes_rhythm
from heartbeat.pipeline import MODELS, ModelSpec
from heartbeat.plots import history_csv
from heartbeat.rhythm import input_width
from heartbeat.training import make_deterministic, model_inputs, train

log = logging.getLogger("heartbeat")


def build_model(
    spec: ModelSpec, cfg: TrainConfig, tr: Split, va: Split, n_classes: int, base: keras.Model | None = None
) -> keras.Model:
    """A fresh, untrained model for ``spec``'s stage (seed the run before calling it).

    ``base`` is the trained MIT-BIH ResNet the transfer stage starts from. It is loaded before the
    seeding: loading builds layers, which draws random numbers, so a base loaded after it would make
    the transfer model depend on how many members the base has, not only on their weights.
    """
    if spec.stage == "train_mlp":
        return build_mlp(n_classes, cfg.hidden, cfg.dropout)
    if spec.stage == "finetune_transfer":
        if base is None:
            raise ValueError("finetune_transfer needs the trained MIT-BIH ResNet as base")
        return build_transfer(base, n_classes, cfg.freeze)
    rhythm = cfg.rhythm and tr.R is not None and va.R is not None
    if cfg.rhythm and not rhythm:
        log.warning(
            "%s.rhythm: the prepared data has no R-R features (only the physionet source has them); "
            "training a beat-only model",
            spec.stage,
        )
    return build_resnet(
        n_classes,
        cfg.filters,
        cfg.kernel_size,
        cfg.blocks,
        cfg.dense,
        cfg.dropout,
        rhythm_features=input_width(cfg.template) if rhythm else 0,
    )


def ensemble_history(histories: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """The members' histories one after the other, ``epoch`` counting on and ``member`` saying whose.

    Why not one row per epoch: members stop early at different epochs, and a running epoch count keeps
    ``epoch`` a unique x for DVC's linear plot template.
    """
    rows, offset = [], 0
    for member, history in enumerate(histories):
        rows += [{**row, "epoch": row["epoch"] + offset, "member": member} for row in history]
        offset += len(history)
    return rows


def run_training(name: str, params: str = "params.yaml") -> None:
    """Train model ``name`` (a key of ``MODELS``) with its stage's section of ``params``.

    With ``ensemble: k`` (ResNet stages) it trains ``k`` models, seeds ``seed`` to ``seed + k - 1``,
    each exactly as a single run with that seed would, and saves their mean as one model.
    """
    spec = MODELS[name]
    cfg = stage_params(spec.stage, params)
    n_classes = len(DATASET_CLASSES[spec.dataset])
    folder = paths.PREPARED / spec.dataset
    placement = devices.setup(stage_params("train", params))  # before TensorFlow touches a device
    tr, va = load_split(folder, "train"), load_split(folder, "val")
    k = getattr(cfg, "ensemble", 1)
    seeds = [cfg.seed + i for i in range(k)]
    member_cfg = cfg.model_copy(update={"calibration": "none"}) if k > 1 else cfg
    base = None
    if spec.stage == "finetune_transfer":
        with placement.strategy.scope():  # its variables are fine-tuned: they belong to the strategy
            base = load_model(paths.model_file("resnet_mitbih"), len(DATASET_CLASSES["mitbih"]))
    results = []
    for i, seed in enumerate(seeds):
        if k > 1:
            log.info("ensemble member %d/%d (seed %d)", i + 1, k, seed)
        make_deterministic(seed)
        with placement.strategy.scope():  # variables, optimizer and fit under the chosen strategy
            model = build_model(spec, cfg, tr, va, n_classes, base)
            results.append(train(model, tr, va, member_cfg, replicas=placement.replicas))
    info = {
        "model": name,
        "stage": spec.stage,
        "device": placement.device,
        "replicas": placement.replicas,
        "global_batch_size": placement.global_batch(cfg.batch_size),
        "mixed_precision": placement.mixed_precision,
        "train_seconds": round(sum(r.seconds for r in results), 2),
        "epochs_run": sum(len(r.history) for r in results),
    }
    if k == 1:
        result = results[0]
        model, history, temperature = devices.for_saving(result.model), result.history, result.temperature
        info["best_epoch"] = result.best_epoch
    else:
        model = build_ensemble(
            [devices.for_saving(r.model) for r in results], f"{results[0].model.name}_ensemble"
        )
        history = ensemble_history([r.history for r in results])
        info["ensemble"] = {
            "seeds": seeds,
            "epochs_run": [len(r.history) for r in results],
            "best_epoch": [r.best_epoch for r in results],
        }
        temperature = None
        if cfg.calibration == "temperature":
            proba = model.predict(model_inputs(model, va), batch_size=1024, verbose=0)
            temperature = fit_temperature(np.asarray(va.y), proba)
            log.info("temperature scaling of the ensemble: T = %.3f", temperature)
    info["params"] = int(model.count_params())
    info["rhythm_input"] = takes_rhythm(model)
    if temperature is not None:
        info["temperature"] = round(temperature, 6)  # applied to the probabilities by evaluate
    save_model(model, paths.model_file(name))
    write_text(paths.history_file(name), history_csv(history))
    write_json(paths.train_info_file(name), info)
    log.info(
        "saved %s (%d epochs, %.1f s)", paths.model_file(name), info["epochs_run"], info["train_seconds"]
    )
