"""The demo source: synthetic patients' records, cut and written exactly as the physionet source's.

Records: names that make the params' patient split work, rhythm (premature beats, compensatory
pauses), each patient their own heart rate, seeded. Written files: the four CSVs and
provenance.parquet with physionet's columns, bit-identical for a seed; the shipped recipe's
inputs (R-R and record-template features) and ``split: patient`` work on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from heartbeat.core.beatcsv import read_beats_csv
from heartbeat.core.config import (
    DS1_RECORDS,
    DS2_RECORDS,
    PACED_RECORDS,
    DataConfig,
    DemoConfig,
    PreprocessConfig,
    stage_params,
)
from heartbeat.core.layout import FILE_CLASSES, RAW_FILES
from heartbeat.fetch import fetch_source, validate_raw
from heartbeat.fetch.beatset import PROVENANCE_COLUMNS
from heartbeat.fetch.demo import demo_beats, demo_rows, mitdb_rows
from heartbeat.fetch.synth import (
    ATRIAL_FIBRILLATION,
    ECTOPY_DOMINATED,
    MITDB_FS,
    PROFILES,
    PTBDB_FS,
    SynthRecord,
    mitdb_record_names,
    mitdb_records,
    ptbdb_records,
)
from heartbeat.prepare.preprocess import prepare
from heartbeat.signal.record_beats import cut_record
from heartbeat.signal.wfdb_records import SYMBOL_TO_AAMI, aami_labels
from tests.conftest import ROOT

SMALL = DemoConfig(mitdb_records=10, mitdb_minutes=2, ptbdb_records=6, ptbdb_minutes=1)


@pytest.fixture(scope="module")
def mit() -> list:
    return list(mitdb_records(0, 10, 2.0))


@pytest.fixture(scope="module")
def shipped() -> list[SynthRecord]:
    """The MIT-BIH-like records of the demo as params.yaml ships it."""
    cfg = stage_params("data", ROOT / "params.yaml")
    return list(mitdb_records(cfg.seed, cfg.demo.mitdb_records, cfg.demo.mitdb_minutes))


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("demo")
    fetch_source(DataConfig(demo=SMALL), dest, dest / "cache")
    return dest


def test_record_names_alternate_ds1_ds2_with_paced_ones() -> None:
    names = mitdb_record_names(20)
    assert names[:4] == [DS1_RECORDS[0], DS2_RECORDS[0], DS1_RECORDS[1], DS2_RECORDS[1]]
    assert [names[9], names[19]] == ["107", "217"] and set(names) & set(PACED_RECORDS) == {"107", "217"}
    assert len(set(names)) == 20
    every = mitdb_record_names(48)
    assert sorted(every) == sorted([*DS1_RECORDS, *DS2_RECORDS, *PACED_RECORDS])
    with pytest.raises(ValueError, match="1 to 48"):
        mitdb_record_names(49)


def test_records_are_continuous_leads_with_annotated_beats(mit: list) -> None:
    for record in mit:
        assert record.fs == MITDB_FS and record.signal.dtype == np.float64
        assert record.signal.size == round(2.0 * 60 * MITDB_FS) and np.isfinite(record.signal).all()
        assert (
            np.all(np.diff(record.peaks) > 0)
            and 0 <= record.peaks[0]
            and record.peaks[-1] < record.signal.size
        )
        assert record.symbols.size == record.peaks.size
        assert set(record.symbols) <= set(SYMBOL_TO_AAMI)
        # the annotation sits on the QRS: the lead's largest deflection near it
        window = round(0.05 * MITDB_FS)
        near = [np.abs(record.signal[max(p - window, 0) : p + window]).max() for p in record.peaks[:50]]
        assert np.median(near) > 0.5


def test_each_patient_has_their_own_heart_rate_and_profile(mit: list) -> None:
    rates = [60 * MITDB_FS / np.median(np.diff(r.peaks)) for r in mit if r.profile["profile"] != "paced"]
    assert len({round(r) for r in rates}) >= len(rates) - 1 and max(rates) - min(rates) > 10
    profiles = [r.profile["profile"] for r in mit]
    assert profiles[:2] == ["few ectopics"] * 2 and profiles[2:4] == ["atrial premature"] * 2
    assert profiles[9] == "paced" and set(mit[9].symbols) <= {"/", "f"}


def test_premature_beats_and_their_pauses(mit: list) -> None:
    """V: early, then a full compensatory pause; S: early, the sinus node reset (no full pause);
    F: at about the sinus time. Per beat relative to the R-R before it, medians over all records."""
    ratios: dict[int, list[tuple[float, float]]] = {1: [], 2: [], 3: []}
    for record in mit:
        labels = aami_labels(record.symbols)
        rr = np.diff(record.peaks) / MITDB_FS
        for i in range(2, len(labels) - 1):
            if labels[i] in ratios and labels[i - 1] == labels[i - 2] == labels[i + 1] == 0:
                before = rr[i - 2]
                ratios[labels[i]].append((rr[i - 1] / before, (rr[i - 1] + rr[i]) / (2 * before)))
    assert min(len(v) for v in ratios.values()) >= 10, {k: len(v) for k, v in ratios.items()}
    (s_early, s_pause), (v_early, v_pause), (f_early, _) = (np.median(ratios[c], axis=0) for c in (1, 2, 3))
    assert s_early < 0.8 and s_pause < 0.93
    assert v_early < 0.75 and abs(v_pause - 1) < 0.05
    assert 0.9 < f_early < 1.05


def test_seeded_per_record(mit: list) -> None:
    again = list(mitdb_records(0, 12, 2.0))
    for a, b in zip(mit, again[:10], strict=True):
        np.testing.assert_array_equal(a.signal, b.signal)
        np.testing.assert_array_equal(a.peaks, b.peaks)
    other = next(mitdb_records(1, 1, 2.0))
    assert not np.array_equal(other.signal, mit[0].signal)


def test_ptb_records_have_both_diagnoses_and_are_found_by_the_detector() -> None:
    records = list(ptbdb_records(0, 5, 1.0))
    assert [r.diagnosis for r in records] == ["Healthy control"] * 2 + ["Myocardial infarction"] * 3
    assert records[0].name == "patient001/s0001_re" and records[0].fs == PTBDB_FS
    assert all(r.profile["infarction"] for r in records[2:])
    found = [len(cut_record(r.signal, r.fs, None, polarity="auto")) / r.peaks.size for r in records]
    # the paper's detector (90% of each window's range) misses some beats, as it does on PTB itself
    assert min(found) > 0.3 and np.mean(found) > 0.55, found


def test_demo_beats_are_cut_by_the_physionet_code(mit: list) -> None:
    rows = mitdb_rows(mit[3])
    direct = cut_record(mit[3].signal, mit[3].fs, mit[3].peaks, mit[3].symbols)
    np.testing.assert_array_equal(rows.X, direct.X)
    np.testing.assert_array_equal(rows.label, aami_labels(direct.symbol))
    for key, values in direct.rr.items():
        np.testing.assert_array_equal(rows.rr[key], values)


def test_writes_what_the_physionet_source_writes(fetched: Path) -> None:
    prov = pd.read_parquet(fetched / "provenance.parquet")
    assert tuple(prov.columns) == PROVENANCE_COLUMNS
    for name in RAW_FILES:
        beats = read_beats_csv(fetched / name, FILE_CLASSES[name])
        rows = prov[prov["file"] == name].sort_values("row")
        assert rows["row"].tolist() == list(range(len(beats)))
        assert (rows["label"].to_numpy() == beats.y).all()
    assert set(prov.loc[prov["database"] == "mitdb", "record"]) == set(mitdb_record_names(10))
    assert prov.loc[prov["database"] == "mitdb", ["rr_pre", "rr_post"]].notna().mean().min() > 0.95
    report = json.loads((fetched / "report.json").read_text())
    assert report["synthetic"] is True and report["rows"] == validate_raw(fetched)
    assert set(report["mitdb"]["records"]) == set(mitdb_record_names(10))
    mit_counts = np.bincount(prov.loc[prov["database"] == "mitdb", "label"], minlength=5)
    assert (mit_counts > 0).all() and mit_counts[0] == mit_counts.max()


def test_fetch_is_bit_identical(fetched: Path, tmp_path: Path) -> None:
    fetch_source(DataConfig(demo=SMALL), tmp_path, tmp_path / "cache")
    for name in (*RAW_FILES, "provenance.parquet", "report.json"):
        assert (tmp_path / name).read_bytes() == (fetched / name).read_bytes(), name


def test_patient_split_and_rhythm_inputs_work_on_demo_data(fetched: Path) -> None:
    raw = {name: read_beats_csv(fetched / name, FILE_CLASSES[name]) for name in RAW_FILES}
    prov = pd.read_parquet(fetched / "provenance.parquet")
    prepared = prepare(raw, PreprocessConfig(split="patient"), prov)
    groups = prepared.groups["mitbih"]
    assert set(groups["test"]) <= set(DS2_RECORDS) and set(groups["train"]) <= set(DS1_RECORDS)
    assert not set(groups["train"]) & set(groups["val"])
    assert "107" not in {record for members in groups.values() for record in members}
    for split in prepared.mitbih.values():
        assert split.R is not None and split.R.shape == (len(split.y), 9) and np.isfinite(split.R).all()


def test_demo_beats_match_the_written_files(fetched: Path) -> None:
    beats = demo_beats(SMALL, 0)
    for name in RAW_FILES:
        written = read_beats_csv(fetched / name, FILE_CLASSES[name])
        np.testing.assert_array_equal(beats[name].y, written.y)
        np.testing.assert_allclose(beats[name].X, written.X, atol=1e-6)


def test_learnable_but_not_trivial() -> None:
    """A random forest on the beats and their R-R features learns every class, but not perfectly."""
    from sklearn.ensemble import RandomForestClassifier

    from heartbeat.fetch.beatset import concat
    from heartbeat.signal.context import RR_COLUMNS, rhythm_matrix

    cfg = DemoConfig(mitdb_records=20, mitdb_minutes=2, ptbdb_records=2, ptbdb_minutes=0.5)
    cols = concat(demo_rows(cfg, 7)[0])
    X = np.hstack([cols["X"], rhythm_matrix(np.stack([cols[k] for k in RR_COLUMNS], axis=1))])
    y = cols["label"]
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order]
    half = len(y) // 2
    forest = RandomForestClassifier(n_estimators=60, random_state=0, n_jobs=1).fit(X[:half], y[:half])
    pred = forest.predict(X[half:])
    assert 0.8 < (pred == y[half:]).mean() < 0.999
    recall = [(pred[y[half:] == c] == c).mean() for c in range(5)]
    assert min(recall) > 0.3, recall


def _of(records: list[SynthRecord], profile: str) -> list[SynthRecord]:
    return [r for r in records if r.profile["profile"] == profile]


def _qrs_width(record: SynthRecord, peaks: np.ndarray) -> np.ndarray:
    """Seconds that each beat's QRS spends above half its largest deflection, within ±100 ms."""
    half = round(0.1 * MITDB_FS)
    segments = np.stack(
        [record.signal[p - half : p + half] for p in peaks if half <= p < record.signal.size - half]
    )
    size = np.abs(segments - np.median(segments, axis=1, keepdims=True))
    return (size > 0.5 * size.max(axis=1, keepdims=True)).sum(axis=1) / MITDB_FS


def _p_windows(record: SynthRecord, peaks: np.ndarray) -> np.ndarray:
    """The lead from 260 to 60 ms before each R-peak, where a sinus P wave lies, its ends levelled."""
    lo, hi = round(0.26 * MITDB_FS), round(0.06 * MITDB_FS)
    windows = np.stack([record.signal[p - lo : p - hi] for p in peaks if p >= lo])
    ramp = np.linspace(0.0, 1.0, windows.shape[1])
    return windows - (windows[:, :1] + (windows[:, -1:] - windows[:, :1]) * ramp)


def test_shipped_demo_has_every_profile_among_training_and_test_patients(shipped: list) -> None:
    for profile in PROFILES:
        names = {r.name for r in _of(shipped, profile)}
        assert names & set(DS1_RECORDS) and names & set(DS2_RECORDS), (profile, names)


def test_ectopy_dominated_patients_mostly_s_beats_faster_than_sinus_with_a_normal_qrs(shipped: list) -> None:
    """As MIT-BIH 232: most beats S, at a faster rate than the sinus beats (whose R-R, pauses
    included, is over 1 s), with the sinus QRS; the long pauses end in sinus beats. A bigeminy
    patient's V beats show that the QRS measure can fail."""
    for record in _of(shipped, ECTOPY_DOMINATED):
        labels = aami_labels(record.symbols)
        assert set(labels) == {0, 1}
        assert 0.5 < (labels == 1).mean() < 0.85, (record.name, (labels == 1).mean())
        rr = np.diff(record.peaks, prepend=0) / MITDB_FS
        rr_s, rr_n = np.median(rr[1:][labels[1:] == 1]), np.median(rr[1:][labels[1:] == 0])
        assert rr_s < 0.75 * rr_n and 60 / rr_n < 60, (record.name, rr_s, rr_n)
        pause = rr > 1.5 * np.median(rr[1:])
        assert pause.sum() >= 10 and (labels[pause] == 0).mean() > 0.9
        width_s = np.median(_qrs_width(record, record.peaks[labels == 1]))
        width_n = np.median(_qrs_width(record, record.peaks[labels == 0]))
        assert abs(width_s / width_n - 1) < 0.15, (record.name, width_s, width_n)
    bigeminy = next(r for r in _of(shipped, "ventricular bigeminy") if not r.profile["bundle_branch_block"])
    labels = aami_labels(bigeminy.symbols)
    wide = np.median(_qrs_width(bigeminy, bigeminy.peaks[labels == 2]))
    assert wide > 1.5 * np.median(_qrs_width(bigeminy, bigeminy.peaks[labels == 0]))


def test_atrial_fibrillation_patients_n_beats_irregular_without_p_waves(shipped: list) -> None:
    """Every beat N; in fibrillation the R-R varies far more than a sinus patient's, and the lead
    before the QRS, averaged over beats, holds no P wave where the patient's sinus beats have one."""
    sinus_cv = [np.std(np.diff(r.peaks)) / np.mean(np.diff(r.peaks)) for r in _of(shipped, "few ectopics")]
    for record in _of(shipped, ATRIAL_FIBRILLATION):
        assert set(aami_labels(record.symbols)) == {0}
        t = record.peaks / MITDB_FS
        rr = np.diff(t, prepend=np.nan)
        fibrillating, sinus = np.zeros(t.size, bool), np.isfinite(rr)
        for episode in record.profile["episodes"]:
            inside = (t > episode["start_s"]) & (t < episode["end_s"])
            fibrillating |= inside & np.isfinite(rr) & (episode["rhythm"] == "AFIB")
            sinus &= (t < episode["start_s"] - 1) | (t > episode["end_s"] + 2.5)  # nor the pause after it
        assert fibrillating.sum() >= 50 and sinus.sum() >= 8
        cv = np.std(rr[fibrillating]) / np.mean(rr[fibrillating])
        assert cv > 0.15 and cv > 2 * np.median(sinus_cv), (record.name, cv, sinus_cv)
        # P waves: each window projected on the sinus beats' mean P window; the previous T wave
        # stays out of the window after an R-R of 0.6 s
        late = rr > 0.6
        sinus_p = _p_windows(record, record.peaks[sinus & late])
        unit = sinus_p.mean(axis=0) / np.linalg.norm(sinus_p.mean(axis=0))
        p_sinus = (sinus_p @ unit).mean()
        p_fibrillating = (_p_windows(record, record.peaks[fibrillating & late]) @ unit).mean()
        assert p_sinus > 0.1 and abs(p_fibrillating) < 0.5 * p_sinus, (record.name, p_sinus, p_fibrillating)


def test_new_profiles_are_seeded_per_record() -> None:
    """Same seed, same arrays, however many records follow; another seed, another patient."""
    first, again = list(mitdb_records(0, 16, 1.0)), list(mitdb_records(0, 20, 1.0))
    new = [i for i, r in enumerate(first) if r.profile["profile"] in (ECTOPY_DOMINATED, ATRIAL_FIBRILLATION)]
    assert len(new) == 4
    for i in new:
        np.testing.assert_array_equal(again[i].signal, first[i].signal)
        np.testing.assert_array_equal(again[i].peaks, first[i].peaks)
        np.testing.assert_array_equal(again[i].symbols, first[i].symbols)
        assert again[i].profile == first[i].profile
    other = list(mitdb_records(1, 16, 1.0))
    assert all(not np.array_equal(other[i].peaks, first[i].peaks) for i in new)
