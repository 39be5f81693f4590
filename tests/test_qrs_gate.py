"""The QRS gate: no S beat whose QRS is unlike its patient's (heartbeat/model/qrs_gate.py)."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from heartbeat.core.errors import ModelError
from heartbeat.fetch.synth import mitdb_records
from heartbeat.model.outputs import OutputSteps
from heartbeat.model.qrs_gate import SIDECAR_KEY, gate_unlike_qrs
from heartbeat.signal.patient import PATIENT_COLUMNS, patient_inputs, rhythm_reference, unlike_qrs
from heartbeat.signal.wfdb_records import aami_labels
from tests.conftest import pretrained_copy, random_recording_split, shared_dir


def features(corr: list[tuple[float, float]], rms: list[tuple[float, float]]) -> np.ndarray:
    """Patient features that are zero but for each beat's QRS correlation and RMS in both leads."""
    P = np.zeros((len(corr), len(PATIENT_COLUMNS)), dtype=np.float32)
    for lead in (0, 1):
        P[:, PATIENT_COLUMNS.index(f"lead{lead + 1}_corr_qrs")] = [c[lead] for c in corr]
        P[:, PATIENT_COLUMNS.index(f"lead{lead + 1}_rms_qrs")] = [r[lead] for r in rms]
    return P


def test_a_qrs_is_unlike_only_when_both_its_shape_and_its_size_are() -> None:
    P = features(
        corr=[(0.95, 0.9), (0.3, 0.2), (0.3, 0.2), (0.95, 0.9), (0.3, 1.0), (0.3, 0.5)],
        rms=[(0.0, 0.2), (2.0, 2.5), (0.5, 0.4), (2.0, 2.5), (2.0, 0.0), (1.5, 1.5)],
    )
    # unlike; not (small difference); not (high correlation); lead 2 alike pulls both means back; both
    np.testing.assert_array_equal(unlike_qrs(P), [False, True, False, False, False, True])
    with pytest.raises(ValueError, match=r"\(n, 80\)"):
        unlike_qrs(P[:, :40])


def test_the_gate_takes_s_from_unlike_beats_and_keeps_every_other_call() -> None:
    P = features(corr=[(0.2, 0.2), (0.2, 0.2), (0.99, 0.99)], rms=[(2, 2), (2, 2), (0, 0)])
    proba = np.array([[0.2, 0.5, 0.3, 0, 0], [0.1, 0.1, 0.8, 0, 0], [0.2, 0.8, 0, 0, 0]])
    gated, flags = gate_unlike_qrs(proba, P)
    np.testing.assert_array_equal(flags, [True, True, False])
    np.testing.assert_allclose(gated[0], [0.4, 0, 0.6, 0, 0])  # S's share spread in proportion
    np.testing.assert_allclose(gated[1], [0.1 / 0.9, 0, 0.8 / 0.9, 0, 0])
    np.testing.assert_array_equal(gated[2], proba[2])  # a usual QRS keeps its S
    np.testing.assert_array_equal(proba[0], [0.2, 0.5, 0.3, 0, 0])  # the caller's array is not written


def test_the_output_steps_apply_the_qrs_gate_only_where_it_is_stored_and_features_are_given() -> None:
    P = features(corr=[(0.2, 0.2), (0.99, 0.99)], rms=[(2, 2), (0, 0)])
    network = np.array([[0.3, 0.6, 0.1, 0, 0], [0.3, 0.6, 0.1, 0, 0]])
    steps = OutputSteps.from_sidecar({SIDECAR_KEY: True}, "m.json")
    assert steps.qrs_gate
    out = steps.apply(network, "m.keras", patient=P)
    assert out.final.argmax(axis=1).tolist() == [0, 1]
    np.testing.assert_array_equal(out.unlike_qrs, [True, False])
    np.testing.assert_array_equal(out.before_qrs_gate, network)
    for kwargs in ({}, {"patient": P, "each_beat_alone": True}):
        alone = steps.apply(network, "m.keras", **kwargs)
        assert alone.unlike_qrs is None and (alone.final == network).all()
    assert OutputSteps.from_sidecar({}, "m.json").apply(network, "m.keras", patient=P).unlike_qrs is None
    with pytest.raises(ModelError, match=r"m.keras: unlike_qrs_gate is set but the model has 2 classes"):
        steps.apply(np.array([[0.4, 0.6]]), "m.keras", patient=P[:1])
    with pytest.raises(ModelError, match=r"m.keras: unlike_qrs_gate is set, but unlike_qrs: expected"):
        steps.apply(network, "m.keras", patient=P[:, :10])


@pytest.mark.parametrize("value", ["yes", 1, [True], {"on": True}])
def test_a_stored_qrs_gate_training_cannot_write_is_refused(value) -> None:
    with pytest.raises(ModelError, match=r"m.json: unlike_qrs_gate .* is not as training writes it"):
        OutputSteps.from_sidecar({SIDECAR_KEY: value}, "m.json")


def test_the_stage_stores_the_qrs_gate_only_for_a_mit_bih_model_with_patient_features(caplog) -> None:
    from heartbeat.core.config import ResNetConfig
    from heartbeat.prepare.arrays import Split
    from heartbeat.train.stage import fit_stage

    split = random_recording_split(7)
    on = ResNetConfig(architecture="lda", unlike_qrs_gate=True)
    assert fit_stage("train_resnet_mitbih", on, split, split, 5).info.get(SIDECAR_KEY) is True
    assert (
        SIDECAR_KEY
        not in fit_stage("train_resnet_mitbih", ResNetConfig(architecture="lda"), split, split, 5).info
    )
    small = {"epochs": 1, "batch_size": 32, "filters": 4, "blocks": 1, "dense": 4, "kernel_size": 3}
    resnet = ResNetConfig(architecture="resnet", unlike_qrs_gate=True, **small)
    with caplog.at_level(logging.WARNING, logger="heartbeat"):
        assert SIDECAR_KEY not in fit_stage("train_resnet_mitbih", resnet, split, split, 5).info
    assert "resnet takes no features against the patient" in caplog.text
    ptb = Split(X=split.X, y=split.y % 2, W=split.W, P=split.P)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="heartbeat"):
        assert SIDECAR_KEY not in fit_stage("train_resnet_ptb", resnet, ptb, ptb, 2).info
    assert "only a MIT-BIH model" in caplog.text


def _unlike_by_class(
    leads: list[np.ndarray], fs: float, peaks: np.ndarray, labels: np.ndarray
) -> dict[int, float]:
    """The share of each class's beats whose QRS is unlike the patient's (rhythm reference)."""
    _, P = patient_inputs(leads, fs, peaks, rhythm_reference(peaks, fs))
    flags = unlike_qrs(P)
    return {c: float(flags[labels == c].mean()) for c in np.unique(labels)}


def test_no_normal_or_s_beat_of_the_demo_patients_is_unlike_even_where_s_beats_are_the_majority() -> None:
    """The demo generator's patients, the ectopy-dominated one among them (most of its beats are S, so
    its reference beats are mostly S beats): none of their N or S beats is taken for ventricular, and
    their fusion patient's ventricular beats are."""
    share: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for rec in mitdb_records(0, 12, 5):
        if rec.profile.get("profile") == "paced":
            continue
        labels = aami_labels(rec.symbols)
        for c, s in _unlike_by_class([rec.signal], rec.fs, rec.peaks, labels).items():
            if c in share and (labels == c).sum() >= 5:
                share[c].append(s)
    assert max(share[0]) == 0 and max(share[1]) == 0
    assert max(share[2]) > 0.9


def test_real_ventricular_beats_are_unlike_and_real_s_beats_are_not() -> None:
    """MIT-BIH 106 (520 PVCs, which new-patient networks call S) and 209 and 118 (383 and 96 S beats,
    runs of SVTA among them), both leads: the gate must take the first and leave the others."""
    wfdb_records = pytest.importorskip("heartbeat.signal.wfdb_records")
    mitdb = shared_dir("mitdb")
    share = {}
    for name in ("106", "209", "118"):
        header = wfdb_records.read_header(mitdb / name, name)
        leads = [wfdb_records.read_lead(mitdb / name, header, lead, name) for lead in header.sig_name[:2]]
        peaks, symbols = wfdb_records.read_beat_annotations(mitdb / name, name, int(header.sig_len))
        share[name] = _unlike_by_class(leads, float(header.fs), peaks, aami_labels(symbols))
    assert share["106"][2] > 0.5 and share["106"][0] < 0.03
    assert share["209"][1] < 0.02 and share["118"][1] < 0.02


def test_predict_applies_a_stored_qrs_gate(tmp_path, capsys) -> None:
    """``heartbeat predict`` with a model whose sidecar has the QRS gate: no beat with an unlike QRS
    is S in a demo patient with ventricular and fusion beats, and the log says how many beats were unlike."""
    from heartbeat.serve.cli import main
    from heartbeat.serve.inputs import read_input
    from heartbeat.serve.runners import load_runner, probabilities, stored_patient_options

    rec = next(r for r in mitdb_records(0, 12, 5) if r.name == "111")  # fusion: its V beats are unlike
    lead = tmp_path / "v.npy"
    np.save(lead, rec.signal.astype(np.float32))
    model = pretrained_copy(tmp_path / "gated.keras", **{SIDECAR_KEY: True})
    out = ["-m", str(model), "-o", str(tmp_path / "o.csv")]
    assert main(["predict", str(lead), "--fs", str(rec.fs), *out]) == 0
    assert "have a QRS unlike the recording's usual beat: none of them is called S" in capsys.readouterr().err
    runner = load_runner(model, "keras")
    beats = read_input(str(lead), "auto", fs=rec.fs, **stored_patient_options(model))
    proba = probabilities(
        runner, beats.X, window=beats.window, patient=beats.patient, irregular=beats.irregular
    )
    np.testing.assert_array_equal(proba.unlike_qrs, unlike_qrs(beats.patient))
    assert proba.unlike_qrs.any()
    assert not (proba.final[proba.unlike_qrs].argmax(axis=1) == 1).any()
    kept = ~proba.unlike_qrs
    np.testing.assert_array_equal(proba.final[kept], proba.before_qrs_gate[kept])


def test_output_steps_import_no_scipy() -> None:
    """Scoring a table of beats loads the output steps; the gate's patient features (and scipy with
    them) are imported only when a recording's beats are gated."""
    code = "import sys, heartbeat.model.outputs; print('scipy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
