"""Tests of the export stage's library: TFLite/ONNX conversion, the parity gate, quantised variants,
the manifest that keeps ``heartbeat predict`` from serving a stale export, and the params schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from heartbeat.core.config import DemoConfig, ExportConfig, parse_section
from heartbeat.core.errors import ModelError, ParamsError
from heartbeat.fetch.demo import demo_beats
from heartbeat.prepare.arrays import Split
from heartbeat.serve.convert import parity
from heartbeat.serve.export import Thresholds, export_model, representative_beats

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data() -> dict:
    return demo_beats(DemoConfig(mitdb_records=6, mitdb_minutes=2, ptbdb_records=2, ptbdb_minutes=0.5), 1)


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory, data) -> Path:
    """A small ResNet trained one epoch: the same layer types as the pipeline's, 4x fewer filters."""
    import keras

    from heartbeat.model.architectures import build_resnet
    from heartbeat.model.saving import save_model

    keras.utils.set_random_seed(0)
    model = build_resnet(5, filters=8, blocks=3, dense=16)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    train = data["mitbih_train.csv"]
    model.fit(train.X, train.y, epochs=1, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("models") / "resnet_mitbih.keras"
    save_model(model, path)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory, keras_model, data) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("export")
    test, train = data["mitbih_test.csv"], data["mitbih_train.csv"]
    figures = export_model(
        "resnet_mitbih",
        keras_model,
        out,
        Split(test.X, test.y),
        quantize=("dynamic", "int8"),
        representative=representative_beats(Split(train.X, train.y), 200, 0),
        thresholds=Thresholds(min_agreement=0.999, max_abs_diff=1e-4, max_f1_change=0.002),
    )
    return out, figures


def test_parity_figures() -> None:
    ref = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]], np.float32)
    other = np.array([[0.8, 0.2], [0.6, 0.4], [0.2, 0.8]], np.float32)
    check = parity(ref, other)
    assert check.n == 3 and check.disagreements == 1
    assert check.agreement == pytest.approx(2 / 3)
    assert check.max_abs_diff == pytest.approx(0.2, abs=1e-6)
    with pytest.raises(ModelError):
        parity(ref, other[:2])


def test_fp32_exports_match_keras_on_the_test_split(exported, data) -> None:
    out, figures = exported
    for fmt in ("tflite", "onnx"):
        assert (out / f"resnet_mitbih.{fmt}").is_file()
        f = figures[fmt]
        assert "error" not in f, f
        assert f["n"] == len(data["mitbih_test.csv"].y)
        assert f["argmax_agreement"] >= 0.999
        assert f["max_abs_prob_diff"] <= 1e-4
        assert f["macro_f1"] == pytest.approx(figures["keras"]["macro_f1"], abs=0.002)


def test_exports_are_byte_deterministic(tmp_path, keras_model, exported) -> None:
    """Exported again later in the same process (tf2onnx's name counters have moved on): the same
    bytes, so a rerun of the export stage leaves models/export and dvc.lock unchanged."""
    from heartbeat.model.saving import load_model
    from heartbeat.serve.convert import export_onnx, export_tflite

    model = load_model(keras_model)
    export_onnx(model, tmp_path / "again.onnx")
    export_tflite(model, tmp_path / "again.tflite")
    out, _ = exported
    assert (tmp_path / "again.onnx").read_bytes() == (out / "resnet_mitbih.onnx").read_bytes()
    assert (tmp_path / "again.tflite").read_bytes() == (out / "resnet_mitbih.tflite").read_bytes()


def test_quantised_variants_are_reported_and_gated(exported) -> None:
    out, figures = exported
    for variant in ("dynamic", "int8"):
        f = figures[f"tflite_{variant}"]
        assert {"argmax_agreement", "macro_f1_change", "shipped", "bytes"} <= set(f)
        passes = f["argmax_agreement"] >= 0.999 and abs(f["macro_f1_change"]) < 0.002
        assert f["shipped"] == passes
        assert (out / f"resnet_mitbih.{variant}.tflite").is_file() == passes
        assert f["bytes"] < figures["tflite"]["bytes"]  # int8 weights: about 4x smaller


def test_a_failing_gate_is_an_error(tmp_path, keras_model, data) -> None:
    test = data["mitbih_test.csv"]
    with pytest.raises(ModelError, match="does not match Keras"):
        export_model(
            "resnet_mitbih",
            keras_model,
            tmp_path,
            Split(test.X[:50], test.y[:50]),
            formats=("tflite",),
            thresholds=Thresholds(max_abs_diff=1e-12),
        )


def test_quantised_variant_not_shipped_below_its_gate(tmp_path, keras_model, data) -> None:
    test = data["mitbih_test.csv"]
    figures = export_model(
        "resnet_mitbih",
        keras_model,
        tmp_path,
        Split(test.X[:50], test.y[:50]),
        formats=(),
        quantize=("dynamic",),
        thresholds=Thresholds(min_agreement=1.01),  # unreachable: nothing may ship
    )
    assert figures["tflite_dynamic"]["shipped"] is False
    assert not (tmp_path / "resnet_mitbih.dynamic.tflite").exists()


def test_predict_uses_an_export_only_when_its_manifest_matches(tmp_path, keras_model, exported) -> None:
    import shutil

    from heartbeat.core.hashing import sha256_file
    from heartbeat.serve.runners import load_runner

    out, _ = exported
    models = tmp_path / "models"
    (models / "export").mkdir(parents=True)
    shutil.copy(keras_model, models / "resnet_mitbih.keras")
    shutil.copy(out / "resnet_mitbih.tflite", models / "export" / "resnet_mitbih.tflite")
    exported_sha = {"resnet_mitbih.tflite": sha256_file(out / "resnet_mitbih.tflite")}
    manifest = {"models": {"resnet_mitbih": {"sha256": sha256_file(keras_model)}}}
    (models / "export" / "manifest.json").write_text(json.dumps(manifest))
    runner = load_runner(models / "resnet_mitbih.keras", "tflite")
    assert runner.source == "converted from resnet_mitbih.keras"  # nothing vouches for the file's bytes
    manifest["models"]["resnet_mitbih"]["file_sha256"] = exported_sha
    (models / "export" / "manifest.json").write_text(json.dumps(manifest))
    runner = load_runner(models / "resnet_mitbih.keras", "tflite")
    assert runner.source == "exported from resnet_mitbih.keras"
    assert runner.path == models / "export" / "resnet_mitbih.tflite"
    manifest["models"]["resnet_mitbih"]["sha256"] = "0" * 64  # the .keras was retrained since
    (models / "export" / "manifest.json").write_text(json.dumps(manifest))
    runner = load_runner(models / "resnet_mitbih.keras", "tflite")
    assert runner.source == "converted from resnet_mitbih.keras"


def test_export_params_schema() -> None:
    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg = parse_section(ExportConfig, "export", raw.get("export"))
    assert set(cfg.formats) <= {"tflite", "onnx"}
    assert cfg.min_agreement >= 0.999 and cfg.max_abs_diff <= 1e-4
    with pytest.raises(ParamsError, match="export.formats"):
        parse_section(ExportConfig, "export", {"formats": ["coreml"]})
    with pytest.raises(ParamsError, match="unknown key"):
        parse_section(ExportConfig, "export", {"formts": ["onnx"]})


def test_dvc_stage_declares_the_export_outputs() -> None:
    import yaml

    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["export"]
    deps = set(stage["deps"])
    for name in ("mlp_ptb", "resnet_ptb", "resnet_mitbih", "transfer_ptb"):
        assert f"models/{name}.keras" in deps
    assert {"stages/export.py", "heartbeat/serve"} <= deps
    assert stage["params"] == ["export"]
    assert stage["outs"] == [
        {"models/export": {"persist": True}},
        {"metrics/export.json": {"persist": True, "cache": False}},
    ]
    assert "metrics" not in stage, "parity details are no DVC metric: `dvc metrics show` stays per model"


def test_precision_picks_only_a_shipped_quantised_variant(tmp_path, keras_model, exported) -> None:
    import shutil

    from heartbeat.core.hashing import sha256_file
    from heartbeat.serve.runners import load_runner

    out, figures = exported
    models = tmp_path / "models"
    (models / "export").mkdir(parents=True)
    shutil.copy(keras_model, models / "resnet_mitbih.keras")
    manifest = {"models": {"resnet_mitbih": {"sha256": sha256_file(keras_model)}}}
    (models / "export" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="no shipped dynamic variant"):
        load_runner(models / "resnet_mitbih.keras", precision="dynamic")
    quantised = out / "resnet_mitbih.dynamic.tflite"
    if not quantised.exists():  # the variant failed its gate on this tiny model: nothing to pick
        quantised = tmp_path / "stand-in.tflite"
        shutil.copy(out / "resnet_mitbih.tflite", quantised)
    shutil.copy(quantised, models / "export" / "resnet_mitbih.dynamic.tflite")
    manifest["models"]["resnet_mitbih"]["file_sha256"] = {
        "resnet_mitbih.dynamic.tflite": sha256_file(quantised)
    }
    (models / "export" / "manifest.json").write_text(json.dumps(manifest))
    runner = load_runner(models / "resnet_mitbih.keras", precision="dynamic")
    assert runner.backend == "tflite" and runner.source.startswith("dynamic-quantised export")
    with pytest.raises(ModelError, match="needs the tflite backend"):
        load_runner(models / "resnet_mitbih.keras", backend="onnx", precision="dynamic")
    assert figures["tflite_dynamic"]["bytes"] > 0


@pytest.mark.parametrize("kind", ["rhythm6", "rhythm9", "patient"])
def test_multi_input_models_are_exported_and_run_on_every_backend(tmp_path, data, kind) -> None:
    """A beat + context model, and the two-lead window + patient model, go through the same gates as a
    beat-only one, and their TFLite and ONNX files take the same inputs, in whatever order the converter
    chose (found by name)."""
    from heartbeat.model.architectures import build_patient_net, build_resnet
    from heartbeat.model.saving import save_model
    from heartbeat.serve.runners import load_runner, predict_proba
    from heartbeat.signal.patient import PATIENT_COLUMNS, WINDOW_BEFORE, WINDOW_SHAPE, second_lead_columns

    keras.utils.set_random_seed(0)
    test, train = data["mitbih_test.csv"], data["mitbih_train.csv"]
    rng = np.random.default_rng(0)

    def sides(n: int) -> dict:
        return {
            "R": rng.uniform(0, 2, (n, 9)).astype(np.float32),
            "W": rng.normal(0, 0.3, (n, *WINDOW_SHAPE)).astype(np.float32),
            "P": rng.uniform(-1, 1, (n, len(PATIENT_COLUMNS))).astype(np.float32),
        }

    if kind == "patient":
        two, one = second_lead_columns()
        model = build_patient_net(  # every training-only layer: lead, branch and window augmentation
            5,
            WINDOW_SHAPE,
            len(PATIENT_COLUMNS),
            8,
            7,
            1,
            8,
            0.3,
            0.3,
            (two.tolist(), one.tolist()),
            seed=0,
            branch_dropout=0.5,
            augment={"amplitude": 0.2, "wander": 0.1, "noise": 0.02, "stretch": 0.1},
            centre=WINDOW_BEFORE,
        )
    else:
        model = build_resnet(5, filters=4, blocks=2, dense=8, rhythm_features=int(kind[-1]))
    path = tmp_path / "resnet_mitbih.keras"
    save_model(model, path)
    test_split = Split(test.X, test.y, **sides(len(test.y)))
    figures = export_model(
        "resnet_mitbih",
        path,
        tmp_path,
        test_split,
        quantize=("dynamic", "int8"),
        representative=representative_beats(Split(train.X, train.y, **sides(len(train.y))), 200, 0),
    )
    for fmt in ("tflite", "onnx"):
        assert figures[fmt]["argmax_agreement"] >= 0.999 and figures[fmt]["max_abs_prob_diff"] <= 1e-4
    assert {"tflite_dynamic", "tflite_int8"} <= set(figures)
    assert "error" not in figures["tflite_int8"]  # 200 representative beats: 6 whole batches of 32
    given = {"rhythm": test_split.R, "window": test_split.W, "patient": test_split.P}
    expected = predict_proba(load_runner(path, "keras"), test.X, **given)
    for backend in ("tflite", "onnx"):
        runner = load_runner(tmp_path / f"resnet_mitbih.{backend}", backend)
        assert runner.inputs == (("window", "patient") if kind == "patient" else ("beat", "rhythm"))
        np.testing.assert_allclose(predict_proba(runner, test.X, **given), expected, atol=1e-4)
        with pytest.raises(Exception, match="only a recording"):
            predict_proba(runner, test.X)


def test_an_ensembles_onnx_export_is_byte_deterministic_across_processes(tmp_path) -> None:
    """An ensemble's members are parallel branches: tf2onnx put them in either order, and kept either
    member's name on the nodes it merged, from one process to the next."""
    from heartbeat.model.architectures import build_ensemble, build_resnet
    from heartbeat.model.saving import save_model
    from heartbeat.train.fit import make_deterministic

    members = []
    for seed in (0, 1, 2):
        make_deterministic(seed)
        members.append(build_resnet(5, filters=4, blocks=1, dense=8))
    path = tmp_path / "ensemble.keras"
    save_model(build_ensemble(members, "ensemble"), path)
    code = (
        "import sys; from heartbeat.model.saving import load_model; "
        "from heartbeat.serve.convert import export_onnx; export_onnx(load_model(sys.argv[1]), sys.argv[2])"
    )
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"ensemble_{hash_seed}.onnx"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run([sys.executable, "-c", code, str(path), str(out)], check=True, env=env, cwd=ROOT)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_an_export_made_with_other_converters_is_not_reused(tmp_path, monkeypatch) -> None:
    """The export stage copies a model's previous files when nothing they depend on changed; the
    converter code and libraries are part of that, or files made by an older tf2onnx or an older
    canonical_onnx would be carried forward (and differ from a fresh clone's)."""
    from heartbeat.serve import export

    data = tmp_path / "prepared"
    data.mkdir()
    np.save(data / "X_test.npy", np.zeros(3, np.float32))
    key = export.inputs_key("ab" * 32, {"formats": ["onnx"]}, data)
    assert key == export.inputs_key("ab" * 32, {"formats": ["onnx"]}, data)
    monkeypatch.setattr(export, "CONVERTERS", (*export.CONVERTERS, "a-converter-not-installed"))
    assert export.inputs_key("ab" * 32, {"formats": ["onnx"]}, data) != key
