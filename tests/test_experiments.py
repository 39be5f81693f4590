"""DVC experiments on tiny data: queue a grid, run it two at a time, compare, apply, branch (docs/scaling.md)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from heartbeat.model.saving import load_model
from tests.conftest import dvc, git

pytestmark = pytest.mark.slow

GRID = {"hidden16": 16, "hidden32": 32}


def params_count(hidden: int) -> int:
    return 187 * hidden + hidden + hidden * 2 + 2  # one Dense layer, then the 2-class softmax


def committed_copy(tiny_repro: Path, dest: Path) -> Path:
    """A copy of the shared tiny project with its results committed: queued runs see only git's files."""
    shutil.copytree(
        tiny_repro, dest, symlinks=True, ignore=lambda d, names: ["tmp"] if Path(d).name == ".dvc" else []
    )
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "baseline run")
    return dest


def wait_for_queue(project: Path, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = dvc(project, "queue", "status").stdout
        if not any(word in out for word in ("Queued", "Running")):
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"queue still busy after {timeout:.0f} s:\n{out}")
        time.sleep(2)


def experiments(project: Path) -> dict[str, dict]:
    """``dvc exp show --json`` as {experiment name: its data (params, metrics, ...)}."""
    found = {}
    for row in json.loads(dvc(project, "exp", "show", "--json").stdout):
        for exp in row.get("experiments") or []:
            rev = exp["revs"][0]
            found[rev["name"]] = rev["data"]
    return found


def test_queued_grid_show_diff_apply_branch(tmp_path: Path, tiny_repro: Path) -> None:
    project = committed_copy(tiny_repro, tmp_path / "project")
    dvc_yaml = (project / "dvc.yaml").read_bytes()
    baseline = json.loads((project / "metrics/resnet_mitbih.json").read_text())

    for name, hidden in GRID.items():
        # Target evaluate (it writes the metrics): the report stage after it is not needed here.
        dvc(project, "exp", "run", "--queue", "-S", f"train_mlp.hidden=[{hidden}]", "-n", name, "evaluate")
    try:
        dvc(project, "queue", "start", "-j", "2")
        status = wait_for_queue(project)
    finally:
        dvc(project, "queue", "stop", check=False)
    if status.count("Success") != len(GRID):
        logs = "\n".join(dvc(project, "queue", "logs", n, check=False).stdout for n in GRID)
        raise AssertionError(f"{status}\n{logs}")

    # dvc exp show: each experiment has its own params and distinct metrics.
    exps = experiments(project)
    assert set(GRID) <= set(exps)
    metrics = {}
    for name, hidden in GRID.items():
        data = exps[name]
        assert data["params"]["params.yaml"]["data"]["train_mlp"]["hidden"] == [hidden]
        metrics[name] = data["metrics"]["metrics/mlp_ptb.json"]["data"]
        assert set(metrics[name]) == {"accuracy", "macro_f1", "roc_auc", "pr_auc", "ece"}
        # Only train_mlp and what follows it reran: the other models' metrics are the baseline's.
        assert data["metrics"]["metrics/resnet_mitbih.json"]["data"] == baseline
    assert metrics["hidden16"] != metrics["hidden32"]

    # dvc exp diff: the one param and the metrics that changed.
    diff = json.loads(dvc(project, "exp", "diff", "hidden16", "hidden32", "--json").stdout)
    assert diff["params"]["params.yaml"]["train_mlp.hidden"] == {"old": "[16]", "new": "[32]"}
    assert diff["metrics"]["metrics/mlp_ptb.json"]
    assert "metrics/resnet_mitbih.json" not in diff["metrics"]

    # dvc exp apply: the experiment's params and outputs are back in the workspace.
    dvc(project, "exp", "apply", "hidden16")
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["train_mlp"]["hidden"] == [16]
    assert json.loads((project / "metrics/mlp_ptb.json").read_text()) == metrics["hidden16"]
    assert json.loads((project / "models/mlp_ptb.json").read_text())["weight_count"] == params_count(16)
    details = json.loads((project / "metrics/details/mlp_ptb.json").read_text())
    assert details["weight_count"] == params_count(16) and details["model"] == "mlp_ptb"
    assert load_model(project / "models/mlp_ptb.keras", 2).get_layer("dense_0").units == 16
    assert "Data and pipelines are up to date" in dvc(project, "status", "evaluate").stdout

    # dvc exp branch: a git branch holding the experiment's params, lock and metrics.
    dvc(project, "exp", "branch", "hidden32", "exp-hidden32")
    shown = yaml.safe_load(git(project, "show", "exp-hidden32:params.yaml"))
    assert shown["train_mlp"]["hidden"] == [32]
    assert json.loads(git(project, "show", "exp-hidden32:metrics/mlp_ptb.json")) == metrics["hidden32"]

    # Nothing rewrote dvc.yaml, in the workspace or in the experiment.
    assert (project / "dvc.yaml").read_bytes() == dvc_yaml
    assert git(project, "show", "exp-hidden32:dvc.yaml").encode() == dvc_yaml
