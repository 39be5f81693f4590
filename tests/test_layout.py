"""The package layout and the DVC graph: every stage's deps cover what its script imports, and the
phases of ``heartbeat/`` import each other one way, down the pipeline.

The import closure is read from the source (``ast``), imports inside functions included: a lazy
import still runs when the stage does, so a change to that module must still rerun the stage.
"""

from __future__ import annotations

import ast
import shutil
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, dvc

PHASES = ("core", "signal", "fetch", "prepare", "model", "train", "evaluate", "serve")
"""The subpackages of heartbeat/ in pipeline order: each may import only itself and those before it."""


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The file that defines ``heartbeat.x.y``: ``heartbeat/x/y.py`` or ``heartbeat/x/y/__init__.py``."""
    base = root.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """The ``heartbeat`` modules that ``path`` imports, anywhere in the file, parents included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            # `from heartbeat.signal import wfdb_records` imports the module heartbeat.signal.wfdb_records
            names += [
                f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}", root)
            ]
        for name in names:
            if name == "heartbeat" or name.startswith("heartbeat."):
                parts = name.split(".")
                found |= {
                    ".".join(parts[:i])
                    for i in range(1, len(parts) + 1)
                    if module_file(".".join(parts[:i]), root)
                }
    return found


@cache
def closure(script: str, root: Path = ROOT) -> frozenset[Path]:
    """Every file of heartbeat/ that running ``script`` can import (relative paths)."""
    todo = [root / script]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        for module in imported_modules(path, root):
            target = module_file(module, root)
            if target is not None and target not in seen:
                seen.add(target)
                todo.append(target)
    return frozenset(p.relative_to(root) for p in seen)


def stages(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, dict]:
    """Stage name to its definition; a ``foreach`` stage expands to ``name@key`` per item."""
    return expand_stages(yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")))


def expand_stages(document: dict) -> dict[str, dict]:
    """:func:`stages` of a dvc.yaml already parsed."""
    out = {}
    for name, stage in document["stages"].items():
        if "foreach" in stage:
            for key, item in stage["foreach"].items():
                text = yaml.safe_dump(stage["do"]).replace("${key}", key)
                for field, value in item.items():
                    text = text.replace(f"${{item.{field}}}", str(value))
                out[f"{name}@{key}"] = yaml.safe_load(text)
        else:
            out[name] = stage
    return out


def uncovered(stage: dict, root: Path = ROOT) -> list[str]:
    """Files the stage's script imports that none of its deps covers (a dep is a file or a folder)."""
    script = stage["cmd"].split()[1]
    deps = [Path(d) for d in stage.get("deps", [])]
    missing = [
        str(path)
        for path in sorted(closure(script, root))
        if not any(path == dep or dep in path.parents for dep in deps)
    ]
    return ([] if Path(script) in deps else [script]) + missing


def test_every_stage_depends_on_what_it_imports() -> None:
    problems = [
        f"dvc.yaml: stage {name} imports {path}, but no dep covers it; add its package to the stage's deps"
        for name, stage in stages().items()
        for path in uncovered(stage)
    ]
    assert not problems, "\n".join(problems)


def test_the_check_names_the_stage_and_the_module(tmp_path: Path) -> None:
    """Remove one dep line and the check must fail, naming the stage and a module it no longer covers."""
    broken = stages()["train_resnet_mitbih"]
    broken = {**broken, "deps": [d for d in broken["deps"] if d != "heartbeat/model"]}
    assert "heartbeat/model/architectures.py" in uncovered(broken)


def test_deps_are_whole_packages() -> None:
    """Package granularity: a stage lists heartbeat/<phase> folders (and heartbeat/__init__.py), never
    single modules, so a new module in a package is covered without editing dvc.yaml."""
    for name, stage in stages().items():
        for dep in stage.get("deps", []):
            if dep.startswith("heartbeat/"):
                assert dep == "heartbeat/__init__.py" or (ROOT / dep).is_dir(), f"{name}: {dep}"


def phase_of(path: Path) -> str | None:
    parts = path.parts
    return parts[1] if len(parts) > 2 and parts[0] == "heartbeat" else None


def test_phases_import_down_the_pipeline_only() -> None:
    problems = []
    for path in sorted((ROOT / "heartbeat").rglob("*.py")):
        rel = path.relative_to(ROOT)
        phase = phase_of(rel)
        if phase not in PHASES:
            continue
        for module in imported_modules(path):
            target = phase_of(module_file(module).relative_to(ROOT))
            if target in PHASES and PHASES.index(target) > PHASES.index(phase):
                problems.append(f"{rel} ({phase}) imports {module} ({target}), a later phase")
    assert not problems, "\n".join(problems)


def test_no_import_cycles_between_modules() -> None:
    graph = {}
    for path in (ROOT / "heartbeat").rglob("*.py"):
        rel = path.relative_to(ROOT)
        graph[rel] = {module_file(m).relative_to(ROOT) for m in imported_modules(path)} - {rel}
    # Package __init__ files are imported on the way to every module: leave them out of the cycle check.
    graph = {
        k: {v for v in vs if v.name != "__init__.py"} for k, vs in graph.items() if k.name != "__init__.py"
    }
    state: dict[Path, int] = {}

    def visit(node: Path, trail: list[Path]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(map(str, cycle)))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


@pytest.mark.slow
def test_editing_the_arrays_module_reruns_the_stages_that_load_arrays(
    tiny_repro: Path, tmp_path: Path
) -> None:
    """After a full run, an edit to heartbeat/prepare/arrays.py makes exactly the stages that depend on
    heartbeat/prepare out of date: preprocess (which writes the arrays), the four training stages,
    export and every evaluate; fetch and report are untouched."""
    project = tmp_path / "project"
    shutil.copytree(tiny_repro, project, symlinks=True)
    with open(project / "heartbeat/prepare/arrays.py", "a", encoding="utf-8") as fh:
        fh.write("\n# an edit\n")
    import json

    status = json.loads(dvc(project, "status", "--json").stdout or "{}")
    changed = {
        name
        for name, entries in status.items()
        if any("changed deps" in e for e in entries if isinstance(e, dict))
    }
    expected = {
        "preprocess",
        "train_mlp",
        "train_resnet_ptb",
        "train_resnet_mitbih",
        "finetune_transfer",
        "export",
        *(f"evaluate@{m}" for m in ("mlp_ptb", "resnet_ptb", "resnet_mitbih", "transfer_ptb")),
    }
    assert changed == expected
