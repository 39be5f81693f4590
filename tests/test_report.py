"""Tests of the report (heartbeat/evaluate/report.py, stages/report.py) and of the offline ``dvc plots`` template.

The browser checks are in test_browser.py; these need no browser and no DVC
run: the report is built from synthetic numbers and figures.
"""

from __future__ import annotations

import base64
import configparser
import importlib.util
import io
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import matplotlib.pyplot as plt
import pytest
import yaml
from pipeline_outputs import write_outputs

from heartbeat.core.registry import MODEL_SPECS
from heartbeat.evaluate.plots import share_text
from heartbeat.evaluate.report import (
    CLASS_HEADERS,
    EXPORT_HEADERS,
    REPORT_HEADERS,
    Comparison,
    ModelResult,
    Report,
    fmt_number,
    render_comparison_html,
    render_comparison_markdown,
    render_html,
    render_markdown,
)

ROOT = Path(__file__).resolve().parents[1]


class _Page(HTMLParser):
    """Tables (as lists of rows of cell text), image sources and every URL-bearing attribute of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.styles: list[str] = []
        self.scripts = 0
        self._cell: list[str] | None = None
        self._in_style = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "poster", "data") and value is not None:
                self.urls.append((tag, name, value))
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "style":
            self._in_style = True
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_style:
            self.styles.append(data)


def _png(colour: str) -> bytes:
    fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
    ax.set_facecolor(colour)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


EXPORT = {
    "formats": ["tflite", "onnx"],
    "quantize": ["dynamic"],
    "models": {
        "mlp_ptb": {
            "keras": {"macro_f1": 0.9, "n": 500},
            "tflite": {"argmax_agreement": 1.0, "max_abs_prob_diff": 2.4e-07, "macro_f1": 0.9, "bytes": 10},
            "onnx": {"argmax_agreement": 1.0, "max_abs_prob_diff": 1.2e-07, "macro_f1": 0.9, "bytes": 10},
            "tflite_dynamic": {
                "argmax_agreement": 0.998,
                "max_abs_prob_diff": 0.01,
                "macro_f1_change": 0.0021,
                "shipped": False,
            },
        },
        "resnet_mitbih": {"skipped": "the model takes 2 inputs; only beat-only models are exported"},
    },
}


@pytest.fixture(scope="module")
def report() -> Report:
    models = []
    for i, (name, spec) in enumerate(MODEL_SPECS.items()):
        classes = ("normal", "abnormal") if spec.dataset == "ptb" else ("N", "S", "V", "F", "Q")
        metrics = {"accuracy": 0.9 + i / 100, "macro_f1": 0.8 + i / 100, "ece": 0.01}
        if spec.dataset == "ptb":
            metrics |= {"roc_auc": 0.97, "pr_auc": 0.98}
        else:
            metrics |= {"macro_f1_nsvf": 0.75}
        details = {
            "model": name,
            "dataset": spec.dataset,
            "data_source": "kaggle",
            "synthetic_data": False,
            "split": "beat",
            "weight_count": 1234 + i,
            "test_beats": 500,
            "weighted_f1": 0.85,
            "per_class": {
                c: {"sensitivity": 0.9, "positive_predictivity": 0.8, "f1": 0.5 + j / 10, "support": 10}
                for j, c in enumerate(classes)
            },
        }
        training = {"model": name, "weight_count": 1234 + i, "epochs_run": 7, "best_epoch": 5}
        figures = {"accuracy": _png("red"), "confusion": _png("blue")}
        models.append(ModelResult(name, spec.title, spec.dataset, metrics, training, figures, details))
    return Report(models, "data:\n  source: kaggle   # a comment\n", EXPORT)


def test_summary_table_has_every_model_and_column(report: Report) -> None:
    page = _Page(render_html(report))
    summary = next(t for t in page.tables if t[0] == list(REPORT_HEADERS))
    assert [row[0] for row in summary[1:]] == [m.title for m in report.models]
    resnet_mitbih = summary[1 + list(MODEL_SPECS).index("resnet_mitbih")]
    cells = dict(zip(REPORT_HEADERS, resnet_mitbih, strict=True))
    assert cells["Accuracy"] == "0.920"
    assert cells["Macro-F1 N S V F"] == "0.750"
    assert cells["ROC-AUC"] == "–", "ROC-AUC is for the binary PTB task only"
    assert cells["Weights"] == "1,236"
    assert cells["Test beats"] == "500"
    assert cells["Epochs (best)"] == "7 (5)"
    mlp = dict(zip(REPORT_HEADERS, summary[1], strict=True))
    assert mlp["ROC-AUC"] == "0.970" and mlp["Macro-F1 N S V F"] == "–"


def test_per_class_tables_in_class_order(report: Report) -> None:
    page = _Page(render_html(report))
    tables = [t for t in page.tables if t[0] == list(CLASS_HEADERS)]
    assert len(tables) == len(report.models)
    mitbih = tables[list(MODEL_SPECS).index("resnet_mitbih")]
    assert [row[0] for row in mitbih[1:]] == ["N", "S", "V", "F", "Q"]
    assert mitbih[1][1:] == ["0.900", "0.800", "0.500", "10"]


def test_exported_models_are_a_short_summary(report: Report) -> None:
    page = _Page(render_html(report))
    table = next(t for t in page.tables if t[0] == list(EXPORT_HEADERS))
    rows = {row[1]: row for row in table[1:]}
    assert rows["mlp_ptb.tflite"][2:] == ["1.0000", "2.4e-07", "–", "yes"]
    assert rows["mlp_ptb.dynamic.tflite"][4:] == ["+0.0021", "no: outside the gates"]
    assert rows["not exported"][0] == "resnet_mitbih"
    assert "bytes" not in render_html(report)


def test_figures_are_embedded_as_data_uris(report: Report) -> None:
    page = _Page(render_html(report))
    assert len(page.images) == 2 * len(report.models)
    embedded = [base64.b64decode(src.removeprefix("data:image/png;base64,")) for src in page.images]
    assert embedded == [m.figures[stem] for m in report.models for stem in ("accuracy", "confusion")]


def test_page_loads_nothing_from_anywhere(report: Report) -> None:
    text = render_html(report)
    page = _Page(text)
    assert page.scripts == 0
    assert all(value.startswith(("data:", "#")) for _, _, value in page.urls), page.urls
    assert "url(" not in "".join(page.styles) and "@import" not in "".join(page.styles)
    assert "<link" not in text


def test_data_facts_and_params(report: Report) -> None:
    text = render_html(report)
    page = _Page(text)
    facts = dict(tuple(r) for r in page.tables[0][1:])
    assert facts == {
        "Data source": "kaggle",
        "Split": "beat",
        "Synthetic data": "no",
    }
    assert "# a comment" in text, "params.yaml is shown as it is, comments included"
    assert 'class="warn"' not in text, "no synthetic-data warning for real data"


def test_text_is_escaped(report: Report) -> None:
    evil = ModelResult("x", "<script>alert(1)</script>", "ptb", {}, {}, {}, {"data_source": "<b>"})
    text = render_html(Report([evil], "a: '<i>'"))
    assert "<script>" not in text and "&lt;script&gt;" in text and "&lt;b&gt;" in text
    assert "no figure" in text


def test_synthetic_data_is_flagged(report: Report) -> None:
    demo = [
        ModelResult(
            m.name,
            m.title,
            m.dataset,
            m.metrics,
            m.training,
            m.figures,
            {**m.details, "synthetic_data": True, "data_source": "demo"},
        )
        for m in report.models
    ]
    text = render_html(Report(demo, ""))
    assert 'class="warn"' in text
    assert "synthetic demo data set" in render_markdown(Report(demo, ""))


def test_markdown_links_the_pipeline_figures(report: Report) -> None:
    md = render_markdown(report)
    lines = md.splitlines()
    header = "| " + " | ".join(REPORT_HEADERS) + " |"
    assert "| Max \\|Δprob\\| |" in md, "a | inside a header cell is escaped, or the table breaks"
    start = lines.index(header)
    assert len([ln for ln in lines[start + 2 :] if ln.startswith("| ")]) >= len(report.models)
    for name in MODEL_SPECS:
        assert f"(../plots/{name}/accuracy.png)" in md
        assert f"(../plots/{name}/confusion.png)" in md
    assert "```yaml\ndata:\n  source: kaggle   # a comment\n```" in md
    assert "| mlp_ptb | mlp_ptb.dynamic.tflite |" in md


def test_number_formats() -> None:
    assert fmt_number(None) == "–"
    assert fmt_number(float("nan")) == "–"
    assert fmt_number(12345) == "12,345"
    assert fmt_number(0.12345) == "0.123"
    # the confusion figures' row shares: a few errors among many beats are not shown as 0%
    assert [share_text(v) for v in (0, 2 / 779, 0.26, 1.0)] == ["0", "<1%", "26%", "100%"]


def test_comparison_page() -> None:
    metrics = {
        "metrics/mlp_ptb.json": {"accuracy": {"old": 0.8, "new": 0.85, "diff": 0.05}},
        "metrics/details/mlp_ptb.json": {
            "per_class.abnormal.sensitivity": {"old": 0.7, "new": 0.75, "diff": 0.05},
            "per_class.normal.sensitivity": {"old": 0.6, "new": 0.65, "diff": 0.05},
            "per_class.normal.positive_predictivity": {"old": 0.6, "new": 0.6, "diff": 0},
            "model": {"old": "mlp_ptb", "new": "mlp_ptb"},
        },
        "models/mlp_ptb.json": {
            "epochs_run": {"old": 2, "new": 3, "diff": 1},
            "weight_count": {"old": 10, "new": 10, "diff": 0},
        },
    }
    params = {"params.yaml": {"train_mlp.epochs": {"old": 2, "new": 3, "diff": 1}}}
    figures = {
        "plots/mlp_ptb/accuracy.png": (_png("red"), _png("green")),
        "plots/mlp_ptb/confusion.png": (None, _png("blue")),
    }
    cmp = Comparison("main (1234567)", "workspace", [("mlp_ptb", "MLP", "ptb")], metrics, params, figures)
    text = render_comparison_html(cmp)
    page = _Page(text)
    assert len(page.images) == 3 and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert all(value.startswith(("data:", "#")) for _, _, value in page.urls)
    rows = {r[0]: r[1:] for t in page.tables for r in t}
    assert rows["Accuracy"] == ["0.8000", "0.8500", "+0.0500"]
    assert rows["Epochs run"] == ["2", "3", "+1"]
    assert rows["Weights"] == ["10", "10", ""]
    assert rows["params.yaml: train_mlp.epochs"] == ["2", "3"]
    class_rows = [r for r in rows if r.startswith(("Se ", "+P "))]
    assert class_rows == ["Se normal", "+P normal", "Se abnormal"], "classes in the data set's order"
    links = {"plots/mlp_ptb/accuracy.png": ("figures/main/a.png", "figures/workspace/a.png")}
    md = render_comparison_markdown(cmp, links)
    assert "(figures/main/a.png)" in md and "(figures/workspace/a.png)" in md
    assert "| Accuracy | 0.8000 | 0.8500 | +0.0500 |" in md


def test_stage_writes_both_pages_without_git(tmp_path: Path) -> None:
    """The stage script on synthetic outputs, outside any git repository: it still writes both pages."""
    write_outputs(tmp_path, seed=0, epochs=3)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "report.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    html_text = (tmp_path / "report" / "index.html").read_text()
    assert len(_Page(html_text).images) == 2 * len(MODEL_SPECS)
    md = (tmp_path / "report" / "README.md").read_text()
    assert "(../plots/mlp_ptb/accuracy.png)" in md
    assert not list((tmp_path / "report").glob(".*tmp*")), "no temporary files left behind"


def test_stage_names_the_missing_input(tmp_path: Path) -> None:
    write_outputs(tmp_path, seed=0, epochs=3)
    (tmp_path / "params.yaml").write_text("")
    (tmp_path / "models" / "resnet_ptb.json").unlink()
    done = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "report.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "models/resnet_ptb.json: file not found; run the train_resnet_ptb stage first" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "report" / "index.html").exists()


def test_report_stage_in_dvc_yaml() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    report = stages["report"]
    assert report["cmd"] == "python stages/report.py"
    deps = set(report["deps"])
    for name in MODEL_SPECS:
        assert {
            f"metrics/{name}.json",
            f"metrics/details/{name}.json",
            f"models/{name}.json",
            f"plots/{name}/accuracy.png",
            f"plots/{name}/confusion.png",
        } <= deps
    outs = {next(iter(o)) for o in report["outs"]}
    assert outs == {"report/index.html", "report/README.md"}

    # Every file the report reads is some stage's output, so DVC orders report after them.
    def expanded(stage: dict) -> list[dict]:  # a foreach stage stands for one stage per key
        if "foreach" not in stage:
            return [stage]
        text = yaml.safe_dump(stage["do"])
        return [yaml.safe_load(text.replace("${key}", key)) for key in stage["foreach"]]

    produced = {
        next(iter(o)) if isinstance(o, dict) else o
        for st in stages.values()
        for s in expanded(st)
        for key in ("outs", "metrics", "plots")
        for o in s.get(key, [])
    }
    assert {d for d in deps if not d.startswith(("stages/", "heartbeat/"))} <= produced


def _vendor() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "vendor_vega_update", ROOT / "vendor" / "vega" / "update.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vendored_vega_is_complete_and_in_sync() -> None:
    vendor = _vendor()
    assert vendor.check() == []
    for name in vendor.PINS:
        assert (ROOT / "vendor" / "vega" / name / "LICENSE").is_file()


def test_plots_template_is_offline_and_configured() -> None:
    template = ROOT / "vendor" / "vega" / "dvc-plots.html"
    text = template.read_text()
    assert "{plot_divs}" in text, "DVC requires the placeholder"
    assert "{scripts}" not in text, "DVC would put its CDN <script src> tags there"
    assert "<script src" not in text and "<link" not in text
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    configured = config.get("plots", "html_template")
    # DVC resolves a relative html_template against the .dvc/ folder (dvc/commands/plots.py).
    assert (ROOT / ".dvc" / configured).resolve() == template.resolve()
    assert config.get("core", "analytics") == "false"


def test_summary_row_shows_each_ensemble_members_best_epoch() -> None:
    from heartbeat.evaluate.report import summary_row

    single = ModelResult("m", "M", "mitbih", {}, {"epochs_run": 12, "best_epoch": 6}, {})
    ensemble = ModelResult(
        "m",
        "M",
        "mitbih",
        {},
        {"epochs_run": 43, "ensemble": {"seeds": [0, 1, 2], "best_epoch": [6, 11, 8]}},
        {},
    )
    assert summary_row(single)[-1] == "12 (6)"
    assert summary_row(ensemble)[-1] == "43 (6 / 11 / 8)"
