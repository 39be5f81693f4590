"""Shared fixtures: the real data in ../shared/data, and tiny pipeline projects in temp git repos."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PROJECT_FILES = (
    "heartbeat",
    "stages",
    "dvc.yaml",
    "params.yaml",
    "pyproject.toml",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
)

TINY_PARAMS = {
    "data": {"demo": {"mitbih_train": 400, "mitbih_test": 150, "ptb_normal": 120, "ptb_abnormal": 120}},
    "train_mlp": {"epochs": 2, "batch_size": 64},
    "train_resnet_ptb": {"epochs": 1, "batch_size": 64},
    "train_resnet_mitbih": {"epochs": 1, "batch_size": 64},
    "finetune_transfer": {"epochs": 1, "batch_size": 64},
}


def shared_dir(name: str) -> Path:
    """A folder of ../shared/data, or skip the test when it is absent."""
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"real data not available: {path} is missing (it lives beside the checkout in ../shared)")
    return path


def deep_update(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def edit_params(project: Path, changes: dict) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(deep_update(params, changes), sort_keys=False))


def git(project: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=project, env=env, check=True, capture_output=True, text=True
    ).stdout


def dvc(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "HEARTBEAT_LOG_LEVEL": "INFO"}
    proc = subprocess.run(["dvc", *args], cwd=project, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"dvc {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def make_project(dest: Path, params: dict | None = None) -> Path:
    """Copy the pipeline into ``dest`` as a fresh git repo with its own identity, with tiny params."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target)
    edit_params(dest, deep_update(yaml.safe_load(yaml.safe_dump(TINY_PARAMS)), params or {}))
    git(dest, "init", "-q", "-b", "main")
    git(dest, "config", "user.name", "test")
    git(dest, "config", "user.email", "test@example.com")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "tiny pipeline")
    return dest


@pytest.fixture(scope="session")
def tiny_repro(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project on which ``dvc repro`` has run once on the demo source; shared, so do not modify it."""
    project = make_project(tmp_path_factory.mktemp("tiny") / "project")
    dvc(project, "repro")
    return project
