"""The model-quality options, on tiny data: loss weighting, label smoothing, schedules,
early stopping on validation macro-F1, temperature scaling and ECE, the rhythm (R-R) input and how
it travels from provenance.parquet through preprocess, augmentation and training.

Every default must keep the paper's recipe exactly; bench/compare.py measures what helps.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.beatcsv import Beats
from heartbeat.core.config import MLPConfig, PreprocessConfig, ResNetConfig, TrainConfig, parse_section
from heartbeat.core.errors import DataError, ModelError, ParamsError
from heartbeat.core.layout import read_sidecar
from heartbeat.evaluate.metrics import classification_metrics, expected_calibration_error
from heartbeat.model.architectures import build_resnet, build_transfer, model_inputs, takes_rhythm
from heartbeat.model.calibration import apply_temperature, fit_temperature, nll
from heartbeat.model.outputs import OutputSteps
from heartbeat.prepare.arrays import Split, load_split, save_dataset
from heartbeat.prepare.augment import augment_minority, augment_minority_rows, oversample, oversample_index
from heartbeat.prepare.preprocess import prepare
from heartbeat.signal.context import (
    CONTEXT_COLUMNS,
    RR_CLIP,
    RR_COLUMNS,
    context_matrix,
    rhythm_matrix,
    rr_features,
    template_features,
)
from heartbeat.train.fit import (
    ValMacroF1,
    class_weights,
    compile_model,
    learning_rate,
    make_deterministic,
    train,
)
from heartbeat.train.stage import run_training
from testkit.projects import write_prepared_info

TINY = {"filters": 4, "blocks": 1, "dense": 4}


def _split(n: int, seed: int, n_classes: int = 3, rhythm: bool = False) -> Split:
    """Class-dependent beats (learnable in an epoch or two), optionally with R-R features."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=n)
    X = (rng.random((n, BEAT_LENGTH)) * 0.2 + (y[:, None] / n_classes)).astype(np.float32)
    R = (rng.random((n, len(RR_COLUMNS))) + y[:, None]).astype(np.float32) if rhythm else None
    return Split(X, y, R)


def _resnet(n_classes: int = 3, rhythm: bool = False) -> keras.Model:
    return build_resnet(n_classes, **TINY, rhythm_features=len(RR_COLUMNS) if rhythm else 0)


# ---------------------------------------------------------------- config


def test_defaults_are_the_paper_recipe() -> None:
    cfg = ResNetConfig()
    assert (cfg.class_weight, cfg.lr_schedule, cfg.monitor) == ("none", "step", "val_loss")
    assert cfg.label_smoothing == 0 and cfg.calibration == "none" and cfg.rhythm is False
    assert cfg.focal_gamma == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"class_weight": "inverse"}, "class_weight: 'inverse' is not valid"),
        ({"monitor": "val_f1"}, "monitor: 'val_f1' is not valid"),
        ({"lr_schedule": "linear"}, "lr_schedule: 'linear' is not valid"),
        ({"label_smoothing": 1.0}, "label_smoothing: input should be less than 1"),
        ({"focal_gamma": -1}, "focal_gamma: input should be greater than or equal to 0"),
        ({"calibration": "platt"}, "calibration: 'platt' is not valid"),
        ({"rhythm": "maybe"}, "rhythm"),
    ],
)
def test_bad_option_values_are_errors(raw: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        parse_section(ResNetConfig, "train_resnet_mitbih", raw)


# ---------------------------------------------------------------- loss weighting, schedules


def test_class_weights_sqrt_and_balanced() -> None:
    y = np.array([0] * 90 + [1] * 9 + [2] * 1)
    assert class_weights(y, "none") is None
    bal = class_weights(y, "balanced")
    assert bal[2] == pytest.approx(100 / 3) and bal[0] == pytest.approx(100 / 270)
    sq = class_weights(y, "sqrt")
    assert sq[1] / sq[0] == pytest.approx(np.sqrt(10)) and sq[2] / sq[0] == pytest.approx(np.sqrt(90))
    assert sum(sq[c] * n for c, n in ((0, 90), (1, 9), (2, 1))) == pytest.approx(100)  # mean 1 per beat


def test_learning_rate_schedules() -> None:
    step = learning_rate(TrainConfig(lr=0.01, lr_decay=0.5, lr_decay_steps=10))
    assert float(step(9)) == pytest.approx(0.01) and float(step(10)) == pytest.approx(0.005)
    assert learning_rate(TrainConfig(lr=0.01, lr_schedule="plateau")) == 0.01
    cosine = learning_rate(TrainConfig(lr=0.01, lr_schedule="cosine", epochs=2), steps_per_epoch=5)
    assert float(cosine(0)) == pytest.approx(0.01) and float(cosine(10)) == pytest.approx(0.0, abs=1e-9)


def test_plateau_lowers_the_learning_rate() -> None:
    tr, va = _split(96, 0), _split(32, 1)
    va = Split(va.X, np.random.default_rng(2).integers(0, 3, size=32))  # unlearnable: no improvement
    make_deterministic(0)
    model = _resnet()
    cfg = TrainConfig(
        epochs=4, batch_size=32, lr_schedule="plateau", plateau_patience=1, lr_decay=0.5, patience=0
    )
    train(model, tr, va, cfg)
    assert float(model.optimizer.learning_rate) < 1e-3


def test_label_smoothing_trains_on_one_hot_targets() -> None:
    tr, va = _split(96, 0), _split(32, 1)
    losses = {}
    for smoothing in (0.0, 0.2):
        make_deterministic(0)
        model = _resnet()
        cfg = TrainConfig(epochs=1, batch_size=32, patience=0, label_smoothing=smoothing)
        result = train(model, tr, va, cfg)
        assert set(result.history[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
        losses[smoothing] = result.history[0]["loss"]
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    assert losses[0.2] != losses[0.0]


def test_focal_loss_trains_on_one_hot_targets() -> None:
    """γ > 0 compiles Keras' focal cross-entropy (alpha 1, so class weights stay class_weight's) and
    changes training; the loss Keras reports is the focal one."""
    tr, va = _split(96, 0), _split(32, 1)
    losses = {}
    for gamma in (0.0, 2.0):
        make_deterministic(0)
        model = _resnet()
        result = train(model, tr, va, TrainConfig(epochs=1, batch_size=32, patience=0, focal_gamma=gamma))
        losses[gamma] = result.history[0]["loss"]
    assert isinstance(model.loss, keras.losses.CategoricalFocalCrossentropy)
    assert model.loss.alpha == 1.0 and model.loss.gamma == 2.0
    assert 0 < losses[2.0] < losses[0.0]  # (1 - p)^γ < 1 shrinks every term
    proba = model.predict(va.X, verbose=0)
    keras_focal = keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=2.0)
    expected = float(keras_focal(np.eye(3, dtype=np.float32)[va.y], proba))
    assert result.history[0]["val_loss"] == pytest.approx(expected, rel=1e-4)


def test_class_weight_changes_training() -> None:
    tr, va = _split(96, 0), _split(32, 1)
    tr = Split(tr.X, np.where(tr.y == 2, 0, tr.y))  # unbalanced: class 2 only in validation
    weights = []
    for mode in ("none", "sqrt"):
        make_deterministic(0)
        model = _resnet()
        train(model, tr, va, TrainConfig(epochs=1, batch_size=32, patience=0, class_weight=mode))
        weights.append(model.get_weights()[-1])
    assert not np.allclose(weights[0], weights[1])


def test_early_stopping_on_val_macro_f1() -> None:
    tr, va = _split(96, 0), _split(48, 1)
    make_deterministic(0)
    model = _resnet()
    cfg = TrainConfig(epochs=3, batch_size=32, patience=1, monitor="val_macro_f1", lr=0.01)
    result = train(model, tr, va, cfg)
    assert 1 <= result.best_epoch <= len(result.history) <= 3

    seen: list[dict] = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seen.append(dict(logs or {}))

    compile_model(model, cfg)
    model.fit(tr.X, tr.y, epochs=1, verbose=0, callbacks=[ValMacroF1(va.X, va.y, 64), Spy()])
    f1 = seen[0]["val_macro_f1"]
    assert 0.0 <= f1 <= 1.0


@pytest.mark.parametrize(("smoothing", "gamma"), [(0.0, 0.0), (0.1, 0.0), (0.0, 2.0), (0.1, 1.5)])
def test_crossentropy_matches_keras(smoothing: float, gamma: float) -> None:
    from heartbeat.train.fit import crossentropy

    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(5), size=200).astype(np.float32)
    proba[0] = [1, 0, 0, 0, 0]  # clipped, as Keras clips
    y = rng.integers(0, 5, 200)
    y[0] = 3
    if gamma:
        loss = keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=gamma, label_smoothing=smoothing)
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
    expected = float(loss(np.eye(5, dtype=np.float32)[y], proba))
    assert crossentropy(y, proba, smoothing, gamma) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_val_macro_f1_monitor_validates_once_per_epoch(gamma: float) -> None:
    """The history still has val_loss (the focal one with ``focal_gamma``) and val_accuracy, equal to
    what Keras' own pass reports."""
    tr, va = _split(96, 0), _split(48, 1)
    make_deterministic(0)
    model = _resnet()
    cfg = TrainConfig(epochs=2, batch_size=32, patience=0, monitor="val_macro_f1", focal_gamma=gamma)
    result = train(model, tr, va, cfg)
    last = result.history[-1]
    assert set(last) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    targets = np.eye(3, dtype=np.float32)[va.y] if gamma else va.y
    loss, accuracy = model.evaluate(va.X, targets, batch_size=64, verbose=0)
    assert last["val_loss"] == pytest.approx(loss, rel=1e-4)
    assert last["val_accuracy"] == pytest.approx(accuracy)


# ---------------------------------------------------------------- calibration


def test_expected_calibration_error() -> None:
    y = np.array([0, 0, 1, 1])
    perfect = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert expected_calibration_error(y, perfect) == 0.0
    # always 90% sure, right half the time: |0.5 - 0.9| = 0.4
    proba = np.array([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]])
    assert expected_calibration_error(y, proba) == pytest.approx(0.4)
    assert classification_metrics(y, proba, ("a", "b"))["ece"] == pytest.approx(0.4)


def test_temperature_scaling_fixes_overconfidence_and_keeps_predictions() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=2000)
    logits = rng.normal(size=(2000, 3))
    logits[np.arange(2000), y] += 1.0  # right ~60% of the time
    sharp = np.exp(4 * logits) / np.exp(4 * logits).sum(axis=1, keepdims=True)  # but far too sure
    t = fit_temperature(y, sharp)
    assert t > 2
    calibrated = apply_temperature(sharp, t)
    assert nll(y, calibrated) < nll(y, sharp)
    assert expected_calibration_error(y, calibrated) < expected_calibration_error(y, sharp) / 2
    np.testing.assert_array_equal(np.argmax(calibrated, axis=1), np.argmax(sharp, axis=1))
    np.testing.assert_allclose(apply_temperature(sharp, 1.0), sharp.astype(np.float32))


def stored_temperature(model_path: Path) -> float | None:
    """The temperature a model's sidecar holds, read as evaluate and predict read it."""
    where, data = read_sidecar(model_path)
    return OutputSteps.from_sidecar(data, str(where)).temperature


def test_stored_temperature(tmp_path: Path) -> None:
    model = tmp_path / "resnet_mitbih.keras"
    assert stored_temperature(model) is None  # no info file
    model.with_suffix(".json").write_text(json.dumps({"epochs_run": 3}))
    assert stored_temperature(model) is None
    model.with_suffix(".json").write_text(json.dumps({"temperature": 1.7}))
    assert stored_temperature(model) == 1.7
    model.with_suffix(".json").write_text("not json")  # damaged: refused, never read as "no temperature"
    with pytest.raises(
        ModelError, match=r"resnet_mitbih\.json: the model's sidecar is damaged \(not valid JSON"
    ):
        stored_temperature(model)


def test_the_stage_fits_a_temperature_only_when_asked() -> None:
    from heartbeat.core.config import ResNetConfig
    from heartbeat.train.stage import fit_stage

    tr, va = _split(96, 0), _split(32, 1)
    small = {"epochs": 1, "batch_size": 32, "filters": 4, "blocks": 1, "dense": 4, "kernel_size": 3}
    for calibration, expect in (("none", False), ("temperature", True)):
        trained = fit_stage("train_resnet_mitbih", ResNetConfig(calibration=calibration, **small), tr, va, 3)
        assert ("temperature" in trained.info) == expect
        if expect:
            assert 0.05 <= trained.info["temperature"] <= 20


def test_a_temperature_fitted_after_smoothing_makes_the_smoothed_probabilities_honest() -> None:
    """Smoothing blends a beat's probabilities with its neighbours': fitted on what smoothing gives,
    the temperature lowers the NLL of the final probabilities below that of one fitted before it."""
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), y] += 1.5
    proba = np.exp(3 * logits) / np.exp(3 * logits).sum(axis=1, keepdims=True)  # over-confident

    def blend(p: np.ndarray) -> np.ndarray:
        return 0.5 * p + 0.5 * p.mean(axis=0, keepdims=True)

    before = fit_temperature(y, proba)
    after = fit_temperature(y, proba, blend)
    assert after != before
    assert nll(y, blend(apply_temperature(proba, after))) < nll(y, blend(apply_temperature(proba, before)))


# ---------------------------------------------------------------- augmentation


def test_augment_rows_follow_their_source_and_match_the_old_output() -> None:
    tr = _split(60, 3)
    y = np.where(np.arange(60) < 45, 0, tr.y)  # class 0 the majority
    X_all, y_all, origin = augment_minority_rows(tr.X, y, 2, 0.1, 0.1, seed=5)
    X_old, y_old = augment_minority(tr.X, y, 2, 0.1, 0.1, seed=5)
    np.testing.assert_array_equal(X_all, X_old)
    np.testing.assert_array_equal(y_all, y_old)
    np.testing.assert_array_equal(y_all, y[origin])
    same = [np.array_equal(row, tr.X[o]) for row, o in zip(X_all, origin, strict=True)]
    assert sum(same) == 60  # the originals are their source; the stretched and scaled copies are not
    assert len(y_all) == 60 + 2 * np.sum(y != 0)
    idx = oversample_index(y, 1)
    X_o, y_o = oversample(tr.X, y, 1)
    np.testing.assert_array_equal(X_o, tr.X[idx])
    np.testing.assert_array_equal(y_o, y[idx])


# ---------------------------------------------------------------- rhythm features


def test_rhythm_matrix_fills_gaps_and_clips() -> None:
    nan = np.nan
    raw = np.array(
        [
            [nan, 0.8, 0.8, nan, 1.0, 1.0],  # first beat of a record: no pre-RR
            [0.7, nan, 0.75, 0.9, nan, 0.95],  # last beat: no post-RR
            [100.0, 0.8, 11.0, 103.0, 1.0, 12.0],  # an annotation gap
            [nan, nan, nan, nan, nan, nan],  # a record with one beat
        ]
    )
    R = rhythm_matrix(raw)
    assert R.dtype == np.float32 and np.isfinite(R).all()
    np.testing.assert_allclose(R[0], [0.8, 0.8, 0.8, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(R[1], [0.7, 0.7, 0.75, 0.9, 0.9, 0.95])
    np.testing.assert_allclose(R[2], [RR_CLIP, 0.8, RR_CLIP, RR_CLIP, 1.0, RR_CLIP])
    np.testing.assert_allclose(R[3], [0.8, 0.8, 0.8, 1.0, 1.0, 1.0])
    frame = pd.DataFrame(raw, columns=list(RR_COLUMNS)).assign(other=1)
    np.testing.assert_array_equal(rhythm_matrix(frame), R)
    with pytest.raises(ValueError, match="shape"):
        rhythm_matrix(np.zeros((3, 5)))


def test_rhythm_of_peaks() -> None:
    rr = rr_features(np.array([0, 360, 720, 900, 1440]), 360.0)  # 1 s, 1 s, 0.5 s (premature), 1.5 s
    R = rhythm_matrix(np.stack([rr[k] for k in RR_COLUMNS], axis=1))
    assert R.shape == (5, 6)
    np.testing.assert_allclose(R[3, [0, 1]], [0.5, 1.5])
    np.testing.assert_allclose(R[3, 3], 0.5 / 1.0)  # mean R-R of the record: 4 s / 4 intervals
    np.testing.assert_allclose(R[0, 0], R[0, 1])  # the first beat's missing pre-RR is its post-RR


def _raw_and_provenance(rr: bool) -> tuple[dict[str, Beats], pd.DataFrame]:
    """Tiny raw files; beat i of each file has its sample value and every R-R feature equal to a tag."""
    rng = np.random.default_rng(0)
    raw, frames = {}, []
    sizes = {"mitbih_train.csv": 200, "mitbih_test.csv": 60, "ptbdb_normal.csv": 40, "ptbdb_abnormal.csv": 40}
    for f, (name, n) in enumerate(sizes.items()):
        y = rng.integers(0, 5, size=n) if name.startswith("mitbih") else np.full(n, int("abnormal" in name))
        tag = (f * 1000 + np.arange(n)) / 10000
        raw[name] = Beats(np.repeat(tag[:, None], BEAT_LENGTH, axis=1).astype(np.float32), y)
        frame = {"file": name, "row": np.arange(n), "record": [f"r{i % 8}" for i in range(n)]}
        frame["patient"] = [f"p{i % 6}" for i in range(n)]
        if rr:
            frame.update({c: tag for c in RR_COLUMNS})
        frames.append(pd.DataFrame(frame).iloc[::-1])  # provenance order must not matter
    return raw, pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("split", ["beat", "patient"])
def test_prepare_carries_rhythm_features_through_splits_and_augmentation(split: str) -> None:
    raw, prov = _raw_and_provenance(rr=True)
    cfg = PreprocessConfig(
        split=split,
        rebalance="oversample",
        augment={"copies": 1, "amplitude": 0.0, "stretch": 0.0},  # no-op transforms keep the tag
        patient={
            "mitbih_train_records": ["r0", "r1", "r2", "r3", "r4", "r5"],
            "mitbih_test_records": ["r6", "r7"],
            "exclude_records": [],
        },
    )
    prepared = prepare(raw, cfg, prov)
    # Each beat is a constant "tag" = (file * 1000 + row) / 10000, of record r{row % 8}: its template
    # RMS is |tag - the median tag of its record over both files of its dataset|, its correlation 0.
    tags = {name: (f * 1000 + np.arange(len(b.y))) / 10000 for f, (name, b) in enumerate(raw.items())}
    median = {}
    for dataset, files in (
        ("mitbih", ("mitbih_train.csv", "mitbih_test.csv")),
        ("ptb", ("ptbdb_normal.csv", "ptbdb_abnormal.csv")),
    ):
        t = np.concatenate([tags[f] for f in files])
        rec = np.concatenate([np.arange(len(tags[f])) % 8 for f in files])
        median[dataset] = {r: np.median(t[rec == r]) for r in range(8)}
    for name, dataset in (("mitbih", prepared.mitbih), ("ptb", prepared.ptb)):
        for s in dataset.values():
            assert s.R is not None and s.R.shape == (len(s.y), len(CONTEXT_COLUMNS))
            np.testing.assert_allclose(s.R[:, 0], s.X[:, 0], atol=1e-6)  # features stay with their beat
            row = np.rint(s.X[:, 0] * 10000).astype(int) % 1000
            expected = [
                abs(x - median[name][r % 8]) for x, r in zip(s.X[:, 0].astype(np.float64), row, strict=True)
            ]
            np.testing.assert_allclose(s.R[:, len(RR_COLUMNS) + 1], expected, atol=1e-6)
            np.testing.assert_array_equal(s.R[:, len(RR_COLUMNS)], 0.0)


def test_prepare_without_rr_columns_or_provenance_is_beat_only() -> None:
    raw, prov = _raw_and_provenance(rr=False)
    for provenance in (prov, None):
        prepared = prepare(raw, PreprocessConfig(), provenance)
        assert all(s.R is None for s in (*prepared.mitbih.values(), *prepared.ptb.values()))


def test_rhythm_arrays_round_trip(tmp_path: Path) -> None:
    with_r, without = _split(10, 0, rhythm=True), _split(10, 1)
    save_dataset(tmp_path / "a", {"train": with_r})
    save_dataset(tmp_path / "b", {"train": without})
    np.testing.assert_array_equal(load_split(tmp_path / "a", "train").R, with_r.R)
    assert load_split(tmp_path / "b", "train").R is None and not (tmp_path / "b/R_train.npy").exists()
    np.save(tmp_path / "a/R_train.npy", np.zeros((3, 6), np.float32))
    with pytest.raises(DataError, match="R_train has shape"):
        load_split(tmp_path / "a", "train")


def test_rhythm_resnet_and_transfer_from_it() -> None:
    assert build_resnet(5).count_params() == 55_013  # beat-only: the paper's model, unchanged
    model = build_resnet(5, rhythm_features=6)
    assert takes_rhythm(model) and [t.name for t in model.inputs] == ["beat", "rhythm"]
    data = _split(4, 0, n_classes=5, rhythm=True)
    assert model.predict(model_inputs(model, data), verbose=0).shape == (4, 5)
    with pytest.raises(DataError, match="takes 'rhythm' input, which the data has none of"):
        model_inputs(model, Split(data.X, data.y))
    transfer = build_transfer(model, 2, "all_conv")
    assert not takes_rhythm(transfer) and transfer.predict(data.X, verbose=0).shape == (4, 2)


def test_rhythm_model_learns_from_rhythm_alone() -> None:
    """The beats carry no class information here; only the R-R input does."""
    rng = np.random.default_rng(0)
    tr, va = _split(256, 0, rhythm=True), _split(64, 1, rhythm=True)
    tr = Split(rng.random(tr.X.shape, dtype=np.float32), tr.y, tr.R)
    va = Split(rng.random(va.X.shape, dtype=np.float32), va.y, va.R)
    make_deterministic(0)
    model = _resnet(rhythm=True)
    train(model, tr, va, TrainConfig(epochs=8, batch_size=32, lr=0.01, patience=0))
    proba = model.predict(model_inputs(model, va), verbose=0)
    assert np.mean(np.argmax(proba, axis=1) == va.y) > 0.8


# ---------------------------------------------------------------- the training stage


def _stage(
    folder: Path, monkeypatch: pytest.MonkeyPatch, rhythm_data: bool, context_columns: int = 6, **options
) -> dict:
    tr, va = _split(96, 0, 5, rhythm_data), _split(32, 1, 5, rhythm_data)
    if rhythm_data and context_columns > tr.R.shape[1]:  # as preprocess writes them: R-R, then template
        pad = context_columns - tr.R.shape[1]
        tr = Split(tr.X, tr.y, np.hstack([tr.R, np.ones((len(tr.y), pad), np.float32)]))
        va = Split(va.X, va.y, np.hstack([va.R, np.ones((len(va.y), pad), np.float32)]))
    save_dataset(folder / "data/prepared/mitbih", {"train": tr, "val": va})
    write_prepared_info(folder)
    section = {"epochs": 1, "batch_size": 32, **TINY, **options}
    (folder / "params.yaml").write_text(
        yaml.safe_dump({"train_resnet_mitbih": section, "train": {"device": "cpu"}})
    )
    monkeypatch.chdir(folder)
    run_training("resnet_mitbih")
    return json.loads((folder / "models/resnet_mitbih.json").read_text())


def test_stage_trains_with_rhythm_and_stores_the_temperature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = _stage(tmp_path, monkeypatch, True, rhythm=True, calibration="temperature")
    assert info["rhythm_input"] is True and 0.05 <= info["temperature"] <= 20
    model = keras.saving.load_model(tmp_path / "models/resnet_mitbih.keras", compile=False)
    assert takes_rhythm(model)


def test_stage_falls_back_to_beat_only_without_rr_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="heartbeat"):
        info = _stage(tmp_path, monkeypatch, False, rhythm=True)
    assert info["rhythm_input"] is False and "temperature" not in info
    assert "no R-R features" in caplog.text and "beat-only" in caplog.text


# ---------------------------------------------------------------- seed ensembles


def test_ensemble_averages_its_members_and_round_trips(tmp_path: Path) -> None:
    from heartbeat.model.architectures import build_ensemble, ensemble_members
    from heartbeat.model.saving import load_model, save_model

    members = []
    for seed in (0, 1, 2):
        make_deterministic(seed)
        members.append(_resnet(5, rhythm=True))
    data = _split(8, 0, n_classes=5, rhythm=True)
    expected = np.mean([m.predict(model_inputs(m, data), verbose=0) for m in members], axis=0)
    model = build_ensemble(members, "resnet_ensemble")
    assert takes_rhythm(model) and [t.name for t in model.inputs] == ["beat", "rhythm"]
    np.testing.assert_allclose(model.predict(model_inputs(model, data), verbose=0), expected, atol=1e-6)
    save_model(model, tmp_path / "e.keras")
    loaded = load_model(tmp_path / "e.keras", 5)
    np.testing.assert_allclose(loaded.predict(model_inputs(loaded, data), verbose=0), expected, atol=1e-6)
    back = ensemble_members(loaded)
    assert [m.name for m in back] == ["member_0", "member_1", "member_2"]
    for original, restored in zip(members, back, strict=True):
        for a, b in zip(original.get_weights(), restored.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    # transfer starts from member 0's representation, beat only
    transfer = build_transfer(loaded, 2, "none")
    assert not takes_rhythm(transfer)
    assert transfer.get_layer("representation") is back[0].get_layer("representation")
    assert ensemble_members(members[0]) == [members[0]]


def test_ensemble_refuses_one_member_or_mismatched_inputs() -> None:
    from heartbeat.model.architectures import build_ensemble

    with pytest.raises(ValueError, match="at least 2 members"):
        build_ensemble([_resnet()], "e")
    with pytest.raises(ValueError, match="different inputs"):
        build_ensemble([_resnet(), _resnet(rhythm=True)], "e")


def test_ensemble_stage_trains_each_seed_as_a_single_run_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Member i of ``ensemble: k, seed: s`` has the weights of a single run with seed s + i."""
    from heartbeat.model.architectures import ensemble_members
    from heartbeat.train.history import read_history_csv

    info = _stage(
        tmp_path / "ens",
        monkeypatch,
        True,
        rhythm=True,
        seed=5,
        ensemble=2,
        epochs=2,
        calibration="temperature",
    )
    ens = keras.saving.load_model(tmp_path / "ens/models/resnet_mitbih.keras", compile=False)
    history = read_history_csv((tmp_path / "ens/plots/resnet_mitbih/history.csv").read_text())
    single = _stage(tmp_path / "one", monkeypatch, True, rhythm=True, seed=6, epochs=2)
    one = keras.saving.load_model(tmp_path / "one/models/resnet_mitbih.keras", compile=False)

    members = ensemble_members(ens)
    assert len(members) == 2 and takes_rhythm(ens)
    for a, b in zip(members[1].get_weights(), one.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert info["ensemble"]["seeds"] == [5, 6] and info["ensemble"]["epochs_run"] == [2, 2]
    assert info["epochs_run"] == 4 and "best_epoch" not in info
    assert info["weight_count"] == 2 * single["weight_count"] and 0.05 <= info["temperature"] <= 20
    # members one after the other, each with its own epochs; member says whose (1, 2, ...)
    assert [r["epoch"] for r in history] == [1, 2, 1, 2]
    assert [r["member"] for r in history] == [1, 1, 2, 2]
    assert "member" not in (tmp_path / "one/plots/resnet_mitbih/history.csv").read_text()


def test_ensemble_must_be_a_small_positive_count() -> None:
    with pytest.raises(ParamsError, match="ensemble"):
        parse_section(ResNetConfig, "train_resnet_mitbih", {"ensemble": 0})
    with pytest.raises(ParamsError, match="ensemble"):
        parse_section(MLPConfig, "train_mlp", {"ensemble": 2})


def test_transfer_from_an_ensemble_is_transfer_from_its_first_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The base is loaded before the seeding, so the number of members cannot change the result."""
    from heartbeat.model.architectures import build_ensemble
    from heartbeat.model.saving import save_model

    members = []
    for seed in (0, 1):
        make_deterministic(seed)
        members.append(_resnet(5))
    weights = []
    for folder, base in (("ens", build_ensemble(members, "e")), ("one", members[0])):
        root = tmp_path / folder
        save_dataset(root / "data/prepared/ptb", {"train": _split(64, 0, 2), "val": _split(32, 1, 2)})
        write_prepared_info(root)
        save_model(base, root / "models/resnet_mitbih.keras")
        section = {"epochs": 1, "batch_size": 32, "freeze": "none"}
        (root / "params.yaml").write_text(
            yaml.safe_dump({"finetune_transfer": section, "train": {"device": "cpu"}})
        )
        monkeypatch.chdir(root)
        run_training("transfer_ptb")
        weights.append(
            keras.saving.load_model(root / "models/transfer_ptb.keras", compile=False).get_weights()
        )
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- record-template features


def test_template_features_compare_each_beat_with_its_own_records_median_beat() -> None:
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, BEAT_LENGTH)
    usual = np.exp(-(((t - 0.5) / 0.02) ** 2))  # a narrow "QRS" at the centre
    odd = np.exp(-(((t - 0.5) / 0.08) ** 2))  # a wide one
    a = np.vstack([usual + rng.normal(0, 0.01, BEAT_LENGTH) for _ in range(20)] + [odd])
    b = 0.5 * np.vstack([odd + rng.normal(0, 0.01, BEAT_LENGTH) for _ in range(10)])  # another patient
    X = np.vstack([a, b]).astype(np.float32)
    groups = np.array(["a"] * len(a) + ["b"] * len(b))
    F = template_features(X, groups)
    assert F.shape == (len(X), 3) and F.dtype == np.float32
    corr, rms, rms_norm = F.T
    # the odd beat of record a is the least like a's usual beat; b's beats, all wide, are usual for b
    assert np.argmin(corr[: len(a)]) == len(a) - 1 and corr[len(a) - 1] < 0.8 < corr[: len(a) - 1].min()
    assert (
        rms[len(a) - 1] > rms[: len(a) - 1].max() and rms_norm[len(a) - 1] > 5 * rms_norm[: len(a) - 1].max()
    )
    assert corr[len(a) :].min() > 0.9 and rms_norm[len(a) :].max() < 3
    # each record on its own: another record's beats change nothing
    np.testing.assert_array_equal(template_features(X[: len(a)], groups[: len(a)]), F[: len(a)])
    rr = np.ones((len(a), len(RR_COLUMNS)))
    np.testing.assert_array_equal(context_matrix(rr, X[: len(a)], np.zeros(len(a)))[:, 6:], F[: len(a)])
    with pytest.raises(ValueError, match="group labels"):
        template_features(X, groups[:3])


def test_models_read_a_prefix_of_the_context_columns() -> None:
    data = _split(8, 0, n_classes=5, rhythm=True)
    context = Split(data.X, data.y, np.hstack([data.R, np.full((8, 3), 7.0, np.float32)]))
    rr_model, tpl_model = (
        _resnet(5, rhythm=True),
        build_resnet(5, **TINY, rhythm_features=len(CONTEXT_COLUMNS)),
    )
    np.testing.assert_array_equal(model_inputs(rr_model, context)[1], data.R)
    np.testing.assert_array_equal(model_inputs(tpl_model, context)[1], context.R)
    with pytest.raises(DataError, match="takes 9 rhythm features, but the data has 6"):
        model_inputs(tpl_model, data)


def test_stage_template_option_widens_the_rhythm_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = _stage(tmp_path, monkeypatch, True, rhythm=True, template=True, context_columns=9)
    model = keras.saving.load_model(tmp_path / "models/resnet_mitbih.keras", compile=False)
    assert info["rhythm_input"] is True and model.inputs[1].shape[1] == len(CONTEXT_COLUMNS)
    assert ResNetConfig().template is False
