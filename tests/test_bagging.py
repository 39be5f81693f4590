"""Ensembles whose members hold out their own records (heartbeat/train/bagging.py)."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from heartbeat.core.config import ResNetConfig, parse_section
from heartbeat.core.errors import ParamsError
from heartbeat.core.stored import RecordSmoothing
from heartbeat.model.architectures import build_resnet, ensemble_members, model_inputs, with_temperature
from heartbeat.model.calibration import apply_temperature
from heartbeat.prepare.arrays import Split
from heartbeat.signal.patient import PATIENT_COLUMNS, WINDOW_SHAPE
from heartbeat.train.bagging import held_out_records, member_splits, pool_records

SMALL = {"epochs": 2, "batch_size": 64, "filters": 4, "blocks": 1, "dense": 4, "kernel_size": 3}


def _split(n: int, seed: int, records: range) -> Split:
    """Beats of ``records`` (G), with features that tell the classes apart."""
    rng = np.random.default_rng(seed)
    P = rng.normal(size=(n, len(PATIENT_COLUMNS))).astype(np.float32)
    y = np.zeros(n, dtype=np.int64)
    y[P[:, 0] > 0.8] = 1
    y[P[:, 1] > 1.0] = 2
    return Split(
        X=rng.normal(size=(n, 187)).astype(np.float32),
        y=y,
        W=rng.normal(size=(n, *WINDOW_SHAPE)).astype(np.float32),
        P=P,
        G=np.asarray(records)[np.arange(n) % len(records)],
    )


def _cfg(**changes) -> ResNetConfig:
    return ResNetConfig(
        calibration="temperature",
        record_smoothing=RecordSmoothing(neighbours=5, weight=0.5),
        **{"architecture": "patient_net", **SMALL, **changes},
    )


def test_the_draw_is_a_seeded_choice_without_replacement() -> None:
    records = ["101", "106", "108", "109", "112"]
    first = held_out_records(records, 2, [3, 101])
    assert first == held_out_records(records, 2, [3, 101]) and len(set(first)) == 2
    assert set(first) <= set(records)
    # the generator's own choice, so bench/new_patients.py's stored runs keep their records
    expected = np.random.default_rng([3, 101]).choice(records, size=2, replace=False).tolist()
    assert first == sorted(expected)
    draws = {tuple(held_out_records(records, 2, [s])) for s in range(20)}
    assert len(draws) > 3  # the seed matters


def test_a_member_validates_on_whole_records_it_does_not_train_on() -> None:
    tr, va = _split(300, 0, range(0, 5)), _split(100, 1, range(5, 7))
    pool = tr.joined(va)
    assert len(pool.y) == 400 and list(pool_records(pool)) == list(range(7))
    m_tr, m_va, out = member_splits(pool, 2, seed=4)
    assert len(out) == 2 and set(np.unique(m_va.G)) == set(out)
    assert not set(np.unique(m_tr.G)) & set(out)
    assert len(m_tr.y) + len(m_va.y) == 400
    assert pool_records(tr.joined(Split(va.X, va.y))) is None


def test_a_folded_temperature_gives_the_calibrated_probabilities() -> None:
    model = build_resnet(3, filters=4, blocks=1, dense=4)
    x = np.random.default_rng(0).normal(size=(64, 187)).astype(np.float32)
    before = model.predict(model_inputs(model, Split(x, np.zeros(64, np.int64))), verbose=0)
    with_temperature(model, 0.3)
    after = model.predict(model_inputs(model, Split(x, np.zeros(64, np.int64))), verbose=0)
    np.testing.assert_allclose(after, apply_temperature(before, 0.3), atol=2e-5)


def test_each_member_is_the_single_run_on_its_own_records() -> None:
    """Member i of ``ensemble: k, ensemble_holdout: n`` is a single run with seed s + i trained on
    the records its seed did not draw, its temperature folded in; the ensemble fits none of its own."""
    from heartbeat.train.stage import fit_stage

    tr, va = _split(420, 0, range(0, 5)), _split(120, 1, range(5, 7))
    trained = fit_stage("train_resnet_mitbih", _cfg(seed=2, ensemble=2, ensemble_holdout=2), tr, va, 5)
    info = trained.info["ensemble"]
    assert info["seeds"] == [2, 3] and len(info["held_out_records"]) == 2
    assert info["held_out_records"] != [sorted(range(5, 7))] * 2  # not the stage's own validation split
    assert "temperature" not in trained.info and len(info["temperature"]) == 2

    pool = tr.joined(va)
    m_tr, m_va, out = member_splits(pool, 2, seed=3)
    assert out == info["held_out_records"][1]
    single = fit_stage("train_resnet_mitbih", _cfg(seed=3), m_tr, m_va, 5)
    assert single.info["temperature"] == info["temperature"][1]
    with_temperature(single.model, single.info["temperature"])
    member = ensemble_members(trained.model)[1]
    for a, b in zip(member.get_weights(), single.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # the saved model is the mean of the calibrated members
    inputs = model_inputs(trained.model, va)
    mean = np.mean([m.predict(inputs, verbose=0) for m in ensemble_members(trained.model)], axis=0)
    np.testing.assert_allclose(trained.model.predict(inputs, verbose=0), mean, atol=1e-6)


def test_holding_out_every_record_or_beside_the_trees_is_refused() -> None:
    from heartbeat.train.stage import fit_stage

    tr, va = _split(60, 0, range(0, 2)), _split(30, 1, range(2, 3))
    with pytest.raises(ParamsError, match=r"ensemble_holdout: 3 records held out of the 3 .* below 3"):
        fit_stage("train_resnet_mitbih", _cfg(ensemble=2, ensemble_holdout=3), tr, va, 5)
    with pytest.raises(ParamsError, match="ensemble_holdout: 1 .*with_trees: false"):
        fit_stage("train_resnet_mitbih", _cfg(ensemble=2, ensemble_holdout=1, with_trees=True), tr, va, 5)
    with pytest.raises(ParamsError, match="ensemble_holdout"):
        parse_section(ResNetConfig, "train_resnet_mitbih", {"ensemble_holdout": -1})


def test_without_records_the_members_share_them_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from heartbeat.train.stage import fit_stage

    tr, va = (dataclasses.replace(s, G=None) for s in (_split(120, 0, range(3)), _split(60, 1, range(3, 4))))
    with caplog.at_level(logging.WARNING, logger="heartbeat"):
        trained = fit_stage("train_resnet_mitbih", _cfg(ensemble=2, ensemble_holdout=1, epochs=1), tr, va, 5)
    assert "every member sees the same records" in caplog.text
    assert "held_out_records" not in trained.info["ensemble"] and "temperature" in trained.info


def test_the_sidecar_names_the_held_out_records() -> None:
    from heartbeat.train.stage import record_names

    prepared = {"records": {"mitbih": ["101", "106", "108"]}}
    assert record_names([[2, 0], [1, 2]], prepared, "mitbih") == [["108", "101"], ["106", "108"]]
    assert record_names([[3]], prepared, "mitbih") == [[3]]  # not a record it lists: left as it is
    assert record_names([[0]], {"records": None}, "mitbih") == [[0]]


def test_predict_reads_the_members_temperatures_and_refuses_damaged_ones() -> None:
    from heartbeat.core.errors import ModelError
    from heartbeat.serve.runners import folded_temperatures

    assert folded_temperatures({"ensemble": {"temperature": [0.2, 0.31]}}, "m.json") == [0.2, 0.31]
    assert folded_temperatures({"temperature": 0.5}, "m.json") == []
    with pytest.raises(ModelError, match=r"^m\.json: ensemble: temperature 'x' is not a number"):
        folded_temperatures({"ensemble": {"temperature": [0.2, "x"]}}, "m.json")
    with pytest.raises(ModelError, match=r"^m\.json: ensemble\.temperature is not a list"):
        folded_temperatures({"ensemble": {"temperature": 0.2}}, "m.json")


def test_a_fitted_architecture_under_the_shipped_ensemble_trains_one_model(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The shipped ``ensemble: 3`` must not stop ``-S train_resnet_mitbih.architecture=gbt``: trees
    fitted three times would be one model three times, so one is trained, with a warning."""
    from heartbeat.core.config import TreesConfig
    from heartbeat.train.stage import fit_stage

    tr, va = _split(300, 0, range(0, 4)), _split(100, 1, range(4, 6))
    cfg = _cfg(architecture="gbt", ensemble=3, ensemble_holdout=2, trees=TreesConfig(iterations=3))
    with caplog.at_level(logging.WARNING, logger="heartbeat"):
        trained = fit_stage("train_resnet_mitbih", cfg, tr, va, 5)
    assert (
        "3 copies of one model (it is fitted without random draws that matter); training one" in caplog.text
    )
    assert trained.model.name == "gbt" and "ensemble" not in trained.info and "temperature" in trained.info
