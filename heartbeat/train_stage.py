"""What the four training stages share: load splits, build, train, write the model and its history."""

from __future__ import annotations

import logging

from heartbeat import devices, paths
from heartbeat.atomic import write_json, write_text
from heartbeat.classes import DATASET_CLASSES
from heartbeat.config import stage_params
from heartbeat.datasets import load_split
from heartbeat.modelio import load_model, save_model
from heartbeat.models import build_mlp, build_resnet, build_transfer, takes_rhythm
from heartbeat.pipeline import MODELS
from heartbeat.plots import history_csv
from heartbeat.rhythm import RR_COLUMNS
from heartbeat.training import make_deterministic, train

log = logging.getLogger("heartbeat")


def run_training(name: str, params: str = "params.yaml") -> None:
    """Train model ``name`` (a key of ``MODELS``) with its stage's section of ``params``."""
    spec = MODELS[name]
    cfg = stage_params(spec.stage, params)
    n_classes = len(DATASET_CLASSES[spec.dataset])
    folder = paths.PREPARED / spec.dataset
    placement = devices.setup(stage_params("train", params))  # before TensorFlow touches a device
    tr, va = load_split(folder, "train"), load_split(folder, "val")
    make_deterministic(cfg.seed)
    with placement.strategy.scope():  # variables, optimizer and fit under the chosen strategy
        if spec.stage == "train_mlp":
            model = build_mlp(n_classes, cfg.hidden, cfg.dropout)
        elif spec.stage == "finetune_transfer":
            base = load_model(paths.model_file("resnet_mitbih"), len(DATASET_CLASSES["mitbih"]))
            model = build_transfer(base, n_classes, cfg.freeze)
        else:
            rhythm = cfg.rhythm and tr.R is not None and va.R is not None
            if cfg.rhythm and not rhythm:
                log.warning(
                    "%s.rhythm: the prepared data has no R-R features (only the physionet source has them); "
                    "training a beat-only model",
                    spec.stage,
                )
            model = build_resnet(
                n_classes,
                cfg.filters,
                cfg.kernel_size,
                cfg.blocks,
                cfg.dense,
                cfg.dropout,
                rhythm_features=len(RR_COLUMNS) if rhythm else 0,
            )
        result = train(model, tr, va, cfg, replicas=placement.replicas)
    info = {
        "model": name,
        "stage": spec.stage,
        "params": int(result.model.count_params()),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.seconds, 2),
        "device": placement.device,
        "replicas": placement.replicas,
        "global_batch_size": placement.global_batch(cfg.batch_size),
        "mixed_precision": placement.mixed_precision,
        "rhythm_input": takes_rhythm(result.model),
    }
    if result.temperature is not None:
        info["temperature"] = round(result.temperature, 6)  # applied to the probabilities by evaluate
    save_model(devices.for_saving(result.model), paths.model_file(name))
    write_text(paths.history_file(name), history_csv(result.history))
    write_json(paths.train_info_file(name), info)
    log.info(
        "saved %s (%d epochs, best %d, %.1f s)",
        paths.model_file(name),
        len(result.history),
        result.best_epoch,
        result.seconds,
    )
