"""Reliability: bad input, faults and credentials, tried for real (summary in RELIABILITY.md).

Every bad input must end in one ``<stage>: error: ...`` line naming the file, row or
key, a non-zero exit, no traceback, the previous outputs byte-for-byte unchanged and
no temporary file left behind. Stage-level tests run the stage scripts as
subprocesses in throwaway projects (``make_project``), as DVC would; the network
is a local HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import http.server
import io
import json
import os
import pickle
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np
import pytest
import yaml

from heartbeat.core import atomic
from heartbeat.core.atomic import WriteError, atomic_dir, write_json, write_npy, write_text
from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.beatcsv import format_beats_csv, write_beats_csv
from heartbeat.core.config import STAGE_SCHEMAS, DemoConfig, stage_params
from heartbeat.core.entry import _on_sigterm as entry_on_sigterm
from heartbeat.core.entry import run as entry_run
from heartbeat.core.errors import HeartbeatError, ModelError, ParamsError, SourceError
from heartbeat.core.interrupts import deferred_interrupts
from heartbeat.core.layout import RAW_FILES
from heartbeat.fetch.demo import demo_beats
from heartbeat.fetch.download import download_file, part_path
from testkit.mirrors import BytesHandler, serve_handler
from tests.conftest import ROOT, dvc, edit_params, make_project

SECRET = "kgat_f4k3T0k3n0123456789SECRET"
LEGACY_KEY = "0123456789abcdef0123456789SECRETKEY"
TMP_NAME = re.compile(r"^\..*\.(tmp|old)|\.part$")
OUTPUT_DIRS = ("data", "models", "metrics", "plots")


# ---------------------------------------------------------------- helpers


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "HEARTBEAT_LOG_LEVEL": "INFO", "TF_CPP_MIN_LOG_LEVEL": "2", "DVC_NO_ANALYTICS": "1"}
    env.update(extra)
    return env


def _stage(project: Path, stage: str, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, f"stages/{stage}.py"],
        cwd=project,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class _Ran(NamedTuple):
    returncode: int
    stderr: str


_TRAINING = {"train_mlp": "mlp_ptb", "train_resnet_ptb": "resnet_ptb", "train_resnet_mitbih": "resnet_mitbih"}


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator:
    """Run a stage script's ``main`` through ``heartbeat.core.entry.run`` in this process (no interpreter
    start-up, so a matrix of bad inputs stays fast); the subprocess tests below cover the real exit."""
    import logging

    logger = logging.getLogger("heartbeat")
    saved = (signal.getsignal(signal.SIGTERM), logger.handlers[:], logger.level, logger.propagate)

    def run(project: Path, stage: str) -> _Ran:
        monkeypatch.chdir(project)
        if stage in _TRAINING:
            from heartbeat.train.stage import run_training

            main = lambda: run_training(_TRAINING[stage])  # noqa: E731
        else:
            main = runpy.run_path(str(project / "stages" / f"{stage}.py"), run_name="stage_under_test")[
                "main"
            ]
        capsys.readouterr()
        code: int | str | None = 0
        try:
            entry_run(stage, main)
        except SystemExit as exc:
            code = exc.code
        return _Ran(int(code or 0), capsys.readouterr().err)

    yield run
    signal.signal(signal.SIGTERM, saved[0])
    logger.handlers[:], logger.level, logger.propagate = saved[1], saved[2], saved[3]


def _one_line_error(proc: subprocess.CompletedProcess[str], stage: str, *fragments: str) -> str:
    """The run failed with exactly one error line, the last one, holding every fragment; no traceback."""
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith(f"{stage}: error: ")]
    assert len(errors) == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1] == errors[0], proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def _digest(project: Path, dirs: tuple[str, ...] = OUTPUT_DIRS) -> dict[str, str]:
    out = {}
    for d in dirs:
        for p in sorted((project / d).rglob("*")):
            if p.is_file():
                out[str(p.relative_to(project))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _leftovers(project: Path) -> list[str]:
    """Temporary files or folders (atomic writes, swapped folders, partial downloads) left behind."""
    found = []
    for d in (*OUTPUT_DIRS, ".cache"):
        found += [str(p.relative_to(project)) for p in (project / d).rglob("*") if TMP_NAME.search(p.name)]
    return found


def _small_csvs() -> dict[str, str]:
    beats = demo_beats(DemoConfig(mitdb_records=2, mitdb_minutes=0.5, ptbdb_records=2, ptbdb_minutes=0.5), 5)
    return {name: format_beats_csv(b.X, b.y) for name, b in beats.items()}


def _zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project after one successful fetch (demo source): the 'previous outputs' to protect."""
    project = make_project(tmp_path_factory.mktemp("reliability") / "project")
    proc = _stage(project, "fetch")
    assert proc.returncode == 0, proc.stderr
    return project


@pytest.fixture
def project(tmp_path: Path, fetched: Path) -> Path:
    dest = tmp_path / "project"
    shutil.copytree(fetched, dest, symlinks=True)
    return dest


def _use_local(project: Path, path: Path) -> None:
    edit_params(project, {"data": {"source": "local", "local_path": str(path)}})


# ---------------------------------------------------------------- 1. bad CSVs, through the fetch stage


def _cells(text: str, row: int) -> list[str]:
    return text.splitlines()[row].split(",")


def _set_row(text: str, row: int, cells: list[str]) -> str:
    lines = text.splitlines()
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"


def _short_row(t: str) -> str:
    return _set_row(t, 3, _cells(t, 3)[:100])


def _cell(value: str, row: int = 4, col: int = 10):
    def edit(t: str) -> str:
        cells = _cells(t, row)
        cells[col] = value
        return _set_row(t, row, cells)

    return edit


def _label(value: str):
    def edit(t: str) -> str:
        cells = _cells(t, 1)
        cells[-1] = value
        return _set_row(t, 1, cells)

    return edit


BAD_CSVS = {
    # case: (file, edit, fragments of the one error line)
    "wrong column count": (
        "mitbih_train.csv",
        _short_row,
        ["mitbih_train.csv: row 4 has 100 columns, expected 188"],
    ),
    "non-numeric cell": (
        "mitbih_test.csv",
        _cell("abc"),
        ["mitbih_test.csv: row 5, column 11: 'abc' is not a number"],
    ),
    "NaN": (
        "mitbih_train.csv",
        _cell("nan"),
        ["mitbih_train.csv: row 5, column 11: 'nan' is not a finite number"],
    ),
    "inf": (
        "ptbdb_abnormal.csv",
        _cell("-inf"),
        ["ptbdb_abnormal.csv: row 5, column 11: '-inf' is not a finite"],
    ),
    "empty cell": ("mitbih_train.csv", _cell(""), ["mitbih_train.csv: row 5, column 11: '' is not a number"]),
    "value above 1": ("mitbih_train.csv", _cell("1.5"), ["row 5, column 11: value 1.5 is outside [0, 1]"]),
    "negative value": (
        "ptbdb_normal.csv",
        _cell("-0.25", 2, 0),
        ["row 3, column 1: value -0.25 is outside [0, 1]"],
    ),
    "label outside class set": (
        "mitbih_train.csv",
        _label("7"),
        ["row 2, column 188: label 7 is not in the class set"],
    ),
    "label of the other file": ("ptbdb_normal.csv", _label("1"), ["ptbdb_normal.csv: row 2", "(expected 0)"]),
    "fractional label": (
        "mitbih_test.csv",
        _label("2.5"),
        ["row 2, column 188: label 2.5 is not in the class set"],
    ),
    "empty file": ("ptbdb_normal.csv", lambda t: "", ["ptbdb_normal.csv: file is empty"]),
    "whitespace only": ("ptbdb_normal.csv", lambda t: "\n \n", ["ptbdb_normal.csv: file is empty"]),
    "header row": (
        "mitbih_train.csv",
        lambda t: ",".join(f"c{i}" for i in range(188)) + "\n" + t,
        ["mitbih_train.csv: row 1 starts with 'c0'", "no header row"],
    ),
    "saved web page": (
        "mitbih_test.csv",
        lambda t: "<!DOCTYPE html>\n<html><head><title>Kaggle</title></head><body>Sign in</body></html>\n",
        ["mitbih_test.csv: looks like an HTML page"],
    ),
    "web page without doctype": (
        "mitbih_test.csv",
        lambda t: "\n\n  <html lang='en'><body>302 Found</body></html>",
        ["mitbih_test.csv: looks like an HTML page"],
    ),
    "separated by semicolons": (
        "mitbih_train.csv",
        lambda t: t.replace(",", ";"),
        ["mitbih_train.csv: row 1 is separated by semicolons; expected commas"],
    ),
    "number too large for float32": (
        "mitbih_test.csv",
        _cell("1e39"),
        ["mitbih_test.csv: row 5, column 11: '1e39' is out of range"],
    ),
    "field too large for the csv module": (
        "ptbdb_normal.csv",
        lambda t: t.splitlines()[0] + "\n" + "5" * 200_000 + "\n" + t,
        ["ptbdb_normal.csv: row 2 is not a valid CSV row (field larger than field limit"],
    ),
    "binary garbage": (
        "ptbdb_abnormal.csv",
        lambda t: "\x00\x01\x02PK\x03\x04 garbage",
        ["ptbdb_abnormal.csv: row 1"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_CSVS))
def test_bad_csv_fails_fetch_in_one_line_and_keeps_previous_data(
    project: Path, tmp_path: Path, in_process, case: str
) -> None:
    name, edit, fragments = BAD_CSVS[case]
    folder = tmp_path / "download"
    folder.mkdir()
    for n, text in _small_csvs().items():
        (folder / n).write_text(edit(text) if n == name else text)
    _use_local(project, folder)
    before = _digest(project)
    ran = in_process(project, "fetch")
    _one_line_error(ran, "fetch", *fragments)
    if "row" in " ".join(fragments):  # a validation error names the file as data/raw, not its temp folder
        assert f"data/raw (new local data)/{name}" in ran.stderr and ".tmp" not in ran.stderr
    assert _digest(project) == before
    assert _leftovers(project) == []


def test_excel_utf8_bom_is_accepted(project: Path, tmp_path: Path, in_process) -> None:
    """Excel's "CSV UTF-8" starts the file with a byte-order mark; it is not a header row."""
    folder = tmp_path / "download"
    folder.mkdir()
    for n, text in _small_csvs().items():
        (folder / n).write_bytes(b"\xef\xbb\xbf" + text.encode())
    _use_local(project, folder)
    ran = in_process(project, "fetch")
    assert ran.returncode == 0, ran.stderr
    rows = json.loads((project / "data/raw/source.json").read_text())["rows"]["mitbih_train.csv"]
    assert rows == _small_csvs()["mitbih_train.csv"].count("\n")


def test_missing_csv_fails_fetch_and_names_it(project: Path, tmp_path: Path, in_process) -> None:
    folder = tmp_path / "download"
    folder.mkdir()
    for n, text in _small_csvs().items():
        if n != "ptbdb_abnormal.csv":
            (folder / n).write_text(text)
    _use_local(project, folder)
    before = _digest(project)
    _one_line_error(in_process(project, "fetch"), "fetch", f"{folder}: missing ptbdb_abnormal.csv")
    assert _digest(project) == before and _leftovers(project) == []


def test_local_path_that_does_not_exist(project: Path, tmp_path: Path, in_process) -> None:
    _use_local(project, tmp_path / "nowhere")
    before = _digest(project)
    _one_line_error(in_process(project, "fetch"), "fetch", "nowhere: not found; data.local_path must name")
    assert _digest(project) == before and _leftovers(project) == []


def test_bad_raw_csv_fails_preprocess_and_keeps_prepared(tmp_path: Path, fetched: Path, in_process) -> None:
    """A raw file edited (or lost) after fetch: preprocess names it and writes nothing."""
    project = tmp_path / "project"
    shutil.copytree(fetched, project, symlinks=True)
    assert in_process(project, "preprocess").returncode == 0
    before = _digest(project)
    raw = project / "data/raw/mitbih_test.csv"
    raw.write_text(_cell("nan", 7, 3)(raw.read_text()))
    _one_line_error(
        in_process(project, "preprocess"), "preprocess", "mitbih_test.csv: row 8, column 4", "finite"
    )
    raw.unlink()
    _one_line_error(
        in_process(project, "preprocess"), "preprocess", "data/raw/mitbih_test.csv: file not found"
    )
    after = _digest(project)
    del before["data/raw/mitbih_test.csv"]
    assert after == before and _leftovers(project) == []


# ---------------------------------------------------------------- 1. bad archives


def _corrupt_member(path: Path) -> Path:
    """A zip whose directory is fine but one member's compressed bytes are damaged (bad CRC or inflate)."""
    texts = _small_csvs()
    _zip(path, texts)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("mitbih_test.csv")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 50, start + 60):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _zip_twice(path: Path, name: str) -> Path:
    import warnings

    texts = _small_csvs()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate name
        for member, text in texts.items():
            zf.writestr(member, text)
        zf.writestr(name, texts["mitbih_train.csv"])
    return path


def _zip_bomb(path: Path) -> Path:
    """ptbdb_normal.csv as 52 MB (from 0.2 MB of zip) of one valid row repeated: a valid CSV, beyond any PTB file's size."""
    row = (",".join(["5.000000000000000000e-01"] * BEAT_LENGTH) + ",0.000000000000000000e+00\n").encode()
    texts = {n: t for n, t in _small_csvs().items() if n != "ptbdb_normal.csv"}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, text in texts.items():
            zf.writestr(member, text)
        with zf.open("ptbdb_normal.csv", "w") as dst:
            for _ in range(50_000_000 // (len(row) * 1000) + 1):
                dst.write(row * 1000)
    return path


BAD_ZIPS = {
    "not a zip": (
        lambda p: (p.write_bytes(b"PK\x03\x04 this is not really a zip"), p)[1],
        ["not a valid zip archive"],
    ),
    "html saved as zip": (
        lambda p: (p.write_text("<html><body>Sign in</body></html>"), p)[1],
        ["not a valid zip"],
    ),
    "truncated zip": (
        lambda p: (p.write_bytes(_zip(p, _small_csvs()).read_bytes()[:5000]), p)[1],
        ["not a valid zip archive"],
    ),
    "damaged member": (_corrupt_member, ["member mitbih_test.csv is corrupt"]),
    "missing member": (
        lambda p: _zip(p, {n: t for n, t in _small_csvs().items() if n != "ptbdb_normal.csv"}),
        ["missing ptbdb_normal.csv"],
    ),
    "member ../x": (lambda p: _zip(p, {**_small_csvs(), "../evil.csv": "x"}), ["'../evil.csv' escapes"]),
    "member a/../../x": (
        lambda p: _zip(p, {**_small_csvs(), "a/../../evil.csv": "x"}),
        ["escapes the archive"],
    ),
    "backslash member": (lambda p: _zip(p, {**_small_csvs(), "..\\evil.csv": "x"}), ["escapes the archive"]),
    # The same CSV twice: which one to use is ambiguous (train rows became the test set).
    "same name twice": (
        lambda p: _zip_twice(p, "mitbih_test.csv"),
        ["mitbih_test.csv is in the archive 2 times"],
    ),
    "same name in two folders": (
        lambda p: _zip(p, {**_small_csvs(), "old/mitbih_test.csv": _small_csvs()["mitbih_train.csv"]}),
        ["mitbih_test.csv is in the archive 2 times ('mitbih_test.csv', 'old/mitbih_test.csv')"],
    ),
    "zip bomb (52 MB of valid rows)": (
        _zip_bomb,
        ["member ptbdb_normal.csv unpacks to 51,700,000 bytes", "refusing to extract it"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_ZIPS))
def test_bad_archive_fails_fetch_and_writes_nothing(
    project: Path, tmp_path: Path, in_process, case: str
) -> None:
    make, fragments = BAD_ZIPS[case]
    (tmp_path / "dl").mkdir()
    archive = make(tmp_path / "dl" / "heartbeat.zip")
    _use_local(project, archive)
    before = _digest(project)
    _one_line_error(in_process(project, "fetch"), "fetch", "heartbeat.zip", *fragments)
    assert _digest(project) == before and _leftovers(project) == []
    # nothing escaped next to the archive, the project or its data folder
    for folder in (tmp_path, tmp_path / "dl", project, project / "data"):
        assert not (folder / "evil.csv").exists()


def test_absolute_member_is_rejected_before_anything_is_written(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "outside" / "evil.csv"
    target.parent.mkdir()
    # Put the evil member first, so that an extractor writing as it goes would already have written it.
    members = {str(target): "x", **_small_csvs()}
    archive = _zip(tmp_path / "heartbeat.zip", members)
    _use_local(project, archive)
    before = _digest(project)
    _one_line_error(_stage(project, "fetch"), "fetch", f"member {str(target)!r} escapes the archive folder")
    assert not target.exists()
    assert _digest(project) == before and _leftovers(project) == []


@pytest.mark.parametrize(
    "where", ["zip in data/raw", "folder in data/raw", "data/raw itself", "symlink into data/raw"]
)
def test_a_source_inside_the_folder_fetch_replaces_is_refused(project: Path, in_process, where: str) -> None:
    """Fetch swaps data/raw as a whole and deletes the previous one: with data.local_path in there, it
    deleted the user's archive. Now it refuses, and the archive and data/raw stay as they were."""
    raw = project / "data" / "raw"
    source = {
        "zip in data/raw": raw / "heartbeat.zip",
        "folder in data/raw": raw / "mine",
        "data/raw itself": raw,
        "symlink into data/raw": raw / "heartbeat.zip",
    }[where]
    if where.startswith(("zip", "symlink")):
        _zip(source, _small_csvs())
    elif where == "folder in data/raw":
        source.mkdir()
        for name, text in _small_csvs().items():
            (source / name).write_text(text)
    if where == "symlink into data/raw":
        (project / "dl.zip").symlink_to(source)
        source = project / "dl.zip"
    _use_local(project, source)
    before = _digest(project)
    _one_line_error(
        in_process(project, "fetch"), "fetch", "data.local_path", "is inside data/raw, which fetch replaces"
    )
    assert _digest(project) == before and _leftovers(project) == []


# ---------------------------------------------------------------- 1. params.yaml


def _write_params(tmp_path: Path, edit) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _setter(dotted: str, value: object):
    def edit(params: dict) -> None:
        *parents, leaf = dotted.split(".")
        node = params
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value

    return edit


BAD_PARAMS = [
    # (section, dotted key, value, fragment of the message); test_config.py has epochs -3, batch_size 0, epocs...
    ("train_resnet_ptb", "train_resnet_ptb.filter", 32, "train_resnet_ptb.filter: unknown key"),
    ("data", "data.demo.mitdb_recrods", 10, "data.demo.mitdb_recrods: unknown key"),
    ("data", "data.physionet.mirorr", "x", "data.physionet.mirorr: unknown key"),
    (
        "train_mlp",
        "train_mlp.epochs",
        0,
        "train_mlp.epochs: input should be greater than or equal to 1 (got 0)",
    ),
    ("train_mlp", "train_mlp.epochs", -1, "train_mlp.epochs: input should be greater than or equal to 1"),
    ("train_mlp", "train_mlp.epochs", 2.5, "train_mlp.epochs: input should be a valid integer"),
    ("train_mlp", "train_mlp.epochs", "ten", "train_mlp.epochs: input should be a valid integer"),
    ("train_mlp", "train_mlp.epochs", True, "train_mlp.epochs: true/false (or yes/no, on/off) is not valid"),
    (
        "train_mlp",
        "train_mlp.batch_size",
        0,
        "train_mlp.batch_size: input should be greater than or equal to 1",
    ),
    ("evaluate", "evaluate.batch_size", 0, "evaluate.batch_size: input should be greater than or equal to 1"),
    ("train_resnet_mitbih", "train_resnet_mitbih.batch_size", -64, "batch_size: input should be greater"),
    ("train_mlp", "train_mlp.lr", float("inf"), "train_mlp.lr: input should be a finite number"),
    ("train_mlp", "train_mlp.lr", float("nan"), "train_mlp.lr: input should be"),
    ("train_mlp", "train_mlp.hidden", "128", "train_mlp.hidden: input should be a valid list"),
    (
        "train_mlp",
        "train_mlp.hidden",
        [128, 0],
        "train_mlp.hidden.1: input should be greater than or equal to 1",
    ),
    ("train_mlp", "train_mlp.hidden", [True], "train_mlp.hidden: true/false"),
    ("train_mlp", "train_mlp.seed", -1, "train_mlp.seed: input should be greater than or equal to 0"),
    (
        "preprocess",
        "preprocess.seed",
        2**40,
        "preprocess.seed: input should be less than or equal to 4294967295",
    ),
    ("data", "data.seed", -5, "data.seed: input should be greater than or equal to 0"),
    ("export", "export.seed", -1, "export.seed: input should be greater than or equal to 0"),
    ("data", "data.demo.ptbdb_records", False, "data.demo.ptbdb_records: true/false"),
    ("preprocess", "preprocess.val_fraction", 0.9, "preprocess.val_fraction: input should be less than 0.5"),
    ("preprocess", "preprocess.augment.copies", -1, "preprocess.augment.copies: input should be greater"),
    (
        "train_resnet_ptb",
        "train_resnet_ptb.blocks",
        9,
        "train_resnet_ptb.blocks: input should be less than or equal",
    ),
    (
        "finetune_transfer",
        "finetune_transfer.freeze",
        "some",
        "finetune_transfer.freeze: 'some' is not valid",
    ),
    ("data", "data.source", "Kaggle", "data.source: 'Kaggle' is not valid; expected one of 'demo', 'local'"),
    ("data", "data.source", None, "data.source: None is not valid"),
    ("data", "data.local_path", ["a"], "data.local_path: input should be a valid string"),
    ("train_mlp", "train_mlp.class_weight", "auto", "train_mlp.class_weight: 'auto' is not valid"),
]


@pytest.mark.parametrize(
    ("section", "key", "value", "message"), BAD_PARAMS, ids=[f"{k}={v!r}" for _, k, v, _ in BAD_PARAMS]
)
def test_bad_param_names_the_key_path(
    tmp_path: Path, section: str, key: str, value: object, message: str
) -> None:
    path = _write_params(tmp_path, _setter(key, value))
    with pytest.raises(ParamsError) as err:
        stage_params(section, path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda p: p.update(train_resnet_foo={"epochs": 1}),
            "train_resnet_foo: unknown section; expected one of",
        ),
        (lambda p: p.update(train_mlp=5), "train_mlp: expected a mapping of keys, got int"),
        (lambda p: p.update(train_mlp=["epochs", 3]), "train_mlp: expected a mapping of keys, got list"),
    ],
    ids=["unknown model section", "section is a number", "section is a list"],
)
def test_bad_params_structure(tmp_path: Path, edit, message: str) -> None:
    path = _write_params(tmp_path, edit)
    with pytest.raises(ParamsError, match=re.escape(message)):
        stage_params("train_mlp", path)


def test_yaml_booleans_and_numbers_that_are_fine_still_parse(tmp_path: Path) -> None:
    """The boolean guard must not reject real bool fields or ordinary numbers."""
    bool_fields = [
        (section, name)
        for section, schema in STAGE_SCHEMAS.items()
        for name, field in schema.model_fields.items()
        if field.annotation is bool
    ]
    edits = [_setter("train_mlp.lr", 1), _setter("train_mlp.epochs", 3.0), _setter("data.seed", 2**32 - 1)]
    edits += [_setter(f"{s}.{n}", True) for s, n in bool_fields]
    path = _write_params(tmp_path, lambda p: [e(p) for e in edits])
    assert stage_params("train_mlp", path).epochs == 3
    assert stage_params("data", path).seed == 2**32 - 1
    for s, n in bool_fields:
        assert getattr(stage_params(s, path), n) is True


@pytest.mark.parametrize(
    ("stage", "key", "value", "message"),
    [
        ("fetch", "data.seed", -1, "params.yaml: data.seed: input should be greater than or equal to 0"),
        ("fetch", "data.demo.mitdb_records", True, "params.yaml: data.demo.mitdb_records: true/false"),
        (
            "preprocess",
            "preprocess.ptb_test_fraction",
            0.0,
            "preprocess.ptb_test_fraction: input should be greater",
        ),
        (
            "preprocess",
            "preprocess.seed",
            -1,
            "params.yaml: preprocess.seed: input should be greater than or equal",
        ),
        (
            "train_mlp",
            "train_mlp.hidden",
            [64, 0],
            "params.yaml: train_mlp.hidden.1: input should be greater",
        ),
        (
            "train_mlp",
            "train_mlp.seed",
            2**33,
            "params.yaml: train_mlp.seed: input should be less than or equal",
        ),
        (
            "train_mlp",
            "train_mlp.lr",
            float("inf"),
            "params.yaml: train_mlp.lr: input should be a finite number",
        ),
        # Integers beyond int64 (a traceback from numpy or TensorFlow), a layer no memory can hold.
        ("train_mlp", "train_mlp.batch_size", 10**23, "train_mlp.batch_size: is beyond the 64-bit integer"),
        ("train_mlp", "train_mlp.lr_decay_steps", 2**63, "train_mlp.lr_decay_steps: is beyond the 64-bit"),
        ("fetch", "data.demo.mitdb_records", -(2**64), "data.demo.mitdb_records: is beyond the 64-bit"),
        ("train_mlp", "train_mlp.hidden", [2**40], "train_mlp: out of memory building or training the model"),
    ],
)
def test_bad_params_stop_the_stage_at_start(
    project: Path, in_process, stage: str, key: str, value: object, message: str
) -> None:
    """At stage level: one line naming the key, nothing written. Before the config fixes, a negative
    or huge seed and a 0-unit layer crashed with a numpy/scikit-learn/Keras traceback after loading
    the data, and ``lr: .inf`` trained to NaN without a word."""
    if stage == "train_mlp":
        assert in_process(project, "preprocess").returncode == 0
    section, *rest = key.split(".")
    edit_params(project, {section: _nest(rest, value)})
    before = _digest(project)
    _one_line_error(in_process(project, stage), stage, message)
    assert _digest(project) == before and _leftovers(project) == []


def _integer_keys(model: type, prefix: str) -> list[tuple[str, bool]]:
    """(dotted key, takes a list) of every integer field of a params schema, nested sections included."""
    from pydantic import BaseModel

    keys = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += _integer_keys(ann, f"{prefix}.{name}")
        elif ann is int or "int" in repr(ann).replace("Literal", ""):
            keys.append((f"{prefix}.{name}", repr(ann).startswith("list")))
    return keys


def test_every_integer_key_refuses_a_value_beyond_int64(tmp_path: Path) -> None:
    keys = [
        (section, key) for section, model in STAGE_SCHEMAS.items() for key in _integer_keys(model, section)
    ]
    assert len(keys) > 30
    for section, (key, is_list) in keys:
        for value in (2**63, -(2**63) - 1, 10**30):
            path = _write_params(tmp_path, _setter(key, [value] if is_list else value))
            with pytest.raises(ParamsError, match=re.escape(key.split(".", 1)[1])):
                stage_params(section, path)


_ALIAS_BOMB = (
    "["
    + ", ".join(
        ['&l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        + [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    )
    + "]"
)  # 9**9 strings once expanded: its repr would be 80 MB


def _null_section(text: str, section: str) -> str:
    """``section:`` with its keys commented out, as a user switching it off would leave it."""
    lines, inside = [], False
    for line in text.splitlines():
        inside = line.startswith(f"{section}:") or (inside and (line.startswith(" ") or not line.strip()))
        lines.append(f"# {line}" if inside and line.startswith(" ") else line)
    return "\n".join(lines) + "\n"


BAD_PARAMS_FILES = {
    "not UTF-8": (
        lambda t: t.replace("# Every knob", "# Every kn\xf6b").encode("latin-1", "replace"),
        "params.yaml: not UTF-8 text (byte 0xf6 at offset 10); save it as UTF-8",
    ),
    "a key given twice": (
        lambda t: t.replace("  epochs: 40\n", "  epochs: 40\n  epochs: 1\n", 1),
        "params.yaml: duplicate key: 'epochs' at line",
    ),
    "a section given twice (resetting its other keys)": (
        lambda t: t + "\ntrain_mlp:\n  epochs: 2\n",
        "params.yaml: duplicate key: 'train_mlp' at line",
    ),
    "an integer of 5,000 digits": (
        lambda t: t.replace("  batch_size: 64\n", "  batch_size: 1" + "0" * 5000 + "\n", 1),
        "params.yaml: not usable as params (Exceeds the limit (4300 digits)",
    ),
    "an empty file": (lambda t: "", "params.yaml: is empty; it must hold the pipeline's sections"),
    "comments only": (lambda t: "# everything commented out\n", "params.yaml: is empty"),
    "a null section": (
        lambda t: _null_section(t, "train_mlp"),
        "params.yaml: train_mlp: the section is empty (null)",
    ),
    "an alias bomb": (
        lambda t: t.replace("  dropout: 0.2\n", f"  dropout: {_ALIAS_BOMB}\n", 1),
        "params.yaml: train_mlp.dropout: input should be a valid number (got [['lol', 'lol', 'lol', 'lol', ...]",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PARAMS_FILES))
def test_every_bad_params_file_is_one_params_error(project: Path, in_process, case: str) -> None:
    """A file that is not UTF-8 gave a traceback; duplicate keys and sections (which DVC refuses) and
    an empty file or section were taken silently, training with defaults; an alias bomb gave an
    80 MB message. Each is one short ParamsError line, from every section's loader and a stage."""
    edit, message = BAD_PARAMS_FILES[case]
    params = project / "params.yaml"
    text = edit((ROOT / "params.yaml").read_text(encoding="utf-8"))  # with its comments and layout
    params.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    for section in ["train_mlp"] if case == "an alias bomb" else STAGE_SCHEMAS:  # the rest: the whole file
        with pytest.raises(ParamsError) as caught:
            stage_params(section, params)
        assert "\n" not in str(caught.value) and len(str(caught.value)) < 300
    assert message in str(caught.value)
    before = _digest(project)
    _one_line_error(in_process(project, "train_mlp"), "train_mlp", message)
    assert _digest(project) == before and _leftovers(project) == []


def test_bad_input_in_a_real_stage_process(project: Path, tmp_path: Path) -> None:
    """The same checks through real processes: exit status, stderr, nothing written."""
    edit_params(project, {"data": {"seed": -1}})
    before = _digest(project)
    _one_line_error(_stage(project, "fetch"), "fetch", "params.yaml: data.seed: input should be greater")
    folder = tmp_path / "download"
    folder.mkdir()
    name, edit, fragments = BAD_CSVS["wrong column count"]
    for n, text in _small_csvs().items():
        (folder / n).write_text(edit(text) if n == name else text)
    edit_params(project, {"data": {"seed": 0, "source": "local", "local_path": str(folder)}})
    proc = _stage(project, "fetch")
    assert proc.returncode == 1
    _one_line_error(proc, "fetch", *fragments)
    assert _digest(project) == before and _leftovers(project) == []


def _nest(keys: list[str], value: object) -> object:
    return value if not keys else {keys[0]: _nest(keys[1:], value)}


# ---------------------------------------------------------------- 1. model files


def _keras_zip(path: Path, config: dict) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1", "date_saved": "2026-01-01"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", b"")
    return path


class _Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pickle_model(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps(_Payload(marker)))
    return path


def _pickle_in_zip(path: Path, marker: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", "not json")
        zf.writestr("model.weights.h5", pickle.dumps(_Payload(marker)))
        zf.writestr("model.pkl", pickle.dumps(_Payload(marker)))
    return path


def _lambda_model(path: Path, marker: Path) -> Path:
    import keras

    def side_effect(x):
        marker.touch()
        return x

    inp = keras.Input((BEAT_LENGTH,))
    out = keras.layers.Dense(5, activation="softmax")(keras.layers.Lambda(lambda x: side_effect(x) * 2)(inp))
    keras.Model(inp, out).save(path)
    marker.unlink(missing_ok=True)  # building it ran the lambda once; loading must not
    return path


def _os_system_config(path: Path, marker: Path) -> Path:
    return _keras_zip(
        path, {"module": "os", "class_name": "system", "config": {"command": f"touch {marker}"}}
    )


def _lambda_via_config(path: Path, marker: Path) -> Path:
    layer_fn = {"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}
    return _keras_zip(
        path,
        {
            "module": "keras",
            "class_name": "Sequential",
            "config": {
                "name": "s",
                "layers": [
                    {
                        "module": "keras.layers",
                        "class_name": "InputLayer",
                        "config": {"batch_shape": [None, 187]},
                    },
                    {
                        "module": "keras.layers",
                        "class_name": "Lambda",
                        "config": {
                            "name": "l",
                            "function": layer_fn,
                            "arguments": {"command": f"touch {marker}"},
                        },
                    },
                ],
            },
        },
    )


def _small_model(path: Path, input_shape: tuple[int, ...], classes: int) -> Path:
    import keras

    inp = keras.Input(input_shape)
    x = keras.layers.Flatten()(inp)
    keras.Model(inp, keras.layers.Dense(classes, activation="softmax")(x)).save(path)
    return path


BAD_MODELS = {
    "text file": (
        lambda p, m: (p.write_text("not a model\n"), p)[1],
        "not a Keras model (.keras zip archive)",
    ),
    "HTML page": (lambda p, m: (p.write_text("<html>Sign in</html>"), p)[1], "not a Keras model"),
    "empty file": (lambda p, m: (p.write_bytes(b""), p)[1], "not a Keras model"),
    "pickle renamed .keras": (_pickle_model, "not a Keras model (.keras zip archive); refusing to load it"),
    "pickle inside a zip": (_pickle_in_zip, "could not load the model"),
    "Python lambda layer": (
        _lambda_model,
        "could not load the model (Requested the deserialization of a `Lambda`",
    ),
    "os.system in config.json": (_os_system_config, "could not load the model"),
    "Lambda naming os.system": (_lambda_via_config, "could not load the model"),
    "wrong input shape": (
        lambda p, m: _small_model(p, (10,), 5),
        "takes input of shape (10,), expected (187,)",
    ),
    "2-D input": (lambda p, m: _small_model(p, (187, 2), 5), "takes input of shape (187, 2)"),
    "wrong class count": (lambda p, m: _small_model(p, (187,), 3), "predicts 3 classes, expected 5"),
}


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_bad_model_file_is_refused_without_running_code(tmp_path: Path, case: str) -> None:
    from heartbeat.model.saving import load_model

    make, message = BAD_MODELS[case]
    marker = tmp_path / "code-ran"
    path = make(tmp_path / "model.keras", marker)
    with pytest.raises(ModelError) as err:
        load_model(path, n_classes=5)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists(), "loading the model ran code from the file"


def test_truncated_model_file(tmp_path: Path) -> None:
    from heartbeat.model.saving import load_model

    good = _small_model(tmp_path / "good.keras", (187,), 5)
    load_model(good, 5)
    cut = tmp_path / "cut.keras"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelError, match="cut.keras: (not a Keras model|could not load the model)"):
        load_model(cut, 5)


SOURCE_DIRS = ("heartbeat", "stages")


def test_no_code_path_loads_pickles_or_unsafe_models() -> None:
    """A static guard: no allow_pickle=True, no safe_mode=False, no pickle/joblib/torch loads anywhere."""
    banned = re.compile(
        r"allow_pickle\s*=\s*True|safe_mode\s*=\s*False|pickle\.loads?\(|joblib\.load|torch\.load|"
        r"enable_unsafe_deserialization|yaml\.unsafe_load|(?<![\w.])(eval|exec)\("
    )
    hits = []
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                unsafe_yaml = "yaml.load(" in line and "SafeLoader" not in line
                if banned.search(line) or unsafe_yaml:
                    hits.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert hits == []
    # Every direct Keras load passes safe_mode=True (the rest go through heartbeat.model.saving.load_model),
    # and nothing imports Keras' loader under another name.
    keras_load = re.compile(r"keras\.(?:saving\.|models\.)*load_model\(")
    direct = []
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line in path.read_text(encoding="utf-8").splitlines():
                assert not re.search(r"from (tf\.)?keras[\w.]* import .*load_model", line), f"{path}: {line}"
                if keras_load.search(line):
                    direct.append(path.name)
                    assert "safe_mode=True" in line, f"{path}: {line.strip()}"
    assert "saving.py" in direct


@pytest.mark.slow
def test_pickle_model_stops_evaluate_in_one_line(tmp_path: Path, tiny_repro: Path, in_process) -> None:
    project = tmp_path / "project"
    shutil.copytree(tiny_repro, project, symlinks=True)
    marker = tmp_path / "code-ran"
    model = project / "models/resnet_ptb.keras"
    model.unlink()
    _pickle_model(model, marker)
    before = _digest(project)
    _one_line_error(in_process(project, "evaluate"), "evaluate", "models/resnet_ptb.keras: not a Keras model")
    assert not marker.exists()
    assert _digest(project) == before and _leftovers(project) == []


# ---------------------------------------------------------------- 1. non-finite numbers never pass for results


TRAINING_GONE_WRONG = {
    # A huge learning rate trained a NaN model with exit 0.
    "diverged": (
        1e30,
        "training diverged: the loss became nan at epoch 1",
        "lower train_mlp.lr in params.yaml (now 1e+30)",
    ),
    # lr 0.15 on the tiny PTB MLP keeps the loss under the divergence limit (0.3 passes it) but leaves a
    # network whose outputs ignore the beat; it was saved with exit 0.
    "collapsed": (
        0.15,
        "training collapsed: every one of the ",
        "the outputs do not depend on the beat; nothing was written; lower train_mlp.lr in params.yaml (now 0.15)",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(TRAINING_GONE_WRONG))
def test_training_gone_wrong_stops_in_one_line_and_writes_nothing(
    tmp_path: Path, tiny_repro: Path, in_process, case: str
) -> None:
    """A diverged or collapsed training run was saved with exit 0; now the stage names itself and lr,
    and writes nothing."""
    lr, head, tail = TRAINING_GONE_WRONG[case]
    project = tmp_path / "project"
    shutil.copytree(tiny_repro, project, symlinks=True)
    edit_params(project, {"train_mlp": {"lr": lr}})
    before = _digest(project)
    _one_line_error(in_process(project, "train_mlp"), "train_mlp", head, tail)
    assert _digest(project) == before and _leftovers(project) == []


def _nan_weights(model_path: Path) -> None:
    from heartbeat.model.saving import load_model, save_model

    model = load_model(model_path)
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])  # as after a divergence
    save_model(model, model_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["NaN weights", "temperature Infinity", "temperature 0", "temperature text"])
def test_non_finite_model_or_temperature_stops_evaluate(
    tmp_path: Path, tiny_repro: Path, in_process, case: str
) -> None:
    """A NaN model made evaluate crash with a traceback; a sidecar temperature of Infinity made every
    beat class 0. Both are refused in one line, and no metric or plot is written."""
    project = tmp_path / "project"
    shutil.copytree(tiny_repro, project, symlinks=True)
    sidecar = project / "models/mlp_ptb.json"
    if case == "NaN weights":
        _nan_weights(project / "models/mlp_ptb.keras")
        expected = "models/mlp_ptb.keras: the model outputs nan for beat 1"
    else:
        value = {"temperature Infinity": "Infinity", "temperature 0": "0", "temperature text": '"2"'}[case]
        sidecar.write_text(sidecar.read_text().rstrip().rstrip("}") + f', "temperature": {value}}}\n')
        expected = "models/mlp_ptb.json: temperature"
    before = _digest(project)
    _one_line_error(in_process(project, "evaluate"), "evaluate", expected)
    assert _digest(project) == before and _leftovers(project) == []


# ---------------------------------------------------------------- 2. downloads cut off mid-file


@pytest.fixture
def flaky() -> Iterator[tuple[type[BytesHandler], str]]:
    handler = type("Flaky", (BytesHandler,), {"log": [], "cuts": 10**9})
    server, port = serve_handler(handler)
    try:
        yield handler, f"http://127.0.0.1:{port}/mitdb/100.dat"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    import heartbeat.fetch.download

    waited: list[float] = []
    monkeypatch.setattr(heartbeat.fetch.download.time, "sleep", waited.append)
    return waited


def test_download_cut_every_time_fails_cleanly_and_next_run_completes(
    tmp_path: Path, flaky: tuple[type[BytesHandler], str], sleeps: list[float]
) -> None:
    handler, url = flaky
    handler.honour_range = False  # no resume possible: each attempt restarts and is cut again
    dest = tmp_path / "cache" / "100.dat"
    with pytest.raises(SourceError) as err:
        download_file(url, dest, retries=3, backoff_s=0.5, timeout_s=5, progress=False)
    message = str(err.value)
    assert "download failed after 4 attempts" in message and url in message and "\n" not in message
    assert "40000 of 153600 bytes" in message
    assert sleeps == [0.5, 1.0, 2.0]  # exponential backoff between the 4 attempts
    assert len(handler.log) == 4
    assert not dest.exists()  # nothing under the final name for the next run to trust
    assert part_path(dest).stat().st_size < len(handler.body)
    # the next run (server healthy again) does not take the partial file for the real one
    handler.cuts = 0
    assert download_file(url, dest, retries=0, progress=False).read_bytes() == handler.body
    assert not part_path(dest).exists()


def test_download_resumes_after_cuts_with_range_requests(
    tmp_path: Path, flaky: tuple[type[BytesHandler], str], sleeps: list[float]
) -> None:
    handler, url = flaky
    handler.cuts = 2
    dest = tmp_path / "100.dat"
    download_file(url, dest, expected_size=len(handler.body), retries=3, backoff_s=0.1, progress=False)
    assert dest.read_bytes() == handler.body
    assert handler.log == [None, "bytes=40000-", "bytes=80000-"]
    assert sleeps == [0.1, 0.2]


def test_download_that_ends_short_without_length_is_not_trusted(tmp_path: Path, sleeps: list[float]) -> None:
    """No Content-Length: only ``expected_size`` (from the WFDB header) can tell the file is short."""

    class NoLength(BytesHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(self.body[:1000])
            self.close_connection = True

    server, port = serve_handler(NoLength)
    try:
        dest = tmp_path / "100.dat"
        with pytest.raises(SourceError, match=r"transfer ended after 1000 of 153600 bytes"):
            download_file(
                f"http://127.0.0.1:{port}/x",
                dest,
                expected_size=153_600,
                retries=1,
                backoff_s=0,
                progress=False,
            )
        assert not dest.exists()
    finally:
        server.shutdown()
        server.server_close()


def test_download_permanent_error_is_not_retried(tmp_path: Path, sleeps: list[float]) -> None:
    class Missing(BytesHandler):
        def do_GET(self) -> None:
            type(self).log.append(self.path)
            self.send_error(404)

    Missing.log = []
    server, port = serve_handler(Missing)
    try:
        with pytest.raises(SourceError, match=r"HTTP 404"):
            download_file(f"http://127.0.0.1:{port}/x.dat", tmp_path / "x.dat", retries=4, progress=False)
        assert Missing.log == ["/x.dat"] and sleeps == []
        assert list(tmp_path.iterdir()) == []
    finally:
        server.shutdown()
        server.server_close()


def test_download_full_disk_is_reported_as_such(
    tmp_path: Path,
    flaky: tuple[type[BytesHandler], str],
    sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler, url = flaky
    handler.cuts = 0
    real_open = open

    class Full(io.FileIO):
        def write(self, b) -> int:  # type: ignore[override]
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fake_open(file, mode="r", *args, **kwargs):
        if str(file).endswith(".part"):
            return Full(file, mode.replace("b", "") or "w")
        return real_open(file, mode, *args, **kwargs)

    import builtins

    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(HeartbeatError, match="no space left on device"):
        download_file(url, tmp_path / "100.dat", retries=2, backoff_s=0.1, progress=False)
    assert sleeps == []  # a full disk is not transient


# ---------------------------------------------------------------- 2. signals


def _popen(project: Path, stage: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, f"stages/{stage}.py"],
        cwd=project,
        env=env or _env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # a test runner may start us with SIGINT ignored, which the child would inherit
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _watch(proc: subprocess.Popen[str], pattern: str) -> tuple[list[str], threading.Event]:
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if pattern in line:
                seen.set()

    threading.Thread(target=read, daemon=True).start()
    return lines, seen


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_training_keeps_previous_outputs(tmp_path: Path, tiny_repro: Path, signum: int) -> None:
    project = tmp_path / "project"
    shutil.copytree(tiny_repro, project, symlinks=True)
    edit_params(project, {"train_resnet_mitbih": {"epochs": 500, "patience": 0}})
    outputs = ["models/resnet_mitbih.keras", "models/resnet_mitbih.json", "plots/resnet_mitbih/history.csv"]
    before = _digest(project)
    proc = _popen(project, "train_resnet_mitbih")
    lines, seen = _watch(proc, "epoch 1/500")
    try:
        assert seen.wait(180), "".join(lines)
        proc.send_signal(signum)
        assert proc.wait(60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(0.2)
    stderr = "".join(lines)
    assert "train_resnet_mitbih: interrupted; previous outputs are unchanged" in stderr
    assert "Traceback" not in stderr and "epoch 500/500" not in stderr
    after = _digest(project)
    assert after == before, [k for k in outputs if after.get(k) != before.get(k)]
    assert _leftovers(project) == []
    if signum == signal.SIGTERM:
        # DVC sees the outputs exactly as its lock file recorded them, and the next repro completes
        # (of that stage: the downstream export/evaluate/report stages would only add minutes).
        edit_params(project, {"train_resnet_mitbih": {"epochs": 1, "patience": 6}})
        assert "up to date" in dvc(project, "status", "train_resnet_mitbih").stdout
        edit_params(project, {"train_resnet_mitbih": {"epochs": 2}})
        out = dvc(project, "repro", "train_resnet_mitbih").stdout
        assert "Running stage 'train_resnet_mitbih'" in out
        assert "up to date" in dvc(project, "status", "train_resnet_mitbih").stdout
        assert _digest(project)["models/resnet_mitbih.keras"] != before["models/resnet_mitbih.keras"]
        assert _leftovers(project) == []


@pytest.fixture
def python_sigint():
    """A fresh interpreter's handlers for the test: Python's own for Ctrl-C, the system's default for
    SIGTERM. A runner started in the background (``cmd &`` in a script, as CI may be) inherits SIGINT
    ignored, which is neither deferred nor raised; and an earlier test that ran a command in this
    process (``heartbeat.core.entry.guarded``) left its SIGTERM handler installed."""
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.SIGTERM: signal.signal(signal.SIGTERM, signal.SIG_DFL),
    }
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.mark.usefixtures("python_sigint")
def test_interrupts_are_held_until_a_safe_point() -> None:
    """Inside ``deferred_interrupts`` a Ctrl-C is only recorded; ``check()`` or the end of the block
    raises it, a second one is raised at once, and the handlers are put back."""
    before = signal.getsignal(signal.SIGINT)
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts() as check:
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("held")
            check()
            steps.append("not reached")
    assert steps == ["held"] and signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("held until the end")
    assert steps[-1] == "held until the end" and signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("the second one was held")
    assert steps[-1] == "held until the end" and signal.getsignal(signal.SIGINT) is before
    with deferred_interrupts() as check:
        check()  # nothing recorded: nothing raised
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.usefixtures("python_sigint")
def test_sigterm_is_deferred_only_where_it_has_a_python_handler() -> None:
    """Outside a stage SIGTERM keeps the system's default (it ends the process); under
    ``guarded`` it has the handler that turns it into KeyboardInterrupt, which is deferred too."""
    with deferred_interrupts():
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    previous = signal.signal(signal.SIGTERM, entry_on_sigterm)
    try:
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            with deferred_interrupts():
                os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is entry_on_sigterm
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("python_sigint")
def test_ctrl_c_during_training_is_raised_between_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C during ``fit`` unwinds from our callback between two steps, never from inside
    TensorFlow's own Python (the SIGSEGV instead of 130 once seen on a loaded machine)."""
    from heartbeat.core.config import TrainConfig
    from heartbeat.train import fit
    from tests.test_quality_options import _resnet, _split

    logged = fit.EpochLog.on_epoch_end

    def log_then_interrupt(self: fit.EpochLog, epoch: int, logs: dict | None = None) -> None:
        logged(self, epoch, logs)
        os.kill(os.getpid(), signal.SIGINT)  # after epoch 1's line, like the stage test

    monkeypatch.setattr(fit.EpochLog, "on_epoch_end", log_then_interrupt)
    before = signal.getsignal(signal.SIGINT)
    tr, va = _split(128, 0), _split(32, 1)
    with pytest.raises(KeyboardInterrupt) as caught:
        fit.train(_resnet(), tr, va, TrainConfig(epochs=3, batch_size=32, patience=0, lr=0.01))
    frames = [
        (Path(frame.f_code.co_filename).name, frame.f_code.co_name)
        for frame, _ in traceback.walk_tb(caught.tb)
    ]
    # recorded during epoch 1's callbacks, raised as epoch 2 begins
    assert frames[-2:] == [("fit.py", "on_epoch_begin"), ("interrupts.py", "check")], frames
    assert signal.getsignal(signal.SIGINT) is before


# ---------------------------------------------------------------- 2. full disk


def _enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _half_then_enospc(target: object) -> None:
    """Write part of the file, then fail as a full disk does."""
    Path(str(target)).write_bytes(b"half a file")
    _enospc()


@pytest.mark.parametrize("what", ["text", "json", "npy", "csv", "keras", "folder"])
def test_full_disk_while_writing_is_one_clear_error_and_keeps_the_old_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    target = tmp_path / "out" / {"npy": "X.npy", "csv": "b.csv", "keras": "m.keras"}.get(what, "o.txt")
    if what == "folder":
        target = tmp_path / "out" / "raw"
        target.mkdir(parents=True)
        (target / "old.csv").write_text("old")
    else:
        target.parent.mkdir()
        target.write_bytes(b"previous version")
    before = _digest(tmp_path, ("out",))
    if what == "text":
        monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: _half_then_enospc(self))
        call = lambda: write_text(target, "new")  # noqa: E731
    elif what == "json":
        monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: _half_then_enospc(self))
        call = lambda: write_json(target, {"a": 1})  # noqa: E731
    elif what == "npy":
        monkeypatch.setattr(atomic.np, "save", lambda f, *a, **k: _half_then_enospc(f))
        call = lambda: write_npy(target, np.zeros(3))  # noqa: E731
    elif what == "csv":
        import heartbeat.core.beatcsv

        monkeypatch.setattr(heartbeat.core.beatcsv, "format_beats_csv", _enospc)
        call = lambda: write_beats_csv(target, np.zeros((2, BEAT_LENGTH)), np.zeros(2))  # noqa: E731
    elif what == "keras":
        from heartbeat.model.saving import save_model

        class Model:
            def save(self, path: Path) -> None:
                _half_then_enospc(path)

        call = lambda: save_model(Model(), target)  # noqa: E731
    else:

        def call() -> None:
            with atomic_dir(target) as tmp:
                (tmp / "new.csv").write_text("new")
                with open(tmp / "big.csv", "wb") as fh:
                    fh.write(b"x")
                    _enospc()

    with pytest.raises(WriteError) as err:
        call()
    message = str(err.value)
    assert message.startswith(f"{target}: could not write this output (no space left on device)"), message
    assert "\n" not in message and isinstance(err.value, HeartbeatError)
    monkeypatch.undo()
    assert _digest(tmp_path, ("out",)) == before
    assert [p.name for p in (tmp_path / "out").iterdir() if TMP_NAME.search(p.name)] == []


def test_full_disk_inside_a_folder_output_names_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file written atomically inside atomic_dir's temp folder: the message names the real output."""
    target = tmp_path / "raw"
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: _enospc())
    with pytest.raises(WriteError, match=rf"^{re.escape(str(target))}: could not write this output"):
        with atomic_dir(target) as tmp:
            write_text(tmp / "source.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_read_only_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(WriteError, match=r"m\.json: could not write this output \(read-only file system\)"):
        write_json(tmp_path / "m.json", {})


def test_other_errors_inside_an_atomic_write_are_not_disguised(tmp_path: Path) -> None:
    """Only disk-full/read-only errors become WriteError; a bug still shows as itself."""
    with pytest.raises(FileNotFoundError), atomic.atomic_path(tmp_path / "x.txt"):
        open(tmp_path / "missing" / "input.csv")
    with pytest.raises(ZeroDivisionError), atomic_dir(tmp_path / "d"):
        _ = 1 / 0
    assert list(tmp_path.iterdir()) == []


def test_interrupt_between_the_two_renames_of_a_folder_output_restores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "raw"
    target.mkdir()
    (target / "a.csv").write_text("previous")
    real_replace = os.replace
    calls = []

    def replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the old folder is aside, the new one not yet in place: Ctrl-C lands here
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "a.csv").write_text("new")
    monkeypatch.undo()
    assert (target / "a.csv").read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]


_KILLED_WRITING = """
import time
from heartbeat.core.atomic import atomic_dir, atomic_path
with atomic_dir("data/raw") as tmp:
    (tmp / "mitbih_train.csv").write_bytes(b"0" * 5_000_000)
    with atomic_path("models/mlp_ptb.keras") as partial:
        partial.write_bytes(b"half a model")
        print("writing", flush=True)
        time.sleep(600)
"""

_KILLED_BETWEEN_RENAMES = """
import os, time
from heartbeat.core import atomic
real = os.replace
def replace(src, dst):
    real(src, dst)
    if os.path.basename(dst) == "x":  # data/raw is aside, the new folder not yet in its place
        print("writing", flush=True)
        time.sleep(600)
atomic.os.replace = replace
with atomic.atomic_dir("data/raw") as tmp:
    (tmp / "junk.csv").write_text("a half-finished fetch")
"""


def _killed(project: Path, script: str) -> None:
    """Run ``script`` in ``project`` and SIGKILL it once it says it is writing: nothing of its
    own cleanup runs, as after the OOM killer or a power cut."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=project,
        env=_env(PYTHONPATH=str(project)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_what_a_killed_writer_leaves_is_removed_by_the_next_run(project: Path, in_process) -> None:
    """After SIGKILL, hidden temporaries (data/.raw.*.tmp, models/.mlp_ptb.keras.*.tmp) stayed forever."""
    before = _digest(project, ("data",))
    _killed(project, _KILLED_WRITING)
    assert len(_leftovers(project)) == 2
    ran = in_process(project, "preprocess")
    assert ran.returncode == 0, ran.stderr
    assert _leftovers(project) == []
    assert "left behind by an earlier run that was killed" in ran.stderr
    assert {k: v for k, v in _digest(project, ("data",)).items() if k.startswith("data/raw")} == {
        k: v for k, v in before.items() if k.startswith("data/raw")
    }


def test_a_folder_swap_killed_between_its_renames_is_rolled_back_by_the_next_run(
    project: Path, in_process
) -> None:
    before = _digest(project, ("data",))
    _killed(project, _KILLED_BETWEEN_RENAMES)
    assert not (project / "data" / "raw").exists()  # the previous data/raw is only in .raw.*.old/x
    ran = in_process(project, "preprocess")  # a stage that reads data/raw
    assert ran.returncode == 0, ran.stderr
    assert "data/raw: restored its previous version" in ran.stderr
    assert _leftovers(project) == []
    assert {k: v for k, v in _digest(project, ("data",)).items() if k.startswith("data/raw")} == {
        k: v for k, v in before.items() if k.startswith("data/raw")
    }


def test_entry_turns_a_write_error_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    logger = logging.getLogger("heartbeat")
    saved = (signal.getsignal(signal.SIGTERM), logger.handlers[:], logger.level, logger.propagate)
    try:
        with pytest.raises(SystemExit) as exit_info:
            entry_run(
                "evaluate", lambda: _raise(WriteError(Path("metrics/x.json"), "no space left on device"))
            )
    finally:
        signal.signal(signal.SIGTERM, saved[0])
        logger.handlers[:], logger.level, logger.propagate = saved[1], saved[2], saved[3]
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "evaluate: error: metrics/x.json: could not write this output (no space left on device); nothing was "
        "replaced, the previous version (if any) is unchanged; free space or fix permissions and rerun"
    ]


def _raise(exc: BaseException) -> None:
    raise exc


class _Tmpfs:
    """A small tmpfs mounted over ``folder`` (root only); the test skips where mounting is not allowed."""

    def __init__(self, folder: Path, size_kib: int) -> None:
        self.folder, self.size_kib = folder, size_kib

    def __enter__(self) -> Path:
        if shutil.which("mount") is None or os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root and mount(8)")
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_kib}k", "tmpfs", str(self.folder)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        return self.folder

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["umount", str(self.folder)], check=True)


@pytest.mark.slow
def test_real_full_disk_while_saving_a_model(tmp_path: Path, tiny_repro: Path) -> None:
    """models/ on a tmpfs too small for a second copy of the model: Keras' save fails with ENOSPC."""
    project = tmp_path / "project"
    shutil.copytree(tiny_repro, project, symlinks=True)
    saved = tmp_path / "saved"
    shutil.copytree(project / "models", saved)
    model = saved / "resnet_mitbih.keras"
    size_kib = (model.stat().st_size + (saved / "resnet_mitbih.json").stat().st_size) // 1024 + 120
    with _Tmpfs(project / "models", size_kib):
        for name in ("resnet_mitbih.keras", "resnet_mitbih.json"):
            shutil.copy2(saved / name, project / "models" / name)
        before = _digest(project, ("models", "plots"))
        proc = _stage(project, "train_resnet_mitbih")
        after = _digest(project, ("models", "plots"))
        left = _leftovers(project)
    _one_line_error(
        proc,
        "train_resnet_mitbih",
        "models/resnet_mitbih.keras: could not write this output (no space left on device)",
    )
    assert after == before and left == []


def test_real_full_disk_during_fetch(project: Path) -> None:
    """data/ on a tmpfs with room for the old data/raw but not for a second copy."""
    saved = project.parent / "saved-raw"
    shutil.copytree(project / "data" / "raw", saved)
    used = sum(p.stat().st_size for p in saved.iterdir())
    edit_params(project, {"data": {"demo": {"mitdb_minutes": 3}}})  # a bigger new set than the old one
    with _Tmpfs(project / "data", used // 1024 + 600):
        shutil.copytree(saved, project / "data" / "raw")
        before = _digest(project, ("data",))
        proc = _stage(project, "fetch")
        after = _digest(project, ("data",))
        left = _leftovers(project)
    _one_line_error(proc, "fetch", "data/raw: could not write this output (no space left on device)")
    assert after == before and left == []


# ---------------------------------------------------------------- 3. credentials


class _Kaggle(http.server.BaseHTTPRequestHandler):
    """A fake Kaggle API behind an HTTP proxy: answers ``status`` and echoes the credential back."""

    status = 401
    seen: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        auth = self.headers.get("Authorization", "")
        type(self).seen.append(auth)
        body = json.dumps({"code": self.status, "message": f"rejected {auth} for {self.path}"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("WWW-Authenticate", auth)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _reply


def _kaggle_env(tmp_path: Path, credentials: dict[str, str], **extra: str) -> dict[str, str]:
    env = _env(HOME=str(tmp_path / "home"), KAGGLE_CONFIG_DIR=str(tmp_path / "home" / ".kaggle"))
    env["XDG_CONFIG_HOME"] = str(tmp_path / "home" / ".config")
    for var in list(env):
        if var.lower() in ("no_proxy", "http_proxy", "https_proxy", "all_proxy") or var.startswith(
            "KAGGLE_API"
        ):
            del env[var]
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        env.pop(var, None)
    env.update(credentials)
    for key, value in extra.items():
        env[key] = env[key.lower()] = value
    return env


def _secret_forms(credentials: dict[str, str]) -> list[str]:
    forms = [v for k, v in credentials.items() if k != "KAGGLE_USERNAME"]
    if "KAGGLE_KEY" in credentials:
        pair = f"{credentials.get('KAGGLE_USERNAME', '')}:{credentials['KAGGLE_KEY']}"
        forms.append(base64.b64encode(pair.encode()).decode())
    return forms


def _grep_secret(roots: list[Path], texts: list[str], forms: list[str]) -> list[str]:
    found = [f"output text holds {f[:8]}…" for f in forms for t in texts if f in t]
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{path} holds {f[:8]}…" for f in forms if f.encode() in data]
    return found


TOKEN = {"KAGGLE_API_TOKEN": SECRET}
LEGACY = {"KAGGLE_USERNAME": "someone", "KAGGLE_KEY": LEGACY_KEY}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("status", "credentials", "message"),
    [
        (401, TOKEN, "Kaggle rejected the credentials (HTTP 401)"),
        (403, {**TOKEN, **LEGACY}, "Kaggle refused access (HTTP 403)"),
        (500, LEGACY, "Kaggle download failed (HTTPError: rejected Basic *** for"),
        (None, TOKEN, "Kaggle download failed (ProxyError"),
    ],
    ids=["401-token", "403-token-and-key", "500-echoing-basic-auth", "proxy-refused"],
)
def test_failed_kaggle_fetch_never_leaks_the_credential(
    tmp_path: Path, tiny_repro: Path, status: int | None, credentials: dict[str, str], message: str
) -> None:
    project = tmp_path / "project"
    shutil.copytree(tiny_repro, project, symlinks=True)
    edit_params(project, {"data": {"source": "kaggle"}})
    handler = type("Kaggle", (_Kaggle,), {"status": status or 500, "seen": []})
    server, port = serve_handler(handler)
    try:
        if status is None:  # the real endpoint, through a proxy that refuses connections
            env = _kaggle_env(tmp_path, credentials, HTTPS_PROXY=f"http://127.0.0.1:{_closed_port()}")
        else:  # the client's LOCALHOST endpoint, through our proxy: every request reaches the fake API
            env = _kaggle_env(tmp_path, credentials, HTTP_PROXY=f"http://127.0.0.1:{port}")
            env["KAGGLE_API_ENVIRONMENT"] = "LOCALHOST"
        before = _digest(project)
        t0 = time.monotonic()
        proc = _stage(project, "fetch", env=env, timeout=120)
        elapsed = time.monotonic() - t0
        line = _one_line_error(proc, "fetch", message, "data.source=demo")
        via_dvc = subprocess.run(
            ["dvc", "repro", "fetch"], cwd=project, env=env, capture_output=True, text=True
        )
    finally:
        server.shutdown()
        server.server_close()
    assert elapsed < 60, f"fetch took {elapsed:.0f} s to fail"
    assert via_dvc.returncode != 0 and message in via_dvc.stderr + via_dvc.stdout
    if status is not None:
        assert handler.seen and all(a for a in handler.seen)  # the fake credential really went out
    forms = _secret_forms(credentials)
    texts = [proc.stdout, proc.stderr, line, via_dvc.stdout, via_dvc.stderr]
    assert _grep_secret([project, tmp_path / "home"], texts, forms) == []
    assert _digest(project) == before and _leftovers(project) == []


def test_sigterm_while_kaggle_hangs_exits_cleanly(project: Path, tmp_path: Path) -> None:
    """The kaggle client sets no timeout; a server that never answers must still be stoppable."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            accepted.set()

    threading.Thread(target=accept, daemon=True).start()
    edit_params(project, {"data": {"source": "kaggle"}})
    env = _kaggle_env(tmp_path, TOKEN, HTTP_PROXY=f"http://127.0.0.1:{listener.getsockname()[1]}")
    env["KAGGLE_API_ENVIRONMENT"] = "LOCALHOST"
    before = _digest(project)
    proc = _popen(project, "fetch", env)
    lines, _ = _watch(proc, "")
    try:
        assert accepted.wait(60), "".join(lines)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
        for conn in held:
            conn.close()
    time.sleep(0.2)
    stderr = "".join(lines)
    assert "fetch: interrupted; previous outputs are unchanged" in stderr and "Traceback" not in stderr
    assert SECRET not in stderr
    assert _digest(project) == before and _leftovers(project) == []


def test_redact_covers_token_files_and_basic_auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from heartbeat.fetch.kaggle import redact

    token_file = tmp_path / "token.txt"
    token_file.write_text(SECRET + "\n")
    (tmp_path / "kaggle").mkdir()
    (tmp_path / "kaggle" / "kaggle.json").write_text(json.dumps({"username": "u", "key": LEGACY_KEY}))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle"))
    monkeypatch.setenv("KAGGLE_API_TOKEN", str(token_file))  # kagglesdk reads the token from this file
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)
    basic = base64.b64encode(f"u:{LEGACY_KEY}".encode()).decode()
    text = redact(f"token {SECRET} key {LEGACY_KEY} header Basic {basic} bearer Bearer abcdefgh12345678")
    assert (
        SECRET not in text and LEGACY_KEY not in text and basic not in text and "abcdefgh12345678" not in text
    )
    assert text.count("***") == 4
    assert redact(f"auth={basic}&x=1") == "auth=***&x=1"  # the encoded pair, even without its header
    (tmp_path / "kaggle" / "kaggle.json").write_text("[1, 2]")  # a broken kaggle.json must not crash redact
    assert redact("nothing secret") == "nothing secret"


def test_every_raw_file_is_tried_with_bad_content() -> None:
    """Keep BAD_CSVS honest: the cases touch every one of the four files."""
    assert {name for name, _, _ in BAD_CSVS.values()} == set(RAW_FILES)
