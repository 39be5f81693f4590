"""The documentation: no unfilled template placeholders, links that resolve, and the README's
`dvc metrics show` output is what the committed metrics files give.

A placeholder is ``{name}`` or ``{{name}}`` (``name`` an identifier) left for a template to fill.
In prose (outside code) every such token is one. Inside code, braces are legitimate (``${key}`` in
dvc.yaml, f-strings, JSON), so there only a code span or a code-block line that holds nothing but
the token counts. ``${name}`` (shell and DVC interpolation) never counts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from heartbeat.core.registry import MODEL_SPECS

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    ROOT / "BENCHMARKS.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "heartbeat/serve/pretrained/MODEL_CARD.md",
]

TOKEN = r"\{\{?\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}?"
IN_PROSE = re.compile(rf"(?<![$\\]){TOKEN}")
ALONE = re.compile(rf"{TOKEN}")
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def placeholders(text: str) -> list[tuple[int, str]]:
    """(line number, token) of every unfilled placeholder in Markdown ``text``."""
    found = []
    in_block = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_block = not in_block
            continue
        if in_block:
            if ALONE.fullmatch(line.strip()):
                found.append((number, line.strip()))
            continue
        for span in CODE_SPAN.finditer(line):
            if ALONE.fullmatch(span.group(2).strip()):
                found.append((number, span.group(2).strip()))
        prose = CODE_SPAN.sub(" ", line)
        found += [(number, m.group()) for m in IN_PROSE.finditer(prose)]
    return found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The table: {beat}\n", ["{beat}"]),
        ("{cv}\n", ["{cv}"]),
        ("Hello {{ name }} and {conf_pat}.\n", ["{{ name }}", "{conf_pat}"]),
        ("A span `{beat}` alone.\n", ["{beat}"]),
        ("```\n{beat}\n```\n", ["{beat}"]),
        ("cmd: python stages/evaluate.py ${key}\n", []),
        ("`data/prepared/${item.dataset}` and `${key}`\n", []),
        ('```python\nprint(f"{name}: {value}")\nx = {"a": 1}\n```\n', []),
        ("`data/prepared/{mitbih,ptb}/{X,y}_{train,val,test}.npy`\n", []),
        ("`plots/{model}/history.csv`\n", []),
        ("An escaped \\{name} and a set {1, 2}.\n", []),
    ],
)
def test_placeholder_rule(text: str, expected: list[str]) -> None:
    assert [token for _, token in placeholders(text)] == expected


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_unfilled_placeholders(doc: Path) -> None:
    assert placeholders(doc.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(doc: Path) -> None:
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (doc.parent / target).exists(), f"{doc.name}: link to {target} does not resolve"


def _metrics_show_block(readme: str) -> list[str]:
    """The code block right after the README's `dvc metrics show` example output line."""
    after = readme.split("prints each model's test metrics; on the committed run:", 1)[1]
    block = after.split("```", 2)[1]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_metrics_are_the_committed_ones() -> None:
    """Every number the README quotes from `dvc metrics show` is in the metrics files git tracks,
    rounded as DVC prints it (5 decimals)."""
    lines = _metrics_show_block((ROOT / "README.md").read_text(encoding="utf-8"))
    header = lines[0].split()
    assert header[0] == "Path" and {"accuracy", "macro_f1", "macro_f1_nsvf"} <= set(header)
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert sorted(rows) == sorted(f"metrics/{name}.json" for name in MODEL_SPECS)
    for path, cells in rows.items():
        metrics = json.loads((ROOT / path).read_text(encoding="utf-8"))
        for key, cell in zip(header[1:], cells, strict=True):
            if cell == "-":
                assert key not in metrics, f"{path}: {key}"
            else:
                assert float(cell) == round(metrics[key], 5), f"{path}: {key}"
    assert max(len(line) for line in lines) < 120, "readable in a 120-column terminal"


def test_a_calibrated_models_temperature_is_a_detail_not_a_metric() -> None:
    """The committed run's MIT-BIH model is temperature-scaled (params.yaml), member by member in a
    held-out-records ensemble: the sidecar keeps each member's temperature, and no metric carries one."""
    stored = json.loads((ROOT / "models/resnet_mitbih.json").read_text(encoding="utf-8"))
    metrics = json.loads((ROOT / "metrics/resnet_mitbih.json").read_text(encoding="utf-8"))
    ensemble = stored["ensemble"]
    assert len(ensemble["temperature"]) == len(ensemble["seeds"]) == len(ensemble["held_out_records"])
    assert all(0.05 <= t <= 20 for t in ensemble["temperature"]) and "temperature" not in stored
    assert "temperature" not in metrics and "ece_uncalibrated" not in metrics
