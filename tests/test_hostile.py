"""Hostile inputs, one class of failure per section (the table is in RELIABILITY.md).

Each class came out of an adversarial pass: a user's file destroyed by ``-o``, a size claimed by an
input and believed, a pipe read twice, a non-finite number passed off as a result, a cache trusted
without validation, a crash's leftovers, a params.yaml that gave a traceback. The tests try each
class with the hostile input itself and with its neighbours, through the public functions, the
``heartbeat`` command and the stage scripts.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from heartbeat.core.beat_spec import BEAT_LENGTH
from heartbeat.core.beatcsv import format_beats_csv, read_beats_csv
from heartbeat.core.errors import DataError
from heartbeat.core.layout import FILE_CLASSES
from tests.conftest import ROOT

MIT = (0, 1, 2, 3, 4)


def _rows(n: int = 4, seed: int = 0, labelled: bool = True) -> str:
    rng = np.random.default_rng(seed)
    X = rng.random((n, BEAT_LENGTH)).astype(np.float32)
    return format_beats_csv(X, np.arange(n) % 5 if labelled else None)


# ---------------------------------------------------------------- 9, 11. the CSV validator's format


@pytest.mark.parametrize("engine", ["auto", "pandas"])
@pytest.mark.parametrize("token", ["True", "False", "true", "FALSE", "yes", "0_1", "\u0661", "0x1"])
@pytest.mark.parametrize("where", ["one cell", "a whole sample column", "the whole label column"])
def test_words_and_foreign_spellings_are_not_numbers(tmp_path, engine: str, token: str, where: str) -> None:
    """pandas reads a column of True/False as 1/0 and Python's float() reads 0_1 and Arabic digits:
    none of them is a number in a beat CSV, on either reader."""
    lines = [line.split(",") for line in _rows().splitlines()]
    if where == "one cell":
        lines[2][7] = token
    for row in lines if where != "one cell" else []:
        row[7 if where == "a whole sample column" else BEAT_LENGTH] = token
    path = tmp_path / "beats.csv"
    path.write_text("\n".join(",".join(row) for row in lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"row \d+, column \d+: .* is not a number"):
        read_beats_csv(path, MIT, engine=engine)


@pytest.mark.parametrize("labelled", [True, None])
@pytest.mark.parametrize("engine", ["auto", "pandas"])
def test_mixed_row_widths_name_the_row(tmp_path, engine: str, labelled: bool | None) -> None:
    """A file mixing rows with and without a label column: the row that differs from row 1 is named."""
    with_label, without = _rows(3).splitlines(), _rows(3, labelled=False).splitlines()
    path = tmp_path / "mixed.csv"
    path.write_text(
        "\n".join([*without, with_label[0]] if labelled is None else [*with_label, without[1]]) + "\n"
    )
    expected = r"row 4 has 188 columns but row 1 has 187" if labelled is None else r"row 4 has 187 columns"
    with pytest.raises(DataError, match=expected):
        read_beats_csv(path, MIT, labelled=labelled, engine=engine)


# ---------------------------------------------------------------- helpers for heartbeat predict


def tiny_onnx(path: Path, classes: int = 5, weight: float = 0.01, nan: bool = False) -> Path:
    """A softmax(xW + b) model as an ONNX file: loads in well under a second, with no TensorFlow."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    W = (np.random.default_rng(0).standard_normal((BEAT_LENGTH, classes)) * weight).astype(np.float32)
    if nan:
        W[3, 1] = np.nan  # a diverged model: every output NaN
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["beats", "W"], ["z"]),
            helper.make_node("Add", ["z", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["proba"], axis=-1),
        ],
        "tiny",
        [helper.make_tensor_value_info("beats", TensorProto.FLOAT, [None, BEAT_LENGTH])],
        [helper.make_tensor_value_info("proba", TensorProto.FLOAT, [None, classes])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(np.zeros(classes, np.float32), "b")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_onnx(tmp_path / "tiny.onnx")


@pytest.fixture
def beats_csv(tmp_path: Path) -> Path:
    """200 labelled beats: 940 KB, far more than the 64 KiB a reader sniffs."""
    path = tmp_path / "beats.csv"
    path.write_text(_rows(200))
    return path


def _predict(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    from heartbeat.serve.cli import main

    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert len(lines) == 1 and lines[0].startswith("heartbeat predict: error: "), err
    return lines[0]


def _cli(*argv: object, **kwargs) -> subprocess.Popen:
    """``heartbeat predict`` as a process of its own (standard streams as given in ``kwargs``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "heartbeat.serve.cli", "predict", *map(str, argv)]
    return subprocess.Popen(cmd, env=env, **kwargs)


# ---------------------------------------------------------------- 1. outputs never destroy what the user owns


@pytest.mark.parametrize("spelling", ["same path", "another spelling", "hard link", "symlink", "the model"])
def test_output_that_is_an_input_is_refused(capsys, tmp_path, model, beats_csv, spelling: str) -> None:
    before = {p: p.read_bytes() for p in (beats_csv, model)}
    out = {
        "same path": beats_csv,
        "another spelling": tmp_path / "sub" / ".." / "beats.csv",
        "hard link": tmp_path / "link.csv",
        "symlink": tmp_path / "symlink.csv",
        "the model": model,
    }[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "hard link":
        os.link(beats_csv, out)
    if spelling == "symlink":
        out.symlink_to(beats_csv)
    code, stdout, err = _predict(capsys, "-m", model, beats_csv, "-o", out)
    assert code == 2 and "is one of the inputs" in _one_line(err) and stdout == ""
    assert {p: p.read_bytes() for p in before} == before


def test_output_keeps_the_files_mode_and_writes_through_a_symlink(capsys, tmp_path, model, beats_csv) -> None:
    private = tmp_path / "private.csv"
    private.write_text("old rows\n")
    private.chmod(0o600)
    link = tmp_path / "latest.csv"
    link.symlink_to(private)
    code, _, err = _predict(capsys, "-q", "-m", model, beats_csv, "-o", link)
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == private  # the link is still a link
    assert private.read_text().startswith("beat,label,predicted,p_N")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
    code, _, _ = _predict(capsys, "-q", "-m", model, beats_csv, "-o", private)  # the file itself
    assert code == 0 and stat.S_IMODE(private.stat().st_mode) == 0o600


def _null_device(tmp_path: Path) -> Path:
    """A character device to write to. As root, a null device of our own (were a regression to
    replace it, only this copy would go), else /dev/null, which only root could replace."""
    if os.geteuid() != 0:
        return Path(os.devnull)
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError:
        pytest.skip("running as root without the right to make a device node")
    return node


def test_a_device_is_written_in_place_never_replaced(capsys, tmp_path, model, beats_csv) -> None:
    device = _null_device(tmp_path)
    code, stdout, err = _predict(capsys, "-q", "-m", model, beats_csv, "-o", device)
    assert code == 0 and stdout == "", err
    assert stat.S_ISCHR(os.stat(device).st_mode), "the device was replaced by a regular file"
    # /dev/stdout, /dev/fd/N: the descriptor itself (/proc/self/fd/1 here, where nothing can be created)
    code, stdout, err = _predict(capsys, "-q", "-m", model, beats_csv, "-o", "/proc/self/fd/1")
    assert code == 0 and stdout.count("\n") == 201, err
    code, _, err = _predict(capsys, "-m", model, beats_csv, "-o", tmp_path)
    assert code == 2 and "is a folder" in _one_line(err)


def test_a_fifo_is_written_in_place_never_replaced(capsys, tmp_path, model, beats_csv) -> None:
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    code, _, err = _predict(capsys, "-q", "-m", model, beats_csv, "-o", fifo)
    assert code == 0, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced by a regular file"
    reader.join(timeout=10)
    assert got and got[0].decode().count("\n") == 201


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_full_stdout_is_one_line_and_a_failure(tmp_path, model, beats_csv) -> None:
    with open("/dev/full", "wb") as full:
        proc = _cli("-q", "-m", model, beats_csv, stdout=full, stderr=subprocess.PIPE, text=True)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "standard output: could not write the rows (no space left on device)" in _one_line(err)


def test_closed_pipe_is_one_line_and_a_failure(model, beats_csv) -> None:
    """``heartbeat predict ... | head -0``: the reader left before the rows were written."""
    proc = _cli("-q", "-m", model, beats_csv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 1
    assert "standard output: could not write the rows (the reader closed the pipe)" in _one_line(err)


# ---------------------------------------------------------------- 5. pipes keep every byte


PIPED = {
    "/dev/stdin": ("csv", ["--input-kind", "csv", "/dev/stdin"]),
    "-": ("csv", ["--input-kind", "csv", "-"]),
    "- (kind from the bytes)": ("csv", ["-"]),
    ".npy on -": ("npy", ["-"]),
    "process substitution": ("csv", ["<(cat)"]),
}


@pytest.mark.parametrize("how", list(PIPED))
def test_input_from_a_pipe_keeps_every_byte(tmp_path, model, beats_csv, how: str) -> None:
    """``cat beats.csv | heartbeat predict --input-kind csv /dev/stdin`` and its neighbours give the rows
    that the file itself gives, every one of them."""
    kind, args = PIPED[how]
    source = beats_csv
    if kind == "npy":
        source = tmp_path / "beats.npy"
        np.save(source, read_beats_csv(beats_csv, MIT).X)
    run = {"env": {**os.environ, "PYTHONPATH": str(ROOT)}, "capture_output": True, "timeout": 120}
    cli = [sys.executable, "-m", "heartbeat.serve.cli", "predict", "-q", "-m", str(model)]
    expected = subprocess.run([*cli, str(source)], check=True, **run).stdout
    assert expected.count(b"\n") == 201
    if how == "process substitution":  # bash hands the command /dev/fd/63, a pipe
        piped = subprocess.run(
            ["bash", "-c", " ".join(f"'{a}'" for a in cli) + " <(cat)"], input=source.read_bytes(), **run
        )
    else:
        piped = subprocess.run([*cli, *args], input=source.read_bytes(), **run)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == expected


def _feed(fifo: Path, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError):  # the reader stops at its cap
        fifo.write_bytes(data)


def test_a_fifo_is_read_once_and_a_flood_is_capped(tmp_path, beats_csv, monkeypatch) -> None:
    from heartbeat.core import streams

    fifo = tmp_path / "beats.fifo"
    os.mkfifo(fifo)
    for limit, outcome in ((None, "beats"), (100_000, "capped")):
        if limit is not None:
            monkeypatch.setattr(streams, "MAX_STREAM_BYTES", limit)
        writer = threading.Thread(target=_feed, args=(fifo, beats_csv.read_bytes()), daemon=True)
        writer.start()
        if outcome == "beats":
            beats = read_beats_csv(fifo, MIT)
            assert len(beats) == 200
            np.testing.assert_array_equal(beats.X, read_beats_csv(beats_csv, MIT).X)
        else:
            with pytest.raises(DataError, match=r"beats\.fifo: sent more than 100,000 bytes through a pipe"):
                read_beats_csv(fifo, MIT)
        writer.join(timeout=10)


# ---------------------------------------------------------------- 4. untrusted sizes are never believed


def test_blank_lines_at_the_start_do_not_inflate_the_allocation(tmp_path) -> None:
    """The row count is estimated from the first 64 KiB; a run of blank lines there made it
    allocate 700 times the file (a MemoryError on larger files). It is capped by the file size."""
    import tracemalloc

    rows = _rows(1000).encode().split(b"\n")
    path = tmp_path / "blank.csv"
    path.write_bytes(rows[0] + b"\n" * 60_000 + b"\n".join(rows[1:]))
    tracemalloc.start()
    try:
        beats = read_beats_csv(path, MIT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(beats) == 1000
    assert peak < 8 * path.stat().st_size, f"peak {peak:,} bytes for a {path.stat().st_size:,}-byte file"


def _npy_claiming(path: Path, shape: tuple[int, ...], data: bytes = b"") -> Path:
    """A .npy whose header claims ``shape`` (float32) followed by ``data``, however little."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": shape})
        fh.write(data)
    return path


@pytest.mark.parametrize("shape", [(10**12, BEAT_LENGTH), (2**40,), (50, BEAT_LENGTH)])
def test_npy_header_claiming_more_than_the_file_holds(capsys, tmp_path, model, shape) -> None:
    """``np.load`` allocates what the header claims before reading: 100 bytes claiming 748 TB was a
    MemoryError. The claim is checked against the file's size first, for predict and for the stages."""
    from heartbeat.prepare.arrays import load_split

    path = _npy_claiming(tmp_path / "huge.npy", shape, b"\0" * 400)
    code, _, err = _predict(capsys, "-m", model, path)
    assert code == 2
    assert "huge.npy: its header claims an array of shape" in _one_line(err) and "holds 400 bytes" in err
    split = tmp_path / "prepared"
    split.mkdir()
    _npy_claiming(split / "X_test.npy", shape, b"\0" * 400)
    np.save(split / "y_test.npy", np.zeros(3, np.int64))
    for mmap in (False, True):
        with pytest.raises(DataError, match=r"X_test\.npy: its header claims an array of shape"):
            load_split(split, "test", mmap=mmap)


# ---------------------------------------------------------------- 3. non-finite numbers never pass for results


def test_predict_refuses_a_model_whose_outputs_are_not_finite(capsys, tmp_path, beats_csv) -> None:
    """It printed class 0 for every beat, with blank probabilities."""
    nan_model = tiny_onnx(tmp_path / "diverged.onnx", nan=True)
    code, out, err = _predict(capsys, "-m", nan_model, beats_csv)
    assert code == 2 and out == ""
    assert "diverged.onnx: the model outputs nan for beat 1 (200 of 200 beats" in _one_line(err)


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "0", "-1", "1e9", '"2.5"', "true"])
def test_predict_refuses_a_stored_temperature_training_cannot_give(
    capsys, tmp_path, beats_csv, value
) -> None:
    """A sidecar temperature of Infinity flattened every probability to 1/5: every beat was N."""
    from heartbeat.model.architectures import build_mlp
    from heartbeat.model.saving import save_model

    model = tmp_path / "mlp.keras"
    save_model(build_mlp(5, [4]), model)
    model.with_suffix(".json").write_text(f'{{"model": "mlp", "temperature": {value}}}\n')
    code, out, err = _predict(capsys, "-m", model, beats_csv)
    assert code == 2 and out == ""
    assert "mlp.json: temperature" in _one_line(err) and "is not a number in [0.05, 20]" in err


# ---------------------------------------------------------------- 10. integrity of what predict serves


def _exported(tmp_path: Path) -> tuple[Path, Path]:
    """models/tiny.keras and its export models/export/tiny.onnx, with the export stage's manifest."""
    import json

    from heartbeat.core.hashing import sha256_file

    keras_path = tmp_path / "models" / "tiny.keras"
    (tmp_path / "models" / "export").mkdir(parents=True)
    keras_path.write_bytes(b"stands in for the trained model: only its sha256 is read here")
    onnx_path = tiny_onnx(tmp_path / "models" / "export" / "tiny.onnx")
    entry = {"sha256": sha256_file(keras_path), "files": ["tiny.onnx"]}
    entry["file_sha256"] = {"tiny.onnx": sha256_file(onnx_path)}
    (onnx_path.parent / "manifest.json").write_text(json.dumps({"models": {"tiny": entry}}))
    return keras_path, onnx_path


def test_a_damaged_export_is_refused(capsys, tmp_path, beats_csv) -> None:
    """One flipped byte in a weight still loads and serves wrong probabilities: the manifest's hash decides."""
    keras_path, onnx_path = _exported(tmp_path)
    for model in (["-m", onnx_path], ["-m", keras_path, "--backend", "onnx"]):
        code, _, err = _predict(capsys, *model, beats_csv)
        assert code == 0, err
    data = bytearray(onnx_path.read_bytes())
    weights = (np.random.default_rng(0).standard_normal((BEAT_LENGTH, 5)) * 0.01).astype(np.float32).tobytes()
    data[data.index(weights) + 401] ^= 0x40
    onnx_path.write_bytes(bytes(data))
    for model in (["-m", onnx_path], ["-m", keras_path, "--backend", "onnx"]):
        code, out, err = _predict(capsys, *model, beats_csv)
        assert code == 2 and out == ""
        assert "tiny.onnx: its sha256 differs from the one in" in _one_line(err)


def _record(folder: Path, name: str = "rec", fs: float = 360.0) -> Path:
    """A synthetic 30 s MLII record (about 1.2 beats per second) written with wfdb."""
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(30 * fs)) / fs
    phase = (t * 1.2) % 1.0
    ecg = np.exp(-(((phase - 0.3) / 0.012) ** 2)) + 0.15 * np.exp(-(((phase - 0.6) / 0.06) ** 2))
    wfdb.wrsamp(
        name, fs=fs, units=["mV"], sig_name=["MLII"], p_signal=ecg[:, None], fmt=["16"], write_dir=str(folder)
    )
    return folder / name


@pytest.mark.parametrize(
    ("signal_file", "expected"),
    [
        (".", "names the signal file '.', which is not a file name"),
        ("sub", "lead MLII is in sub, which is not a file next to the header"),
        ("gone.dat", "lead MLII is in gone.dat, which is missing next to the header"),
    ],
)
def test_a_header_naming_a_folder_as_its_signal_file(capsys, tmp_path, model, signal_file, expected) -> None:
    record = _record(tmp_path / "db")
    (tmp_path / "db" / "sub").mkdir()
    header = record.with_suffix(".hea")
    header.write_text(header.read_text().replace("rec.dat", signal_file))
    code, _, err = _predict(capsys, "-m", model, record)
    assert code == 2
    line = _one_line(err)
    assert f"{record}: " in line and expected in line


def test_a_physionet_header_naming_a_folder_names_the_record(tmp_path) -> None:
    from heartbeat.core.config import PhysionetConfig
    from heartbeat.fetch.physionet import fetch_physionet

    record = _record(tmp_path / "mirror" / "mitdb", "100")
    (record.parent / "RECORDS").write_text("100\n")
    header = record.with_suffix(".hea")
    header.write_text(header.read_text().replace("100.dat", "."))
    cfg = PhysionetConfig(mirror=str(tmp_path / "mirror"), mitdb_version="", retries=0)
    with pytest.raises(DataError, match=r"^mitdb record 100: header 100\.hea names the signal file '\.'"):
        fetch_physionet(cfg, 0, tmp_path / "out", tmp_path / "cache")


# ---------------------------------------------------------------- 11. messages name their subject


@pytest.mark.parametrize("damage", ["random bytes", "positions beyond the signal"])
def test_garbage_annotations_name_the_record(capsys, tmp_path, model, damage) -> None:
    import wfdb

    record = _record(tmp_path / "db")
    atr = record.with_suffix(".atr")
    if damage == "random bytes":
        atr.write_bytes(np.random.default_rng(3).bytes(3000))
    else:
        samples = np.array([100, 400, 10**9])
        wfdb.wrann("rec", "atr", samples, symbol=["N"] * 3, write_dir=str(record.parent))
    code, _, err = _predict(capsys, "-m", model, record)
    assert code == 2
    line = _one_line(err)
    assert line.startswith(f"heartbeat predict: error: {record}: annotations rec.atr"), line


@pytest.mark.parametrize("fs", ["0.5", "0", "1e9", "abc"])
def test_a_bad_sampling_rate_names_the_record(capsys, tmp_path, model, fs) -> None:
    record = _record(tmp_path / "db")
    header = record.with_suffix(".hea")
    header.write_text(header.read_text().replace(" 360 ", f" {fs} ", 1))
    code, _, err = _predict(capsys, "-m", model, record)
    assert code == 2 and _one_line(err).startswith(f"heartbeat predict: error: {record}: ")


def test_ptb_beats_on_a_mitbih_model_get_a_warning(capsys, tmp_path, model) -> None:
    """A PTB CSV (labels 0 normal, 1 abnormal) ran on the MIT-BIH model without a word."""
    rng = np.random.default_rng(1)
    X = rng.random((30, BEAT_LENGTH)).astype(np.float32)
    for name, y in (("ptbdb_abnormal.csv", None), ("beats.csv", np.arange(30) % 2)):
        path = tmp_path / name
        path.write_text(format_beats_csv(X, y))
        code, _, err = _predict(capsys, "-m", model, path)
        assert code == 0, err
        warnings = [line for line in err.splitlines() if "WARNING" in line]
        assert len(warnings) == 1 and "use a PTB model (--dataset ptb)" in warnings[0], err
    mit = tmp_path / "mitbih_test.csv"
    mit.write_text(format_beats_csv(X, np.arange(30) % 5))
    code, _, err = _predict(capsys, "-m", model, mit)
    assert code == 0 and "WARNING" not in err


# ---------------------------------------------------------------- 4. a zip member is checked as it streams


def _archive(path: Path, ptb_normal: bytes) -> Path:
    import zipfile

    rng = np.random.default_rng(5)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, labels in FILE_CLASSES.items():
            y = np.resize(np.asarray(labels), 20)
            text = format_beats_csv(rng.random((20, BEAT_LENGTH)).astype(np.float32), y)
            zf.writestr(name, ptb_normal if name == "ptbdb_normal.csv" else text)
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\0" * 30_000_000, "member ptbdb_normal.csv: row 1 starts with"),
        (
            _rows(1).encode() + b"7" * 30_000_000,
            "member ptbdb_normal.csv has a line of more than 65,536 bytes",
        ),
        (b"\n" * 30_000_000, "member ptbdb_normal.csv: file is empty"),
    ],
    ids=["NUL bytes", "one endless row", "blank lines"],
)
def test_a_zip_member_that_is_not_a_beat_csv_stops_within_a_megabyte(tmp_path, content, expected) -> None:
    """Every member was extracted in full before any check: 30 MB of garbage from 30 KB of zip."""
    from heartbeat.fetch.archive import extract_csvs

    archive = _archive(tmp_path / "heartbeat.zip", content)
    assert archive.stat().st_size < 200_000
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match=expected):
        extract_csvs(archive, tmp_path / "out")
    partial = tmp_path / "out" / "ptbdb_normal.csv"
    assert not partial.exists() or partial.stat().st_size <= 2 << 20


# ---------------------------------------------------------------- 4. a download cannot run on


class _Flood(http.server.BaseHTTPRequestHandler):
    """Streams 100 MB of zeros, with or without announcing it, and records how much went out."""

    total = 100_000_000
    announce = False
    sent: ClassVar[list[int]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        if self.announce:
            self.send_header("Content-Length", str(self.total))
        self.end_headers()
        sent = 0
        with contextlib.suppress(OSError):
            while sent < self.total:
                self.wfile.write(bytes(1 << 16))
                sent += 1 << 16
        type(self).sent.append(sent)


@pytest.mark.parametrize(
    ("announce", "limits", "expected"),
    [
        (False, {"expected_size": 1_950_000}, "more than the 1,950,000 bytes the record header implies"),
        (False, {"max_bytes": 1 << 20}, "more than the 1,048,576 bytes such a file can have"),
        (
            True,
            {"expected_size": 1_950_000},
            "the server announces 100,000,000 bytes, more than the 1,950,000",
        ),
        (False, {}, "more than the 1,000,000 bytes such a file can have"),
    ],
    ids=["no length, known size", "no length, capped kind", "announced too much", "the default cap"],
)
def test_a_download_stops_at_what_the_file_can_be(tmp_path, monkeypatch, announce, limits, expected) -> None:
    """A download without Content-Length ran on: 300 MB for a 1.9 MB file. Now it stops at the limit."""
    from heartbeat.fetch import download
    from testkit.mirrors import serve_handler

    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 1_000_000)
    handler = type("Flood", (_Flood,), {"announce": announce, "sent": []})
    server, port = serve_handler(handler)
    try:
        dest = tmp_path / "100.dat"
        with pytest.raises(DataError, match=expected):
            download.download_file(
                f"http://127.0.0.1:{port}/100.dat", dest, progress=False, backoff_s=0, **limits
            )
        for _ in range(200):  # the server notices the hang-up at its next write
            if handler.sent:
                break
            time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
    assert not dest.exists() and not download.part_path(dest).exists()
    # It hung up at the limit: what went out beyond it is only what the socket buffers took.
    assert handler.sent and max(handler.sent) < 40_000_000, handler.sent


# ---------------------------------------------------------------- 6. caches are trusted only after validation


def _mirror(root: Path, invalid_sample: bool = False, seed: int = 0) -> Path:
    """A PhysioNet-layout mirror of one synthetic MIT-BIH record 100 (annotated), optionally with one
    invalid sample (the format's NaN) in its .dat: the right size, so only reading it tells."""
    import wfdb

    record = _record(root / "mitdb", "100")
    peaks = np.round((np.arange(35) + 0.3) / 1.2 * 360).astype(int)
    wfdb.wrann(
        "100",
        "atr",
        peaks[peaks < 10_800],
        symbol=["N"] * int((peaks < 10_800).sum()),
        write_dir=str(root / "mitdb"),
    )
    (root / "mitdb" / "RECORDS").write_text("100\n")
    dat = record.with_suffix(".dat")
    data = bytearray(dat.read_bytes())
    if seed:  # another copy of the record, from another mirror: the same size, other samples
        signal = np.frombuffer(bytes(data), "<i2").copy()
        signal[1000:1100] += 500
        data = bytearray(signal.tobytes())
    if invalid_sample:
        data[2000:2002] = (-32768).to_bytes(2, "little", signed=True)
    dat.write_bytes(bytes(data))
    return root


def _collect(url: str, cache: Path) -> np.ndarray:
    from heartbeat.core.config import PhysionetConfig
    from heartbeat.fetch.physionet import collect_beats

    cfg = PhysionetConfig(mirror=url, mitdb_version="", retries=0, backoff_s=0, timeout_s=10)
    return collect_beats(cfg, "mitdb", cache)["X"]


def test_a_cached_file_that_fails_validation_is_discarded(tmp_path) -> None:
    """A .dat with an invalid sample stayed in the cache: fetch kept failing after the mirror was fixed."""
    from testkit.mirrors import served

    root = _mirror(tmp_path / "mirror", invalid_sample=True)
    cache = tmp_path / "cache"
    with served(root) as mirror:
        with pytest.raises(DataError, match=r"^mitdb record 100: lead MLII has an invalid sample at 1000"):
            _collect(mirror.url, cache)
        assert not list(cache.rglob("100.dat"))  # discarded, not trusted next time
        _mirror(tmp_path / "fixed")
        (root / "mitdb" / "100.dat").write_bytes((tmp_path / "fixed" / "mitdb" / "100.dat").read_bytes())
        assert len(_collect(mirror.url, cache)) > 20  # the mirror is fixed: so is the fetch


def test_the_cache_is_kept_per_mirror(tmp_path) -> None:
    """Two mirrors' copies of one record are two files: switching mirrors never reads the other's copy."""
    from testkit.mirrors import served

    cache = tmp_path / "cache"
    with served(_mirror(tmp_path / "a")) as a, served(_mirror(tmp_path / "b", seed=1)) as b:
        from_a, from_b = _collect(a.url, cache), _collect(b.url, cache)
        assert not np.array_equal(from_a, from_b)
        np.testing.assert_array_equal(from_b, _collect(b.url, tmp_path / "fresh cache"))
        np.testing.assert_array_equal(from_a, _collect(a.url, cache))
    from heartbeat.fetch.physionet import mirror_cache

    assert mirror_cache(cache, a.url) != mirror_cache(cache, b.url)
    assert mirror_cache(cache, a.url) == mirror_cache(cache, a.url.rstrip("/"))
    assert (mirror_cache(cache, a.url) / "mitdb" / "100.dat").is_file()


# ---------------------------------------------------------------- 7. crashes leave nothing behind


def test_recovery_spares_a_live_writer(tmp_path) -> None:
    """Only the temporaries of processes that are gone are removed: a second run must not delete
    what a first, still running, is writing."""
    from heartbeat.core.atomic import recover

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = {
        "live": f".raw.heartbeat-{os.getpid()}.abcdefgh.tmp",
        "dead": f".raw.heartbeat-{dead.pid}.abcdefgh.tmp",
        "unmarked (not provably ours)": ".raw.k3j4h5g6.tmp",
        "another output's": f".models.heartbeat-{dead.pid}.abcdefgh.tmp",
        "a file": f".X_test.npy.heartbeat-{dead.pid}.abcdefgh.tmp.npy",
    }
    for key, name in names.items():
        if key == "a file":
            (tmp_path / name).write_bytes(b"x")
        else:
            (tmp_path / name).mkdir()
    (tmp_path / ".notes.txt").write_text("not ours")
    removed = {p.name for p in recover(tmp_path, "raw")}
    assert removed == {names["dead"]}
    removed = {p.name for p in recover(tmp_path)}
    assert removed == {names["another output's"], names["a file"]}
    kept = [names["live"], names["unmarked (not provably ours)"], ".notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
