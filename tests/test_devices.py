"""The ``train`` section on a CPU-only machine: device choice, mixed precision and MirroredStrategy.

No GPU is needed: ``distribute: mirrored`` runs one replica on ``/cpu:0`` and must give exactly
what ``none`` gives; the GPU-only paths are checked for their errors and log lines.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from heartbeat.core.config import DeviceConfig, MLPConfig, ResNetConfig, stage_params
from heartbeat.core.errors import ParamsError
from heartbeat.model.architectures import build_mlp, build_resnet
from heartbeat.model.saving import load_model, save_model
from heartbeat.prepare.arrays import Split, save_dataset
from heartbeat.train import devices
from heartbeat.train.fit import make_deterministic, train
from heartbeat.train.stage import run_training
from testkit.projects import write_prepared_info
from tests.conftest import ROOT

HAS_GPU = bool(tf.config.list_physical_devices("GPU"))
cpu_only = pytest.mark.skipif(HAS_GPU, reason="checks the CPU-only paths; this machine has a GPU")


@pytest.fixture(autouse=True)
def _float32_after() -> None:
    yield
    keras.mixed_precision.set_global_policy("float32")


def _data(n: int = 240, seed: int = 0) -> tuple[Split, Split]:
    """Random labels: the model can only overfit, so val_loss rises and early stopping restores."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 187)).astype(np.float32)
    y = rng.integers(0, 2, size=n)
    cut = n * 3 // 4
    return Split(X[:cut], y[:cut]), Split(X[cut:], y[cut:])


def _fit(distribute: str, kind: str, tmp_path: Path) -> tuple[list, list[np.ndarray], np.ndarray, int]:
    placement = devices.setup(DeviceConfig(device="cpu", distribute=distribute))
    assert placement.device == "cpu" and placement.replicas == 1 and not placement.mixed_precision
    tr, va = _data()
    make_deterministic(0)
    with placement.strategy.scope():
        if kind == "mlp":
            cfg = MLPConfig(epochs=8, batch_size=32, lr=0.01, hidden=[64], dropout=0.2, patience=2)
            model = build_mlp(2, cfg.hidden, cfg.dropout)
        else:
            cfg = ResNetConfig(epochs=2, batch_size=32, patience=1, filters=8, blocks=2, dense=8)
            model = build_resnet(2, cfg.filters, cfg.kernel_size, cfg.blocks, cfg.dense)
        result = train(model, tr, va, cfg, replicas=placement.replicas)
    path = tmp_path / f"{kind}_{distribute}.keras"
    save_model(devices.for_saving(result.model), path)
    loaded = load_model(path, 2)
    probs = loaded.predict(va.X, verbose=0)
    np.testing.assert_array_equal(probs, result.model.predict(va.X, verbose=0))
    return result.history, [w.copy() for w in result.model.get_weights()], probs, result.best_epoch


@cpu_only
@pytest.mark.parametrize("kind", ["mlp", "resnet"])
def test_mirrored_on_cpu_equals_none(tmp_path: Path, kind: str) -> None:
    hist_none, w_none, p_none, best_none = _fit("none", kind, tmp_path)
    hist_mir, w_mir, p_mir, best_mir = _fit("mirrored", kind, tmp_path)
    assert hist_mir == hist_none
    assert best_mir == best_none
    assert len(w_mir) == len(w_none)
    for a, b in zip(w_mir, w_none, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(p_mir, p_none)
    if kind == "mlp":  # EarlyStopping stopped early and restored the best epoch's weights
        assert best_none < len(hist_none) < 8


@cpu_only
def test_mirrored_is_a_mirrored_strategy_on_cpu() -> None:
    placement = devices.setup(DeviceConfig(device="auto", distribute="mirrored"))
    assert isinstance(placement.strategy, tf.distribute.MirroredStrategy)
    assert placement.replicas == 1 and placement.global_batch(64) == 64
    none = devices.setup(DeviceConfig(device="auto", distribute="none"))
    assert not isinstance(none.strategy, tf.distribute.MirroredStrategy) and none.replicas == 1


def test_global_batch_scales_with_replicas() -> None:
    placement = devices.Placement(tf.distribute.get_strategy(), "gpu", 4, False)
    assert placement.global_batch(128) == 512


@cpu_only
def test_auto_is_cpu_without_gpu() -> None:
    assert devices.setup(DeviceConfig()).device == "cpu"


@cpu_only
def test_gpu_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(ParamsError, match=r"train\.device: 'gpu' but TensorFlow sees no GPU .*auto or cpu"):
        devices.setup(DeviceConfig(device="gpu"))


def test_cpu_hides_the_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    calls = []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [fake] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda devs, kind=None: calls.append((devs, kind)))
    placement = devices.setup(DeviceConfig(device="cpu", mixed_precision=True))
    assert calls == [([], "GPU")]
    assert placement.device == "cpu" and not placement.mixed_precision


@cpu_only
def test_mixed_precision_is_ignored_on_cpu(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(logging.getLogger("heartbeat"), "propagate", True)
    with caplog.at_level(logging.INFO, logger="heartbeat"):
        placement = devices.setup(DeviceConfig(mixed_precision=True))
    assert not placement.mixed_precision
    assert keras.mixed_precision.global_policy().name == "float32"
    assert "train.mixed_precision: ignored on CPU" in caplog.text


def test_mixed_precision_model_is_saved_in_float32(tmp_path: Path) -> None:
    """What a GPU run saves: float16 compute, float32 softmax, converted back to float32 for evaluate."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    make_deterministic(0)
    model = build_resnet(5, filters=8, blocks=2, dense=8)
    assert model.get_layer("stem_conv").dtype_policy.name == "mixed_float16"
    assert model.get_layer("softmax").dtype_policy.name == "float32"
    x = np.random.default_rng(0).normal(size=(16, 187)).astype(np.float32)
    out = model.predict(x, verbose=0)
    assert out.dtype == np.float32
    keras.mixed_precision.set_global_policy("float32")

    plain = devices.for_saving(model)
    assert {layer.dtype_policy.name for layer in plain.layers} == {"float32"}
    for a, b in zip(plain.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(plain.predict(x, verbose=0), out, atol=1e-2)
    save_model(plain, tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", 5)
    assert {layer.dtype_policy.name for layer in loaded.layers} == {"float32"}
    assert devices.for_saving(plain) is plain


def test_train_section_is_validated(tmp_path: Path) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert stage_params("train", ROOT / "params.yaml") == DeviceConfig()
    params["train"]["distribute"] = "horovod"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(
        ParamsError, match=r"train\.distribute: 'horovod' is not valid; expected one of 'none' or 'mirrored'"
    ):
        stage_params("train", tmp_path / "params.yaml")


def _stage_run(folder: Path, distribute: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, str, list]:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["distribute"] = distribute
    params["train_mlp"].update(epochs=3, batch_size=32, hidden=[16])
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(folder)
    run_training("mlp_ptb")
    info = json.loads((folder / "models/mlp_ptb.json").read_text())
    weights = load_model(folder / "models/mlp_ptb.keras", 2).get_weights()
    return info, (folder / "plots/mlp_ptb/history.csv").read_text(), weights


@cpu_only
def test_training_stage_mirrored_equals_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stage code path: strategy scope, save and info file, on tiny prepared arrays."""
    tr, va = _data(200, seed=1)
    for name in ("none", "mirrored"):
        save_dataset(tmp_path / name / "data/prepared/ptb", {"train": tr, "val": va})
        write_prepared_info(tmp_path / name)
    info_none, hist_none, w_none = _stage_run(tmp_path / "none", "none", monkeypatch)
    info_mir, hist_mir, w_mir = _stage_run(tmp_path / "mirrored", "mirrored", monkeypatch)
    assert hist_mir == hist_none
    for a, b in zip(w_mir, w_none, strict=True):
        np.testing.assert_array_equal(a, b)
    for info in (info_none, info_mir):
        assert info["device"] == "cpu"
        assert info["replicas"] == 1 and info["global_batch_size"] == 32 and info["mixed_precision"] is False
    assert info_mir == info_none
    shutil.rmtree(tmp_path / "none")
