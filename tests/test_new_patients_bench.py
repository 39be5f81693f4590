"""bench/new_patients.py: the stress variants' beat mix and the blend of two models' stored runs."""

from __future__ import annotations

import sys

import numpy as np

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import new_patients


def test_a_stress_mix_keeps_every_ectopic_beat_and_thins_the_normal_ones_evenly() -> None:
    labels = np.array([0] * 300 + [1] * 40 + [2] * 5)
    np.random.default_rng(0).shuffle(labels)
    keep = new_patients.stress_mask(labels, 1)
    assert (keep[labels != 0]).all()
    # S beats make two thirds of the mix: 40 S, 5 V, so 15 N
    assert int((keep & (labels == 0)).sum()) == 15
    kept_normal = np.flatnonzero(keep & (labels == 0))
    assert (
        np.ptp(np.diff(np.flatnonzero(labels == 0)[np.isin(np.flatnonzero(labels == 0), kept_normal)])) >= 0
    )
    assert (
        kept_normal[0] == np.flatnonzero(labels == 0)[0]
        and kept_normal[-1] == np.flatnonzero(labels == 0)[-1]
    )
    # when the other classes already outnumber half the S beats, one N beat stays
    crowded = np.array([0] * 50 + [1] * 10 + [2] * 20)
    assert int((new_patients.stress_mask(crowded, 1) & (crowded == 0)).sum()) == 1
    # without a class, the ectopic beats of every class make two thirds: 30 of them, so 15 N
    mix = new_patients.stress_mask(crowded)
    assert mix[crowded != 0].all() and int((mix & (crowded == 0)).sum()) == 15


def test_a_blend_is_the_beat_by_beat_mean_of_two_runs() -> None:
    def run(p: list[list[float]]) -> dict:
        return {
            "y": [0, 1],
            "proba": p,
            "proba_alone": p,
            "stress": {"1": {"y": [1], "proba": [p[1]]}},
        }

    results = {
        "a": {"0": {"101": run([[0.6, 0.4, 0, 0, 0], [0.6, 0.4, 0, 0, 0]])}},
        "b": {"0": {"101": run([[0.7, 0.3, 0, 0, 0], [0.1, 0.9, 0, 0, 0]])}},
    }
    blended = new_patients.blend(results, "a", "b")["0"]["101"]
    assert blended["pred"] == [0, 1] and blended["stress"]["1"]["pred"] == [1]


def test_held_out_ensembles_group_consecutive_seeds_and_calibrate_each_beat_alone() -> None:
    def run(final: list[float], raw: list[float], t: float) -> dict:
        return {"y": [1], "proba": [final], "proba_alone": [raw], "info": {"temperature": t}, "stress": {}}

    # Seeds 0-2 make ensemble 0; seed 3 alone has no full ensemble. The raw outputs favour N, but
    # seed 2's network is far less sure than its temperature says: calibrated, the mean favours S.
    results = {
        "m": {
            "0": {"101": run([0.2, 0.8, 0, 0, 0], [0.6, 0.4, 0, 0, 0], 1.0)},
            "1": {"101": run([0.3, 0.7, 0, 0, 0], [0.6, 0.4, 0, 0, 0], 1.0)},
            "2": {"101": run([0.4, 0.6, 0, 0, 0], [0.45, 0.55, 0, 0, 0], 0.05)},
            "3": {"101": run([0.9, 0.1, 0, 0, 0], [0.9, 0.1, 0, 0, 0], 1.0)},
        }
    }
    ensembles = new_patients.held_out_ensembles(results, "m", 3, [0, 3])
    assert list(ensembles) == ["0"]
    assert ensembles["0"]["101"]["pred"] == [1] and ensembles["0"]["101"]["pred_alone"] == [1]
    assert new_patients.seed_mean(results, "m", [0, 1, 2])["0"]["101"]["pred_alone"] == [0]


def test_the_irregular_rhythm_gate_applies_to_an_ensemble_after_its_mean() -> None:
    """``--irregular-gate``: the gate goes on each run's (or ensemble's) final probabilities with the
    record's own flags, as the pipeline applies it last; an ensemble is gated after its mean."""
    from heartbeat.fetch.synth import ATRIAL_FIBRILLATION, mitdb_records
    from heartbeat.model.rhythm_gate import gate_irregular
    from heartbeat.signal.irregular import irregular_beats
    from heartbeat.signal.patient import unlike_qrs
    from heartbeat.signal.wfdb_records import aami_labels

    synth = next(r for r in mitdb_records(0, 32, 3) if r.profile.get("profile") == ATRIAL_FIBRILLATION)
    rec = new_patients.Record(
        "201",
        synth.fs,
        [synth.signal],
        synth.peaks,
        aami_labels(synth.symbols),
        synth.signal.size / synth.fs / 60,
    )
    rows = new_patients.scored_rows(rec)
    flags = irregular_beats(rec.peaks[rows])
    assert 0 < flags.mean() < 1
    rng = np.random.default_rng(0)
    finals = [rng.dirichlet(np.ones(5), size=rows.size) for _ in range(3)]

    def run(p: np.ndarray) -> dict:
        y = rec.labels[rows].tolist()
        return {"y": y, "proba": p.tolist(), "proba_alone": p.tolist(), "info": {}, "stress": {}}

    results = {"m": {str(s): {"201": run(p)} for s, p in enumerate(finals)}}
    results["ens"] = new_patients.held_out_ensembles(results, "m", 3, [0])
    flags_of = new_patients.gate_flags({"201": rec})
    gated = new_patients.gated(results, "ens", flags_of)["0"]["201"]
    expected = gate_irregular(np.mean(finals, axis=0), flags)
    assert gated["pred"] == expected.argmax(axis=1).tolist()
    assert not any(p == 1 for p, f in zip(gated["pred"], flags, strict=True) if f)
    single = new_patients.gated(results, "m", flags_of)["1"]["201"]
    np.testing.assert_allclose(single["proba"][~flags], finals[1][~flags])
    # --qrs-gate: the irregular flags and the beats whose QRS is unlike the record's reference beat's
    both = new_patients.gate_flags({"201": rec}, "rhythm")["201"]
    _, P, _, _ = new_patients.featurise(rec, new_patients.references(rec, "rhythm"))
    np.testing.assert_array_equal(both[""], flags | unlike_qrs(P))
    mix = new_patients.stress_mask(rec.labels)[rows]
    np.testing.assert_array_equal(flags_of["201"][new_patients.STRESS_MIX], flags[mix])
    # only the stress mixes the stored runs hold are featurised: here none
    assert new_patients.stress_keys(results, ["m"]) == {"201": set()}
    assert set(new_patients.gate_flags({"201": rec}, "rhythm", {"201": set()})["201"]) == {""}


def test_fusion_copies_blend_a_v_beat_into_n_beats_and_label_them_f() -> None:
    """``fusion`` training copies: F-labelled beats cut from the record with part of a V beat
    blended into N beats, the same for the same seed, none from a record without V beats."""
    from heartbeat.fetch.synth import mitdb_records
    from heartbeat.signal.wfdb_records import aami_labels

    synths = list(mitdb_records(0, 6, 3))

    def as_record(synth) -> new_patients.Record:
        labels = aami_labels(synth.symbols)
        return new_patients.Record("100", synth.fs, [synth.signal], synth.peaks, labels, 3.0)

    recs = [as_record(s) for s in synths]
    with_v = next(r for r in recs if (r.labels == 2).sum() >= new_patients.FUSION_MIN_V)
    fused = new_patients.fusion_copy(with_v, "rhythm", np.random.default_rng(0))
    again = new_patients.fusion_copy(with_v, "rhythm", np.random.default_rng(0))
    assert fused is not None and 0 < len(fused.y) <= new_patients.FUSION_BEATS
    assert set(fused.y.tolist()) == {3}
    np.testing.assert_array_equal(fused.W, again.W)
    W, _, y, _ = new_patients.featurise(with_v, new_patients.references(with_v, "rhythm"))
    n_mean, v_mean, f_mean = W[y == 0].mean(axis=0), W[y == 2].mean(axis=0), fused.W.mean(axis=0)
    # Between the record's N and V beats: nearer V than N is, nearer N than V is.
    assert np.linalg.norm(f_mean - v_mean) < np.linalg.norm(n_mean - v_mean)
    assert np.linalg.norm(f_mean - n_mean) < np.linalg.norm(v_mean - n_mean)
    assert np.linalg.norm(f_mean - n_mean) > 0
    without_v = recs[0]
    without_v.labels = np.where(without_v.labels == 2, 0, without_v.labels)
    assert new_patients.fusion_copy(without_v, "rhythm", np.random.default_rng(0)) is None


def test_stretch_amplitudes_show_a_stretch_of_taller_beats() -> None:
    """``--amplitudes``: each stretch's QRS amplitude over the record's, about 1 where nothing
    changes and the factor itself where the beats grow."""
    from tests.test_patient import FS, record

    signal, peaks = record(seconds=900, premature=())
    labels = np.zeros(peaks.size, dtype=np.int64)
    steady = new_patients.Record("100", FS, [signal], peaks, labels, 15.0)
    assert np.allclose(new_patients.stretch_amplitudes(steady), 1.0, atol=0.02)
    grown = np.where(np.arange(signal.size) >= peaks[-1] - 250 * FS, 1.6 * signal, signal)
    ratios = new_patients.stretch_amplitudes(new_patients.Record("100", FS, [grown], peaks, labels, 15.0))
    assert len(ratios) == 3 and np.allclose(ratios[:2], 1.0, atol=0.05) and ratios[2] > 1.3


def test_amplitude_levelling_scales_only_a_stretch_far_from_the_record() -> None:
    """The ``amplitude`` scoring: a stretch of beats 1.6x the record's is brought back to the
    record's amplitude; a record whose stretches are all within the tolerance is left alone (None)."""
    from tests.test_patient import FS, record

    signal, peaks = record(seconds=900, premature=())
    labels = np.zeros(peaks.size, dtype=np.int64)
    steady = new_patients.Record("100", FS, [signal], peaks, labels, 15.0)
    assert new_patients.amplitude_levelled(steady, "rhythm") is None
    late = np.arange(signal.size) >= peaks[-1] - 250 * FS
    for factor, changed in ((1.15, False), (1.6, True)):
        grown = new_patients.Record("100", FS, [np.where(late, factor * signal, signal)], peaks, labels, 15.0)
        levelled = new_patients.amplitude_levelled(grown, "rhythm")
        assert (levelled is not None) == changed
    assert np.allclose(new_patients.stretch_amplitudes(levelled), 1.0, atol=0.05)
    assert levelled.leads[0] is not grown.leads[0]  # the record's own lead is not written to
    first_two = slice(0, int(550 * FS))  # the stretches within the tolerance are untouched
    np.testing.assert_array_equal(levelled.leads[0][first_two], signal[first_two])


def _run(y: list[int], pred: list[int], scorings: dict) -> dict:
    proba = np.eye(5)[pred].tolist()
    return {"y": y, "pred": pred, "proba": proba, "stress": {}, "scorings": scorings}


def test_the_scorings_report_compares_the_same_networks_other_cuts() -> None:
    """``--scorings``: the detected R-peaks are scored as EC57 does (a false detection called S is a
    false S alarm, a missed beat counts against Se), the levelled stretches beat by beat, each
    against the record's own scoring of the same seed."""
    fs = 360.0
    peaks = np.arange(1, 31) * 360
    labels = np.array([0] * 20 + [1] * 5 + [2] * 5)
    rec = new_patients.Record("100", fs, [np.zeros(32 * 360)], peaks, labels, 0.5)
    rows = new_patients.scored_rows(rec)
    y = labels[rows].tolist()
    own = list(y)
    own[rows.tolist().index(20)] = 0  # one S beat missed by the classifier
    detected_times = np.concatenate([peaks[rows], [peaks[5] + 180]])  # one false detection...
    order = np.argsort(detected_times, kind="stable")
    det_pred = np.concatenate([np.array(own), [1]])[order]  # ...called S
    scorings = {
        "detected": {
            "times": detected_times[order].tolist(),
            "pred": det_pred.tolist(),
            "proba": np.eye(5)[det_pred].tolist(),
            "irregular": [0] * len(det_pred),
        },
        "amplitude": {"pred": y, "proba": np.eye(5)[y].tolist(), "irregular": [0] * len(y)},
    }
    results = {"m": {"0": {"100": _run(y, own, scorings)}}}
    text = new_patients.scorings_report(results, "m", [0], {"100": rec}, gate=False)
    table = {
        line.split(" | ")[0].lstrip("| "): line.split(" | ")
        for line in text.splitlines()
        if line.startswith("| ")
    }
    annotated = table["annotated R-peaks (the record's own scoring)"]
    levelled = next(v for k, v in table.items() if k.startswith("stretches levelled"))
    detected = next(v for k, v in table.items() if k.startswith("detected R-peaks"))
    assert annotated[4].startswith("0.80 / 1.00")  # S Se / +P: 4 of 5, no false S
    assert levelled[4].startswith("1.00 / 1.00")  # the levelled cut found the fifth
    assert detected[4].startswith("0.80 / 0.80")  # the false detection is a false S
    assert float(detected[6].split(" / ")[1].rstrip(" |")) < 1.0  # QRS +P counts it
    assert "| 100 | amplitude | 0.80 → 1.00 |" in text
    # a seed without every record's scorings is not reported
    del results["m"]["0"]["100"]["scorings"]
    assert new_patients.scorings_report(results, "m", [0], {"100": rec}, gate=False) == ""


def test_detected_split_cuts_a_real_record_as_predict_does() -> None:
    """``detected``: the R-peaks of predict's detector on a real record lie on its annotated beats."""
    from heartbeat.evaluate import ec57
    from tests.conftest import shared_dir

    (rec,) = new_patients.load_records(shared_dir("mitdb"), ["101"])
    split, times = new_patients.detected_split(rec, "rhythm")
    assert split.W.shape == (times.size, 125, 2) and split.P.shape[0] == times.size
    assert np.isfinite(split.P).all() and split.I.shape == (times.size,)
    ref_of_test, _ = ec57.match_beats(rec.peaks, times, round(0.15 * rec.fs))
    assert (ref_of_test >= 0).mean() > 0.99 and abs(times.size - rec.peaks.size) < 0.01 * rec.peaks.size
    _, xqrs_times = new_patients.detected_split(rec, "rhythm", xqrs_alone=True)
    np.testing.assert_array_equal(xqrs_times, times)  # 101 has no wide beat XQRS misses
