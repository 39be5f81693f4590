"""Hostile inputs of the third adversarial pass, one class of failure per section (RELIABILITY.md, 6.x).

Each test tries the reported input and its neighbours in the class, through the public functions,
the ``heartbeat`` command and the stage entry point, in the style of tests/test_hostile.py.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from heartbeat.core.errors import DataError, ParamsError
from tests.conftest import ROOT
from tests.test_hostile import _one_line, _predict, _record, _rows, tiny_onnx


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_onnx(tmp_path / "tiny.onnx")


@pytest.fixture
def beats_csv(tmp_path: Path) -> Path:
    path = tmp_path / "beats.csv"
    path.write_text(_rows(20))
    return path


def _dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


# ---------------------------------------------------------------- 6.5 stage start-up deletes only its own leftovers


def test_stage_start_removes_only_what_its_own_writers_left(tmp_path, monkeypatch, caplog) -> None:
    """recover_tree walked all of data/, models/, ... and removed any name shaped like a leftover: a
    user's backups went with them, logged at INFO."""
    from heartbeat.core.entry import recover_outputs

    monkeypatch.chdir(tmp_path)
    pid = _dead_pid()
    users = [
        "data/.raw.20261201.old/notes.txt",
        "models/.resnet_mitbih.backup_1.old",
        "data/mystudy/.session.20261201.tmp.csv",
        f"data/.raw.{pid}.abcdefgh.tmp/mitbih_test.csv",  # the shape before the marker: not provably ours
        f"data/mystudy/.session.csv.heartbeat-{pid}.abcdefgh.tmp.csv",  # marked, but no writer writes there
        f"models/.x.keras.heartbeat-{pid}.abcdefgh.tmp.csv",  # marked, but not the suffix a writer gives
        f"metrics/.m.json.heartbeat-{pid}.abcdefgh.old.json",  # an .old is a folder with no suffix
    ]
    ours = [
        f"data/.raw.heartbeat-{pid}.abcdefgh.tmp/mitbih_test.csv",
        f"models/.mlp_ptb.keras.heartbeat-{pid}.k3j4_5g6.tmp.keras",
        f"plots/resnet_ptb/.history.csv.heartbeat-{pid}.0a1b2c3d.tmp.csv",
    ]
    for rel in users + ours:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    with caplog.at_level(logging.INFO, logger="heartbeat"):
        recover_outputs()
    for rel in users:
        assert (tmp_path / rel).read_text() == "x", rel
    for rel in ours:
        top = Path(rel).parts[-2] if rel.startswith("data/.raw") else Path(rel).name
        assert not list(tmp_path.rglob(top)), rel
    removed = [r for r in caplog.records if "left behind by an earlier run" in r.getMessage()]
    assert len(removed) == len(ours) and all(r.levelno == logging.WARNING for r in removed)


def test_what_the_writers_make_is_what_recovery_removes(tmp_path) -> None:
    """The names atomic_path and atomic_dir make match the recovery pattern (one rule, not two)."""
    from heartbeat.core import atomic

    with atomic.atomic_path(tmp_path / "m.keras") as tmp:
        assert atomic._ours(atomic._TEMPORARY.match(tmp.name)), tmp.name
        assert f".heartbeat-{os.getpid()}." in tmp.name
    with atomic.atomic_dir(tmp_path / "raw") as tmp:
        assert atomic._ours(atomic._TEMPORARY.match(tmp.name)), tmp.name


# ---------------------------------------------------------------- 6.2 no traceback


def _edf(path: Path, leads: tuple[str, ...] = ("MLII", "V1"), seconds: int = 30, fs: int = 250) -> Path:
    """A two-lead EDF with one-second data records, each lead a clean synthetic ECG."""
    import edfio

    t = np.arange(seconds * fs) / fs
    phase = (t * 1.2) % 1.0
    ecg = np.exp(-(((phase - 0.3) / 0.012) ** 2)) + 0.15 * np.exp(-(((phase - 0.6) / 0.06) ** 2))
    signals = [
        edfio.EdfSignal(ecg * (1 + i), fs, label=name, physical_dimension="mV", physical_range=(-3, 3))
        for i, name in enumerate(leads)
    ]
    edfio.Edf(signals).write(path)
    return path


def _edf_zero_rate(path: Path) -> Path:
    """The EDF of :func:`_edf` with MLII stored at 0 samples per data record (V1 unchanged)."""
    data = _edf(path).read_bytes()
    header = bytearray(data[: 256 * 3])
    at = 256 + 2 * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80)  # the first signal's samples per record
    header[at : at + 8] = b"0       "
    per_record = 250 * 2
    body = data[256 * 3 :]
    records = [body[i : i + 2 * per_record] for i in range(0, len(body), 2 * per_record)]
    path.write_bytes(bytes(header) + b"".join(r[per_record:] for r in records))
    return path


def _multisegment(folder: Path) -> Path:
    _record(folder, "seg")
    (folder / "multi.hea").write_text("multi/2 1 360 21600\nseg 10800\nseg 10800\n")
    return folder / "multi"


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda d: _edf_zero_rate(d / "z.edf"), r"z\.edf: signal MLII: 0 samples per second"),
        (lambda d: _multisegment(d / "db"), r"multi: header multi\.hea describes a multi-segment record"),
    ],
    ids=["EDF signal of 0 samples per record", "multi-segment WFDB header"],
)
def test_damaged_recording_headers_are_one_line(capsys, tmp_path, model, build, expected) -> None:
    path = build(tmp_path)
    code, _, err = _predict(capsys, "-m", model, path)
    assert code == 2
    assert re.search(expected, _one_line(err)), err


def test_a_zero_rate_never_reaches_a_division(tmp_path) -> None:
    """check_lead divided by the rate: every reader's rate is checked there too."""
    from heartbeat.core.errors import DataError
    from heartbeat.signal.user_recordings import Recording, check_lead

    for fs in (0.0, -250.0, float("nan")):
        with pytest.raises(DataError, match=r"^x: lead 0: sampling rate .* Hz is outside"):
            check_lead(Recording(np.ones(100), fs, "0", "x"))


def test_a_multisegment_header_in_the_physionet_fetch_is_one_line_and_not_kept(tmp_path) -> None:
    from testkit.mirrors import served
    from tests.test_hostile import _collect, _mirror

    root = _mirror(tmp_path / "mirror")
    good = (root / "mitdb" / "100.hea").read_text()
    (root / "mitdb" / "100.hea").write_text("100/2 1 360 21600\n100_1 10800\n100_2 10800\n")
    cache = tmp_path / "cache"
    with served(root) as mirror:
        with pytest.raises(DataError, match=r"^mitdb record 100: header 100\.hea describes a multi-segment"):
            _collect(mirror.url, cache)
        assert not list(cache.rglob("100.hea"))  # not kept: the next run fetches it again
        (root / "mitdb" / "100.hea").write_text(good)
        assert len(_collect(mirror.url, cache)) > 20


def _pretrained_copy(tmp_path: Path) -> Path:
    """A copy of the packaged model folder; its TFLite export, up to date with the .keras, reads the
    .keras's sidecar (temperature, smoothing) and starts without TensorFlow."""
    from heartbeat.serve.pretrained import MODEL

    shutil.copytree(MODEL.parent, tmp_path / "pre", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "pre" / "export" / "resnet_mitbih.tflite"


SIDECAR_DAMAGE = {
    "not JSON": (b'{"temperature": 0.53', r"not valid JSON"),
    "latin-1": ('{"model": "r\xe9snet", "temperature": 0.5}'.encode("latin-1"), r"not UTF-8: byte 0xe9"),
    "a list": (b"[0.53]", r"a JSON list, expected an object"),
    "a folder": (None, r"a folder, not a file"),
    "a 5,000-digit number": (b"1" * 5000, r"not usable JSON: Exceeds the limit"),
    "nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, r"not usable JSON: maximum recursion depth"),
}


@pytest.mark.parametrize("damage", list(SIDECAR_DAMAGE))
def test_a_damaged_sidecar_is_refused_not_ignored(capsys, tmp_path, damage) -> None:
    """A damaged sidecar was read as {}: temperature and smoothing dropped without a word, the classes
    changed; nested 100,000 deep it was a RecursionError traceback."""
    model = _pretrained_copy(tmp_path)
    record = _record(tmp_path / "db")
    code, _, err = _predict(capsys, "-m", model, record)
    sidecar = model.parent.parent / "resnet_mitbih.json"
    stored = json.loads(sidecar.read_text(encoding="utf-8"))["ensemble"]["temperature"]
    assert code == 0 and ", ".join(f"{t:.4g}" for t in stored) in err, err  # its members' temperatures
    content, expected = SIDECAR_DAMAGE[damage]
    sidecar.unlink()
    if content is None:
        sidecar.mkdir()
    else:
        sidecar.write_bytes(content)
    code, out, err = _predict(capsys, "-m", model, record)
    assert code == 2 and out == "", err
    line = _one_line(err)
    assert f"{sidecar}: the model's sidecar is damaged (" in line and re.search(expected, line), line


def test_closed_stdout_is_one_line_and_no_rows_are_lost(tmp_path, model, beats_csv) -> None:
    """``>&-``: sys.stdout is None and writing it was an AttributeError traceback."""
    for target in ("-", "/dev/stdout"):
        argv = [sys.executable, "-m", "heartbeat.serve.cli", "predict", "-m", model, beats_csv, "-o", target]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [str(a) for a in argv],
            env=env,
            stderr=subprocess.PIPE,
            stdout=None,
            timeout=120,
            preexec_fn=lambda: os.close(1),
        )
        err = done.stderr.decode()
        assert done.returncode == 2 and "Traceback" not in err, err
        assert "standard output is closed" in err or "file descriptor 1 is not open" in err, err


def test_closed_stderr_keeps_the_summary_out_of_the_rows(tmp_path, model, beats_csv) -> None:
    """``2>&-``: print(file=None) wrote the summary into the CSV on stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "heartbeat.serve.cli", "predict", "-m", model, beats_csv]
    done = subprocess.run(
        [str(a) for a in argv], env=env, stdout=subprocess.PIPE, timeout=120, preexec_fn=lambda: os.close(2)
    )
    rows = done.stdout.decode().splitlines()
    assert done.returncode == 0 and len(rows) == 21, rows
    assert not [r for r in rows if "heartbeat predict" in r], rows


@pytest.mark.parametrize("threads", ["100000", "99999999999999999999"])
def test_threads_beyond_the_cores_are_capped_with_a_message(capsys, tmp_path, threads) -> None:
    """--threads 99999999999999999999 blamed the model file ("not a TFLite model"); 100000 took 4 GB."""
    from heartbeat.serve.runners import default_threads

    code, out, err = _predict(
        capsys, "-m", _pretrained_copy(tmp_path), "--threads", threads, _record(tmp_path)
    )
    assert code == 0, err
    cores = default_threads()
    assert f"--threads {threads}: this process may use {cores} CPU core(s); using {cores}" in err
    assert f"{cores} threads" in err and len(out.splitlines()) > 30


# ---------------------------------------------------------------- 6.3 no exit 0 with a wrong result


@pytest.mark.parametrize("fs", ["-360", "+360", "3.6e2", "-360(0)"])
def test_a_rate_wfdb_misreads_is_refused(capsys, tmp_path, model, fs) -> None:
    """wfdb reads ``-360`` and ``+360`` as its default 250 Hz and ``3.6e2`` as 3.6: the beat times ran past
    the recording's end, exit 0."""
    record = _record(tmp_path / "db")
    header = record.with_suffix(".hea")
    header.write_text(header.read_text().replace(" 360 ", f" {fs} ", 1))
    code, _, err = _predict(capsys, "-m", model, record)
    assert code == 2
    assert f"rec.hea gives the sampling rate '{fs}', which is not a sampling rate" in _one_line(err)


def test_a_negative_rate_in_the_physionet_fetch_is_refused_and_not_kept(tmp_path) -> None:
    from testkit.mirrors import served
    from tests.test_hostile import _collect, _mirror

    root = _mirror(tmp_path / "mirror")
    header = root / "mitdb" / "100.hea"
    header.write_text(header.read_text().replace(" 360 ", " -360 ", 1))
    with served(root) as mirror, pytest.raises(DataError, match=r"^mitdb record 100: header 100\.hea gives"):
        _collect(mirror.url, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("100.hea"))


@pytest.mark.parametrize("cut", ["half its data records", "half a data record"])
def test_a_truncated_edf_is_an_error(capsys, tmp_path, model, cut) -> None:
    """Half the records gave exit 0 on half the recording, with only edfio's raw warning lines.

    Decision: an error. A file holding fewer records than its header declares is an incomplete copy;
    its beat counts and times would pass for the recording's. The message says what is missing."""
    path = _edf(tmp_path / "t.edf")
    data = path.read_bytes()
    keep = 256 * 3 + 15 * 1000 + (500 if cut == "half a data record" else 0)
    path.write_bytes(data[:keep])
    code, out, err = _predict(capsys, "-m", model, path)
    assert code == 2 and out == ""
    line = _one_line(err)
    assert "t.edf: the EDF file is truncated or damaged: " in line
    if cut == "half its data records":
        assert "its header declares 30 data records but the file holds 15" in line


# ---------------------------------------------------------------- 6.6 the cache keeps only what passed


def test_a_header_that_disagrees_with_its_data_is_not_kept(tmp_path) -> None:
    """``100 1 360 325000`` with a 10,800-sample .dat: the header stayed cached, and every later fetch
    failed, even after the mirror was fixed."""
    from testkit.mirrors import served
    from tests.test_hostile import _collect, _mirror

    root = _mirror(tmp_path / "mirror")
    header = root / "mitdb" / "100.hea"
    good = header.read_text()
    header.write_text(good.replace(" 10800", " 325000", 1))
    cache = tmp_path / "cache"
    with served(root) as mirror:
        with pytest.raises(
            DataError,
            match=r"^mitdb record 100: .*100\.dat: got 21600 bytes, expected 650000 from the record header",
        ):
            _collect(mirror.url, cache)
        assert not list(cache.rglob("100.hea")) and not list(cache.rglob("100.dat"))
        header.write_text(good)  # the mirror is fixed: so is the next fetch
        assert len(_collect(mirror.url, cache)) > 20


# ---------------------------------------------------------------- 6.4 output never lost or mixed


@pytest.mark.parametrize(
    ("plot", "rows", "expected"),
    [
        ("out.csv", "out.csv", r"--plot out\.csv: is where the rows go \(out\.csv\)"),
        ("link.csv", "out.csv", r"--plot link\.csv: is where the rows go"),
        ("out.csv", "./sub/../out.csv", r"--plot out\.csv: is where the rows go"),
        ("-", None, r"--plot -: the rows go to standard output"),
        ("/dev/stdout", None, r"--plot /dev/stdout: is where the rows go"),
        ("", None, r"--plot: is empty; give a PNG file name"),
        ("", "out.csv", r"--plot: is empty"),
        ("rec.hea", None, r"--plot rec\.hea: is one of the inputs"),
        (".", None, r"--plot \.: is a folder"),
    ],
)
def test_the_plot_never_lands_on_the_rows(capsys, tmp_path, model, monkeypatch, plot, rows, expected) -> None:
    """--plot naming -o's file left the PNG where the rows should be; --plot - appended a PNG to the CSV on
    stdout; --plot "" was ignored; plot-path errors named -o."""
    monkeypatch.chdir(tmp_path)
    record = _record(tmp_path / "db")
    monkeypatch.chdir(tmp_path / "db")
    (tmp_path / "db" / "sub").mkdir()
    existing = tmp_path / "db" / "out.csv"
    if plot == "link.csv":
        existing.write_text("mine\n")
        (tmp_path / "db" / "link.csv").symlink_to("out.csv")
    argv = ["-m", model, record.name, "--plot", plot, *(["-o", rows] if rows else [])]
    code, out, err = _predict(capsys, *argv)
    assert code == 2 and out == "", err
    assert re.search(expected, _one_line(err)), err
    if plot == "link.csv":
        assert existing.read_text() == "mine\n"
    else:
        assert not existing.exists()


def test_a_plot_beside_the_rows_file_is_written(capsys, tmp_path, model) -> None:
    record = _record(tmp_path / "db")
    code, _, err = _predict(
        capsys, "-m", model, record, "--plot", tmp_path / "p.png", "-o", tmp_path / "r.csv"
    )
    assert code == 0, err
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "r.csv").read_text().count(
        "\n"
    ) > 30


@pytest.mark.parametrize(("architecture", "lr"), [("mlp", 1e8), ("mlp", 1e4), ("resnet", 100.0)])
def test_training_that_diverges_to_a_finite_loss_is_refused(architecture, lr) -> None:
    """``lr: 1e8`` trained to a finite loss of 6.8e27 and saved the model (every beat one class), exit 0:
    divergence is more than NaN. These settings give finite losses of 1e14 to 1e26 in epoch 1 (a NaN
    loss was refused already); the guard refuses a loss far beyond chance, finite or not."""
    from heartbeat.core.config import TrainConfig
    from heartbeat.model.architectures import build_mlp
    from heartbeat.train.fit import TrainingDiverged, train
    from tests.test_quality_options import _resnet, _split

    tr, va = _split(256, 0), _split(64, 1)
    model = build_mlp(3, hidden=(16, 8)) if architecture == "mlp" else _resnet()
    cfg = TrainConfig(epochs=3, batch_size=32, patience=0, lr=lr)
    with pytest.raises(
        TrainingDiverged, match=r"^training diverged: the (val )?loss became [0-9.e+]+ \(over 110, "
    ):
        train(model, tr, va, cfg, section="train_mlp")


def test_training_that_collapses_to_one_class_is_refused() -> None:
    """``lr: 1`` keeps the loss near a uniform guess's, under the divergence limit, but the network's
    outputs stop depending on the beat: every validation beat one class, saved with exit 0 before."""
    from heartbeat.core.config import TrainConfig
    from heartbeat.model.architectures import build_mlp
    from heartbeat.train.fit import TrainingDiverged, make_deterministic, train
    from tests.test_quality_options import _split

    make_deterministic(0)
    tr, va = _split(256, 0), _split(64, 1)
    cfg = TrainConfig(epochs=3, batch_size=32, patience=0, lr=1.0)
    with pytest.raises(
        TrainingDiverged,
        match=r"^training collapsed: every one of the 64 validation beats, of 3 classes, is given class \d "
        r"and the outputs do not depend on the beat; nothing was written; lower train_mlp\.lr in params\.yaml "
        r"\(now 1\)",
    ):
        train(build_mlp(3, hidden=(16, 8)), tr, va, cfg, section="train_mlp")


def test_only_outputs_that_ignore_the_beat_count_as_collapsed() -> None:
    """A live model may put every beat of a lopsided split in one class; only one whose outputs do not
    move between beats, on a split of several classes, has collapsed."""
    from heartbeat.train.fit import COLLAPSED_SPREAD, collapsed

    y = np.array([0, 1, 2, 0])
    dead = np.tile([0.2, 0.5, 0.3], (4, 1))
    assert collapsed(dead, y) == 1
    assert collapsed(dead + np.array([[0, COLLAPSED_SPREAD / 2, 0]] * 2 + [[0, 0, 0]] * 2), y) == 1
    live = dead + np.array([[0.0, 0.1, -0.1], [0, 0, 0], [0.05, 0, -0.05], [0, 0, 0]])  # still all class 1
    assert collapsed(live, y) is None
    assert collapsed(dead, np.zeros(4, dtype=int)) is None  # the split holds one class: nothing to tell apart
    assert collapsed(np.array([[0.6, 0.4, 0.0], [0.3, 0.7, 0.0]]), y[:2]) is None  # two classes given


def test_a_sane_training_passes_the_divergence_guard() -> None:
    from heartbeat.core.config import TrainConfig
    from heartbeat.train.fit import train
    from tests.test_quality_options import _resnet, _split

    tr, va = _split(256, 0), _split(64, 1)
    result = train(_resnet(), tr, va, TrainConfig(epochs=2, batch_size=32, patience=0, lr=0.01))
    assert len(result.history) == 2


# ---------------------------------------------------------------- 6.1 memory bounded by what the work needs


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ({"neighbours": 1000, "weight": 1.0, "span": 1_000_000}, "neighbours"),
        ({"neighbours": 20, "weight": 0.5, "span": 1_000_000}, "span"),
        ({"neighbours": 101, "weight": 0.5, "span": 5000}, "neighbours"),
        ({"neighbours": 20, "weight": 0.5, "span": 20_001}, "span"),
    ],
)
def test_smoothing_beyond_its_budget_is_refused_in_params_and_in_the_sidecar(tmp_path, value, key) -> None:
    """neighbours 1000 and span 1,000,000 were accepted by both checks and took 4.1 GB and 212 s on a
    day's Holter. One type checks itself, for params.yaml and for the sidecar alike."""
    from heartbeat.core.budget import SMOOTHING_MAX_NEIGHBOURS, SMOOTHING_MAX_SPAN
    from heartbeat.core.config import ResNetConfig, parse_section
    from heartbeat.core.errors import ModelError, ParamsError
    from heartbeat.core.layout import read_sidecar
    from heartbeat.core.stored import RecordSmoothing
    from heartbeat.model.outputs import OutputSteps

    bound = SMOOTHING_MAX_NEIGHBOURS if key == "neighbours" else SMOOTHING_MAX_SPAN
    why = rf"{key} must be an integer in \[(1|neighbours), {bound}\]"
    with pytest.raises(ValueError, match=why):
        RecordSmoothing(**value)
    with pytest.raises(ParamsError, match=rf"train_resnet_mitbih\.record_smoothing: {why}"):
        parse_section(ResNetConfig, "train_resnet_mitbih", {"record_smoothing": value})
    sidecar = tmp_path / "m.json"

    def stored() -> RecordSmoothing | None:
        where, data = read_sidecar(sidecar)
        return OutputSteps.from_sidecar(data, str(where)).smoothing

    sidecar.write_text(json.dumps({"record_smoothing": value}))
    with pytest.raises(ModelError, match=why):
        stored()
    for edge in ({"neighbours": SMOOTHING_MAX_NEIGHBOURS, "weight": 0.5, "span": SMOOTHING_MAX_SPAN},):
        assert RecordSmoothing(**edge).span == SMOOTHING_MAX_SPAN
        sidecar.write_text(json.dumps({"record_smoothing": edge}))
        assert stored().neighbours == SMOOTHING_MAX_NEIGHBOURS


def _table(path: Path, rows: int, sep: str = ",", header: bool = True) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(5)
    x = np.round(rng.normal(size=(rows, 3)), 4)
    lines = ([sep.join(["time", "MLII", "V1"])] if header else []) + [
        sep.join(f"{v:.4f}" for v in row) for row in x
    ]
    path.write_text("\n".join(lines) + "\n")
    return path, x


@pytest.mark.parametrize("sep", [",", "\t"])
def test_a_signal_table_is_parsed_as_numbers_in_bounded_memory(tmp_path, monkeypatch, sep) -> None:
    """A 24-hour three-lead CSV (516 MB) passed 4.29 GB and was killed: every cell was a Python string,
    about 12x the file. Now only the chosen lead and the next are parsed, as float32 numbers, chunk by
    chunk: what Python allocates stays a small multiple of the decoded columns."""
    import tracemalloc

    from heartbeat.signal import user_recordings

    monkeypatch.setattr(user_recordings, "TABLE_CHUNK_ROWS", 20_000)
    path, x = _table(tmp_path / "t.csv", 200_000, sep)
    tracemalloc.start()
    try:
        rec = user_recordings.read_table(path, 250.0, "MLII")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(rec.signal, x[:, 1], atol=1e-4)
    np.testing.assert_allclose(rec.second, x[:, 0], atol=1e-4)  # the first other column
    decoded = 2 * x.shape[0] * 4  # two float32 columns
    assert peak < 5 * decoded, peak / decoded  # 3.1x; every cell as a string was 13x


def test_a_bad_cell_deep_in_a_table_names_its_row(tmp_path, monkeypatch) -> None:
    from heartbeat.signal import user_recordings

    monkeypatch.setattr(user_recordings, "TABLE_CHUNK_ROWS", 1000)
    path, _ = _table(tmp_path / "t.csv", 5000)
    lines = path.read_text().splitlines()
    lines[3456] = "1,abc,2"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"t\.csv: row 3457, column MLII: 'abc' is not a number"):
        user_recordings.read_table(path, 250.0)
    lines[3456] = "1,2,True"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 3457, column V1: 'True' is not a number"):
        user_recordings.read_table(path, 250.0, "V1")
    user_recordings.read_table(path, 250.0, "time")  # that column is not read: time and MLII are


@pytest.mark.parametrize("blank", [10, 70_000])
def test_leading_blank_lines_do_not_make_a_table_empty(tmp_path, blank) -> None:
    """65,536 or more leading blank lines made a CSV "empty": only its first 64 KiB were sniffed."""
    from heartbeat.signal.user_recordings import read_table

    path, _ = _table(tmp_path / "t.csv", 100)
    path.write_text("\n" * blank + path.read_text())
    rec = read_table(path, 250.0)
    assert rec.lead == "MLII" and rec.signal.size == 100


def test_an_npy_larger_than_the_available_memory_is_refused_before_reading(
    capsys, tmp_path, model, monkeypatch
) -> None:
    """A 5 GB .npy whose header matched its size was read whole. The check is against what this
    process has available; here the machine is made small instead of the file large."""
    from heartbeat.core import npyfile

    np.save(tmp_path / "lead.npy", np.zeros(200_000, np.float32))  # 800 KB, 2.4 MB with its float64 copy
    monkeypatch.setattr(npyfile, "available_bytes", lambda: 2_000_000)
    code, out, err = _predict(capsys, "-m", model, tmp_path / "lead.npy", "--fs", "250")
    assert code == 2 and out == ""
    line = _one_line(err)
    assert "lead.npy: reading this array (800,000 bytes, 3x with its copies) needs more memory than" in line
    monkeypatch.setattr(npyfile, "available_bytes", lambda: 3_000_000)
    assert npyfile.load_npy(tmp_path / "lead.npy", work=3.0).shape == (200_000,)


# ---------------------------------------------------------------- 6.7 smaller


@pytest.mark.parametrize(("kind", "fs"), [("wfdb", "250"), ("edf", "360")])
def test_fs_that_disagrees_with_the_header_is_refused(capsys, tmp_path, model, kind, fs) -> None:
    """--fs was silently ignored for WFDB and EDF input."""
    path = _record(tmp_path / "db") if kind == "wfdb" else _edf(tmp_path / "r.edf")
    code, _, err = _predict(capsys, "-m", model, path, "--fs", fs)
    assert code == 2
    assert (
        f"{path}: --fs {fs} disagrees with the {360 if kind == 'wfdb' else 250} Hz its header gives"
        in _one_line(err)
    )
    code, _, err = _predict(capsys, "-m", model, path, "--fs", "360" if kind == "wfdb" else "250")
    assert code == 0, err


def test_a_damaged_packaged_model_says_to_reinstall_not_to_run_dvc(capsys, tmp_path, monkeypatch) -> None:
    """A pip user has no export stage to rerun."""
    from heartbeat.serve import pretrained

    model = _pretrained_copy(tmp_path)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x40
    model.write_bytes(bytes(data))
    code, _, err = _predict(capsys, "-m", model, _record(tmp_path / "db"))
    assert code == 2 and "(dvc repro export)" in _one_line(err)  # a project's export: its stage remakes it
    monkeypatch.setattr(pretrained, "FOLDER", model.parent.parent.resolve())
    code, _, err = _predict(capsys, "-m", model, _record(tmp_path / "db"))
    line = _one_line(err)
    assert (
        code == 2 and "its sha256 differs" in line and "reinstall the package" in line and "dvc" not in line
    )


def test_yaml_merge_keys_are_params(tmp_path) -> None:
    """``<<: *defaults`` was reported as "not valid YAML"; the keys a section gives itself win."""
    from heartbeat.core.config import load_params

    path = tmp_path / "params.yaml"
    path.write_text(
        "train_mlp: &base\n  epochs: 2\n  lr: 0.01\ntrain_resnet_ptb:\n  <<: *base\n  epochs: 3\n"
    )
    assert load_params(path)["train_resnet_ptb"] == {"epochs": 3, "lr": 0.01}
    path.write_text("train_mlp: &base\n  epochs: 2\ntrain_resnet_ptb:\n  <<: *base\n  lr: 1\n  lr: 2\n")
    with pytest.raises(ParamsError, match=r"duplicate key: 'lr' at line 6 is already given at line 5"):
        load_params(path)
