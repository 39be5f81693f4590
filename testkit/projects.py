"""Copies of the pipeline in temporary git repos, with tiny params, for tests and benchmarks that run ``dvc``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

PROJECT_FILES = (
    "heartbeat",
    "stages",
    "vendor",
    "dvc.yaml",
    "params.yaml",
    "pyproject.toml",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvc/plots",
    ".dvcignore",
    ".gitignore",
)
"""What a project copy holds: the code, the pipeline and its configuration, no data and no outputs."""

TINY_PARAMS = {
    "data": {"demo": {"mitdb_records": 10, "mitdb_minutes": 0.5, "ptbdb_records": 6, "ptbdb_minutes": 0.5}},
    "train_mlp": {"epochs": 2, "batch_size": 64},
    "train_resnet_ptb": {"epochs": 1, "batch_size": 64},
    "train_resnet_mitbih": {"epochs": 1, "batch_size": 64},
    "finetune_transfer": {"epochs": 1, "batch_size": 64},
}
"""Params that make ``dvc repro`` on the demo source take seconds per stage."""

IDENTITY = {
    "GIT_AUTHOR_NAME": "heartbeat-test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "heartbeat-test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}
"""The git identity of every project copy, so that nothing depends on the user's own configuration."""


def env() -> dict[str, str]:
    """The environment for ``git`` and ``dvc`` in a project copy."""
    return {**os.environ, **IDENTITY, "DVC_NO_ANALYTICS": "1", "HEARTBEAT_LOG_LEVEL": "INFO"}


def deep_update(base: dict, extra: dict) -> dict:
    """Merge ``extra`` into ``base`` key by key, nested mappings included; returns ``base``."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def edit_params(project: Path, changes: dict) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump(deep_update(params, changes), sort_keys=False), encoding="utf-8")


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, env=env(), check=True, capture_output=True, text=True
    ).stdout


def dvc(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``dvc ARGS`` in ``project``; with ``check``, a failure raises with DVC's output."""
    proc = subprocess.run(["dvc", *args], cwd=project, env=env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"dvc {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def make_project(root: Path, dest: Path, params: dict | None = None, tiny: bool = True) -> Path:
    """Copy the pipeline at ``root`` into ``dest`` as a fresh git repo; ``params`` are merged into
    params.yaml, on top of :data:`TINY_PARAMS` unless ``tiny`` is false."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src, target = root / name, dest / name
        if not src.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target)
    base = yaml.safe_load(yaml.safe_dump(TINY_PARAMS)) if tiny else {}
    edit_params(dest, deep_update(base, params or {}))
    git(dest, "init", "-q", "-b", "main")
    git(dest, "config", "user.name", IDENTITY["GIT_AUTHOR_NAME"])
    git(dest, "config", "user.email", IDENTITY["GIT_AUTHOR_EMAIL"])
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "pipeline copy")
    return dest


def write_prepared_info(root: Path, source: str = "demo", split: str = "beat") -> None:
    """The ``data/prepared/info.json`` preprocess writes beside its arrays, for tests that save arrays
    of their own and run a training stage on them (the stage records what trained the model)."""
    from heartbeat.core.atomic import write_json
    from heartbeat.prepare.preprocess import prepared_info

    (root / "data/prepared").mkdir(parents=True, exist_ok=True)
    write_json(root / "data/prepared/info.json", prepared_info(source, source == "demo", split))
