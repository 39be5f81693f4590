"""params.yaml validation: every error names the key path and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from heartbeat.core.config import STAGE_SCHEMAS, stage_params
from heartbeat.core.errors import ParamsError
from tests.conftest import ROOT


def _params(tmp_path: Path, changes: dict) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = params
        for p in parents:
            node = node[p]
        node[leaf] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_committed_params_are_valid() -> None:
    for section in STAGE_SCHEMAS:
        stage_params(section, ROOT / "params.yaml")


def _bench_compare():
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare", ROOT / "bench" / "compare.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    return compare


def test_the_shipped_recipe_is_the_one_bench_compare_measures() -> None:
    """BENCHMARKS.md's figures for the shipped MIT-BIH recipe come from bench/compare.py's ``patient_net``
    variant: it must train what params.yaml ships (one network per seed, so no ensemble; ``epochs`` is
    compare's own)."""
    compare = _bench_compare()
    ours = compare.VARIANTS[compare.OURS_DEFAULT][1].model_dump()
    shipped = stage_params("train_resnet_mitbih", ROOT / "params.yaml").model_dump()
    for key in ("seed", "ensemble", "ensemble_holdout", "epochs"):
        ours.pop(key), shipped.pop(key)
    assert ours == shipped


def test_bench_compare_counts_each_records_errors_and_hides_the_record_z_scores() -> None:
    import numpy as np

    from heartbeat.prepare.arrays import Split
    from heartbeat.signal.patient import BEAT_COLUMNS, PATIENT_COLUMNS

    compare = _bench_compare()
    # two folds, each with its test beats' records and classes (as make_split writes them)
    one_hot = np.eye(5)
    results = {
        "patient/info": {"test_beat_records": ["a", "a", "b"], "test_y": [1, 0, 2]},
        "patient_f1/info": {"test_beat_records": ["c", "c", "c"], "test_y": [1, 1, 0]},
    }
    for seed in (0, 1):  # the same calls twice: the table shows their mean
        results[f"patient/m/{seed}"] = {"test_proba": one_hot[[1, 1, 1]].tolist()}
        results[f"patient_f1/m/{seed}"] = {"test_proba": one_hot[[1, 0, 0]].tolist()}
    table = compare.per_record_table(results, ["patient", "patient_f1"], "m", [0, 1], {"m": "m"})
    rows = {}
    for line in table.splitlines()[4:]:
        record, *cells = (c.strip() for c in line.strip("|").split("|"))
        rows[record] = [int(c) for c in cells]
    # S, S found, S called N, S called V, V, V found, V called S, N called S, N called V
    assert rows == {
        "a": [1, 1, 0, 0, 0, 0, 0, 1, 0],
        "b": [0, 0, 0, 0, 1, 0, 1, 0, 0],
        "c": [2, 1, 1, 0, 0, 0, 0, 0, 0],
    }

    P = np.ones((3, len(PATIENT_COLUMNS)), np.float32)
    split = Split(np.zeros((3, 187), np.float32), np.zeros(3, np.int64), W=np.zeros((3, 125, 2)), P=P)
    cut = compare.without_record_z({"test": split})["test"].P
    assert (cut[:, : len(BEAT_COLUMNS)] == 1).all() and (cut[:, len(BEAT_COLUMNS) :] == 0).all()
    assert (P == 1).all()  # the caller's split is left as it was


def test_bench_compare_reports_a_smoothing_recipe_as_the_pipeline_runs_it() -> None:
    """A stored run keeps the network's own test probabilities; the report scales them by the run's
    temperature and smooths them over each test record with the library's function, and shows the
    stored run itself as ``<model>_each_beat_alone``."""
    import numpy as np

    from heartbeat.core.config import ResNetConfig
    from heartbeat.core.stored import RecordSmoothing
    from heartbeat.model.calibration import apply_temperature
    from heartbeat.model.smoothing import smooth_over_records
    from heartbeat.prepare.arrays import Split

    compare = _bench_compare()
    rng = np.random.default_rng(0)
    n = 30
    test = Split(
        X=np.zeros((n, 187), np.float32),
        y=rng.integers(0, 5, n),
        W=rng.normal(size=(n, 125, 2)).astype(np.float32),
        P=np.zeros((n, 80), np.float32),
        G=np.repeat([0, 1, 2], 10),
    )
    proba = rng.dirichlet(np.ones(5), n).astype(np.float32)
    run = {"test_proba": proba.tolist(), "metrics": {"temperature": 0.5}}
    cfg = ResNetConfig(calibration="temperature", record_smoothing=RecordSmoothing(neighbours=4, weight=0.5))
    titles = {"m": "m"}
    view, models, shown_titles = compare.with_smoothing(
        {"patient/m/0": run}, {"patient": test}, ["m"], [0], {"m": cfg}, "m", titles, [(6, 0.3)]
    )
    assert models == ["m", "m_k6_w0.3", "m" + compare.ALONE]
    assert shown_titles == {
        "m": "m",
        "m_k6_w0.3": "m; smoothed over 6 beats, weight 0.3",
        "m" + compare.ALONE: "m, each beat alone",
    }
    assert titles == {"m": "m"} and "m_k6_w0.3" not in compare.MODEL_TITLES  # nothing shared rewritten
    assert view["patient/m" + compare.ALONE + "/0"] is run
    calibrated = apply_temperature(proba, 0.5)
    for key, smoothing in (("m", RecordSmoothing(4, 0.5)), ("m_k6_w0.3", RecordSmoothing(6, 0.3))):
        expected = smooth_over_records(calibrated, test.W, test.G, smoothing)
        np.testing.assert_allclose(view[f"patient/{key}/0"]["test_proba"], expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("section", "change", "message"),
    [
        (
            "data",
            {"data.source": "ftp"},
            r"data\.source: 'ftp' is not valid; expected one of 'demo', 'local', 'kaggle' or 'physionet'",
        ),
        (
            "train_mlp",
            {"train_mlp.epochs": -3},
            r"train_mlp\.epochs: input should be greater than or equal to 1 \(got -3\)",
        ),
        (
            "train_resnet_ptb",
            {"train_resnet_ptb.batch_size": 0},
            r"train_resnet_ptb\.batch_size: .*greater than or equal to 1",
        ),
        ("train_mlp", {"train_mlp.epocs": 3}, r"train_mlp\.epocs: unknown key"),
        ("train_mlp", {"train_mlp.lr": "fast"}, r"train_mlp\.lr: input should be a valid number"),
        (
            "finetune_transfer",
            {"finetune_transfer.freeze": "half"},
            r"finetune_transfer\.freeze: 'half' is not valid",
        ),
        (
            "data",
            {"data.demo.mitdb_records": "many"},
            r"data\.demo\.mitdb_records: input should be a valid integer",
        ),
    ],
)
def test_bad_params_name_the_key(tmp_path: Path, section: str, change: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        stage_params(section, _params(tmp_path, change))


def test_unknown_section(tmp_path: Path) -> None:
    path = _params(tmp_path, {"trian_mlp": {"epochs": 1}})
    with pytest.raises(ParamsError, match="trian_mlp: unknown section"):
        stage_params("train_mlp", path)


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML at line"):
        stage_params("data", path)
