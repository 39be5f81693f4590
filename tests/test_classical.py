"""The classical inter-patient methods (architecture lda and gbt): scikit-learn fits them, and the Keras
model written from the fit computes what scikit-learn would, through saving, export and the stage."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import HistGradientBoostingClassifier

from heartbeat.core.config import ResNetConfig, TreesConfig
from heartbeat.core.stored import RecordSmoothing
from heartbeat.model import classical
from heartbeat.model.saving import load_model, save_model
from heartbeat.prepare.arrays import Split
from heartbeat.signal.patient import PATIENT_COLUMNS, WINDOW_SHAPE

N_FEATURES = len(PATIENT_COLUMNS)


def _data(n: int = 1500, seed: int = 0, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Features whose classes depend on a few columns; class 4 (Q) absent when ``classes`` is 4."""
    rng = np.random.default_rng(seed)
    P = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    y = np.zeros(n, dtype=np.int64)
    y[P[:, 0] > 0.8] = 1
    y[P[:, 1] > 1.0] = 2
    y[(P[:, 2] > 1.2) & (y == 0)] = 3 if classes > 3 else 0
    return P, y


def _keras_proba(model, P: np.ndarray) -> np.ndarray:
    W = np.zeros((len(P), *WINDOW_SHAPE), dtype=np.float32)
    return model.predict([W, P], verbose=0)


def test_the_discriminants_give_what_scikit_learn_gives_and_nothing_to_an_absent_class() -> None:
    P, y = _data()
    lda = LinearDiscriminantAnalysis().fit(P, y)
    model = classical.lda_model(lda, 5, WINDOW_SHAPE, N_FEATURES)
    proba = _keras_proba(model, P)
    np.testing.assert_allclose(proba[:, :4], lda.predict_proba(P), atol=1e-5)
    assert proba[:, 4].max() < 1e-10  # Q: no training beat, no probability


def test_the_trees_give_what_scikit_learn_gives_even_on_the_thresholds() -> None:
    P, y = _data()
    gbt = HistGradientBoostingClassifier(max_iter=20, max_depth=5, random_state=0).fit(P, y)
    model = classical.gbt_model(gbt, 5, WINDOW_SHAPE, N_FEATURES)
    # Rows sitting exactly on split thresholds (rounded to float32 both ways) are where a float32
    # comparison against a float64 threshold could go the other way.
    nodes = gbt._predictors[0][0].nodes
    split = nodes[nodes["is_leaf"] == 0][:5]
    edge = np.repeat(P[:1], 2 * len(split), axis=0)
    for i, node in enumerate(split):
        t = np.float64(node["num_threshold"])
        edge[2 * i, node["feature_idx"]] = np.float32(t)
        edge[2 * i + 1, node["feature_idx"]] = np.nextafter(np.float32(t), np.float32(np.inf))
    X = np.vstack([P, edge])
    proba = _keras_proba(model, X)
    expected = gbt.predict_proba(X)
    np.testing.assert_allclose(proba[:, :4], expected, atol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), expected.argmax(axis=1))
    assert proba[:, 4].max() < 1e-10


def test_float32_thresholds_split_every_float32_as_the_float64_ones_do() -> None:
    rng = np.random.default_rng(1)
    t = rng.normal(size=2000)
    t32 = classical._float32_at_most(t)
    x = np.concatenate([t.astype(np.float32), np.nextafter(t.astype(np.float32), np.float32(np.inf))])
    tt = np.concatenate([t, t])
    tt32 = np.concatenate([t32, t32])
    np.testing.assert_array_equal(x <= tt32, x.astype(np.float64) <= tt)


def test_a_tree_model_saves_and_loads_to_the_same_outputs(tmp_path) -> None:
    P, y = _data(600)
    gbt = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(P, y)
    model = classical.gbt_model(gbt, 5, WINDOW_SHAPE, N_FEATURES)
    save_model(model, tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras", 5)
    np.testing.assert_array_equal(_keras_proba(again, P), _keras_proba(model, P))
    assert classical.has_trees(again) and not classical.has_trees(
        classical.lda_model(LinearDiscriminantAnalysis().fit(P, y), 5, WINDOW_SHAPE, N_FEATURES)
    )


def test_fewer_than_three_classes_is_refused() -> None:
    P, y = _data()
    y = (y > 0).astype(np.int64)
    with pytest.raises(ValueError, match="three classes"):
        classical.gbt_model(HistGradientBoostingClassifier(max_iter=2).fit(P, y), 5, WINDOW_SHAPE, N_FEATURES)


def _split(n: int, seed: int) -> Split:
    P, y = _data(n, seed)
    rng = np.random.default_rng(seed)
    return Split(
        X=rng.normal(size=(n, 187)).astype(np.float32),
        y=y,
        W=rng.normal(size=(n, *WINDOW_SHAPE)).astype(np.float32),
        P=P,
        G=np.arange(n) % 3,
    )


@pytest.mark.parametrize("architecture", ["lda", "gbt"])
def test_the_stage_fits_a_classical_model_calibrated_after_smoothing_and_reproducibly(architecture) -> None:
    from heartbeat.train.stage import fit_stage

    tr, va = _split(900, 0), _split(300, 1)
    cfg = ResNetConfig(
        architecture=architecture,
        calibration="temperature",
        class_weight="sqrt",
        record_smoothing=RecordSmoothing(neighbours=5, weight=0.5),
        trees=TreesConfig(iterations=8, normal_share=0.5),
    )
    first = fit_stage("train_resnet_mitbih", cfg, tr, va, 5)
    second = fit_stage("train_resnet_mitbih", cfg, tr, va, 5)
    assert first.model.name == architecture
    assert first.info["record_smoothing"] == {"neighbours": 5, "weight": 0.5, "span": 5000}
    assert 0.05 <= first.info["temperature"] <= 20 and first.info["temperature"] == second.info["temperature"]
    assert first.history and {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(first.history[-1])
    assert len(first.history) == (8 if architecture == "gbt" else 1)
    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    accuracy = np.mean(_keras_proba(first.model, va.P).argmax(axis=1) == va.y)
    assert accuracy > 0.8  # it learnt the rule, not only the majority class (about 0.6)


def test_the_trees_learn_from_every_minority_beat_and_a_share_of_the_normal_ones() -> None:
    from heartbeat.train.classical import training_rows

    y = np.array([0] * 1000 + [1] * 30 + [2] * 20)
    rows = training_rows(y, 0.3, seed=4)
    assert set(np.flatnonzero(y > 0)) <= set(rows)
    assert 250 < np.sum(y[rows] == 0) < 350
    np.testing.assert_array_equal(rows, training_rows(y, 0.3, seed=4))
    np.testing.assert_array_equal(training_rows(y, 1.0, seed=4), np.arange(len(y)))


def test_trees_that_also_read_the_window_give_what_scikit_learn_gives(tmp_path) -> None:
    P, y = _data(800)
    rng = np.random.default_rng(3)
    W = rng.normal(size=(800, *WINDOW_SHAPE)).astype(np.float32)
    y[W[:, 60, 1] > 1.5] = 2  # a class the window alone shows
    X = classical.tree_features(W, P, 5)
    assert X.shape == (800, N_FEATURES + 25 * 2)
    np.testing.assert_array_equal(X[:, N_FEATURES + 2 * 12 + 1], W[:, 60, 1])  # sample 60 of lead 2
    gbt = HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(X, y)
    model = classical.gbt_model(gbt, 5, WINDOW_SHAPE, N_FEATURES, stride=5)
    save_model(model, tmp_path / "w.keras")
    proba = load_model(tmp_path / "w.keras", 5).predict([W, P], verbose=0)
    np.testing.assert_allclose(proba[:, :4], gbt.predict_proba(X), atol=1e-5)


def test_a_fresh_process_loads_a_tree_model_without_importing_its_module(tmp_path) -> None:
    """Keras finds TreeEnsemble by its registered name: load_model registers it, so evaluate and
    predict, which never import heartbeat.model.classical themselves, load the stage's file."""
    import subprocess
    import sys

    P, y = _data(300)
    gbt = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(P, y)
    save_model(classical.gbt_model(gbt, 5, WINDOW_SHAPE, N_FEATURES), tmp_path / "m.keras")
    code = (
        "import sys; from heartbeat.model.saving import load_model; "
        "m = load_model(sys.argv[1], 5); "
        "assert 'heartbeat.model.classical' in sys.modules; print(m.name)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.keras")], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "gbt"


def test_the_network_with_the_trees_is_one_model_that_averages_them_and_still_transfers() -> None:
    from heartbeat.model.architectures import build_transfer, ensemble_members, has_representation
    from heartbeat.train.stage import fit_stage

    tr, va = _split(600, 0), _split(200, 1)
    small = {"epochs": 1, "batch_size": 64, "filters": 4, "blocks": 1, "dense": 4, "kernel_size": 3}
    cfg = ResNetConfig(
        architecture="patient_net",
        with_trees=True,
        calibration="temperature",
        trees=TreesConfig(iterations=5),
        **small,
    )
    trained = fit_stage("train_resnet_mitbih", cfg, tr, va, 5)
    members = ensemble_members(trained.model)
    assert [m.name for m in members] == ["member_0", "member_1"]
    assert trained.info["ensemble"]["members"] == ["patient_net", "gbt"]
    assert classical.has_trees(trained.model) and has_representation(trained.model)
    W, P = va.W, va.P
    mean = (members[0].predict([W, P], verbose=0) + members[1].predict([W, P], verbose=0)) / 2
    np.testing.assert_allclose(trained.model.predict([W, P], verbose=0), mean, atol=1e-6)
    assert "temperature" in trained.info
    assert build_transfer(trained.model, 2, "none").output.shape[-1] == 2  # fine-tunes the network
