"""Model quality, side by side on real MIT-BIH recordings.

Trains and evaluates, on the same data, splits and seeds, in one run:

* ``paper``: the paper's ResNet (Kachuee et al. 2018) with the paper's recipe: Adam 1e-3, ×0.75
  every 10k steps, batch 128, no rebalancing; early stopping on val_loss (patience 6) as in
  params.yaml;
* ``cnn``: a strong public baseline (the CVxTz/ECG_Heartbeat_Classification Keras CNN) rebuilt
  from its description: Conv16×2, Conv32×2, Conv32×2, Conv256×2 with MaxPool (and dropout 0.1)
  between blocks, GlobalMaxPool, Dense64×2, softmax; Adam 1e-3, batch 32; early stopping on
  validation accuracy (patience 5); ReduceLROnPlateau (×0.1 after 3 epochs);
* ``ours``: the recipe params.yaml ships for train_resnet_mitbih (``--ours``, default
  ``patient_net``: the two-lead window and 80 features against the patient, one network; a test
  checks it against params.yaml); its ``ensemble`` row is the mean of the seeds, as
  ``ensemble: 3`` would make it. The other variants (``VARIANTS``) are the recipes it replaced and
  its ablations.

Data: the physionet source's beats (annotated R-peaks, lead MLII, V5 for 102/104) of every
MIT-BIH record in ``--mirror`` (../shared/data/mitdb: de Chazal DS1 + the 4 paced records).

* ``beat`` split: 20% of the beats of every record, stratified by class, are the test set
  (the physionet source's own ``split_stratified``, seed 0), 10% of the rest validation.
* ``patient`` split: a fixed record split of DS1 (paced records excluded, as de Chazal):
  the project's ``grouped_split`` (StratifiedGroupKFold, first of 4 folds, seed 0) holds out
  records 114 116 208 215 220 as test; validation is again whole records (106 118).
  Macro-F1 on this split is over N, S, V, F (no Q beats outside the paced records).
  ``patient_f1``, ``patient_f2`` and ``patient_f3`` are the other 3 folds: with all four, every
  DS1 record is tested once (grouped cross-validation), and a pooled table follows.

The splits are fixed; ``--seeds`` vary initialisation and batch order only. ``--max-beats``
caps the training split (a stratified random subset, the same for every model and seed) to fit
a CPU budget; validation and test are never cut. Every finished run is stored in ``--results``
(JSON), so an interrupted or extended run (more seeds) resumes where it stopped.

    python bench/compare.py --seeds 0 1 2 --epochs 60 --transfer --confusions   # (a), (b), (c) as shipped
    python bench/compare.py --seeds 0 --epochs 2 --max-beats 3000 --splits beat   # smoke run

``--data-cache FILE.npz`` keeps the beats, so that later runs (or another machine, one without
wfdb) skip the segmentation; ``--merge`` adds runs stored in other results files (as
bench/compare_parallel.sh does) and ``--report-only`` prints the tables without training.

``--transfer`` adds the PTB comparison (from scratch, frozen transfer, full fine-tuning, from
``ours`` trained on the beat split of the same seed) on the 200-beat Kaggle PTB sample in
../shared/data/kaggle-sample: indicative only, its test set has 40 beats.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from heartbeat.core.beat_spec import MITBIH_CLASSES  # noqa: E402
from heartbeat.core.config import (  # noqa: E402
    DS1_RECORDS,
    PACED_RECORDS,
    AugmentConfig,
    PhysionetConfig,
    ResNetConfig,
    TrainConfig,
    WindowAugmentConfig,
)
from heartbeat.core.splits import grouped_split, split_stratified, stratified_split  # noqa: E402
from heartbeat.core.stored import RecordSmoothing  # noqa: E402
from heartbeat.evaluate.metrics import (  # noqa: E402
    AAMI_CLASSES,
    classification_metrics,
    expected_calibration_error,
    per_class_metrics,
)
from heartbeat.evaluate.metrics import confusion as confusion_matrix  # noqa: E402
from heartbeat.model.calibration import apply_temperature, fit_temperature  # noqa: E402
from heartbeat.model.outputs import OutputSteps  # noqa: E402
from heartbeat.prepare.arrays import Split  # noqa: E402
from heartbeat.signal.context import RR_COLUMNS, rhythm_matrix, template_features  # noqa: E402

log = logging.getLogger("compare")

PAPER = ResNetConfig(epochs=30, batch_size=128, patience=6)
"""The paper's recipe: the paper's ResNet, Adam 1e-3 ×0.75 every 10k steps, batch 128, plain loss."""
CNN = TrainConfig(
    epochs=30,
    batch_size=32,  # the Keras default its published code trains with
    lr=1e-3,
    lr_schedule="plateau",
    lr_decay=0.1,
    plateau_patience=3,
    monitor="val_accuracy",
    patience=5,
)
_RS = ResNetConfig(
    epochs=30, batch_size=128, patience=6, rhythm=True, class_weight="sqrt", monitor="val_macro_f1"
)
VARIANTS: dict[str, tuple[str, ResNetConfig]] = {
    "rhythm": ("paper ResNet + R-R input", ResNetConfig(epochs=30, batch_size=128, patience=6, rhythm=True)),
    "sqrt_f1": (
        "paper ResNet, √-balanced loss, stop on val macro-F1",
        ResNetConfig(epochs=30, batch_size=128, patience=6, class_weight="sqrt", monitor="val_macro_f1"),
    ),
    "rhythm_sqrt_f1": (
        "paper ResNet + R-R input, √-balanced loss, stop on val macro-F1",
        ResNetConfig(
            epochs=30, batch_size=128, patience=6, rhythm=True, class_weight="sqrt", monitor="val_macro_f1"
        ),
    ),
    "rhythm_sqrt_f1_ls": (
        "as rhythm_sqrt_f1, label smoothing 0.05",
        _RS.model_copy(update={"label_smoothing": 0.05}),
    ),
    "rhythm_bal_f1": (
        "paper ResNet + R-R input, balanced loss, stop on val macro-F1",
        _RS.model_copy(update={"class_weight": "balanced"}),
    ),
    "rhythm_sqrt_f1_cos": (
        "as rhythm_sqrt_f1, cosine learning rate",
        _RS.model_copy(update={"lr_schedule": "cosine"}),
    ),
    "rhythm_sqrt_f1_wide": (
        "as rhythm_sqrt_f1, 64 filters",
        _RS.model_copy(update={"filters": 64, "dense": 64}),
    ),
    "rhythm_sqrt_f1_aug": ("as rhythm_sqrt_f1, the paper's augmentation (2 copies)", _RS),
    "rhythm_sqrt_f1_wide_aug": (
        "as rhythm_sqrt_f1, 64 filters, the paper's augmentation (2 copies)",
        _RS.model_copy(update={"filters": 64, "dense": 64}),
    ),
    "rhythm_sqrt_f1_tpl": (
        "as rhythm_sqrt_f1, + 3 features against the record's median beat",
        _RS.model_copy(update={"template": True}),
    ),
}
VARIANTS["patient_net_b128"] = (
    "network for new patients as first shipped: two-lead window + 40 features against the patient, "
    "√-balanced loss, stop on val loss, lead dropout 0.3, batch 128",
    ResNetConfig(
        epochs=30,
        batch_size=128,
        patience=6,
        architecture="patient_net",
        class_weight="sqrt",
        monitor="val_loss",
        filters=32,
        kernel_size=7,
        blocks=2,
        dense=32,
        dropout=0.3,
        lead_dropout=0.3,
    ),
)
_B512 = VARIANTS["patient_net_b128"][1].model_copy(
    update={"batch_size": 512, "lr": 0.002, "lr_decay_steps": 2500}
)
VARIANTS["patient_net_previous"] = (
    "the recipe before patient_net_cross_entropy: two-lead window + 40 features against the patient, √-balanced "
    "loss, stop on val loss, lead dropout 0.3, window branch dropout 0.5, batch 512, dense 32",
    _B512.model_copy(update={"branch_dropout": 0.5}),
)
VARIANTS["patient_net_cross_entropy"] = (
    "the recipe patient_net replaces: as patient_net, with plain cross-entropy",
    VARIANTS["patient_net_previous"][1].model_copy(update={"dense": 64}),
)
VARIANTS["patient_net"] = (
    "network for new patients: two-lead window + 40 features against the patient and their z-scores "
    "over the record, √-balanced focal loss (γ 2), stop on val loss, lead dropout 0.3, window branch "
    "dropout 0.5, batch 512, dense 64, temperature-scaled, smoothed over each record (20 beats, weight 0.5)",
    VARIANTS["patient_net_cross_entropy"][1].model_copy(
        update={
            "focal_gamma": 2.0,
            "calibration": "temperature",
            "record_smoothing": RecordSmoothing(neighbours=20, weight=0.5),
            # The shipped output steps. The first needs the recordings' irregular-rhythm flags, which
            # these splits do not carry: the stage warns and leaves it out; compare applies the stored
            # steps without the patient features the second reads. So compare's figures are without
            # both (bench/new_patients.py --irregular-gate and --qrs-gate measure them).
            "irregular_rhythm_gate": True,
            "unlike_qrs_gate": True,
        }
    ),
)
_PN = VARIANTS["patient_net"][1]  # the variants below change it one thing at a time
for _gamma in (1, 3):
    VARIANTS[f"patient_net_focal{_gamma}"] = (
        f"as patient_net, focal γ {_gamma}",
        _PN.model_copy(update={"focal_gamma": float(_gamma)}),
    )
VARIANTS["patient_net_augment"] = (
    "as patient_net, + window augmentation (lead gain ±20%, baseline wander ±0.1, noise σ ≤ 0.02, "
    "time stretch ±10%)",
    _PN.model_copy(
        update={"window_augment": WindowAugmentConfig(amplitude=0.2, wander=0.1, noise=0.02, stretch=0.1)}
    ),
)
for _epochs in (2, 4, 10, 20):
    VARIANTS[f"patient_net_e{_epochs}"] = (
        f"as patient_net, {_epochs} epochs without early stopping",
        _PN.model_copy(update={"epochs": _epochs, "patience": 0}),
    )
VARIANTS["patient_net_augment_e10"] = (
    "as patient_net_augment, 10 epochs without early stopping",
    VARIANTS["patient_net_augment"][1].model_copy(update={"epochs": 10, "patience": 0}),
)
for _lr, _name in ((0.001, "lr1"), (0.0005, "lr05")):
    VARIANTS[f"patient_net_{_name}"] = (
        f"as patient_net, learning rate {_lr}",
        _PN.model_copy(update={"lr": _lr}),
    )
VARIANTS["patient_net_no_record_z"] = (
    "as patient_net_cross_entropy, without the z-scores over the record",
    VARIANTS["patient_net_cross_entropy"][1],
)
VARIANTS["patient_net_dense32"] = (
    "as patient_net_cross_entropy, dense 32",
    VARIANTS["patient_net_previous"][1],
)
VARIANTS["patient_net_no_branch_dropout"] = (
    "as patient_net_previous, without window branch dropout",
    _B512,
)
VARIANTS["patient_features_only"] = (
    "ablation: the 40 patient features alone (no window), two Dense 32 layers, batch 128",
    VARIANTS["patient_net_b128"][1],
)
VARIANTS["patient_net_no_lead_dropout"] = (
    "as patient_net_b128, without lead dropout",
    VARIANTS["patient_net_b128"][1].model_copy(update={"lead_dropout": 0.0}),
)
"""Candidates for (c), ablated on one seed; ``--ours`` names the one params.yaml ships."""
OURS_DEFAULT = "patient_net"
WITHOUT_RECORD_Z = {
    "patient_net_no_record_z",
    "patient_net_previous",
    "patient_net_no_branch_dropout",
    "patient_net_b128",
    "patient_features_only",
    "patient_net_no_lead_dropout",
}
"""Variants shown the 40 patient features without their z-scores over the record (those columns
zeroed): the recipe ``patient_net`` replaces and the ablations measured on it."""
AUGMENT = {"rhythm_sqrt_f1_aug": AugmentConfig(copies=2), "rhythm_sqrt_f1_wide_aug": AugmentConfig(copies=2)}
"""Variants trained on the training split plus the preprocess stage's augmentation (``preprocess.augment``)."""

MODEL_TITLES = {
    "paper": "(a) paper ResNet, paper recipe",
    "cnn": "(b) public CNN (CVxTz-style)",
    **{k: f"{k}: {title}" for k, (title, _) in VARIANTS.items()},
}
"""Each model's row title; a run's own titles (:func:`model_titles`) add which variant is (c) and the
smoothed views of the stored runs."""
REPORT_CLASSES = ("S", "V", "F")
SPLITS = ("beat", "patient", "patient_f1", "patient_f2", "patient_f3")


# ---------------------------------------------------------------- data


def load_mitdb(mirror: Path, cache: Path | None = None) -> dict[str, np.ndarray]:
    """Beats, labels, records and rhythm features of every record in ``mirror/mitdb``.

    With ``cache``: read from that .npz if it exists, else build and write it there. It lets a
    machine without wfdb (a GPU box with only Keras and another backend) run the comparison.
    """
    if cache is not None and cache.is_file():
        with np.load(cache) as f:
            return {k: f[k] for k in ("X", "y", "record", "R", "W", "P")}
    from heartbeat.fetch.physionet import collect_beats

    cfg = PhysionetConfig(mirror=str(mirror), mitdb_version="")
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "heartbeat-compare-cache"  # unused for a local folder
    cols = collect_beats(cfg, "mitdb", tmp)
    R = rhythm_matrix(np.stack([cols[k] for k in RR_COLUMNS], axis=1))
    data = {
        "X": cols["X"].astype(np.float32),
        "y": cols["label"].astype(np.int64),
        "record": cols["record"].astype(str),
        "R": R,
        "W": cols["window"].astype(np.float32),
        "P": cols["patient_features"].astype(np.float32),
    }
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, **data)
    return data


def _subset(data: dict[str, np.ndarray], idx: np.ndarray) -> Split:
    G = np.unique(data["record"], return_inverse=True)[1][idx]
    return Split(
        X=data["X"][idx], y=data["y"][idx], R=data["R"][idx], W=data["W"][idx], P=data["P"][idx], G=G
    )


def one_lead(split: Split) -> Split:
    """``split`` as a one-lead recording gives it: lead 1 in place of lead 2 (heartbeat/signal/patient.py)."""
    from heartbeat.signal.patient import second_lead_columns

    two, one = second_lead_columns()
    W, P = np.array(split.W, copy=True), np.array(split.P, copy=True)
    W[..., 1] = W[..., 0]
    P[:, two] = P[:, one]
    return Split(X=split.X, y=split.y, R=split.R, W=W, P=P, G=split.G)


def _cap(y: np.ndarray, idx: np.ndarray, max_beats: int | None) -> np.ndarray:
    if not max_beats or len(idx) <= max_beats:
        return idx
    keep, _ = stratified_split(y[idx], 1 - max_beats / len(idx), 0, "training split")
    return idx[keep]


def make_split(
    data: dict[str, np.ndarray], kind: str, max_beats: int | None
) -> tuple[dict[str, Split], dict]:
    y, records = data["y"], data["record"]
    if kind == "beat":
        test = np.flatnonzero(split_stratified(y, 0.2, 0))
        rest = np.flatnonzero(~split_stratified(y, 0.2, 0))
        keep, val = stratified_split(y[rest], 0.1, 0, "beat split")
        tr, va = rest[keep], rest[val]
        info = {"records": sorted(set(records.tolist()))}
    else:
        fold = int(kind.removeprefix("patient").removeprefix("_f") or 0)
        ds1 = np.flatnonzero(np.isin(records, DS1_RECORDS) & ~np.isin(records, PACED_RECORDS))
        keep, hold = grouped_split(y[ds1], records[ds1], 0.25, 0, "DS1 records", fold=fold)
        test, rest = ds1[hold], ds1[keep]
        keep, val = grouped_split(y[rest], records[rest], 0.1, 0, "DS1 training records")
        tr, va = rest[keep], rest[val]
        info = {
            "train_records": sorted(set(records[tr].tolist())),
            "val_records": sorted(set(records[va].tolist())),
            "test_records": sorted(set(records[test].tolist())),
            "test_beat_records": records[test].tolist(),  # for --per-record
        }
    tr = _cap(y, tr, max_beats)
    splits = {"train": _subset(data, tr), "val": _subset(data, va), "test": _subset(data, test)}
    info["counts"] = {k: np.bincount(s.y, minlength=5).tolist() for k, s in splits.items()}
    return splits, info


def augmented(splits: dict[str, Split], aug: AugmentConfig | None, seed: int) -> dict[str, Split]:
    """``splits`` with the training split augmented as the preprocess stage does (R-R rows follow)."""
    from heartbeat.prepare.augment import augment_minority_rows

    if aug is None or aug.copies == 0:
        return splits
    tr = splits["train"]
    X, y, src = augment_minority_rows(tr.X, tr.y, aug.copies, aug.amplitude, aug.stretch, seed)
    return {**splits, "train": Split(X=X, y=y, R=tr.R[src])}


# ---------------------------------------------------------------- models


def without_record_z(splits: dict[str, Split]) -> dict[str, Split]:
    """``splits`` with the z-score columns of the patient features zeroed: the 40 features alone
    (a zero input carries nothing; the weights it would meet never change the output)."""
    from heartbeat.signal.patient import BEAT_COLUMNS

    def cut(split: Split) -> Split:
        P = np.array(split.P, copy=True)
        P[:, len(BEAT_COLUMNS) :] = 0.0
        return dataclasses.replace(split, P=P)

    return {k: cut(v) for k, v in splits.items()}


def cvxtz_cnn(n_classes: int):
    """A strong public baseline: the Keras CNN of CVxTz/ECG_Heartbeat_Classification, rebuilt from its
    description and published code (Conv16×2, Conv32×2, Conv32×2, Conv256×2 with max pooling and
    dropout between blocks, global max pooling, Dense 64×2, softmax)."""
    import keras
    from keras import layers

    from heartbeat.core.beat_spec import BEAT_LENGTH

    inputs = keras.Input(shape=(BEAT_LENGTH,), name="beat")
    x = layers.Reshape((BEAT_LENGTH, 1))(inputs)
    for filters, kernel in ((16, 5), (32, 3), (32, 3)):
        x = layers.Conv1D(filters, kernel, activation="relu", padding="valid")(x)
        x = layers.Conv1D(filters, kernel, activation="relu", padding="valid")(x)
        x = layers.MaxPooling1D(pool_size=2)(x)
        x = layers.Dropout(0.1)(x)
    x = layers.Conv1D(256, 3, activation="relu", padding="valid")(x)
    x = layers.Conv1D(256, 3, activation="relu", padding="valid")(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="cvxtz_cnn")


def features_only(n_classes: int):
    """The ablation without the window: the patient features through two Dense 32 layers (dropout 0.3)."""
    import keras
    from keras import layers

    from heartbeat.signal.patient import PATIENT_COLUMNS

    features = keras.Input(shape=(len(PATIENT_COLUMNS),), name="patient")
    x = layers.Dense(32, activation="relu")(features)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(32, activation="relu")(x)
    return keras.Model(features, layers.Dense(n_classes, activation="softmax")(x), name="features_only")


BUILDERS = {"cnn": cvxtz_cnn, "patient_features_only": features_only}
"""The models of bench's own, ``n_classes -> model``: the others are the pipeline's train_resnet_mitbih."""


def train_one(model_key: str, cfg: TrainConfig, splits: dict[str, Split], seed: int, save: Path | None):
    """One model of the comparison, trained by the pipeline's own code (one seed, no ensemble): the
    stage's :func:`fit_stage`, or for a model of bench's own the pipeline's ``train`` seeded as
    fit_stage seeds one member."""
    from heartbeat.model.architectures import model_inputs
    from heartbeat.train.fit import make_deterministic, train
    from heartbeat.train.stage import fit_stage

    cfg = cfg.model_copy(update={"seed": seed, **({"ensemble": 1} if isinstance(cfg, ResNetConfig) else {})})
    if model_key in BUILDERS:
        make_deterministic(seed)
        model = BUILDERS[model_key](len(MITBIH_CLASSES))
        result = train(model, splits["train"], splits["val"], cfg, section="train_resnet_mitbih")
        seconds, epochs_run, best_epoch = result.seconds, len(result.history), result.best_epoch
    else:
        trained = fit_stage("train_resnet_mitbih", cfg, splits["train"], splits["val"], len(MITBIH_CLASSES))
        model, seconds = trained.model, trained.seconds
        epochs_run, best_epoch = trained.info["epochs_run"], trained.info["best_epoch"]
    val_p = model.predict(model_inputs(model, splits["val"]), batch_size=1024, verbose=0)
    test_p = model.predict(model_inputs(model, splits["test"]), batch_size=1024, verbose=0)
    extra = {}
    if any(i.name == "window" for i in model.inputs):
        one = model.predict(model_inputs(model, one_lead(splits["test"])), batch_size=1024, verbose=0)
        extra["test_proba_one_lead"] = one.tolist()
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        model.save(save)
    return {
        "seconds": seconds,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "params": int(model.count_params()),
        "val_proba": val_p.tolist(),
        "test_proba": test_p.tolist(),
        **extra,
    }


# ---------------------------------------------------------------- metrics

ALONE = "_each_beat_alone"


def _smoothed_run(run: dict, test: Split, split: str, calibrate: bool, smoothing: RecordSmoothing) -> dict:
    """One stored run as the pipeline would report it: its test probabilities scaled by the temperature
    fitted on its validation records (when the recipe calibrates), then smoothed over each test record."""
    t = run["metrics"].get("temperature", 1.0) if calibrate else 1.0
    steps = OutputSteps(t, smoothing)  # the package's one path from a network's outputs to what a user sees
    new = dict(run)
    for key, shown_test in (("test_proba", test), ("test_proba_one_lead", one_lead(test))):
        if key in run:
            network = np.asarray(run[key], dtype=np.float32)
            new[key] = steps.apply(network, f"{split} {key}", shown_test.W, shown_test.G).final
    ece = expected_calibration_error(test.y, new["test_proba"])
    new["metrics"] = {**score(test.y, new["test_proba"], split), "temperature": t, "ece_calibrated": ece}
    new["confusion"] = confusion(test.y, new["test_proba"])
    return new


def model_titles(ours: str) -> dict[str, str]:
    """The row titles of a run whose (c) is the variant ``ours``."""
    return {**MODEL_TITLES, ours: f"(c) ours: {VARIANTS[ours][0]}"}


def with_smoothing(
    results: dict,
    tests: dict[str, Split],
    models: list[str],
    seeds: list[int],
    configs: dict,
    ours: str,
    titles: dict[str, str],
    grid: list[tuple[int, float]] = (),
) -> tuple[dict, list[str], dict[str, str]]:
    """The stored runs as the pipeline uses them. A model trained with ``record_smoothing`` has its
    stored test probabilities (the network's own) scaled by the temperature fitted on validation and
    smoothed over each test record, as evaluate and ``heartbeat predict`` do; the same runs as stored
    are shown beside it as ``<model>_each_beat_alone``, and for ``ours`` the same runs smoothed with
    each (neighbours, weight) of ``grid``. Returns the results to report, the models and their titles
    (``titles`` and the views')."""
    view, shown, titles = dict(results), [], dict(titles)
    for model in models:
        shown.append(model)
        sm = getattr(configs[model], "record_smoothing", None)
        if sm is None or sm.weight == 0:
            continue
        calibrate = configs[model].calibration == "temperature"
        settings = {model: sm}
        if model == ours:
            for k, w in grid:
                key = f"{model}_k{k}_w{w:g}"
                settings[key] = RecordSmoothing(k, w, max(sm.span, k))
                titles[key] = f"{titles[model]}; smoothed over {k} beats, weight {w:g}"
                shown.append(key)
        alone = model + ALONE
        titles[alone] = f"{titles[model]}, each beat alone"
        shown.append(alone)
        for split, test in tests.items():
            for seed in seeds:
                run = results.get(f"{split}/{model}/{seed}")
                if run is None:
                    continue
                view[f"{split}/{alone}/{seed}"] = run
                for key, smoothing in settings.items():
                    view[f"{split}/{key}/{seed}"] = _smoothed_run(run, test, split, calibrate, smoothing)
            probas = [
                view[f"{split}/{model}/{s}"]["test_proba"] for s in seeds if f"{split}/{model}/{s}" in results
            ]
            if model == ours and len(probas) == len(seeds) > 1:
                mean = np.mean(probas, axis=0)
                view[_ensemble_key(split, ours, seeds)] = {
                    "n": len(probas),
                    "metrics": score(test.y, mean, split),
                    "confusion": confusion(test.y, mean),
                }
    return view, shown, titles


def score(y: np.ndarray, proba: np.ndarray, split: str, val_y=None, val_proba=None) -> dict:
    """The table's figures, by evaluate's functions: macro-F1 over all five classes on the beat split,
    over N, S, V, F on the patient splits (no Q beats outside the paced records)."""
    overall = classification_metrics(y, proba, MITBIH_CLASSES)
    per_class = per_class_metrics(y, np.argmax(proba, axis=1), MITBIH_CLASSES)
    out = {
        "accuracy": overall["accuracy"],
        "macro_f1": overall["macro_f1_nsvf" if split.startswith("patient") else "macro_f1"],
        "ece": overall["ece"],
    }
    for c in REPORT_CLASSES:
        out[f"recall_{c}"], out[f"f1_{c}"] = per_class[c]["sensitivity"], per_class[c]["f1"]
    if val_proba is not None:
        t = fit_temperature(val_y, val_proba)
        out["temperature"] = t
        out["ece_calibrated"] = expected_calibration_error(y, apply_temperature(proba, t))
    return out


def confusion(y: np.ndarray, proba: np.ndarray) -> list[list[int]]:
    """evaluate's confusion matrix (rows true, columns predicted), as JSON lists."""
    return confusion_matrix(y, np.argmax(proba, axis=1), len(MITBIH_CLASSES)).tolist()


# ---------------------------------------------------------------- transfer (PTB sample)


def load_ptb_sample(folder: Path) -> Split:
    from heartbeat.core.beatcsv import read_beats_csv

    parts = [
        read_beats_csv(folder / f"ptbdb_{name}_sample.csv", (label,))
        for label, name in enumerate(("normal", "abnormal"))
    ]
    return Split(X=np.concatenate([p.X for p in parts]), y=np.concatenate([p.y for p in parts]))


def transfer_runs(base_path: Path, ptb: Split, seed: int, epochs: int) -> dict[str, dict]:
    """From scratch, frozen transfer and full fine-tuning on the PTB sample, by the pipeline's stage code."""
    from heartbeat.core.config import TransferConfig
    from heartbeat.evaluate.metrics import classification_metrics
    from heartbeat.model.saving import load_model
    from heartbeat.train.stage import fit_stage

    rest, test = stratified_split(ptb.y, 0.2, seed, "PTB sample")
    keep, val = stratified_split(ptb.y[rest], 0.1, seed, "PTB sample train")
    tr = Split(ptb.X[rest[keep]], ptb.y[rest[keep]])
    va = Split(ptb.X[rest[val]], ptb.y[rest[val]])
    te = Split(ptb.X[test], ptb.y[test])
    out = {}
    for mode in ("scratch", "all_conv", "none"):
        if mode == "scratch":
            cfg = ResNetConfig(epochs=epochs, batch_size=32, patience=6, seed=seed)
            trained = fit_stage("train_resnet_ptb", cfg, tr, va, 2)
        else:
            cfg = TransferConfig(epochs=epochs, batch_size=32, patience=6, freeze=mode, seed=seed)
            trained = fit_stage("finetune_transfer", cfg, tr, va, 2, base=load_model(base_path))
        proba = trained.model.predict(te.X, verbose=0)
        m = classification_metrics(te.y, proba, ("normal", "abnormal"))
        out[mode] = {
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
            "roc_auc": m.get("roc_auc"),
            "ece": m["ece"],
            "seconds": trained.seconds,
            "n_test": len(te.y),
        }
    return out


# ---------------------------------------------------------------- the table


def _ms(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    v = np.asarray(values, dtype=np.float64) * scale
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def _ensemble_key(split: str, ours: str, seeds: list[int]) -> str:
    return f"{split}/ensemble/{ours}/{'-'.join(map(str, seeds))}"


def table(
    results: dict, splits: list[str], models: list[str], seeds: list[int], ours: str, titles: dict[str, str]
) -> str:
    lines = []
    cols = ["accuracy %", "macro-F1", *(f"{k} {c}" for c in REPORT_CLASSES for k in ("recall", "F1"))]
    cols += ["ECE", "ECE (T-scaled)", "train s", "epochs"]
    for split in splits:
        lines += [
            f"**{split} split** ({'5-class macro-F1' if split == 'beat' else 'macro-F1 over N, S, V, F'};"
            f" mean ± sample std over seeds {', '.join(map(str, seeds))})",
            "",
        ]
        lines.append("| model | " + " | ".join(cols) + " |")
        lines.append("|---" * (len(cols) + 1) + "|")
        for model in models:
            runs = [results.get(f"{split}/{model}/{s}") for s in seeds]
            runs = [r for r in runs if r is not None]
            if not runs:
                continue
            m = [r["metrics"] for r in runs]
            cells = [_ms([x["accuracy"] for x in m], 100, 2), _ms([x["macro_f1"] for x in m])]
            for c in REPORT_CLASSES:
                cells += [
                    _ms([x[f"recall_{c}"] for x in m], digits=2),
                    _ms([x[f"f1_{c}"] for x in m], digits=2),
                ]
            cells += [_ms([x["ece"] for x in m], digits=4), _ms([x["ece_calibrated"] for x in m], digits=4)]
            cells += [
                _ms([r["seconds"] for r in runs], digits=0),
                _ms([r["epochs_run"] for r in runs], digits=0),
            ]
            n = f" (n={len(runs)})" if len(runs) != len(seeds) else ""
            lines.append(f"| {titles[model]}{n} | " + " | ".join(cells) + " |")
        ens = results.get(_ensemble_key(split, ours, seeds))
        if ens and ours in models:
            m = ens["metrics"]
            cells = [f"{100 * m['accuracy']:.2f}", f"{m['macro_f1']:.3f}"]
            for c in REPORT_CLASSES:
                cells += [f"{m[f'recall_{c}']:.2f}", f"{m[f'f1_{c}']:.2f}"]
            members = [results.get(f"{split}/{ours}/{s}", {}) for s in seeds]
            # the ensemble's training is its members' training, one after another (as the pipeline does)
            cells += [f"{m['ece']:.4f}", "–"]
            cells += [
                f"{sum(r['seconds'] for r in members):.0f}" if all("seconds" in r for r in members) else "–",
                str(sum(r["epochs_run"] for r in members))
                if all("epochs_run" in r for r in members)
                else "–",
            ]
            lines.append(
                f"| (c) ours, ensemble: mean probability of {ens['n']} seeds (`ensemble: {ens['n']}`) | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    return "\n".join(lines)


def cv_table(
    results: dict, splits: list[str], models: list[str], seeds: list[int], titles: dict[str, str]
) -> str:
    """Grouped cross-validation over records: every patient fold's runs pooled per model."""
    folds = [s for s in splits if s.startswith("patient")]
    if len(folds) < 2:
        return ""
    lines = [
        f"**patient split, grouped cross-validation** ({len(folds)} folds of the DS1 records: "
        f"{', '.join(folds)}; macro-F1 over N, S, V, F; mean ± sample std over folds × seeds)",
        "",
        "| model | runs | test records | accuracy % | macro-F1 | recall S | F1 S | recall V | F1 V | recall F | F1 F |",
        "|---" * 11 + "|",
    ]
    for model in models:
        runs = [results.get(f"{f}/{model}/{s}") for f in folds for s in seeds]
        m = [r["metrics"] for r in runs if r is not None]
        if not m:
            continue
        tested = sum(len(results.get(f"{f}/info", {}).get("test_records", [])) for f in folds)
        cells = [
            str(len(m)),
            str(tested),
            _ms([x["accuracy"] for x in m], 100, 2),
            _ms([x["macro_f1"] for x in m]),
        ]
        for c in REPORT_CLASSES:
            cells += [_ms([x[f"recall_{c}"] for x in m], digits=2), _ms([x[f"f1_{c}"] for x in m], digits=2)]
        lines.append(f"| {titles[model]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pooled_metrics(y: np.ndarray, proba: np.ndarray) -> dict:
    """The inter-patient figures of the literature over N, S, V, F: macro-F1, and per class
    sensitivity (Se), positive predictivity (+P) and F1 (Q has a handful of beats here)."""
    overall = classification_metrics(y, proba, MITBIH_CLASSES)
    per_class = per_class_metrics(y, np.argmax(proba, axis=1), MITBIH_CLASSES)
    out = {"accuracy": overall["accuracy"], "macro_f1": overall["macro_f1_nsvf"]}
    for c in AAMI_CLASSES:
        m = per_class[c]
        out |= {f"se_{c}": m["sensitivity"], f"ppv_{c}": m["positive_predictivity"], f"f1_{c}": m["f1"]}
    return out


def pooled_table(
    results: dict, splits: list[str], models: list[str], seeds: list[int], titles: dict[str, str]
) -> str:
    """The pooled grouped cross-validation: each seed's test predictions of all folds together (every
    DS1 record tested once), scored once; mean ± sample std over seeds, and the seeds' ensemble."""
    folds = [s for s in splits if s.startswith("patient")]
    if len(folds) < 2 or not all("test_y" in results.get(f"{f}/info", {}) for f in folds):
        return ""
    y = np.concatenate([np.asarray(results[f"{f}/info"]["test_y"]) for f in folds])
    lines = [
        f"**patient split, pooled grouped cross-validation** ({len(folds)} folds over the DS1 records, every "
        "record tested once; macro-F1 over N, S, V, F; Se / +P per class; mean ± sample std over seeds)",
        "",
        "| model | seeds | macro-F1 | F1 N | F1 S | F1 V | F1 F | Se / +P S | Se / +P V | Se / +P F |",
        "|---" * 10 + "|",
    ]
    for model in models:
        for key, label in (("test_proba", ""), ("test_proba_one_lead", ", one lead")):
            runs = {s: [results.get(f"{f}/{model}/{s}", {}) for f in folds] for s in seeds}
            runs = {s: r for s, r in runs.items() if all(key in x for x in r)}
            if not runs:
                continue
            probas = {s: np.concatenate([np.asarray(x[key]) for x in r]) for s, r in runs.items()}
            m = [pooled_metrics(y, p) for p in probas.values()]
            rows = [(f"{titles[model]}{label}", str(len(m)), m)]
            if len(probas) > 1:
                rows.append(
                    (
                        f"{titles[model]}{label}, ensemble of the seeds",
                        "1",
                        [pooled_metrics(y, np.mean(list(probas.values()), axis=0))],
                    )
                )
            for title, n, mm in rows:
                cells = [_ms([x["macro_f1"] for x in mm])]
                cells += [_ms([x[f"f1_{c}"] for x in mm]) for c in "NSVF"]
                cells += [
                    f"{_ms([x[f'se_{c}'] for x in mm], digits=2)} / {_ms([x[f'ppv_{c}'] for x in mm], digits=2)}"
                    for c in "SVF"
                ]
                lines.append(f"| {title} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def confusion_tables(
    results: dict, splits: list[str], models: list[str], seeds: list[int], ours: str, titles: dict[str, str]
) -> str:
    """Test-set confusion matrices (rows: true class, columns: predicted) of the first seed, and of
    the seed ensemble of ``ours``."""
    lines = []
    seed = seeds[0]
    for split in splits:
        runs = [
            (f"{titles[m]}, {split} split, seed {seed}", results.get(f"{split}/{m}/{seed}")) for m in models
        ]
        if ours in models:
            ens = results.get(_ensemble_key(split, ours, seeds))
            title = f"(c) ours, ensemble of seeds {', '.join(map(str, seeds))}, {split} split"
            runs.append((title, ens))
        for title, run in runs:
            if run is None or "confusion" not in run:
                continue
            lines += [
                f"{title} (rows true, columns predicted):",
                "",
                "| | " + " | ".join(MITBIH_CLASSES) + " |",
                "|---" * (len(MITBIH_CLASSES) + 1) + "|",
            ]
            for name, row in zip(MITBIH_CLASSES, run["confusion"], strict=True):
                lines.append(f"| **{name}** | " + " | ".join(f"{v:,}" for v in row) + " |")
            lines.append("")
    return "\n".join(lines)


def per_record_table(
    results: dict, splits: list[str], model: str, seeds: list[int], titles: dict[str, str]
) -> str:
    """Where a model's errors across patients are: per test record of the grouped cross-validation,
    the S and V beats and what they were called, and the N and V beats called S (means over seeds)."""
    folds = [s for s in splits if s.startswith("patient") and f"{s}/info" in results]
    counts: dict[str, np.ndarray] = {}
    for fold in folds:
        info = results[f"{fold}/info"]
        of_beat, y = np.asarray(info["test_beat_records"]), np.asarray(info["test_y"])
        for seed in seeds:
            run = results.get(f"{fold}/{model}/{seed}")
            if run is None or "test_proba" not in run:
                continue
            pred = np.asarray(run["test_proba"]).argmax(axis=1)
            for record in np.unique(of_beat):
                m = of_beat == record
                c = counts.setdefault(str(record), np.zeros((5, 5)))
                np.add.at(c, (y[m], pred[m]), 1.0 / len(seeds))
    if not counts:
        return ""
    lines = [
        f"**{titles[model]}, per test record** (pooled grouped cross-validation; beats, mean over "
        f"seeds {', '.join(map(str, seeds))})",
        "",
        "| record | S | S found | S called N | S called V | V | V found | V called S | N called S | N called V |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for record in sorted(counts):
        c = counts[record]
        cells = (c[1].sum(), c[1, 1], c[1, 0], c[1, 2], c[2].sum(), c[2, 2], c[2, 1], c[0, 1], c[0, 2])
        lines.append(f"| {record} | " + " | ".join(f"{v:.0f}" for v in cells) + " |")
    return "\n".join(lines) + "\n"


def transfer_table(results: dict, seeds: list[int]) -> str:
    runs = [results[f"transfer/{s}"] for s in seeds if f"transfer/{s}" in results]
    if not runs:
        return ""
    lines = [
        f"**PTB, Kaggle sample (200 beats, 40 test; indicative only)**, mean ± std over seeds "
        f"{', '.join(str(s) for s in seeds if f'transfer/{s}' in results)}",
        "",
        "| PTB model | accuracy % | macro-F1 | ROC-AUC | ECE | train s |",
        "|---|---|---|---|---|---|",
    ]
    titles = {
        "scratch": "ResNet from scratch",
        "all_conv": "transfer, frozen convolutions",
        "none": "transfer, full fine-tuning",
    }
    for mode, title in titles.items():
        m = [r[mode] for r in runs]
        lines.append(
            f"| {title} | {_ms([x['accuracy'] for x in m], 100, 1)} | {_ms([x['macro_f1'] for x in m])} | "
            f"{_ms([x['roc_auc'] for x in m])} | {_ms([x['ece'] for x in m], digits=3)} | "
            f"{_ms([x['seconds'] for x in m], digits=0)} |"
        )
    return "\n".join(lines) + "\n"


def _devices(lib) -> list:
    if hasattr(lib, "devices"):  # jax
        return lib.devices()
    return [lib.cuda.get_device_name(0)] if lib.cuda.is_available() else ["cpu"]  # torch


def _smoothing_setting(text: str) -> tuple[int, float]:
    try:
        k, w = text.split(":")
        setting = int(k), float(w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NEIGHBOURS:WEIGHT such as 20:0.5, got {text!r}") from None
    if setting[0] < 1 or not 0 <= setting[1] <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: neighbours must be at least 1 and weight in [0, 1]")
    return setting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--splits",
        nargs="+",
        choices=SPLITS,
        default=["beat", "patient"],
        help="patient is fold 0 of a 4-fold grouped split of the DS1 records; patient_f1..3 the others",
    )
    parser.add_argument("--models", nargs="+", choices=tuple(MODEL_TITLES), help="default: paper cnn OURS")
    parser.add_argument("--ours", choices=tuple(VARIANTS), default=OURS_DEFAULT, help="which variant is (c)")
    parser.add_argument("--max-beats", type=int, default=None, help="cap the training split (stratified)")
    parser.add_argument("--transfer", action="store_true", help="also the PTB transfer comparison")
    parser.add_argument("--results", type=Path, default=Path("/tmp/heartbeat-compare/results.json"))
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument(
        "--confusions", action="store_true", help="also print confusion matrices (first seed)"
    )
    parser.add_argument(
        "--per-record",
        nargs="+",
        default=[],
        choices=tuple(MODEL_TITLES),
        metavar="MODEL",
        help="also print where these models' errors are, per test record of the patient folds",
    )
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: default)")
    parser.add_argument(
        "--report-only", action="store_true", help="train nothing: print the table of the stored runs"
    )
    parser.add_argument(
        "--merge", type=Path, nargs="+", default=[], help="first add the runs stored in these results files"
    )
    parser.add_argument(
        "--smoothing-grid",
        type=_smoothing_setting,
        nargs="+",
        default=[],
        metavar="K:W",
        help="also report OURS's stored runs smoothed over K beats with weight W (e.g. 10:0.5 20:0.3)",
    )
    parser.add_argument(
        "--data-cache",
        type=Path,
        help="beats as .npz: read if it exists, else built from --mirror and written",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")

    import keras

    backend = f"keras {keras.__version__} on {keras.backend.backend()}"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        backend += f" {tf.__version__}"
        if args.threads:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
    else:
        import importlib

        lib = importlib.import_module(keras.backend.backend())
        backend += f" {lib.__version__} ({', '.join(str(d) for d in _devices(lib))})"
    results: dict = json.loads(args.results.read_text()) if args.results.is_file() else {}
    setup = {"epochs": args.epochs, "max_beats": args.max_beats}
    if results.get("_setup", setup) != setup:
        sys.exit(f"{args.results}: made with {results['_setup']}, not {setup}; use another --results")
    for other in args.merge:
        more = json.loads(other.read_text())
        if more.get("_setup", setup) != setup:
            sys.exit(f"{other}: made with {more['_setup']}, not {setup}; cannot merge")
        results.update(more)
    results["_setup"] = setup
    args.results.parent.mkdir(parents=True, exist_ok=True)

    def store() -> None:
        tmp = args.results.with_suffix(".tmp")
        tmp.write_text(json.dumps(results))
        tmp.replace(args.results)

    data = load_mitdb(args.mirror, args.data_cache)
    log.info("%d beats from %d records", len(data["y"]), len(set(data["record"].tolist())))
    configs = {"paper": PAPER, "cnn": CNN, **{k: cfg for k, (_, cfg) in VARIANTS.items()}}
    args.models = args.models or ["paper", "cnn", args.ours]
    models_dir = args.results.parent / "models"
    # Models take a prefix of the context columns (heartbeat/signal/context.py): R-R first, then the template ones.
    data["R"] = np.hstack([data["R"][:, : len(RR_COLUMNS)], template_features(data["X"], data["record"])])
    tests = {}
    for split in args.splits:
        splits, info = make_split(data, split, args.max_beats)
        tests[split] = splits["test"]
        info["test_y"] = splits["test"].y.tolist()
        results[f"{split}/info"] = info
        log.info("%s split: %s", split, json.dumps(info))
        for seed in args.seeds:
            for model in args.models:
                key = f"{split}/{model}/{seed}"
                if key in results or args.report_only:
                    continue
                # --epochs caps every variant; the ones trained for a fixed length keep theirs below it.
                epochs = min(args.epochs, configs[model].epochs)
                cfg = configs[model].model_copy(update={"epochs": epochs, "seed": seed})
                save = models_dir / f"{split}_{model}_{seed}.keras" if model == args.ours else None
                shown = without_record_z(splits) if model in WITHOUT_RECORD_Z else splits
                run = train_one(model, cfg, augmented(shown, AUGMENT.get(model), seed), seed, save)
                yv, yt = splits["val"].y, splits["test"].y
                run["metrics"] = score(
                    yt, np.asarray(run["test_proba"]), split, yv, np.asarray(run["val_proba"])
                )
                run["confusion"] = confusion(yt, np.asarray(run["test_proba"]))
                del run["val_proba"]
                results[key] = run
                store()
                log.info("%s: %s", key, json.dumps(run["metrics"]))
        probs = [
            np.asarray(results[f"{split}/{args.ours}/{s}"]["test_proba"])
            for s in args.seeds
            if "test_proba" in results.get(f"{split}/{args.ours}/{s}", {})
        ]
        if len(probs) > 1 and len(probs) == len(args.seeds):
            mean = np.mean(probs, axis=0)
            results[_ensemble_key(split, args.ours, args.seeds)] = {
                "n": len(probs),
                "metrics": score(splits["test"].y, mean, split),
                "confusion": confusion(splits["test"].y, mean),
            }
            store()
    if args.transfer:
        ptb = load_ptb_sample(args.mirror / "kaggle-sample")
        for seed in args.seeds:
            base = models_dir / f"beat_{args.ours}_{seed}.keras"
            if f"transfer/{seed}" in results or not base.is_file() or args.report_only:
                continue
            results[f"transfer/{seed}"] = transfer_runs(base, ptb, seed, args.epochs)
            store()
    shown, models, titles = with_smoothing(
        results,
        tests,
        args.models,
        args.seeds,
        configs,
        args.ours,
        model_titles(args.ours),
        args.smoothing_grid,
    )
    text = (
        table(shown, args.splits, models, args.seeds, args.ours, titles)
        + "\n"
        + cv_table(shown, args.splits, models, args.seeds, titles)
        + "\n"
        + pooled_table(shown, args.splits, models, args.seeds, titles)
        + "\n"
        + transfer_table(shown, args.seeds)
    )
    if args.confusions:
        text += "\n" + confusion_tables(shown, args.splits, models, args.seeds, args.ours, titles)
    for model in args.per_record:
        text += "\n" + per_record_table(shown, args.splits, model, args.seeds, titles)
    head = (
        f"<!-- bench/compare.py, {dt.date.today().isoformat()}, {platform.node()}, "
        f"{os.cpu_count()} CPUs, python {platform.python_version()}, {backend} -->\n"
    )
    print(text)
    if args.markdown:
        args.markdown.write_text(head + text, encoding="utf-8")


if __name__ == "__main__":
    main()
