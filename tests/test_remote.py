"""Shared artifacts through a DVC remote (a local folder here; S3, GCS or SSH the same way, docs/scaling.md).

One clone runs the pipeline and pushes; a fresh clone pulls and finds everything up to date,
so nothing is retrained, and ``dvc metrics show`` gives the same numbers there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import dvc, git
from tests.test_experiments import committed_copy

pytestmark = pytest.mark.slow

UP_TO_DATE = "Data and pipelines are up to date."


def test_push_then_pull_in_a_fresh_clone(tmp_path: Path, tiny_repro: Path) -> None:
    origin = committed_copy(tiny_repro, tmp_path / "origin")
    remote = tmp_path / "remote"
    dvc(origin, "remote", "add", "-d", "store", str(remote))
    git(origin, "add", ".dvc/config")
    git(origin, "commit", "-qm", "dvc remote")

    pushed = dvc(origin, "push").stdout
    assert re.search(r"\d+ files? pushed", pushed), pushed
    assert any(p.is_file() for p in remote.rglob("*"))
    assert "Everything is up to date" in dvc(origin, "push").stdout  # nothing left to push

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    assert not (clone / "models/resnet_mitbih.keras").exists()  # cached outputs are not in git
    pulled = dvc(clone, "pull").stdout
    assert re.search(r"\d+ files? (fetched|added)", pulled), pulled
    for name in ("data/raw/mitbih_train.csv", "data/prepared/ptb/X_train.npy", "models/resnet_mitbih.keras"):
        assert (clone / name).read_bytes() == (origin / name).read_bytes(), name

    # Importing the package from the clone writes heartbeat/fetch/__pycache__ into a directory
    # dependency of fetch; .dvcignore keeps that from looking like a code change.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-c", "import heartbeat.fetch.demo"],
        cwd=clone,
        env={**env, "PYTHONPATH": str(clone)},
        check=True,
    )
    assert list((clone / "heartbeat/fetch/__pycache__").glob("*.pyc"))

    assert UP_TO_DATE in dvc(clone, "status").stdout
    repro = dvc(clone, "repro").stdout
    assert "Running stage" not in repro and UP_TO_DATE in repro, repro  # no retraining
    shown = json.loads(dvc(clone, "metrics", "show", "--json").stdout)
    assert shown == json.loads(dvc(origin, "metrics", "show", "--json").stdout)
    assert shown  # there are metrics to compare
