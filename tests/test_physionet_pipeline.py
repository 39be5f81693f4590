"""The physionet source end to end through ``dvc repro``, served by a local mirror of real records.

The mirror holds five real MIT-BIH records (four DS1 and the paced 102) and the five real PTB
records. None of those PTB records is a healthy control, so the mirror rewrites the diagnosis
comment of ``patient003/s0017lre`` to "Healthy control" to exercise the normal-class path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.beatcsv import read_beats_csv
from heartbeat.core.layout import FILE_CLASSES, RAW_FILES
from heartbeat.model.saving import load_model
from heartbeat.signal.context import CONTEXT_COLUMNS
from heartbeat.signal.wfdb_records import aami_labels
from testkit.mirrors import build_mirror, serve
from tests.conftest import SHARED, dvc, make_project, shared_dir

pytestmark = pytest.mark.slow

RECORDS = ["101", "102", "106", "114", "124"]
TRAIN, TEST = ["101", "106", "114"], ["124"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_mirror(tmp_path_factory.mktemp("mirror"), shared_dir("mitdb").parent, RECORDS)
    state, server = serve(root)
    try:
        params = {
            "data": {
                "source": "physionet",
                "physionet": {"mirror": state.url, "retries": 1, "backoff_s": 0.0, "timeout_s": 20.0},
            },
            "preprocess": {
                "split": "patient",
                "patient": {"mitbih_train_records": TRAIN, "mitbih_test_records": TEST},
            },
            # one network: with this few records, a member holding out two would learn from one
            "train_resnet_mitbih": {"ensemble": 1},
        }
        proj = make_project(tmp_path_factory.mktemp("physionet") / "project", params)
        dvc(proj, "repro")
    finally:
        server.shutdown()
        server.server_close()
    return proj


def test_beats_match_the_annotations(project: Path) -> None:
    prov = pd.read_parquet(project / "data/raw/provenance.parquet")
    mit = prov[prov["database"] == "mitdb"]
    for record in RECORDS:
        ann = wfdb.rdann(str(SHARED / "mitdb" / record), "atr")
        labels = aami_labels(ann.symbol)
        beats = labels >= 0
        ours = mit[mit["record"] == record]
        # every annotated beat but at most two edge beats
        assert 0 <= beats.sum() - len(ours) <= 2, record
        per_class = np.bincount(ours["label"], minlength=5)
        annotated = np.bincount(labels[beats], minlength=5)
        assert np.all(annotated - per_class >= 0) and np.all(annotated - per_class <= 2), record
        # provenance points at real annotation positions, with their symbols
        positions = dict(
            zip(np.asarray(ann.sample)[beats].tolist(), np.asarray(ann.symbol)[beats].tolist(), strict=True)
        )
        assert all(positions.get(s) == sym for s, sym in zip(ours["sample"], ours["symbol"], strict=True)), (
            record
        )


def test_every_beat_is_a_valid_row(project: Path) -> None:
    prov = pd.read_parquet(project / "data/raw/provenance.parquet")
    for name in RAW_FILES:
        beats = read_beats_csv(project / "data/raw" / name, FILE_CLASSES[name])
        assert beats.X.shape[1] == BEAT_LENGTH
        assert beats.X.min() >= 0 and beats.X.max() <= 1
        rows = prov[prov["file"] == name]
        assert sorted(rows["row"]) == list(range(len(beats)))
        np.testing.assert_array_equal(rows.sort_values("row")["label"].to_numpy(), beats.y)
    assert set(prov.loc[prov["file"] == "ptbdb_normal.csv", "record"]) == {"patient003/s0017lre"}


def test_patient_split_shares_no_record_or_patient(project: Path) -> None:
    info = json.loads((project / "data/prepared/info.json").read_text())
    assert info["split"] == "patient" and info["source"] == "physionet"
    mit, ptb = info["groups"]["mitbih"], info["groups"]["ptb"]
    assert mit["test"] == TEST
    assert set(mit["train"]) | set(mit["val"]) == set(TRAIN)
    assert "102" not in {r for split in mit.values() for r in split}  # paced, excluded
    for groups in (mit, ptb):
        sets = [set(groups[s]) for s in ("train", "val", "test")]
        assert all(a.isdisjoint(b) for i, a in enumerate(sets) for b in sets[i + 1 :])
    counts = json.loads((project / "data/prepared/counts.json").read_text())
    prov = pd.read_parquet(project / "data/raw/provenance.parquet")
    assert sum(counts["mitbih"]["test"].values()) == int((prov["record"] == "124").sum())
    details = json.loads((project / "metrics/details/resnet_mitbih.json").read_text())
    assert details["split"] == "patient" and details["data_source"] == "physionet"
    metrics = json.loads((project / "metrics/resnet_mitbih.json").read_text())
    assert 0 <= metrics["macro_f1_nsvf"] <= 1
    # the context features (R-R, then against the record's median beat) travel with every split
    R = np.load(project / "data/prepared/mitbih/R_test.npy")
    assert R.shape == (sum(counts["mitbih"]["test"].values()), len(CONTEXT_COLUMNS)) and np.isfinite(R).all()
    # and the shipped network's inputs: two-lead windows and the features against the beat's patient
    W = np.load(project / "data/prepared/mitbih/W_test.npy")
    P = np.load(project / "data/prepared/mitbih/P_test.npy")
    assert W.shape[0] == P.shape[0] == R.shape[0] and np.isfinite(W).all() and np.isfinite(P).all()
    G = np.load(project / "data/prepared/mitbih/G_test.npy")
    assert G.shape == (R.shape[0],) and len(set(G.tolist())) == 1  # all of record 124
    assert set(details["record_smoothing"]) == {"neighbours", "weight", "span", "each_beat_alone"}
    model = load_model(project / "models/resnet_mitbih.keras", 5)
    assert [t.name for t in model.inputs] == ["window", "patient"]
    report = json.loads((project / "data/raw/report.json").read_text())
    assert report  # the per-record class counts DVC tracks with data/raw
