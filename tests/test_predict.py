"""Tests of ``heartbeat predict``: every input kind, every backend, output formats and the error cases.

Models are tiny (built here, trained one epoch on synthetic beats) so the file
runs in seconds; real MIT-BIH records come from ../shared/data/mitdb and the
tests that need them are skipped when it is absent.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from heartbeat.core.beat_spec import BEAT_LENGTH, MITBIH_CLASSES, PTB_CLASSES
from heartbeat.core.beatcsv import write_beats_csv
from heartbeat.core.config import DemoConfig
from heartbeat.core.errors import DataError, ModelError
from heartbeat.fetch.demo import demo_beats
from heartbeat.serve.cli import main
from tests.conftest import pretrained_copy

MITDB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mitdb"
needs_mitdb = pytest.mark.skipif(not (MITDB / "101.hea").is_file(), reason="../shared/data/mitdb is absent")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo() -> dict:
    return demo_beats(DemoConfig(mitdb_records=10, mitdb_minutes=0.6, ptbdb_records=4, ptbdb_minutes=0.5), 0)


def _trained(build, X: np.ndarray, y: np.ndarray):
    import keras

    keras.utils.set_random_seed(0)
    model = build()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=1, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory, demo) -> dict[str, Path]:
    """A small ResNet for MIT-BIH (5 classes), an MLP for PTB (2) and a 3-class model, plus exports."""
    from heartbeat.model.architectures import build_mlp, build_resnet
    from heartbeat.model.saving import save_model
    from heartbeat.serve.convert import export_onnx, export_tflite

    folder = tmp_path_factory.mktemp("models")
    mit = demo["mitbih_train.csv"]
    ptb_X = np.concatenate([demo["ptbdb_normal.csv"].X, demo["ptbdb_abnormal.csv"].X])
    ptb_y = np.concatenate([demo["ptbdb_normal.csv"].y, demo["ptbdb_abnormal.csv"].y])
    built = {
        "resnet_mitbih": _trained(lambda: build_resnet(5, filters=8, blocks=2, dense=8), mit.X, mit.y),
        "mlp_ptb": _trained(lambda: build_mlp(2, [16]), ptb_X, ptb_y),
        "three": build_mlp(3, [8]),
    }
    paths = {}
    for name, model in built.items():
        paths[name] = folder / f"{name}.keras"
        save_model(model, paths[name])
    export_tflite(built["resnet_mitbih"], folder / "export" / "resnet_mitbih.tflite")
    export_onnx(built["resnet_mitbih"], folder / "export" / "resnet_mitbih.onnx")
    paths["resnet_mitbih_tflite"] = folder / "export" / "resnet_mitbih.tflite"
    paths["resnet_mitbih_onnx"] = folder / "export" / "resnet_mitbih.onnx"
    return paths


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("heartbeat predict: error: ")
    return lines[0]


# ---------------------------------------------------------------- input kinds


def test_csv_with_labels_prints_rows_and_metrics(capsys, tmp_path, models, demo) -> None:
    beats = demo["mitbih_test.csv"]
    path = tmp_path / "test.csv"
    write_beats_csv(path, beats.X, beats.y)
    code, out, err = run_cli(capsys, "--model", models["resnet_mitbih"], path)
    assert code == 0
    rows = pd.read_csv(io.StringIO(out))
    assert list(rows.columns) == ["beat", "label", "predicted", *(f"p_{c}" for c in MITBIH_CLASSES)]
    assert len(rows) == len(beats)
    assert rows["beat"].tolist() == list(range(len(beats)))
    assert set(rows["predicted"]) <= set(MITBIH_CLASSES)
    probs = rows[[f"p_{c}" for c in MITBIH_CLASSES]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert "accuracy" in err and "macro-F1" in err
    assert "predicted: N " in err


def test_csv_without_labels_has_no_label_column_or_accuracy(capsys, tmp_path, models, demo) -> None:
    path = tmp_path / "nolabel.csv"
    write_beats_csv(path, demo["ptbdb_normal.csv"].X[:20], None)
    code, out, err = run_cli(capsys, "-m", models["mlp_ptb"], path)
    assert code == 0
    rows = pd.read_csv(io.StringIO(out))
    assert list(rows.columns) == ["beat", "predicted", *(f"p_{c}" for c in PTB_CLASSES)]
    assert "accuracy" not in err


def test_npy_input_and_json_output(capsys, tmp_path, models, demo) -> None:
    X = demo["mitbih_test.csv"].X[:30]
    path = tmp_path / "beats.npy"
    np.save(path, X)
    code, out, _ = run_cli(capsys, "-m", models["resnet_mitbih"], path, "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert {"model", "trained_on", "input", "beats"} <= set(data)
    rows = data["beats"]
    assert len(rows) == 30
    assert set(rows[0]) == {"beat", "predicted", *(f"p_{c}" for c in MITBIH_CLASSES)}


def test_output_file_and_progress_bar(capsys, tmp_path, models, demo) -> None:
    path = tmp_path / "beats.npy"
    np.save(path, demo["mitbih_test.csv"].X)
    target = tmp_path / "out" / "pred.csv"
    code, out, err = run_cli(
        capsys, "-m", models["resnet_mitbih"], path, "-o", target, "--progress", "on", "--batch-size", "32"
    )
    assert code == 0 and out == ""
    assert len(pd.read_csv(target)) == len(demo["mitbih_test.csv"])
    assert "predict:" in err and "beat" in err  # tqdm's bar


def _write_record(folder: Path, name: str, signal: np.ndarray, leads: list[str], fs: float = 360.0) -> Path:
    import wfdb

    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * len(leads),
        sig_name=leads,
        p_signal=signal,
        fmt=["16"] * len(leads),
        write_dir=str(folder),
    )
    return folder / name


def _synthetic_ecg(seconds: float = 30.0, fs: float = 360.0, rate_hz: float = 1.2) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    phase = (t * rate_hz) % 1.0
    return np.exp(-(((phase - 0.3) / 0.012) ** 2)) + 0.15 * np.exp(-(((phase - 0.6) / 0.06) ** 2))


def test_synthetic_wfdb_record_uses_the_detector(capsys, tmp_path, models) -> None:
    ecg = _synthetic_ecg()
    record = _write_record(tmp_path, "syn", np.column_stack([ecg, ecg * 0.5]), ["V1", "MLII"])
    code, out, err = run_cli(capsys, "-m", models["resnet_mitbih"], record)
    assert code == 0
    rows = pd.read_csv(io.StringIO(out))
    assert {"sample", "time_s"} <= set(rows.columns) and "label" not in rows.columns
    assert 30 <= len(rows) <= 36  # 1.2 beats/s for 30 s, less the edge beats
    assert (np.diff(rows["sample"]) > 0).all()
    assert "lead MLII, R-peaks from detector" in err


@needs_mitdb
def test_real_mitdb_record_with_annotations(capsys, models) -> None:
    code, out, err = run_cli(capsys, "-m", models["resnet_mitbih"], MITDB / "101", "--backend", "tflite")
    assert code == 0
    rows = pd.read_csv(io.StringIO(out))
    assert len(rows) > 1500  # record 101 has 1,865 annotated beats
    assert {"sample", "time_s", "label", "predicted"} <= set(rows.columns)
    assert set(rows["label"]) <= set(MITBIH_CLASSES)
    assert "R-peaks from annotations" in err and "accuracy" in err


@needs_mitdb
def test_real_record_without_mlii_falls_back_or_fails_by_name(capsys, models) -> None:
    code, _, err = run_cli(capsys, "-m", models["resnet_mitbih"], MITDB / "102", "--peaks", "detector")
    assert code == 0 and "lead V5" in err
    code, _, err = run_cli(capsys, "-m", models["resnet_mitbih"], MITDB / "102", "--lead", "MLII")
    assert code == 2
    assert "--lead MLII: no such lead" in one_line_error(err) and "V5, V2" in err


# ---------------------------------------------------------------- backends


@pytest.mark.parametrize("backend", ["keras", "tflite", "onnx"])
def test_backends_agree(capsys, tmp_path, models, demo, backend) -> None:
    path = tmp_path / "beats.npy"
    np.save(path, demo["mitbih_test.csv"].X)
    code, out, err = run_cli(capsys, "-m", models["resnet_mitbih"], path, "--backend", backend)
    assert code == 0, err
    assert f"on {backend}" in err
    if backend != "keras":
        assert "converted from resnet_mitbih.keras" in err  # no manifest: converted on the fly
    code, ref, _ = run_cli(capsys, "-m", models["resnet_mitbih"], path, "--backend", "keras")
    a = pd.read_csv(io.StringIO(out))
    b = pd.read_csv(io.StringIO(ref))
    assert (a["predicted"] == b["predicted"]).mean() >= 0.999
    cols = [f"p_{c}" for c in MITBIH_CLASSES]
    assert np.abs(a[cols].to_numpy() - b[cols].to_numpy()).max() <= 1e-4


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_exported_files_load_by_suffix(capsys, tmp_path, models, demo, kind) -> None:
    path = tmp_path / "beats.npy"
    np.save(path, demo["mitbih_test.csv"].X[:10])
    code, _, err = run_cli(capsys, "-m", models[f"resnet_mitbih_{kind}"], path)
    assert code == 0 and f"on {kind}" in err
    code, _, err = run_cli(capsys, "-m", models[f"resnet_mitbih_{kind}"], path, "--backend", "keras")
    assert code == 2 and "cannot run on the keras backend" in one_line_error(err)


def test_predict_proba_batches_match_one_call(models, demo) -> None:
    from heartbeat.serve.runners import load_runner, predict_proba

    runner = load_runner(models["resnet_mitbih_tflite"])
    X = demo["mitbih_test.csv"].X
    whole = predict_proba(runner, X, batch_size=len(X))
    pieces = predict_proba(runner, X, batch_size=7)
    np.testing.assert_allclose(whole, pieces, atol=1e-6)
    assert runner.class_names == MITBIH_CLASSES


def test_onnx_backend_without_onnxruntime_is_a_clear_error(monkeypatch, models) -> None:
    from heartbeat.serve.runners import load_runner

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ModelError, match="needs onnxruntime"):
        load_runner(models["resnet_mitbih_onnx"])


# ---------------------------------------------------------------- bad input: one line, exit 2


def _csv(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


ROW = ",".join(["0.5"] * BEAT_LENGTH)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (",".join(["0.5"] * 100) + "\n", "100 column(s) per row"),
        (ROW + "\n" + ",".join(["0.5"] * 186) + ",nan\n", "not a finite number"),
        ("", "empty"),
        (ROW + ",7\n", "label"),  # a label outside the 5 MIT-BIH classes
        (ROW.replace("0.5", "3.0", 1) + "\n", "outside [0, 1]"),
    ],
    ids=["row-length", "nan", "empty", "label-out-of-range", "range"],
)
def test_bad_csv(capsys, tmp_path, models, text, expected) -> None:
    code, out, err = run_cli(capsys, "-m", models["resnet_mitbih"], _csv(tmp_path, text))
    assert code == 2 and out == ""
    assert expected in one_line_error(err)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.zeros((4, 100), np.float32), "shape (4, 100)"),
        (np.full((2, BEAT_LENGTH), np.nan, np.float32), "not a finite number"),
        (np.zeros((0, BEAT_LENGTH), np.float32), "no rows"),
    ],
    ids=["shape", "nan", "empty"],
)
def test_bad_npy(capsys, tmp_path, models, array, expected) -> None:
    path = tmp_path / "bad.npy"
    np.save(path, array)
    code, _, err = run_cli(capsys, "-m", models["resnet_mitbih"], path)
    assert code == 2 and expected in one_line_error(err)


@pytest.mark.parametrize("suffix", [".keras", ".tflite", ".onnx"])
def test_model_file_that_is_not_a_model(capsys, tmp_path, demo, suffix) -> None:
    model = tmp_path / f"fake{suffix}"
    model.write_bytes(b"<html>not a model</html>" * 10)
    data = tmp_path / "beats.npy"
    np.save(data, demo["mitbih_test.csv"].X[:3])
    code, _, err = run_cli(capsys, "-m", model, data)
    assert code == 2
    assert "not a" in one_line_error(err)


def test_missing_model_and_unknown_suffix(capsys, tmp_path, demo) -> None:
    data = tmp_path / "beats.npy"
    np.save(data, demo["mitbih_test.csv"].X[:3])
    code, _, err = run_cli(capsys, "-m", tmp_path / "nope.keras", data)
    assert code == 2 and "not found" in one_line_error(err)
    (tmp_path / "m.pkl").write_bytes(b"x")
    code, _, err = run_cli(capsys, "-m", tmp_path / "m.pkl", data)
    assert code == 2 and "unknown model type" in one_line_error(err)


def test_model_with_wrong_number_of_classes(capsys, tmp_path, models, demo) -> None:
    data = tmp_path / "beats.npy"
    np.save(data, demo["mitbih_test.csv"].X[:3])
    code, _, err = run_cli(capsys, "-m", models["three"], data)
    assert code == 2 and "predicts 3 classes" in one_line_error(err)
    code, _, err = run_cli(capsys, "-m", models["mlp_ptb"], data, "--dataset", "mitbih")
    assert code == 2 and "--dataset mitbih" in one_line_error(err)
    labelled = tmp_path / "mit.csv"
    write_beats_csv(labelled, demo["mitbih_test.csv"].X, demo["mitbih_test.csv"].y)
    code, _, err = run_cli(capsys, "-m", models["mlp_ptb"], labelled)
    assert code == 2 and "right model for this file" in one_line_error(err)


def test_model_with_two_inputs_is_refused(capsys, tmp_path, demo) -> None:
    import keras

    from heartbeat.model.saving import save_model

    beat = keras.Input(shape=(BEAT_LENGTH,), name="beat")
    rhythm = keras.Input(shape=(3,), name="rhythm")
    x = keras.layers.Concatenate()([beat, rhythm])
    model = keras.Model([beat, rhythm], keras.layers.Dense(5, activation="softmax")(x))
    save_model(model, tmp_path / "two.keras")
    data = tmp_path / "beats.npy"
    np.save(data, demo["mitbih_test.csv"].X[:3])
    code, _, err = run_cli(capsys, "-m", tmp_path / "two.keras", data)
    assert code == 2 and "takes 2 input(s)" in one_line_error(err)


def test_record_with_no_usable_lead(capsys, tmp_path, models) -> None:
    ecg = _synthetic_ecg(10)
    record = _write_record(tmp_path, "v1only", np.column_stack([ecg, ecg]), ["V1", "V2"])
    code, _, err = run_cli(capsys, "-m", models["resnet_mitbih"], record)
    assert code == 2 and "no usable lead" in one_line_error(err)
    flat = _write_record(tmp_path, "flat", np.zeros((3600, 1)), ["MLII"])
    code, _, err = run_cli(capsys, "-m", models["resnet_mitbih"], flat)
    assert code == 2 and "flat" in one_line_error(err)


def test_missing_input(capsys, tmp_path, models) -> None:
    code, _, err = run_cli(capsys, "-m", models["resnet_mitbih"], tmp_path / "nothing")
    assert code == 2 and "not found" in one_line_error(err)


def test_read_input_errors_are_data_errors(tmp_path) -> None:
    from heartbeat.serve.inputs import read_input

    with pytest.raises(DataError, match="--peaks annotations needs"):
        ecg = _synthetic_ecg(10)
        read_input(_write_record(tmp_path, "noatr", ecg[:, None], ["MLII"]), peaks="annotations")


# ---------------------------------------------------------------- the installed command


def test_console_script_help_and_exit_code(tmp_path) -> None:
    exe = Path(sys.executable).with_name("heartbeat")
    if not exe.exists():
        pytest.skip("the heartbeat console script is not installed in this environment")
    help_text = subprocess.run([exe, "predict", "--help"], capture_output=True, text=True, check=True).stdout
    for word in ("--model", "--backend", "--format", "WFDB", "exit status"):
        assert word in help_text
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    done = subprocess.run([exe, "predict", "-m", "m.keras", empty], capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "empty" in done.stderr
    done = subprocess.run([exe, "predict", empty], capture_output=True, text=True)  # the pretrained model
    assert done.returncode == 2 and "Traceback" not in done.stderr and "empty" in done.stderr


@pytest.mark.parametrize("width", [6, 9])
def test_rhythm_model_takes_its_rr_features_from_the_record(capsys, tmp_path, demo, width: int) -> None:
    """A beat + R-R model (train_resnet_mitbih.rhythm; 9 features with template: true) runs on a
    record; a bare beat file cannot feed it."""
    import io

    import pandas as pd

    from heartbeat.model.architectures import build_resnet
    from heartbeat.model.saving import save_model
    from heartbeat.serve.inputs import read_input
    from heartbeat.serve.runners import load_runner, predict_proba

    model = build_resnet(5, filters=4, blocks=2, dense=8, rhythm_features=width)
    save_model(model, tmp_path / "rhythm.keras")
    record = _write_record(tmp_path, "rec", _synthetic_ecg(30)[:, None], ["MLII"])
    code, out, err = run_cli(capsys, "-m", tmp_path / "rhythm.keras", record, "-q")
    assert code == 0, err
    rows = pd.read_csv(io.StringIO(out))
    beats = read_input(str(record), "auto")
    assert len(rows) == len(beats) > 20
    runner = load_runner(tmp_path / "rhythm.keras", "keras", 1)
    assert runner.rhythm_width == width
    context = beats.context
    expected = predict_proba(runner, beats.X, rhythm=context)
    np.testing.assert_allclose(rows[[f"p_{c}" for c in "NSVFQ"]].to_numpy(), expected, atol=1e-5)
    rr_only = context[:, :6]
    if width == 6:  # an R-R model reads the first 6 columns of the context
        np.testing.assert_array_equal(predict_proba(runner, beats.X, rhythm=rr_only), expected)
    else:
        with pytest.raises(DataError, match="takes 9 rhythm features, got 6"):
            predict_proba(runner, beats.X, rhythm=rr_only)

    data = tmp_path / "beats.npy"
    np.save(data, demo["mitbih_test.csv"].X[:3])
    code, _, err = run_cli(capsys, "-m", tmp_path / "rhythm.keras", data)
    assert code == 2 and "only a recording" in one_line_error(err)
    for backend in ("tflite", "onnx"):  # converted on the fly, the context matrix as second input
        code, out, err = run_cli(capsys, "-m", tmp_path / "rhythm.keras", record, "--backend", backend, "-q")
        assert code == 0, err
        converted = pd.read_csv(io.StringIO(out))[[f"p_{c}" for c in "NSVFQ"]].to_numpy()
        np.testing.assert_allclose(converted, expected, atol=1e-4)


def test_stored_temperature_calibrates_predictions(tmp_path, models, demo) -> None:
    """A model trained with ``calibration: temperature`` predicts its calibrated probabilities."""
    import json
    import shutil

    from heartbeat.model.calibration import apply_temperature
    from heartbeat.serve.runners import load_runner, predict_proba

    X = demo["mitbih_test.csv"].X[:50]
    keras_path = tmp_path / "resnet_mitbih.keras"
    shutil.copy(models["resnet_mitbih"], keras_path)
    raw = predict_proba(load_runner(keras_path), X)
    (tmp_path / "resnet_mitbih.json").write_text(json.dumps({"temperature": 2.5}))
    runner = load_runner(keras_path)
    assert runner.steps.temperature == 2.5
    calibrated = predict_proba(runner, X)
    np.testing.assert_allclose(calibrated, apply_temperature(raw, 2.5), atol=1e-6)
    assert not np.allclose(calibrated, raw, atol=1e-3)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, atol=1e-5)
    # An exported file whose manifest does not vouch for the current .keras gets no temperature.
    (tmp_path / "export").mkdir()
    shutil.copy(models["resnet_mitbih_tflite"], tmp_path / "export" / "resnet_mitbih.tflite")
    assert load_runner(tmp_path / "export" / "resnet_mitbih.tflite").steps.temperature is None


def _model_trained_on(tmp_path: Path, **trained_on: object) -> tuple[Path, dict]:
    """A copy of the pretrained model whose sidecar's ``trained_on`` says ``trained_on``; and the sidecar."""
    from heartbeat.serve import pretrained

    sidecar = json.loads(Path(pretrained.MODEL).with_suffix(".json").read_text())
    sidecar["trained_on"].update(trained_on)
    return pretrained_copy(tmp_path / "m.keras", trained_on=sidecar["trained_on"]), sidecar


def _assert_predict_classifies(capsys, path: Path, model: Path, beats) -> None:
    """``heartbeat predict`` on ``path`` gives the model's probabilities of exactly ``beats``' inputs."""
    from heartbeat.serve.runners import load_runner, predict_proba

    runner = load_runner(model, "keras")
    expected = predict_proba(
        runner, beats.X, window=beats.window, patient=beats.patient, each_beat_alone=True
    )
    code = main(["predict", str(path), "--fs", "360", "-m", str(model), "-f", "json", "--each-beat-alone"])
    out, err = capsys.readouterr()
    assert code == 0, err
    got = np.array([[row[f"p_{c}"] for c in "NSVFQ"] for row in json.loads(out)["beats"]])
    np.testing.assert_allclose(got, expected, atol=2e-6)


def _refused(capsys, path: Path, model: Path, sidecar: dict) -> str:
    """The one error line of ``heartbeat predict`` with ``sidecar`` as the model's (non-zero exit)."""
    model.with_suffix(".json").write_text(json.dumps(sidecar))
    code = main(["predict", str(path), "--fs", "360", "-m", str(model)])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1, err
    return err


def test_predict_cuts_a_recording_with_the_reference_its_model_was_trained_with(capsys, tmp_path) -> None:
    """A model whose sidecar says ``trained_on.reference: rhythm`` gets patient features measured
    against the beats of the patient's own rhythm; a value training never writes is refused."""
    from heartbeat.serve.inputs import read_input
    from heartbeat.serve.runners import load_runner
    from tests.test_patient import record

    model, sidecar = _model_trained_on(tmp_path, reference="rhythm")
    lead, _ = record(seconds=60, premature=tuple(range(5, 70, 8)))  # 360 Hz, a premature beat in 8
    path = tmp_path / "lead.npy"
    np.save(path, lead)
    assert load_runner(model, "keras").reference == "rhythm"
    beats = read_input(str(path), fs=360.0, reference="rhythm")
    median = read_input(str(path), fs=360.0)
    assert not np.array_equal(beats.patient, median.patient)
    _assert_predict_classifies(capsys, path, model, beats)
    sidecar["trained_on"]["reference"] = "mode"
    assert "trained_on.reference 'mode' is not one of median, rhythm" in _refused(
        capsys, path, model, sidecar
    )


@pytest.mark.parametrize("bad", ["300", -1, 1e9, True, [300]])
def test_predict_scales_a_recording_by_stretches_as_its_model_was_trained(capsys, tmp_path, bad) -> None:
    """A model whose sidecar says ``trained_on.amplitude_stretch_s`` gets patient features from a
    recording brought to one amplitude stretch by stretch, as its training data was; a value training
    never writes is refused with one line."""
    from heartbeat.serve.inputs import read_input
    from heartbeat.serve.runners import load_runner
    from tests.test_patient import record

    model, sidecar = _model_trained_on(tmp_path, amplitude_stretch_s=60)
    lead, _ = record(seconds=300, premature=(50, 250))
    lead = np.where(np.arange(lead.size) > lead.size // 2, 1.6 * lead, lead)  # a posture change
    path = tmp_path / "lead.npy"
    np.save(path, lead)
    runner = load_runner(model, "keras")
    assert runner.patient_options == {"reference": runner.reference, "amplitude_stretch_s": 60.0}
    beats = read_input(str(path), fs=360.0, reference=runner.reference, amplitude_stretch_s=60)
    whole = read_input(str(path), fs=360.0, reference=runner.reference)
    assert not np.array_equal(beats.patient, whole.patient)
    _assert_predict_classifies(capsys, path, model, beats)
    sidecar["trained_on"]["amplitude_stretch_s"] = bad
    err = _refused(capsys, path, model, sidecar)
    assert "trained_on.amplitude_stretch_s" in err and "retrain the model" in err
