"""The local and kaggle sources: archives, zip slip, HTTP errors, and credentials never shown."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from heartbeat.core.beatcsv import format_beats_csv
from heartbeat.core.config import DataConfig, DemoConfig
from heartbeat.core.errors import DataError, ParamsError, SourceError
from heartbeat.fetch import check_against_kaggle, fetch_source, validate_raw
from heartbeat.fetch.archive import extract_csvs
from heartbeat.fetch.demo import demo_beats
from heartbeat.fetch.kaggle import fetch_kaggle, redact

SECRET = "kgat_0123456789abcdefSECRET"


def _csv_texts() -> dict[str, str]:
    beats = demo_beats(DemoConfig(mitdb_records=2, mitdb_minutes=0.5, ptbdb_records=2, ptbdb_minutes=0.5), 3)
    return {name: format_beats_csv(b.X, b.y) for name, b in beats.items()}


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def test_local_folder_and_zip(tmp_path: Path) -> None:
    texts = _csv_texts()
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, text in texts.items():
        (folder / name).write_text(text)
    archive = _zip(tmp_path / "heartbeat.zip", {f"heartbeat/{n}": t for n, t in texts.items()})
    for i, path in enumerate((folder, archive)):
        dest = tmp_path / f"out{i}"
        dest.mkdir()
        cfg = DataConfig(source="local", local_path=str(path))
        fetch_source(cfg, dest, tmp_path / "cache")
        counts = validate_raw(dest)
        n = texts["mitbih_train.csv"].count("\n")
        assert counts["mitbih_train.csv"] == n
        warnings = check_against_kaggle(cfg, dest, counts)
        expected = f"mitbih_train.csv: {n} rows, the Kaggle set has 87,554 (-{87_554 - n:,})"
        assert any(expected in w for w in warnings), warnings


def test_local_needs_a_path(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="data.local_path"):
        fetch_source(DataConfig(source="local"), tmp_path, tmp_path)


@pytest.mark.parametrize("evil", ["../escape.csv", "/etc/evil.csv", "a/../../b.csv"])
def test_zip_slip_is_rejected_before_writing(tmp_path: Path, evil: str) -> None:
    texts = _csv_texts()
    archive = _zip(tmp_path / "evil.zip", {**texts, evil: "x"})
    dest = tmp_path / "dest" / "inner"
    dest.mkdir(parents=True)
    with pytest.raises(DataError, match="escapes the archive folder"):
        extract_csvs(archive, dest)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "dest" / "escape.csv").exists()


def test_zip_missing_member(tmp_path: Path) -> None:
    texts = _csv_texts()
    del texts["ptbdb_normal.csv"]
    archive = _zip(tmp_path / "part.zip", texts)
    with pytest.raises(DataError, match="missing ptbdb_normal.csv"):
        extract_csvs(archive, tmp_path)


def test_corrupt_zip(tmp_path: Path) -> None:
    archive = tmp_path / "bad.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(DataError, match="not a valid zip archive"):
        extract_csvs(archive, tmp_path)


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status


class _HTTPError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"{status} Client Error for url https://www.kaggle.com/api/v1?token={SECRET}")
        self.response = _Response(status)


class _FakeApi:
    """Stands in for kaggle.KaggleApi at the boundary where the client raises HTTP errors."""

    def __init__(self, status: int | None, texts: dict[str, str] | None = None) -> None:
        self.status = status
        self.texts = texts

    def authenticate(self) -> None:
        pass

    def dataset_download_files(self, dataset: str, path: str, **kwargs: object) -> None:
        assert dataset == "shayanfazeli/heartbeat"
        if self.status is not None:
            raise _HTTPError(self.status)
        _zip(Path(path) / "heartbeat.zip", self.texts or {})


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-dir"))
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    monkeypatch.setenv("KAGGLE_API_TOKEN", SECRET)


@pytest.mark.parametrize(
    ("status", "hint"),
    [(401, "rejected the credentials"), (403, "refused access"), (404, "no dataset"), (429, "rate-limiting")],
)
def test_kaggle_http_errors(tmp_path: Path, fake_credentials: None, status: int, hint: str) -> None:
    with pytest.raises(SourceError) as err:
        fetch_kaggle(tmp_path / "dest", tmp_path / "cache", api_factory=lambda: _FakeApi(status))
    message = str(err.value)
    assert hint in message and f"HTTP {status}" in message
    assert "data.source=demo" in message
    assert SECRET not in message


def test_kaggle_other_error_is_redacted(tmp_path: Path, fake_credentials: None) -> None:
    class Boom(_FakeApi):
        def dataset_download_files(self, dataset: str, path: str, **kwargs: object) -> None:
            raise ConnectionError(f"connection reset while sending key={SECRET}")

    with pytest.raises(SourceError) as err:
        fetch_kaggle(tmp_path / "d", tmp_path / "c", api_factory=lambda: Boom(None))
    assert SECRET not in str(err.value) and "***" in str(err.value)
    assert redact(f"a {SECRET} b") == "a *** b"


def test_kaggle_without_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "empty"))
    with pytest.raises(
        SourceError,
        match=r"no Kaggle credentials found: set KAGGLE_API_TOKEN.*dvc exp run -S data.source=demo",
    ):
        fetch_kaggle(tmp_path / "d", tmp_path / "c")


def test_kaggle_download_checks_counts(tmp_path: Path, fake_credentials: None) -> None:
    texts = _csv_texts()
    dest = tmp_path / "dest"
    dest.mkdir()
    fetch_kaggle(dest, tmp_path / "cache", api_factory=lambda: _FakeApi(None, texts))
    counts = validate_raw(dest)
    n = texts["mitbih_train.csv"].count("\n")
    with pytest.raises(DataError, match=f"incomplete or not the Kaggle set: mitbih_train.csv: {n} rows"):
        check_against_kaggle(DataConfig(source="kaggle"), dest, counts)


def test_sha_difference_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import heartbeat.fetch.kaggle_set as known

    texts = _csv_texts()
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    counts = validate_raw(tmp_path)
    monkeypatch.setattr(known, "KAGGLE_ROWS", counts)
    warnings = check_against_kaggle(DataConfig(source="kaggle"), tmp_path, counts)
    assert len(warnings) == 4 and all("sha256" in w for w in warnings)
    assert np.all([("differs from the Kaggle original" in w) for w in warnings])
