"""Stage report: the results on one page, report/index.html, and its Markdown twin report/README.md.

In the pipeline it runs without options and reads only files (metrics/,
models/*.json, the evaluate stage's PNGs, params.yaml), so it is quick and
needs no DVC call. By hand::

    python stages/report.py --compare main      # main vs the workspace, in report/compare/

puts another revision beside the workspace, with the data of ``dvc metrics
diff``, ``dvc params diff`` and ``dvc plots diff``. It writes elsewhere
(``--out``, default report/compare/) so that the stage's own outputs stay as
``dvc repro`` made them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from heartbeat.core import layout
from heartbeat.core.atomic import atomic_path, write_text
from heartbeat.core.entry import run
from heartbeat.core.errors import DataError, input_file
from heartbeat.core.layout import read_json, read_sidecar
from heartbeat.core.registry import MODEL_SPECS
from heartbeat.evaluate.report import (
    FIGURES,
    Comparison,
    ModelResult,
    Report,
    render_comparison_html,
    render_comparison_markdown,
    render_html,
    render_markdown,
)

log = logging.getLogger("heartbeat")

REPORT_DIR = Path("report")
PARAMS = Path("params.yaml")


def git(*args: str) -> str | None:
    """Output of a git command, or None when git is missing or this is not a repository."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_revision(rev: str = "HEAD") -> str | None:
    return git("rev-parse", "--short", rev)


def gather_report() -> Report:
    """Read the pipeline's outputs for the four models; a missing input names the stage to rerun."""
    models = []
    for name, spec in MODEL_SPECS.items():
        metrics = read_json(layout.metrics_file(name), "evaluate")
        details = read_json(layout.details_file(name), "evaluate")
        _, training = read_sidecar(layout.model_file(name), spec.stage)
        figures = {}
        for stem in FIGURES:
            png = layout.PLOTS / name / f"{stem}.png"
            with input_file(png, "a PNG file", "run the evaluate stage first (dvc repro evaluate)"):
                figures[stem] = png.read_bytes()
        models.append(ModelResult(name, spec.title, spec.dataset, metrics, training, figures, details))
    export = layout.METRICS / "export.json"
    exported = read_json(export, "export") if export.is_file() else {}
    with input_file(PARAMS, "a YAML file", "run from the project root"):
        params_text = PARAMS.read_text(encoding="utf-8")
    return Report(models, params_text, exported)


def dvc_json(*args: str) -> Any:
    """Run ``dvc ARGS --json`` with this interpreter's DVC and parse its output."""
    cmd = [sys.executable, "-m", "dvc", *args, "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise DataError(f"dvc {' '.join(args)}: failed: {detail[-1] if detail else done.returncode}")
    return json.loads(done.stdout or "{}")


def gather_comparison(rev: str, workdir: Path) -> Comparison:
    """``rev`` against the workspace, from DVC's diff commands; plot images are written under ``workdir``."""
    short = git_revision(rev)
    if short is None:
        raise DataError(f"--compare {rev}: not a git revision of this repository")
    metric_files = [
        path.as_posix()
        for n in MODEL_SPECS
        for path in (
            layout.metrics_file(n),
            layout.details_file(n),
            layout.sidecar_file(layout.model_file(n)),
        )
    ]
    metrics = dvc_json("metrics", "diff", rev, "--all", "--targets", *metric_files)
    params = dvc_json("params", "diff", rev)
    targets = [f"plots/{n}/{stem}.png" for n in MODEL_SPECS for stem in FIGURES]
    plots = dvc_json("plots", "diff", rev, "--out", str(workdir), "--targets", *targets).get("data", {})
    figures: dict[str, tuple[bytes | None, bytes | None]] = {}
    for target in targets:
        by_rev: dict[str, bytes] = {}
        for entry in plots.get(target, []):
            url = entry.get("url")
            if entry.get("type") == "image" and url and Path(url).is_file():
                for r in entry.get("revisions", []):
                    by_rev[r] = Path(url).read_bytes()
        figures[target] = (by_rev.get(rev), by_rev.get("workspace"))
    head = git_revision()
    return Comparison(
        old=f"{rev} ({short})" if short and not short.startswith(rev) else rev,
        new=f"workspace (on {head})" if head else "workspace",
        models=[(n, s.title, s.dataset) for n, s in MODEL_SPECS.items()],
        metrics=metrics,
        params=params,
        figures=figures,
    )


def write_comparison(cmp: Comparison, rev: str, out: Path) -> None:
    """The comparison page, and a Markdown page whose figures are files in ``out/figures/``."""
    links: dict[str, tuple[str | None, str | None]] = {}
    safe_rev = re.sub(r"[^A-Za-z0-9._-]+", "_", rev)
    for target, pair in cmp.figures.items():
        pair_links: list[str | None] = []
        for label, png in zip((safe_rev, "workspace"), pair, strict=True):
            if png is None:
                pair_links.append(None)
                continue
            rel = f"figures/{label}/{target.removeprefix('plots/').replace('/', '_')}"
            with atomic_path(out / rel) as tmp:
                tmp.write_bytes(png)
            pair_links.append(rel)
        links[target] = (pair_links[0], pair_links[1])
    write_text(out / "index.html", render_comparison_html(cmp))
    write_text(out / "README.md", render_comparison_markdown(cmp, links))


def main() -> None:
    parser = argparse.ArgumentParser(prog="stages/report.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", metavar="REV", help="put git revision REV beside the workspace")
    parser.add_argument("--out", type=Path, help="output folder (default: report/, or report/compare/)")
    args = parser.parse_args()
    if args.compare:
        out = args.out or REPORT_DIR / "compare"
        with tempfile.TemporaryDirectory(prefix="heartbeat-report-") as tmp:
            cmp = gather_comparison(args.compare, Path(tmp))
        write_comparison(cmp, args.compare, out)
        log.info("wrote %s and %s (%s vs %s)", out / "index.html", out / "README.md", cmp.old, cmp.new)
        return
    out = args.out or REPORT_DIR
    report = gather_report()
    write_text(out / "index.html", render_html(report))
    # The Markdown links the figures in plots/ by a path relative to where it is written.
    prefix = Path(os.path.relpath(Path.cwd(), out.resolve())).as_posix() + "/"
    write_text(out / "README.md", render_markdown(report, figure_prefix=prefix))
    log.info("wrote %s and %s", out / "index.html", out / "README.md")


if __name__ == "__main__":
    run("report", main)
