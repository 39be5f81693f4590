"""Shared fixtures: the real data in ../shared/data, and tiny pipeline projects in temp git repos.

Also the hypothesis profiles (tests/test_properties.py): ``ci`` is derandomised (the examples
follow from each test's name and arguments, so every run of the suite tries the same ones) with
a fixed number of examples; ``dev``, the default, draws fresh examples each run and more of them,
to keep looking for new failures. ``.ci/run`` selects ``ci`` with ``HYPOTHESIS_PROFILE=ci``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from testkit import projects
from testkit.projects import dvc, edit_params, git

__all__ = [
    "ROOT",
    "SHARED",
    "dvc",
    "edit_params",
    "examples",
    "git",
    "make_project",
    "pretrained_copy",
    "shared_dir",
]

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
_EXAMPLES_SCALE = {"ci": 1, "dev": 2}
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
# ci: no example database either, so a failure saved by an earlier run cannot change what is tried.
settings.register_profile(
    "ci", derandomize=True, database=None, max_examples=60, deadline=None, suppress_health_check=_HEALTH
)
settings.register_profile("dev", max_examples=120, deadline=None, suppress_health_check=_HEALTH)
settings.load_profile(PROFILE)


def examples(n: int) -> int:
    """A property test's example count: ``n`` under the ci profile, more on a developer's machine."""
    return n * _EXAMPLES_SCALE.get(PROFILE, 1)


ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def random_recording_split(seed: int, n: int = 64, irregular: bool = False):
    """``n`` random beats with every input a recording gives (windows, patient features and, with
    ``irregular``, every third beat flagged as in atrial fibrillation), the five classes in turn: for
    the training stage's checks of what its sidecar stores."""
    import numpy as np

    from heartbeat.prepare.arrays import Split

    rng = np.random.default_rng(seed)
    return Split(
        X=rng.normal(size=(n, 187)).astype(np.float32),
        y=np.arange(n) % 5,
        W=rng.normal(size=(n, 125, 2)).astype(np.float32),
        P=rng.normal(size=(n, 80)).astype(np.float32),
        I=(np.arange(n) % 3 == 0).astype(np.int64) if irregular else None,
    )


def pretrained_copy(model: Path, **sidecar_keys: object) -> Path:
    """The shipped pretrained model copied to ``model``, its sidecar with ``sidecar_keys`` set: for
    predict's checks of a sidecar setting the shipped model does not carry (or carries otherwise)."""
    import json
    import shutil

    from heartbeat.serve import pretrained

    shutil.copy(pretrained.MODEL, model)
    sidecar = json.loads(pretrained.MODEL.with_suffix(".json").read_text(encoding="utf-8"))
    model.with_suffix(".json").write_text(json.dumps({**sidecar, **sidecar_keys}), encoding="utf-8")
    return model


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
