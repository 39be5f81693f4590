"""Smoothing over a recording (heartbeat/model/smoothing.py): the rule, what stores it, what applies it."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from heartbeat.core.errors import DataError, ModelError
from heartbeat.core.layout import read_sidecar
from heartbeat.core.stored import RecordSmoothing
from heartbeat.model.outputs import OutputSteps
from heartbeat.model.smoothing import check_smoothing, smooth_over_records
from tests.conftest import random_recording_split
from tests.test_recordings import run_cli, synthetic_ecg


def stored_smoothing(model_path) -> RecordSmoothing | None:
    """The smoothing a sidecar holds, read as evaluate and predict read it."""
    where, data = read_sidecar(model_path)
    return OutputSteps.from_sidecar(data, str(where)).smoothing


def _probabilities(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(5), size=n).astype(np.float32)


def test_each_beat_is_blended_with_the_mean_of_its_look_alikes() -> None:
    """Two shapes far apart, 4 beats each: with 4 neighbours a beat's result is its own probabilities
    and the mean of its shape's 4 (itself included), weighted as asked, whatever the beats' order."""
    rng = np.random.default_rng(0)
    shape = np.repeat([0.0, 10.0], 4)[:, None, None] + rng.normal(0, 0.01, (8, 6, 2))
    p = _probabilities(8)
    out = smooth_over_records(p, shape, None, RecordSmoothing(neighbours=4, weight=0.25))
    for members in (slice(0, 4), slice(4, 8)):
        expected = 0.75 * p[members] + 0.25 * p[members].mean(axis=0)
        np.testing.assert_allclose(out[members], expected, rtol=1e-6)
    order = rng.permutation(8)
    shuffled = smooth_over_records(p[order], shape[order], None, RecordSmoothing(4, 0.25))
    np.testing.assert_allclose(shuffled, out[order], rtol=1e-6)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    assert out.dtype == p.dtype


def test_records_are_smoothed_apart_and_a_short_one_averages_all_its_beats() -> None:
    """A beat's look-alikes come from its own record only, even when another record's beats are the
    same shape; a record with fewer beats than ``neighbours`` averages all of its own."""
    rng = np.random.default_rng(1)
    windows = rng.normal(size=(30, 125, 2)).astype(np.float32)
    windows[20:] = windows[:10]  # record 2's beats are copies of record 0's
    records = np.repeat([0, 1, 2], 10)
    p = _probabilities(30, 1)
    s = RecordSmoothing(neighbours=20, weight=0.5)
    together = smooth_over_records(p, windows, records, s)
    for r in range(3):
        alone = smooth_over_records(p[records == r], windows[records == r], None, s)
        np.testing.assert_allclose(together[records == r], alone, rtol=1e-6)
        np.testing.assert_allclose(alone, 0.5 * p[records == r] + 0.5 * p[records == r].mean(0), rtol=1e-6)


def test_a_recording_longer_than_span_is_smoothed_in_equal_stretches() -> None:
    """11 beats with span 4: three consecutive stretches of 4, 4 and 3 beats, each smoothed alone."""
    rng = np.random.default_rng(3)
    windows = rng.normal(size=(11, 20)).astype(np.float32)
    p = _probabilities(11, 3)
    s = RecordSmoothing(neighbours=3, weight=0.5, span=4)
    out = smooth_over_records(p, windows, None, s)
    for part in (slice(0, 4), slice(4, 8), slice(8, 11)):
        np.testing.assert_allclose(out[part], smooth_over_records(p[part], windows[part], None, s), rtol=1e-6)
    whole = smooth_over_records(p, windows, None, RecordSmoothing(3, 0.5, span=11))
    assert not np.allclose(whole, out)


def test_the_span_must_hold_the_neighbours() -> None:
    with pytest.raises(
        ValueError, match=r"span must be an integer in \[neighbours, 20000\] \(got 10, neighbours 20\)"
    ):
        RecordSmoothing(neighbours=20, weight=0.5, span=10)


def test_weight_zero_one_neighbour_and_one_beat_leave_the_probabilities_alone() -> None:
    p = _probabilities(12)
    windows = np.random.default_rng(2).normal(size=(12, 10))
    for s in (RecordSmoothing(20, 0.0), RecordSmoothing(1, 0.9)):
        out = smooth_over_records(p, windows, None, s)
        np.testing.assert_array_equal(out, p)
        assert out is not p
    records = np.arange(12)  # every beat its own recording
    np.testing.assert_array_equal(smooth_over_records(p, windows, records, RecordSmoothing(20, 0.5)), p)


def test_rows_that_do_not_match_are_an_error_naming_the_counts() -> None:
    with pytest.raises(DataError, match="12 rows of probabilities but 11 windows; expected one per beat"):
        smooth_over_records(_probabilities(12), np.zeros((11, 4)), None, RecordSmoothing(5, 0.5))
    with pytest.raises(DataError, match="12 windows and 3 record ids"):
        smooth_over_records(_probabilities(12), np.zeros((12, 4)), np.zeros(3), RecordSmoothing(5, 0.5))


@pytest.mark.parametrize(
    "value",
    [
        {"neighbours": 0, "weight": 0.5, "span": 5000},
        {"neighbours": 20, "weight": 1.5, "span": 5000},
        {"neighbours": 20.5, "weight": 0.5, "span": 5000},
        {"neighbours": True, "weight": 0.5, "span": 5000},
        {"neighbours": 20, "weight": float("nan"), "span": 5000},
        {"neighbours": 20, "weight": "0.5", "span": 5000},
        {"neighbours": 20, "weight": 0.5, "span": 10},
        {"neighbours": 20, "weight": 0.5, "span": 10**9},
        {"neighbours": 20, "weight": 0.5},
        {"neighbours": 20, "weight": 0.5, "span": 5000, "extra": 1},
        [20, 0.5, 5000],
    ],
)
def test_a_stored_smoothing_training_cannot_write_is_refused(tmp_path, value) -> None:
    sidecar = tmp_path / "m.json"
    sidecar.write_text(json.dumps({"record_smoothing": value}))
    with pytest.raises(
        ModelError, match=r"m\.json: record_smoothing .* as training writes it \(.+\); retrain"
    ):
        stored_smoothing(sidecar)


def test_a_stored_smoothing_is_read_and_none_is_none(tmp_path) -> None:
    sidecar = tmp_path / "m.json"
    sidecar.write_text(json.dumps({"record_smoothing": {"neighbours": 20, "weight": 0.5, "span": 900}}))
    assert stored_smoothing(sidecar) == RecordSmoothing(20, 0.5, 900)
    assert stored_smoothing(tmp_path / "m.keras") == RecordSmoothing(20, 0.5, 900)  # the model beside it
    sidecar.write_text(json.dumps({"temperature": 0.5}))
    assert stored_smoothing(sidecar) is None
    assert stored_smoothing(tmp_path / "missing.json") is None
    assert check_smoothing(None, "x") is None


def test_the_stage_stores_smoothing_only_for_a_network_that_takes_windows() -> None:
    """patient_net with ``weight > 0`` keeps it in its sidecar; with weight 0, or the paper's ResNet
    (no window to compare beats by), nothing is stored and evaluate and predict smooth nothing."""
    from heartbeat.core.config import ResNetConfig
    from heartbeat.train.stage import fit_stage

    split = random_recording_split(0)
    on = RecordSmoothing(neighbours=7, weight=0.4)
    small = {"epochs": 1, "batch_size": 32, "filters": 4, "blocks": 1, "dense": 4, "kernel_size": 3}
    for arch, smoothing, stored in (
        ("patient_net", on, {"neighbours": 7, "weight": 0.4, "span": 5000}),
        ("patient_net", RecordSmoothing(weight=0.0), None),
        ("resnet", on, None),
    ):
        cfg = ResNetConfig(architecture=arch, record_smoothing=smoothing, **small)
        trained = fit_stage("train_resnet_mitbih", cfg, split, split, 5)
        assert trained.info.get("record_smoothing") == stored, arch


def test_predict_smooths_a_recording_as_evaluation_does_unless_asked_not_to(capsys, tmp_path) -> None:
    """The pretrained model stores its smoothing; ``heartbeat predict`` on a recording gives exactly
    the network's probabilities smoothed by the library's one function, and ``--each-beat-alone``
    the network's own; the JSON output says which."""
    from heartbeat.serve import pretrained
    from heartbeat.serve.inputs import read_input
    from heartbeat.serve.runners import load_runner, predict_proba, stored_patient_options

    runner = load_runner(pretrained.MODEL, "keras")
    assert runner.steps.smoothing == RecordSmoothing(neighbours=20, weight=0.5, span=5000)
    path = tmp_path / "lead.npy"
    np.save(path, synthetic_ecg(40, rate_bpm=90))
    # cut as predict cuts it for this model: against the reference the model was trained with
    beats = read_input(str(path), "auto", fs=250, **stored_patient_options(pretrained.MODEL))
    raw = predict_proba(runner, beats.X, window=beats.window, patient=beats.patient, each_beat_alone=True)
    expected = smooth_over_records(raw, beats.window, None, runner.steps.smoothing)
    np.testing.assert_array_equal(
        predict_proba(runner, beats.X, window=beats.window, patient=beats.patient), expected
    )
    assert len(raw) > 40 and not np.allclose(expected, raw, atol=1e-4)
    cols = [f"p_{c}" for c in "NSVFQ"]
    outputs = {}
    for extra in ([], ["--each-beat-alone"]):
        code, out, err = run_cli(capsys, "-m", pretrained.MODEL, path, "--fs", "250", "-f", "json", *extra)
        assert code == 0, err
        data = json.loads(out)
        outputs[bool(extra)] = pd.read_json(io.StringIO(json.dumps(data["beats"])))[cols].to_numpy()
        assert data["record_smoothing"] == (
            None if extra else {"neighbours": 20, "weight": 0.5, "span": 5000}
        )
        assert ("most alike beats of the recording" in err) != bool(extra)
    np.testing.assert_allclose(outputs[False], expected, atol=2e-6)
    np.testing.assert_allclose(outputs[True], raw, atol=2e-6)
