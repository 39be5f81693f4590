"""Hostile inputs of the third adversarial pass, one class of failure per section (RELIABILITY.md, 6.x).

Each test tries the reported input and its neighbours in the class, through the public functions,
the ``heartbeat`` command and the stage entry point, in the style of tests/test_hostile.py.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_hostile import _rows, tiny_onnx


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_onnx(tmp_path / "tiny.onnx")


@pytest.fixture
def beats_csv(tmp_path: Path) -> Path:
    path = tmp_path / "beats.csv"
    path.write_text(_rows(20))
    return path


def _dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


# ---------------------------------------------------------------- 6.5 stage start-up deletes only its own leftovers


def test_stage_start_removes_only_what_its_own_writers_left(tmp_path, monkeypatch, caplog) -> None:
    """recover_tree walked all of data/, models/, ... and removed any name shaped like a leftover: a
    user's backups went with them, logged at INFO."""
    from heartbeat.core.entry import recover_outputs

    monkeypatch.chdir(tmp_path)
    pid = _dead_pid()
    users = [
        "data/.raw.20261201.old/notes.txt",
        "models/.resnet_mitbih.backup_1.old",
        "data/mystudy/.session.20261201.tmp.csv",
        f"data/.raw.{pid}.abcdefgh.tmp/mitbih_test.csv",  # the shape before the marker: not provably ours
        f"data/mystudy/.session.csv.heartbeat-{pid}.abcdefgh.tmp.csv",  # marked, but no writer writes there
        f"models/.x.keras.heartbeat-{pid}.abcdefgh.tmp.csv",  # marked, but not the suffix a writer gives
        f"metrics/.m.json.heartbeat-{pid}.abcdefgh.old.json",  # an .old is a folder with no suffix
    ]
    ours = [
        f"data/.raw.heartbeat-{pid}.abcdefgh.tmp/mitbih_test.csv",
        f"models/.mlp_ptb.keras.heartbeat-{pid}.k3j4_5g6.tmp.keras",
        f"plots/resnet_ptb/.history.csv.heartbeat-{pid}.0a1b2c3d.tmp.csv",
    ]
    for rel in users + ours:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    with caplog.at_level(logging.INFO, logger="heartbeat"):
        recover_outputs()
    for rel in users:
        assert (tmp_path / rel).read_text() == "x", rel
    for rel in ours:
        top = Path(rel).parts[-2] if rel.startswith("data/.raw") else Path(rel).name
        assert not list(tmp_path.rglob(top)), rel
    removed = [r for r in caplog.records if "left behind by an earlier run" in r.getMessage()]
    assert len(removed) == len(ours) and all(r.levelno == logging.WARNING for r in removed)


def test_what_the_writers_make_is_what_recovery_removes(tmp_path) -> None:
    """The names atomic_path and atomic_dir make match the recovery pattern (one rule, not two)."""
    from heartbeat.core import atomic

    with atomic.atomic_path(tmp_path / "m.keras") as tmp:
        assert atomic._ours(atomic._TEMPORARY.match(tmp.name)), tmp.name
        assert f".heartbeat-{os.getpid()}." in tmp.name
    with atomic.atomic_dir(tmp_path / "raw") as tmp:
        assert atomic._ours(atomic._TEMPORARY.match(tmp.name)), tmp.name
