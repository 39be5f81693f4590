"""No S in atrial fibrillation: the irregular-rhythm flags (heartbeat/signal/irregular.py) and the
gate that applies them to a model's probabilities (heartbeat/model/rhythm_gate.py)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from heartbeat.core.errors import DataError, ModelError
from heartbeat.fetch.synth import ATRIAL_FIBRILLATION, ECTOPY_DOMINATED, mitdb_records
from heartbeat.model.outputs import OutputSteps
from heartbeat.model.rhythm_gate import SIDECAR_KEY, check_gate, gate_irregular
from heartbeat.signal.irregular import WINDOW, irregular_beats, sample_entropy
from tests.conftest import pretrained_copy, random_recording_split, shared_dir

S_SYMBOLS = ["A", "a", "J", "S"]


def _peaks(rr: np.ndarray, fs: float = 360.0) -> np.ndarray:
    return np.round(np.cumsum(np.concatenate([[1.0], rr])) * fs).astype(np.int64)


def test_fibrillation_is_flagged_and_regular_or_patterned_rhythms_are_not() -> None:
    rng = np.random.default_rng(0)
    n = 400
    sinus = 0.8 * (1 + rng.normal(0, 0.01, n))
    fibrillation = rng.uniform(0.4, 1.0, n)
    bigeminy = np.where(np.arange(n) % 2 == 0, 0.55, 1.05) * (1 + rng.normal(0, 0.01, n))
    trigeminy = np.array([0.8, 0.5, 1.1] * (n // 3)) * (1 + rng.normal(0, 0.01, 3 * (n // 3)))
    assert not irregular_beats(_peaks(sinus)).any()
    assert irregular_beats(_peaks(fibrillation)).mean() > 0.95
    assert not irregular_beats(_peaks(bigeminy)).any()  # regularly irregular
    assert not irregular_beats(_peaks(trigeminy)).any()
    # fibrillation between two sinus stretches: flagged there, and not far beyond
    episode = np.concatenate([sinus[:200], fibrillation[:200], sinus[200:]])
    flags = irregular_beats(_peaks(episode))
    assert flags[230:370].all() and not flags[:150].any() and not flags[450:].any()


def test_runs_of_ectopic_beats_between_sinus_pauses_are_not_fibrillation() -> None:
    """As in MIT-BIH 232: short runs at a faster rate between long sinus pauses score a high sample
    entropy (the two rates mix at random), but a third of the intervals are pauses."""
    rng = np.random.default_rng(1)
    rr = []
    while len(rr) < 400:
        rr += [rng.uniform(1.8, 2.6), *(0.9 * (1 + rng.normal(0, 0.03, rng.integers(1, 4))))]
    windows = np.lib.stride_tricks.sliding_window_view(np.asarray(rr), WINDOW)
    assert np.median(sample_entropy(windows)) > 1.0  # irregular by entropy alone
    assert not irregular_beats(_peaks(np.asarray(rr))).any()


def test_the_unit_cancels() -> None:
    peaks = _peaks(np.random.default_rng(2).uniform(0.4, 1.0, 300))
    flags = irregular_beats(peaks)
    assert flags.any()
    np.testing.assert_array_equal(flags, irregular_beats(peaks / 360.0))


def test_short_recordings_are_not_judged_and_bad_peaks_are_refused() -> None:
    rng = np.random.default_rng(3)
    assert not irregular_beats(_peaks(rng.uniform(0.4, 1.0, WINDOW - 1))).any()
    assert irregular_beats(np.zeros(0)).shape == (0,)
    with pytest.raises(ValueError, match="increase"):
        irregular_beats(np.array([10, 20, 20, 30]))
    with pytest.raises(ValueError, match="window"):
        irregular_beats(np.arange(10), window=2)


def test_the_demo_patients_fibrillation_is_flagged_and_the_ectopy_dominated_are_not() -> None:
    """The demo's synthetic patients: most beats of their fibrillation episodes (flutter with a fixed
    conduction ratio is regular), few of their sinus stretches, and almost no S beat of the patients
    whose rhythm is mostly runs of ectopic atrial beats between sinus pauses."""
    fibrillation, sinus, ectopic = [], [], []
    for rec in mitdb_records(0, 32, 5):
        profile, flags = rec.profile.get("profile"), irregular_beats(rec.peaks)
        if profile == ATRIAL_FIBRILLATION:
            t = rec.peaks / rec.fs
            during = np.zeros(t.size, dtype=bool)
            for episode in rec.profile["episodes"]:
                inside = (t >= episode["start_s"]) & (t < episode["end_s"])
                during |= inside
                if episode["rhythm"] == "AFIB":
                    fibrillation.append(flags[inside])
            sinus.append(flags[~during])
        elif profile == ECTOPY_DOMINATED:
            ectopic.append(flags[np.isin(rec.symbols, S_SYMBOLS)])
    assert len(sinus) >= 2 and len(ectopic) >= 2
    assert np.concatenate(fibrillation).mean() > 0.8
    assert np.concatenate(sinus).mean() < 0.05
    assert np.concatenate(ectopic).mean() < 0.02


def test_real_fibrillation_is_flagged_and_real_atrial_ectopy_is_not() -> None:
    """MIT-BIH 203 (atrial fibrillation and flutter almost throughout), and 209 and 118, whose S
    beats (383 and 96, runs of SVTA among them) must not be taken."""
    wfdb_records = pytest.importorskip("heartbeat.signal.wfdb_records")
    mitdb = shared_dir("mitdb")
    share = {}
    for name in ("203", "209", "118"):
        header = wfdb_records.read_header(mitdb / name, name)
        peaks, symbols = wfdb_records.read_beat_annotations(mitdb / name, name, int(header.sig_len))
        flags = irregular_beats(peaks)
        share[name] = flags.mean() if name == "203" else flags[np.isin(symbols, S_SYMBOLS)].mean()
    assert share["203"] > 0.8
    assert share["209"] == 0 and share["118"] == 0


def test_the_gate_takes_s_from_flagged_beats_and_keeps_every_other_call() -> None:
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(5), size=500)
    p[0] = [0, 1, 0, 0, 0]  # sure of S
    flags = np.arange(500) % 2 == 0
    out = gate_irregular(p, flags)
    np.testing.assert_array_equal(out[~flags], p[~flags])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    assert (out[flags, 1] == 0).all()
    np.testing.assert_array_equal(out[0], [1, 0, 0, 0, 0])
    before, after = p[flags].argmax(axis=1), out[flags].argmax(axis=1)
    kept = before != 1
    np.testing.assert_array_equal(after[kept], before[kept])  # a V stays a V, an N an N
    second = np.argsort(p[flags], axis=1)[:, -2]
    np.testing.assert_array_equal(after[~kept][1:], second[~kept][1:])  # an S takes its next likeliest
    with pytest.raises(DataError, match="one flag per beat"):
        gate_irregular(p, flags[:10])
    with pytest.raises(DataError, match="MIT-BIH"):
        gate_irregular(p[:, :2], flags)


@pytest.mark.parametrize("value", ["yes", 1, 0, [True], {"on": True}])
def test_a_stored_gate_training_cannot_write_is_refused(value) -> None:
    with pytest.raises(ModelError, match=rf"{SIDECAR_KEY} .* \(true or false\)"):
        check_gate(value, "models/x.json")


def test_the_output_steps_apply_the_gate_last_and_only_on_a_recording() -> None:
    rng = np.random.default_rng(5)
    network = rng.dirichlet(np.ones(5), size=50).astype(np.float32)
    flags = np.arange(50) < 25
    steps = OutputSteps.from_sidecar({"temperature": 2.0, SIDECAR_KEY: True}, "m.json")
    assert steps.irregular_gate and OutputSteps.from_sidecar({}, "m.json").irregular_gate is False
    proba = steps.apply(network, "m", irregular=flags)
    np.testing.assert_array_equal(proba.before_gate, proba.calibrated)
    np.testing.assert_allclose(proba.final, gate_irregular(proba.calibrated, flags))
    np.testing.assert_array_equal(proba.irregular, flags)
    for kwargs in ({}, {"irregular": flags, "each_beat_alone": True}):
        alone = steps.apply(network, "m", **kwargs)
        assert alone.irregular is None and alone.before_gate is None
        np.testing.assert_array_equal(alone.final, alone.calibrated)
    with pytest.raises(ModelError, match="only a MIT-BIH model"):
        steps.apply(network[:, :2] / network[:, :2].sum(axis=1, keepdims=True), "m", irregular=flags)


def test_preprocess_flags_each_recording_over_all_its_beats_in_both_files() -> None:
    from heartbeat.prepare.preprocess import irregular_of_files

    rng = np.random.default_rng(6)
    fib = _peaks(rng.uniform(0.4, 1.0, 199))
    sinus = _peaks(0.8 * (1 + rng.normal(0, 0.01, 199)))
    rows = []
    for record, peaks in (("201", fib), ("100", sinus)):
        for i, sample in enumerate(peaks):  # every other beat in each file, as a beat split writes them
            rows.append(
                {"file": ("a.csv", "b.csv")[i % 2], "record": record, "database": "mitdb", "sample": sample}
            )
    prov = pd.DataFrame(rows)
    prov["row"] = prov.groupby("file").cumcount()
    flags = irregular_of_files(prov, ("a.csv",), int((prov["file"] == "a.csv").sum()))
    expected = np.concatenate([irregular_beats(fib)[::2], irregular_beats(sinus)[::2]])
    np.testing.assert_array_equal(flags, expected.astype(np.int64))
    assert flags[:100].mean() > 0.9 and not flags[100:].any()
    assert irregular_of_files(None, ("a.csv",), 10) is None


def test_the_stage_stores_the_gate_only_for_a_mit_bih_model_on_recordings(caplog) -> None:
    from heartbeat.core.config import ResNetConfig
    from heartbeat.prepare.arrays import Split
    from heartbeat.train.stage import fit_stage

    split = random_recording_split(7, irregular=True)
    cfg = ResNetConfig(architecture="lda", irregular_rhythm_gate=True)
    assert fit_stage("train_resnet_mitbih", cfg, split, split, 5).info.get(SIDECAR_KEY) is True
    off = ResNetConfig(architecture="lda")
    assert SIDECAR_KEY not in fit_stage("train_resnet_mitbih", off, split, split, 5).info
    kaggle = Split(X=split.X, y=split.y, W=split.W, P=split.P)
    with caplog.at_level(logging.WARNING, logger="heartbeat"):
        assert SIDECAR_KEY not in fit_stage("train_resnet_mitbih", cfg, kaggle, kaggle, 5).info
    assert "no R-peak times" in caplog.text
    ptb = Split(X=split.X, y=split.y % 2, W=split.W, P=split.P, I=split.I)
    small = {"epochs": 1, "batch_size": 32, "filters": 4, "blocks": 1, "dense": 4, "kernel_size": 3}
    resnet = ResNetConfig(architecture="resnet", irregular_rhythm_gate=True, **small)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="heartbeat"):
        assert SIDECAR_KEY not in fit_stage("train_resnet_ptb", resnet, ptb, ptb, 2).info
    assert "only a MIT-BIH model" in caplog.text


def test_predict_gates_a_recording_with_fibrillation(tmp_path, capsys) -> None:
    """``heartbeat predict`` with a model whose sidecar has the gate: no S in the fibrillation of a
    demo patient, the log says how many beats that was, and ``--each-beat-alone`` turns it off."""
    from heartbeat.serve.inputs import read_input
    from heartbeat.serve.runners import load_runner, probabilities, stored_patient_options

    rec = next(r for r in mitdb_records(0, 32, 5) if r.profile.get("profile") == ATRIAL_FIBRILLATION)
    lead = tmp_path / "af.npy"
    np.save(lead, rec.signal.astype(np.float32))
    model = pretrained_copy(tmp_path / "gated.keras", **{SIDECAR_KEY: True})
    runner = load_runner(model, "keras")
    assert runner.steps.irregular_gate
    beats = read_input(str(lead), "auto", fs=rec.fs, **stored_patient_options(model))
    assert beats.irregular is not None and beats.irregular.mean() > 0.3
    sides = {"window": beats.window, "patient": beats.patient}
    proba = probabilities(runner, beats.X, irregular=beats.irregular, **sides)
    assert (proba.final[beats.irregular].argmax(axis=1) != 1).all()
    np.testing.assert_allclose(proba.final, gate_irregular(proba.before_gate, beats.irregular))

    from heartbeat.serve.cli import main

    for extra, gated in (([], True), (["--each-beat-alone"], False)):
        out = tmp_path / f"rows{len(extra)}.csv"
        capsys.readouterr()
        assert (
            main(["predict", str(lead), "--fs", str(rec.fs), "-m", str(model), "-o", str(out), *extra]) == 0
        )
        err = capsys.readouterr().err
        rows = pd.read_csv(out)
        assert len(rows) == len(beats)
        assert ("irregularly irregular" in err) == gated, err
        if gated:
            assert not (rows["predicted"][beats.irregular] == "S").any()
