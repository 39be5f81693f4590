"""Shared fixtures: the real data in ../shared/data, and tiny pipeline projects in temp git repos."""

from __future__ import annotations

from pathlib import Path

import pytest

from heartbeat.testing import projects
from heartbeat.testing.projects import dvc, edit_params, git

__all__ = ["ROOT", "SHARED", "dvc", "edit_params", "git", "make_project", "shared_dir"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def shared_dir(name: str) -> Path:
    """A folder of ../shared/data, or skip the test when it is absent."""
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"real data not available: {path} is missing (it lives beside the checkout in ../shared)")
    return path


def make_project(dest: Path, params: dict | None = None) -> Path:
    """Copy the pipeline into ``dest`` as a fresh git repo with its own identity, with tiny params."""
    return projects.make_project(ROOT, dest, params)


@pytest.fixture(scope="session")
def tiny_repro(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project on which ``dvc repro`` has run once on the demo source; shared, so do not modify it."""
    project = make_project(tmp_path_factory.mktemp("tiny") / "project")
    dvc(project, "repro")
    return project
