"""The network for new patients: its inputs (each beat against its own patient), the lead dropout that
lets one model serve one-lead and two-lead recordings, and how the training stage picks it."""

from __future__ import annotations

import itertools
import logging

import keras
import numpy as np
import pytest

from heartbeat.core.config import ResNetConfig
from heartbeat.model.architectures import LeadDropout, WindowAugment, build_patient_net, model_inputs
from heartbeat.model.saving import load_model, save_model
from heartbeat.prepare.arrays import Split
from heartbeat.signal import patient
from heartbeat.train.stage import build_model, input_plan

FS = 360.0
N_FEATURES = len(patient.PATIENT_COLUMNS)


def record(seconds: float = 60, premature: tuple[int, ...] = (20, 40), seed: int = 0):
    """A lead with regular beats at 75/min, some premature by 35% (with a compensatory pause), and
    the premature ones wider; returns (signal, R-peak samples)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    peaks, at, i = [], 0.6, 0
    while at < seconds - 0.8:
        peaks.append(at)
        step = 0.8 * (0.65 if i + 1 in premature else 1.35 if i in premature else 1.0)
        at += step
        i += 1
    x = np.zeros_like(t)
    for k, p in enumerate(peaks):
        width = 0.035 if k in premature else 0.012
        x += 1.0 * np.exp(-0.5 * ((t - p) / width) ** 2) + 0.2 * np.exp(-0.5 * ((t - p - 0.25) / 0.05) ** 2)
        if k not in premature:
            x += 0.1 * np.exp(-0.5 * ((t - p + 0.16) / 0.02) ** 2)  # a P wave before normal beats only
    return x + rng.normal(0, 0.005, t.size), np.rint(np.array(peaks) * FS).astype(np.int64)


def test_patient_inputs_describe_each_beat_against_its_record() -> None:
    signal, peaks = record()
    window, features = patient.patient_inputs([signal], FS, peaks)
    assert window.shape == (len(peaks), *patient.WINDOW_SHAPE) and features.shape == (len(peaks), N_FEATURES)
    assert np.isfinite(window).all() and np.isfinite(features).all()
    col = {c: i for i, c in enumerate(patient.PATIENT_COLUMNS)}
    early, normal = features[20], features[10]
    assert early[col["pre_rec"]] < -0.4 < normal[col["pre_rec"]] + 0.45  # premature for this patient
    assert early[col["post_pre"]] > 0.5  # the compensatory pause
    assert early[col["lead1_rms_qrs"]] > normal[col["lead1_rms_qrs"]] + 1  # unlike its usual QRS
    assert early[col["lead1_corr_p"]] < normal[col["lead1_corr_p"]]  # no P wave
    assert features[19, col["next_pre_rec"]] == pytest.approx(early[col["pre_rec"]])
    # ... and against the record's own spread: far out for the premature beat, near the middle for others
    assert early[col["pre_rec_rz"]] < -1 and abs(normal[col["pre_rec_rz"]]) < 0.2
    assert early[col["lead1_rms_qrs_rz"]] > 1
    # one lead is given twice, the way lead dropout trains the model
    two, one = patient.second_lead_columns()
    np.testing.assert_array_equal(features[:, two], features[:, one])
    np.testing.assert_array_equal(window[..., 0], window[..., 1])


def test_a_second_lead_changes_only_its_own_inputs() -> None:
    signal, peaks = record()
    _, one_lead = patient.patient_inputs([signal], FS, peaks)
    window, both = patient.patient_inputs([signal, -0.4 * signal], FS, peaks)
    two, _ = patient.second_lead_columns()
    others = np.setdiff1d(np.arange(N_FEATURES), two)
    np.testing.assert_array_equal(both[:, others], one_lead[:, others])
    np.testing.assert_allclose(window[..., 1], -window[..., 0], atol=1e-5)  # each lead at its own scale


def test_record_standardised_measures_each_column_against_its_record() -> None:
    rng = np.random.default_rng(0)
    F = rng.normal(size=(200, 3))
    F[:, 1] = 5.0 * F[:, 0] + 3.0  # the same values in another unit, about another centre
    F[:, 2] = 0.0
    Z = patient.record_standardised(F)
    np.testing.assert_allclose(np.median(Z, axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(Z[:, 0], Z[:, 1], atol=1e-5)  # the unit and centre do not matter
    np.testing.assert_array_equal(Z[:, 2], 0.0)  # no spread: measured against the floor
    F[0, 0] = 1e6  # one wild value moves neither the centre nor the spread of the others
    Z2 = patient.record_standardised(F)
    assert Z2[0, 0] == patient.Z_CLIP / patient.Z_SCALE
    np.testing.assert_allclose(Z2[1:, 0], Z[1:, 0], atol=0.02)
    assert patient.record_standardised(np.zeros((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_a_record_with_almost_no_beats(n: int) -> None:
    signal, peaks = record(10)
    window, features = patient.patient_inputs([signal], FS, peaks[:n])
    assert window.shape[0] == features.shape[0] == n and np.isfinite(features).all()


def test_lead_dropout_swaps_lead_2_for_lead_1_in_training_only() -> None:
    two, one = patient.second_lead_columns()
    layer = LeadDropout(0.5, two.tolist(), one.tolist(), seed=0)
    rng = np.random.default_rng(0)
    W = rng.normal(size=(64, *patient.WINDOW_SHAPE)).astype(np.float32)
    P = rng.normal(size=(64, N_FEATURES)).astype(np.float32)
    w, p = (np.asarray(a) for a in layer([W, P], training=True))
    dropped = np.all(w[..., 1] == w[..., 0], axis=1)
    assert 15 < dropped.sum() < 50
    np.testing.assert_array_equal(p[dropped][:, two], P[dropped][:, one])
    np.testing.assert_array_equal(w[~dropped], W[~dropped])
    np.testing.assert_array_equal(p[~dropped], P[~dropped])
    w, p = (np.asarray(a) for a in layer([W, P], training=False))
    np.testing.assert_array_equal(w, W)
    np.testing.assert_array_equal(p, P)


def test_branch_dropout_drops_the_whole_window_branch_in_training_only() -> None:
    keras.utils.set_random_seed(0)
    model = build_patient_net(
        5, patient.WINDOW_SHAPE, N_FEATURES, lead_dropout=0.0, seed=0, branch_dropout=0.5
    )
    assert model.count_params() == 31_893  # no weights of its own
    rng = np.random.default_rng(2)
    W = rng.normal(size=(256, *patient.WINDOW_SHAPE)).astype(np.float32)
    P = rng.normal(size=(256, N_FEATURES)).astype(np.float32)
    morphology = keras.Model(model.inputs, model.get_layer("window_dropout").output)
    trained = np.asarray(morphology([W, P], training=True))
    dropped = np.all(trained == 0, axis=1)
    assert 90 < dropped.sum() < 166  # whole beats, about half of them
    served = np.asarray(morphology([W, P], training=False))
    kept = keras.Model(model.inputs, model.get_layer("morphology").output)([W, P], training=False)
    np.testing.assert_array_equal(served, np.asarray(kept))  # inference: the window branch as it is
    np.testing.assert_allclose(trained[~dropped], 2 * served[~dropped], rtol=1e-5)


def test_a_swapped_lead_does_not_also_drop_the_window_branch() -> None:
    """Lead and branch dropout draw their own random streams: were they to share one, every beat shown
    lead 1 for lead 2 would also lose its window branch, and the window branch would never learn it."""
    two, one = patient.second_lead_columns()
    model = build_patient_net(
        5,
        patient.WINDOW_SHAPE,
        N_FEATURES,
        lead_columns=(two.tolist(), one.tolist()),
        seed=0,
        lead_dropout=0.3,
        branch_dropout=0.5,
    )
    W = np.stack([np.zeros(patient.WINDOW_SHAPE[0]), np.ones(patient.WINDOW_SHAPE[0])], -1)
    W = np.repeat(W[None].astype(np.float32), 2000, axis=0)
    P = np.zeros((2000, N_FEATURES), np.float32)
    swapped_beats = keras.Model(model.inputs, model.get_layer("lead_dropout").output[0])
    dropped_beats = keras.Model(
        model.get_layer("morphology").output, model.get_layer("window_dropout").output
    )
    swapped = np.asarray(swapped_beats([W, P], training=True))[:, 0, 1] == 0
    dropped = np.all(np.asarray(dropped_beats(np.ones((2000, 32), np.float32), training=True)) == 0, axis=1)
    assert 500 < swapped.sum() < 700 and 900 < dropped.sum() < 1100
    assert 0.4 < dropped[swapped].mean() < 0.6  # independent: about half, as for any beat


def test_window_augment_varies_training_windows_only_and_keeps_the_r_peak_in_place() -> None:
    rng = np.random.default_rng(0)
    W = np.zeros((200, *patient.WINDOW_SHAPE), np.float32)
    W[:, patient.WINDOW_BEFORE, :] = 1.0  # the R-peak
    W[:, patient.WINDOW_BEFORE + 20, 0] = 0.5  # a T wave, lead 1
    W += rng.normal(0, 0.001, W.shape).astype(np.float32)
    centre = patient.WINDOW_BEFORE
    stretch = WindowAugment(stretch=0.2, centre=centre, seed=0)
    out = np.asarray(stretch(W, training=True))
    assert out.shape == W.shape
    np.testing.assert_array_equal(np.argmax(out[:, :, 1], axis=1), centre)
    np.testing.assert_allclose(out[:, centre], W[:, centre], atol=1e-6)  # stretched about the R-peak
    t_wave = np.argmax(out[:, centre + 5 :, 0], axis=1) + 5  # lands within 20 / (1 ± 0.2) samples
    assert t_wave.min() >= 16 and t_wave.max() <= 25 and len(np.unique(t_wave)) > 3
    gain = WindowAugment(amplitude=0.2, seed=0)(W, training=True)
    ratio = np.asarray(gain)[:, centre] / W[:, centre]
    assert np.all((ratio > 0.8 - 1e-3) & (ratio < 1.2 + 1e-3)) and ratio.std() > 0.05
    assert not np.allclose(ratio[:, 0], ratio[:, 1])  # each lead its own gain
    both = WindowAugment(amplitude=0.2, wander=0.1, noise=0.02, stretch=0.1, centre=centre, seed=3)
    again = WindowAugment(amplitude=0.2, wander=0.1, noise=0.02, stretch=0.1, centre=centre, seed=3)
    np.testing.assert_array_equal(np.asarray(both(W, training=True)), np.asarray(again(W, training=True)))
    np.testing.assert_array_equal(np.asarray(both(W, training=False)), W)
    assert WindowAugment.from_config(both.get_config()).get_config() == both.get_config()


def test_the_stage_builds_window_augment_only_when_asked() -> None:
    plan = ("patient_net", 0)
    cfg = ResNetConfig(architecture="patient_net", kernel_size=7, blocks=2, dropout=0.3)
    plain = build_model("train_resnet_mitbih", cfg, 5, plan)
    assert "window_augment" not in [layer.name for layer in plain.layers]
    cfg = ResNetConfig.model_validate(
        {**cfg.model_dump(), "window_augment": {"amplitude": 0.2, "stretch": 0.1}}
    )
    augment = build_model("train_resnet_mitbih", cfg, 5, plan)
    layer = augment.get_layer("window_augment")
    assert (layer.amplitude, layer.stretch, layer.wander, layer.centre) == (
        0.2,
        0.1,
        0.0,
        patient.WINDOW_BEFORE,
    )
    assert augment.count_params() == plain.count_params()  # no weights of its own


def test_the_network_saves_loads_and_transfers(tmp_path) -> None:
    two, one = patient.second_lead_columns()
    keras.utils.set_random_seed(0)
    model = build_patient_net(
        5, patient.WINDOW_SHAPE, N_FEATURES, lead_columns=(two.tolist(), one.tolist()), seed=0
    )
    assert model.count_params() == 31_893 and [t.name for t in model.inputs] == ["window", "patient"]
    rng = np.random.default_rng(1)
    split = Split(
        X=np.zeros((6, 187), np.float32),
        y=np.zeros(6, np.int64),
        W=rng.normal(size=(6, *patient.WINDOW_SHAPE)).astype(np.float32),
        P=rng.normal(size=(6, N_FEATURES)).astype(np.float32),
    )
    save_model(model, tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", 5)
    np.testing.assert_array_equal(
        loaded.predict(model_inputs(loaded, split), verbose=0),
        model.predict(model_inputs(model, split), verbose=0),
    )
    from heartbeat.model.architectures import build_transfer

    transfer = build_transfer(loaded, 2, "all_conv")
    assert [t.name for t in transfer.inputs] == ["window", "patient"] and transfer.outputs[0].shape[-1] == 2


def test_the_stage_picks_the_network_or_falls_back_with_one_warning(caplog) -> None:
    cfg = ResNetConfig(architecture="patient_net", kernel_size=7, blocks=2, dropout=0.3)
    W = np.zeros((4, *patient.WINDOW_SHAPE), np.float32)
    with_sides = Split(
        np.zeros((4, 187), np.float32), np.zeros(4, np.int64), W=W, P=np.zeros((4, N_FEATURES), np.float32)
    )
    beats_only = Split(np.zeros((4, 187), np.float32), np.zeros(4, np.int64))
    assert input_plan("train_resnet_mitbih", cfg, with_sides, with_sides) == ("patient_net", 0)
    with caplog.at_level(logging.WARNING, logger="heartbeat"):
        plan = input_plan("train_resnet_mitbih", cfg, beats_only, beats_only)
    assert plan == ("resnet", 0) and len(caplog.records) == 1
    assert "patient_net needs each beat's window" in caplog.records[0].getMessage()
    assert build_model("train_resnet_mitbih", cfg, 5, plan).name == "resnet"
    assert build_model("train_resnet_mitbih", cfg, 5, ("patient_net", 0)).name == "patient_net"


def _peaks(intervals: list[float], fs: float = FS) -> np.ndarray:
    return np.rint(np.cumsum([0.5, *intervals]) * fs).astype(np.int64)


def test_the_reference_of_a_mostly_ectopic_rhythm_is_its_sinus_beats() -> None:
    """Runs of fast ectopic beats (0.6 s) between slow sinus cycles (1.2 s): most beats are ectopic,
    so the median R-R is theirs; the rhythm reference keeps the sinus beats only."""
    intervals, sinus = [], []
    for _ in range(30):
        intervals += [1.2, 1.2, 1.2]  # three sinus beats, the last two steady
        sinus += [True, True, True]
        intervals += [0.6] * 4  # a run of four ectopic beats
        sinus += [False] * 4
    peaks = _peaks(intervals)
    ref = patient.rhythm_reference(peaks, FS)
    is_sinus = np.array([True, *sinus])
    assert ref.any() and not (ref & ~is_sinus).any()
    # Against the sinus reference the ectopic beats are premature; against the median they are not.
    col = patient.RR_COLUMNS.index("pre_rec")
    median = patient.rr_features(peaks, FS)
    sinus_ref = patient.rr_features(peaks, FS, ref)
    ectopic = np.flatnonzero(~is_sinus)[1:]  # a run's beats after its first
    assert np.allclose(median[ectopic, col], 0, atol=0.05)
    assert (sinus_ref[ectopic, col] < -0.9).all()


def test_the_reference_of_a_sinus_rhythm_is_nearly_every_beat_and_never_a_pause_after_ectopy() -> None:
    rng = np.random.default_rng(0)
    regular = _peaks(list(0.8 * (1 + 0.03 * rng.standard_normal(200))))
    assert patient.rhythm_reference(regular, FS).mean() > 0.95
    # Sinus stretches (0.8 s) and stretches of bigeminy: a premature beat (0.5 s) after every sinus
    # beat, which follows the pause (1.1 s). The beats after a pause come late but are not the
    # patient's rhythm: the reference is the steady sinus beats, and its R-R is theirs.
    intervals, steady = [], []
    for _ in range(10):
        intervals += [0.8] * 8
        steady += [True] * 7 + [False]  # the last sinus beat is followed by a premature one
        intervals += [0.5, 1.1] * 6
        steady += [False, False] * 6
    peaks = _peaks(intervals)
    ref = patient.rhythm_reference(peaks, FS)
    is_steady = np.array([False, *steady])  # the first beat has no pre-R-R
    assert ref.sum() > 0.8 * is_steady.sum() and not (ref & ~is_steady).any()
    col = patient.RR_COLUMNS.index("pre_rec")
    assert abs(patient.rr_features(peaks, FS, ref)[ref, col]).max() < 0.01  # measured at 0.8 s
    # Pure bigeminy and atrial fibrillation have no steady stretch: every beat stands for the rhythm.
    bigeminy = _peaks([0.5, 1.1] * 60)
    assert patient.rhythm_reference(bigeminy, FS).all()
    fibrillation = _peaks(list(rng.uniform(0.4, 1.2, 200)))
    assert patient.rhythm_reference(fibrillation, FS).all()
    assert patient.rhythm_reference(regular[:5], FS).all()  # too few beats to tell
    among = np.arange(len(peaks)) < 60
    assert not (patient.rhythm_reference(peaks, FS, among) & ~among).any()


def test_patient_features_measure_every_beat_against_the_reference_beats() -> None:
    signal, peaks = record()
    _, default = patient.patient_inputs([signal], FS, peaks)
    _, everyone = patient.patient_inputs([signal], FS, peaks, np.ones(len(peaks), dtype=bool))
    np.testing.assert_array_equal(default, everyone)
    # Only the premature beats as reference: now the usual beats stand out.
    odd = np.zeros(len(peaks), dtype=bool)
    odd[[20, 40]] = True
    _, against_odd = patient.patient_inputs([signal], FS, peaks, odd)
    col = {c: i for i, c in enumerate(patient.PATIENT_COLUMNS)}
    assert against_odd[10, col["lead1_rms_qrs"]] > default[10, col["lead1_rms_qrs"]] + 1
    assert abs(against_odd[10, col["pre_rec_rz"]]) > abs(default[10, col["pre_rec_rz"]])
    with pytest.raises(ValueError, match="reference mask"):
        patient.patient_inputs([signal], FS, peaks, np.zeros(len(peaks), dtype=bool))


def test_the_reference_of_a_synthetic_ectopy_dominated_patient_is_its_sinus_beats() -> None:
    """The demo's ectopy-dominated patients (sinus bradycardia broken by runs of atrial ectopy, most
    beats S): the median beat is an S beat, the rhythm reference holds sinus beats only."""
    from heartbeat.fetch import synth

    found = 0
    for rec in synth.mitdb_records(0, 14, 10):
        if rec.profile.get("profile") != synth.ECTOPY_DOMINATED:
            continue
        is_s = np.isin(rec.symbols, ["A", "a", "J"])
        ref = patient.rhythm_reference(rec.peaks, rec.fs)
        if is_s.mean() > 0.5 and patient.regular_beats(rec.peaks, rec.fs).mean() >= patient.LEAST_REGULAR:
            assert ref.sum() >= 10 and not is_s[ref].any(), rec.name
            found += 1
    assert found, "no ectopy-dominated patient with a regular rhythm among the first 14 records"


def test_stretches_cover_the_recording_in_order_and_each_holds_enough_reference_beats() -> None:
    samples = np.arange(0, int(FS * 1800), int(FS * 0.8))  # 30 minutes at 75/min
    whole = patient.stretches(samples, FS, None, None)
    assert whole == [slice(0, samples.size)]
    runs = patient.stretches(samples, FS, 300.0, None)
    assert len(runs) == 6 and runs[0].start == 0 and runs[-1].stop == samples.size
    assert all(a.stop == b.start for a, b in itertools.pairwise(runs))
    assert all(abs((samples[r.stop - 1] - samples[r.start]) / FS - 300) < 2 for r in runs)
    # Stretches without enough reference beats join the next; a short last one joins the one before.
    reference = np.zeros(samples.size, dtype=bool)
    reference[: patient.LOCAL_MIN_BEATS - 1] = True
    reference[-400:] = True
    runs = patient.stretches(samples, FS, 300.0, reference)
    assert all(reference[r].sum() >= patient.LOCAL_MIN_BEATS for r in runs)
    assert runs[0].start == 0 and runs[-1].stop == samples.size and len(runs) == 2
    reference[:] = False
    reference[:10] = True
    assert patient.stretches(samples, FS, 300.0, reference) == [slice(0, samples.size)]


def test_local_amplitude_takes_a_stretch_of_larger_normal_beats_back_to_the_recording() -> None:
    """The same beats at 1.6x the amplitude for the last third of the recording (a posture change):
    against the whole recording they look unlike the patient's beats; scaled by their own stretch,
    like the rest. A premature wide beat still stands out, and with one stretch nothing changes."""
    signal, peaks = record(seconds=900, premature=(100, 1000))
    late = np.arange(signal.size) >= signal.size * 2 // 3
    signal = np.where(late, 1.6 * signal, signal)
    col = {c: i for i, c in enumerate(patient.PATIENT_COLUMNS)}
    _, whole = patient.patient_inputs([signal], FS, peaks)
    window, local = patient.patient_inputs([signal], FS, peaks, amplitude_stretch_s=150.0)
    changed = peaks >= signal.size * 2 // 3 + FS  # clear of the step
    normal = changed & (np.arange(peaks.size) != 1000) & (np.arange(peaks.size) != 1001)
    assert np.median(whole[normal, col["lead1_qrs_amp"]]) > 0.5
    assert abs(np.median(local[normal, col["lead1_qrs_amp"]])) < 0.1
    assert np.median(whole[normal, col["lead1_rms_qrs"]]) > np.median(local[normal, col["lead1_rms_qrs"]]) + 1
    assert local[1000, col["lead1_rms_qrs"]] > np.median(local[normal, col["lead1_rms_qrs"]]) + 1
    early = np.flatnonzero(peaks < signal.size // 3)
    np.testing.assert_allclose(window[early[10], :, 0].max(), window[normal][10, :, 0].max(), rtol=0.05)
    _, same = patient.patient_inputs([signal], FS, peaks, amplitude_stretch_s=10_000.0)
    np.testing.assert_array_equal(same, whole)
