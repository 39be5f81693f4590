"""Evaluate and ``heartbeat predict`` give a beat the same probabilities: one path from a model's
outputs to its classes (heartbeat/serve/runners.py ``probabilities``: the network, the stored
temperature, then the stored smoothing over the recording)."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from heartbeat.prepare.arrays import load_split


def _stage(project: Path):
    spec = importlib.util.spec_from_file_location("evaluate_stage", project / "stages" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_evaluate_and_predict_give_each_test_record_the_same_probabilities(
    tiny_repro: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo pipeline's MIT-BIH model (an ensemble of patient_nets, each with its temperature
    folded in, and smoothing over each recording) on its test split: what the evaluate stage scores, against what ``heartbeat
    predict``'s steps give each test record's beats handed over as one recording.

    Equal to 1e-6, not bit for bit: the network sees a record's beats in another batch (the whole
    split in evaluate, the record alone in predict), and TensorFlow's CPU kernels may round the last
    bit differently per batch shape; all after the network is the same code on the same numbers."""
    from heartbeat.serve.cli import build_parser
    from heartbeat.serve.inputs import Beats
    from heartbeat.serve.runners import load_runner
    from heartbeat.serve.steps import classify, render

    monkeypatch.chdir(tiny_repro)  # the stage reads models/ and data/ from the project root
    model_path = Path("models/resnet_mitbih.keras")
    test = load_split(Path("data/prepared/mitbih"), "test")
    _, evaluated = _stage(tiny_repro).split_probabilities("resnet_mitbih", test, 1024)
    # The members' temperatures are inside the network (heartbeat/train/bagging.py), so the stored
    # step is the smoothing, and it changes the probabilities: the comparison covers it. A stored
    # temperature is compared the same way in tests/test_registry.py (the toy model).
    assert evaluated.temperature is None and evaluated.smoothing is not None
    assert len(json.loads(Path("models/resnet_mitbih.json").read_text())["ensemble"]["temperature"]) == 3
    assert not np.allclose(evaluated.final, evaluated.calibrated, atol=1e-4)

    args = build_parser().parse_args(["predict", "record", "--model", str(model_path)])
    runner = load_runner(model_path, args.backend, args.threads, args.precision)
    records = np.unique(test.G)
    assert len(records) > 1
    for record in records:
        rows = np.flatnonzero(test.G == record)
        context = None if test.R is None else test.R[rows]
        beats = Beats(X=test.X[rows], context=context, window=test.W[rows], patient=test.P[rows], kind="npy")
        proba, smoothing = classify(beats, runner, args, progress=False)
        assert smoothing == evaluated.smoothing
        np.testing.assert_allclose(
            proba, evaluated.final[rows], rtol=0, atol=1e-6, err_msg=f"record {record}"
        )
        # ... and what the command writes: the same probabilities, to its 6 decimals.
        csv = render(beats, runner, proba, smoothing, "csv", "record").decode()
        written = pd.read_csv(io.StringIO(csv))[[f"p_{c}" for c in runner.class_names]].to_numpy()
        np.testing.assert_allclose(written, evaluated.final[rows], rtol=0, atol=5e-7 + 1e-6)
