"""The physionet source end to end, against a local HTTP mirror of a few shared records.

The mirror is a temporary folder of symlinks to ../shared/data (MIT-BIH 102,
114 and 124, and the five PTB records) served by ``http.server`` on
127.0.0.1. The handler can inject faults per path: a 404, a truncated file, a
header that does not parse, and a transfer the server cuts off half way.

None of the shared PTB records is a healthy control (all five are
myocardial infarction), so the mirror's copy of ``patient003/s0017lre.hea``
has its "Reason for admission" rewritten to "Healthy control": that is the
only way to exercise the ptbdb_normal.csv path with the data we have.
"""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import wfdb

from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.beatcsv import read_beats_csv
from heartbeat.core.config import PhysionetConfig
from heartbeat.core.errors import DataError, SourceError
from heartbeat.core.layout import FILE_CLASSES, RAW_FILES
from heartbeat.core.splits import split_stratified
from heartbeat.fetch.beatset import PROVENANCE_COLUMNS
from heartbeat.fetch.download import download_file, part_path
from heartbeat.fetch.physionet import fetch_physionet, mirror_cache
from heartbeat.signal import segment as sg
from heartbeat.signal import wfdb_records
from heartbeat.signal.context import RR_COLUMNS
from heartbeat.signal.patient import PATIENT_COLUMNS
from testkit.mirrors import HEALTHY, BytesHandler, Mirror, build_mirror, serve, serve_handler

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MIT_RECORDS = ["102", "114", "124"]


def _shared() -> Path:
    if not (SHARED / "mitdb").is_dir() or not (SHARED / "ptbdb").is_dir():
        pytest.skip(
            f"real data not available: {SHARED} is missing (it lives beside the checkout in ../shared)"
        )
    return SHARED


# ---------------------------------------------------------------- the mirror


def _build_mirror(root: Path, mit_records: list[str] = MIT_RECORDS) -> Path:
    """A PhysioNet-layout folder over some of the shared records, with one PTB record relabelled healthy."""
    return build_mirror(root, _shared(), mit_records)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    state, server = serve(_build_mirror(tmp_path_factory.mktemp("mirror")))
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture()
def clean(mirror: Mirror) -> Iterator[Mirror]:
    mirror.faults.clear()
    mirror.requests.clear()
    yield mirror
    mirror.faults.clear()


def _cfg(mirror: str, **kw: object) -> PhysionetConfig:
    defaults = {"mirror": mirror, "retries": 1, "backoff_s": 0.0, "timeout_s": 10.0}
    return PhysionetConfig(**{**defaults, **kw})


def _annotated(record: str) -> tuple[np.ndarray, np.ndarray]:
    ann = wfdb.rdann(str(SHARED / "mitdb" / record), "atr")
    labels = wfdb_records.aami_labels(ann.symbol)
    return np.asarray(ann.sample)[labels >= 0], np.asarray(ann.symbol)[labels >= 0]


# ---------------------------------------------------------------- the happy path


@pytest.fixture(scope="module")
def fetched(mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    mirror.faults.clear()
    dest, cache = tmp_path_factory.mktemp("dest"), tmp_path_factory.mktemp("cache")
    fetch_physionet(_cfg(mirror.url), 7, dest, cache)
    return dest, cache


def test_writes_the_four_files_provenance_and_report(fetched: tuple[Path, Path]) -> None:
    dest, _ = fetched
    prov = pd.read_parquet(dest / "provenance.parquet")
    assert tuple(prov.columns) == PROVENANCE_COLUMNS
    assert PROVENANCE_COLUMNS[-len(PATIENT_COLUMNS) :] == PATIENT_COLUMNS
    assert PROVENANCE_COLUMNS[-len(PATIENT_COLUMNS) - 6 : -len(PATIENT_COLUMNS)] == RR_COLUMNS
    windows = np.load(dest / "windows.npy")
    assert windows.shape == (len(prov), 125, 2) and np.isfinite(windows).all()
    assert np.isfinite(prov[list(PATIENT_COLUMNS)].to_numpy()).all()
    for name in RAW_FILES:
        beats = read_beats_csv(dest / name, FILE_CLASSES[name])
        assert beats.X.shape[1] == BEAT_LENGTH and len(beats) > 0
        assert (beats.X >= 0).all() and (beats.X <= 1).all()
        rows = prov[prov["file"] == name].sort_values("row")
        assert rows["row"].tolist() == list(range(len(beats)))
        assert (rows["label"].to_numpy() == beats.y).all()
    assert set(prov.loc[prov["file"] == "ptbdb_normal.csv", "record"]) == {HEALTHY}
    assert set(prov.loc[prov["database"] == "ptbdb", "patient"]) == {"patient001", "patient002", "patient003"}


def test_counts_match_the_annotations(fetched: tuple[Path, Path]) -> None:
    dest, _ = fetched
    prov = pd.read_parquet(dest / "provenance.parquet")
    mit = prov[prov["database"] == "mitdb"]
    for record in MIT_RECORDS:
        samples, symbols = _annotated(record)
        ours = mit[mit["record"] == record]
        assert samples.size - 2 <= len(ours) < samples.size, record
        expected = np.bincount(wfdb_records.aami_labels(symbols), minlength=5)
        got = np.bincount(ours["label"].to_numpy(), minlength=5)
        assert ((expected - got >= 0) & (expected - got <= 2)).all(), (record, expected, got)
        # every beat sits on a real annotation, with its symbol and the AAMI label of that symbol
        where = np.searchsorted(samples, ours["sample"].to_numpy())
        assert (samples[where] == ours["sample"].to_numpy()).all()
        assert (symbols[where] == ours["symbol"].to_numpy()).all()
        assert (wfdb_records.aami_labels(list(ours["symbol"])) == ours["label"].to_numpy()).all()
    report = json.loads((dest / "report.json").read_text())
    assert report["mitdb"]["records"]["102"]["lead"] == "V5"  # no MLII: the documented fallback
    assert report["mitdb"]["records"]["114"]["lead"] == "MLII"  # the second lead, picked by name
    assert report["mitdb"]["classes"]["Q"]["kaggle"] == 8039
    assert report["rows"]["mitbih_train.csv"]["kaggle"] == 87_554
    assert report["ptbdb"]["records"][HEALTHY]["label"] == "normal"
    assert report["skipped"] == [] and report["ptbdb"]["excluded_by_diagnosis"] == {}


def test_csv_rows_are_the_beats_of_their_provenance(fetched: tuple[Path, Path]) -> None:
    dest, _ = fetched
    prov = pd.read_parquet(dest / "provenance.parquet")
    rec = wfdb.rdrecord(str(SHARED / "mitdb" / "114"), channel_names=["MLII"])
    samples, _ = _annotated("114")
    seg = sg.extract_beats(rec.p_signal[:, 0], rec.fs, samples)
    by_sample = dict(zip(samples[seg.index].tolist(), seg.X, strict=True))
    files = {name: read_beats_csv(dest / name) for name in ("mitbih_train.csv", "mitbih_test.csv")}
    rows = prov[prov["record"] == "114"]
    for file, row, sample in rows[["file", "row", "sample"]].itertuples(index=False):
        np.testing.assert_array_equal(files[file].X[row], by_sample[sample])
    rr = rows.sort_values("sample")
    rate = np.diff(rr["sample"].to_numpy()) / 360.0
    np.testing.assert_allclose(rr["rr_post"].to_numpy()[:-1][rate < 2], rate[rate < 2])


def test_split_is_stratified_and_seeded(fetched: tuple[Path, Path]) -> None:
    dest, _ = fetched
    prov = pd.read_parquet(dest / "provenance.parquet")
    mit = prov[prov["database"] == "mitdb"]
    for label, group in mit.groupby("label"):
        share = (group["file"] == "mitbih_test.csv").mean()
        assert abs(share - 0.2) <= 1 / len(group) + 1e-9, label
    y = np.repeat(np.arange(5), [500, 30, 40, 3, 200])
    a, b, c = split_stratified(y, 0.2, 1), split_stratified(y, 0.2, 1), split_stratified(y, 0.2, 2)
    assert (a == b).all() and (a != c).any()
    assert [int(a[y == k].sum()) for k in range(5)] == [100, 6, 8, 1, 40]


def test_a_record_has_the_same_context_for_training_and_for_predict(fetched: tuple[Path, Path]) -> None:
    """The inputs preprocess builds from the fetched files (the context matrix, each beat's two-lead
    window and its features against the patient), and the ones ``heartbeat predict`` builds from the
    record itself, are the same numbers for every beat of the record."""
    from heartbeat.core.npyfile import load_npy
    from heartbeat.prepare.preprocess import context_of_files, patient_of_files
    from heartbeat.serve.inputs import read_record

    dest, _ = fetched
    files = ("mitbih_train.csv", "mitbih_test.csv")
    prov = pd.read_parquet(dest / "provenance.parquet")
    X = np.concatenate([read_beats_csv(dest / name, FILE_CLASSES[name]).X for name in files])
    training = context_of_files(prov, files, X)
    windows, features = patient_of_files(prov, load_npy(dest / "windows.npy"), files, len(X))
    rows = pd.concat([prov[prov["file"] == name].sort_values("row") for name in files], ignore_index=True)
    for record in MIT_RECORDS:
        mine = rows.index[rows["record"] == record].to_numpy()
        mine = mine[np.argsort(rows["sample"].to_numpy()[mine])]
        predict = read_record(SHARED / "mitdb" / record, peaks="annotations")
        np.testing.assert_array_equal(rows["sample"].to_numpy()[mine], predict.sample)
        np.testing.assert_array_equal(training[mine], predict.context)
        np.testing.assert_array_equal(windows[mine], predict.window)
        np.testing.assert_array_equal(features[mine], predict.patient)


def test_rerun_uses_the_cache_and_gives_identical_files(
    fetched: tuple[Path, Path], clean: Mirror, tmp_path: Path
) -> None:
    dest, cache = fetched
    assert not list(cache.rglob("*.part"))
    for record in MIT_RECORDS:
        assert (mirror_cache(cache, clean.url) / "mitdb" / f"{record}.dat").stat().st_size == (
            SHARED / "mitdb" / f"{record}.dat"
        ).stat().st_size
    assert not (
        mirror_cache(cache, clean.url) / "ptbdb" / "patient002" / "s0015lre.xyz"
    ).exists()  # only the file with lead ii
    fetch_physionet(_cfg(clean.url), 7, tmp_path, cache)
    # only the RECORDS indexes (probed at <db>/1.0.0/ first, then <db>/) are fetched again
    assert {path for path, _ in clean.requests} == {
        "/mitdb/1.0.0/RECORDS",
        "/mitdb/RECORDS",
        "/ptbdb/1.0.0/RECORDS",
        "/ptbdb/RECORDS",
    }
    for name in RAW_FILES:
        assert (tmp_path / name).read_bytes() == (dest / name).read_bytes()


# ---------------------------------------------------------------- other ways to run


def test_local_folder_and_file_url_are_read_in_place(
    fetched: tuple[Path, Path], clean: Mirror, tmp_path: Path
) -> None:
    dest, _ = fetched
    for mirror in (str(clean.root), clean.root.as_uri()):
        out, cache = tmp_path / "out", tmp_path / "cache"
        fetch_physionet(_cfg(mirror), 7, out, cache)
        assert not cache.exists() or not any(cache.rglob("*"))
        assert (out / "mitbih_test.csv").read_bytes() == (dest / "mitbih_test.csv").read_bytes()
    assert clean.requests == []


def test_versioned_layout_is_found(clean: Mirror, tmp_path: Path) -> None:
    versioned = tmp_path / "mirror"
    for db in ("mitdb", "ptbdb"):
        (versioned / db).mkdir(parents=True)
        (versioned / db / "1.0.0").symlink_to(clean.root / db)
    fetch_physionet(_cfg(str(versioned), mitdb_records=["114"]), 0, tmp_path / "out", tmp_path / "cache")
    with pytest.raises(SourceError, match="no RECORDS index"):
        fetch_physionet(_cfg(str(versioned), mitdb_version=""), 0, tmp_path / "out2", tmp_path / "cache")


def test_missing_mlii_without_fallback_skips_the_record(clean: Mirror, tmp_path: Path) -> None:
    cfg = _cfg(str(clean.root), mitdb_records=["102", "114"], mitdb_fallback_lead=None)
    fetch_physionet(cfg, 0, tmp_path, tmp_path / "cache")
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s["record"] for s in report["skipped"]] == ["102"]
    assert "MLII" in report["skipped"][0]["reason"]
    assert set(pd.read_parquet(tmp_path / "provenance.parquet")["record"]) >= {"114"}


def test_detector_mode_labels_detections_from_nearby_annotations(clean: Mirror, tmp_path: Path) -> None:
    fetch_physionet(
        _cfg(str(clean.root), peaks="detector", mitdb_records=["114"]), 0, tmp_path, tmp_path / "c"
    )
    prov = pd.read_parquet(tmp_path / "provenance.parquet")
    ours = prov[prov["record"] == "114"]
    samples, symbols = _annotated("114")
    nearest = np.abs(ours["sample"].to_numpy()[:, None] - samples[None, :]).argmin(axis=1)
    assert (np.abs(samples[nearest] - ours["sample"].to_numpy()) <= 0.150 * 360).all()
    assert (symbols[nearest] == ours["symbol"].to_numpy()).all()
    assert 0.4 * samples.size < len(ours) < samples.size
    score = json.loads((tmp_path / "report.json").read_text())["mitdb"]["records"]["114"]["detector"]
    assert score["positive_predictivity"] > 0.95


def test_no_healthy_control_is_a_clear_error(clean: Mirror, tmp_path: Path) -> None:
    cfg = _cfg(str(clean.root), mitdb_records=["114"], ptbdb_records=["patient001/s0010_re"])
    with pytest.raises(
        DataError, match=r"ptbdb_normal\.csv: no healthy-control beats.*Myocardial infarction"
    ):
        fetch_physionet(cfg, 0, tmp_path / "out", tmp_path / "cache")
    assert not (tmp_path / "out" / "mitbih_train.csv").exists()


def test_unknown_record_name_is_a_clear_error(clean: Mirror, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"mitdb_records: 999 not in the RECORDS index"):
        fetch_physionet(_cfg(clean.url, mitdb_records=["999"]), 0, tmp_path, tmp_path / "cache")


# ---------------------------------------------------------------- faults


def _fault_run(mirror: Mirror, tmp_path: Path) -> None:
    cfg = _cfg(mirror.url, mitdb_records=["114"], ptbdb_records=[HEALTHY, "patient002/s0015lre"])
    fetch_physionet(cfg, 0, tmp_path / "out", tmp_path / "cache")


def _assert_not_trusted(cache: Path, relpath: str, size: int) -> None:
    """Under its final name the file is either absent or complete: a .part is never read."""
    final = cache / relpath
    assert not final.exists() or final.stat().st_size == size


@pytest.mark.parametrize("path", ["/mitdb/114.dat", "/mitdb/114.hea", "/mitdb/114.atr"])
def test_404_names_the_record(clean: Mirror, tmp_path: Path, path: str) -> None:
    clean.faults[path] = "404"
    with pytest.raises(SourceError, match=r"^mitdb record 114: .*HTTP 404"):
        _fault_run(clean, tmp_path)
    assert not (mirror_cache(tmp_path / "cache", clean.url) / path.lstrip("/")).exists()


def test_truncated_dat_names_the_record_and_leaves_nothing(clean: Mirror, tmp_path: Path) -> None:
    clean.faults["/mitdb/114.dat"] = "truncated"
    with pytest.raises(DataError, match=r"^mitdb record 114: .*975000 bytes, expected 1950000"):
        _fault_run(clean, tmp_path)
    dat = mirror_cache(tmp_path / "cache", clean.url) / "mitdb" / "114.dat"
    assert not dat.exists() and not part_path(dat).exists()
    clean.faults.clear()
    _fault_run(clean, tmp_path)  # the next run fetches it again and succeeds
    assert dat.stat().st_size == 1_950_000


def test_truncated_dat_in_a_local_mirror_names_the_record(clean: Mirror, tmp_path: Path) -> None:
    local = tmp_path / "local"
    (local / "mitdb").mkdir(parents=True)
    for ext in ("hea", "atr"):
        (local / "mitdb" / f"114.{ext}").symlink_to(SHARED / "mitdb" / f"114.{ext}")
    (local / "mitdb" / "114.dat").write_bytes((SHARED / "mitdb" / "114.dat").read_bytes()[:1000])
    (local / "mitdb" / "RECORDS").write_text("114\n")
    with pytest.raises(DataError, match=r"^mitdb record 114: .*114\.dat: 1000 bytes.*1950000"):
        fetch_physionet(_cfg(str(local)), 0, tmp_path / "out", tmp_path / "cache")


def test_header_that_does_not_parse_names_the_record(clean: Mirror, tmp_path: Path) -> None:
    clean.faults["/mitdb/114.hea"] = "bad-header"
    with pytest.raises(DataError, match=r"^mitdb record 114: header 114\.hea does not parse"):
        _fault_run(clean, tmp_path)
    assert not (mirror_cache(tmp_path / "cache", clean.url) / "mitdb" / "114.hea").exists()


def test_cached_header_that_went_bad_is_fetched_again(
    fetched: tuple[Path, Path], clean: Mirror, tmp_path: Path
) -> None:
    _fault_run(clean, tmp_path)
    header = mirror_cache(tmp_path / "cache", clean.url) / "mitdb" / "114.hea"
    header.write_text("garbage\n")
    _fault_run(clean, tmp_path)
    assert header.read_text().startswith("114 2 360")


def test_server_cutting_off_names_the_record_and_next_run_recovers(clean: Mirror, tmp_path: Path) -> None:
    clean.faults["/mitdb/114.dat"] = "cut"
    with pytest.raises(
        SourceError, match=r"^mitdb record 114: .*closed the connection after 975000 of 1950000"
    ):
        _fault_run(clean, tmp_path)
    _assert_not_trusted(mirror_cache(tmp_path / "cache", clean.url), "mitdb/114.dat", 1_950_000)
    assert not (mirror_cache(tmp_path / "cache", clean.url) / "mitdb" / "114.dat").exists()
    assert part_path(
        mirror_cache(tmp_path / "cache", clean.url) / "mitdb" / "114.dat"
    ).exists()  # kept, to resume from
    clean.faults["/mitdb/114.dat"] = "cut-once"  # a transient cut: the retry succeeds
    _fault_run(clean, tmp_path)
    assert (mirror_cache(tmp_path / "cache", clean.url) / "mitdb" / "114.dat").stat().st_size == 1_950_000


# ---------------------------------------------------------------- download_file on its own


class _RangeHandler(BytesHandler):
    body = bytes(range(256)) * 400
    log: ClassVar[list[str | None]] = []


def test_download_resumes_a_part_file(tmp_path: Path) -> None:
    server, port = serve_handler(_RangeHandler)
    try:
        url = f"http://127.0.0.1:{port}/file.bin"
        dest = tmp_path / "file.bin"
        part_path(dest).write_bytes(_RangeHandler.body[:30_000])
        download_file(url, dest, expected_size=len(_RangeHandler.body), progress=False)
        assert dest.read_bytes() == _RangeHandler.body and not part_path(dest).exists()
        assert _RangeHandler.log == ["bytes=30000-"]
        # a complete file is not fetched again; a wrong-sized one is
        download_file(url, dest, expected_size=len(_RangeHandler.body), progress=False)
        dest.write_bytes(b"short")
        download_file(url, dest, expected_size=len(_RangeHandler.body), progress=False)
        assert dest.read_bytes() == _RangeHandler.body and _RangeHandler.log == ["bytes=30000-", None]
    finally:
        server.shutdown()
        server.server_close()


def test_download_gives_up_with_a_clear_error_when_nothing_listens(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens on this port any more
    with pytest.raises(SourceError, match=r"download failed after 3 attempts"):
        download_file(f"http://127.0.0.1:{port}/x", tmp_path / "x", retries=2, backoff_s=0.0, progress=False)
    assert not (tmp_path / "x").exists()
