"""Tests of EC57 scoring (heartbeat/evaluate/ec57.py) and ``heartbeat score``: hand-computed cases
that check every figure exactly, and a real MIT-BIH record against wfdb's compare_annotations."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from heartbeat.evaluate import ec57
from heartbeat.serve.cli import main

MITDB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mitdb"
needs_mitdb = pytest.mark.skipif(not (MITDB / "101.hea").is_file(), reason="../shared/data/mitdb is absent")

N, S, V, F, Q = range(5)

# Rows N S V F Q O, columns n s v f q o: figures below are worked out by hand from it.
MATRIX = np.array(
    [
        [50, 2, 3, 1, 0, 4],
        [5, 10, 1, 0, 0, 2],
        [2, 1, 20, 1, 1, 3],
        [1, 1, 2, 3, 0, 0],
        [0, 0, 1, 0, 2, 1],
        [6, 1, 2, 0, 1, 0],
    ]
)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["score", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- matching


def test_matching_walks_both_lists_in_time_order() -> None:
    ref = np.array([100, 200, 300, 400, 500])
    test = np.array([95, 205, 212, 330, 398, 600])
    ref_of_test, test_of_ref = ec57.match_beats(ref, test, window=10)
    assert ref_of_test.tolist() == [0, 1, -1, -1, 3, -1]
    assert test_of_ref.tolist() == [0, 1, -1, 4, -1]


def test_matching_prefers_the_nearer_next_beat_and_keeps_the_window_inclusive() -> None:
    # 92 is inside the window of 100, but 99 is nearer: 92 stays a false beat.
    assert ec57.match_beats(np.array([100]), np.array([92, 99]), 10)[0].tolist() == [-1, 0]
    # 102 is as near to 104 as to 100: a tie goes to the later reference beat, as in bxb.
    assert ec57.match_beats(np.array([100, 104]), np.array([102]), 10)[1].tolist() == [-1, 0]
    assert ec57.match_beats(np.array([100]), np.array([110]), 10)[1].tolist() == [0]
    assert ec57.match_beats(np.array([100]), np.array([111]), 10)[1].tolist() == [-1]
    assert ec57.match_beats(np.array([], dtype=int), np.array([5]), 10)[0].tolist() == [-1]


def test_each_beat_matches_at_most_once() -> None:
    rng = np.random.default_rng(0)
    ref = np.sort(rng.choice(100_000, 800, replace=False))
    test = np.sort(rng.choice(100_000, 900, replace=False))
    ref_of_test, test_of_ref = ec57.match_beats(ref, test, 54)
    hits = test_of_ref[test_of_ref >= 0]
    assert len(set(hits.tolist())) == hits.size
    assert np.all(ref_of_test[hits] == np.flatnonzero(test_of_ref >= 0))
    assert np.all(np.abs(ref[test_of_ref >= 0] - test[hits]) <= 54)


# ---------------------------------------------------------------- statistics


def test_statistics_of_a_hand_computed_matrix() -> None:
    stats = ec57.statistics(MATRIX)
    expected = {
        "qrs_se": (107, 117),  # 107 matched; 10 in the o column
        "qrs_pp": (107, 117),  # 10 in the O row
        "veb_se": (20, 28),  # Vn+Vs+Vf+Vq+Vo = 2+1+1+1+3
        "veb_pp": (20, 26),  # Nv+Sv+Ov = 3+1+2; Fv and Qv do not count
        "veb_fpr": (6, 89),  # true negatives: rows N S F Q O x columns n s f q = 53+15+5+2+8
        "sveb_se": (10, 18),  # Sn+Sv+Sf+Sq+So = 5+1+0+0+2
        "sveb_pp": (10, 15),  # Ns+Vs+Fs+Os = 2+1+1+1
        "sveb_fpr": (5, 101),  # rows N V F Q O x columns n v f q = 54+24+6+3+9
    }
    assert {k: (r.numerator, r.denominator) for k, r in stats.items()} == expected
    assert stats["veb_fpr"].value == 6 / 89


def test_per_class_over_matched_beats() -> None:
    classes = ec57.per_class(MATRIX)
    assert classes["N"] == {"se": 50 / 56, "pp": 50 / 58, "f1": 100 / 114, "reference": 56, "test": 58}
    assert classes["S"]["f1"] == 20 / 30
    assert classes["V"] == {"se": 20 / 25, "pp": 20 / 27, "f1": 40 / 52, "reference": 25, "test": 27}
    assert classes["F"]["f1"] == 6 / 12
    assert classes["Q"]["f1"] == 4 / 6


def test_undefined_statistics_are_none() -> None:
    stats = ec57.statistics(np.zeros((6, 6), dtype=int))
    assert all(r.value is None for r in stats.values())
    assert ec57.per_class(np.zeros((6, 6), dtype=int))["V"]["se"] is None


def test_score_record_builds_the_matrix_with_unmatched_row_and_column() -> None:
    score = ec57.score_record(
        "r",
        np.array([100, 200, 300, 400, 500]),
        np.array([N, V, S, V, N]),
        np.array([95, 205, 212, 330, 398, 600]),
        np.array([N, S, V, N, V, N]),
        window=10,
    )
    expected = np.zeros((6, 6), dtype=int)
    expected[N, N] = 1  # 100/95
    expected[V, S] = 1  # 200/205
    expected[5, V] = 1  # 212: no reference beat
    expected[S, 5] = 1  # 300: no test beat
    expected[5, N] = 2  # 330 and 600
    expected[V, V] = 1  # 400/398
    expected[N, 5] = 1  # 500
    assert score.matrix.tolist() == expected.tolist()
    assert (score.stats["qrs_se"].numerator, score.stats["qrs_se"].denominator) == (3, 5)
    assert (score.stats["qrs_pp"].numerator, score.stats["qrs_pp"].denominator) == (3, 6)
    assert score.stats["veb_se"].value == 1 / 2
    assert score.stats["veb_pp"].value == 1 / 2  # Vv over Vv + Ov
    assert score.stats["sveb_pp"].value == 0.0  # Vs is a false SVEB


def test_beats_of_the_learning_period_are_not_scored() -> None:
    # 97 is before the start but matches 100, after it: counted, as bxb does.
    kept = ec57.score_record(
        "r", np.array([100, 200]), np.array([N, N]), np.array([97, 198]), np.array([N, N]), 10, start=99
    )
    assert kept.matrix[N, N] == 2
    # An unmatched test beat of the learning period is neither a false beat nor anything else.
    early = ec57.score_record(
        "r", np.array([50, 200]), np.array([V, N]), np.array([95, 200]), np.array([V, N]), 10, start=100
    )
    assert early.matrix.sum() == 1 and early.matrix[N, N] == 1


def test_gross_and_record_average() -> None:
    a = ec57.RecordScore("a", MATRIX, ec57.statistics(MATRIX))
    no_v = MATRIX.copy()
    no_v[V] = 0  # no reference VEB: VEB Se undefined for this record
    b = ec57.RecordScore("b", no_v, ec57.statistics(no_v))
    score = ec57.summarize([a, b])
    assert score.matrix.tolist() == (MATRIX + no_v).tolist()
    assert score.gross["veb_se"].value == 20 / 28  # only record a has VEBs
    assert score.average["veb_se"] == 20 / 28 and score.average_n["veb_se"] == 1
    qrs_b = ec57.statistics(no_v)["qrs_se"]
    assert qrs_b.numerator == 82 and qrs_b.denominator == 89
    assert score.average["qrs_se"] == pytest.approx(float((Fraction(107, 117) + Fraction(82, 89)) / 2), abs=0)
    assert score.average_n["qrs_se"] == 2


# ---------------------------------------------------------------- the command


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_cli_scores_a_csv_reference_against_predict_csv(capsys, tmp_path) -> None:
    ref = _write(tmp_path / "rec.csv", "time_s,symbol\n1.0,N\n1.5,+\n2.0,V\n3.0,A\n4.0,L\n")
    test = _write(
        tmp_path / "pred.csv",
        "beat,sample,time_s,predicted,p_N\n0,1020,1.02,N,1\n1,1900,1.9,V,0\n2,3200,3.2,N,1\n3,4100,4.1,S,0\n",
    )
    code, out, err = run(capsys, ref, test, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    # 1.0/1.02 Nn, 2.0/1.9 Vv, 3.0/3.2 more than 150 ms apart: So and On, 4.0/4.1 Ns.
    assert report["matrix"]["N"] == {"n": 1, "s": 1, "v": 0, "f": 0, "q": 0, "o": 0}
    assert report["matrix"]["S"]["o"] == 1 and report["matrix"]["O"]["n"] == 1
    assert report["gross"]["qrs_se"] == {"value": 0.75, "numerator": 3, "denominator": 4}
    assert report["gross"]["veb_se"]["value"] == 1.0
    assert report["records"][0]["record"] == "rec"
    code, out, _ = run(capsys, ref, test)
    assert "QRS Se" in out and " 75.00 " in out and "Confusion matrix" in out


def _wfdb_record(folder: Path, name: str, samples, symbols, ext: str = "atr", fs: float = 250.0) -> None:
    import wfdb

    wfdb.wrann(name, ext, np.asarray(samples), symbol=list(symbols), fs=fs, write_dir=str(folder))


def test_cli_scores_a_folder_against_shard_outputs(capsys, tmp_path) -> None:
    refs = tmp_path / "db"
    refs.mkdir()
    _wfdb_record(refs, "r1", [250, 500, 750, 1000], ["N", "+", "V", "N"])
    _wfdb_record(refs, "r2", [250, 500, 750], ["A", "N", "N"])
    (refs / "RECORDS").write_text("r1\nr2\nr3\n")
    shard0, shard1 = tmp_path / "s0", tmp_path / "s1"
    shard0.mkdir()
    shard1.mkdir()
    _write(shard0 / "r1.csv", "beat,sample,time_s,predicted\n0,252,1.008,N\n1,750,3.0,V\n2,1000,4.0,V\n")
    beats = [
        {"beat": i, "sample": s, "time_s": s / 250, "predicted": c}
        for i, (s, c) in enumerate([(250, "S"), (505, "N"), (751, "N"), (900, "N")])
    ]
    _write(shard1 / "r2.json", json.dumps({"input": {"fs": 250.0}, "beats": beats}))
    code, out, err = run(capsys, refs, shard0, shard1, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert [r["record"] for r in report["records"]] == ["r1", "r2"]
    assert report["not_scored"] == ["r3"] and "r3" in err
    assert (
        report["matrix"]["N"]["n"] == 3
        and report["matrix"]["N"]["v"] == 1
        and report["matrix"]["V"]["v"] == 1
    )
    assert report["matrix"]["S"]["s"] == 1 and report["matrix"]["O"]["n"] == 1
    assert report["gross"]["qrs_pp"] == {"value": 6 / 7, "numerator": 6, "denominator": 7}
    assert report["average"]["qrs_pp"] == {"value": (1 + 3 / 4) / 2, "records": 2}
    assert report["average"]["veb_se"] == {"value": 1.0, "records": 1}
    # A WFDB test annotation file is read too.
    _wfdb_record(tmp_path, "r1", [250, 750, 1000], ["N", "V", "V"], ext="heartbeat")
    code, out, err = run(capsys, refs / "r1.atr", tmp_path / "r1.heartbeat", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["matrix"]["N"]["v"] == 1


def test_cli_errors_are_one_line(capsys, tmp_path) -> None:
    ref = _write(tmp_path / "rec.csv", "time_s,label\n1.0,N\n2.0,Z\n")
    code, _, err = run(capsys, ref, ref)
    assert code == 2 and "row 3" in err and "'Z'" in err and len(err.strip().splitlines()) == 1
    refs = tmp_path / "db"
    refs.mkdir()
    _wfdb_record(refs, "r1", [250], ["N"])
    for shard in ("s0", "s1"):
        (tmp_path / shard).mkdir()
        _write(tmp_path / shard / "r1.csv", "time_s,predicted\n1.0,N\n")
    code, _, err = run(capsys, refs, tmp_path / "s0", tmp_path / "s1")
    assert code == 2 and "also has predictions" in err
    code, _, err = run(capsys, refs, tmp_path / "nowhere")
    assert code == 2 and "nowhere: is not a file" in err
    no_time = _write(tmp_path / "x.json", json.dumps({"beats": [{"beat": 0, "predicted": "N"}]}))
    code, _, err = run(capsys, refs / "r1.atr", no_time)
    assert code == 2 and "no time" in err


@needs_mitdb
def test_real_record_qrs_agrees_with_wfdb_compare_annotations(capsys, tmp_path) -> None:
    import wfdb
    from wfdb.processing import compare_annotations

    from heartbeat.signal.detect import r_peaks

    record = wfdb.rdrecord(str(MITDB / "101"), channel_names=["MLII"])
    peaks = r_peaks(record.p_signal[:, 0], record.fs)
    lines = ["sample,time_s,predicted"] + [f"{p},{p / record.fs:.3f},N" for p in peaks]
    test = _write(tmp_path / "101.csv", "\n".join(lines) + "\n")
    code, out, err = run(capsys, MITDB / "101", test, "--format", "json")
    assert code == 0, err
    gross = json.loads(out)["gross"]
    ann = wfdb.rdann(str(MITDB / "101"), "atr")
    beats = np.array([s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in "NLRejAaJSVEF/fQ"])
    window = round(ec57.WINDOW_S * record.fs)
    ref = compare_annotations(beats, np.asarray(peaks), window)
    assert gross["qrs_se"]["value"] == ref.sensitivity
    assert gross["qrs_pp"]["value"] == ref.positive_predictivity
    assert gross["qrs_se"]["numerator"] == ref.tp
