"""Determinism across machines: fetch and preprocess give the same bytes anywhere (docs/scaling.md).

Two independent projects run ``dvc repro preprocess``; the second one with numpy's AVX-512
(and AVX2) kernels switched off, as on an older CPU, and one thread. Every file of data/raw
and data/prepared must hash the same, and so must the two dvc.lock files.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import dvc, make_project

pytestmark = pytest.mark.slow

PARAMS = {"preprocess": {"rebalance": "oversample", "augment": {"copies": 2}}}


def _older_cpu() -> dict[str, str]:
    """Environment that switches off numpy's dispatched SIMD kernels this CPU has (AVX2, AVX-512)."""
    probe = "from numpy._core import _multiarray_umath as m; print(' '.join(k for k in m.__cpu_dispatch__ if m.__cpu_features__.get(k)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if proc.returncode == 0 and proc.stdout.strip():
        env["NPY_DISABLE_CPU_FEATURES"] = proc.stdout.strip()
    return env


def _digests(project: Path) -> dict[str, str]:
    files = sorted(
        p
        for folder in ("data/raw", "data/prepared")
        for p in (project / folder).rglob("*")
        if p.is_file() and p.name != ".gitignore"  # dvc's, not an output
    )
    return {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_fetch_and_preprocess_are_bit_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_project(tmp_path / "a" / "project", PARAMS)
    dvc(first, "repro", "preprocess")

    second = make_project(tmp_path / "elsewhere" / "b", PARAMS)
    for key, value in _older_cpu().items():
        monkeypatch.setenv(key, value)
    dvc(second, "repro", "preprocess")

    digests = _digests(first)
    # 4 CSVs, source.json, the demo's provenance.parquet, report.json and windows.npy; 2 datasets ×
    # 3 splits × X, y, R (R-R and record features), W (two-lead windows), P (patient features),
    # G (each beat's record), I (irregular-rhythm flags); info, counts
    assert len(digests) == 8 + 42 + 2
    assert _digests(second) == digests
    # Same bytes, so the same dvc.lock: a rerun elsewhere changes nothing downstream.
    lock = (first / "dvc.lock").read_text()
    assert (second / "dvc.lock").read_text() == lock
    stages = yaml.safe_load(lock)["stages"]
    assert set(stages) == {"fetch", "preprocess"}
