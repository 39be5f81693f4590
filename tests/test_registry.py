"""The model registry (heartbeat/core/registry.py): dvc.yaml agrees with it, its tables agree with
each other, and a model added through it alone runs through training, evaluate, export, the report
and ``heartbeat predict``."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import pytest
import yaml

from heartbeat.core import registry
from heartbeat.core.beat_spec import PTB_CLASSES
from heartbeat.core.config import STAGE_SCHEMAS, ResNetConfig, TrainConfig
from heartbeat.core.registry import ARCHITECTURES, BEAT, CHOOSABLE, MODEL_SPECS, Architecture, ModelSpec
from testkit.projects import TINY_PARAMS, deep_update
from tests.conftest import ROOT
from tests.test_layout import expand_stages, uncovered

# ---------------------------------------------------------------- dvc.yaml against the registry


def _outs(stage: dict, key: str = "outs") -> set[str]:
    return {next(iter(o)) if isinstance(o, dict) else o for o in stage.get(key, [])}


def _keras_deps(stage: dict) -> set[str]:
    return {d for d in stage.get("deps", []) if d.startswith("models/") and d.endswith(".keras")}


def dvc_problems(dvc_yaml: dict, specs: dict[str, ModelSpec]) -> list[str]:
    """What in ``dvc_yaml`` (dvc.yaml, parsed) disagrees with the registry's ``specs``: each model's
    training stage, its evaluate stage, the export and report stages, and the metrics and plots lists."""
    expanded = expand_stages(dvc_yaml)
    problems: list[str] = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    for name, m in specs.items():
        train = expanded.get(m.stage)
        if train is None:
            problems.append(f"{name}: dvc.yaml has no stage {m.stage}")
            continue
        need(
            train["cmd"] == f"python stages/{m.stage}.py", f"{m.stage}: cmd is not python stages/{m.stage}.py"
        )
        want = {f"stages/{m.stage}.py", f"data/prepared/{m.dataset}", "data/prepared/info.json"}
        want |= {f"models/{m.base}.keras"} if m.base else set()
        for dep in sorted(want - set(train.get("deps", []))):
            problems.append(f"{m.stage}: deps lack {dep}")
        for path in uncovered(train):
            problems.append(f"{m.stage}: imports {path}, which no dep covers")
        need(train.get("params") == [m.stage, "train"], f"{m.stage}: params are not [{m.stage}, train]")
        outs = {f"models/{name}.keras", f"models/{name}.json", f"plots/{name}/history.csv"}
        need(_outs(train) == outs, f"{m.stage}: outs are {sorted(_outs(train))}, expected {sorted(outs)}")
        evaluate = expanded.get(f"evaluate@{name}")
        if evaluate is None:
            problems.append(f"evaluate: no foreach item {name}")
        else:
            for dep in (f"models/{name}.keras", f"plots/{name}/history.csv", f"data/prepared/{m.dataset}"):
                need(dep in evaluate["deps"], f"evaluate@{name}: deps lack {dep}")
            need(
                f"{m.stage}.calibration" in evaluate["params"],
                f"evaluate@{name}: params lack {m.stage}.calibration",
            )
            need(_outs(evaluate, "metrics") == {f"metrics/{name}.json"}, f"evaluate@{name}: metrics")
        for dep in (f"models/{name}.keras", f"data/prepared/{m.dataset}"):
            need(dep in expanded["export"]["deps"], f"export: deps lack {dep}")
        report = [f"metrics/{name}.json", f"metrics/details/{name}.json", f"models/{name}.json"]
        report += [f"plots/{name}/{stem}.png" for stem in ("accuracy", "confusion")]
        for dep in report:
            need(dep in expanded["report"]["deps"], f"report: deps lack {dep}")
        need(f"metrics/{name}.json" in dvc_yaml.get("metrics", []), f"metrics: lacks metrics/{name}.json")
    # ... and no model in dvc.yaml that the registry does not know.
    names = set(specs)
    trained = {Path(o).stem for s in expanded.values() for o in _outs(s) if o.endswith(".keras")}
    evaluated = {k.split("@", 1)[1] for k in expanded if k.startswith("evaluate@")}
    exported = {Path(d).stem for d in _keras_deps(expanded["export"])}
    for what, found in (("trains", trained), ("evaluates", evaluated), ("exports", exported)):
        for extra in sorted(found - names):
            problems.append(f"dvc.yaml {what} {extra}, which heartbeat/core/registry.py does not declare")
    return problems


def _dvc_yaml() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))


def test_dvc_yaml_agrees_with_the_registry() -> None:
    assert dvc_problems(_dvc_yaml(), MODEL_SPECS) == []


def test_the_dvc_check_names_what_disagrees() -> None:
    """The check can fail: a dropped dep, a stray output and a model the registry lacks are named."""
    broken = copy.deepcopy(_dvc_yaml())
    broken["stages"]["finetune_transfer"]["deps"].remove("models/resnet_mitbih.keras")
    broken["stages"]["train_mlp"]["outs"].append("models/other.keras")
    broken["stages"]["evaluate"]["foreach"]["ghost"] = {"stage": "train_mlp", "dataset": "ptb"}
    problems = dvc_problems(broken, MODEL_SPECS)
    assert "finetune_transfer: deps lack models/resnet_mitbih.keras" in problems
    assert any(p.startswith("train_mlp: outs are") for p in problems)
    assert "dvc.yaml trains other, which heartbeat/core/registry.py does not declare" in problems
    assert "dvc.yaml evaluates ghost, which heartbeat/core/registry.py does not declare" in problems
    # A model declared in the registry but missing from dvc.yaml.
    extra = {**MODEL_SPECS, "mlp_mitbih": ModelSpec("mlp_mitbih", "train_mlp_mitbih", "mitbih", "MLP", "mlp")}
    assert "mlp_mitbih: dvc.yaml has no stage train_mlp_mitbih" in dvc_problems(_dvc_yaml(), extra)


# ---------------------------------------------------------------- the registry's own tables


def test_every_model_has_a_section_a_script_and_a_known_architecture() -> None:
    for name, m in MODEL_SPECS.items():
        assert issubclass(STAGE_SCHEMAS[m.stage], TrainConfig), m.stage
        assert m.architecture in ARCHITECTURES, name
        assert m.base is None or m.base in MODEL_SPECS, name
        script = (ROOT / "stages" / f"{m.stage}.py").read_text(encoding="utf-8")
        assert f'run_training("{name}")' in script, f"stages/{m.stage}.py does not train {name}"
        assert registry.model_of_stage(m.stage) is m


def test_architectures_agree_with_their_builders_and_the_params_schema() -> None:
    from heartbeat.model.builders import BUILDERS
    from heartbeat.train import classical

    assert set(BUILDERS) == {n for n, a in ARCHITECTURES.items() if not a.fitted}
    assert set(classical.ARCHITECTURES) == {n for n, a in ARCHITECTURES.items() if a.fitted}
    assert get_args(ResNetConfig.model_fields["architecture"].annotation) == CHOOSABLE
    assert registry.signatures() == (("beat",), ("beat", "rhythm"), ("window", "patient"))


# ---------------------------------------------------------------- a toy model, added through the registry


class ToyConfig(TrainConfig):
    """The toy's section: one hidden Dense layer."""

    units: int = 8


def build_toy(cfg: ToyConfig, n_classes: int, **_: Any):
    import keras

    beat = keras.Input(shape=(187,), name="beat")
    hidden = keras.layers.Dense(cfg.units, activation="relu")(beat)
    return keras.Model(beat, keras.layers.Dense(n_classes, activation="softmax")(hidden), name="toy")


def _stage_module(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def only_the_toy_model() -> Iterator[ModelSpec]:
    """The registry's models replaced by the toy alone, and given back in their order afterwards
    (monkeypatch's undo would put them back in reverse: the report lists them in this order)."""
    original = dict(MODEL_SPECS)
    toy = ModelSpec("toy_ptb", "train_toy", "ptb", "Toy, PTB", "toy")
    MODEL_SPECS.clear()
    MODEL_SPECS[toy.name] = toy
    try:
        yield toy
    finally:
        MODEL_SPECS.clear()
        MODEL_SPECS.update(original)


def test_a_toy_model_added_through_the_registry_runs_end_to_end(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    only_the_toy_model: ModelSpec,
) -> None:
    """The registry alone (the toy replaces the four models), its builder and its params section:
    training, evaluate, export, the report and ``heartbeat predict`` all take it, on the demo data."""
    from heartbeat.model.builders import BUILDERS
    from heartbeat.prepare.arrays import load_split
    from heartbeat.serve.cli import main as cli
    from heartbeat.train.stage import run_training

    monkeypatch.setitem(ARCHITECTURES, "toy", Architecture("toy", (BEAT,)))
    monkeypatch.setitem(BUILDERS, "toy", build_toy)
    monkeypatch.setitem(STAGE_SCHEMAS, "train_toy", ToyConfig)

    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    deep_update(params, {"data": TINY_PARAMS["data"], "export": {"quantize": []}})
    params["train_toy"] = {"epochs": 2, "batch_size": 32, "units": 4, "calibration": "temperature"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    _stage_module("fetch").main()
    _stage_module("preprocess").main()
    run_training("toy_ptb")
    sidecar = json.loads(Path("models/toy_ptb.json").read_text(encoding="utf-8"))
    assert sidecar["model"] == "toy_ptb" and sidecar["stage"] == "train_toy" and sidecar["epochs_run"] == 2
    assert "temperature" in sidecar

    evaluate = _stage_module("evaluate")
    evaluate.main()
    metrics = json.loads(Path("metrics/toy_ptb.json").read_text(encoding="utf-8"))
    assert 0 <= metrics["accuracy"] <= 1
    assert Path("plots/toy_ptb/confusion.png").is_file()

    _stage_module("export").main()
    manifest = json.loads(Path("models/export/manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["models"]) == {"toy_ptb"}
    assert {"toy_ptb.tflite", "toy_ptb.onnx"} <= set(manifest["models"]["toy_ptb"]["files"])

    report = _stage_module("report").gather_report()
    assert [(m.name, m.title, m.dataset) for m in report.models] == [("toy_ptb", "Toy, PTB", "ptb")]

    # heartbeat predict on the test split's beats gives what evaluate scored, on every backend.
    test = load_split(Path("data/prepared/ptb"), "test")
    _, evaluated = evaluate.split_probabilities("toy_ptb", test, 1024)
    assert evaluated.temperature == sidecar["temperature"]
    np.save("beats.npy", test.X)
    for backend in ("keras", "tflite", "onnx"):
        code = cli(["predict", "--model", "models/toy_ptb.keras", "--backend", backend, "beats.npy"])
        out, err = capsys.readouterr()
        assert code == 0, err
        proba = pd.read_csv(io.StringIO(out))[[f"p_{c}" for c in PTB_CLASSES]].to_numpy()
        np.testing.assert_allclose(proba, evaluated.final, rtol=0, atol=1e-5, err_msg=backend)
