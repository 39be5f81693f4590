"""``heartbeat predict`` over many recordings (heartbeat/serve/batch.py): the list, shards, one output
per recording, a bad recording among good ones, and ``heartbeat score`` merging the shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from heartbeat.core.errors import DataError, ParamsError
from heartbeat.serve import batch
from heartbeat.serve.cli import main

FS = 360.0
RATE_HZ = 1.2


def _ecg(seconds: float, phase0: float) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    phase = (t * RATE_HZ + phase0) % 1.0
    return np.exp(-(((phase - 0.3) / 0.012) ** 2)) + 0.15 * np.exp(-(((phase - 0.6) / 0.06) ** 2))


def _record(folder: Path, name: str, phase0: float = 0.0, seconds: float = 30.0) -> Path:
    """A one-lead synthetic record, with a .atr of its true beats (all N)."""
    import wfdb

    ecg = _ecg(seconds, phase0)
    wfdb.wrsamp(
        name, fs=FS, units=["mV"], sig_name=["MLII"], p_signal=ecg[:, None], fmt=["16"], write_dir=str(folder)
    )
    beats = (np.arange(0, seconds * RATE_HZ) + 0.3 - phase0) / RATE_HZ
    beats = beats[(beats > 0) & (beats < seconds)]
    wfdb.wrann(
        name,
        "atr",
        np.round(beats * FS).astype(np.int64),
        symbol=["N"] * beats.size,
        fs=FS,
        write_dir=str(folder),
    )
    return folder / name


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("db")
    for i, name in enumerate(("r1", "r2", "r3", "r4")):
        _record(folder, name, phase0=0.1 * i)
    (folder / "RECORDS").write_text("r1\nr2\nr3\nr4\n")
    return folder


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_expand_reads_folders_and_records_files(tmp_path, db) -> None:
    assert batch.expand([str(db)]) == [str(db / n) for n in ("r1", "r2", "r3", "r4")]
    assert batch.expand([str(db / "RECORDS"), "x.edf"]) == [
        *(str(db / n) for n in ("r1", "r2", "r3", "r4")),
        "x.edf",
    ]
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "b.hea").write_text("")
    (plain / "a.edf").write_bytes(b"")
    assert batch.expand([str(plain)]) == [str(plain / "a.edf"), str(plain / "b")]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no RECORDS file"):
        batch.expand([str(empty)])
    with pytest.raises(ParamsError, match="standard input"):
        batch.expand(["-"])


def test_names_must_be_unique_and_shards_split_the_list() -> None:
    with pytest.raises(ParamsError, match="same name"):
        batch.plan_jobs(["a/101", "b/101"], Path("out"), "csv")
    jobs = batch.plan_jobs(["a/101", "x.edf"], Path("out"), "wfdb")
    assert [j.output for j in jobs] == [Path("out/101.heartbeat"), Path("out/x.heartbeat")]
    items = list(range(10))
    shards = [items[i::3] for i in range(3)]
    assert sorted(x for shard in shards for x in shard) == items
    assert batch.parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "x/2", "1", "-1/2", "0/0"):
        with pytest.raises(ParamsError):
            batch.parse_shard(bad)


@pytest.mark.parametrize("parallel", ["threads", "processes"])
def test_many_recordings_with_a_bad_one(capsys, tmp_path, db, parallel) -> None:
    bad = tmp_path / "bad.edf"
    bad.write_bytes(b"not an edf")
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys,
        "predict",
        db / "r1",
        db / "r2",
        bad,
        "--output-dir",
        out,
        "--jobs",
        "2",
        "--parallel",
        parallel,
    )
    assert code == 2 and stdout == ""
    assert sum("error:" in line and "bad.edf" in line for line in err.splitlines()) == 1
    assert "1 of 3 recordings failed" in err
    summary = pd.read_csv(out / "summary.csv")
    assert summary["record"].tolist() == ["r1", "r2", "bad"]
    assert summary["status"].tolist() == ["ok", "ok", "failed"]
    for name in ("r1", "r2"):
        rows = pd.read_csv(out / f"{name}.csv")
        assert len(rows) == summary.set_index("record").loc[name, "beats"] > 20
    assert not (out / "bad.csv").exists()


def test_batch_output_equals_one_at_a_time(capsys, tmp_path, db) -> None:
    code, _, err = run(
        capsys, "predict", db, "--output-dir", tmp_path / "all", "--jobs", "2", "--parallel", "threads", "-q"
    )
    assert code == 0 and err == ""
    code, single, _ = run(capsys, "predict", db / "r3", "-q")
    assert (tmp_path / "all" / "r3.csv").read_text() == single


def test_shards_are_scored_together(capsys, tmp_path, db) -> None:
    for i in range(2):
        code, _, err = run(
            capsys,
            "predict",
            db,
            "--peaks",
            "detector",
            "--shard",
            f"{i}/2",
            "--output-dir",
            tmp_path / f"s{i}",
            "-q",
        )
        assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "s0").iterdir()) == [
        "r1.csv",
        "r3.csv",
        "summary-shard-0-of-2.csv",
    ]
    code, out, err = run(capsys, "score", db, tmp_path / "s0", tmp_path / "s1", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert [r["record"] for r in report["records"]] == ["r1", "r2", "r3", "r4"]
    assert report["gross"]["qrs_pp"]["value"] == 1.0  # the cutter drops beats at the edges: Se < 1
    halves = []
    for i in range(2):
        code, out, _ = run(capsys, "score", db, tmp_path / f"s{i}", "--format", "json", "-q")
        halves.append(json.loads(out))
    assert halves[0]["not_scored"] == ["r2", "r4"]
    for key in ("qrs_se", "qrs_pp"):
        merged = report["gross"][key]
        assert merged["numerator"] == sum(h["gross"][key]["numerator"] for h in halves)
        assert merged["denominator"] == sum(h["gross"][key]["denominator"] for h in halves)


def test_refusals_before_any_work(capsys, tmp_path, db) -> None:
    code, _, err = run(capsys, "predict", db / "r1", db / "r2")
    assert code == 2 and "--output-dir" in err
    for option in ("-o", "--plot"):
        code, _, err = run(capsys, "predict", db, option, tmp_path / "x.out", "--output-dir", tmp_path / "o")
        assert code == 2 and f"{option}: names one file" in err
    assert not (tmp_path / "o").exists()
    signal = tmp_path / "sig.csv"
    np.savetxt(signal, _ecg(10, 0), delimiter=",")
    before = signal.read_bytes()
    code, _, err = run(capsys, "predict", signal, "--fs", "360", "--output-dir", tmp_path)
    assert code == 2 and "one of the inputs" in err
    assert signal.read_bytes() == before
