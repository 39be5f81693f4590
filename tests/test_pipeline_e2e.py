"""End to end: the real ``dvc repro`` on the demo source, in a temporary git repo with tiny epochs."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from heartbeat.core.registry import MODEL_SPECS
from tests.conftest import dvc, edit_params, git, make_project

pytestmark = pytest.mark.slow

METRIC_KEYS = {"accuracy", "macro_f1", "ece"}
DETAIL_KEYS = {
    "model",
    "dataset",
    "data_source",
    "synthetic_data",
    "split",
    "weight_count",
    "test_beats",
    "weighted_f1",
    "per_class",
}


def _ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _smoothed_by_record(project: Path, model, info: dict, metrics: dict, details: dict) -> None:
    """evaluate smooths the shipped ensemble's probabilities over each test record with the library's
    one function (each member's temperature is inside it), and keeps what each beat alone scores beside."""
    import numpy as np

    from heartbeat.core.stored import RecordSmoothing
    from heartbeat.evaluate.metrics import classification_metrics
    from heartbeat.model.architectures import model_inputs
    from heartbeat.model.smoothing import smooth_over_records
    from heartbeat.prepare.arrays import load_split

    assert info["record_smoothing"] == {"neighbours": 20, "weight": 0.5, "span": 5000}  # params.yaml
    test = load_split(project / "data/prepared/mitbih", "test")
    assert test.G is not None and len(np.unique(test.G)) > 1  # the beat split mixes records
    proba = model.predict(model_inputs(model, test), batch_size=1024, verbose=0)  # evaluate's batch
    assert "temperature" not in info and len(info["ensemble"]["temperature"]) == 3  # folded in
    alone = classification_metrics(test.y, proba, ("N", "S", "V", "F", "Q"))
    smoothed = smooth_over_records(proba, test.W, test.G, RecordSmoothing(20, 0.5, 5000))
    ours = classification_metrics(test.y, smoothed, ("N", "S", "V", "F", "Q"))
    for key in ("accuracy", "macro_f1", "macro_f1_nsvf"):
        assert (
            abs(metrics[key] - ours[key]) < 1e-9 and abs(details["each_beat_alone"][key] - alone[key]) < 1e-9
        )


def test_outputs_and_metrics_schema(tiny_repro: Path) -> None:
    project = tiny_repro
    for name in (
        "mitbih_train.csv",
        "mitbih_test.csv",
        "ptbdb_normal.csv",
        "ptbdb_abnormal.csv",
        "source.json",
    ):
        assert (project / "data/raw" / name).is_file()
    for dataset in ("mitbih", "ptb"):
        for split in ("train", "val", "test"):
            assert (project / f"data/prepared/{dataset}/X_{split}.npy").is_file()
    counts = json.loads((project / "data/prepared/counts.json").read_text())
    assert set(counts["mitbih"]["train"]) == {"N", "S", "V", "F", "Q"}
    for name, spec in MODEL_SPECS.items():
        assert (project / f"models/{name}.keras").is_file()
        info = json.loads((project / f"models/{name}.json").read_text())
        assert info["weight_count"] > 0 and "train_seconds" not in info  # no run-to-run values
        metrics = json.loads((project / f"metrics/{name}.json").read_text())
        assert METRIC_KEYS <= set(metrics)
        assert all(isinstance(v, float) for v in metrics.values()), "a DVC metrics file holds numbers only"
        details = json.loads((project / f"metrics/details/{name}.json").read_text())
        calibration = details.pop("calibration", None)
        if "temperature" in info:  # calibration: temperature (params.yaml's resnet_mitbih)
            assert calibration["temperature"] == info["temperature"] and calibration["ece_uncalibrated"] >= 0
        else:
            assert calibration is None
        smoothing = details.pop("record_smoothing", None)
        assert (smoothing is None) == ("record_smoothing" not in info)
        gate = details.pop("irregular_rhythm_gate", None)
        assert (gate is None) == ("irregular_rhythm_gate" not in info)
        if gate is not None:  # the beats it took S from, and what the probabilities before it score
            assert 0 <= gate["s_calls_taken"] <= gate["irregular_beats"] <= details["test_beats"]
            assert METRIC_KEYS <= set(gate["before_gate"])
        qrs_gate = details.pop("unlike_qrs_gate", None)
        assert (qrs_gate is None) == ("unlike_qrs_gate" not in info)
        if qrs_gate is not None:  # the beats whose QRS is unlike, the S calls taken, the scores before
            assert 0 <= qrs_gate["s_calls_taken"] <= qrs_gate["unlike_qrs_beats"] <= details["test_beats"]
            assert METRIC_KEYS <= set(qrs_gate["before_gate"])
        assert set(details) == DETAIL_KEYS
        assert details["data_source"] == "demo" and details["synthetic_data"] is True
        assert details["split"] == "beat" and details["dataset"] == spec.dataset
        assert 0 <= metrics["accuracy"] <= 1
        expected = ["N", "S", "V", "F", "Q"] if spec.dataset == "mitbih" else ["normal", "abnormal"]
        assert list(details["per_class"]) == expected
        assert set(details["per_class"]["N" if spec.dataset == "mitbih" else "normal"]) == {
            "sensitivity",
            "positive_predictivity",
            "f1",
            "support",
        }
        if spec.dataset == "ptb":
            assert {"roc_auc", "pr_auc"} <= set(metrics)
        else:
            from heartbeat.model.saving import load_model

            model = load_model(project / f"models/{name}.keras", 5)
            assert "macro_f1_nsvf" in metrics
            assert [t.name for t in model.inputs] == ["window", "patient"]  # the shipped recipe runs
            _smoothed_by_record(project, model, info, metrics, smoothing)
        history = (project / f"plots/{name}/history.csv").read_text().splitlines()
        header = "epoch,loss,accuracy,val_loss,val_accuracy"
        if name == "resnet_mitbih":  # params.yaml's default: three networks, each row says whose
            assert info["ensemble"]["seeds"] == [0, 1, 2] and len(history) == 1 + info["epochs_run"]
            header += ",member"
        assert history[0] == header and len(history) >= 2
        confusion = (project / f"plots/{name}/confusion.csv").read_text().splitlines()
        assert confusion[0] == "actual,predicted,beats" and len(confusion) == 1 + len(expected) ** 2
        assert sum(int(line.rsplit(",", 1)[1]) for line in confusion[1:]) == details["test_beats"]
        for png in ("accuracy.png", "confusion.png"):
            assert (project / f"plots/{name}/{png}").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    status = dvc(project, "status").stdout
    assert "up to date" in status


def test_param_edit_reruns_only_affected_stages(tmp_path: Path, tiny_repro: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(tiny_repro, project, symlinks=True)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "baseline run")
    before = json.loads((project / "metrics/mlp_ptb.json").read_text())
    weights = json.loads((project / "metrics/details/mlp_ptb.json").read_text())["weight_count"]

    # Same params, same machine: identical metrics (retrain and re-evaluate by hand).
    for stage in ("train_mlp", "evaluate"):
        subprocess.run([sys.executable, f"stages/{stage}.py"], cwd=project, check=True, capture_output=True)
    assert json.loads((project / "metrics/mlp_ptb.json").read_text()) == before
    git(project, "checkout", "-q", "--", ".")

    manifest = json.loads((project / "models/export/manifest.json").read_text())
    edit_params(project, {"train_mlp": {"hidden": [32]}})
    proc = dvc(project, "repro")
    out = proc.stdout
    # export and report consume every model, so they rerun too; evaluate runs for this model only
    assert _ran_stages(out) == {"train_mlp", "export", "evaluate@mlp_ptb", "report"}, out
    after = json.loads((project / "metrics/details/mlp_ptb.json").read_text())["weight_count"]
    assert after == 187 * 32 + 32 + 32 * 2 + 2 != weights

    diff = json.loads(dvc(project, "metrics", "diff", "--json").stdout)
    assert "metrics/resnet_mitbih.json" not in diff  # untouched model, unchanged metrics
    # The per-class and descriptive file is no DVC metric, but `dvc metrics diff --targets` reads it.
    details = "metrics/details/mlp_ptb.json"
    diff = json.loads(dvc(project, "metrics", "diff", "--targets", details, "--json").stdout)
    assert diff[details]["weight_count"] == {"old": weights, "new": after, "diff": after - weights}

    # export reran, but converted and checked only the retrained model; the others were copied
    logs = proc.stdout + proc.stderr
    now = json.loads((project / "models/export/manifest.json").read_text())
    assert now["models"]["mlp_ptb"]["inputs"] != manifest["models"]["mlp_ptb"]["inputs"]
    for name in ("resnet_ptb", "resnet_mitbih", "transfer_ptb"):
        assert now["models"][name] == manifest["models"][name]
        assert f"{name}: unchanged since the last export" in logs, logs
        for f in now["models"][name]["files"]:
            assert (project / "models/export" / f).is_file()
    assert "mlp_ptb: unchanged" not in logs


NATIVE_LOG = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:|absl::InitializeLog|oneDNN|NodeDef mentions|fully_quantize", re.M
)


def test_rerun_on_a_fresh_clone_leaves_git_clean(tmp_path: Path, tiny_repro: Path) -> None:
    """Commit a run's results, clone them (no data, no models, no DVC cache) and run again: the same
    outputs, so git sees no change and `dvc metrics diff` is empty; the log is our own lines only."""
    project = tmp_path / "project"
    shutil.copytree(tiny_repro, project, symlinks=True)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "results")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    proc = dvc(clone, "repro")
    log = proc.stdout + proc.stderr
    assert _ran_stages(log) >= {"fetch", "train_resnet_mitbih", "export"}, log
    assert git(clone, "status", "--porcelain") == "", git(clone, "diff", "--stat")
    assert json.loads(dvc(clone, "metrics", "diff", "--json").stdout) == {}
    assert not NATIVE_LOG.search(log), NATIVE_LOG.search(log)
    assert "WARNING" not in log and "Traceback" not in log, log


def test_failed_preprocess_keeps_previous_outputs(tmp_path: Path, tiny_repro: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(tiny_repro, project, symlinks=True)
    prepared_before = _digest(project / "data/prepared")
    raw = project / "data/raw/mitbih_train.csv"
    raw.unlink()  # DVC links cached files read-only; replace instead of editing in place
    good = (tiny_repro / "data/raw/mitbih_train.csv").read_text().splitlines()
    good[9] = ",".join(good[9].split(",")[:120])
    raw.write_text("\n".join(good) + "\n")

    proc = dvc(project, "repro", "--single-item", "preprocess", check=False)
    assert proc.returncode != 0
    assert "mitbih_train.csv: row 10 has 120 columns, expected 188" in proc.stderr + proc.stdout
    assert _digest(project / "data/prepared") == prepared_before
    leftovers = [p.name for p in (project / "data").rglob(".*tmp*")]
    assert leftovers == []


def test_unknown_source_lists_valid_ones(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", {"data": {"source": "ftp"}})
    proc = dvc(project, "repro", "fetch", check=False)
    assert proc.returncode != 0
    text = proc.stderr + proc.stdout
    assert "data.source: 'ftp' is not valid; expected one of 'demo', 'local', 'kaggle' or 'physionet'" in text
    assert "Traceback" not in text
    assert not (project / "data/raw").exists()


def test_a_classical_architecture_runs_through_the_pipeline_and_predict(
    tmp_path: Path, tiny_repro: Path, capsys
) -> None:
    """architecture: gbt is trained by the stage, calibrated after smoothing, exported (fp32 only),
    evaluated and served by ``heartbeat predict``; the transfer stage, with no representation to
    carry over, says so and trains the paper's ResNet from scratch. ``data.reference: rhythm`` and
    ``data.amplitude_stretch_s`` travel from the fetch stage to the model's sidecar, and predict cuts
    the recording the same way."""
    import numpy as np

    from heartbeat.serve.cli import main
    from tests.test_recordings import synthetic_ecg

    project = tmp_path / "project"
    shutil.copytree(tiny_repro, project, symlinks=True)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "baseline run")
    edit_params(
        project,
        {
            "data": {"reference": "rhythm", "amplitude_stretch_s": 60},
            "train_resnet_mitbih": {"architecture": "gbt", "trees": {"iterations": 6}},
        },
    )
    proc = dvc(project, "repro")
    logs = proc.stdout + proc.stderr
    assert {"train_resnet_mitbih", "finetune_transfer", "export", "evaluate@resnet_mitbih"} <= _ran_stages(
        logs
    )
    assert "no learnt representation to transfer" in logs, logs
    info = json.loads((project / "models/resnet_mitbih.json").read_text())
    assert info["record_smoothing"]["weight"] == 0.5 and 0.05 <= info["temperature"] <= 20
    assert info["trained_on"]["reference"] == "rhythm" and info["trained_on"]["amplitude_stretch_s"] == 60
    prepared_info = json.loads((project / "data/prepared/info.json").read_text())
    assert prepared_info["reference"] == "rhythm" and prepared_info["amplitude_stretch_s"] == 60
    assert info["best_epoch"] == 6  # one history row per boosting iteration here
    details = json.loads((project / "metrics/details/resnet_mitbih.json").read_text())
    assert "each_beat_alone" in details["record_smoothing"]
    export = json.loads((project / "metrics/export.json").read_text())["models"]["resnet_mitbih"]
    assert export["tflite"]["argmax_agreement"] == 1.0 and export["onnx"]["argmax_agreement"] == 1.0
    assert not export["tflite_dynamic"]["shipped"] and "trees" in export["tflite_dynamic"]["error"]

    recording = tmp_path / "lead.npy"
    np.save(recording, synthetic_ecg(60, rate_bpm=80))
    classes = {}
    for model in ("models/resnet_mitbih.keras", "models/export/resnet_mitbih.tflite"):
        code = main(["predict", str(recording), "--fs", "250", "-m", str(project / model), "-f", "json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        data = json.loads(out)
        assert data["record_smoothing"] is not None
        classes[model] = [row["predicted"] for row in data["beats"]]
    assert len(set(map(tuple, classes.values()))) == 1 and len(classes["models/resnet_mitbih.keras"]) > 50
