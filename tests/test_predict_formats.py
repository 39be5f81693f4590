"""``heartbeat predict`` with the pretrained model: --format wfdb round trip, the JSON's lead count,
-q, and the summary's macro-F1 over the classes present."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from heartbeat.evaluate.metrics import macro_f1_present
from heartbeat.serve.annotate import AAMI_TO_WFDB
from heartbeat.serve.cli import main
from tests.test_predict import _write_record as _record

MITDB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mitdb"
needs_mitdb = pytest.mark.skipif(not (MITDB / "101.hea").is_file(), reason="../shared/data/mitdb is absent")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _synthetic_ecg(seconds: float = 30.0, fs: float = 360.0, rate_hz: float = 1.2) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    phase = (t * rate_hz) % 1.0
    return np.exp(-(((phase - 0.3) / 0.012) ** 2)) + 0.15 * np.exp(-(((phase - 0.6) / 0.06) ** 2))


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("records")
    ecg = _synthetic_ecg()
    second = np.roll(_synthetic_ecg(rate_hz=1.2), 20) * 0.7 - 0.2 * _synthetic_ecg(rate_hz=1.2)
    return {
        "two": _record(folder, "two", np.column_stack([ecg, second]), ["MLII", "V1"]),
        "one": _record(folder, "one", ecg[:, None], ["MLII"]),
    }


def test_wfdb_format_round_trips_through_rdann(capsys, tmp_path, records) -> None:
    import wfdb

    code, out, err = run(capsys, records["two"], "-q")
    assert code == 0, err
    rows = pd.read_csv(io.StringIO(out))
    target = tmp_path / "two.heartbeat"
    code, out, err = run(capsys, records["two"], "-q", "--format", "wfdb", "-o", target)
    assert code == 0 and out == "" and err == ""
    ann = wfdb.rdann(str(tmp_path / "two"), "heartbeat")
    assert ann.fs == 360
    assert ann.sample.tolist() == rows["sample"].tolist()
    assert ann.symbol == [AAMI_TO_WFDB[c] for c in rows["predicted"]]


def test_wfdb_format_refuses_what_it_cannot_write(capsys, tmp_path, records) -> None:
    code, _, err = run(capsys, records["two"], "--format", "wfdb", "-o", tmp_path / "noannotator")
    assert code == 2 and "101.heartbeat" in err
    beats = tmp_path / "beats.npy"
    np.save(beats, np.zeros((3, 187), dtype=np.float32))
    code, _, err = run(capsys, beats, "--format", "wfdb", "-o", tmp_path / "b.heartbeat")
    assert code == 2 and "not a recording" in err
    assert not (tmp_path / "b.heartbeat").exists()


def test_json_says_how_many_leads_the_model_got(capsys, records) -> None:
    for name, leads in (("two", 2), ("one", 1)):
        code, out, err = run(capsys, records[name], "--format", "json", "-q")
        assert code == 0, err
        assert json.loads(out)["input"]["leads"] == leads


def test_quiet_prints_nothing_but_errors(capsys, records) -> None:
    code, out, err = run(capsys, records["one"], "-q")
    assert code == 0 and out and err == ""
    code, _, err = run(capsys, records["one"].with_name("missing"), "-q")
    assert code == 2 and err.startswith("heartbeat predict: error:")


def test_macro_f1_runs_over_the_classes_present() -> None:
    y = np.array([0, 0, 2, 2])
    assert macro_f1_present(y, y) == (1.0, [0, 2])
    f1, present = macro_f1_present(y, np.array([0, 0, 2, 1]))
    assert present == [0, 1, 2]
    assert f1 == pytest.approx((1.0 + 0.0 + 2 / 3) / 3)


@needs_mitdb
def test_summary_names_the_classes_of_its_macro_f1(capsys) -> None:
    code, _, err = run(capsys, MITDB / "101")
    assert code == 0
    line = next(x for x in err.splitlines() if "macro-F1" in x)
    assert "over the classes in the labels or predictions (N S" in line


def test_plot_shows_beats_around_their_r_peak_in_mv_and_keeps_the_legend_off_the_trace() -> None:
    from heartbeat.evaluate.plots import EXAMPLE_WINDOW_S, png_bytes, recording_figure

    fs = 360.0
    signal = _synthetic_ecg(fs=fs) * 1.5
    peaks = np.flatnonzero((np.diff(np.sign(np.diff(signal))) < 0) & (signal[1:-1] > 1.0)) + 1
    proba = np.zeros((peaks.size, 5))
    proba[:, 0], proba[::3, 0], proba[::3, 2] = 1.0, 0.0, 1.0
    fig = recording_figure(signal, fs, peaks, proba, ("N", "S", "V", "F", "Q"))
    trace, _, *examples = fig.axes
    assert trace.get_ylabel() == "mV" and examples[0].get_ylabel() == "mV"
    assert len(examples) == 2  # N and V
    line = examples[0].get_lines()[0]
    x, y = line.get_xdata(), line.get_ydata()
    assert x[0] == pytest.approx(-1000 * EXAMPLE_WINDOW_S[0]) and x[-1] == pytest.approx(
        1000 * EXAMPLE_WINDOW_S[1]
    )
    assert y[np.argmin(np.abs(x))] == pytest.approx(signal.max(), rel=0.01)  # the R-peak at 0 ms, in mV
    png_bytes(fig)  # draws it: the legend's place is known once drawn
    legend = trace.get_legend().get_window_extent()
    assert legend.y0 >= trace.get_window_extent().y1 - 1  # above the axes, not on the trace
